//! The lock-free ring algorithms. No system call in here: the rings work over any memory that
//! outlives them (a shared-memory segment in production, the heap in unit and loom tests).
//!
//! * [`spsc`]: one producer, one consumer, variable-length contiguous messages.
//! * [`mpmc`]: any number of producers and consumers, fixed-size slots with sequence stamps.

pub mod layout;
pub mod mpmc;
pub mod spsc;
