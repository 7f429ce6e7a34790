//! Two-process ping-pong over a Channel: the round-trip time of one message there and back.

use std::time::Instant;

use shmring::channel::{Receiver, Sender};
use shmring::{spsc, Config, Error, Wait};

use crate::proc;
use crate::stats::{histogram, summarize, Summary};

/// What the benchmark needs to know of a run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub size: usize,
    pub iters: u64,
    pub warmup: u64,
    pub cpus: [Option<usize>; 2],
}

/// Measures round trips: the parent sends, the child echoes, the parent receives.
///
/// `parent` makes this process's halves before the fork (it creates what must exist first);
/// `child` makes the echoing process's halves after it.
pub fn ping_pong(
    p: &Params,
    parent: impl FnOnce() -> (Box<dyn Sender>, Box<dyn Receiver>),
    child: impl FnOnce() -> (Box<dyn Sender>, Box<dyn Receiver>),
) -> Summary {
    proc::pin(p.cpus[0]);
    let (mut tx, mut rx) = parent();
    let pid = proc::spawn(p.cpus[1], move || {
        let (mut tx, mut rx) = child();
        let mut buf = Vec::with_capacity(1 << 16);
        loop {
            match rx.recv_into(&mut buf) {
                Ok(_) => tx.send(&buf).expect("echo send"),
                Err(Error::Disconnected | Error::PeerDead) => return,
                Err(e) => panic!("echo recv: {e}"),
            }
        }
    });
    let msg = vec![0xA5u8; p.size];
    let mut buf = Vec::with_capacity(p.size.max(1));
    let mut hist = histogram();
    for i in 0..p.warmup + p.iters {
        let t0 = Instant::now();
        tx.send(&msg).expect("ping send");
        let n = rx.recv_into(&mut buf).expect("pong recv");
        let rtt = t0.elapsed();
        debug_assert_eq!(n, p.size);
        if i >= p.warmup {
            hist.saturating_record(rtt.as_nanos() as u64);
        }
    }
    drop(tx);
    drop(rx);
    proc::join(pid);
    summarize(&hist)
}

/// Ping-pong over two shared-memory SPSC rings with the wait strategy `wait`.
pub fn shm_spsc(p: &Params, wait: Wait) -> Summary {
    let id = std::process::id();
    let ping = format!("shm-bench-ping-{id}");
    let pong = format!("shm-bench-pong-{id}");
    let cfg = Config::default().capacity(1 << 16).wait(wait);
    let (ping2, pong2) = (ping.clone(), pong.clone());
    ping_pong(
        p,
        || {
            let tx = spsc::Sender::create(&ping, cfg.clone()).expect("create ping ring");
            let rx = spsc::Receiver::create(&pong, cfg.clone()).expect("create pong ring");
            (Box::new(tx), Box::new(rx))
        },
        move || {
            let rx = spsc::Receiver::open(&ping2).expect("open ping ring");
            let tx = spsc::Sender::open(&pong2).expect("open pong ring");
            (Box::new(tx), Box::new(rx))
        },
    )
}
