//! Sends numbered messages into a named SPSC channel. Run with `consumer` in another terminal:
//!
//! ```text
//! cargo run --release --example consumer -- orders
//! cargo run --release --example producer -- orders 1000000
//! ```
//! Either may start first: both create the segment if it is not there yet. The segment outlives
//! the producer (`persist`), so a consumer that starts late still gets every message; the
//! consumer removes the name when it has read everything.

use shmring::{spsc, Config};

fn main() -> shmring::Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "orders".into());
    let count: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);

    let cfg = Config::default().capacity(1 << 20).persist(true);
    let mut tx = spsc::Sender::create_or_open(&name, cfg)?;
    let start = std::time::Instant::now();
    for i in 0..count {
        // Zero copy: format straight into the segment.
        let mut slot = tx.reserve(64)?;
        let n = {
            use std::io::Write;
            let mut w = &mut slot[..];
            write!(w, "order {i}").expect("64 bytes hold any order line");
            64 - w.len()
        };
        slot.commit(n);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {count} messages to {} in {secs:.3} s ({:.1} M msg/s)",
        tx.name(),
        count as f64 / secs / 1e6
    );
    Ok(())
}
