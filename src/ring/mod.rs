//! The lock-free ring algorithms. No system call in here: the rings work over any memory that
//! outlives them (a shared-memory segment in production, the heap in unit and loom tests).
//!
//! * [`spsc`]: one producer, one consumer, variable-length contiguous messages.
//! * [`mpmc`]: any number of producers and consumers, fixed-size slots with sequence stamps.
//! * [`broadcast`]: one producer, many consumers that each read every message; fixed-size
//!   slots with per-slot sequence-lock stamps and one cursor per consumer.

pub mod broadcast;
pub mod layout;
pub mod mpmc;
pub mod spsc;

/// Under loom: model cells standing for a ring's payload bytes, which stay plain memory. A ring
/// touches cell `i` for writing while its producer owns the bytes `i` stands for, and for
/// reading while its consumer does; loom's causality checker fails the model if an access is
/// not ordered after every access of the other kind before it (a weakened Release or Acquire).
#[cfg(shmring_loom)]
#[derive(Debug)]
pub(crate) struct LoomPayload(Vec<loom::cell::UnsafeCell<()>>);

// SAFETY: the cells hold `()` and are reached only through loom's `with` / `with_mut`, which
// check each access against the model's happens-before relation (and fail the model on a race)
// rather than touch memory: sharing them between the model's threads is their purpose.
#[cfg(shmring_loom)]
unsafe impl Sync for LoomPayload {}

#[cfg(shmring_loom)]
impl LoomPayload {
    pub(crate) fn new(cells: u64) -> Self {
        LoomPayload(
            (0..cells)
                .map(|_| loom::cell::UnsafeCell::new(()))
                .collect(),
        )
    }

    /// Records a write (`write`) or a read of the bytes cell `i` stands for.
    pub(crate) fn touch(&self, i: u64, write: bool) {
        let cell = &self.0[i as usize];
        if write {
            cell.with_mut(|_| ());
        } else {
            cell.with(|_| ());
        }
    }
}
