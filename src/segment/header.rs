//! The segment header: a fixed `#[repr(C)]` block at offset 0 of every shmring segment.
//!
//! Every field is an atomic: the header is shared with processes this one does not trust, and
//! atomics are the only sound way to read memory someone else may write at any time. The
//! creator fills every field, then publishes `init` with Release; openers load `init` with
//! Acquire and then validate each field before using it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// `"SHMRING\0"`, little-endian: the first 8 bytes of every segment.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMRING\0");
/// Version of the segment format; bumped on any change of layout or protocol.
/// 2: the MPMC control block holds per-participant intent words (`ring::mpmc`).
pub const VERSION: u32 = 3;

/// Header flag: every participant is registered for `membarrier(GLOBAL_EXPEDITED)`, so
/// notifiers fence only the compiler and sleepers issue the barrier (`sync::barrier`). Set by
/// a creator that could register (and does not spin); required of every opener. Version 3
/// added it, so a library that does not know it (and would fence only itself) cannot attach.
pub const FLAG_MEMBARRIER: u32 = 1;
/// Every flag this version knows.
pub const KNOWN_FLAGS: u32 = FLAG_MEMBARRIER;
/// The value of `init` once the creator has finished.
pub const INIT_DONE: u32 = 0x494E_4954; // "INIT"

/// Which ring a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingKind {
    /// [`crate::spsc`].
    Spsc,
    /// The multi-producer multi-consumer ring.
    Mpmc,
    /// The broadcast ring (one writer, every reader sees every message).
    Broadcast,
}

impl RingKind {
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            RingKind::Spsc => 1,
            RingKind::Mpmc => 2,
            RingKind::Broadcast => 3,
        }
    }

    pub(crate) fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(RingKind::Spsc),
            2 => Some(RingKind::Mpmc),
            3 => Some(RingKind::Broadcast),
            _ => None,
        }
    }

    /// `"spsc"`, `"mpmc"` or `"broadcast"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RingKind::Spsc => "spsc",
            RingKind::Mpmc => "mpmc",
            RingKind::Broadcast => "broadcast",
        }
    }
}

/// Per-side bookkeeping, for liveness and display. The proof of life itself is the side's
/// open-file-description lock on its byte of the segment file (see [`super::Segment`]).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SideInfo {
    /// Non-zero once a process has attached to this side (so "gone" differs from "not yet").
    pub attached: AtomicU32,
    /// The pid of the last process that attached, for display only: pids are reused and differ
    /// across pid namespaces.
    pub pid: AtomicU32,
    /// Its start time (clock ticks since boot, /proc/PID/stat field 22), for display only.
    pub start_time: AtomicU64,
}

/// The fixed header at offset 0 of a segment.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: AtomicU64,
    /// [`VERSION`].
    pub version: AtomicU32,
    /// [`INIT_DONE`] once the creator has written everything else; stored last, with Release.
    pub init: AtomicU32,
    /// [`RingKind`] as raw.
    pub ring_kind: AtomicU32,
    /// [`crate::Wait`] as raw: both sides use the creator's strategy.
    pub wait: AtomicU32,
    /// Ring data bytes (SPSC) or slot count (MPMC).
    pub capacity: AtomicU64,
    /// Bytes per slot (MPMC); 0 for SPSC.
    pub slot_size: AtomicU64,
    /// Length of the whole segment in bytes.
    pub total_len: AtomicU64,
    /// Offset of the ring data from the start of the segment.
    pub data_offset: AtomicU64,
    /// pid of the creator, for display.
    pub creator_pid: AtomicU32,
    /// [`FLAG_MEMBARRIER`], or 0. Other bits are refused.
    pub flags: AtomicU32,
    /// Creation time, seconds since the Unix epoch, for display.
    pub created_at: AtomicU64,
    /// Sides: 0 = sender, 1 = receiver. An MPMC segment records here the last sender and
    /// receiver that attached, for display.
    pub sides: [SideInfo; 2],
    /// MPMC: the most senders that may be attached at once (0 for SPSC).
    pub max_senders: AtomicU32,
    /// MPMC: the most receivers that may be attached at once (0 for SPSC).
    pub max_receivers: AtomicU32,
}

impl Header {
    /// Records this process as attached to side `side` (`SENDER` or `RECEIVER`, after it took
    /// a lock of that side): pid and start time for display, and the attached flag.
    pub fn record_side(&self, side: usize) {
        let info = &self.sides[side.min(1)];
        info.pid.store(std::process::id(), Ordering::Relaxed);
        info.start_time.store(
            super::process_start_time(std::process::id()).unwrap_or(0),
            Ordering::Relaxed,
        );
        // Release: pairs with the Acquire load in `side_ever_attached`.
        info.attached.store(1, Ordering::Release);
    }

    /// True once some process has attached to side `side`.
    pub fn side_ever_attached(&self, side: usize) -> bool {
        // Acquire: pairs with the Release store in `record_side`.
        self.sides[side.min(1)].attached.load(Ordering::Acquire) != 0
    }
}

/// Index of the sender in [`Header::sides`].
pub const SENDER: usize = 0;
/// Index of the receiver in [`Header::sides`].
pub const RECEIVER: usize = 1;

/// The fields of a header, copied out once (no double fetch) for validation and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSnapshot {
    /// See [`Header`].
    pub magic: u64,
    /// See [`Header`].
    pub version: u32,
    /// See [`Header`].
    pub init: u32,
    /// See [`Header`].
    pub ring_kind: u32,
    /// See [`Header`].
    pub wait: u32,
    /// See [`Header`].
    pub capacity: u64,
    /// See [`Header`].
    pub slot_size: u64,
    /// See [`Header`].
    pub total_len: u64,
    /// See [`Header`].
    pub data_offset: u64,
    /// See [`Header`].
    pub creator_pid: u32,
    /// See [`Header`].
    pub created_at: u64,
    /// See [`Header`].
    pub flags: u32,
    /// See [`Header`].
    pub max_senders: u32,
    /// See [`Header`].
    pub max_receivers: u32,
}

impl HeaderSnapshot {
    /// True if the creator finished laying out the segment.
    pub fn initialised(&self) -> bool {
        self.init == INIT_DONE
    }
}

impl Header {
    /// Copies every identity field out once.
    pub fn snapshot(&self) -> HeaderSnapshot {
        // Acquire on `init`: pairs with the creator's Release store in `Segment::publish`;
        // every field read after it is the creator's.
        let init = self.init.load(Ordering::Acquire);
        HeaderSnapshot {
            magic: self.magic.load(Ordering::Relaxed),
            version: self.version.load(Ordering::Relaxed),
            init,
            ring_kind: self.ring_kind.load(Ordering::Relaxed),
            wait: self.wait.load(Ordering::Relaxed),
            capacity: self.capacity.load(Ordering::Relaxed),
            slot_size: self.slot_size.load(Ordering::Relaxed),
            total_len: self.total_len.load(Ordering::Relaxed),
            data_offset: self.data_offset.load(Ordering::Relaxed),
            creator_pid: self.creator_pid.load(Ordering::Relaxed),
            created_at: self.created_at.load(Ordering::Relaxed),
            flags: self.flags.load(Ordering::Relaxed),
            max_senders: self.max_senders.load(Ordering::Relaxed),
            max_receivers: self.max_receivers.load(Ordering::Relaxed),
        }
    }
}

/// Bytes the header occupies, rounded to a cache-line pair so what follows starts on its own.
pub const HEADER_LEN: usize = crate::ring::layout::align_up(std::mem::size_of::<Header>(), 128);

// The MPMC fields were added inside the padding: the SPSC layout did not move.
const _: () = assert!(HEADER_LEN == 128);
