//! Two-process ping-pong over a Channel: the round-trip time of one message there and back.
//!
//! The parent listens on a "pong" endpoint and connects to a "ping" endpoint; the forked child
//! does the reverse and echoes every message. Each ping carries its sequence number in its first
//! eight bytes, and the parent checks that the echo brings the same one back. Timing starts only
//! after the child said it is ready (a flag in shared memory) and after the warm-up round trips.

use std::cell::Cell;
use std::time::{Duration, Instant};

use shmring::channel::{Receiver, Sender};
use shmring::transport::pipe;

use crate::proc::{self, Rendezvous};
use crate::stats::{histogram, summarize, Summary};
use crate::urls::{self, Link};

/// What the benchmark needs to know of a run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Message size in bytes (at least 8: the sequence number).
    pub size: usize,
    /// Measured round trips, at most.
    pub iters: u64,
    /// Unmeasured round trips first.
    /// For a shm ring make it at least one lap ([`crate::urls::ring_lap`]): the first lap
    /// pays page faults (see [`MAX_WARMUP`]).
    pub warmup: u64,
    /// Stop measuring after this long even if `iters` are not done (`None`: no limit).
    pub budget: Option<Duration>,
    pub cpus: [Option<usize>; 2],
}

/// The longest warm-up: past it, measuring starts whatever `warmup` said.
///
/// A fresh segment's pages are faulted in on first touch, by the writer and again by the
/// reader, so the first lap of a shm ring is slow (on this VM tens of µs per round trip at
/// 2 KiB). A short measurement that does not get past the first lap reports the page-fault
/// cost: that was the compare sweep's 2 KiB round trip of 2.7-4.7 µs (against 0.3-0.8 µs from
/// `latency`, whose 100000 warm-ups cover ~50 laps). Warm-ups of one lap fix it; this cap
/// keeps a slow transport from warming up for ever.
pub const MAX_WARMUP: Duration = Duration::from_millis(500);

/// The smallest message the benchmarks send: the sequence number.
pub const MIN_SIZE: usize = 8;

type Halves = (Box<dyn Sender>, Box<dyn Receiver>);

/// Round trips over `link`, or `None` when `p.size` is above what the transport carries.
pub fn run(p: &Params, link: &Link) -> Result<Option<Summary>, String> {
    assert!(
        p.size >= MIN_SIZE,
        "messages carry an 8-byte sequence number"
    );
    match link {
        Link::Pipe => Ok(over_pipes(p)),
        Link::Url(url) => over_url(p, url),
    }
}

fn over_url(p: &Params, base: &str) -> Result<Option<Summary>, String> {
    let tag = urls::run_tag();
    let ping_url = urls::unique(base, &tag, "ping")?;
    let pong_url = urls::unique(base, &tag, "pong")?;
    proc::pin(p.cpus[0]);
    let pong_rx = shmring::listen(&pong_url).map_err(|e| format!("listen {pong_url}: {e}"))?;
    if p.size > pong_rx.max_message_size() {
        return Ok(None);
    }
    let pong_at = pong_rx.local_url().unwrap_or(pong_url);
    let meet = Rendezvous::new();
    let size = p.size;
    let pid = proc::spawn(p.cpus[1], || {
        let ping_rx = shmring::listen(&ping_url).expect("child: listen on ping");
        let pong_tx = shmring::connect(&pong_at).expect("child: connect to pong");
        meet.set_ready(Some(&ping_rx.local_url().unwrap_or(ping_url.clone())));
        echo(size, pong_tx, ping_rx);
    });
    let ping_at = meet.wait_ready(pid).expect("child published its ping URL");
    let ping_tx = shmring::connect(&ping_at).map_err(|e| format!("connect {ping_at}: {e}"))?;
    let s = measure(p, (ping_tx, pong_rx), pid);
    Ok(Some(s))
}

fn over_pipes(p: &Params) -> Option<Summary> {
    proc::pin(p.cpus[0]);
    let (ping_tx, ping_rx) = pipe::channel().expect("ping pipe");
    let (pong_tx, pong_rx) = pipe::channel().expect("pong pipe");
    if p.size > pong_rx.max_message_size() {
        return None;
    }
    // Each process closes the other's ends (a kept write end would hide the end of the
    // stream): the child drops its copy of the parent's halves, taken from this cell; the
    // parent's copies of the child's halves go with the closure.
    let parents = Cell::new(Some((ping_tx, pong_rx)));
    let size = p.size;
    let meet = Rendezvous::new();
    let pid = proc::spawn(p.cpus[1], || {
        drop(parents.take());
        meet.set_ready(None);
        echo(size, Box::new(pong_tx), Box::new(ping_rx));
    });
    let (ping_tx, pong_rx) = parents.take().expect("the parent's halves");
    meet.wait_ready(pid);
    Some(measure(p, (Box::new(ping_tx), Box::new(pong_rx)), pid))
}

/// The child: sends back every message until an empty one (or the end of the channel).
fn echo(size: usize, mut tx: Box<dyn Sender>, mut rx: Box<dyn Receiver>) {
    let mut buf = Vec::with_capacity(size);
    loop {
        match rx.recv_into(&mut buf) {
            Ok(0) => return,
            Ok(_) => tx.send(&buf).expect("echo send"),
            Err(shmring::Error::Disconnected | shmring::Error::PeerDead) => return,
            Err(e) => panic!("echo recv: {e}"),
        }
    }
}

/// The parent: warm-up, then timed round trips; then the empty message that ends the child.
fn measure(p: &Params, (mut tx, mut rx): Halves, child: nix::unistd::Pid) -> Summary {
    let mut msg = vec![0xA5u8; p.size];
    let mut buf = Vec::with_capacity(p.size);
    let mut hist = histogram();
    let mut start = Instant::now();
    let mut warmup = p.warmup;
    for i in 0..p.warmup.saturating_add(p.iters) {
        if i < warmup && i % 64 == 0 && start.elapsed() >= MAX_WARMUP {
            warmup = i;
        }
        if i == warmup {
            start = Instant::now();
        }
        msg[..8].copy_from_slice(&i.to_le_bytes());
        let t0 = Instant::now();
        tx.send(&msg).expect("ping send");
        let n = rx.recv_into(&mut buf).expect("pong recv");
        let rtt = t0.elapsed();
        assert!(
            n == p.size && buf[..8] == i.to_le_bytes(),
            "echo {i} came back wrong ({n} bytes)"
        );
        if i >= warmup {
            hist.saturating_record(rtt.as_nanos() as u64);
            if i % 64 == 0 && p.budget.is_some_and(|b| start.elapsed() >= b) {
                break;
            }
        }
    }
    tx.send(&[]).expect("send the end");
    proc::join(child);
    drop(tx);
    drop(rx);
    summarize(&hist)
}
