//! The single-producer single-consumer byte ring: variable-length messages, each contiguous.
//!
//! # Layout
//! The ring is `cap` bytes (a power of two) of data plus an [`SpscControl`] block. Two positions
//! count bytes since the ring was made and never wrap in practice (`u64`); the offset of a
//! position in the data is `pos & (cap - 1)`:
//!
//! * `tail`: where the producer writes next. Stored only by the producer.
//! * `head`: where the consumer reads next. Stored only by the consumer.
//!
//! # Frames
//! A message is a frame: an 8-byte header word (`tag << 32 | len`) followed by `len` payload
//! bytes, padded to a multiple of 8. Every frame is contiguous in memory, so a reader can borrow
//! it as one slice: when a frame does not fit between the write offset and the end of the data,
//! the producer writes a *wrap marker* (a header with [`WRAP_TAG`]) that tells the consumer to
//! skip to offset 0.
//!
//! # The header word is the publication
//! The consumer does not read `tail` at all: it polls the header word at its own `head`. A zero
//! word means "nothing yet"; a non-zero word is a frame the producer has finished. This keeps
//! the hand-over of a small message to the cache lines of the message itself, instead of a
//! `tail` line first and the message lines after it: half the cache-line transfers per message.
//!
//! It is sound because of one invariant: **the word at the consumer's `head` is zero or a header
//! of the current lap.** The ring starts zeroed, and before the producer publishes a frame it
//! zeroes the word just past it (the next frame's header, which in the previous lap may have
//! been payload). That word must be free too, so the producer always keeps 8 bytes of room
//! beyond a frame, and the largest message is `cap - 16` bytes.
//!
//! # Ordering
//! The producer writes the payload and zeroes the next word, then stores the header with
//! Release; the consumer loads the header with Acquire and only then reads the payload. The
//! consumer, once done with a frame, stores `head` with Release; the producer loads `head` with
//! Acquire before it reuses those bytes, and only when its cached copy (`cached_head`) says the
//! ring is full. The producer also stores `tail` after each frame, for observers and for a
//! producer that takes over; the consumer never needs it.
//!
//! # Batches: one publication for many frames
//! A producer may *stage* frames ([`Producer::stage`]) instead of committing them: it writes
//! them as a commit would, except that the first staged frame's header is kept back. The
//! consumer stops at that word (still zero), so nothing of the batch is visible. Later staged
//! headers are stored Relaxed: the consumer reaches them only through the first header, whose
//! Release store in [`Producer::flush`] orders them before it. A batch given up
//! ([`Producer::discard`]) leaves its later headers in the data beyond the published tail;
//! they are never read, because the consumer reaches a word only as the word after a frame
//! published later, which the producer zeroes before it publishes that frame.
//!
//! The batch fast path ([`Producer::stage_copy`], every frame after a batch's first that fits
//! before the end of the data) does not zero the word after each frame: inside a batch that
//! word is the next staged frame's header, and [`Producer::flush`] zeroes the one after the
//! last frame, before the first header's Release. So every word the consumer reaches through
//! a published batch is still a header of this lap or zero, and a batch given up still leaves
//! nothing the consumer reaches.
//!
//! A consumer may *take* frames ([`Consumer::take`]) instead of releasing them: it moves its
//! own `head` past them but stores it once, in [`Consumer::flush_taken`]; until then the
//! producer cannot reuse their bytes, so they stay valid for the caller to read. A wrap marker
//! skipped meanwhile is published with the flush too.
//!
//! # Trust
//! Every header and the peer's position are read once, into a local, and validated before use:
//! a frame must lie inside the data, a wrap marker may not sit at offset 0, `head` may not be
//! more than `cap` behind `tail`. A value no honest peer writes is [`Error::Corrupted`]. A side's
//! own position is kept in a local and never re-read from the shared block. This module makes no
//! system call: it works over any memory, the heap included, which is how the unit and loom
//! tests run it.

use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::error::{Error, Result};
use crate::ring::layout::{align8, copy_bytes, FRAME_HEADER};
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Tag of a header that starts a message.
pub const FRAME_TAG: u32 = 0x5348_4D46; // "SHMF"
/// Tag of a header that says "the rest of the data area is padding; continue at offset 0".
pub const WRAP_TAG: u32 = 0x5348_4D57; // "SHMW"

const SENDER_CLOSED: u32 = 1;
const RECEIVER_CLOSED: u32 = 2;

/// The smallest ring: room for a frame header, 48 payload bytes and the clean word after them.
pub const MIN_CAPACITY: u64 = 64;
/// The largest ring: frame lengths are 32-bit.
pub const MAX_CAPACITY: u64 = 1 << 32;
/// The most data bytes a ring may have under loom (its header words are loom atomics there).
#[cfg(shmring_loom)]
pub const LOOM_MAX_CAPACITY: u64 = 512;

/// The shared control block of an SPSC ring. `#[repr(C)]`, so it can be placed in a segment.
#[repr(C)]
#[derive(Debug)]
pub struct SpscControl {
    tail: CachePadded<AtomicU64>,
    head: CachePadded<AtomicU64>,
    closed: CachePadded<AtomicU32>,
    /// Under loom the frame header words are loom atomics kept here, one per data word, so the
    /// model checker sees the publication; in production they are the data words themselves.
    #[cfg(shmring_loom)]
    loom_words: Vec<AtomicU64>,
    /// Under loom, one model cell per data word standing for the payload bytes in it (which
    /// stay plain memory): the producer touches a frame's words for writing while it owns
    /// them, the consumer for reading, so loom's causality checker reports a payload access
    /// that the header and `head` publications do not order after the other side's.
    #[cfg(shmring_loom)]
    loom_payload: crate::ring::LoomPayload,
}

impl Default for SpscControl {
    fn default() -> Self {
        Self::new()
    }
}

impl SpscControl {
    /// A control block for an empty ring.
    pub fn new() -> Self {
        SpscControl {
            tail: CachePadded::new(AtomicU64::new(0)),
            head: CachePadded::new(AtomicU64::new(0)),
            closed: CachePadded::new(AtomicU32::new(0)),
            #[cfg(shmring_loom)]
            loom_words: (0..LOOM_MAX_CAPACITY / 8)
                .map(|_| AtomicU64::new(0))
                .collect(),
            #[cfg(shmring_loom)]
            loom_payload: crate::ring::LoomPayload::new(LOOM_MAX_CAPACITY / 8),
        }
    }

    /// A control block whose positions are already `head` and `tail` (for fuzzing and for
    /// tests that start a ring in the middle of its life).
    #[doc(hidden)]
    pub fn with_positions(head: u64, tail: u64) -> Self {
        let ctrl = Self::new();
        ctrl.head.store(head, Ordering::Relaxed);
        ctrl.tail.store(tail, Ordering::Relaxed);
        ctrl
    }

    /// Bytes written and not yet read, as far as the two positions say (for display).
    pub fn used(&self) -> u64 {
        let tail = self.tail.load(Ordering::Acquire);
        let head = self.head.load(Ordering::Acquire);
        tail.wrapping_sub(head)
    }

    /// True once the sender closed its end.
    #[inline]
    pub fn sender_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) & SENDER_CLOSED != 0
    }

    /// True once the receiver closed its end.
    #[inline]
    pub fn receiver_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) & RECEIVER_CLOSED != 0
    }
}

/// Checks that `cap` can be the data size of a ring.
pub fn validate_capacity(cap: u64) -> Result<()> {
    if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
        return Err(Error::Corrupted(
            "ring capacity is not a power of two in 64 B..=4 GiB",
        ));
    }
    #[cfg(shmring_loom)]
    assert!(
        cap <= LOOM_MAX_CAPACITY,
        "loom models use rings of at most 512 bytes"
    );
    Ok(())
}

/// The largest payload a ring of `cap` data bytes accepts: the frame header and the clean word
/// after the frame take 16 bytes.
#[inline]
pub fn max_message(cap: u64) -> usize {
    (cap - 2 * FRAME_HEADER) as usize
}

/// Where the ring lives: the control block and the data bytes.
#[derive(Debug, Clone, Copy)]
struct Ring {
    ctrl: NonNull<SpscControl>,
    data: NonNull<u8>,
    cap: u64,
}

impl Ring {
    /// # Safety
    /// `ctrl` and `data .. data + cap` stay valid for reads and writes for the life of every
    /// handle made from this value; `data` is 8-aligned.
    unsafe fn new(ctrl: NonNull<SpscControl>, data: NonNull<u8>, cap: u64) -> Result<Self> {
        validate_capacity(cap)?;
        debug_assert_eq!(data.as_ptr() as usize % 8, 0);
        Ok(Ring { ctrl, data, cap })
    }

    #[inline]
    fn ctrl(&self) -> &SpscControl {
        // SAFETY: valid per `Ring::new`'s contract. `SpscControl` holds only atomics, so a
        // shared reference to it is sound even while the peer writes it.
        unsafe { self.ctrl.as_ref() }
    }

    #[inline]
    fn mask(&self) -> u64 {
        self.cap - 1
    }

    /// A pointer `off` bytes into the data; `off < cap` is the caller's to uphold.
    #[inline]
    fn at(&self, off: u64) -> *mut u8 {
        debug_assert!(off < self.cap);
        // SAFETY: `off < cap` (callers mask positions or bound-check offsets), so the result
        // stays inside the data area that `Ring::new`'s contract keeps valid.
        unsafe { self.data.as_ptr().add(off as usize) }
    }

    /// A pointer to a payload at offset `off <= cap` (an empty frame's payload may start at
    /// `cap`, one past the data: no branch for it).
    #[inline(always)]
    fn payload_at(&self, off: u64) -> *mut u8 {
        debug_assert!(off <= self.cap);
        // SAFETY: `off <= cap` (a grant's or a validated frame's payload offset), so the result
        // lies in the data area or one past its end, which stays in bounds of the same
        // allocation; a payload at `cap` is empty, so nothing is accessed through it.
        unsafe { self.data.as_ptr().add(off as usize) }
    }

    /// The header word at offset `off` (8-aligned, `< cap`), loaded once.
    #[inline]
    fn load_header(&self, off: u64, order: Ordering) -> u64 {
        debug_assert!(off % 8 == 0 && off < self.cap);
        #[cfg(not(shmring_loom))]
        {
            // SAFETY: `off` is 8-aligned and below `cap`, so the word lies in the data area;
            // every access to header words, in both processes, is atomic.
            unsafe { AtomicU64::from_ptr(self.at(off).cast()) }.load(order)
        }
        #[cfg(shmring_loom)]
        {
            self.ctrl().loom_words[(off / 8) as usize].load(order)
        }
    }

    /// Under loom: records an access to the payload bytes `off .. off + len` (see
    /// `SpscControl::loom_payload`), a write by the producer or a read by the consumer. Loom
    /// panics if the access is not ordered after every access of the other kind before it to
    /// the same words. A no-op in production.
    #[inline(always)]
    fn touch_payload(&self, off: u64, len: u64, write: bool) {
        #[cfg(shmring_loom)]
        for word in off / 8..(off + len).div_ceil(8) {
            self.ctrl().loom_payload.touch(word, write);
        }
        #[cfg(not(shmring_loom))]
        let _ = (off, len, write);
    }

    /// Stores the header word at offset `off` (8-aligned, `< cap`).
    #[inline]
    fn store_header(&self, off: u64, value: u64, order: Ordering) {
        debug_assert!(off % 8 == 0 && off < self.cap);
        #[cfg(not(shmring_loom))]
        {
            // SAFETY: as in `load_header`.
            unsafe { AtomicU64::from_ptr(self.at(off).cast()) }.store(value, order)
        }
        #[cfg(shmring_loom)]
        {
            self.ctrl().loom_words[(off / 8) as usize].store(value, order)
        }
    }
}

/// Room reserved for one message: `offset` of its payload in the data, and its `capacity`.
/// Made only by [`Producer::try_reserve`] and neither `Copy` nor `Clone`, so a grant is
/// committed once and its offset is one the producer computed.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant {
    offset: u64,
    capacity: usize,
}

impl Grant {
    /// Bytes reserved for the payload.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A message found by the consumer: its payload's `offset` and `len`, and the frame's `size`.
/// Made only by [`Consumer::try_peek`], validated there, and released once (not `Copy`).
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    offset: u64,
    len: usize,
    size: u64,
}

impl Frame {
    /// Payload length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the payload in the ring's data area.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// The producing end of an SPSC ring.
#[derive(Debug)]
pub struct Producer {
    ring: Ring,
    /// Where the next frame goes (past the staged frames, if any).
    tail: u64,
    cached_head: u64,
    /// Where the staged frames start: the `tail` last published.
    published: u64,
    /// True while frames are staged ([`stage`](Self::stage) until [`flush`](Self::flush) or
    /// [`discard`](Self::discard)).
    staging: bool,
    /// The first staged frame's (or wrap marker's) offset and header, kept back until flush.
    first: Option<(u64, u64)>,
}

// SAFETY: the producer owns its end of the ring; the pointers it holds are to memory that
// `Producer::attach`'s contract keeps valid, and every access to shared state is atomic or
// confined to bytes that the protocol gives to the producer alone.
unsafe impl Send for Producer {}

impl Producer {
    /// Attaches to a ring as its (only) producer, continuing from the current positions.
    ///
    /// # Safety
    /// `ctrl` and `cap` bytes at `data` (8-aligned) stay valid for reads and writes as long as
    /// the producer lives, and no other producer uses the ring meanwhile.
    pub unsafe fn attach(ctrl: NonNull<SpscControl>, data: NonNull<u8>, cap: u64) -> Result<Self> {
        // SAFETY: forwarded from this function's contract.
        let ring = unsafe { Ring::new(ctrl, data, cap)? };
        // Acquire: pairs with the Release stores of both positions (a producer may be replacing
        // one that died; what it published must be visible before we continue after it).
        let mut tail = ring.ctrl().tail.load(Ordering::Acquire);
        let head = ring.ctrl().head.load(Ordering::Acquire);
        check_positions(head, tail, cap)?;
        // A predecessor that died between publishing frames (their headers) and storing `tail`
        // left non-zero words from `tail` on: step over those frames rather than overwrite
        // messages the consumer may be reading. One commit publishes one frame, a batch's flush
        // a chain of them; either ends at a zero word (zeroed before the first header was
        // stored), and the chain cannot be longer than the ring.
        let mut stepped = 0;
        loop {
            let off = tail & (cap - 1);
            // Acquire: pairs with the Release store of the header in `Producer::publish` (and
            // of a batch's first header in `flush`, which orders the rest of the chain).
            let word = ring.load_header(off, Ordering::Acquire);
            if word == 0 {
                break;
            }
            let (tag, len) = ((word >> 32) as u32, word & 0xFFFF_FFFF);
            let size = match tag {
                FRAME_TAG if len <= max_message(cap) as u64 => FRAME_HEADER + align8(len),
                WRAP_TAG if off != 0 => cap - off,
                _ => return Err(Error::Corrupted("bad header at the producer's position")),
            };
            stepped += size;
            if off + size > cap || tail.wrapping_add(size).wrapping_sub(head) > cap || stepped > cap
            {
                return Err(Error::Corrupted("bad header at the producer's position"));
            }
            tail = tail.wrapping_add(size);
        }
        if stepped > 0 {
            // Release: as in `publish`; observers see the recovered position.
            ring.ctrl().tail.store(tail, Ordering::Release);
        }
        Ok(Producer {
            ring,
            tail,
            cached_head: head,
            published: tail,
            staging: false,
            first: None,
        })
    }

    /// The largest message this ring accepts.
    #[inline]
    pub fn max_message(&self) -> usize {
        max_message(self.ring.cap)
    }

    /// Data bytes of the ring.
    pub fn capacity(&self) -> u64 {
        self.ring.cap
    }

    /// True if there are `need` free bytes after our tail, re-reading `head` only if the cached
    /// copy says there are not.
    #[inline(always)]
    fn has_room(&mut self, need: u64) -> Result<bool> {
        if self.ring.cap - self.tail.wrapping_sub(self.cached_head) >= need {
            return Ok(true);
        }
        // Acquire: pairs with the consumer's Release store of `head` in `Consumer::release`
        // (and of the wrap skip in `try_peek`), so it has finished with the bytes we reuse.
        let head = self.ring.ctrl().head.load(Ordering::Acquire);
        check_positions(head, self.tail, self.ring.cap)?;
        self.cached_head = head;
        Ok(self.ring.cap - self.tail.wrapping_sub(head) >= need)
    }

    /// Reserves room for a message of `len` bytes.
    ///
    /// `Err(Full)`: no room now. Because every message is contiguous, this can happen even on an
    /// empty ring when the message does not fit before the end of the data: the wrap marker is
    /// published and the room at the start is usable once the consumer has passed it (the
    /// caller wakes a sleeping consumer for that). `Err(TooLarge)`: no room ever.
    /// `Err(Disconnected)`: the receiver closed its end.
    #[inline(always)]
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant> {
        let max = self.max_message();
        if len > max {
            return Err(Error::TooLarge { size: len, max });
        }
        if self.ring.ctrl().receiver_closed() {
            return Err(Error::Disconnected);
        }
        // The frame, plus the clean word after it (see the module docs).
        let need = 2 * FRAME_HEADER + align8(len as u64);
        let off = self.tail & self.ring.mask();
        let to_end = self.ring.cap - off;
        let off = if need - FRAME_HEADER > to_end {
            // The frame would straddle the end: pad the rest with a wrap marker, published at
            // once so that the consumer can skip it and free the start of the ring for us.
            if !self.has_room(to_end + FRAME_HEADER)? {
                return Err(Error::Full);
            }
            self.publish(off, u64::from(WRAP_TAG) << 32, to_end);
            0
        } else {
            off
        };
        if !self.has_room(need)? {
            return Err(Error::Full);
        }
        self.ring
            .touch_payload(off + FRAME_HEADER, len as u64, true);
        Ok(Grant {
            offset: off + FRAME_HEADER,
            capacity: len,
        })
    }

    /// Zeroes the word after the `size`-byte frame at `off`, then publishes the frame's header
    /// (or, while staging, writes it as the module docs' "Batches" say).
    #[inline(always)]
    fn publish(&mut self, off: u64, header: u64, size: u64) {
        let next = (off + size) & self.ring.mask();
        // Keeps the invariant that the word at the consumer's next `head` is zero or a header of
        // this lap. Ordered before the header by the Release below.
        self.ring.store_header(next, 0, Ordering::Relaxed);
        if self.staging {
            if self.first.is_none() {
                self.first = Some((off, header));
            } else {
                // Relaxed: reached only through the first header, stored Release in `flush`.
                self.ring.store_header(off, header, Ordering::Relaxed);
            }
            self.tail = self.tail.wrapping_add(size);
            return;
        }
        // Release: pairs with the Acquire load of the header in `Consumer::try_peek`: the
        // payload and the cleaned word are visible before the frame is.
        self.ring.store_header(off, header, Ordering::Release);
        self.tail = self.tail.wrapping_add(size);
        // Release: pairs with the Acquire load of `tail` in `Producer::attach` (a successor) and
        // `SpscControl::used` (observers). The consumer does not need it.
        self.ring.ctrl().tail.store(self.tail, Ordering::Release);
        self.published = self.tail;
    }

    /// Writes the first `len` bytes of `grant` as a message of a batch: invisible to the
    /// consumer until [`flush`](Self::flush), given up by [`discard`](Self::discard). Further
    /// reservations continue after it.
    ///
    /// # Panics
    /// As [`commit`](Self::commit).
    #[inline(always)]
    pub fn stage(&mut self, grant: Grant, len: usize) {
        self.staging = true;
        self.commit(grant, len);
    }

    /// Stages a copy of `msg` as the next frame of a batch in one step, where that is the
    /// simple case: the batch already holds a frame or wrap marker (kept back in `first`, so
    /// this header is stored Relaxed), the frame fits before the end of the data, and the
    /// cached `head` already shows the room. Otherwise it does nothing and returns false, and
    /// the caller takes the general path ([`try_reserve`](Self::try_reserve), copy,
    /// [`stage`](Self::stage)), which handles the first frame, wraps, a full ring and every
    /// error. Same frame, same checks as that path, fewer instructions: the bounds are
    /// computed once, and the word after the frame is not zeroed here, because it is either
    /// the next staged frame's header or the word that [`flush`](Self::flush) zeroes before it
    /// publishes the batch (see the module docs, "Batches").
    #[inline(always)]
    pub fn stage_copy(&mut self, msg: &[u8]) -> bool {
        self.stage_copies(std::slice::from_ref(&msg)) == 1
    }

    /// [`stage_copy`](Self::stage_copy) for the messages of `msgs` in order, as long as each
    /// is the simple case; returns how many it staged (the caller takes the general path for
    /// the next). The receiver's close is looked at once per call, as one `send_batch` is one
    /// operation; the positions stay in locals for the loop.
    #[inline(always)]
    pub fn stage_copies(&mut self, msgs: &[&[u8]]) -> usize {
        if self.first.is_none() || self.ring.ctrl().receiver_closed() {
            return 0;
        }
        let ring = self.ring;
        let cap = ring.cap;
        let mut tail = self.tail;
        // Where the room that the cached `head` shows ends (`tail` is never past it).
        let end = self.cached_head.wrapping_add(cap);
        let mut n = 0;
        for msg in msgs {
            // A slice is at most `isize::MAX` bytes, so none of the sums below overflows.
            let len = msg.len() as u64;
            let size = FRAME_HEADER + align8(len);
            let off = tail & ring.mask();
            // The frame within the data, and the frame plus the word after it within the
            // room (the general path re-reads `head` when it is not). The room is at most
            // `cap`, so this also bounds `len` by `max_message`.
            if off + size > cap || end.wrapping_sub(tail) < size + FRAME_HEADER {
                break;
            }
            let payload = off + FRAME_HEADER;
            ring.touch_payload(payload, len, true);
            // SAFETY: `payload .. payload + len` lies in the data (`off + size <= cap`) and in
            // the room between our tail and the consumer's head, which the protocol gives to
            // the producer alone until it publishes; `msg` is the caller's memory, no overlap.
            unsafe { copy_bytes(msg.as_ptr(), ring.payload_at(payload), msg.len()) };
            // Relaxed: a staged header after the first, reached only through the first
            // header, stored Release in `flush`.
            ring.store_header(off, (u64::from(FRAME_TAG) << 32) | len, Ordering::Relaxed);
            tail = tail.wrapping_add(size);
            n += 1;
        }
        self.tail = tail;
        n
    }

    /// Starts a batch: from now until [`flush`](Self::flush) or [`discard`](Self::discard),
    /// the wrap markers that reservations write are staged too.
    #[inline]
    pub fn begin_batch(&mut self) {
        self.staging = true;
    }

    /// Publishes every staged frame at once: the first one's header (Release), then `tail`.
    /// True if anything was published (the caller wakes the consumer).
    #[inline]
    pub fn flush(&mut self) -> bool {
        self.staging = false;
        let Some((off, header)) = self.first.take() else {
            return false;
        };
        // The word after the last staged frame: `stage_copy` leaves it to us (zeroing it again
        // after a frame of the general path is harmless: it lies in the room that frame's
        // reservation checked). Ordered before the first header by the Release below.
        self.ring
            .store_header(self.tail & self.ring.mask(), 0, Ordering::Relaxed);
        // Release: pairs with the Acquire load of the header in `Consumer::try_peek`: every
        // staged payload, zeroed word and later header is visible before the first frame is.
        self.ring.store_header(off, header, Ordering::Release);
        // Release: as in `publish`.
        self.ring.ctrl().tail.store(self.tail, Ordering::Release);
        self.published = self.tail;
        true
    }

    /// Gives the staged frames up: the next reservation starts where they started. Nothing
    /// was visible, so nothing is undone in the ring (see the module docs).
    pub fn discard(&mut self) {
        self.staging = false;
        self.first = None;
        self.tail = self.published;
    }

    /// A pointer to the payload bytes of `grant`, for the caller to fill.
    #[inline]
    pub fn payload(&self, grant: &Grant) -> *mut u8 {
        self.ring.payload_at(grant.offset)
    }

    /// Publishes the first `len` bytes of `grant` as one message.
    ///
    /// # Panics
    /// If `len > grant.capacity`: that is a bug in the caller, not in the peer.
    #[inline]
    pub fn commit(&mut self, grant: Grant, len: usize) {
        assert!(
            len <= grant.capacity,
            "commit of {len} bytes into a reservation of {}",
            grant.capacity
        );
        let off = grant.offset - FRAME_HEADER;
        debug_assert_eq!(off, self.tail & self.ring.mask());
        let size = FRAME_HEADER + align8(len as u64);
        self.ring.touch_payload(grant.offset, len as u64, true);
        self.publish(off, (u64::from(FRAME_TAG) << 32) | len as u64, size);
    }

    /// Gives a reservation up: nothing was published, so nothing needs undoing (a wrap marker
    /// published on the way stays valid); the room is reserved again by the next call.
    pub fn abandon(&mut self, grant: Grant) {
        let _ = grant;
    }

    /// Always false: one producer, so there is nobody to pass a wake on to.
    pub fn room(&self) -> bool {
        false
    }

    /// Closes the producing end: the consumer drains what was committed, then sees
    /// `Disconnected`.
    pub fn close(&self) {
        // Release: pairs with the Acquire load in `SpscControl::sender_closed`, after which
        // the consumer looks at its header word once more and so sees every commit made before.
        self.ring
            .ctrl()
            .closed
            .fetch_or(SENDER_CLOSED, Ordering::Release);
    }

    /// True once the consumer closed its end.
    pub fn is_closed(&self) -> bool {
        self.ring.ctrl().receiver_closed()
    }
}

/// A hint to start loading the cache line at `p` (it may be anywhere, even unmapped: a
/// prefetch never faults).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(shmring_loom)))]
    // SAFETY: PREFETCHT0 only hints the cache; it never faults or changes memory, whatever the
    // address (SSE is part of the x86_64 baseline).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(all(target_arch = "x86_64", not(shmring_loom))))]
    let _ = p;
}

/// Checks a pair of positions read (partly) from shared memory.
fn check_positions(head: u64, tail: u64, cap: u64) -> Result<()> {
    if tail.wrapping_sub(head) > cap {
        return Err(Error::Corrupted(
            "ring positions are more than the capacity apart",
        ));
    }
    if head % 8 != 0 || tail % 8 != 0 {
        return Err(Error::Corrupted("ring position is not 8-byte aligned"));
    }
    Ok(())
}

/// The consuming end of an SPSC ring.
#[derive(Debug)]
pub struct Consumer {
    ring: Ring,
    /// Where the next frame is read (past the taken frames, if any).
    head: u64,
    /// True while `head` has moved past taken frames that [`flush_taken`](Self::flush_taken)
    /// has not given back yet.
    taken: bool,
}

// SAFETY: as for `Producer`: the consumer owns its end, and all shared accesses are atomic or
// confined to bytes the protocol has handed to the consumer.
unsafe impl Send for Consumer {}

impl Consumer {
    /// Attaches to a ring as its (only) consumer, continuing from the current positions.
    ///
    /// # Safety
    /// As for [`Producer::attach`], with "consumer" for "producer".
    pub unsafe fn attach(ctrl: NonNull<SpscControl>, data: NonNull<u8>, cap: u64) -> Result<Self> {
        // SAFETY: forwarded from this function's contract.
        let ring = unsafe { Ring::new(ctrl, data, cap)? };
        // Acquire: pairs with the Release stores of both positions.
        let head = ring.ctrl().head.load(Ordering::Acquire);
        let tail = ring.ctrl().tail.load(Ordering::Acquire);
        check_positions(head, tail, cap)?;
        Ok(Consumer {
            ring,
            head,
            taken: false,
        })
    }

    /// The largest message this ring can carry.
    #[inline]
    pub fn max_message(&self) -> usize {
        max_message(self.ring.cap)
    }

    /// Finds the next message without consuming it.
    ///
    /// `Err(Empty)`: nothing now. `Err(Disconnected)`: the producer closed its end and every
    /// message is read. `Err(Corrupted)`: a header no honest producer writes.
    /// A wrap marker that is skipped is released at once (the producer may be waiting for that
    /// room); the caller wakes a sleeping producer on `Err(Empty)`.
    #[inline(always)]
    pub fn try_peek(&mut self) -> Result<Frame> {
        // At most one wrap marker precedes a frame: a marker at offset 0 is never written.
        for _ in 0..2 {
            let off = self.head & self.ring.mask();
            // Acquire: pairs with the Release store of the header in `Producer::publish`.
            let mut word = self.ring.load_header(off, Ordering::Acquire);
            if word == 0 {
                if !self.ring.ctrl().sender_closed() {
                    // While we wait on the header's line, ask for the next line too: a message
                    // longer than the rest of the header's line then arrives in two transfers
                    // that overlap instead of one after the other.
                    prefetch(self.ring.at(off).wrapping_add(64));
                    return Err(Error::Empty);
                }
                // The close is ordered after the last publication: one more look.
                word = self.ring.load_header(off, Ordering::Acquire);
                if word == 0 {
                    return Err(Error::Disconnected);
                }
            }
            let (tag, len) = ((word >> 32) as u32, word & 0xFFFF_FFFF);
            match tag {
                FRAME_TAG => {
                    if len > max_message(self.ring.cap) as u64 {
                        return Err(Error::Corrupted("frame longer than the ring allows"));
                    }
                    let size = FRAME_HEADER + align8(len);
                    if off + size > self.ring.cap {
                        return Err(Error::Corrupted("frame runs past the end of the ring"));
                    }
                    self.ring.touch_payload(off + FRAME_HEADER, len, false);
                    return Ok(Frame {
                        offset: off + FRAME_HEADER,
                        len: len as usize,
                        size,
                    });
                }
                WRAP_TAG if off != 0 => {
                    self.head = self.head.wrapping_add(self.ring.cap - off);
                    if !self.taken {
                        // Release: pairs with the Acquire load of `head` in
                        // `Producer::has_room`. (With frames taken, `flush_taken` stores it.)
                        self.ring.ctrl().head.store(self.head, Ordering::Release);
                    }
                }
                WRAP_TAG => return Err(Error::Corrupted("wrap marker at the start of the ring")),
                _ => return Err(Error::Corrupted("bad frame tag")),
            }
        }
        Err(Error::Corrupted("two wrap markers in a row"))
    }

    /// A pointer to the payload of `frame`.
    #[inline]
    pub fn payload(&self, frame: &Frame) -> *const u8 {
        self.ring.payload_at(frame.offset)
    }

    /// Consumes `frame` (the one [`try_peek`](Self::try_peek) returned) and frees its bytes.
    #[inline]
    pub fn release(&mut self, frame: Frame) {
        self.ring
            .touch_payload(frame.offset, frame.len as u64, false);
        self.head = self.head.wrapping_add(frame.size);
        // Release: pairs with the Acquire load of `head` in `Producer::has_room`: we are done
        // reading the frame before the producer may overwrite it.
        self.ring.ctrl().head.store(self.head, Ordering::Release);
    }

    /// Consumes `frame` as part of a batch: the next [`try_peek`](Self::try_peek) reads past
    /// it, but its bytes stay ours (valid to read) until [`flush_taken`](Self::flush_taken).
    #[inline(always)]
    pub fn take(&mut self, frame: Frame) {
        self.ring
            .touch_payload(frame.offset, frame.len as u64, false);
        self.head = self.head.wrapping_add(frame.size);
        self.taken = true;
    }

    /// Takes up to `max` ready frames in order, as that many [`try_peek`](Self::try_peek) +
    /// [`take`](Self::take) would, handing each payload (pointer, length) to `f`; returns how
    /// many, and the error that stopped it early (`Empty` when nothing more is ready, which
    /// the next `try_peek` finds again). The loop keeps the positions in locals and handles
    /// only plain frames itself, each validated as `try_peek` does (tag, length, within the
    /// data); any other word (zero, a wrap marker, a bad header) goes to `try_peek`.
    #[inline(always)]
    pub fn take_ready(
        &mut self,
        max: usize,
        mut f: impl FnMut(*const u8, usize),
    ) -> (usize, Option<Error>) {
        let ring = self.ring;
        let cap = ring.cap;
        let max_len = max_message(cap) as u64;
        let mut head = self.head;
        let mut n = 0;
        while n < max {
            let off = head & ring.mask();
            // Acquire: pairs with the Release store of the header in `Producer::publish`, or
            // of a batch's first header in `Producer::flush` (which orders the later ones).
            let hdr = ring.load_header(off, Ordering::Acquire);
            let len = hdr & 0xFFFF_FFFF;
            let size = FRAME_HEADER + align8(len);
            if (hdr >> 32) as u32 != FRAME_TAG || len > max_len || off + size > cap {
                // The general path decides; with frames taken it must not store `head` (a
                // wrap skip), hence `taken` first.
                self.head = head;
                self.taken |= n > 0;
                match self.try_peek() {
                    Ok(frame) => {
                        f(self.payload(&frame), frame.len);
                        self.take(frame);
                        head = self.head;
                        n += 1;
                        continue;
                    }
                    Err(e) => return (n, Some(e)),
                }
            }
            let payload = off + FRAME_HEADER;
            ring.touch_payload(payload, len, false);
            f(ring.payload_at(payload), len as usize);
            head = head.wrapping_add(size);
            n += 1;
        }
        self.head = head;
        self.taken |= n > 0;
        (n, None)
    }

    /// Gives back every frame taken since the last flush, with one store of `head`. True if
    /// anything was given back (the caller wakes a producer waiting for room).
    #[inline]
    pub fn flush_taken(&mut self) -> bool {
        if !std::mem::take(&mut self.taken) {
            return false;
        }
        // Release: pairs with the Acquire load of `head` in `Producer::has_room`: we are done
        // reading the taken frames before the producer may overwrite them.
        self.ring.ctrl().head.store(self.head, Ordering::Release);
        true
    }

    /// Always false: a skipped wrap marker is reported by `Err(Empty)` itself (the channel
    /// layer wakes the producer on every `Empty` of an SPSC ring).
    pub fn freed_skips(&mut self) -> bool {
        false
    }

    /// Always false: one consumer, so there is nobody to pass a wake on to.
    pub fn more(&self) -> bool {
        false
    }

    /// Closes the consuming end: the producer's next reservation fails with `Disconnected`.
    pub fn close(&self) {
        // Release: pairs with the Acquire load in `SpscControl::receiver_closed`.
        self.ring
            .ctrl()
            .closed
            .fetch_or(RECEIVER_CLOSED, Ordering::Release);
    }

    /// True once the producer closed its end.
    pub fn is_closed(&self) -> bool {
        self.ring.ctrl().sender_closed()
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;

    /// A ring on the heap: the control block and 8-aligned data.
    struct HeapRing {
        ctrl: Box<SpscControl>,
        data: Vec<u64>,
    }

    impl HeapRing {
        fn new(cap: u64) -> Self {
            HeapRing {
                ctrl: Box::new(SpscControl::new()),
                data: vec![0; cap as usize / 8],
            }
        }
        fn ends(&mut self) -> (Producer, Consumer) {
            let cap = self.data.len() as u64 * 8;
            let ctrl = NonNull::from(&*self.ctrl);
            let data = NonNull::new(self.data.as_mut_ptr().cast::<u8>()).unwrap();
            // SAFETY: the heap ring outlives both ends in every test (they are dropped first).
            unsafe {
                (
                    Producer::attach(ctrl, data, cap).unwrap(),
                    Consumer::attach(ctrl, data, cap).unwrap(),
                )
            }
        }
    }

    fn send(p: &mut Producer, msg: &[u8]) -> Result<()> {
        let g = p.try_reserve(msg.len())?;
        // SAFETY: the grant covers msg.len() bytes owned by the producer.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p.payload(&g), msg.len()) };
        p.commit(g, msg.len());
        Ok(())
    }

    fn recv(c: &mut Consumer) -> Result<Vec<u8>> {
        let f = c.try_peek()?;
        // SAFETY: the frame was validated to lie in the data area.
        let v = unsafe { std::slice::from_raw_parts(c.payload(&f), f.len) }.to_vec();
        c.release(f);
        Ok(v)
    }

    fn stage(p: &mut Producer, msg: &[u8]) -> Result<()> {
        let g = p.try_reserve(msg.len())?;
        // SAFETY: the grant covers msg.len() bytes owned by the producer.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p.payload(&g), msg.len()) };
        p.stage(g, msg.len());
        Ok(())
    }

    /// Batches of every size through a small ring, across many wraps: nothing of a batch is
    /// visible before its flush, everything after it, in order; taken frames are given back
    /// together, and a discarded batch leaves no trace.
    #[test]
    fn staged_batches_publish_at_flush_and_taken_frames_free_at_flush() {
        staged_batches(false);
    }

    /// The same through the batch fast paths: `stage_copy` (falling back to reserve + stage
    /// as `SendBatch::push` does) and `take_ready`, whose frames must be exactly those
    /// `try_peek` + `take` find, wraps, discards and early stops included.
    #[test]
    fn fast_batch_paths_deliver_what_the_general_paths_do() {
        staged_batches(true);
    }

    fn stage_fast(p: &mut Producer, msg: &[u8]) -> Result<()> {
        if p.stage_copy(msg) {
            return Ok(());
        }
        stage(p, msg)
    }

    fn staged_batches(fast: bool) {
        let mut r = HeapRing::new(256);
        let (mut p, mut c) = r.ends();
        let mut next = 0u32; // next message number sent
        let mut want = 0u32; // next message number expected
        let rounds = if cfg!(miri) { 200 } else { 5_000u32 };
        for round in 0..rounds {
            p.begin_batch();
            let n = round % 7;
            let mut staged = 0;
            for _ in 0..n {
                let msg = next.to_le_bytes().repeat((next % 5) as usize + 1);
                let staged_one = if fast {
                    stage_fast(&mut p, &msg)
                } else {
                    stage(&mut p, &msg)
                };
                match staged_one {
                    Ok(()) => {
                        staged += 1;
                        next += 1;
                    }
                    Err(Error::Full) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            // Unpublished: the consumer sees nothing of it.
            assert!(matches!(c.try_peek(), Err(Error::Empty)), "round {round}");
            if round % 11 == 10 {
                p.discard();
                next -= staged;
                assert!(matches!(c.try_peek(), Err(Error::Empty)));
                continue;
            }
            let pending = p.first.is_some(); // a frame, or a wrap marker staged by a Full
            assert!(staged == 0 || pending);
            assert_eq!(p.flush(), pending);
            let mut got = 0;
            if fast {
                // In steps of 1..=3, so that `max` stops some calls early.
                loop {
                    let step = (round % 3) as usize + 1;
                    let mut bad = None;
                    let (k, stop) = c.take_ready(step, |ptr, len| {
                        // SAFETY: validated to lie in the data area, and ours until
                        // `flush_taken`.
                        let msg = unsafe { std::slice::from_raw_parts(ptr, len) };
                        let expect = want.to_le_bytes().repeat((want % 5) as usize + 1);
                        if msg != &expect[..] {
                            bad = Some(want);
                        }
                        want += 1;
                    });
                    assert_eq!(bad, None, "round {round}");
                    got += k as u32;
                    match stop {
                        None => assert_eq!(k, step),
                        Some(Error::Empty) => break,
                        Some(e) => panic!("{e}"),
                    }
                }
            }
            loop {
                match c.try_peek() {
                    Ok(f) => {
                        // SAFETY: the frame was validated to lie in the data area, and stays
                        // ours until `flush_taken`.
                        let msg = unsafe { std::slice::from_raw_parts(c.payload(&f), f.len) };
                        let expect = want.to_le_bytes().repeat((want % 5) as usize + 1);
                        assert_eq!(msg, &expect[..], "round {round}");
                        want += 1;
                        got += 1;
                        c.take(f);
                    }
                    Err(Error::Empty) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got, staged, "round {round}");
            let had = c.taken; // frames, or a wrap marker skipped while taking
            assert!(got == 0 || had);
            assert_eq!(c.flush_taken(), had);
        }
        assert_eq!(want, next);
        assert!(next > rounds, "batches were sent");
    }

    /// A producer that dies after a flush stored the first header but before `tail`: its
    /// successor steps over the whole published chain instead of writing over it.
    #[test]
    fn a_successor_steps_over_a_flushed_chain() {
        let mut r = HeapRing::new(256);
        let (mut p, mut c) = r.ends();
        p.begin_batch();
        for i in 0..3u8 {
            stage(&mut p, &[i; 10]).unwrap();
        }
        let before = p.published;
        assert!(p.flush());
        // "Died" between the first header's store and the tail's: the tail never moved.
        r.ctrl.tail.store(before, Ordering::Relaxed);
        let ctrl = NonNull::from(&*r.ctrl);
        let data = NonNull::new(r.data.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: the heap ring outlives the end; the old producer is gone.
        let mut p2 = unsafe { Producer::attach(ctrl, data, 256).unwrap() };
        send(&mut p2, &[9; 4]).unwrap();
        for i in 0..3u8 {
            assert_eq!(recv(&mut c).unwrap(), [i; 10]);
        }
        assert_eq!(recv(&mut c).unwrap(), [9; 4]);
    }

    #[test]
    fn fifo_with_wrap_around_at_minimum_capacity() {
        let mut r = HeapRing::new(64);
        let (mut p, mut c) = r.ends();
        // Miri interprets every step: fewer rounds there (still many laps of a 64-byte ring).
        let rounds = if cfg!(miri) { 1_000 } else { 10_000usize };
        for i in 0..rounds {
            let msg: Vec<u8> = (0..(i % 57)).map(|b| (b + i) as u8).collect();
            if msg.len() > p.max_message() {
                continue;
            }
            if let Err(Error::Full) = send(&mut p, &msg) {
                // A wrap marker was published: the consumer must pass it first.
                assert!(matches!(recv(&mut c), Err(Error::Empty)));
                send(&mut p, &msg).unwrap();
            }
            assert_eq!(recv(&mut c).unwrap(), msg);
        }
        assert!(matches!(recv(&mut c), Err(Error::Empty)));
    }

    #[test]
    fn largest_message_fits_and_one_more_byte_is_too_large() {
        let mut r = HeapRing::new(256);
        let (mut p, mut c) = r.ends();
        assert_eq!(p.max_message(), 240);
        // Offset the ring so the largest message needs the wrap marker first.
        send(&mut p, &[1; 13]).unwrap();
        recv(&mut c).unwrap();
        let big = vec![7u8; 240];
        // Room only once the consumer skips the wrap marker: Full first, then it fits.
        assert!(matches!(send(&mut p, &big), Err(Error::Full)));
        assert!(matches!(recv(&mut c), Err(Error::Empty)));
        send(&mut p, &big).unwrap();
        assert_eq!(recv(&mut c).unwrap(), big);
        assert!(matches!(
            p.try_reserve(241),
            Err(Error::TooLarge {
                size: 241,
                max: 240
            })
        ));
        send(&mut p, &[]).unwrap();
        assert_eq!(recv(&mut c).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn full_then_room_after_release() {
        let mut r = HeapRing::new(64);
        let (mut p, mut c) = r.ends();
        send(&mut p, &[1; 16]).unwrap(); // 24-byte frame
        send(&mut p, &[2; 16]).unwrap(); // 16 bytes left: no room for another with its clean word
        assert!(matches!(send(&mut p, &[3]), Err(Error::Full)));
        assert_eq!(recv(&mut c).unwrap(), vec![1; 16]);
        send(&mut p, &[3; 8]).unwrap();
        assert_eq!(recv(&mut c).unwrap(), vec![2; 16]);
        assert_eq!(recv(&mut c).unwrap(), vec![3; 8]);
    }

    #[test]
    fn a_new_producer_steps_over_a_frame_published_without_its_tail() {
        let mut r = HeapRing::new(256);
        let (mut p, mut c) = r.ends();
        send(&mut p, b"first").unwrap();
        send(&mut p, b"second").unwrap();
        // The producer "died" after publishing "second" but before storing tail.
        r.ctrl.tail.store(16, Ordering::Relaxed);
        let (mut p2, _) = r.ends();
        send(&mut p2, b"third").unwrap();
        assert_eq!(recv(&mut c).unwrap(), b"first");
        assert_eq!(recv(&mut c).unwrap(), b"second");
        assert_eq!(recv(&mut c).unwrap(), b"third");
    }

    #[test]
    fn reserve_without_commit_sends_nothing() {
        let mut r = HeapRing::new(64);
        let (mut p, mut c) = r.ends();
        let _ = p.try_reserve(40).unwrap();
        assert!(matches!(recv(&mut c), Err(Error::Empty)));
        send(&mut p, b"x").unwrap();
        assert_eq!(recv(&mut c).unwrap(), b"x");
    }

    /// A producer and a consumer thread: every message arrives once, whole and in order (under
    /// Miri this also checks the hand-over for data races).
    #[test]
    fn threads_fifo_whole_messages() {
        let n: usize = if cfg!(miri) { 300 } else { 100_000 };
        let mut r = HeapRing::new(256);
        let (mut p, mut c) = r.ends();
        let message = |i: usize| -> Vec<u8> { (0..i % 100).map(|b| (b ^ i) as u8).collect() };
        std::thread::scope(|s| {
            let producer = s.spawn(move || {
                for i in 0..n {
                    let msg = message(i);
                    while let Err(e) = send(&mut p, &msg) {
                        assert!(matches!(e, Error::Full), "{e}");
                        std::thread::yield_now();
                    }
                }
                p.close();
            });
            let mut i = 0;
            loop {
                match recv(&mut c) {
                    Ok(m) => {
                        assert_eq!(m, message(i), "message {i}");
                        i += 1;
                    }
                    // A producer that ended without closing panicked: stop, the scope re-raises.
                    Err(Error::Empty) if producer.is_finished() && !c.is_closed() => break,
                    Err(Error::Empty) => std::thread::yield_now(),
                    Err(Error::Disconnected) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(i, n);
        });
    }

    #[test]
    fn close_is_seen_after_drain() {
        let mut r = HeapRing::new(64);
        let (mut p, mut c) = r.ends();
        send(&mut p, b"last").unwrap();
        p.close();
        assert_eq!(recv(&mut c).unwrap(), b"last");
        assert!(matches!(recv(&mut c), Err(Error::Disconnected)));
        c.close();
        assert!(matches!(send(&mut p, b"x"), Err(Error::Disconnected)));
    }

    /// SplitMix64: a tiny deterministic generator for the scribble test.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A hostile peer scribbles over the positions and frame headers; each side only ever gets
    /// in-bounds data or `Corrupted` (or Empty/Full/Disconnected), never panics.
    #[test]
    fn scribbled_positions_and_headers_yield_corrupted_never_ub() {
        let cap = 256u64;
        let mut rng = 0x5EED_u64;
        let mut corrupted = 0;
        // Miri interprets every step: fewer rounds there.
        let rounds = if cfg!(miri) { 1_000 } else { 20_000 };
        for round in 0..rounds {
            let mut r = HeapRing::new(cap);
            let (mut p, mut c) = r.ends();
            for i in 0..(round % 5) {
                let _ = send(&mut p, &vec![i as u8; (splitmix(&mut rng) % 100) as usize]);
            }
            // Scribble: random words over the data and the tail position, sometimes plausible.
            let words = r.data.len();
            for _ in 0..(splitmix(&mut rng) % 4) {
                let w = (splitmix(&mut rng) as usize) % words;
                r.data[w] = match splitmix(&mut rng) % 3 {
                    0 => splitmix(&mut rng),
                    1 => (u64::from(FRAME_TAG) << 32) | (splitmix(&mut rng) % 600),
                    _ => u64::from(WRAP_TAG) << 32,
                };
            }
            if splitmix(&mut rng) % 2 == 0 {
                let t = match splitmix(&mut rng) % 3 {
                    0 => splitmix(&mut rng),
                    1 => splitmix(&mut rng) % 512,
                    _ => (splitmix(&mut rng) % 64) * 8,
                };
                r.ctrl.head.store(t, Ordering::Relaxed);
                // The producer validates the consumer's position before it trusts it.
                match p.try_reserve(8) {
                    Ok(_) | Err(Error::Full) | Err(Error::Corrupted(_)) => {}
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            if round % 2 == 1 {
                // The batch read path: every frame it hands over lies in the data.
                let base = r.data.as_ptr() as usize;
                let (_, stop) = c.take_ready(8, |ptr, len| {
                    let off = ptr as usize - base;
                    assert!(
                        off + len <= cap as usize,
                        "frame out of bounds: {off} + {len}"
                    );
                });
                match stop {
                    None | Some(Error::Empty | Error::Disconnected) => {}
                    Some(Error::Corrupted(_)) => corrupted += 1,
                    Some(e) => panic!("unexpected error {e}"),
                }
                c.flush_taken();
                continue;
            }
            for _ in 0..8 {
                match c.try_peek() {
                    Ok(f) => {
                        assert!(f.offset + f.len as u64 <= cap, "frame out of bounds: {f:?}");
                        c.release(f);
                    }
                    Err(Error::Corrupted(_)) => {
                        corrupted += 1;
                        break;
                    }
                    Err(Error::Empty | Error::Disconnected) => break,
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        }
        assert!(
            corrupted > rounds / 20,
            "the scribbles should often be detected ({corrupted} of {rounds})"
        );
    }
}

/// Bytes of the SPSC control block that [`observe`] reads.
#[cfg(not(shmring_loom))]
pub const CONTROL_LEN: usize = std::mem::size_of::<SpscControl>();

/// Reads the control block at `ctrl` of a ring of `cap` data bytes without attaching to it, for
/// monitoring. Each word is read at its field's offset in the real `#[repr(C)]` block
/// (`offset_of!`; `CachePadded` is `repr(C)` with its value first), so reordering
/// [`SpscControl`] cannot make a monitor read the wrong word. Display only: the words are read
/// one at a time (Relaxed), and a hostile peer may have written anything; check
/// [`RingView::consistent`] before trusting `used`.
///
/// # Safety
/// `ctrl` is aligned for [`SpscControl`] and valid for reads of [`CONTROL_LEN`] bytes for the
/// duration of the call, and every concurrent write to those bytes is atomic.
#[cfg(not(shmring_loom))]
pub unsafe fn observe(ctrl: NonNull<u8>, cap: u64) -> crate::ring::layout::RingView {
    use crate::ring::layout::{peek_u32, peek_u64, RingView};
    use std::mem::offset_of;
    // SAFETY: each offset is a field of the block the contract makes readable; the block is
    // aligned, and so (repr(C)) is each field.
    let (tail, head, closed) = unsafe {
        (
            peek_u64(ctrl, offset_of!(SpscControl, tail)),
            peek_u64(ctrl, offset_of!(SpscControl, head)),
            peek_u32(ctrl, offset_of!(SpscControl, closed)),
        )
    };
    RingView {
        head,
        tail,
        used: tail.wrapping_sub(head),
        capacity: cap,
        senders_closed: closed & SENDER_CLOSED != 0,
        receivers_closed: closed & RECEIVER_CLOSED != 0,
        senders: None,
        receivers: None,
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod observe_tests {
    use super::*;

    #[test]
    fn observe_matches_the_ring_own_used_and_closed_flags() {
        let ctrl = Box::new(SpscControl::new());
        let mut data = vec![0u64; 512 / 8];
        let c = NonNull::from(&*ctrl);
        let d = NonNull::new(data.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `ctrl` and `data` outlive both ends (dropped at the end of the test).
        let (mut p, mut r) = unsafe {
            (
                Producer::attach(c, d, 512).unwrap(),
                Consumer::attach(c, d, 512).unwrap(),
            )
        };
        let view = || {
            // SAFETY: `ctrl` is a live, aligned control block; all its writes are atomic.
            unsafe { observe(c.cast(), 512) }
        };
        assert_eq!(view().used, 0);
        for (i, len) in [1usize, 40, 100, 7].into_iter().enumerate() {
            let g = p.try_reserve(len).unwrap();
            p.commit(g, len);
            let v = view();
            assert_eq!(v.used, ctrl.used(), "after message {i}");
            assert_eq!((v.head, v.tail), (0, v.used));
            assert!(v.consistent());
        }
        assert_eq!(view().used, 8 + 8 + (8 + 40) + (8 + 104) + (8 + 8));
        let f = r.try_peek().unwrap();
        r.release(f);
        assert_eq!(view().used, ctrl.used());
        assert_eq!(view().head, 16);
        assert!(!view().senders_closed && !view().receivers_closed);
        p.close();
        assert!(view().senders_closed && !view().receivers_closed);
        r.close();
        assert!(view().receivers_closed);
        assert_eq!((view().senders, view().receivers), (None, None));
    }
}
