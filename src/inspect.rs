//! Read-only inspection of segments, for the `shmring` CLI and for monitoring: what is in
//! `/dev/shm`, who is attached, and what is wrong. Nothing here writes to a segment or waits;
//! the one change it can make is [`remove`], which unlinks a name only after it has checked that
//! the file is a shmring segment.
//!
//! # Hostile files
//! `/dev/shm` is world-writable, so it can hold anything: FIFOs, sockets, device nodes,
//! symbolic links, a 1 TiB sparse file, a file its owner truncates while we look. Each entry is
//! opened with `O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC` (a link is refused,
//! not followed; opening a FIFO does not wait for a writer; a terminal does not become ours),
//! `fstat`ed through that descriptor, and refused unless it is a regular file. Of a regular
//! file only the first [`READ_LEN`] bytes (the header and the ring's control block) are read,
//! with `pread` into memory of our own: nothing is mapped (a file truncated under a mapping
//! would kill the reader with `SIGBUS`) and nothing costs more for a large file than for a
//! small one. Liveness is asked of the kernel's lock table (`F_OFD_GETLK`), which never waits.
//!
//! # What the ring says
//! The ring's occupancy is decoded by the ring itself ([`crate::ring::spsc::observe`],
//! [`crate::ring::mpmc::observe`]) from the bytes at the offset where the channel places the
//! control block (`segment::CONTROL_OFFSET`), so this module knows neither field order nor
//! padding.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

pub use crate::ring::layout::RingView;
pub use crate::segment::{HeaderSnapshot, RingKind};

use crate::error::{Error, Result};
use crate::ring::{broadcast, mpmc, spsc};
use crate::segment::{
    normalize_name, side_locked, Header, Segment, CONTROL_OFFSET, HEADER_LEN, MAGIC, RECEIVER,
    SENDER, VERSION,
};

/// Where POSIX shared memory lives on Linux.
pub const SHM_DIR: &str = "/dev/shm";

/// Bytes read from the start of a file: the header and the largest control block.
pub const READ_LEN: usize = CONTROL_OFFSET
    + max(
        max(spsc::CONTROL_LEN, mpmc::CONTROL_LEN),
        broadcast::CONTROL_LEN,
    );

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// The most participants of one role listed (a hostile header may claim four billion).
const MAX_LISTED: usize = 4096;

/// Our copy of the start of a file, aligned as the header and the control blocks are in a
/// segment (whose mapping is page aligned).
#[repr(C, align(128))]
struct Prefix([u8; READ_LEN]);

const _: () = {
    assert!(std::mem::align_of::<Prefix>() >= std::mem::align_of::<Header>());
    assert!(CONTROL_OFFSET % std::mem::align_of::<spsc::SpscControl>() == 0);
    assert!(CONTROL_OFFSET % std::mem::align_of::<mpmc::MpmcControl>() == 0);
    assert!(std::mem::align_of::<Prefix>() >= std::mem::align_of::<spsc::SpscControl>());
    assert!(std::mem::align_of::<Prefix>() >= std::mem::align_of::<mpmc::MpmcControl>());
    assert!(CONTROL_OFFSET % std::mem::align_of::<broadcast::BroadcastControl>() == 0);
    assert!(std::mem::align_of::<Prefix>() >= std::mem::align_of::<broadcast::BroadcastControl>());
    assert!(HEADER_LEN <= CONTROL_OFFSET);
};

/// One participant (a sender or a receiver slot) of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// `"sender"` or `"receiver"`.
    pub role: &'static str,
    /// Index among the participants of that role.
    pub index: usize,
    /// True if a live process holds this participant's liveness lock now.
    pub alive: bool,
    /// The pid recorded by the last process that attached in this role (display only; 0 if
    /// none). MPMC segments record the last sender and receiver only.
    pub last_pid: u32,
}

/// One reader place of a broadcast segment, as its control block and its lock say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastReader {
    /// The reader place (its participant index among the receivers).
    pub place: usize,
    /// The place is taken in the control block (a reader joined and did not leave).
    pub active: bool,
    /// A live process holds the place's liveness lock now.
    pub alive: bool,
    /// How many times the place was taken.
    pub generation: u64,
    /// The next position the reader reads.
    pub cursor: u64,
    /// Messages sent that it has not read (`tail - cursor`; 0 if its cursor is ahead).
    pub lag: u64,
}

impl BroadcastReader {
    /// Active in the control block but no process holds its lock: a reader that died and was
    /// not detached yet (a `Block` writer detaches it once it is blocked behind it).
    pub fn dead(&self) -> bool {
        self.active && !self.alive
    }
}

/// What a broadcast segment's control block says beyond the common [`RingView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastInfo {
    /// `"block"` or `"overwrite"` (`None`: a value no honest creator records).
    pub policy: Option<&'static str>,
    /// Messages a late joiner finds.
    pub history: u64,
    /// The next position the writer writes.
    pub tail: u64,
    /// Every reader place ever used (up to the segment's maximum and [`MAX_LISTED`]).
    pub readers: Vec<BroadcastReader>,
}

/// What a segment is and who uses it.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// The name, with its leading `/`.
    pub name: String,
    /// Size of the file in bytes.
    pub file_len: u64,
    /// Permission bits of the file.
    pub mode: u32,
    /// Owner of the file.
    pub uid: u32,
    /// The header fields, copied once (`None` if the file is too short to hold a header).
    pub header: Option<HeaderSnapshot>,
    /// True if the creator finished making the segment (the header's `init` word is set).
    pub initialised: bool,
    /// The ring kind, if the header names a known one.
    pub kind: Option<RingKind>,
    /// The ring's positions, occupancy and peers, as its control block says (`None` if the
    /// kind is unknown or the file too short to hold the control block).
    pub ring: Option<RingView>,
    /// Every participant slot the segment has.
    pub participants: Vec<Participant>,
    /// Broadcast segments: the policy and each reader's position and lag.
    pub broadcast: Option<BroadcastInfo>,
    /// What is wrong with the segment; empty if nothing.
    pub problems: Vec<String>,
}

impl SegmentInfo {
    /// True if any participant is alive.
    pub fn any_alive(&self) -> bool {
        self.participants.iter().any(|p| p.alive)
    }

    /// Bytes (SPSC) or messages (MPMC) in the ring, as far as its positions say.
    pub fn used(&self) -> Option<u64> {
        self.ring.map(|r| r.used)
    }

    /// Seconds since the creator made the segment (0 if unknown).
    pub fn age_secs(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.header.map_or(0, |h| now.saturating_sub(h.created_at))
    }
}

/// Opens `path` for inspection: a regular file or an error, never a wait (see the module docs).
fn open_regular(path: &str) -> Result<(File, std::fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        // std adds O_CLOEXEC itself.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                Error::Incompatible(format!("{path} is a symbolic link: not followed"))
            }
            Some(libc::ENXIO) => Error::Incompatible(format!(
                "{path} is a socket or a device, not a regular file: not inspected"
            )),
            _ => Error::io(format!("open {path}"), e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("fstat {path}"), e))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(Error::Incompatible(format!(
            "{path} is {what}, not a regular file: not inspected"
        )));
    }
    Ok((file, meta))
}

/// Reads up to `buf.len()` bytes from the start of `file`; fewer if the file is (or became)
/// shorter.
fn read_prefix(file: &File, buf: &mut [u8], path: &str) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("read {path}"), e)),
        }
    }
    Ok(done)
}

/// Inspects the segment `name`. `Ok(None)`: the file is a regular file but not a shmring
/// segment (its first bytes are not our magic); such files are never touched by the CLI. A
/// link, FIFO, socket, device or directory is an [`Error::Incompatible`], found without
/// following or waiting.
pub fn inspect(name: &str) -> Result<Option<SegmentInfo>> {
    let name = normalize_name(name)?;
    let path = format!("{SHM_DIR}{name}");
    let (file, meta) = open_regular(&path)?;
    let file_len = meta.len();
    if file_len < 8 {
        return Ok(None);
    }
    let mut prefix = Prefix([0; READ_LEN]);
    let want = usize::try_from(file_len).map_or(READ_LEN, |l| l.min(READ_LEN));
    let got = read_prefix(&file, &mut prefix.0[..want], &path)?;
    if got < 8 {
        return Ok(None); // shrunk meanwhile
    }
    let magic = u64::from_ne_bytes(prefix.0[..8].try_into().expect("8 bytes"));
    if magic != MAGIC {
        return Ok(None);
    }
    let mut info = SegmentInfo {
        name,
        file_len,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        header: None,
        initialised: false,
        kind: None,
        ring: None,
        participants: Vec::new(),
        broadcast: None,
        problems: Vec::new(),
    };
    if got < HEADER_LEN {
        info.problems.push(format!(
            "file is {got} bytes, shorter than a header ({HEADER_LEN})"
        ));
        return Ok(Some(info));
    }
    // The rest reads our own copy; the pointer is taken once, from a unique borrow.
    let base = NonNull::from(&mut prefix.0).cast::<u8>();
    // SAFETY: `base` is our buffer, aligned for `Header` (const-asserted above) and fully
    // initialised (zeroed, then read into); `Header` is made of atomics only, for which any
    // bytes are a valid value, and nothing else accesses the buffer while `header` lives.
    let header = unsafe { base.cast::<Header>().as_ref() };
    let h = header.snapshot();
    info.header = Some(h);
    info.initialised = h.initialised();
    if h.version != VERSION {
        info.problems.push(format!(
            "format version {} (this tool reads {VERSION})",
            h.version
        ));
    }
    if !info.initialised {
        info.problems
            .push("not fully initialised (creator died while creating it?)".into());
    }
    if h.total_len != file_len {
        info.problems.push(format!(
            "header says {} bytes, file has {file_len}",
            h.total_len
        ));
    }
    info.kind = RingKind::from_raw(h.ring_kind);
    let (senders, receivers, control_len) = match info.kind {
        Some(RingKind::Spsc) => (1, 1, spsc::CONTROL_LEN),
        Some(RingKind::Mpmc) => (
            h.max_senders as usize,
            h.max_receivers as usize,
            mpmc::CONTROL_LEN,
        ),
        Some(RingKind::Broadcast) => (1, h.max_receivers as usize, broadcast::CONTROL_LEN),
        None => {
            info.problems
                .push(format!("unknown ring kind {}", h.ring_kind));
            (0, 0, 0)
        }
    };
    if let Some(kind) = info.kind {
        if got >= CONTROL_OFFSET + control_len {
            // SAFETY: CONTROL_OFFSET is inside our buffer (`got` bytes of it, at least
            // CONTROL_OFFSET + control_len, were read), so the pointer is in bounds.
            let ctrl = unsafe { base.add(CONTROL_OFFSET) };
            // SAFETY: `ctrl` is aligned for either control block (const-asserted above) and
            // `control_len` bytes of our own buffer follow it; nobody writes the buffer.
            let view = unsafe {
                match kind {
                    RingKind::Spsc => spsc::observe(ctrl, h.capacity),
                    RingKind::Mpmc => mpmc::observe(ctrl, h.capacity),
                    RingKind::Broadcast => broadcast::observe(ctrl, h.capacity),
                }
            };
            if kind == RingKind::Broadcast {
                // SAFETY: as for `observe` just above.
                let v = unsafe { broadcast::observe_readers(ctrl, receivers.min(MAX_LISTED)) };
                info.broadcast = Some(BroadcastInfo {
                    policy: v.policy.map(|p| p.as_str()),
                    history: v.history,
                    tail: v.tail,
                    readers: v
                        .readers
                        .iter()
                        .map(|r| BroadcastReader {
                            place: r.place,
                            active: r.active,
                            alive: false, // from the lock, below
                            generation: r.generation,
                            cursor: r.cursor,
                            lag: r.lag,
                        })
                        .collect(),
                });
                if v.policy.is_none() {
                    info.problems
                        .push("unknown broadcast overflow policy".into());
                }
            }
            if !view.consistent() {
                info.problems.push(format!(
                    "ring positions {}..{} are more than the capacity apart",
                    view.head, view.tail
                ));
            }
            info.ring = Some(view);
        } else {
            info.problems
                .push("file too short to hold the ring's control block".into());
        }
    }
    for (role, side, count, first) in [
        ("sender", SENDER, senders, 0usize),
        ("receiver", RECEIVER, receivers, senders),
    ] {
        if count > MAX_LISTED {
            info.problems.push(format!(
                "header claims {count} {role}s; listing the first {MAX_LISTED}"
            ));
        }
        let last_pid = header.sides[side].pid.load(Ordering::Relaxed);
        for index in 0..count.min(MAX_LISTED) {
            let alive = side_locked(file.as_fd(), first + index)
                .map_err(|e| Error::io(format!("F_OFD_GETLK on {path}"), e))?;
            info.participants.push(Participant {
                role,
                index,
                alive,
                last_pid,
            });
        }
    }
    if let Some(b) = info.broadcast.as_mut() {
        for r in &mut b.readers {
            r.alive = info
                .participants
                .iter()
                .any(|p| p.role == "receiver" && p.index == r.place && p.alive);
        }
        let dead = b.readers.iter().filter(|r| r.dead()).count();
        if dead > 0 {
            info.problems.push(format!(
                "{dead} broadcast reader(s) died without leaving (detached by a blocked writer)"
            ));
        }
    }
    Ok(Some(info))
}

/// Every shmring segment in `/dev/shm`. Other entries (foreign files, links, FIFOs, sockets,
/// devices, directories, files we may not read) are skipped.
pub fn list() -> Result<Vec<SegmentInfo>> {
    let dir = std::fs::read_dir(SHM_DIR).map_err(|e| Error::io(format!("read {SHM_DIR}"), e))?;
    let mut out = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| Error::io(format!("read {SHM_DIR}"), e))?;
        // The directory entry's own type (no stat, no link followed): skip what cannot be a
        // segment before opening anything. `inspect` checks again on the open descriptor.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // Not ours, gone meanwhile, or not readable by us: not listed.
        if let Ok(Some(info)) = inspect(&name) {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes the segment `name` from `/dev/shm` if it is a shmring segment (checked first, as
/// [`inspect`] does), and returns what it was; processes that have it mapped keep using it.
/// `Ok(None)`: a regular file that is not a shmring segment, left alone. Anything that is not a
/// regular file is an error and is left alone too.
///
/// A `Wait::Semaphore` segment's System V semaphore set goes too if no handle uses it (it is
/// checked to be the set the segment's owner made first); a set still in use is removed by its
/// last user, which finds the name gone.
pub fn remove(name: &str) -> Result<Option<SegmentInfo>> {
    let Some(info) = inspect(name)? else {
        return Ok(None);
    };
    let sem = semaphore_record(&info);
    Segment::unlink(&info.name)?;
    if let Some((id, ctime)) = sem {
        crate::sync::semaphore::remove_unused_id(id, ctime, info.uid);
    }
    Ok(Some(info))
}

/// The semaphore set a `Wait::Semaphore` segment records: `(id, creation time)`, read from
/// the file (`None` for other segments, or if it cannot be read).
fn semaphore_record(info: &SegmentInfo) -> Option<(u32, u64)> {
    let h = info.header.as_ref()?;
    if crate::Wait::from_raw(h.wait) != Some(crate::Wait::Semaphore) || !info.initialised {
        return None;
    }
    let off = crate::shm::sem_record_offset(info.kind?);
    let (file, _) = open_regular(&format!("{SHM_DIR}{}", info.name)).ok()?;
    let mut b = [0u8; 16];
    file.read_exact_at(&mut b, off).ok()?;
    let id = u32::from_ne_bytes(b[..4].try_into().ok()?);
    let ctime = u64::from_ne_bytes(b[8..].try_into().ok()?);
    Some((id, ctime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::mpmc::MpmcControl;
    use crate::ring::spsc::SpscControl;
    use crate::Config;
    use std::time::Duration;

    fn unique(tag: &str) -> String {
        use std::sync::atomic::AtomicU32;
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "shmring-inspect-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The control block of a real segment, through the ring's own type (a second mapping).
    fn control<T>(seg: &Segment) -> &T {
        let p = seg
            .at(CONTROL_OFFSET as u64, std::mem::size_of::<T>() as u64)
            .unwrap();
        // SAFETY: in the mapping, aligned (page-aligned mapping, CONTROL_OFFSET a multiple of
        // the block's alignment), initialised by the creator, made of atomics only.
        unsafe { p.cast::<T>().as_ref() }
    }

    #[test]
    fn inspect_reads_what_the_spsc_ring_says() {
        let name = unique("spsc");
        let mut tx =
            crate::spsc::Sender::create(&name, Config::default().capacity(4096).persist(true))
                .unwrap();
        let seg = Segment::open(
            &name,
            Duration::from_secs(1),
            &crate::trust::Trust::default(),
        )
        .unwrap();
        let ctrl = control::<SpscControl>(&seg);
        for (n, msg) in [&b"twelve bytes"[..], b"", &[7u8; 100]]
            .into_iter()
            .enumerate()
        {
            tx.send(msg).unwrap();
            let info = inspect(&name).unwrap().expect("a shmring segment");
            let ring = info.ring.expect("control block read");
            assert_eq!(ring.used, ctrl.used(), "after message {n}");
            assert!(info.initialised && info.problems.is_empty(), "{info:?}");
        }
        // 8 + 16, 8 + 0, 8 + 104: the known frame sizes, so the block read is the real one.
        let info = inspect(&name).unwrap().unwrap();
        assert_eq!(info.used(), Some(24 + 8 + 112));
        assert_eq!(info.ring.unwrap().capacity, 4096);
        assert_eq!(info.kind, Some(RingKind::Spsc));
        let alive: Vec<_> = info.participants.iter().map(|p| p.alive).collect();
        assert_eq!(alive, [true, false], "our sender holds its lock");
        assert!(!info.ring.unwrap().senders_closed);
        drop(tx);
        let info = inspect(&name).unwrap().unwrap();
        assert!(info.ring.unwrap().senders_closed && !info.any_alive());
        assert_eq!(info.used(), Some(ctrl.used()));
        drop(seg);
        assert!(remove(&name).unwrap().is_some());
        assert!(inspect(&name).is_err(), "gone");
    }

    #[test]
    fn inspect_reads_what_the_mpmc_ring_says() {
        let name = unique("mpmc");
        let cfg = Config::default().capacity(16).slot_size(32).max_senders(3);
        let mut tx = crate::mpmc::Sender::create(&name, cfg).unwrap();
        let seg = Segment::open(
            &name,
            Duration::from_secs(1),
            &crate::trust::Trust::default(),
        )
        .unwrap();
        let ctrl = control::<MpmcControl>(&seg);
        for n in 1..=5u64 {
            tx.send(b"job").unwrap();
            let info = inspect(&name).unwrap().unwrap();
            assert_eq!(info.used(), Some(ctrl.used()));
            assert_eq!(info.used(), Some(n));
        }
        let info = inspect(&name).unwrap().unwrap();
        let ring = info.ring.unwrap();
        assert_eq!(ring.senders, Some(ctrl.senders()));
        assert_eq!((ring.senders, ring.receivers), (Some(1), Some(0)));
        assert_eq!(info.kind, Some(RingKind::Mpmc));
        let senders = info.participants.iter().filter(|p| p.role == "sender");
        assert_eq!(senders.clone().count(), 3);
        assert_eq!(senders.filter(|p| p.alive).count(), 1);
        assert!(info.problems.is_empty(), "{:?}", info.problems);
    }

    #[test]
    fn inspect_reads_what_the_broadcast_ring_says() {
        let name = unique("bcast");
        let cfg = Config::default()
            .capacity(8)
            .slot_size(32)
            .max_receivers(4)
            .overflow(crate::broadcast::Overflow::Overwrite);
        let mut tx = crate::broadcast::Sender::create(&name, cfg).unwrap();
        let mut slow = crate::broadcast::Receiver::open(&name).unwrap();
        let _idle = crate::broadcast::Receiver::open(&name).unwrap();
        for _ in 0..20 {
            tx.send(b"tick").unwrap();
        }
        assert!(slow.try_recv().is_err(), "lapped");
        let info = inspect(&name).unwrap().unwrap();
        assert_eq!(info.kind, Some(RingKind::Broadcast));
        let ring = info.ring.unwrap();
        assert_eq!((ring.tail, ring.capacity), (20, 8));
        assert!(ring.consistent(), "a lapped reader is not a problem");
        assert_eq!((ring.senders, ring.receivers), (Some(1), Some(2)));
        let receivers = info.participants.iter().filter(|p| p.role == "receiver");
        assert_eq!(receivers.clone().count(), 4);
        assert_eq!(receivers.filter(|p| p.alive).count(), 2);
        assert!(info.problems.is_empty(), "{:?}", info.problems);
    }

    #[test]
    fn non_regular_files_are_refused_without_waiting() {
        let dir = std::path::Path::new(SHM_DIR);
        let fifo = unique("fifo");
        nix::unistd::mkfifo(&dir.join(&fifo), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let sock = unique("sock");
        let _listener = std::os::unix::net::UnixListener::bind(dir.join(&sock)).unwrap();
        let link = unique("link");
        let target = unique("target");
        let mut tx = crate::spsc::Sender::create(&target, Config::default()).unwrap();
        tx.send(b"x").unwrap();
        std::os::unix::fs::symlink(dir.join(&target), dir.join(&link)).unwrap();
        for (name, what) in [
            (&fifo, "a FIFO"),
            (&sock, "a socket"),
            (&link, "symbolic link"),
        ] {
            let err = inspect(name).unwrap_err().to_string();
            assert!(err.contains(what), "{name}: {err}");
            assert!(remove(name).is_err());
            assert!(dir.join(name).symlink_metadata().is_ok(), "left alone");
        }
        let listed: Vec<_> = list().unwrap().into_iter().map(|i| i.name).collect();
        assert!(listed.contains(&format!("/{target}")));
        for name in [&fifo, &sock, &link] {
            assert!(!listed.contains(&format!("/{name}")), "{name} listed");
            std::fs::remove_file(dir.join(name)).unwrap();
        }
    }

    #[test]
    fn a_huge_sparse_file_costs_a_header_read() {
        let name = unique("sparse");
        let path = format!("{SHM_DIR}/{name}");
        let file = File::create(&path).unwrap();
        file.write_all_at(&MAGIC.to_ne_bytes(), 0).unwrap();
        file.set_len(1 << 40).unwrap();
        let t = std::time::Instant::now();
        let info = inspect(&name).unwrap().expect("starts with the magic");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(info.file_len, 1 << 40);
        assert!(!info.initialised);
        assert!(
            info.problems
                .iter()
                .any(|p| p.contains("header says 0 bytes")),
            "{:?}",
            info.problems
        );
        assert!(remove(&name).unwrap().is_some());
        assert!(!std::path::Path::new(&path).exists());
    }
}
