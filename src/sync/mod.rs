//! Synchronisation: the atomics shim, and the ways a side waits for the other.
//!
//! # The shim
//! The ring algorithms in [`crate::ring`] and the wait/wake protocol in [`wait`] name their
//! atomics through this module only. A normal build gets `std`'s atomics; a build with
//! `RUSTFLAGS="--cfg shmring_loom"` gets loom's. The `loom-tests` crate reaches the crate only
//! through its loom entry module (`crate::loom`, which exists under that cfg alone) and drives
//! the production channel halves with it: the ring code, the generic half and the wait
//! protocol that run in production, not a copy. (A cfg set only for a separate test crate
//! would never reach this crate, hence the crate-prefixed cfg, as tokio and crossbeam do.)
//!
//! Under loom the segment is heap memory with the same layout (`shm::site`): loom's atomics are
//! not plain words and cannot be shared with another process. What production keeps in ring
//! memory as plain words accessed atomically (SPSC frame headers, MPMC length words) is kept
//! under loom as loom atomics in the control block, one per word, so the model checker sees
//! every control word as the atomic it is. Payload bytes stay plain memory in both builds,
//! but under loom each ring also keeps one `loom::cell::UnsafeCell<()>` per SPSC data word or
//! MPMC slot, which the ring touches (`touch_payload`) for writing while the producer owns those
//! bytes and for reading while the consumer does: loom's causality checker then reports a
//! payload access the protocol does not order (a weakened Release or Acquire), and the models
//! check the bytes by value besides.

/// The atomics the rings and the wait protocol use: `std`'s, or loom's under `shmring_loom`.
#[cfg(not(shmring_loom))]
pub mod atomic {
    pub use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
}

/// The atomics the rings and the wait protocol use: `std`'s, or loom's under `shmring_loom`.
#[cfg(shmring_loom)]
pub mod atomic {
    pub use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
}

/// Spin-loop hint and thread yield, from loom in models so a spinning thread lets others run.
pub(crate) mod hint {
    #[cfg(not(shmring_loom))]
    pub use std::hint::spin_loop;
    #[cfg(not(shmring_loom))]
    pub use std::thread::yield_now;

    #[cfg(shmring_loom)]
    pub use loom::hint::spin_loop;
    #[cfg(shmring_loom)]
    pub use loom::thread::yield_now;
}

/// `d` as the `timespec` a timed kernel wait takes (`FUTEX_WAIT`, `semtimedop`); seconds
/// beyond `time_t` saturate, which is "for ever" in practice.
#[cfg(not(shmring_loom))]
pub(crate) fn timespec(d: std::time::Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

pub(crate) mod barrier;
pub(crate) mod doorbell;
pub mod futex;
pub mod semaphore;
pub mod wait;

pub use wait::Wait;
