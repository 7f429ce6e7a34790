//! One-way throughput between two processes: the forked child sends as fast as it can, the
//! parent receives.
//!
//! Every message is written by the sender (its sequence number stamped into its first and last
//! eight bytes, the rest copied in by the transport's `send`) and read by the receiver (copied
//! out by `recv_into`, both stamps checked, and summed), so a transport cannot win by moving
//! nothing. Timing starts after a handshake message has arrived and the child said it is ready;
//! the parent then raises the "go" flag, counts what arrives for the time budget, raises "stop",
//! and drains the rest (uncounted) up to the child's empty end message.

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shmring::channel::{Receiver, Sender};
use shmring::transport::pipe;

use crate::latency::MIN_SIZE;
use crate::proc::{self, Rendezvous};
use crate::urls::{self, Link};

#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Message size in bytes (at least 8).
    pub size: usize,
    /// Time to count messages for.
    pub budget: Duration,
    /// Count at most this many messages.
    pub max_msgs: u64,
    pub cpus: [Option<usize>; 2],
    /// Messages per `send_batch` / `recv_batch` call (1: `send` / `recv_into`).
    pub batch: usize,
}

/// The outcome of one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Messages counted.
    pub msgs: u64,
    /// Seconds they took.
    pub secs: f64,
    pub msgs_per_s: f64,
    pub bytes_per_s: f64,
}

impl Rate {
    pub fn new(msgs: u64, size: usize, secs: f64) -> Rate {
        let secs = secs.max(1e-9);
        Rate {
            msgs,
            secs,
            msgs_per_s: msgs as f64 / secs,
            bytes_per_s: (msgs as f64 * size as f64) / secs,
        }
    }
}

/// One-way throughput over `link`, or `None` when `p.size` is above what it carries.
pub fn run(p: &Params, link: &Link) -> Result<Option<Rate>, String> {
    assert!(
        p.size >= MIN_SIZE,
        "messages carry an 8-byte sequence number"
    );
    proc::pin(p.cpus[0]);
    let meet = Rendezvous::new();
    let size = p.size;
    let batch = p.batch.max(1);
    let (rx, pid): (Box<dyn Receiver>, _) = match link {
        Link::Pipe => {
            let (tx, rx) = pipe::channel().map_err(|e| format!("pipe: {e}"))?;
            if size > rx.max_message_size() {
                return Ok(None);
            }
            // The child drops its copy of the read end (taken from the cell); the parent's
            // copy of the write end goes with the closure.
            let parents = Cell::new(Some(rx));
            let pid = proc::spawn(p.cpus[1], || {
                drop(parents.take());
                send_all(size, batch, Box::new(tx), &meet);
            });
            (Box::new(parents.take().expect("the read end")), pid)
        }
        Link::Url(base) => {
            let url = urls::unique(base, &urls::run_tag(), "data")?;
            let rx = shmring::listen(&url).map_err(|e| format!("listen {url}: {e}"))?;
            if size > rx.max_message_size() {
                return Ok(None);
            }
            let at = rx.local_url().unwrap_or(url);
            let pid = proc::spawn(p.cpus[1], || {
                let tx = shmring::connect(&at).expect("child: connect");
                send_all(size, batch, tx, &meet);
            });
            (rx, pid)
        }
    };
    Ok(Some(receive_all(p, rx, &meet, pid)))
}

/// The child: handshake, wait for go, send stamped messages until stop, then the end.
fn send_all(size: usize, batch: usize, mut tx: Box<dyn Sender>, meet: &Rendezvous) {
    tx.send(&u64::MAX.to_le_bytes()).expect("send handshake");
    meet.set_ready(None);
    meet.wait_go();
    let mut msg = vec![0x3Cu8; size];
    let mut seq = 0u64;
    if batch > 1 {
        let mut msgs = vec![vec![0x3Cu8; size]; batch];
        while !meet.stopped() {
            for m in &mut msgs {
                let stamp = seq.to_le_bytes();
                m[..8].copy_from_slice(&stamp);
                m[size - 8..].copy_from_slice(&stamp);
                seq += 1;
            }
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let mut sent = 0;
            while sent < refs.len() {
                sent += tx.send_batch(&refs[sent..]).expect("send_batch");
            }
        }
        tx.send(&[]).expect("send the end");
        return;
    }
    while !meet.stopped() {
        let stamp = seq.to_le_bytes();
        msg[..8].copy_from_slice(&stamp);
        msg[size - 8..].copy_from_slice(&stamp);
        tx.send(&msg).expect("send");
        seq += 1;
    }
    tx.send(&[]).expect("send the end");
}

fn receive_all(
    p: &Params,
    mut rx: Box<dyn Receiver>,
    meet: &Rendezvous,
    child: nix::unistd::Pid,
) -> Rate {
    let mut buf = Vec::with_capacity(p.size);
    let n = rx.recv_into(&mut buf).expect("recv handshake");
    assert_eq!(n, 8, "handshake");
    meet.wait_ready(child);
    // Check the clock every few messages (every one for big ones: they take long).
    let check_every = (1 << 16) / p.size.max(1) as u64 + 1;
    let t0 = Instant::now();
    meet.go();
    let mut count = 0u64;
    let mut sum = 0u64;
    if p.batch > 1 {
        let secs = receive_batches(p, &mut *rx, t0, check_every, &mut count, &mut sum);
        meet.stop();
        drain(&mut *rx);
        proc::join(child);
        std::hint::black_box(sum);
        return Rate::new(count, p.size, secs);
    }
    let secs = loop {
        let n = rx.recv_into(&mut buf).expect("recv");
        sum = sum.wrapping_add(check_stamps(&buf[..n], p.size, count));
        count += 1;
        if count % check_every == 0 || count >= p.max_msgs {
            let t = t0.elapsed();
            if t >= p.budget || count >= p.max_msgs {
                break t.as_secs_f64();
            }
        }
    };
    meet.stop();
    drain(&mut *rx);
    proc::join(child);
    std::hint::black_box(sum);
    Rate::new(count, p.size, secs)
}

/// Drains what the child sent after "stop", up to its empty end message (uncounted).
/// Checks that message `count` is `size` bytes with `count` stamped in its first and last eight
/// bytes (panics otherwise), and returns what it adds to the checksum (the first stamp and the
/// middle byte, so the payload is read).
#[inline]
fn check_stamps(m: &[u8], size: usize, count: u64) -> u64 {
    let n = m.len();
    assert!(
        n == size && n >= 8,
        "message {count} arrived wrong: {n} bytes"
    );
    let first = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
    let last = u64::from_le_bytes(m[n - 8..].try_into().expect("8 bytes"));
    assert!(
        first == count && last == count,
        "message {count} arrived wrong: {n} bytes, stamps {first} / {last}"
    );
    first ^ u64::from(m[n / 2])
}

fn drain(rx: &mut dyn Receiver) {
    let mut buf = Vec::new();
    while rx.recv_into(&mut buf).expect("drain") != 0 {}
}

/// The counting loop with `recv_batch`: the same checks per message as the one-by-one loop.
/// Returns the seconds counted; stops at a batch boundary once the budget is spent. The clock
/// is looked at once `check_every` more messages arrived, as in the one-by-one loop, not after
/// every batch: one look costs 40-90 ns on this VM, as much as a whole batch of 64 small
/// messages at 100 M/s, so a look per batch measured the clock as much as the transport.
fn receive_batches(
    p: &Params,
    rx: &mut dyn Receiver,
    t0: Instant,
    check_every: u64,
    count: &mut u64,
    sum: &mut u64,
) -> f64 {
    let mut batch = shmring::channel::Batch::new();
    let mut next_check = check_every;
    loop {
        rx.recv_batch(&mut batch, p.batch).expect("recv_batch");
        for m in batch.iter() {
            *sum = sum.wrapping_add(check_stamps(m, p.size, *count));
            *count += 1;
        }
        if *count < next_check && *count < p.max_msgs {
            continue;
        }
        next_check = *count + check_every;
        let t = t0.elapsed();
        if t >= p.budget || *count >= p.max_msgs {
            return t.as_secs_f64();
        }
    }
}

/// One-way throughput of an SPSC spin ring (4 MiB) with the work of iceoryx2's loop in
/// `peers::iceoryx2_throughput` (its zero-copy variant): the child copies each stamped
/// message in (`send`, as iceoryx2's `write_from_slice` into a loaned sample), the parent
/// borrows it in place (`recv`, a guard into the ring) and reads both stamps and the middle
/// byte, without copying it out. The `throughput` rows copy every message out as well
/// (`recv_into`), so they do twice the memory traffic of this loop at large sizes.
pub fn spsc_zero_copy(p: &Params) -> Rate {
    use shmring::{spsc, Config, Wait};
    let size = p.size.max(MIN_SIZE);
    let name = format!("shm-bench-zc-{}", urls::run_tag());
    let cfg = Config::default().wait(Wait::Spin).capacity(4 << 20);
    proc::pin(p.cpus[0]);
    let mut rx = spsc::Receiver::create(&name, cfg).expect("create the zero-copy ring");
    let meet = Rendezvous::new();
    let pid = proc::spawn(p.cpus[1], || {
        let mut tx = spsc::Sender::open(&name).expect("child: open");
        meet.set_ready(None);
        meet.wait_go();
        let mut msg = vec![0x3Cu8; size];
        let mut seq = 0u64;
        while !meet.stopped() {
            let stamp = seq.to_le_bytes();
            msg[..8].copy_from_slice(&stamp);
            msg[size - 8..].copy_from_slice(&stamp);
            tx.send(&msg).expect("send");
            seq += 1;
        }
        tx.send(&[]).expect("send the end");
    });
    meet.wait_ready(pid);
    let check_every = (1 << 16) / size as u64 + 1;
    let t0 = Instant::now();
    meet.go();
    let (mut count, mut sum) = (0u64, 0u64);
    let secs = loop {
        {
            let m = rx.recv().expect("recv");
            sum = sum.wrapping_add(check_stamps(&m, size, count));
        }
        count += 1;
        if count % check_every == 0 || count >= p.max_msgs {
            let t = t0.elapsed();
            if t >= p.budget || count >= p.max_msgs {
                break t.as_secs_f64();
            }
        }
    };
    meet.stop();
    while !rx.recv().expect("drain").is_empty() {}
    proc::join(pid);
    drop(rx);
    std::hint::black_box(sum);
    Rate::new(count, size, secs)
}
