//! `shm-bench mpmc`: MPMC throughput between processes: `P` producer processes and `C` consumer processes on one
//! shared-memory MPMC ring, 64-byte (or `size`) messages, every payload written and read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use shmring::{mpmc, Config, Error, Wait};

use crate::proc::{self, SharedAnon};

/// One run's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Fanout {
    /// Messages delivered, all consumers together.
    pub messages: u64,
    /// Seconds from the start signal to the last consumer done.
    pub secs: f64,
}

impl Fanout {
    pub fn per_sec(&self) -> f64 {
        self.messages as f64 / self.secs
    }
}

/// Shared words: [0] processes ready, [1] go, [2..] per-consumer counts, then checksums.
struct Board {
    mem: SharedAnon,
}

impl Board {
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < 512);
        // SAFETY: the mapping is 4096 bytes (512 words), page aligned, shared with the forked
        // children and accessed by every process through atomics only.
        unsafe { AtomicU64::from_ptr(self.mem.as_ptr().cast::<u64>().add(i)) }
    }
}

/// Runs `producers` x `consumers` processes; each producer sends `per_producer` messages.
/// CPUs are assigned round robin from `cpus` (none: no pinning).
pub fn run(
    producers: usize,
    consumers: usize,
    per_producer: u64,
    size: usize,
    wait: Wait,
    cpus: &[usize],
) -> Fanout {
    let name = format!("shm-bench-fanout-{}", std::process::id());
    let cfg = Config::default()
        .capacity(4096)
        .slot_size(size.max(16) as u64)
        .max_senders(producers as u32)
        .max_receivers(consumers as u32 + 1)
        .wait(wait);
    let creator = mpmc::Receiver::create(&name, cfg).expect("create the MPMC ring");
    let board = Board {
        mem: SharedAnon::new(4096),
    };
    let total = producers + consumers;
    let cpu = |i: usize| (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
    let mut pids = Vec::new();
    for c in 0..consumers {
        let (name, board) = (&name, &board);
        pids.push(proc::spawn(cpu(producers + c), move || {
            let mut rx = mpmc::Receiver::open(name).expect("open as receiver");
            board.word(0).fetch_add(1, Ordering::AcqRel);
            while board.word(1).load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            let (mut n, mut sum) = (0u64, 0u64);
            loop {
                match rx.recv() {
                    Ok(m) => {
                        // Read the payload: the counter the producer stamped in.
                        sum = sum.wrapping_add(u64::from_le_bytes(m[..8].try_into().unwrap()));
                        n += 1;
                    }
                    Err(Error::Disconnected) => break,
                    Err(e) => panic!("consumer: {e}"),
                }
            }
            board.word(2 + c).store(n, Ordering::Release);
            board.word(256 + c).store(sum, Ordering::Release);
        }));
    }
    for p in 0..producers {
        let (name, board) = (&name, &board);
        pids.push(proc::spawn(cpu(p), move || {
            let mut tx = mpmc::Sender::open(name).expect("open as sender");
            board.word(0).fetch_add(1, Ordering::AcqRel);
            while board.word(1).load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            let mut msg = vec![0xA5u8; size.max(8)];
            for i in 0..per_producer {
                msg[..8].copy_from_slice(&i.to_le_bytes());
                tx.send(&msg).expect("send");
            }
        }));
    }
    while board.word(0).load(Ordering::Acquire) < total as u64 {
        std::thread::yield_now();
    }
    // Everyone is attached: the creator's own receiver handle leaves, so that it neither counts
    // as a consumer nor holds messages.
    drop(creator);
    let start = Instant::now();
    board.word(1).store(1, Ordering::Release);
    for pid in pids {
        proc::join(pid);
    }
    let secs = start.elapsed().as_secs_f64();
    let messages: u64 = (0..consumers)
        .map(|c| board.word(2 + c).load(Ordering::Acquire))
        .sum();
    let sum: u64 = (0..consumers)
        .map(|c| board.word(256 + c).load(Ordering::Acquire))
        .fold(0, u64::wrapping_add);
    let n = per_producer;
    let want = (n * n.saturating_sub(1) / 2).wrapping_mul(producers as u64);
    assert_eq!(
        messages,
        n * producers as u64,
        "messages lost or duplicated"
    );
    assert_eq!(sum, want, "payload checksum mismatch");
    Fanout { messages, secs }
}

/// The same harness over an SPSC ring (one producer, one consumer), for a like-for-like
/// comparison with the MPMC ring at 1x1.
pub fn run_spsc(per_producer: u64, size: usize, wait: Wait, cpus: &[usize]) -> Fanout {
    use shmring::spsc;
    let name = format!("shm-bench-fanout-spsc-{}", std::process::id());
    let cfg = Config::default().capacity(1 << 18).wait(wait);
    let mut creator = Some(spsc::Sender::create(&name, cfg).expect("create the SPSC ring"));
    let board = Board {
        mem: SharedAnon::new(4096),
    };
    let cpu = |i: usize| (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
    let (name2, board2) = (&name, &board);
    let consumer = proc::spawn(cpu(1), move || {
        let mut rx = spsc::Receiver::open(name2).expect("open as receiver");
        board2.word(0).fetch_add(1, Ordering::AcqRel);
        let (mut n, mut sum) = (0u64, 0u64);
        loop {
            match rx.recv() {
                Ok(m) => {
                    sum = sum.wrapping_add(u64::from_le_bytes(m[..8].try_into().unwrap()));
                    n += 1;
                }
                Err(Error::Disconnected) => break,
                Err(e) => panic!("consumer: {e}"),
            }
        }
        board2.word(2).store(n, Ordering::Release);
        board2.word(256).store(sum, Ordering::Release);
    });
    proc::pin(cpu(0));
    while board.word(0).load(Ordering::Acquire) < 1 {
        std::thread::yield_now();
    }
    let mut tx = creator.take().expect("sender");
    let start = Instant::now();
    let mut msg = vec![0xA5u8; size.max(8)];
    for i in 0..per_producer {
        msg[..8].copy_from_slice(&i.to_le_bytes());
        tx.send(&msg).expect("send");
    }
    drop(tx);
    proc::join(consumer);
    let secs = start.elapsed().as_secs_f64();
    let messages = board.word(2).load(Ordering::Acquire);
    let n = per_producer;
    assert_eq!(messages, n, "messages lost or duplicated");
    assert_eq!(
        board.word(256).load(Ordering::Acquire),
        n * n.saturating_sub(1) / 2,
        "payload checksum mismatch"
    );
    Fanout { messages, secs }
}
