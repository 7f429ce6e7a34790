//! A futex word that can live in shared memory.
//!
//! The word is waited on and woken with the *shared* (not `FUTEX_PRIVATE_FLAG`) futex
//! operations, so the kernel keys it by the physical page and two processes that map the same
//! segment at different addresses meet on it.
//!
//! Under `--cfg shmring_loom` the kernel is replaced by a model with the futex's one essential
//! property: the compare of the word and the going to sleep are atomic with respect to a wake.
//! A lost wakeup in the protocol built on top then shows up as a loom deadlock.

use std::time::Duration;

use crate::sync::atomic::AtomicU32;
#[cfg(shmring_loom)]
use crate::sync::atomic::Ordering;

/// A 32-bit word to sleep on until another thread or process changes it and calls [`Futex::wake`].
#[repr(C)]
#[derive(Debug)]
pub struct Futex {
    word: AtomicU32,
    #[cfg(shmring_loom)]
    model: Model,
}

impl Default for Futex {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Futex {
    /// A futex word holding `value`, for heap-allocated (in-process or model) rings.
    pub fn new(value: u32) -> Self {
        Futex {
            word: AtomicU32::new(value),
            #[cfg(shmring_loom)]
            model: Model::default(),
        }
    }

    /// The word itself, for the protocol that changes it before waking.
    pub fn word(&self) -> &AtomicU32 {
        &self.word
    }
}

#[cfg(not(shmring_loom))]
impl Futex {
    /// Sleeps while the word equals `expected`, at most `timeout` (forever if `None`).
    ///
    /// Returns at once if the word differs; may also return spuriously. Callers re-check their
    /// condition after every return.
    pub fn wait(&self, expected: u32, timeout: Option<Duration>) {
        let ts = timeout.map(crate::sync::timespec);
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // FUTEX_WAIT's errors (EAGAIN: the word changed, EINTR, ETIMEDOUT) all mean "re-check",
        // which every caller does.
        // SAFETY: `self.word` is a live, 4-byte aligned u32 for the call (borrowed); `ts_ptr` is
        // null or points at a timespec on this stack frame; FUTEX_WAIT only reads both.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }

    /// Wakes up to `count` sleepers on this word, in any process that maps it.
    pub fn wake(&self, count: u32) {
        let count = count.min(i32::MAX as u32) as i32;
        // SAFETY: the word is live and aligned (borrowed); FUTEX_WAKE does not access memory
        // through the pointer, it only uses it as the key of the wait queue.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.word.as_ptr(),
                libc::FUTEX_WAKE,
                count,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }
}

/// The futex model used under loom: a mutex makes "compare then sleep" atomic against "wake".
#[cfg(shmring_loom)]
#[derive(Debug, Default)]
struct Model {
    lock: loom::sync::Mutex<()>,
    cond: loom::sync::Condvar,
}

#[cfg(shmring_loom)]
impl Futex {
    /// Model of FUTEX_WAIT. The timeout is ignored: loom has no time, and a sleeper that
    /// is never woken must show up as a deadlock rather than be rescued by a timer.
    pub fn wait(&self, expected: u32, _timeout: Option<Duration>) {
        let guard = self.model.lock.lock().unwrap();
        if self.word.load(Ordering::SeqCst) == expected {
            drop(self.model.cond.wait(guard).unwrap());
        }
    }

    /// Model of FUTEX_WAKE: wakes one sleeper for a count of 1 (so that a protocol relying on
    /// a wake reaching the *right* sleeper deadlocks in the model), every sleeper otherwise.
    pub fn wake(&self, count: u32) {
        let _guard = self.model.lock.lock().unwrap();
        if count == 1 {
            self.model.cond.notify_one();
        } else {
            self.model.cond.notify_all();
        }
    }
}
