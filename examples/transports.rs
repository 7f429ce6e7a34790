//! Sends the same 1000 messages over every transport and prints how long each took.
//!
//! ```text
//! cargo run --release --example transports
//! ```

use std::time::{Duration, Instant};

use shmring::channel::{Receiver, Sender};

const MESSAGES: u32 = 1000;

fn run(name: &str, mut tx: Box<dyn Sender>, mut rx: Box<dyn Receiver>) -> shmring::Result<()> {
    let start = Instant::now();
    let sender = std::thread::spawn(move || -> shmring::Result<()> {
        for i in 0..MESSAGES {
            tx.send(format!("message {i:04} over the wire").as_bytes())?;
        }
        Ok(())
    });
    let mut buf = Vec::new();
    for i in 0..MESSAGES {
        rx.recv_into_timeout(&mut buf, Duration::from_secs(10))?;
        assert_eq!(buf, format!("message {i:04} over the wire").as_bytes());
    }
    sender.join().expect("sender thread")?;
    // The sender is gone: the receiver has drained everything and now sees the close.
    assert!(matches!(
        rx.recv_into_timeout(&mut buf, Duration::from_secs(5)),
        Err(shmring::Error::Disconnected)
    ));
    let took = start.elapsed();
    println!(
        "{name:<52} {MESSAGES} messages in {:>9.3} ms ({:>6.2} us/msg)",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e6 / f64::from(MESSAGES)
    );
    Ok(())
}

fn main() -> shmring::Result<()> {
    let pid = std::process::id();
    let tmp = std::env::temp_dir();
    let urls = [
        format!("shm://transports-{pid}?ring=spsc&capacity=64KiB"),
        format!(
            "fifo://{}",
            tmp.join(format!("transports-{pid}.fifo")).display()
        ),
        format!(
            "unix://{}",
            tmp.join(format!("transports-{pid}.sock")).display()
        ),
        format!("unix://@transports-{pid}"),
        format!("unix-seqpacket://@transports-{pid}"),
        format!("unix-dgram://@transports-dgram-{pid}"),
        format!("mq://transports-{pid}"),
        format!("sysv://{:#x}", 0x5d00_0000 | (pid & 0xff_ffff)),
        "tcp://127.0.0.1:0".to_owned(),
    ];

    // An anonymous pipe has no name: both ends come from one call.
    let (tx, rx) = shmring::transport::pipe::channel()?;
    run("pipe:", Box::new(tx), Box::new(rx))?;

    for url in urls {
        let rx = shmring::listen(&url)?;
        let url = rx.local_url().unwrap_or(url); // tcp: the port chosen
        let tx = shmring::connect(&url)?;
        run(&url, tx, rx)?;
    }
    Ok(())
}
