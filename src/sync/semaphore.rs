//! The semaphores of [`Wait::Semaphore`](crate::Wait::Semaphore): a System V semaphore set held
//! by the kernel, not a `sem_t` in the segment.
//!
//! # Why System V, not a POSIX `sem_t`
//! A process-shared POSIX semaphore lives in the shared memory itself, where any peer can
//! scribble it; glibc then *aborts the process* (`__libc_fatal`) when a futex call inside
//! `sem_post`/`sem_wait` fails unexpectedly, and no check of ours can close the window between
//! our check and glibc's read (issue 13, point 9). A System V set lives in the kernel: the
//! segment holds only its id and creation time ([`SemRecord`]), every operation is a system
//! call on that id, and the worst a hostile peer can do is make an operation fail (an error,
//! never an abort) or post spuriously (a spurious wakeup, which the protocol absorbs).
//!
//! # The set
//! One set per segment, made by the creator with `IPC_PRIVATE` and the segment's permission
//! bits, three semaphores: 0 and 1 are the two events (readable, writable), 2 counts the
//! handles using the set, each adding 1 with `SEM_UNDO` so that the kernel takes a killed
//! handle's 1 back. It is visible to `ipcs -s` (key 0, owner the segment's creator).
//!
//! An opener reads id and creation time from the segment once, checks them with `IPC_STAT`
//! (private key, three semaphores, created by the owner of the segment file, at the recorded
//! time), and from then on uses the id it holds, not the segment's copy: a peer that rewrites
//! the record later changes nothing for us. A forged record can at most point us at another
//! set of the same owner created in the same second: spurious or missing wakeups, which the
//! wait slices bound; never a crash.
//!
//! # Lifetime
//! The set is removed (`IPC_RMID`) by the last handle to leave a segment that nobody can open
//! any more (an anonymous segment, or a named one whose name is gone or about to go), and by
//! [`crate::inspect::remove`] (`shmring rm`, `shmring gc`) when no handle uses it. A set whose
//! last user was killed after the name had already been removed stays behind (`ipcrm -s ID`).
//! A handle whose set was removed under it gets an `Io` error from its next sleep.
//!
//! Posts accumulate where futex wakes do not; see [`super::wait`] for how the wait protocol
//! keeps them few and why that is safe. Under `--cfg shmring_loom` there is no semaphore: the
//! models use the futex path.

#[cfg(not(shmring_loom))]
use std::sync::atomic::Ordering;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Where the creator records the set in the segment (inside each [`Event`](super::wait::Event)).
/// Plain data a peer may rewrite: read once, validated, never trusted afterwards.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SemRecord {
    /// The set's id (`semget`'s result).
    pub(crate) id: AtomicU32,
    /// Which semaphore of the set is this event's (informational: each handle uses its own
    /// knowledge of which event it sleeps on).
    num: AtomicU32,
    /// The set's `sem_ctime` at creation (seconds since the epoch).
    pub(crate) ctime: AtomicU64,
    reserved: [AtomicU64; 2],
}

#[cfg(not(shmring_loom))]
pub use real::*;

/// No semaphore sets under loom: the models use the futex.
#[cfg(shmring_loom)]
#[derive(Debug)]
pub struct SemSet;

#[cfg(shmring_loom)]
impl SemSet {
    /// Nothing to record under loom.
    pub fn record(&self, _: &SemRecord, _: u16) -> crate::Result<()> {
        Ok(())
    }
}

#[cfg(not(shmring_loom))]
mod real {
    use super::*;
    use crate::error::{Error, Result};
    use std::time::Duration;

    /// Semaphores per set: the two events and the user count.
    const NSEMS: libc::c_int = 3;
    /// The user count's index.
    const USERS: u16 = 2;

    /// A validated set this handle uses (counted in its user semaphore). Process-local.
    #[derive(Debug)]
    pub struct SemSet {
        id: libc::c_int,
    }

    /// One semaphore of a [`SemSet`]: what a sleeper and a notifier use.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SemSlot {
        id: libc::c_int,
        num: u16,
    }

    fn stat(id: libc::c_int) -> std::io::Result<libc::semid_ds> {
        // SAFETY: `semid_ds` is plain C data for which zero bytes are valid.
        let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: IPC_STAT writes one `semid_ds` through the pointer (the `union semun` is
        // passed as its `buf` member, a pointer), which lives on this stack frame.
        let rc = unsafe { libc::semctl(id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(ds)
    }

    fn op(id: libc::c_int, num: u16, delta: i16, flags: libc::c_int) -> std::io::Result<()> {
        let mut b = libc::sembuf {
            sem_num: num,
            sem_op: delta,
            sem_flg: flags as libc::c_short,
        };
        // SAFETY: one `sembuf` on this stack frame; semop only reads it.
        if unsafe { libc::semop(id, &mut b, 1) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    impl SemSet {
        /// Makes a fresh set with permission bits `mode` (the segment's) and joins it.
        pub fn create(mode: u32) -> Result<SemSet> {
            let perms = (mode & 0o666) as libc::c_int | 0o600;
            // SAFETY: plain system call with integer arguments.
            let id = unsafe {
                libc::semget(
                    libc::IPC_PRIVATE,
                    NSEMS,
                    libc::IPC_CREAT | libc::IPC_EXCL | perms,
                )
            };
            if id < 0 {
                return Err(Error::last_os("semget(IPC_PRIVATE) for Wait::Semaphore"));
            }
            let set = SemSet { id };
            if let Err(e) = op(id, USERS, 1, libc::SEM_UNDO) {
                set.remove();
                return Err(Error::io("semop (join) on a new semaphore set", e));
            }
            Ok(set)
        }

        /// Writes this set into `rec` (creator, before publishing the segment).
        pub fn record(&self, rec: &SemRecord, num: u16) -> Result<()> {
            let ds = stat(self.id).map_err(|e| Error::io("semctl(IPC_STAT)", e))?;
            rec.id.store(self.id as u32, Ordering::Relaxed);
            rec.num.store(u32::from(num), Ordering::Relaxed);
            rec.ctime.store(ds.sem_ctime as u64, Ordering::Relaxed);
            Ok(())
        }

        /// The set `rec` names, checked against the kernel (module docs), and joined.
        /// `owner`: the uid that owns the segment file.
        pub fn attach(rec: &SemRecord, owner: u32) -> Result<SemSet> {
            let id = rec.id.load(Ordering::Relaxed) as libc::c_int;
            let ctime = rec.ctime.load(Ordering::Relaxed);
            let id = check(id, ctime, owner)?;
            op(id, USERS, 1, libc::SEM_UNDO).map_err(|e| {
                Error::io(
                    format!("semop (join) on the segment's semaphore set {id}"),
                    e,
                )
            })?;
            Ok(SemSet { id })
        }

        /// Semaphore `num` (0 or 1: the events) of this set.
        pub fn slot(&self, num: u16) -> SemSlot {
            SemSlot { id: self.id, num }
        }

        /// The set's id, as `ipcs -s` shows it.
        #[cfg(test)]
        pub fn id(&self) -> i32 {
            self.id
        }

        /// Stops using the set; if `last_chance` (nobody can open the segment any more) and no
        /// handle uses it now, removes it.
        pub fn leave(self, last_chance: bool) {
            let _ = op(self.id, USERS, -1, libc::SEM_UNDO | libc::IPC_NOWAIT);
            if last_chance && users(self.id) == Some(0) {
                self.remove();
            }
        }

        fn remove(&self) {
            // SAFETY: plain system call; a set already gone gives EINVAL/EIDRM, ignored.
            unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) };
        }
    }

    /// How many handles use set `id` (None if it cannot be read).
    fn users(id: libc::c_int) -> Option<i32> {
        // SAFETY: plain system call; GETVAL takes no fourth argument.
        let v = unsafe { libc::semctl(id, libc::c_int::from(USERS), libc::GETVAL) };
        (v >= 0).then_some(v)
    }

    /// Checks that `id` is a set as a shmring creator makes it (module docs).
    fn check(id: libc::c_int, ctime: u64, owner: u32) -> Result<libc::c_int> {
        let bad = |why: &str| {
            Error::Incompatible(format!(
                "the segment names semaphore set {id}, which {why}: not the set its creator made"
            ))
        };
        if id < 0 {
            return Err(bad("is not a valid id"));
        }
        let ds = stat(id).map_err(|_| bad("does not exist or cannot be read"))?;
        if ds.sem_perm.__key != libc::IPC_PRIVATE
            || ds.sem_nsems != NSEMS as _
            || ds.sem_perm.cuid != owner
            || ds.sem_ctime as u64 != ctime
        {
            return Err(bad(
                "has another key, size, creator or creation time than recorded",
            ));
        }
        Ok(id)
    }

    /// Removes the set `rec` names if it checks out (module docs) and no handle uses it.
    /// True if it was removed. For `shmring rm` / `gc`, after the name is gone.
    #[cfg(test)]
    pub fn remove_unused(rec: &SemRecord, owner: u32) -> bool {
        remove_unused_id(
            rec.id.load(Ordering::Relaxed),
            rec.ctime.load(Ordering::Relaxed),
            owner,
        )
    }

    /// [`remove_unused`] for a record read out of a file: `id` and `ctime` as recorded.
    pub fn remove_unused_id(id: u32, ctime: u64, owner: u32) -> bool {
        match check(id as libc::c_int, ctime, owner) {
            Ok(id) if users(id) == Some(0) => {
                // SAFETY: plain system call on a checked id.
                unsafe { libc::semctl(id, 0, libc::IPC_RMID) == 0 }
            }
            _ => false,
        }
    }

    impl SemSlot {
        /// Adds one to the value, waking one sleeper if any. Failures (the value at its
        /// maximum, or the set removed) only mean that no wake is needed or possible.
        pub fn post(self) {
            let _ = op(self.id, self.num, 1, libc::IPC_NOWAIT);
        }

        /// The current value (pending posts), 0 if it cannot be read.
        pub fn value(self) -> i32 {
            // SAFETY: plain system call; GETVAL takes no fourth argument.
            let v = unsafe { libc::semctl(self.id, libc::c_int::from(self.num), libc::GETVAL) };
            v.max(0)
        }

        /// Takes one post, sleeping at most `timeout` for it (for ever if `None`). Returns
        /// early on a signal; callers re-check their condition after every return. `Err` if
        /// the set was removed or is no longer ours to use.
        pub fn wait(self, timeout: Option<Duration>) -> Result<()> {
            let ts = timeout.map(crate::sync::timespec);
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            let mut b = libc::sembuf {
                sem_num: self.num,
                sem_op: -1,
                sem_flg: 0,
            };
            // SAFETY: one `sembuf` and an optional relative timespec, both on this stack
            // frame; semtimedop only reads them.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_semtimedop,
                    self.id,
                    &mut b as *mut libc::sembuf,
                    1usize,
                    ts_ptr,
                )
            };
            if rc == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                // Timed out, interrupted: "re-check".
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(()),
                _ => Err(Error::io(
                    format!("semtimedop on semaphore set {} (removed?)", self.id),
                    e,
                )),
            }
        }
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn uid() -> u32 {
        // SAFETY: getuid cannot fail.
        unsafe { libc::getuid() }
    }

    #[test]
    fn posts_accumulate_and_wait_times_out() {
        let set = SemSet::create(0o600).unwrap();
        let s = set.slot(0);
        s.post();
        s.post();
        assert_eq!(s.value(), 2);
        assert_eq!(set.slot(1).value(), 0);
        s.wait(Some(Duration::from_millis(1))).unwrap();
        s.wait(None).unwrap();
        assert_eq!(s.value(), 0);
        let t = Instant::now();
        s.wait(Some(Duration::from_millis(20))).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(15));
        s.post();
        s.wait(Some(Duration::MAX)).unwrap(); // no overflow
        set.leave(true);
    }

    #[test]
    fn a_record_is_checked_and_a_forged_one_refused() {
        let set = SemSet::create(0o600).unwrap();
        let rec = SemRecord::default();
        set.record(&rec, 0).unwrap();
        let other = SemSet::attach(&rec, uid()).unwrap();
        assert_eq!(other.id(), set.id());
        // Wrong creation time, wrong owner, nonsense id: refused, not used.
        rec.ctime.fetch_add(1, Ordering::Relaxed);
        assert!(SemSet::attach(&rec, uid()).is_err());
        rec.ctime.fetch_sub(1, Ordering::Relaxed);
        assert!(SemSet::attach(&rec, uid().wrapping_add(1)).is_err());
        let forged = SemRecord::default();
        forged.id.store(u32::MAX, Ordering::Relaxed);
        assert!(SemSet::attach(&forged, uid()).is_err());
        // Still used by `other`: not removed.
        set.leave(true);
        assert!(!remove_unused(&rec, uid()));
        other.leave(false);
        assert!(remove_unused(&rec, uid()));
        assert!(SemSet::attach(&rec, uid()).is_err());
    }

    /// Removed under a sleeper: an error, not an abort or a hang.
    #[test]
    fn a_removed_set_is_an_error() {
        let set = SemSet::create(0o600).unwrap();
        let s = set.slot(1);
        // SAFETY: plain system call.
        unsafe { libc::semctl(set.id(), 0, libc::IPC_RMID) };
        assert!(s.wait(Some(Duration::from_millis(1))).is_err());
        s.post();
        set.leave(true);
    }
}
