//! The OS memory: named POSIX shared-memory segments (`shm_open`), mapped with memmap2.
//!
//! A segment is a file in `/dev/shm` that starts with a [`Header`]. [`Segment::create`] makes the
//! file with `O_CREAT | O_EXCL`, sizes it, reserves its pages with `posix_fallocate` (so a full
//! `/dev/shm` is an error now, not a SIGBUS on first touch), maps it and writes the header's
//! identity fields; the caller then lays out its ring and calls [`Segment::publish`], which
//! stores `init` last, with Release. [`Segment::open`] checks the file's size with `fstat` before
//! it maps anything, waits a bounded time for `init`, and validates every header field.
//!
//! # Liveness
//! A pid says little: pids are reused and differ across pid namespaces. Each side proves it is
//! alive by holding an open-file-description lock (`F_OFD_SETLK`) on its own byte of the segment
//! file; the kernel drops it when the process dies, however it dies. The other side asks with
//! `F_OFD_GETLK`. The same lock makes a side exclusive: a second live sender cannot take it.
//!
//! ## Across `fork`
//! An OFD lock belongs to the open file description, and `fork` shares every description with
//! the child: a child that outlives its parent would keep the parent's lock, and the peer would
//! see the dead parent alive until the child exits (issue 13: 1.98 s for a child that slept
//! 2 s). So the lock is not taken on the segment's descriptor but on a *lock descriptor* of
//! its own: a second open file description of the same file (reopened through
//! `/proc/self/fd`, checked to be the same inode), registered in a process-wide list. A
//! `pthread_atfork` child handler replaces every registered lock descriptor in the child with
//! `/dev/null` (`dup3`, so the number stays valid for the child's copy of the handle to close
//! later). The child then holds no reference to the lock's description; when the parent dies
//! the last reference goes and the kernel drops the lock at once. The parent keeps its lock
//! (the description is still referenced by the parent's descriptor).
//!
//! Alternatives weighed: classic POSIX record locks (`F_SETLK`) are not inherited by `fork`,
//! but they belong to the process, not the handle: two handles of one process do not exclude
//! each other, `F_GETLK` cannot see the process's own locks (so two halves in one process would
//! think each other dead), and closing *any* descriptor of the file (an `inspect` in the same
//! process) silently drops them all. `flock` locks belong to the description like OFD locks and
//! have the same inheritance problem. A handler that only closed the child's descriptor would
//! leave the handle's `OwnedFd` closing a number that may by then be reused, hence the `dup3`.
//!
//! What a forked child's copy of a handle is: not a participant. It holds no lock; its
//! liveness queries see no peer of its own; using it would race the parent's handle on the
//! same place. A child that needs the channel opens a handle of its own (the segment's
//! descriptor, [`Segment::fd`], stays usable in the child), and exits with `_exit` or `exec`
//! rather than dropping the parent's handles. A raw `clone`/`vfork` without the atfork
//! handlers keeps the old behaviour (the lock descriptor is `O_CLOEXEC`, so an `exec` drops
//! it). Without `/proc` (no reopen) the lock falls back to a duplicate of the segment's
//! descriptor, which a child does inherit.

pub mod fd_passing;
mod fork_guard;
mod header;
mod name;

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use memmap2::{MmapOptions, MmapRaw};
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{fstat, Mode};

pub(crate) use header::{
    Header, FLAG_MEMBARRIER, INIT_DONE, KNOWN_FLAGS, MAGIC, RECEIVER, SENDER, VERSION,
};
pub use header::{HeaderSnapshot, RingKind, HEADER_LEN};
pub(crate) use name::normalize_name;
pub use name::MAX_NAME_LEN;

use crate::error::{Error, Result};
use crate::trust::{FileKind, Trust};

/// What the creator records in a new segment's header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Identity {
    /// The ring in the segment.
    pub ring_kind: RingKind,
    /// The raw [`crate::Wait`] strategy.
    pub wait: u32,
    /// Ring data bytes (SPSC) or slots (MPMC).
    pub capacity: u64,
    /// Bytes per slot (MPMC), 0 for SPSC.
    pub slot_size: u64,
    /// Offset of the ring data.
    pub data_offset: u64,
    /// Length of the whole segment.
    pub total_len: u64,
    /// Header flags ([`FLAG_MEMBARRIER`]).
    pub flags: u32,
}

/// A mapped shmring segment.
#[derive(Debug)]
pub struct Segment {
    name: String,
    file: File,
    map: MmapRaw,
    len: usize,
    unlink_on_drop: bool,
    /// The descriptor the liveness locks are taken on (module docs, "Across `fork`"), made by
    /// the first `lock_side`.
    lock_fd: OnceLock<OwnedFd>,
}

/// Byte of the segment file that participant `i` locks to prove it is alive. SPSC uses 0 for
/// the sender and 1 for the receiver; MPMC numbers its senders from 0 and its receivers after
/// them. Any offset works for a lock (it need not be inside the file); these bytes are not used
/// for anything else.
fn lock_byte(side: usize) -> i64 {
    1024 + side as i64
}

/// Offset of the ring's control block in a segment (SPSC and MPMC alike): right after the
/// header. The channel halves place the control block here and `inspect` reads it here.
#[cfg_attr(shmring_loom, allow(dead_code))] // read by `inspect`, which loom builds leave out
pub(crate) const CONTROL_OFFSET: usize = HEADER_LEN;

/// True if an open file description other than the one behind `fd` holds participant `side`'s
/// liveness lock (see `lock_byte`). The one liveness probe: the channel halves ask it through
/// [`Segment::side_alive`], `inspect` on a read-only descriptor of its own. Never blocks.
pub(crate) fn side_locked(fd: BorrowedFd<'_>, side: usize) -> std::io::Result<bool> {
    let mut fl = flock(libc::F_WRLCK as libc::c_short, lock_byte(side));
    // SAFETY: `fd` is open for the duration of the borrow; F_OFD_GETLK only writes into `fl`,
    // a valid flock on this stack. A query needs no write access to the file.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

impl Segment {
    /// Creates a new segment of `len` bytes (`len >= HEADER_LEN`) and writes its identity.
    /// The caller lays out its ring, then calls [`publish`](Self::publish).
    ///
    /// Fails with an `Io` error of kind `AlreadyExists` if the name is taken.
    pub(crate) fn create(name: &str, id: &Identity, mode: u32) -> Result<Segment> {
        let name = normalize_name(name)?;
        let len = segment_len(id)?;
        let fd = shm_open(
            name.as_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| {
            let mut err = Error::io(format!("shm_open(O_CREAT|O_EXCL) {name}"), e);
            if let Error::Io { context, .. } = &mut err {
                if e == nix::Error::EEXIST {
                    context.push_str(
                        " (a segment of that name exists: open it, or remove it with `shmring rm`)",
                    );
                }
            }
            err
        })?;
        // From here on a failure must not leave a half-made name behind.
        let made = (|| {
            let file = size_and_reserve(fd, len, &name)?;
            let map = map(&file, len, &name)?;
            Ok((file, map))
        })();
        let (file, map) = match made {
            Ok(v) => v,
            Err(e) => {
                let _ = shm_unlink(name.as_str());
                return Err(e);
            }
        };
        let seg = Segment {
            name,
            file,
            map,
            len,
            unlink_on_drop: true,
            lock_fd: OnceLock::new(),
        };
        seg.write_identity(id);
        Ok(seg)
    }

    /// Creates an anonymous segment: a memfd with no name in /dev/shm, sealed against
    /// shrinking and growing (`F_SEAL_SHRINK | F_SEAL_GROW`) so that no holder of the descriptor
    /// can truncate it under another's mapping (no SIGBUS). Share it by passing
    /// [`fd`](Self::fd) over a Unix socket ([`fd_passing::send_fd`]); the other side opens it with
    /// [`from_fd`](Self::from_fd). It disappears when the last descriptor and mapping go.
    pub(crate) fn create_anonymous(label: &str, id: &Identity) -> Result<Segment> {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
        let len = segment_len(id)?;
        let cname =
            std::ffi::CString::new(format!("shmring:{label}")).map_err(|_| Error::InvalidName {
                name: label.to_owned(),
                reason: "the label contains a NUL byte",
            })?;
        let name = format!("memfd:{label}");
        let fd = memfd_create(
            &cname,
            MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
        )
        .map_err(|e| Error::io(format!("memfd_create {name}"), e))?;
        let file = size_and_reserve(fd, len, &name)?;
        fcntl(
            file.as_raw_fd(),
            FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW),
        )
        .map_err(|e| Error::io(format!("F_ADD_SEALS on {name}"), e))?;
        let map = map(&file, len, &name)?;
        let seg = Segment {
            name,
            file,
            map,
            len,
            unlink_on_drop: false,
            lock_fd: OnceLock::new(),
        };
        seg.write_identity(id);
        Ok(seg)
    }

    /// Opens a segment from a descriptor received from another process (see
    /// [`create_anonymous`](Self::create_anonymous)). The descriptor must be a memfd sealed
    /// against shrinking: a file that its sender could truncate would crash this process with
    /// SIGBUS on the next access, so it is refused.
    ///
    /// No ownership check: a descriptor is trusted as far as the process that handed it over
    /// is (check that one, e.g. with the peer credentials of the socket it came through).
    pub(crate) fn from_fd(fd: OwnedFd, timeout: Duration) -> Result<Segment> {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        let name = format!("descriptor {}", fd.as_raw_fd());
        let seals = fcntl(fd.as_raw_fd(), FcntlArg::F_GET_SEALS).map_err(|_| {
            Error::Incompatible(format!(
                "{name} is not a memfd: only sealed anonymous segments can be opened from a descriptor"
            ))
        })?;
        if !SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_SHRINK) {
            return Err(Error::Incompatible(format!(
                "{name} is not sealed against shrinking (F_SEAL_SHRINK): its sender could truncate it under our mapping"
            )));
        }
        Self::from_file(File::from(fd), name, timeout)
    }

    /// The segment's file descriptor, to pass to another process (SCM_RIGHTS).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }

    fn write_identity(&self, id: &Identity) {
        Self::write_identity_to(self.header(), id)
    }

    /// Writes `id` into a header being created (magic last; `init` stays zero).
    pub(crate) fn write_identity_to(h: &Header, id: &Identity) {
        h.version.store(VERSION, Ordering::Relaxed);
        h.ring_kind.store(id.ring_kind.to_raw(), Ordering::Relaxed);
        h.wait.store(id.wait, Ordering::Relaxed);
        h.capacity.store(id.capacity, Ordering::Relaxed);
        h.slot_size.store(id.slot_size, Ordering::Relaxed);
        h.total_len.store(id.total_len, Ordering::Relaxed);
        h.data_offset.store(id.data_offset, Ordering::Relaxed);
        h.flags.store(id.flags, Ordering::Relaxed);
        h.creator_pid.store(std::process::id(), Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        h.created_at.store(now, Ordering::Relaxed);
        // The magic goes last before `init`: an opener that sees a non-zero wrong magic knows at
        // once that the file is not ours.
        h.magic.store(MAGIC, Ordering::Relaxed);
    }

    /// Marks the segment fully initialised. Everything written before is visible to an opener
    /// that sees `init`.
    pub(crate) fn publish(&self) {
        // Release: pairs with the Acquire load of `init` in `Header::snapshot` / `open`.
        self.header().init.store(INIT_DONE, Ordering::Release);
    }

    /// Opens an existing segment: ownership check, size check before mapping, bounded wait for
    /// `init`, then validation of magic, version and length. The caller validates the ring
    /// fields.
    ///
    /// The ownership check runs on `fstat` of the descriptor that is then mapped (a rename
    /// between the two cannot swap the file): the segment must be a regular file owned by this
    /// process's effective uid, or by a uid or group `trust` allows, and not writable by group
    /// or others beyond what `trust` allows. Otherwise [`Error::Untrusted`], and nothing is
    /// mapped.
    pub(crate) fn open(name: &str, timeout: Duration, trust: &Trust) -> Result<Segment> {
        use std::os::fd::AsFd;
        let name = normalize_name(name)?;
        let fd = shm_open(
            name.as_str(),
            OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| Error::io(format!("shm_open {name}"), e))?;
        trust.check_fd(
            &format!("shared-memory segment {name}"),
            FileKind::Regular,
            fd.as_fd(),
        )?;
        Self::from_file(File::from(fd), name, timeout)
    }

    /// The checks of [`open`](Self::open) on a file already open.
    fn from_file(file: File, name: String, timeout: Duration) -> Result<Segment> {
        // `None`: no deadline (`Duration::MAX`, or anything an `Instant` cannot reach).
        let deadline = Instant::now().checked_add(timeout);
        let expired = || deadline.is_some_and(|d| Instant::now() >= d);
        // The creator may not have sized the file yet: wait for at least a header.
        let len = loop {
            let st = fstat(file.as_raw_fd()).map_err(|e| Error::io(format!("fstat {name}"), e))?;
            let len = usize::try_from(st.st_size).unwrap_or(0);
            if len >= HEADER_LEN {
                break len;
            }
            if expired() {
                return Err(Error::Incompatible(format!(
                    "{name} is {len} bytes, too short for a shmring header ({HEADER_LEN} bytes): not a shmring segment"
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let map = map(&file, len, &name)?;
        let seg = Segment {
            name,
            file,
            map,
            len,
            unlink_on_drop: false,
            lock_fd: OnceLock::new(),
        };
        let snap = loop {
            let snap = seg.header().snapshot();
            if snap.magic != 0 && snap.magic != MAGIC {
                return Err(Error::Incompatible(format!(
                    "{} is not a shmring segment (bad magic {:#018x})",
                    seg.name, snap.magic
                )));
            }
            if snap.magic == MAGIC && snap.version != VERSION {
                return Err(Error::Incompatible(format!(
                    "{} has format version {}, this library speaks version {VERSION}",
                    seg.name, snap.version
                )));
            }
            if snap.init == INIT_DONE {
                break snap;
            }
            if expired() {
                return Err(Error::Incompatible(format!(
                    "{} was never fully initialised within {timeout:?} (its creator died or it is not a shmring segment)",
                    seg.name
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if snap.magic != MAGIC {
            return Err(Error::Corrupted("init flag set without the magic"));
        }
        if snap.total_len != seg.len as u64 {
            return Err(Error::Corrupted(
                "header total length differs from the file size",
            ));
        }
        if snap.data_offset < HEADER_LEN as u64 || snap.data_offset > snap.total_len {
            return Err(Error::Corrupted("header data offset outside the segment"));
        }
        Ok(seg)
    }

    /// The header, through atomics only.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_LEN bytes (checked in create/open), page
        // aligned, and lives as long as `self`. `Header` consists of atomics only, which may be
        // shared with writers in other processes.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    /// A pointer `offset` bytes into the mapping, if `offset + len` fits in it.
    pub(crate) fn at(&self, offset: u64, len: u64) -> Result<NonNull<u8>> {
        let end = offset
            .checked_add(len)
            .ok_or(Error::Corrupted("offset overflows"))?;
        if end > self.len as u64 {
            return Err(Error::Corrupted("region runs past the end of the segment"));
        }
        // SAFETY: `offset <= len` of the mapping (checked above), so the pointer stays in (or
        // one past) the mapped range, and a mapping is never at address 0.
        Ok(unsafe { NonNull::new_unchecked(self.map.as_mut_ptr().add(offset as usize)) })
    }

    /// The name, with its leading `/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether dropping this handle removes the name from `/dev/shm`.
    pub(crate) fn set_unlink_on_drop(&mut self, unlink: bool) {
        self.unlink_on_drop = unlink;
    }

    /// Takes participant `side`'s liveness lock (see `lock_byte`). `Ok(false)`: a live process
    /// holds it.
    pub(crate) fn lock_side(&self, side: usize) -> Result<bool> {
        let fd = match self.lock_fd.get() {
            Some(fd) => fd,
            None => {
                let fd = self.open_lock_fd()?;
                fork_guard::register(fd.as_raw_fd());
                // `&self` is not shared across threads while a handle is being made; if it
                // were, the loser's descriptor is unregistered and closed here.
                if let Err(fd) = self.lock_fd.set(fd) {
                    fork_guard::unregister(fd.as_raw_fd());
                }
                self.lock_fd.get().expect("set above")
            }
        };
        let mut fl = flock(libc::F_WRLCK as libc::c_short, lock_byte(side));
        // SAFETY: `fd` is open for the life of `self`; `fl` is a valid flock on this stack.
        let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
            _ => Err(Error::io(format!("F_OFD_SETLK on {}", self.name), err)),
        }
    }

    /// Gives participant `side`'s liveness lock back (a place taken and then found not
    /// settled: see `shm::half::attach`).
    pub(crate) fn unlock_side(&self, side: usize) -> Result<()> {
        let Some(fd) = self.lock_fd.get() else {
            return Ok(()); // never locked anything
        };
        let mut fl = flock(libc::F_UNLCK as libc::c_short, lock_byte(side));
        // SAFETY: `fd` is open for the life of `self`; `fl` is a valid flock on this stack.
        let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
        if rc != 0 {
            return Err(Error::last_os(format!(
                "F_OFD_SETLK (unlock) on {}",
                self.name
            )));
        }
        Ok(())
    }

    /// A second open file description of the segment file, for the liveness locks (module
    /// docs, "Across `fork`"): `/proc/self/fd/N` reopened, checked to be the same file.
    fn open_lock_fd(&self) -> Result<OwnedFd> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let reopened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(format!("/proc/self/fd/{}", self.file.as_raw_fd()));
        let same = |f: &File| -> Result<bool> {
            let (a, b) = (f.metadata(), self.file.metadata());
            let (a, b) = (
                a.map_err(|e| Error::io(format!("fstat lock descriptor of {}", self.name), e))?,
                b.map_err(|e| Error::io(format!("fstat {}", self.name), e))?,
            );
            Ok(a.dev() == b.dev() && a.ino() == b.ino())
        };
        match reopened {
            Ok(f) if same(&f)? => Ok(f.into()),
            Ok(_) => Err(Error::Incompatible(format!(
                "/proc/self/fd of {} led to another file",
                self.name
            ))),
            // No /proc: a duplicate (shares the description, so a fork child keeps the lock).
            Err(_) => self
                .file
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::io(format!("dup {}", self.name), e)),
        }
    }

    /// The uid that owns the segment file (for checking the semaphore set's creator).
    #[cfg_attr(shmring_loom, allow(dead_code))]
    pub(crate) fn owner_uid(&self) -> Result<u32> {
        use std::os::unix::fs::MetadataExt;
        self.file
            .metadata()
            .map(|m| m.uid())
            .map_err(|e| Error::io(format!("fstat {}", self.name), e))
    }

    /// Whether a new handle could still open this segment once this one has dropped: false
    /// for an anonymous segment, for one this handle unlinks on drop, and for one whose name
    /// is gone or now names another file.
    #[cfg_attr(shmring_loom, allow(dead_code))]
    pub(crate) fn reachable_after_drop(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        if self.unlink_on_drop || self.name.starts_with("memfd:") {
            return false;
        }
        let (Ok(named), Ok(ours)) = (
            std::fs::symlink_metadata(format!("/dev/shm{}", self.name)),
            self.file.metadata(),
        ) else {
            return false;
        };
        named.dev() == ours.dev() && named.ino() == ours.ino()
    }

    /// True if a process other than this handle holds participant `side`'s liveness lock.
    pub(crate) fn side_alive(&self, side: usize) -> Result<bool> {
        side_locked(self.file.as_fd(), side)
            .map_err(|e| Error::io(format!("F_OFD_GETLK on {}", self.name), e))
    }

    /// Records this process as attached to side `side` (after it took the side's lock).
    pub(crate) fn record_side(&self, side: usize) {
        self.header().record_side(side);
    }

    /// True once some process has attached to side `side`.
    pub(crate) fn side_ever_attached(&self, side: usize) -> bool {
        self.header().side_ever_attached(side)
    }

    /// Removes a segment's name from `/dev/shm`. Processes that have it mapped keep using it.
    ///
    /// This removes the name only. A `Wait::Semaphore` segment also owns a System V semaphore
    /// set, which its last user removes when it leaves a segment that can no longer be opened;
    /// if nobody is attached when the name goes, use `shmring::inspect::remove` (or
    /// `shmring rm`), which removes both.
    pub fn unlink(name: &str) -> Result<()> {
        let name = normalize_name(name)?;
        shm_unlink(name.as_str()).map_err(|e| Error::io(format!("shm_unlink {name}"), e))
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if let Some(fd) = self.lock_fd.take() {
            fork_guard::unregister(fd.as_raw_fd());
        }
        if self.unlink_on_drop {
            // The name may already be gone (removed by hand or by `shmring rm`); nothing to do.
            let _ = shm_unlink(self.name.as_str());
        }
    }
}

/// The length of a segment with identity `id`, checked to hold at least a header.
fn segment_len(id: &Identity) -> Result<usize> {
    usize::try_from(id.total_len)
        .ok()
        .filter(|&l| l >= HEADER_LEN)
        .ok_or_else(|| {
            Error::Incompatible(format!(
                "segment length {} is too small or too large",
                id.total_len
            ))
        })
}

fn flock(kind: libc::c_short, byte: i64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    fl
}

fn size_and_reserve(fd: OwnedFd, len: usize, name: &str) -> Result<File> {
    let off = i64::try_from(len)
        .map_err(|_| Error::Incompatible(format!("segment of {len} bytes is too large")))?;
    nix::unistd::ftruncate(&fd, off)
        .map_err(|e| Error::io(format!("ftruncate {name} to {len} bytes"), e))?;
    // Reserve the pages now: on a full tmpfs this fails with ENOSPC here instead of a SIGBUS
    // when a page is first touched.
    nix::fcntl::posix_fallocate(fd.as_raw_fd(), 0, off).map_err(|e| {
        Error::io(
            format!("posix_fallocate {len} bytes for {name} (is /dev/shm full?)"),
            e,
        )
    })?;
    Ok(File::from(fd))
}

fn map(file: &File, len: usize, name: &str) -> Result<MmapRaw> {
    MmapOptions::new()
        .len(len)
        .map_raw(file)
        .map_err(|e| Error::io(format!("mmap {len} bytes of {name}"), e))
}

/// A process's start time in clock ticks since boot (/proc/PID/stat field 22).
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}
