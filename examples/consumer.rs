//! Receives messages from a named SPSC channel until the producer closes it, then removes the
//! name. Run with `producer` in another terminal (see examples/producer.rs).

use shmring::segment::Segment;
use shmring::{spsc, Config, Error};

fn main() -> shmring::Result<()> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "orders".into());
    let cfg = Config::default().capacity(1 << 20).persist(true);
    let mut rx = spsc::Receiver::create_or_open(&name, cfg)?;
    println!("waiting on {} ...", rx.name());
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut first = None;
    loop {
        match rx.recv() {
            Ok(msg) => {
                first.get_or_insert_with(std::time::Instant::now);
                count += 1;
                bytes += msg.len() as u64;
            }
            Err(Error::Disconnected) => break,
            Err(Error::PeerDead) => {
                eprintln!("the producer died; {count} messages were received");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    println!("received {count} messages ({bytes} bytes) in {secs:.3} s");
    Segment::unlink(&name)?;
    Ok(())
}
