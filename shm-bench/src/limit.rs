//! The physical limits that every transport is measured against.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::proc::{self, Rendezvous, SharedAnon};
use crate::stats::{histogram, summarize, Summary};

/// One cache line bounced between two processes through shared memory, and nothing else: the
/// parent writes an odd number, the child answers with the next even one. A round trip is two
/// transfers of the line between the cores: no message passing can beat it.
pub fn cache_line_round_trip(iters: u64, warmup: u64, cpus: [Option<usize>; 2]) -> Summary {
    let mem = SharedAnon::new(4096);
    // SAFETY: the mapping is page aligned, at least 8 bytes, and lives until both processes are
    // done (the child is joined before `mem` drops); it is accessed only through this atomic.
    let line = unsafe { AtomicU64::from_ptr(mem.as_ptr().cast()) };
    let total = iters + warmup;
    proc::pin(cpus[0]);
    let child = proc::spawn(cpus[1], || {
        for i in 0..total {
            while line.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            line.store(2 * i + 2, Ordering::Release);
        }
    });
    let mut hist = histogram();
    for i in 0..total {
        let t0 = Instant::now();
        line.store(2 * i + 1, Ordering::Release);
        while line.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
        if i >= warmup {
            hist.saturating_record(t0.elapsed().as_nanos() as u64);
        }
    }
    proc::join(child);
    summarize(&hist)
}

/// `FUTEX_WAIT` on a shared (not process-private) futex word while it holds `val`.
fn futex_wait(word: &AtomicU32, val: u32) {
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; FUTEX_WAIT only reads
    // it, and a null timeout means "no timeout". Spurious returns (EAGAIN, EINTR) are handled by
    // the callers, which re-check the word in a loop.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            val,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// `FUTEX_WAKE` of one waiter on a shared futex word.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not touch memory, it only wakes
    // threads waiting on that address.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
}

/// A raw futex ping-pong between two processes, and nothing else: two futex words in shared
/// anonymous memory; each side stores the next number into its word, wakes the other, and
/// sleeps in the kernel (no spinning) until the other's word moves. The round trip of any
/// transport that puts its receiver to sleep pays at least this.
pub fn futex_round_trip(
    iters: u64,
    warmup: u64,
    budget: Option<Duration>,
    cpus: [Option<usize>; 2],
) -> Summary {
    let mem = SharedAnon::new(4096);
    // SAFETY: the page is aligned, zeroed, shared with the child and outlives both processes'
    // use of it (the child is joined before `mem` drops); it is only accessed through atomics.
    // The two words sit on separate cache lines (offsets 0 and 64).
    let (ping, pong) = unsafe {
        (
            AtomicU32::from_ptr(mem.as_ptr().cast()),
            AtomicU32::from_ptr(mem.as_ptr().add(64).cast()),
        )
    };
    let meet = Rendezvous::new();
    proc::pin(cpus[0]);
    let child = proc::spawn(cpus[1], || {
        meet.set_ready(None);
        let mut i = 0u32;
        loop {
            i = i.wrapping_add(1);
            // Wait for ping == i (0 means: the parent says stop).
            loop {
                let v = ping.load(Ordering::Acquire);
                if v == i {
                    break;
                }
                if meet.stopped() {
                    return;
                }
                futex_wait(ping, v);
            }
            pong.store(i, Ordering::Release);
            futex_wake(pong);
        }
    });
    meet.wait_ready(child);
    let mut hist = histogram();
    let total = warmup + iters;
    let mut start = Instant::now();
    for n in 0..total {
        if n == warmup {
            start = Instant::now();
        }
        let i = (n + 1) as u32;
        let t0 = Instant::now();
        ping.store(i, Ordering::Release);
        futex_wake(ping);
        loop {
            let v = pong.load(Ordering::Acquire);
            if v == i {
                break;
            }
            futex_wait(pong, v);
        }
        if n >= warmup {
            hist.saturating_record(t0.elapsed().as_nanos() as u64);
            if n % 64 == 0 && budget.is_some_and(|b| start.elapsed() >= b) {
                break;
            }
        }
    }
    meet.stop();
    // A value the child never waits for wakes it to see the stop flag.
    ping.store(u32::MAX, Ordering::Release);
    futex_wake(ping);
    proc::join(child);
    summarize(&hist)
}

/// memcpy bandwidth in one process: `size`-byte copies between two buffers (hot in cache when
/// they fit), in bytes per second, over about `budget`. Messages that cross between processes
/// through memory are copied at least once; this is the rate of that copy.
pub fn memcpy_bandwidth(size: usize, budget: Duration) -> f64 {
    let src: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut dst = vec![0u8; size];
    let batch = ((1 << 20) / size.max(1)).max(1) as u64;
    let mut copies = 0u64;
    let t0 = Instant::now();
    let secs = loop {
        for _ in 0..batch {
            std::hint::black_box(&mut dst).copy_from_slice(std::hint::black_box(&src));
        }
        copies += batch;
        let t = t0.elapsed();
        if t >= budget {
            break t.as_secs_f64();
        }
    };
    std::hint::black_box(&dst);
    copies as f64 * size as f64 / secs
}
