//! Read-only inspection of segments, for the `shmring` CLI and for monitoring: what is in
//! `/dev/shm`, who is attached, and what is wrong. Nothing here writes to a segment or waits.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;

use memmap2::MmapOptions;

use super::header::{Header, HeaderSnapshot, RingKind, HEADER_LEN, INIT_DONE, MAGIC, VERSION};
use super::{lock_byte, normalize_name};
use crate::error::{Error, Result};

/// Where POSIX shared memory lives on Linux.
pub const SHM_DIR: &str = "/dev/shm";

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
    /// The ring kind, if the header names a known one.
    pub kind: Option<RingKind>,
    /// Bytes (SPSC) or slots (MPMC) in use, as far as the ring positions say.
    pub used: Option<u64>,
    /// Every participant slot the segment has.
    pub participants: Vec<Participant>,
    /// What is wrong with the segment; empty if nothing.
    pub problems: Vec<String>,
}

impl SegmentInfo {
    /// True if any participant is alive.
    pub fn any_alive(&self) -> bool {
        self.participants.iter().any(|p| p.alive)
    }

    /// Seconds since the creator made the segment (0 if unknown).
    pub fn age_secs(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.header.map_or(0, |h| now.saturating_sub(h.created_at))
    }
}

/// Inspects the segment `name`. `Ok(None)`: the file exists but is not a shmring segment
/// (its first bytes are not our magic); such files are never touched by the CLI.
pub fn inspect(name: &str) -> Result<Option<SegmentInfo>> {
    let name = normalize_name(name)?;
    let path = format!("{SHM_DIR}{name}");
    let file = File::open(&path).map_err(|e| Error::io(format!("open {path}"), e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("fstat {path}"), e))?;
    if !meta.is_file() || meta.len() < 8 {
        return Ok(None);
    }
    let len = meta.len() as usize;
    let map = MmapOptions::new()
        .len(len)
        .map_raw_read_only(&file)
        .map_err(|e| Error::io(format!("mmap {path}"), e))?;
    // SAFETY: the mapping holds at least 8 bytes and is page aligned; the magic is read with an
    // atomic load (the creator may be writing it) of a word no larger than a pointer.
    let magic = unsafe { std::sync::atomic::AtomicU64::from_ptr(map.as_mut_ptr().cast()) }
        .load(Ordering::Acquire);
    if magic != MAGIC {
        return Ok(None);
    }
    let mut info = SegmentInfo {
        name,
        file_len: meta.len(),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        header: None,
        kind: None,
        used: None,
        participants: Vec::new(),
        problems: Vec::new(),
    };
    if len < HEADER_LEN {
        info.problems.push(format!(
            "file is {len} bytes, shorter than a header ({HEADER_LEN})"
        ));
        return Ok(Some(info));
    }
    // SAFETY: the mapping is at least HEADER_LEN bytes and page aligned; `Header` is made of
    // atomics only, and we only load from them (read-only mapping).
    let header = unsafe { &*map.as_ptr().cast::<Header>() };
    let h = header.snapshot();
    info.header = Some(h);
    if h.version != VERSION {
        info.problems.push(format!(
            "format version {} (this tool reads {VERSION})",
            h.version
        ));
    }
    if h.init != INIT_DONE {
        info.problems
            .push("not fully initialised (creator died while creating it?)".into());
    }
    if h.total_len != meta.len() {
        info.problems.push(format!(
            "header says {} bytes, file has {}",
            h.total_len,
            meta.len()
        ));
    }
    info.kind = RingKind::from_raw(h.ring_kind);
    let (senders, receivers) = match info.kind {
        Some(RingKind::Spsc) => (1, 1),
        Some(RingKind::Mpmc) => (h.max_senders as usize, h.max_receivers as usize),
        None => {
            info.problems
                .push(format!("unknown ring kind {}", h.ring_kind));
            (0, 0)
        }
    };
    if info.kind.is_some() && len >= HEADER_LEN + 256 {
        // The ring's control block follows the header: two positions one padded line apart,
        // SPSC `tail` then `head`, MPMC `head` then `tail`.
        // SAFETY: both words are inside the mapping (checked above), 8-aligned, and loaded
        // atomically.
        let (first, second) = unsafe {
            let base = map.as_mut_ptr().add(HEADER_LEN);
            (
                std::sync::atomic::AtomicU64::from_ptr(base.cast()).load(Ordering::Acquire),
                std::sync::atomic::AtomicU64::from_ptr(base.add(128).cast())
                    .load(Ordering::Acquire),
            )
        };
        let (head, tail) = match info.kind {
            Some(RingKind::Spsc) => (second, first),
            _ => (first, second),
        };
        let used = tail.wrapping_sub(head);
        if used > h.capacity {
            info.problems.push(format!(
                "ring positions {head}..{tail} are more than the capacity apart"
            ));
        }
        info.used = Some(used);
    }
    for (role, count, first) in [
        ("sender", senders, 0usize),
        ("receiver", receivers, senders),
    ] {
        let last_pid = header.sides[if role == "sender" { 0 } else { 1 }]
            .pid
            .load(Ordering::Relaxed);
        for index in 0..count.min(4096) {
            info.participants.push(Participant {
                role,
                index,
                alive: lock_held(&file, lock_byte(first + index))?,
                last_pid,
            });
        }
    }
    Ok(Some(info))
}

/// Every shmring segment in `/dev/shm` (other files are skipped, unreadable ones reported).
pub fn list() -> Result<Vec<SegmentInfo>> {
    let dir = std::fs::read_dir(SHM_DIR).map_err(|e| Error::io(format!("read {SHM_DIR}"), e))?;
    let mut out = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| Error::io(format!("read {SHM_DIR}"), e))?;
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

/// True if some open file description holds a lock on `byte` of `file`.
fn lock_held(file: &File, byte: i64) -> Result<bool> {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    // A read lock conflicts with any write lock, and may be asked about on a read-only file.
    fl.l_type = libc::F_RDLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    // SAFETY: the fd is open (borrowed from `file`); F_OFD_GETLK writes only into `fl`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return Err(Error::last_os("F_OFD_GETLK"));
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}
