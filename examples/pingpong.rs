//! Forks itself; parent and child bounce a 64-byte message over two SPSC rings and the parent
//! prints round-trip percentiles.
//!
//! ```text
//! cargo run --release --example pingpong -- [spin|futex] [round trips]
//! ```

use std::time::Instant;

use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use shmring::{spsc, Config, Error, Wait};

fn main() -> shmring::Result<()> {
    let mut args = std::env::args().skip(1);
    let wait = match args.next().as_deref() {
        Some("spin") => Wait::Spin,
        _ => Wait::Futex,
    };
    let rounds: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (ping, pong) = (
        format!("pingpong-ping-{}", std::process::id()),
        format!("pingpong-pong-{}", std::process::id()),
    );
    let cfg = Config::default().capacity(1 << 16).wait(wait);
    let mut tx = spsc::Sender::create(&ping, cfg.clone())?;
    let mut rx = spsc::Receiver::create(&pong, cfg)?;

    // SAFETY: the example is single-threaded when it forks; the child only uses its own copies
    // of the process state and leaves with `_exit`.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = match echo(&ping, &pong) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("child: {e}");
                    1
                }
            };
            // SAFETY: ends the child without running the parent's destructors twice.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let msg = [7u8; 64];
            let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
            for i in 0..rounds + rounds / 10 {
                let t0 = Instant::now();
                tx.send(&msg)?;
                let back = rx.recv()?;
                let ns = t0.elapsed().as_nanos() as u64;
                assert_eq!(back.len(), 64);
                if i >= rounds / 10 {
                    hist.record(ns).expect("in range");
                }
            }
            drop(tx);
            waitpid(child, None).expect("waitpid");
            println!(
                "{wait:?}: {rounds} round trips of 64 bytes: p50 {} ns, p99 {} ns, p999 {} ns, max {} ns",
                hist.value_at_quantile(0.5),
                hist.value_at_quantile(0.99),
                hist.value_at_quantile(0.999),
                hist.max()
            );
        }
    }
    Ok(())
}

/// The child: receives on `ping`, answers on `pong`, until the parent closes `ping`.
fn echo(ping: &str, pong: &str) -> shmring::Result<()> {
    let mut rx = spsc::Receiver::open(ping)?;
    let mut tx = spsc::Sender::open(pong)?;
    loop {
        let msg = match rx.recv() {
            Ok(m) => m,
            Err(Error::Disconnected) => return Ok(()),
            Err(e) => return Err(e),
        };
        tx.send(&msg)?;
    }
}
