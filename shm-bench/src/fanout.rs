//! `shm-bench fanout`: one writer process, N reader processes, every reader sees every message.
//!
//! The harness is written once, generic over a [`Source`]: a one-to-many channel that can be
//! created by the writer (or by its one reader, for the way back of a round trip) and joined by
//! readers in other processes. shmring's SPSC ring (one reader only: the baseline the
//! broadcast ring is held against), shmring's broadcast ring, iceoryx2 publish/subscribe and
//! shaq's broadcast queue (the last two with `--features peers`) are sources; adding one costs
//! an `impl Source`.
//!
//! Every source is driven through its non-blocking calls by the same waiting loop
//! ([`Patience`]: a short spin, then `sched_yield`), so that a process sharing a core with
//! another hands it the core when it has nothing to do; on the 2-core machine that is what
//! lets 4 and 8 readers make progress at all. Delivery is lossless for every source (shmring
//! broadcast with `policy=block`, iceoryx2 with `RetryUntilDelivered`, shaq's broadcast by
//! design): the writer waits for the slowest reader.
//!
//! # Throughput
//! The writer stamps each message with its sequence number in its first and last eight bytes
//! and sends as fast as it can; each reader checks, on every message, the length, both stamps
//! (the next number it expects) and reads a byte in the middle. A warm-up of one ring lap
//! (every page of the ring touched once) is not counted. The writer sends for the time
//! budget, then publishes how many it sent; each reader stops when it has seen them all and
//! records the clock (CLOCK_MONOTONIC, shared by all processes) at the end of the warm-up and at
//! its last message. Per-reader throughput is each reader's own count over its own window;
//! aggregate throughput is every reader's messages over the span from the first reader's start
//! to the last reader's end. A reader that finds a wrong message records it and the run is
//! reported as failed, not timed.
//!
//! # Round trip
//! The writer sends one message to all N readers; reader 0 echoes it back over a second
//! channel of the same source (its only reader is the writer), straight from the borrowed
//! message; the writer waits for the echo with the same number, then sends the next. The other
//! readers receive and check every message as in the throughput run. Warm-up: one ring lap.
//!
//! # Pinning
//! The writer runs on the first CPU of `--cpus`, reader `i` on CPU `cpus[(i + 1) % len]`: with
//! two CPUs, 1 reader has a core of its own, 2 readers put one beside the writer, 4 and 8 share
//! both cores (see the oversubscription note printed with the table).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::Serialize;

use crate::proc::{self, SharedAnon};
use crate::stats::{histogram, summarize, Summary};

/// What every source is made with.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Unique per channel (the name of its segment, file or service).
    pub tag: String,
    /// Message size in bytes (at least 16: two stamps).
    pub size: usize,
    /// Reader processes that will join.
    pub readers: usize,
    /// Ring memory to aim for: bytes of messages in flight (the slot count of fixed-size
    /// sources is this over the message size, rounded to a power of two).
    pub ring_bytes: usize,
}

impl Setup {
    /// Messages of `size` that fit in `ring_bytes` (at least 2), a power of two.
    pub fn slots(&self) -> usize {
        (self.ring_bytes / self.size.max(1))
            .next_power_of_two()
            .max(2)
    }
}

/// The writing end of a source, used by one process.
pub trait Writer {
    /// Sends `msg` if there is room now (false: full, try again later).
    fn try_send(&mut self, msg: &[u8]) -> bool;
}

/// A reading end of a source, used by one process.
pub trait Reader {
    /// Hands the next message to `f`, borrowed where the source allows it (false: none now).
    fn poll(&mut self, f: impl FnOnce(&[u8])) -> bool;
}

/// A one-to-many channel between processes (see the module docs).
pub trait Source: Sized {
    type Writer: Writer;
    type Reader: Reader;
    /// The most readers this source takes.
    const MAX_READERS: usize;
    /// Creates the channel with this process as its writer; `readers` readers join later
    /// with [`reader`](Self::reader), in forked children.
    fn create_writer(s: &Setup) -> Result<(Self, Self::Writer), String>;
    /// Creates the channel with this process as its only reader; the writer joins with
    /// [`writer`](Self::writer) in a forked child.
    fn create_reader(s: &Setup) -> Result<(Self, Self::Reader), String>;
    /// Joins as reader `i` (in a forked child).
    fn reader(&self, i: usize) -> Result<Self::Reader, String>;
    /// Joins as the writer (in a forked child).
    fn writer(&self) -> Result<Self::Writer, String>;
    /// Called by the writer once every reader said it is attached, before the first message:
    /// a source whose readers connect lazily waits here until they are connected.
    fn connected(&self, _writer: &mut Self::Writer) -> Result<(), String> {
        Ok(())
    }
}

/// The one waiting loop of every process of every source: spin a little, then yield the core.
/// Gives up (panics) past a deadline, so that a wedged run cannot hang the benchmark.
pub struct Patience {
    spins: u32,
    tries: u32,
    deadline: Instant,
    polls: u64,
}

/// Polls (each a `spin_loop` hint) before a process with nothing to do yields its core; set
/// once per process by `--spins`.
static SPINS: AtomicU64 = AtomicU64::new(DEFAULT_SPINS);
pub const DEFAULT_SPINS: u64 = 256;

pub fn set_spins(n: u64) {
    SPINS.store(n, Ordering::Relaxed);
}

impl Patience {
    pub fn new(deadline: Instant) -> Patience {
        Patience {
            spins: SPINS.load(Ordering::Relaxed).min(u64::from(u32::MAX)) as u32,
            tries: 0,
            deadline,
            polls: 0,
        }
    }

    /// Nothing to do now.
    #[inline]
    pub fn wait(&mut self) {
        self.tries = self.tries.saturating_add(1);
        if self.tries < self.spins {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
        self.polls += 1;
        if self.polls % 65_536 == 0 {
            assert!(Instant::now() < self.deadline, "fanout run wedged");
        }
    }

    /// Progress was made.
    #[inline]
    pub fn reset(&mut self) {
        self.tries = 0;
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the run.
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The most readers a run takes (the board has a line each).
pub const MAX_READERS: usize = 60;

/// Words shared by the processes of a run, each on its own cache line: ready count, go, the
/// total the writer sent (`u64::MAX` until it stops), a failure flag, then per reader its
/// start and end clock, its count and the first wrong message it saw.
struct Board {
    mem: SharedAnon,
}

const READY: usize = 0;
const GO: usize = 1;
const TOTAL: usize = 2;
const FAILED: usize = 3;
const LINES: usize = 4 + MAX_READERS;

impl Board {
    fn new() -> Board {
        let b = Board {
            mem: SharedAnon::new(LINES * 64),
        };
        b.word(TOTAL, 0).store(u64::MAX, Ordering::Relaxed);
        b
    }

    /// Word `k` (0..8) of line `line`.
    fn word(&self, line: usize, k: usize) -> &AtomicU64 {
        assert!(line < LINES && k < 8);
        // SAFETY: the mapping is LINES * 64 bytes, page aligned, shared with the forked
        // children and accessed by every process through atomics only; the index is in it.
        unsafe { AtomicU64::from_ptr(self.mem.as_ptr().cast::<u64>().add(line * 8 + k)) }
    }

    fn reader(&self, i: usize, k: usize) -> &AtomicU64 {
        self.word(4 + i, k)
    }
}

const R_START: usize = 0;
const R_END: usize = 1;
const R_COUNT: usize = 2;
const R_WRONG: usize = 3;

/// One throughput run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    /// Messages each reader counted (the same for all: lossless).
    pub msgs: u64,
    /// All readers' messages over the span from the first start to the last end.
    pub aggregate_per_s: f64,
    /// The median reader's own rate.
    pub per_reader_per_s: f64,
    /// The slowest reader's own rate.
    pub slowest_reader_per_s: f64,
}

/// Waits until `n` processes said ready (panics if one died or it takes too long).
fn wait_ready(board: &Board, n: usize, pids: &[Pid]) {
    let t0 = Instant::now();
    while board.word(READY, 0).load(Ordering::Acquire) < n as u64 {
        for &pid in pids {
            if let Ok(status) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                if status != WaitStatus::StillAlive {
                    panic!("fanout reader ended before it was ready: {status:?}");
                }
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "fanout readers not ready"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn wait_go(board: &Board) {
    let mut p = Patience::new(Instant::now() + Duration::from_secs(60));
    while board.word(GO, 0).load(Ordering::Acquire) == 0 {
        p.wait();
    }
}

/// The reader's check of one message: length, both stamps, a byte in the middle.
#[inline]
fn check(m: &[u8], size: usize) -> (u64, u64) {
    if m.len() != size || m.len() < 16 {
        return (u64::MAX, 0);
    }
    let first = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
    let last = u64::from_le_bytes(m[size - 8..].try_into().expect("8 bytes"));
    if first != last {
        return (u64::MAX - 1, 0);
    }
    (first, u64::from(m[size / 2]))
}

/// What the round trip's reader 0 does with each message: send it back.
type Echo<'a> = &'a mut dyn FnMut(&[u8]);

/// The body of reader `i`: receive and check everything up to the writer's total, recording
/// the clock when message `warmup` arrives and at the end. `echo` sends each message back (the
/// round trip's reader 0).
fn read_all<R: Reader>(
    i: usize,
    rx: &mut R,
    size: usize,
    warmup: u64,
    board: &Board,
    mut echo: Option<Echo>,
) {
    let mut p = Patience::new(Instant::now() + Duration::from_secs(120));
    let (mut next, mut sum) = (0u64, 0u64);
    let mut total = u64::MAX;
    let mut wrong = false;
    while next < total {
        let got = rx.poll(|m| {
            let (seq, mid) = check(m, size);
            if seq != next && !wrong {
                wrong = true;
                board.reader(i, R_WRONG).store(next + 1, Ordering::Relaxed);
                board.word(FAILED, 0).store(1, Ordering::Release);
            }
            if let Some(e) = echo.as_mut() {
                e(m);
            }
            if seq < u64::MAX - 1 {
                // Follow the sender after a gap, so that the run still ends.
                next = seq;
            }
            sum = sum.wrapping_add(seq ^ mid);
            next += 1;
        });
        if got {
            p.reset();
            if next == warmup {
                board.reader(i, R_START).store(now_ns(), Ordering::Relaxed);
            }
        } else {
            if total == u64::MAX {
                total = board.word(TOTAL, 0).load(Ordering::Acquire);
            }
            p.wait();
        }
    }
    board.reader(i, R_END).store(now_ns(), Ordering::Relaxed);
    board
        .reader(i, R_COUNT)
        .store(next.saturating_sub(warmup), Ordering::Relaxed);
    std::hint::black_box(sum);
}

/// Pins the writer and returns the CPU of reader `i`.
fn reader_cpu(cpus: &[usize], i: usize) -> Option<usize> {
    (!cpus.is_empty()).then(|| cpus[(i + 1) % cpus.len()])
}

/// Stamps `seq` into `msg`.
#[inline]
fn stamp(msg: &mut [u8], seq: u64) {
    let n = msg.len();
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    msg[n - 8..].copy_from_slice(&seq.to_le_bytes());
}

/// Warm-up messages: one lap of a ring of `ring_bytes` and then some.
fn warmup_msgs(s: &Setup) -> u64 {
    (s.ring_bytes / s.size.max(1)) as u64 + 64
}

/// One throughput run of source `S` (see the module docs). `Err` if a reader saw a wrong
/// message (the run is not timed then).
pub fn throughput<S: Source>(
    s: &Setup,
    budget: Duration,
    cpus: &[usize],
) -> Result<Spread, String> {
    assert!(s.readers >= 1 && s.readers <= S::MAX_READERS.min(MAX_READERS));
    proc::pin(cpus.first().copied());
    let board = Board::new();
    let (src, mut tx) = S::create_writer(s)?;
    let warmup = warmup_msgs(s);
    let mut pids = Vec::new();
    for i in 0..s.readers {
        let (src, board) = (&src, &board);
        pids.push(proc::spawn(reader_cpu(cpus, i), move || {
            let mut rx = src.reader(i).expect("join as reader");
            board.word(READY, 0).fetch_add(1, Ordering::AcqRel);
            wait_go(board);
            read_all(i, &mut rx, s.size, warmup, board, None);
        }));
    }
    wait_ready(&board, s.readers, &pids);
    src.connected(&mut tx)?;
    board.word(GO, 0).store(1, Ordering::Release);
    let mut msg = vec![0x5Au8; s.size];
    let mut p = Patience::new(Instant::now() + budget * 20 + Duration::from_secs(30));
    let mut seq = 0u64;
    let mut t0 = Instant::now();
    loop {
        stamp(&mut msg, seq);
        while !tx.try_send(&msg) {
            p.wait();
        }
        p.reset();
        seq += 1;
        if seq == warmup {
            t0 = Instant::now();
        }
        if seq % 256 == 0
            && seq > warmup
            && (t0.elapsed() >= budget || board.word(FAILED, 0).load(Ordering::Relaxed) != 0)
        {
            break;
        }
    }
    board.word(TOTAL, 0).store(seq, Ordering::Release);
    for pid in pids {
        proc::join(pid);
    }
    drop(tx);
    drop(src);
    spread(&board, s.readers)
}

fn spread(board: &Board, readers: usize) -> Result<Spread, String> {
    if board.word(FAILED, 0).load(Ordering::Acquire) != 0 {
        let which: Vec<String> = (0..readers)
            .filter_map(|i| {
                let w = board.reader(i, R_WRONG).load(Ordering::Relaxed);
                (w != 0).then(|| format!("reader {i} at message {}", w - 1))
            })
            .collect();
        return Err(format!("wrong message: {}", which.join(", ")));
    }
    let mut rates = Vec::new();
    let (mut first, mut last, mut msgs, mut all) = (u64::MAX, 0u64, 0u64, 0u64);
    for i in 0..readers {
        let start = board.reader(i, R_START).load(Ordering::Relaxed);
        let end = board.reader(i, R_END).load(Ordering::Relaxed);
        let n = board.reader(i, R_COUNT).load(Ordering::Relaxed);
        first = first.min(start);
        last = last.max(end);
        msgs = n;
        all += n;
        rates.push(n as f64 / ((end.saturating_sub(start)) as f64 / 1e9).max(1e-9));
    }
    rates.sort_by(f64::total_cmp);
    Ok(Spread {
        msgs,
        aggregate_per_s: all as f64 / ((last.saturating_sub(first)) as f64 / 1e9).max(1e-9),
        per_reader_per_s: rates[rates.len() / 2],
        slowest_reader_per_s: rates[0],
    })
}

/// The longest round-trip warm-up, whatever one ring lap says.
const MAX_WARMUP: Duration = Duration::from_millis(300);

/// One round-trip run of source `S` (see the module docs).
pub fn round_trip<S: Source>(
    s: &Setup,
    budget: Duration,
    cpus: &[usize],
) -> Result<Summary, String> {
    assert!(s.readers >= 1 && s.readers <= S::MAX_READERS.min(MAX_READERS));
    proc::pin(cpus.first().copied());
    let board = Board::new();
    let (ping, mut tx) = S::create_writer(s)?;
    let back = Setup {
        tag: format!("{}-pong", s.tag),
        readers: 1,
        ..s.clone()
    };
    let (pong, mut rx) = S::create_reader(&back)?;
    let warmup = warmup_msgs(s);
    let mut pids = Vec::new();
    for i in 0..s.readers {
        let (ping, pong, board) = (&ping, &pong, &board);
        pids.push(proc::spawn(reader_cpu(cpus, i), move || {
            let mut rx = ping.reader(i).expect("join as reader");
            let mut back = (i == 0).then(|| pong.writer().expect("join the way back"));
            if let Some(back) = back.as_mut() {
                pong.connected(back).expect("way back connected");
            }
            board.word(READY, 0).fetch_add(1, Ordering::AcqRel);
            wait_go(board);
            let mut p = Patience::new(Instant::now() + Duration::from_secs(120));
            let mut echo = |m: &[u8]| {
                let tx = back.as_mut().expect("reader 0 echoes");
                while !tx.try_send(m) {
                    p.wait();
                }
                p.reset();
            };
            let echo: Option<Echo> = if i == 0 { Some(&mut echo) } else { None };
            read_all(i, &mut rx, s.size, 0, board, echo);
        }));
    }
    wait_ready(&board, s.readers, &pids);
    ping.connected(&mut tx)?;
    board.word(GO, 0).store(1, Ordering::Release);
    let mut msg = vec![0x5Au8; s.size];
    let mut p = Patience::new(Instant::now() + budget * 20 + Duration::from_secs(30));
    let mut hist = histogram();
    let mut start = Instant::now();
    let mut seq = 0u64;
    let mut bad = None;
    let mut warmup = warmup;
    let warm_start = Instant::now();
    loop {
        if seq < warmup && warm_start.elapsed() >= MAX_WARMUP {
            // A slow case (readers sharing cores) would warm up for ever: start measuring.
            warmup = seq;
        }
        if seq == warmup {
            start = Instant::now();
        }
        stamp(&mut msg, seq);
        let t0 = Instant::now();
        while !tx.try_send(&msg) {
            p.wait();
        }
        p.reset();
        let mut back = None;
        while !rx.poll(|m| back = Some(check(m, s.size).0)) {
            p.wait();
        }
        p.reset();
        let dt = t0.elapsed();
        if back != Some(seq) {
            bad = Some(format!("echo of {seq} brought {back:?}"));
        }
        seq += 1;
        if seq > warmup {
            hist.saturating_record(dt.as_nanos() as u64);
            if bad.is_some()
                || (seq % 64 == 0 && start.elapsed() >= budget)
                || board.word(FAILED, 0).load(Ordering::Relaxed) != 0
            {
                break;
            }
        }
    }
    board.word(TOTAL, 0).store(seq, Ordering::Release);
    for pid in pids {
        proc::join(pid);
    }
    drop((tx, rx, ping, pong));
    if let Some(bad) = bad {
        return Err(bad);
    }
    spread(&board, s.readers)?;
    Ok(summarize(&hist))
}
