//! A POSIX unnamed semaphore that can live in shared memory (`sem_init` with `pshared = 1`).
//!
//! The alternative to the futex word for [`Wait::Semaphore`](crate::Wait::Semaphore). It differs
//! from a futex in one way that matters to the wait protocol: posts *accumulate*. A post made
//! while nobody sleeps is not lost, it lets the next `sem_wait` return at once. That makes a
//! lost wakeup impossible without a compare (a post between the sleeper's re-check and its
//! `sem_wait` is remembered), and turns stale posts into spurious wakeups, which the protocol
//! already tolerates: a woken side re-checks the ring. See [`super::wait`] for how the number
//! of pending posts is kept small.
//!
//! glibc's process-shared semaphore is a counter and a waiter count in the `sem_t` itself, with
//! shared futex calls: no pointer, nothing allocated, so the `sem_t` works at any address in any
//! process that maps it, and needs no `sem_destroy`. A peer that scribbles over its counter can
//! make waits return early or late, which the protocol's slices and re-checks absorb.
//!
//! # What a hostile peer can still do
//! glibc *aborts the process* (`__libc_fatal`) when a futex call inside `sem_post` or `sem_wait`
//! fails unexpectedly, which a scribbled `private` flag in the `sem_t` causes (found by the
//! `segment_open` fuzz target). Before each call we check that flag holds a value glibc
//! writes and report [`Error::Corrupted`](crate::Error::Corrupted)
//! otherwise; a peer that rewrites it in the instant between our check and glibc's read can
//! still abort us. `Wait::Semaphore` is therefore for peers you trust; with untrusted peers use
//! `Wait::Futex`, whose word the kernel only compares.
//!
//! Under `--cfg shmring_loom` there is no semaphore: the models use the futex path.

#[cfg(not(shmring_loom))]
use std::time::Duration;

/// A process-shared semaphore placed in shared memory (or on the heap).
#[repr(C)]
pub struct Semaphore {
    #[cfg(not(shmring_loom))]
    sem: std::cell::UnsafeCell<libc::sem_t>,
    #[cfg(shmring_loom)]
    _unused: [u64; 4],
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore").finish_non_exhaustive()
    }
}

impl Default for Semaphore {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every access to the `sem_t` goes through the sem_* functions, which are safe to call
// from any number of threads and processes at once (that is their purpose).
unsafe impl Sync for Semaphore {}
// SAFETY: as above; the `sem_t` holds no thread-affine state.
unsafe impl Send for Semaphore {}

#[cfg(not(shmring_loom))]
impl Semaphore {
    /// Zeroed storage, not yet a semaphore: call [`init`](Self::init) at its final address.
    pub fn new() -> Self {
        Semaphore {
            // SAFETY: `sem_t` is a plain C struct (an opaque byte array) for which all-zero
            // bytes are a valid value to hold; it is not used as a semaphore before `init`.
            sem: std::cell::UnsafeCell::new(unsafe { std::mem::zeroed() }),
        }
    }

    fn ptr(&self) -> *mut libc::sem_t {
        self.sem.get()
    }

    /// Makes the storage a process-shared semaphore with value 0.
    ///
    /// # Safety
    /// Called once, before any other process or thread uses the semaphore, at the address where
    /// it stays (a semaphore must not be moved once initialised).
    pub unsafe fn init(&self) -> crate::Result<()> {
        // SAFETY: `ptr` is valid and aligned (borrowed); the contract rules out concurrent use.
        if unsafe { libc::sem_init(self.ptr(), 1, 0) } != 0 {
            return Err(crate::Error::last_os("sem_init(pshared = 1)"));
        }
        Ok(())
    }

    /// False if the `sem_t`'s futex flag is not one glibc writes (glibc keeps it as an `int`
    /// after the 64-bit counter: 128 for a shared semaphore, 0 for a private one): calling into
    /// glibc with any other value would abort the process. Other C libraries are not checked.
    fn intact(&self) -> bool {
        #[cfg(all(target_env = "gnu", target_pointer_width = "64"))]
        {
            // SAFETY: the `sem_t` is 32 bytes and 8-aligned, so bytes 8..12 are inside it and
            // 4-aligned; the word is read atomically because a peer may be writing it.
            let private =
                unsafe { std::sync::atomic::AtomicU32::from_ptr(self.ptr().cast::<u32>().add(2)) }
                    .load(std::sync::atomic::Ordering::Relaxed);
            private == 0 || private == 128
        }
        #[cfg(not(all(target_env = "gnu", target_pointer_width = "64")))]
        true
    }

    /// Adds one to the value, waking one sleeper if any. Does nothing if the semaphore was
    /// overwritten (see the module docs); the sleeper then finds out itself.
    pub fn post(&self) {
        if !self.intact() {
            return;
        }
        // SAFETY: the semaphore was initialised (Event's contract); sem_post is async-signal-
        // and thread-safe. EOVERFLOW (value at SEM_VALUE_MAX) only means enough posts are
        // pending already.
        unsafe { libc::sem_post(self.ptr()) };
    }

    /// The current value (pending posts), 0 if it cannot be read.
    pub fn value(&self) -> i32 {
        let mut v: libc::c_int = 0;
        // SAFETY: as in `post`; sem_getvalue writes only `v`.
        unsafe { libc::sem_getvalue(self.ptr(), &mut v) };
        v
    }

    /// Takes one post, sleeping at most `timeout` for it (for ever if `None`). Returns early on
    /// a signal; callers re-check their condition after every return. `Err(Corrupted)` if the
    /// semaphore was overwritten (see the module docs).
    pub fn wait(&self, timeout: Option<Duration>) -> crate::Result<()> {
        if !self.intact() {
            return Err(crate::Error::Corrupted(
                "the semaphore in the segment was overwritten",
            ));
        }
        match timeout {
            None => {
                // SAFETY: as in `post`. EINTR means "re-check", which callers do.
                unsafe { libc::sem_wait(self.ptr()) };
            }
            Some(d) => {
                // sem_timedwait takes an absolute CLOCK_REALTIME time; a clock jump can only
                // lengthen or shorten one slice, and slices are short.
                // SAFETY: `timespec` is plain data; clock_gettime writes it.
                let mut now: libc::timespec = unsafe { std::mem::zeroed() };
                // SAFETY: `now` is a valid timespec on this stack frame.
                unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
                let total = now.tv_nsec as u64 + u64::from(d.subsec_nanos());
                let secs = (now.tv_sec as u64)
                    .saturating_add(d.as_secs())
                    .saturating_add(total / 1_000_000_000);
                let abs = libc::timespec {
                    tv_sec: secs.min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: (total % 1_000_000_000) as libc::c_long,
                };
                // SAFETY: as in `post`; `abs` is a valid timespec on this stack frame.
                // ETIMEDOUT and EINTR both mean "re-check".
                unsafe { libc::sem_timedwait(self.ptr(), &abs) };
            }
        }
        Ok(())
    }
}

#[cfg(shmring_loom)]
impl Semaphore {
    /// Placeholder storage (no semaphores under loom).
    pub fn new() -> Self {
        Semaphore { _unused: [0; 4] }
    }

    /// Nothing to do under loom.
    ///
    /// # Safety
    /// None needed; `unsafe` only to match the real signature.
    pub unsafe fn init(&self) -> crate::Result<()> {
        Ok(())
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn posts_accumulate_and_wait_times_out() {
        let s = Box::new(Semaphore::new());
        // SAFETY: fresh, boxed (it stays put), not shared yet.
        unsafe { s.init() }.unwrap();
        s.post();
        s.post();
        assert_eq!(s.value(), 2);
        s.wait(Some(Duration::from_millis(1))).unwrap();
        s.wait(None).unwrap();
        assert_eq!(s.value(), 0);
        let t = Instant::now();
        s.wait(Some(Duration::from_millis(20))).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(15));
    }

    /// A scribbled process-shared flag is reported, not handed to glibc (which would abort).
    #[cfg(all(target_env = "gnu", target_pointer_width = "64"))]
    #[test]
    fn an_overwritten_semaphore_is_corrupted_not_an_abort() {
        let s = Box::new(Semaphore::new());
        // SAFETY: fresh, boxed (it stays put), not shared yet.
        unsafe { s.init() }.unwrap();
        // SAFETY: bytes 8..12 of the 32-byte sem_t, written as a hostile peer would.
        unsafe { s.ptr().cast::<u32>().add(2).write(0xFFFF_FFFF) };
        s.post(); // skipped, not an abort
        assert!(matches!(
            s.wait(Some(Duration::from_millis(1))),
            Err(crate::Error::Corrupted(_))
        ));
    }
}
