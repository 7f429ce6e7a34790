//! The physical limits that every transport is measured against.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::proc::{self, Rendezvous, SharedAnon};
use crate::stats::{histogram, summarize, Summary};
use crate::throughput::Rate;

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

/// The round-trip limit for `size`-byte messages: a raw two-process ping-pong of an N-byte
/// buffer plus a flag in shared memory, and no ring. The parent copies the message into the
/// ping buffer and raises the flag (Release); the child, spinning on it (Acquire), copies the
/// message out, copies it into the pong buffer and raises its flag; the parent copies the echo
/// out. The same copies and hand-overs a ring's round trip makes, and nothing else.
/// Runs `warmup` unmeasured round trips, then measures for about `budget`.
pub fn raw_round_trip(
    size: usize,
    warmup: u64,
    budget: Duration,
    cpus: [Option<usize>; 2],
) -> Summary {
    let size = size.max(8);
    // Two flags on their own lines, then the two buffers, each 64-byte aligned.
    let buf_len = size.div_ceil(64) * 64;
    let mem = SharedAnon::new(128 + 2 * buf_len);
    let base = mem.as_ptr();
    // SAFETY: the mapping is page aligned, holds the two flag lines and both buffers, and lives
    // until both processes are done (the child is joined before `mem` drops); the flags are
    // only accessed atomically, each buffer only by the side the protocol gives it to.
    let (ping, pong) = unsafe {
        (
            AtomicU64::from_ptr(base.cast()),
            AtomicU64::from_ptr(base.add(64).cast()),
        )
    };
    // SAFETY: inside the mapping (offsets 128 and 128 + buf_len, `buf_len >= size` each).
    let (ping_buf, pong_buf) = unsafe { (base.add(128), base.add(128 + buf_len)) };
    proc::pin(cpus[0]);
    let child = proc::spawn(cpus[1], || {
        let mut local = vec![0u8; size];
        for i in 1.. {
            let got = loop {
                let v = ping.load(Ordering::Acquire);
                if v == i || v == u64::MAX {
                    break v;
                }
                std::hint::spin_loop();
            };
            if got == u64::MAX {
                break; // the parent is done
            }
            // SAFETY: the parent wrote `size` bytes before its Release of `i`; it does not
            // touch the ping buffer again until it has seen our answer.
            unsafe { std::ptr::copy_nonoverlapping(ping_buf, local.as_mut_ptr(), size) };
            // SAFETY: the pong buffer is ours until we raise the flag.
            unsafe { std::ptr::copy_nonoverlapping(local.as_ptr(), pong_buf, size) };
            pong.store(i, Ordering::Release);
        }
    });
    let mut msg = vec![0x5Au8; size];
    let mut echo = vec![0u8; size];
    let mut hist = histogram();
    let mut measuring_since = None;
    for i in 1.. {
        if i > warmup {
            let since = *measuring_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= budget {
                break;
            }
        }
        msg[..8].copy_from_slice(&i.to_le_bytes());
        let t0 = Instant::now();
        // SAFETY: the ping buffer is ours: the child read the last one before it answered.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), ping_buf, size) };
        ping.store(i, Ordering::Release);
        while pong.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        // SAFETY: the child wrote the pong buffer before its Release of `i`.
        unsafe { std::ptr::copy_nonoverlapping(pong_buf, echo.as_mut_ptr(), size) };
        if i > warmup {
            hist.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        assert_eq!(echo[..8], i.to_le_bytes(), "raw ping-pong echo");
    }
    ping.store(u64::MAX, Ordering::Release);
    proc::join(child);
    summarize(&hist)
}

/// The throughput limit for `size`-byte records: a raw two-process stream through a
/// fixed-record ring in shared memory (4 MiB), the best of the simple designs tried (records
/// with a shared tail and head, each side caching the other's index and publishing its own once
/// per 64 records, or per eighth of the ring if that is fewer, or when it must wait). The child copies each stamped record in; the parent
/// copies each out and checks the stamp: the same copies as a ring's `send` and `recv_into`,
/// without headers, validation or wake-ups. Measured over about `budget`.
pub fn raw_stream(size: usize, budget: Duration, cpus: [Option<usize>; 2]) -> Rate {
    let size = size.max(8);
    let slot = size.div_ceil(64) * 64;
    let slots = ((4usize << 20) / slot).max(2).next_power_of_two();
    // Each side publishes its index every `every` records (or when it must wait). Once 64
    // (the old fixed interval) was as many records as the ring holds (64 KiB and up), the
    // producer published only a full ring and the consumer freed only an empty one: the two
    // copies took turns instead of overlapping, so the "limit" fell below what a ring that
    // publishes per message streams. An eighth of the ring keeps both sides busy.
    let every = (slots as u64 / 8).clamp(1, 64);
    let mem = SharedAnon::new(128 + slots * slot);
    let base = mem.as_ptr();
    // SAFETY: as in `raw_round_trip`: the index lines and the records lie in the mapping, which
    // outlives both processes' use of it; indices are atomics, each record is written only by
    // the producer before it publishes past it and read by the consumer before it frees it.
    let (tail, head) = unsafe {
        (
            AtomicU64::from_ptr(base.cast()),
            AtomicU64::from_ptr(base.add(64).cast()),
        )
    };
    let meet = Rendezvous::new();
    // SAFETY: inside the mapping.
    let record = |i: u64| unsafe { base.add(128 + (i as usize & (slots - 1)) * slot) };
    proc::pin(cpus[0]);
    let child = proc::spawn(cpus[1], || {
        meet.set_ready(None);
        meet.wait_go();
        let mut msg = vec![0x3Cu8; size];
        let (mut t, mut cached_head) = (0u64, 0u64);
        while !meet.stopped() {
            if t.wrapping_sub(cached_head) >= slots as u64 {
                tail.store(t, Ordering::Release);
                cached_head = head.load(Ordering::Acquire);
                continue;
            }
            msg[..8].copy_from_slice(&t.to_le_bytes());
            // SAFETY: record `t` is free: the consumer's head is past its previous lap.
            unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), record(t), size) };
            t += 1;
            if t % every == 0 {
                tail.store(t, Ordering::Release);
            }
        }
    });
    meet.wait_ready(child);
    let mut out = vec![0u8; size];
    let (mut h, mut cached_tail) = (0u64, 0u64);
    let t0 = Instant::now();
    meet.go();
    let secs = loop {
        if h == cached_tail {
            head.store(h, Ordering::Release);
            cached_tail = tail.load(Ordering::Acquire);
            if h == cached_tail {
                let t = t0.elapsed();
                if t >= budget {
                    break t.as_secs_f64();
                }
                std::hint::spin_loop();
                continue;
            }
        }
        // SAFETY: record `h` was published (the producer's tail is past it).
        unsafe { std::ptr::copy_nonoverlapping(record(h), out.as_mut_ptr(), size) };
        assert_eq!(out[..8], h.to_le_bytes(), "raw stream record {h}");
        h += 1;
        if h % every == 0 {
            head.store(h, Ordering::Release);
            if h % 4096 == 0 && t0.elapsed() >= budget {
                break t0.elapsed().as_secs_f64();
            }
        }
    };
    meet.stop();
    head.store(u64::MAX / 2, Ordering::Release); // let a producer waiting for room see "stop"
    proc::join(child);
    Rate::new(h, size, secs)
}
