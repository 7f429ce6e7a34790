//! The lock-free ring algorithms. No system call in here: the rings work over any memory that
//! outlives them (a shared-memory segment in production, the heap in unit and loom tests).
//!
//! * [`spsc`]: one producer, one consumer, variable-length contiguous messages.

pub mod layout;
pub mod spsc;
