//! The busy-channel fast path in one thread, nobody waiting or polling: `N` (argument, default
//! 1 000 000) sends and receives of 64-byte messages on an SPSC and an MPMC ring, then the
//! elapsed time per message. For the doorbell's "costs nothing while nobody polls" check, run
//! it under callgrind at two counts and take the difference of the instruction totals
//! (deterministic, whatever the machine's load):
//!
//! ```text
//! cargo build --release --example fastpath
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/fastpath 0 spsc
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/fastpath 100000 spsc
//! ```
//! The same file builds on a tree without doorbells, which is the baseline.

use std::time::Instant;

use shmring::{mpmc, spsc, Config};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let which = args.next().unwrap_or_else(|| "both".into());
    let msg = [7u8; 64];
    let mut buf = Vec::with_capacity(64);
    let pid = std::process::id();
    if which == "spsc" || which == "both" {
        let name = format!("fastpath-spsc-{pid}");
        let mut tx = spsc::Sender::create(&name, Config::default().capacity(1 << 16)).unwrap();
        let mut rx = spsc::Receiver::open(&name).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            tx.send(&msg).unwrap();
            rx.try_recv_into(&mut buf).unwrap();
        }
        let per = t.elapsed().as_secs_f64() * 1e9 / n.max(1) as f64;
        println!("spsc: {n} send+recv of 64 B, {per:.1} ns each");
    }
    if which == "mpmc" || which == "both" {
        let name = format!("fastpath-mpmc-{pid}");
        let cfg = Config::default().capacity(1024).slot_size(64);
        let mut tx = mpmc::Sender::create(&name, cfg).unwrap();
        let mut rx = mpmc::Receiver::open(&name).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            tx.send(&msg).unwrap();
            rx.try_recv_into(&mut buf).unwrap();
        }
        let per = t.elapsed().as_secs_f64() * 1e9 / n.max(1) as f64;
        println!("mpmc: {n} send+recv of 64 B, {per:.1} ns each");
    }
}
