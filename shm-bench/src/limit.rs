//! The physical limits that every transport is measured against.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::proc::{self, SharedAnon};
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
