//! Synchronisation: the atomics shim, and the ways a side waits for the other.
//!
//! # The shim
//! The ring algorithms in [`crate::ring`] and the wait/wake protocol in [`wait`] name their
//! atomics through this module only. A normal build gets `std`'s atomics; a build with
//! `RUSTFLAGS="--cfg shmring_loom"` gets loom's, so the `loom-tests` crate model-checks the very
//! code that runs in production, not a copy of it. (A cfg set only for a separate test crate
//! would never reach this crate, hence the crate-prefixed cfg, as tokio and crossbeam do.)
//!
//! Under loom the rings live on the heap: loom's atomics are not plain words and cannot be placed
//! in a shared-memory segment. The production build places the same `#[repr(C)]` control blocks
//! in the segment, where `std`'s atomics have exactly the layout of the integers they wrap.

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

pub mod futex;
pub mod semaphore;
pub mod wait;

pub use wait::Wait;
