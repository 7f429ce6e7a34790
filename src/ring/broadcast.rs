//! The broadcast ring: one writer, many readers, and every reader sees every message.
//!
//! # Positions and slots
//! `slots` (a power of two, at least 2) fixed-size slots, each [`SLOT_HEADER`] bytes (a stamp
//! word and a length word) plus room for `slot_size` payload bytes, padded to 8. Positions count
//! messages since the ring was made (`u64`, never wrapping in practice); position `p` lives in
//! slot `p & (slots - 1)`. The writer alone moves `tail` (the next position it writes); each
//! reader has its own *cursor* (the next position it reads) in a *reader place* of the control
//! block, alone on its cache line, so readers never contend with each other.
//!
//! # The stamp: a per-slot sequence lock
//! Readers do not share a head that the writer could wait on, and in [`Overflow::Overwrite`]
//! mode the writer does not wait at all: a slot may be rewritten while a slow reader copies it.
//! So each slot carries a stamp that says which position it holds and whether it is complete:
//!
//! * `0`: never written;
//! * `2p + 1` (odd, [`writing`]): the writer is writing position `p` into it;
//! * `2p + 2` (even, [`done`]): position `p` is complete.
//!
//! The writer of position `p` stores `writing(p)` (Relaxed), issues a Release fence, writes
//! length and payload, then stores `done(p)` with Release. (In `Block` mode it skips the
//! `writing` store and its fence: no reader copies a slot the writer may be rewriting, so the
//! odd stamp would only cost a transfer of the line the reader polls; the slot keeps
//! `done(p - slots)`, or 0, until `done(p)`.) A reader at cursor `p` loads the
//! stamp with Acquire: `done(p)` means the message is there; anything smaller (older lap,
//! being written, never written) means not yet; anything larger means the writer has lapped the
//! reader. In `Overwrite` mode the reader copies length and payload out (atomic word loads, into
//! its own buffer), issues an Acquire fence and loads the stamp again: still `done(p)`, the copy
//! is the message; changed, the writer overwrote the slot meanwhile and the copy is thrown away.
//! The fences pair up: if any word the reader copied was written after the writer's Release
//! fence (a newer message), the reader's Acquire fence makes the re-load see at least that
//! message's `writing` stamp. So a reader never returns a torn or overwritten message.
//!
//! # Overflow policies
//! Chosen at creation and recorded in the control block ([`BroadcastControl::new`]):
//!
//! * [`Overflow::Block`]: the writer may write position `t` only while every live reader's
//!   cursor `c` has `t - c < slots` (and the history window, below, holds). It does not scan the
//!   readers per message: it keeps the slowest position it last found (`min`) and rescans the
//!   places only when `t - min` says full. Readers store their cursor with Release once done
//!   with a message; the writer's rescan loads it (SeqCst, which acquires), so a slot is
//!   rewritten only after every reader has finished with it, and a zero-copy guard borrowing a
//!   slot is sound: the reader's own cursor holds the writer back. A reader that dies is
//!   detached by the blocked writer's liveness check ([`Watcher::detach_dead`], once per
//!   liveness interval) and no longer counts.
//! * [`Overflow::Overwrite`]: the writer never waits and never reads the cursors (they are
//!   kept for display). A lapped reader gets [`Error::Lagged`] once, with the number of messages
//!   it missed, and continues from the oldest message still retained. Every message is copied
//!   out and validated (above) before it is handed out, so a guard is over the reader's own
//!   copy, never over a slot the writer can overwrite.
//!
//! # Joining, and history
//! A reader joins by taking a free place (the channel layer's liveness lock `READER_BASE + j`
//! for place `j`). It starts at the current `tail` (it sees what is sent after it joined), or
//! with `history = n` at `tail - n`: the newest `n` messages already sent, when retained.
//! `history < slots`; in `Block` mode the writer keeps the newest `history` messages as if a
//! reader were `history` behind it, so a late joiner finds them.
//!
//! In `Block` mode a joiner may start behind the position the writer's cached `min` lets it
//! overwrite (the writer did not see the joiner). A handshake closes that window; every access
//! in it is SeqCst, so all of them are in one total order:
//!
//! * writer's rescan: load `joins` (J1), load `hi` and every active place, store the new
//!   minimum in `writer_min` (W), load `joins` again (J2); J2 != J1: scan again, the result is
//!   not used. `writer_min` never decreases (the scan result is raised to the last published
//!   value).
//! * joiner: store its cursor `c0` and its active state, raise `hi` (S), increment `joins` (F),
//!   load `writer_min` (M) and start at `max(c0, M)`.
//!
//! A scan that missed S either loaded J2 after F (it retries, and the next scan, starting after
//! F, sees S), or loaded J2 before F, so its W precedes M and the joiner starts at or after
//! it. Either way the writer never uses a minimum above a live reader's cursor. (One visible
//! effect: with no reader attached the minimum follows the writer's own position, batch
//! included, so a reader that joins while a batch is staged starts after that batch.)
//!
//! # Trust
//! Stamps, lengths, positions, cursors and settings are read into locals and checked: a stamp
//! names a position of its own slot (or is 0); a length is at most `slot_size`; a policy is
//! known and `history < slots`; a reader place exists. A value no honest peer writes is
//! [`Error::Corrupted`] (for a length read from a slot that was being overwritten, the copy is
//! thrown away first, as a lap). Cursors above the writer's position are ignored (a reader
//! cannot be ahead of the writer). Every loop is bounded.
//!
//! # Orderings and their partners (for the loom models and `.ci/loom-mutants`)
//! | Site | Ordering | Partner |
//! |---|---|---|
//! | `Producer::try_reserve`: stamp `writing(p)` | Relaxed + `fence(Release)` | reader's `fence(Acquire)` in `Consumer::copy_validated` |
//! | `Producer::commit` / `flush`: stamp `done(p)` | Release | reader's stamp load in `Consumer::claim` (Acquire) |
//! | `Producer::commit` / `flush`: `tail` | Release | joiner's `tail` load in `Consumer::activate`, `Consumer::lapped` (Acquire) |
//! | `Consumer::release` / `flush_taken`: cursor | Release | writer's cursor load in `Producer::rescan` (SeqCst) |
//! | `Consumer::claim`: stamp | Acquire | `Producer::commit` / `flush` |
//! | `Consumer::copy_validated`: `fence(Acquire)` then stamp reload | Acquire fence | `Producer::try_reserve`'s Release fence |
//! | rescan / join handshake (`joins`, `writer_min`, `hi`, place state and cursor) | SeqCst | each other (see "Joining"; loom model `broadcast_spin_reader_joins_while_block_writer_runs`) |
//! | `leave_sender` | Release | `senders_gone` (Acquire) |
//! | detach / close: place state CAS | AcqRel | the writer's scan, the newcomer's CAS |
//!
//! This module makes no system call and reaches atomics only through [`crate::sync::atomic`],
//! so the loom models can run it inside the production channel halves on heap memory. Under
//! loom the stamp and length words live in the control block as loom atomics (one per slot),
//! payload accesses in `Block` mode touch a model cell per slot (so loom's causality checker
//! reports a payload access the protocol does not order), and a per-slot *witness* word stands
//! for the payload in the seqlock: the writer stores `pos + 1` into it right after its Release
//! fence (where its payload stores begin), a reader loads it right after its copy (before its
//! Acquire fence), and the ring asserts that a validated copy's witness is its own position's.
//! The payload bytes themselves are plain memory that loom does not model, so under loom only
//! the witness (not the bytes) says whether an `Overwrite` copy was of the right message.
//!
//! # Why the payload copy is sound
//! In `Overwrite` mode a slot may be rewritten while a reader copies it, so every access to
//! its payload words is atomic on both sides: the writer's caller fills a private scratch
//! buffer (`SendSlot` / `send`'s copy go there), and `commit` / `stage` copy it into the slot
//! with Relaxed atomic word stores, after the `writing` stamp store and the Release fence; a
//! reader copies the words out with atomic loads and throws the copy away unless the stamp,
//! re-loaded after an Acquire fence, is unchanged (a seqlock with one writer). So even with
//! writer and reader as threads of one process no plain access races another: no data race
//! in the Rust memory model, whatever the interleaving (the price: one more copy of each
//! message on the writer's side in this mode). The reader never forms a reference to the slot
//! and never interprets the bytes before the check. A `Block` reader borrows the slot
//! directly and the writer writes it in place: no honest writer writes a slot until every
//! reader's cursor has moved past it.

use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::error::{Error, Result};
use crate::ring::layout::align8;
use crate::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

pub use crate::ring::mpmc::{MAX_SLOTS, MAX_SLOT_SIZE, MIN_SLOTS};

/// Bytes before each slot's payload: the stamp word, then the length word.
pub const SLOT_HEADER: u64 = 16;
/// The most reader places a ring has (the most readers a segment may allow).
pub const MAX_READERS: u32 = 1024;
/// Under loom: reader places (the models use the default maximum of 16).
#[cfg(shmring_loom)]
pub const LOOM_READERS: usize = 16;
/// Under loom: the most slots (their stamp and length words live in the control block).
#[cfg(shmring_loom)]
pub const LOOM_MAX_SLOTS: u64 = 8;
/// The channel layer's liveness lock index of reader place 0 (the writer has index 0).
pub const READER_BASE: usize = 1;
/// The most rescans of the reader places in one reservation while readers keep joining.
const MAX_RESCANS: u32 = 64;

/// What the writer does when the slowest reader is a whole ring behind.
///
/// ```
/// use shmring::{broadcast::Overflow, Config};
/// let cfg = Config::default().overflow(Overflow::Overwrite).history(16);
/// # let _ = cfg;
/// assert_eq!(Overflow::default(), Overflow::Block);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// The writer waits for the slowest live reader (a dead one is detached within the
    /// liveness interval). No reader misses a message. The default.
    #[default]
    Block,
    /// The writer never waits; a reader that falls a whole ring behind gets
    /// [`Error::Lagged`](crate::Error::Lagged) once and continues from the oldest message
    /// still in the ring.
    Overwrite,
}

impl Overflow {
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            Overflow::Block => 1,
            Overflow::Overwrite => 2,
        }
    }

    pub(crate) fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Overflow::Block),
            2 => Some(Overflow::Overwrite),
            _ => None,
        }
    }

    /// `"block"` or `"overwrite"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::Block => "block",
            Overflow::Overwrite => "overwrite",
        }
    }
}

/// The stamp of a slot whose writer is writing position `pos`.
#[inline]
pub fn writing(pos: u64) -> u64 {
    pos.wrapping_mul(2).wrapping_add(1)
}

/// The stamp of a slot holding the complete message of position `pos`.
#[inline]
pub fn done(pos: u64) -> u64 {
    pos.wrapping_mul(2).wrapping_add(2)
}

/// The position a non-zero stamp names.
#[inline]
fn stamp_pos(stamp: u64) -> u64 {
    stamp.wrapping_sub(1) / 2
}

/// Place state bit: a reader holds the place. The bits above count activations, so that a
/// detacher's CAS from the state it checked cannot succeed against a newcomer's.
const ACTIVE: u64 = 1;

/// One reader's place: its cursor (the next position it reads) and its state, on a line pair
/// of their own (the reader stores its cursor on every message).
#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Place {
    cursor: AtomicU64,
    state: AtomicU64,
}

/// The settings the creator records.
#[repr(C)]
#[derive(Debug, Default)]
struct Settings {
    policy: AtomicU32,
    _pad: AtomicU32,
    history: AtomicU64,
}

const SENDERS_JOINED: u32 = 1;
const RECEIVERS_JOINED: u32 = 2;

/// Who is attached: the writer count, the readers whose place is active, whether each kind
/// ever joined, and `hi`, one past the highest place ever used (the writer scans `0..hi`).
#[repr(C)]
#[derive(Debug, Default)]
struct Peers {
    senders: AtomicU32,
    receivers: AtomicU32,
    joined: AtomicU32,
    hi: AtomicU32,
}

/// The shared control block of a broadcast ring. `#[repr(C)]`, so it can be placed in a
/// segment; decoded for display by [`observe`] and [`observe_readers`].
#[repr(C)]
#[derive(Debug)]
pub struct BroadcastControl {
    /// The next position the writer writes (stored after each publication).
    tail: CachePadded<AtomicU64>,
    /// `Block`: the slowest position the writer's last rescan found (module docs, "Joining").
    writer_min: CachePadded<AtomicU64>,
    /// `Block`: bumped by every joining reader (module docs, "Joining").
    joins: CachePadded<AtomicU64>,
    settings: CachePadded<Settings>,
    peers: CachePadded<Peers>,
    #[cfg(not(shmring_loom))]
    places: [Place; MAX_READERS as usize],
    #[cfg(shmring_loom)]
    places: Vec<Place>,
    /// Under loom the slots' stamp and length words are loom atomics kept here.
    #[cfg(shmring_loom)]
    loom_stamps: Vec<AtomicU64>,
    #[cfg(shmring_loom)]
    loom_lens: Vec<AtomicU64>,
    /// Under loom: per slot, `pos + 1` of the message being written into it (module docs).
    #[cfg(shmring_loom)]
    loom_witness: Vec<AtomicU64>,
    /// Under loom: one model cell per slot for its payload (`Block` mode accesses).
    #[cfg(shmring_loom)]
    loom_payload: crate::ring::LoomPayload,
}

impl BroadcastControl {
    /// A control block for an empty ring with policy `policy` and `history` retained messages
    /// for late joiners, nobody attached.
    pub fn new(policy: Overflow, history: u64) -> Self {
        let ctrl = BroadcastControl {
            tail: CachePadded::new(AtomicU64::new(0)),
            writer_min: CachePadded::new(AtomicU64::new(0)),
            joins: CachePadded::new(AtomicU64::new(0)),
            settings: CachePadded::new(Settings::default()),
            peers: CachePadded::new(Peers::default()),
            #[cfg(not(shmring_loom))]
            places: std::array::from_fn(|_| Place::default()),
            #[cfg(shmring_loom)]
            places: (0..LOOM_READERS).map(|_| Place::default()).collect(),
            #[cfg(shmring_loom)]
            loom_stamps: (0..LOOM_MAX_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            #[cfg(shmring_loom)]
            loom_lens: (0..LOOM_MAX_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            #[cfg(shmring_loom)]
            loom_witness: (0..LOOM_MAX_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            #[cfg(shmring_loom)]
            loom_payload: crate::ring::LoomPayload::new(LOOM_MAX_SLOTS),
        };
        ctrl.settings
            .policy
            .store(policy.to_raw(), Ordering::Relaxed);
        ctrl.settings.history.store(history, Ordering::Relaxed);
        #[cfg(shmring_loom)]
        ctrl.loom_seqcst_zeroes();
        ctrl
    }

    /// Under loom: stores the initial zero of every word the join handshake reaches with
    /// SeqCst accesses again, with an SeqCst store. loom lets an SeqCst load return a
    /// location's initial value even after a later SeqCst store to it (its initial store is
    /// not SeqCst), where C++ orders initialisation before every later access and so forbids
    /// it; without this, a model of a join finds "store buffering" outcomes of the handshake
    /// (module docs, "Joining") that SeqCst rules out, a false alarm. The stores are made
    /// before any model thread starts.
    #[cfg(shmring_loom)]
    fn loom_seqcst_zeroes(&self) {
        let words = [&*self.writer_min, &*self.joins];
        let places = self.places.iter().flat_map(|p| [&p.cursor, &p.state]);
        for w in words.into_iter().chain(places) {
            w.store(0, Ordering::SeqCst);
        }
        self.peers.hi.store(0, Ordering::SeqCst);
        self.peers.receivers.store(0, Ordering::SeqCst);
    }

    /// A control block whose writer has already written `tail` messages (fuzzing, tests).
    #[doc(hidden)]
    pub fn with_tail(policy: Overflow, history: u64, tail: u64) -> Self {
        let ctrl = Self::new(policy, history);
        ctrl.tail.store(tail, Ordering::Relaxed);
        ctrl
    }

    /// Fuzzing: overwrites the words a peer shares with this block's readers and writer with
    /// `words`, in this order: tail, writer_min, joins, senders/receivers (low/high half),
    /// joined/hi (low/high half), then each place's cursor and state. Missing words stay as
    /// they are. The settings are left alone (a hostile policy is refused at attach, which the
    /// segment fuzzing covers).
    #[cfg(not(shmring_loom))]
    #[doc(hidden)]
    pub fn overwrite_shared(&self, words: &[u64]) {
        let mut w = words.iter().copied();
        let mut next = |at: &AtomicU64| {
            if let Some(v) = w.next() {
                at.store(v, Ordering::Relaxed);
            }
        };
        next(&self.tail);
        next(&self.writer_min);
        next(&self.joins);
        let halves = |at: &AtomicU32, v: u32| at.store(v, Ordering::Relaxed);
        let mut pair = |a: &AtomicU32, b: &AtomicU32| {
            let scratch = AtomicU64::new(0);
            next(&scratch);
            let v = scratch.load(Ordering::Relaxed);
            halves(a, v as u32);
            halves(b, (v >> 32) as u32);
        };
        pair(&self.peers.senders, &self.peers.receivers);
        pair(&self.peers.joined, &self.peers.hi);
        for place in self.places.iter() {
            next(&place.cursor);
            next(&place.state);
        }
    }

    /// Writers attached now (0 or 1), as counted in shared memory.
    pub fn senders(&self) -> u32 {
        self.peers.senders.load(Ordering::Acquire)
    }

    /// Readers whose place is active now (a dead reader counts until it is detached).
    pub fn receivers(&self) -> u32 {
        self.peers.receivers.load(Ordering::Acquire)
    }

    /// Counts the writer in.
    pub fn join_sender(&self) {
        self.peers.senders.fetch_add(1, Ordering::AcqRel);
        // Release: pairs with the Acquire load of `joined` in `gone`.
        self.peers
            .joined
            .fetch_or(SENDERS_JOINED, Ordering::Release);
    }

    /// Counts the writer out (after its last publication).
    pub fn leave_sender(&self) {
        // Release: pairs with the Acquire load in `senders_gone`: a reader that sees the
        // writer gone sees everything it published.
        self.peers.senders.fetch_sub(1, Ordering::Release);
    }

    #[inline]
    fn gone(&self, count: &AtomicU32, bit: u32) -> bool {
        // Acquire: pairs with the Release `fetch_or` in `join_sender` / `activate`.
        self.peers.joined.load(Ordering::Acquire) & bit != 0
            // Acquire: pairs with the Release decrements (`leave_sender`, `free_place`).
            && count.load(Ordering::Acquire) == 0
    }

    /// True if a writer joined and left.
    #[inline]
    pub fn senders_gone(&self) -> bool {
        self.gone(&self.peers.senders, SENDERS_JOINED)
    }

    /// True if readers joined and none is attached now.
    #[inline]
    pub fn receivers_gone(&self) -> bool {
        self.gone(&self.peers.receivers, RECEIVERS_JOINED)
    }

    /// The places the writer scans: `0..hi`, bounded by the array whatever `hi` a peer wrote.
    fn used_places(&self) -> &[Place] {
        let hi = self.peers.hi.load(Ordering::SeqCst) as usize;
        &self.places[..hi.min(self.places.len())]
    }

    /// Frees a place whose state is `state` (active): true if this call did it (then the
    /// reader is counted out here, once).
    fn free_place(&self, place: &Place, state: u64) -> bool {
        // AcqRel: the detacher and a newcomer in the same place race for this CAS; one wins.
        if place
            .state
            .compare_exchange(state, state & !ACTIVE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // Release: pairs with the Acquire load in `receivers_gone`.
            self.peers.receivers.fetch_sub(1, Ordering::Release);
            true
        } else {
            false
        }
    }
}

/// Checks a slot count and slot size read from a header (or a config).
pub fn validate_geometry(slots: u64, slot_size: u64) -> Result<()> {
    if !slots.is_power_of_two() || !(MIN_SLOTS..=MAX_SLOTS).contains(&slots) {
        return Err(Error::Corrupted(
            "broadcast slot count is not a power of two in 2..=16Mi",
        ));
    }
    if slot_size == 0 || slot_size > MAX_SLOT_SIZE {
        return Err(Error::Corrupted(
            "broadcast slot size is not in 1 B..=16 MiB",
        ));
    }
    Ok(())
}

/// Bytes from one slot to the next: stamp, length and payload, padded to 8.
#[inline]
pub fn slot_stride(slot_size: u64) -> u64 {
    SLOT_HEADER + align8(slot_size)
}

/// Bytes of the slot area a ring of this geometry needs (the whole body: stamps are in the
/// slots, and a fresh, zeroed body is an empty ring).
pub fn data_len(slots: u64, slot_size: u64) -> u64 {
    slots * slot_stride(slot_size)
}

/// Where the ring lives: control block and slots, and the validated settings.
#[derive(Debug, Clone, Copy)]
struct Ring {
    ctrl: NonNull<BroadcastControl>,
    data: NonNull<u8>,
    slots: u64,
    slot_size: u64,
    /// `slot_stride(slot_size)`, computed once.
    stride: u64,
    policy: Overflow,
    history: u64,
}

impl Ring {
    /// # Safety
    /// See [`Producer::attach`].
    unsafe fn new(
        ctrl: NonNull<BroadcastControl>,
        data: NonNull<u8>,
        slots: u64,
        slot_size: u64,
    ) -> Result<Ring> {
        validate_geometry(slots, slot_size)?;
        #[cfg(shmring_loom)]
        if slots > LOOM_MAX_SLOTS {
            return Err(Error::Incompatible(format!(
                "loom models use at most {LOOM_MAX_SLOTS} slots"
            )));
        }
        debug_assert_eq!(data.as_ptr() as usize % 8, 0);
        // SAFETY: valid per the contract; the block holds only atomics.
        let c = unsafe { ctrl.as_ref() };
        let policy = Overflow::from_raw(c.settings.policy.load(Ordering::Relaxed))
            .ok_or(Error::Corrupted("unknown broadcast overflow policy"))?;
        let history = c.settings.history.load(Ordering::Relaxed);
        if history >= slots {
            return Err(Error::Corrupted(
                "broadcast history is not below the slot count",
            ));
        }
        Ok(Ring {
            ctrl,
            data,
            slots,
            slot_size,
            stride: slot_stride(slot_size),
            policy,
            history,
        })
    }

    #[inline]
    fn ctrl(&self) -> &BroadcastControl {
        // SAFETY: valid per `Ring::new`'s contract; the control block holds only atomics, so a
        // shared reference is sound while other processes write it.
        unsafe { self.ctrl.as_ref() }
    }

    #[inline]
    fn mask(&self) -> u64 {
        self.slots - 1
    }

    /// The start (stamp word) of the slot of position `pos`.
    #[inline]
    fn slot(&self, pos: u64) -> *mut u8 {
        let i = pos & self.mask();
        // SAFETY: `i < slots` and `stride` is `slot_stride(slot_size)`, so the slot lies inside
        // the `data_len` bytes that `Ring::new`'s contract keeps valid.
        unsafe { self.data.as_ptr().add((i * self.stride) as usize) }
    }

    /// The stamp of the slot of position `pos` (module docs).
    #[inline]
    fn stamp(&self, pos: u64) -> &AtomicU64 {
        #[cfg(not(shmring_loom))]
        {
            // SAFETY: the slot start is 8-aligned (strides are multiples of 8 from an 8-aligned
            // data area) and inside it; every access to stamp words, in every process, is
            // atomic, which is what `from_ptr` requires.
            unsafe { AtomicU64::from_ptr(self.slot(pos).cast()) }
        }
        #[cfg(shmring_loom)]
        {
            &self.ctrl().loom_stamps[(pos & self.mask()) as usize]
        }
    }

    /// The length word of the slot of position `pos` (Relaxed: the stamp orders it).
    #[inline]
    fn len_word(&self, pos: u64) -> &AtomicU64 {
        #[cfg(not(shmring_loom))]
        {
            // SAFETY: as in `stamp`, 8 bytes further into the same slot.
            unsafe { AtomicU64::from_ptr(self.slot(pos).add(8).cast()) }
        }
        #[cfg(shmring_loom)]
        {
            &self.ctrl().loom_lens[(pos & self.mask()) as usize]
        }
    }

    /// The payload of the slot of position `pos` (`align8(slot_size)` bytes, 8-aligned).
    #[inline]
    fn payload(&self, pos: u64) -> *mut u8 {
        // SAFETY: the payload follows the 16-byte slot header inside the slot.
        unsafe { self.slot(pos).add(SLOT_HEADER as usize) }
    }

    /// Under loom, in `Block` mode: records a payload access (module docs).
    #[inline(always)]
    fn touch_payload(&self, pos: u64, write: bool) {
        #[cfg(shmring_loom)]
        if self.policy == Overflow::Block {
            self.ctrl().loom_payload.touch(pos & self.mask(), write);
        }
        #[cfg(not(shmring_loom))]
        let _ = (pos, write);
    }

    /// Under loom: the writer's witness store of `pos` inside its write window.
    #[inline(always)]
    fn witness_store(&self, pos: u64) {
        #[cfg(shmring_loom)]
        self.ctrl().loom_witness[(pos & self.mask()) as usize]
            .store(pos.wrapping_add(1), Ordering::Relaxed);
        #[cfg(not(shmring_loom))]
        let _ = pos;
    }

    /// Under loom: the reader's witness load inside its copy (0 outside loom).
    #[inline(always)]
    fn witness_load(&self, pos: u64) -> u64 {
        #[cfg(shmring_loom)]
        return self.ctrl().loom_witness[(pos & self.mask()) as usize].load(Ordering::Relaxed);
        #[cfg(not(shmring_loom))]
        {
            let _ = pos;
            0
        }
    }

    /// Checks that a stamp read for position `pos` names a position of `pos`'s slot.
    #[inline]
    fn check_stamp(&self, pos: u64, stamp: u64) -> Result<()> {
        if stamp != 0 && (stamp_pos(stamp) ^ pos) & self.mask() != 0 {
            return Err(Error::Corrupted("slot stamp does not belong to its slot"));
        }
        Ok(())
    }
}

/// Room for one message, reserved by the writer. Made only by [`Producer::try_reserve`]; not
/// `Copy`, so it is committed or given up once.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant {
    pos: u64,
    capacity: usize,
}

impl Grant {
    /// Bytes the caller asked for (at most the slot size).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// No own-buffer copy: the frame is read in place (`Block` mode).
const IN_SLOT: usize = usize::MAX;

/// A message claimed by a reader: its position, length, and where its bytes are (in the slot
/// in `Block` mode, in the reader's own validated copy in `Overwrite` mode). Made only by
/// [`Consumer::try_peek`]; not `Copy`, so it is released once.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pos: u64,
    len: usize,
    buf: usize,
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

    /// The message's position.
    pub fn pos(&self) -> u64 {
        self.pos
    }
}

/// The writer's end (one per ring).
#[derive(Debug)]
pub struct Producer {
    ring: Ring,
    /// The next position to write (ahead of the shared `tail` while a batch is staged).
    t: u64,
    /// `Block`: the slowest position found by the last rescan (module docs).
    min: u64,
    /// Positions written as a batch's messages, published by [`flush`](Self::flush).
    staged: Vec<u64>,
    /// `Overwrite` only: where the caller writes a reserved message (`payload`), copied into
    /// the slot with atomic word stores at `commit` / `stage` ("Why the payload copy is
    /// sound"). `align8(slot_size) / 8` words, owned by the end (freed in `Drop`); a raw
    /// pointer, so that `payload(&self)` may hand out a pointer the caller writes through.
    scratch: Option<NonNull<u64>>,
}

impl Drop for Producer {
    fn drop(&mut self) {
        if let Some(p) = self.scratch.take() {
            let words = align8(self.ring.slot_size) as usize / 8;
            // SAFETY: `p` came from `Box::into_raw` of a `[u64]` of exactly `words` words (in
            // `attach`, from the same `slot_size`), and is freed once (taken out above).
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p.as_ptr(), words)) });
        }
    }
}

// SAFETY: the pointers lead to memory that `Producer::attach`'s contract keeps valid; shared
// state is reached through atomics, and slot bytes only inside the stamp protocol.
unsafe impl Send for Producer {}

impl Producer {
    /// Attaches to a ring as its writer. Continues after the last complete message a previous
    /// writer left. Does not count itself in: call [`BroadcastControl::join_sender`].
    ///
    /// # Safety
    /// `ctrl` and [`data_len`]`(slots, slot_size)` bytes at `data` (8-aligned) stay valid for
    /// reads and writes as long as the end lives, and every participant uses this geometry.
    pub unsafe fn attach(
        ctrl: NonNull<BroadcastControl>,
        data: NonNull<u8>,
        slots: u64,
        slot_size: u64,
    ) -> Result<Self> {
        // SAFETY: forwarded from this function's contract.
        let ring = unsafe { Ring::new(ctrl, data, slots, slot_size)? };
        // A writer that died between a stamp store and its `tail` store left `tail` behind a
        // complete message: step over those (at most a lap), never rewrite a published one.
        let mut t = ring.ctrl().tail.load(Ordering::Acquire);
        for _ in 0..slots {
            if ring.stamp(t).load(Ordering::Acquire) != done(t) {
                break;
            }
            t = t.wrapping_add(1);
        }
        let scratch = (ring.policy == Overflow::Overwrite).then(|| {
            let words = align8(ring.slot_size) as usize / 8;
            let b: Box<[u64]> = vec![0u64; words].into_boxed_slice();
            // SAFETY: `Box::into_raw` never returns null.
            unsafe { NonNull::new_unchecked(Box::into_raw(b).cast::<u64>()) }
        });
        let mut p = Producer {
            ring,
            t,
            min: t,
            staged: Vec::new(),
            scratch,
        };
        if ring.policy == Overflow::Block {
            p.min = p.rescan();
        }
        Ok(p)
    }

    /// The overflow policy recorded in the ring.
    pub fn policy(&self) -> Overflow {
        self.ring.policy
    }

    /// A copyable view for detaching dead readers (the wait loop's liveness check).
    pub fn watcher(&self) -> Watcher {
        Watcher { ring: self.ring }
    }

    /// The largest message (the slot size).
    #[inline]
    pub fn max_message(&self) -> usize {
        self.ring.slot_size as usize
    }

    /// The control block.
    pub fn control(&self) -> &BroadcastControl {
        self.ring.ctrl()
    }

    /// The next position this writer writes.
    pub fn position(&self) -> u64 {
        self.t
    }

    /// `Block`: finds the slowest active reader (and the history window), publishes it in
    /// `writer_min` and returns it (module docs, "Joining"). Never below the last published
    /// value, never above `t`.
    fn rescan(&self) -> u64 {
        let ctrl = self.ring.ctrl();
        let t = self.t;
        // SeqCst: the handshake's total order (module docs).
        let published = ctrl.writer_min.load(Ordering::SeqCst);
        // Above `t` only after a writer died inside a batch with no reader attached (its
        // local position was ahead of `tail`), or if a peer scribbled it: no floor then. A
        // joiner that started at such a value is ahead of the writer, and the scan counts it
        // once the writer reaches it.
        let floor = if published <= t { published } else { 0 };
        for _ in 0..MAX_RESCANS {
            let j1 = ctrl.joins.load(Ordering::SeqCst);
            // The history window acts as a reader `history` behind the writer.
            let mut m = t.saturating_sub(self.ring.history);
            for place in ctrl.used_places() {
                if place.state.load(Ordering::SeqCst) & ACTIVE == 0 {
                    continue;
                }
                // SeqCst (so also Acquire): pairs with the Release cursor stores of
                // `Consumer::release` / `flush_taken`: the reader is done with what is behind.
                let c = place.cursor.load(Ordering::SeqCst);
                // A cursor ahead of the writer is no honest reader's: ignore it.
                if c <= t && c < m {
                    m = c;
                }
            }
            let m = m.max(floor);
            ctrl.writer_min.store(m, Ordering::SeqCst);
            if ctrl.joins.load(Ordering::SeqCst) == j1 {
                return m;
            }
        }
        // Readers keep joining: keep the old minimum (the caller reports `Full` and retries).
        self.min
    }

    /// True if the writer may write position `self.t` now (`Block`: rescanning when the cached
    /// minimum says full).
    #[inline(always)]
    fn has_room(&mut self) -> bool {
        if self.ring.policy == Overflow::Overwrite
            || self.t.wrapping_sub(self.min) < self.ring.slots
        {
            return true;
        }
        self.min = self.rescan();
        self.t.wrapping_sub(self.min) < self.ring.slots
    }

    /// Reserves room for a message of up to `len` bytes at the next position.
    ///
    /// `Err(Full)`: `Block` mode and the slowest live reader is a ring behind. `Err(TooLarge)`:
    /// larger than a slot. `Err(Disconnected)`: readers joined and none is attached now.
    #[inline(always)]
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant> {
        let max = self.max_message();
        if len > max {
            return Err(Error::TooLarge { size: len, max });
        }
        if self.ring.ctrl().receivers_gone() {
            return Err(Error::Disconnected);
        }
        if !self.has_room() {
            return Err(Error::Full);
        }
        let pos = self.t;
        // Relaxed + Release fence: pairs with the reader's Acquire fence before its stamp
        // re-load (`Consumer::copy_validated`): a reader that copied any byte written after
        // this fence sees this stamp (or a later one) on its re-load.
        // `Block`: no reader copies a slot that may be rewritten (its cursor holds the writer
        // back), so the odd stamp is skipped; it cost a transfer of the line the reader polls
        // (64 B round trip 0.86-0.91 us with it, 0.56 us without; SPSC 0.47-0.51 us).
        if self.ring.policy == Overflow::Overwrite {
            self.ring.stamp(pos).store(writing(pos), Ordering::Relaxed);
            fence(Ordering::Release);
        }
        // Under loom: the witness stands for the payload stores that follow (module docs).
        self.ring.witness_store(pos);
        self.ring.touch_payload(pos, true);
        Ok(Grant { pos, capacity: len })
    }

    /// A pointer to the payload bytes of `grant`, for the caller to fill: the slot itself in
    /// `Block` mode, the end's scratch buffer in `Overwrite` mode (copied into the slot at
    /// `commit` / `stage`, see "Why the payload copy is sound").
    #[inline]
    pub fn payload(&self, grant: &Grant) -> *mut u8 {
        match self.scratch {
            Some(p) => p.as_ptr().cast::<u8>(),
            None => self.ring.payload(grant.pos),
        }
    }

    /// `Overwrite`: copies the first `len` bytes of the scratch buffer into `pos`'s slot with
    /// atomic word stores, so that no reader's atomic loads race a plain store (module docs).
    #[inline]
    fn copy_in(&self, pos: u64, len: usize) {
        let Some(src) = self.scratch else { return };
        let dst = self.ring.payload(pos);
        for k in 0..align8(len as u64) as usize / 8 {
            // The slot word is only ever accessed atomically in `Overwrite` mode (readers'
            // loads in `copy_validated`), so this store races no plain access.
            // SAFETY: `k < align8(len) / 8 <= align8(slot_size) / 8`: inside the scratch buffer
            // (that many words, ours alone) and inside the slot's 8-aligned payload.
            unsafe {
                let w = src.as_ptr().add(k).read();
                std::sync::atomic::AtomicU64::from_ptr(dst.add(k * 8).cast())
                    .store(w, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Writes the length of `grant`'s message (inside the write window).
    #[inline]
    fn write_len(&self, pos: u64, len: usize) {
        // Relaxed: the stamp store that publishes the message orders it.
        self.ring.len_word(pos).store(len as u64, Ordering::Relaxed);
    }

    /// Publishes the first `len` bytes of `grant` as one message.
    ///
    /// # Panics
    /// If `len > grant.capacity`: a bug in the caller, not in the peer.
    #[inline]
    pub fn commit(&mut self, grant: Grant, len: usize) {
        assert!(
            len <= grant.capacity,
            "commit of {len} bytes into a reservation of {}",
            grant.capacity
        );
        self.copy_in(grant.pos, len);
        self.write_len(grant.pos, len);
        // Release: pairs with the Acquire stamp load in `Consumer::claim`: length and payload
        // are visible before the slot is seen as complete.
        self.ring
            .stamp(grant.pos)
            .store(done(grant.pos), Ordering::Release);
        self.t = grant.pos.wrapping_add(1);
        // Release: pairs with the Acquire `tail` loads of joiners and lapped readers.
        self.ring.ctrl().tail.store(self.t, Ordering::Release);
    }

    /// Gives a reservation up: nothing is sent (the slot's stamp says "being written", or in
    /// `Block` mode still names the older message, until
    /// the next message takes the same position).
    pub fn abandon(&mut self, grant: Grant) {
        let _ = grant;
    }

    /// Starts a batch.
    #[inline]
    pub fn begin_batch(&mut self) {
        self.staged.clear();
    }

    /// Keeps the first `len` bytes of `grant` as a message of the batch, unpublished.
    ///
    /// # Panics
    /// As [`commit`](Self::commit).
    pub fn stage(&mut self, grant: Grant, len: usize) {
        assert!(
            len <= grant.capacity,
            "commit of {len} bytes into a reservation of {}",
            grant.capacity
        );
        self.copy_in(grant.pos, len);
        self.write_len(grant.pos, len);
        self.staged.push(grant.pos);
        self.t = grant.pos.wrapping_add(1);
    }

    /// Publishes every staged message, in order, and `tail` once. True if there was any.
    pub fn flush(&mut self) -> bool {
        for &pos in &self.staged {
            // Release: as in `commit`.
            self.ring.stamp(pos).store(done(pos), Ordering::Release);
        }
        let any = !self.staged.is_empty();
        self.staged.clear();
        if any {
            // Release: as in `commit`.
            self.ring.ctrl().tail.store(self.t, Ordering::Release);
        }
        any
    }

    /// Gives the batch up: its positions are written again by the next messages.
    pub fn discard(&mut self) {
        if let Some(&first) = self.staged.first() {
            self.t = first;
        }
        self.staged.clear();
    }

    /// True if another message fits now without waiting.
    pub fn room(&self) -> bool {
        self.ring.policy == Overflow::Overwrite || self.t.wrapping_sub(self.min) < self.ring.slots
    }
}

/// Finds and detaches dead readers that hold a `Block` writer back. `Copy`, for the wait
/// loop's liveness check.
#[derive(Debug, Clone, Copy)]
pub struct Watcher {
    ring: Ring,
}

// SAFETY: as for `Producer`.
unsafe impl Send for Watcher {}

impl Watcher {
    /// `Block` mode: detaches every reader that is at least half a ring behind and whose
    /// holder `alive(READER_BASE + place)` says is dead. True if any was detached (the writer
    /// then rescans and may go on).
    pub fn detach_dead(&self, alive: &mut dyn FnMut(usize) -> Result<bool>) -> Result<bool> {
        if self.ring.policy != Overflow::Block {
            return Ok(false);
        }
        let ctrl = self.ring.ctrl();
        let tail = ctrl.tail.load(Ordering::Acquire);
        let mut any = false;
        for (j, place) in ctrl.used_places().iter().enumerate() {
            let state = place.state.load(Ordering::Acquire);
            if state & ACTIVE == 0 {
                continue;
            }
            let c = place.cursor.load(Ordering::Acquire);
            if c > tail || tail - c < self.ring.slots / 2 {
                continue;
            }
            if alive(READER_BASE + j)? {
                continue;
            }
            // A newcomer that took the dead reader's place re-activates it with a new state:
            // this CAS then fails, and the newcomer is not detached.
            any |= ctrl.free_place(place, state);
        }
        Ok(any)
    }
}

/// A reader's end (one per reader place).
#[derive(Debug)]
pub struct Consumer {
    ring: Ring,
    /// This reader's place.
    place: usize,
    /// The place state this reader activated (its own, while it holds the place).
    state: u64,
    /// The next position to peek.
    next: u64,
    /// Messages taken as a batch since the last flush.
    taken: usize,
    /// A lag found while a batch was being gathered, reported by the next call.
    pending_lag: u64,
    /// `Overwrite` mode: validated copies, one per message of a batch (`bufs[taken]` for the
    /// next); boxed, so a copy stays put while more are added.
    bufs: Vec<Box<[u64]>>,
}

// SAFETY: as for `Producer`.
unsafe impl Send for Consumer {}

impl Consumer {
    /// Attaches to a ring as the reader of `place`. Joins only with
    /// [`activate`](Self::activate) (the channel layer calls it once it holds the place's
    /// lock).
    ///
    /// # Safety
    /// As for [`Producer::attach`].
    pub unsafe fn attach(
        ctrl: NonNull<BroadcastControl>,
        data: NonNull<u8>,
        slots: u64,
        slot_size: u64,
        place: usize,
    ) -> Result<Self> {
        // SAFETY: forwarded from this function's contract.
        let ring = unsafe { Ring::new(ctrl, data, slots, slot_size)? };
        if place >= ring.ctrl().places.len() {
            return Err(Error::Corrupted("broadcast reader place out of range"));
        }
        Ok(Consumer {
            ring,
            place,
            state: 0,
            next: 0,
            taken: 0,
            pending_lag: 0,
            bufs: Vec::new(),
        })
    }

    #[inline]
    fn my_place(&self) -> &Place {
        &self.ring.ctrl().places[self.place]
    }

    /// The overflow policy recorded in the ring.
    pub fn policy(&self) -> Overflow {
        self.ring.policy
    }

    /// The largest message (the slot size).
    #[inline]
    pub fn max_message(&self) -> usize {
        self.ring.slot_size as usize
    }

    /// The control block.
    pub fn control(&self) -> &BroadcastControl {
        self.ring.ctrl()
    }

    /// The next position this reader reads.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Takes the place over (the previous holder, if any, is dead: the caller holds the lock)
    /// and joins at the newest message, or `history` before it (module docs, "Joining").
    pub fn activate(&mut self) -> Result<()> {
        let ring = self.ring;
        let ctrl = ring.ctrl();
        let place = &ctrl.places[self.place];
        let old = place.state.load(Ordering::Acquire);
        if old & ACTIVE != 0 {
            ctrl.free_place(place, old);
        }
        let state = ((place.state.load(Ordering::Acquire) >> 1).wrapping_add(1) << 1) | ACTIVE;
        // Acquire: pairs with the writer's Release `tail` store.
        let tail = ctrl.tail.load(Ordering::Acquire);
        let c0 = tail.saturating_sub(ring.history);
        // SeqCst: the joiner's half of the handshake (module docs, "Joining").
        place.cursor.store(c0, Ordering::SeqCst);
        place.state.store(state, Ordering::SeqCst);
        ctrl.peers.receivers.fetch_add(1, Ordering::SeqCst);
        // Release: pairs with the Acquire load of `joined` in `gone`.
        ctrl.peers
            .joined
            .fetch_or(RECEIVERS_JOINED, Ordering::Release);
        ctrl.peers
            .hi
            .fetch_max(self.place as u32 + 1, Ordering::SeqCst);
        let mut c = c0;
        if ring.policy == Overflow::Block {
            ctrl.joins.fetch_add(1, Ordering::SeqCst);
            let m = ctrl.writer_min.load(Ordering::SeqCst);
            if m > c0 {
                place.cursor.store(m, Ordering::SeqCst);
                c = m;
            }
        }
        self.state = state;
        self.next = c;
        Ok(())
    }

    /// Leaves the place (a clean close): the reader no longer counts, and a `Block` writer
    /// stops waiting for it.
    pub fn close(&mut self) {
        if self.state & ACTIVE != 0 {
            let ctrl = self.ring.ctrl();
            ctrl.free_place(&ctrl.places[self.place], self.state);
            self.state = 0;
        }
    }

    /// The place this reader holds (its liveness lock is `READER_BASE + place`).
    pub fn place(&self) -> usize {
        self.place
    }

    /// Claims the next message. `Err(Empty)`: nothing yet. `Err(Disconnected)`: the writer
    /// left and everything it published was read. `Err(Lagged)`: `Overwrite` mode, the writer
    /// lapped this reader, which continues from the oldest retained message. `Err(Corrupted)`:
    /// a stamp or length no honest writer stores.
    #[inline(always)]
    pub fn try_peek(&mut self) -> Result<Frame> {
        if self.pending_lag != 0 {
            let missed = std::mem::take(&mut self.pending_lag);
            return Err(Error::Lagged { missed });
        }
        self.claim()
    }

    #[inline(always)]
    fn claim(&mut self) -> Result<Frame> {
        let ring = self.ring;
        let mut looked_again = false;
        loop {
            let p = self.next;
            // Acquire: pairs with the Release stamp store in `Producer::commit` / `flush`.
            let stamp = ring.stamp(p).load(Ordering::Acquire);
            let want = done(p);
            if stamp == want {
                return match ring.policy {
                    Overflow::Block => {
                        let len = ring.len_word(p).load(Ordering::Relaxed);
                        if len > ring.slot_size {
                            return Err(Error::Corrupted("message length exceeds the slot size"));
                        }
                        ring.touch_payload(p, false);
                        Ok(Frame {
                            pos: p,
                            len: len as usize,
                            buf: IN_SLOT,
                        })
                    }
                    Overflow::Overwrite => self.copy_validated(p, stamp),
                };
            }
            ring.check_stamp(p, stamp)?;
            if (stamp.wrapping_sub(want) as i64) > 0 {
                return Err(match ring.policy {
                    Overflow::Overwrite => self.lapped(p, stamp),
                    Overflow::Block => Error::Corrupted(
                        "a Block-mode slot was overwritten before its reader read it",
                    ),
                });
            }
            // Not written yet.
            if looked_again {
                return Err(Error::Disconnected);
            }
            if !ring.ctrl().senders_gone() {
                return Err(Error::Empty);
            }
            // The writer left; its last publications come before its Release leave, which
            // `senders_gone` acquired: one more look sees them.
            looked_again = true;
        }
    }

    /// `Overwrite` mode: copies message `p` (stamp `stamp`, complete) into this reader's own
    /// buffer and validates the copy (module docs, "The stamp").
    #[inline]
    fn copy_validated(&mut self, p: u64, stamp: u64) -> Result<Frame> {
        let ring = self.ring;
        let len = ring.len_word(p).load(Ordering::Relaxed);
        let ok_len = len <= ring.slot_size;
        let idx = self.taken;
        if ok_len {
            let words = align8(len) as usize / 8;
            while self.bufs.len() <= idx {
                let cap = align8(ring.slot_size) as usize / 8;
                self.bufs.push(vec![0u64; cap].into_boxed_slice());
            }
            let dst = &mut self.bufs[idx];
            let src = ring.payload(p);
            for (k, d) in dst.iter_mut().take(words).enumerate() {
                // The load is atomic, as the writer's stores are (`Producer::copy_in`), so it
                // is never a data race; a torn or newer value (another process may write
                // anything) is thrown away by the stamp re-check below, and until then the
                // words are only bytes in our own buffer, never interpreted.
                // SAFETY: `k * 8 + 8 <= align8(len) <= align8(slot_size)`: inside the slot's
                // payload, 8-aligned (it starts 16 bytes into an 8-aligned slot).
                *d = unsafe { std::sync::atomic::AtomicU64::from_ptr(src.add(k * 8).cast()) }
                    .load(std::sync::atomic::Ordering::Relaxed);
            }
        }
        // Under loom: the witness load stands for the payload loads above (module docs).
        let witness = ring.witness_load(p);
        // Acquire fence: pairs with the writer's Release fence after its `writing` store
        // (`Producer::try_reserve`): if the copy saw any newer byte, the re-load sees a newer
        // stamp.
        fence(Ordering::Acquire);
        let again = ring.stamp(p).load(Ordering::Relaxed);
        if again != stamp {
            ring.check_stamp(p, again)?;
            return Err(self.lapped(p, again));
        }
        if !ok_len {
            return Err(Error::Corrupted("message length exceeds the slot size"));
        }
        #[cfg(shmring_loom)]
        assert_eq!(
            witness,
            p.wrapping_add(1),
            "a validated copy is of another message"
        );
        let _ = witness;
        Ok(Frame {
            pos: p,
            len: len as usize,
            buf: idx,
        })
    }

    /// `Overwrite` mode: the writer lapped this reader at `p` (it found `stamp` there). Moves
    /// on to the oldest message the writer cannot be overwriting now and reports the skip.
    #[cold]
    fn lapped(&mut self, p: u64, stamp: u64) -> Error {
        let ring = self.ring;
        // Acquire: pairs with the writer's Release `tail` store.
        let tail = ring.ctrl().tail.load(Ordering::Acquire);
        // The writer is at least past the position the stamp names, and may be writing
        // `front` now, which destroys `front - slots`.
        let front = tail.max(stamp_pos(stamp));
        let oldest = front.saturating_sub(ring.slots).saturating_add(1);
        let next = oldest.max(p.wrapping_add(1));
        let missed = next.wrapping_sub(p);
        self.next = next;
        // Relaxed: in `Overwrite` mode the cursor is for display only.
        self.my_place().cursor.store(next, Ordering::Relaxed);
        Error::Lagged { missed }
    }

    /// A pointer to the payload of `frame` (`frame.len` bytes).
    #[inline]
    pub fn payload(&self, frame: &Frame) -> *const u8 {
        if frame.buf == IN_SLOT {
            self.ring.payload(frame.pos)
        } else {
            self.bufs[frame.buf].as_ptr().cast()
        }
    }

    /// Done with `frame`: the next peek goes past it, and (`Block`) the writer may reuse its
    /// slot.
    #[inline]
    pub fn release(&mut self, frame: Frame) {
        self.ring.touch_payload(frame.pos, false);
        self.next = frame.pos.wrapping_add(1);
        // Release: pairs with the writer's cursor load in `Producer::rescan`: our reads of
        // the slot happen before it is rewritten.
        self.my_place().cursor.store(self.next, Ordering::Release);
    }

    /// Consumes `frame` as part of a batch: its bytes stay valid until
    /// [`flush_taken`](Self::flush_taken).
    #[inline]
    pub fn take(&mut self, frame: Frame) {
        self.next = frame.pos.wrapping_add(1);
        if frame.buf != IN_SLOT {
            self.taken = frame.buf + 1;
        } else {
            self.taken += 1;
        }
    }

    /// Gives back everything taken since the last flush; true if anything.
    pub fn flush_taken(&mut self) -> bool {
        if self.taken == 0 {
            return false;
        }
        self.taken = 0;
        // Release: as in `release`.
        self.my_place().cursor.store(self.next, Ordering::Release);
        true
    }

    /// Keeps an error that ended a batch early for the next call (a lag must not be lost).
    pub fn defer(&mut self, e: Error) {
        if let Error::Lagged { missed } = e {
            self.pending_lag = self.pending_lag.saturating_add(missed);
        }
    }

    /// A hint: is the next message complete now?
    pub fn more(&self) -> bool {
        self.ring.stamp(self.next).load(Ordering::Relaxed) == done(self.next)
    }

    /// Whether the writer may be waiting for this reader (`Block`), so a release should wake
    /// it.
    #[inline]
    pub fn writer_may_wait(&self) -> bool {
        self.ring.policy == Overflow::Block
    }
}

impl Drop for Consumer {
    /// A reader end dropped without [`close`](Consumer::close) (its half failed to attach
    /// after taking the place) frees its place, so that a `Block` writer does not wait for it.
    fn drop(&mut self) {
        self.close();
    }
}

/// Bytes of the control block that [`observe`] and [`observe_readers`] read.
#[cfg(not(shmring_loom))]
pub const CONTROL_LEN: usize = std::mem::size_of::<BroadcastControl>();

/// One reader place as [`observe_readers`] read it.
#[cfg(not(shmring_loom))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderView {
    /// The place index (the liveness lock index is `READER_BASE + place`).
    pub place: usize,
    /// A reader holds the place (it may have died since: ask its lock).
    pub active: bool,
    /// How many times the place was taken.
    pub generation: u64,
    /// The next position it reads.
    pub cursor: u64,
    /// `tail - cursor`: messages sent that it has not read (0 if its cursor is ahead).
    pub lag: u64,
}

/// What an observer reads of a broadcast control block (display only; see [`observe`]).
#[cfg(not(shmring_loom))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastView {
    /// The recorded policy (`None`: a value no honest creator writes).
    pub policy: Option<Overflow>,
    /// The recorded history.
    pub history: u64,
    /// The next position the writer writes.
    pub tail: u64,
    /// `Block`: the slowest position the writer last found.
    pub writer_min: u64,
    /// One past the highest place ever used.
    pub hi: u32,
    /// Every place below `hi` (and below the `max_readers` given), in order.
    pub readers: Vec<ReaderView>,
}

/// Reads the control block at `ctrl` of a ring of `slots` slots without attaching, for
/// monitoring: `head` is the slowest active reader's cursor (`tail` when none; in `Overwrite`
/// mode at least `tail - slots`, the oldest message retained), `used` how far it is behind. Each word is read at its field's offset in the real `#[repr(C)]` block
/// (`offset_of!`), one at a time (Relaxed), and may be anything a hostile peer wrote.
///
/// # Safety
/// `ctrl` is aligned for [`BroadcastControl`] and valid for reads of [`CONTROL_LEN`] bytes for
/// the duration of the call, and every concurrent write to those bytes is atomic.
#[cfg(not(shmring_loom))]
pub unsafe fn observe(ctrl: NonNull<u8>, slots: u64) -> crate::ring::layout::RingView {
    use crate::ring::layout::{peek_u32, RingView};
    use std::mem::offset_of;
    // SAFETY: forwarded from this function's contract.
    let v = unsafe { observe_readers(ctrl, MAX_READERS as usize) };
    let peers = offset_of!(BroadcastControl, peers);
    // SAFETY: fields of the block the contract makes readable, aligned (repr(C)).
    let (senders, receivers, joined) = unsafe {
        (
            peek_u32(ctrl, peers + offset_of!(Peers, senders)),
            peek_u32(ctrl, peers + offset_of!(Peers, receivers)),
            peek_u32(ctrl, peers + offset_of!(Peers, joined)),
        )
    };
    let mut head = v
        .readers
        .iter()
        .filter(|r| r.active && r.cursor <= v.tail)
        .map(|r| r.cursor)
        .min()
        .unwrap_or(v.tail);
    if v.policy == Some(Overflow::Overwrite) {
        // A lapped reader's cursor may be any distance behind; what it can still read is the
        // newest ring of messages (`BroadcastView::readers` has the real lags).
        head = head.max(v.tail.saturating_sub(slots));
    }
    RingView {
        head,
        tail: v.tail,
        used: v.tail.wrapping_sub(head),
        capacity: slots,
        senders_closed: joined & SENDERS_JOINED != 0 && senders == 0,
        receivers_closed: joined & RECEIVERS_JOINED != 0 && receivers == 0,
        senders: Some(senders),
        receivers: Some(receivers),
    }
}

/// Reads the settings, positions and the reader places `0..min(hi, max_readers)` of the
/// control block at `ctrl` (display only, as [`observe`]).
///
/// # Safety
/// As for [`observe`].
#[cfg(not(shmring_loom))]
pub unsafe fn observe_readers(ctrl: NonNull<u8>, max_readers: usize) -> BroadcastView {
    use crate::ring::layout::{peek_u32, peek_u64};
    use std::mem::{offset_of, size_of};
    let settings = offset_of!(BroadcastControl, settings);
    let peers = offset_of!(BroadcastControl, peers);
    // SAFETY: fields of the block the contract makes readable, aligned (repr(C)).
    let (policy, history, tail, writer_min, hi) = unsafe {
        (
            peek_u32(ctrl, settings + offset_of!(Settings, policy)),
            peek_u64(ctrl, settings + offset_of!(Settings, history)),
            peek_u64(ctrl, offset_of!(BroadcastControl, tail)),
            peek_u64(ctrl, offset_of!(BroadcastControl, writer_min)),
            peek_u32(ctrl, peers + offset_of!(Peers, hi)),
        )
    };
    let places = offset_of!(BroadcastControl, places);
    let n = (hi as usize).min(max_readers).min(MAX_READERS as usize);
    let readers = (0..n)
        .map(|j| {
            let at = places + j * size_of::<Place>();
            // SAFETY: `j < MAX_READERS`, a place of the array inside the block.
            let (cursor, state) = unsafe {
                (
                    peek_u64(ctrl, at + offset_of!(Place, cursor)),
                    peek_u64(ctrl, at + offset_of!(Place, state)),
                )
            };
            ReaderView {
                place: j,
                active: state & ACTIVE != 0,
                generation: state >> 1,
                cursor,
                lag: tail.saturating_sub(cursor),
            }
        })
        .collect();
    BroadcastView {
        policy: Overflow::from_raw(policy),
        history,
        tail,
        writer_min,
        hi,
        readers,
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;

    /// A ring on the heap.
    struct Heap {
        ctrl: Box<BroadcastControl>,
        data: Vec<u64>,
        slots: u64,
        slot_size: u64,
        next_place: usize,
    }

    impl Heap {
        fn new(slots: u64, slot_size: u64, policy: Overflow, history: u64) -> Heap {
            Heap {
                ctrl: Box::new(BroadcastControl::new(policy, history)),
                data: vec![0; (data_len(slots, slot_size) / 8) as usize],
                slots,
                slot_size,
                next_place: 0,
            }
        }

        fn parts(&mut self) -> (NonNull<BroadcastControl>, NonNull<u8>) {
            (
                NonNull::from(&*self.ctrl),
                NonNull::new(self.data.as_mut_ptr().cast()).unwrap(),
            )
        }

        fn producer(&mut self) -> Producer {
            let (c, d) = self.parts();
            // SAFETY: the heap ring outlives the end (tests drop ends first).
            let p = unsafe { Producer::attach(c, d, self.slots, self.slot_size).unwrap() };
            self.ctrl.join_sender();
            p
        }

        fn consumer(&mut self) -> Consumer {
            let place = self.next_place;
            self.next_place += 1;
            self.consumer_at(place)
        }

        fn consumer_at(&mut self, place: usize) -> Consumer {
            let (c, d) = self.parts();
            // SAFETY: as in `producer`.
            let mut r =
                unsafe { Consumer::attach(c, d, self.slots, self.slot_size, place).unwrap() };
            r.activate().unwrap();
            r
        }

        fn slot_word(&mut self, pos: u64, word: usize) -> &mut u64 {
            let stride = slot_stride(self.slot_size) / 8;
            let i = ((pos & (self.slots - 1)) * stride) as usize + word;
            &mut self.data[i]
        }
    }

    fn send(p: &mut Producer, msg: &[u8]) -> Result<()> {
        let g = p.try_reserve(msg.len())?;
        // SAFETY: the grant covers `msg.len()` bytes of its slot, ours until commit.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p.payload(&g), msg.len()) };
        p.commit(g, msg.len());
        Ok(())
    }

    fn recv(c: &mut Consumer) -> Result<Vec<u8>> {
        let f = c.try_peek()?;
        // SAFETY: a validated frame of our heap ring.
        let v = unsafe { std::slice::from_raw_parts(c.payload(&f), f.len()) }.to_vec();
        c.release(f);
        Ok(v)
    }

    #[test]
    fn every_reader_sees_every_message_in_order() {
        for policy in [Overflow::Block, Overflow::Overwrite] {
            let mut h = Heap::new(4, 16, policy, 0);
            let mut p = h.producer();
            let mut a = h.consumer();
            let mut b = h.consumer();
            assert!(matches!(recv(&mut a), Err(Error::Empty)));
            for round in 0..10u8 {
                send(&mut p, &[round; 3]).unwrap();
                send(&mut p, &[]).unwrap();
                assert_eq!(recv(&mut a).unwrap(), [round; 3]);
                assert_eq!(recv(&mut a).unwrap(), b"");
                assert_eq!(recv(&mut b).unwrap(), [round; 3]);
                assert_eq!(recv(&mut b).unwrap(), b"");
            }
            assert!(matches!(recv(&mut b), Err(Error::Empty)));
            assert_eq!(h.ctrl.receivers(), 2);
            assert!(matches!(
                p.try_reserve(17),
                Err(Error::TooLarge { size: 17, max: 16 })
            ));
        }
    }

    #[test]
    fn block_waits_for_the_slowest_reader_and_scans_only_when_full() {
        let mut h = Heap::new(4, 8, Overflow::Block, 0);
        let mut p = h.producer();
        let mut fast = h.consumer();
        let mut slow = h.consumer();
        for i in 0..4u8 {
            send(&mut p, &[i]).unwrap();
            assert_eq!(recv(&mut fast).unwrap(), [i]);
        }
        assert!(
            matches!(send(&mut p, b"x"), Err(Error::Full)),
            "slow holds it"
        );
        assert!(!p.room());
        assert_eq!(recv(&mut slow).unwrap(), [0]);
        send(&mut p, &[4]).unwrap();
        assert!(matches!(send(&mut p, b"x"), Err(Error::Full)));
        // The cached minimum: after a rescan found room for 2, two sends scan nothing.
        assert_eq!(recv(&mut slow).unwrap(), [1]);
        assert_eq!(recv(&mut slow).unwrap(), [2]);
        send(&mut p, &[5]).unwrap(); // rescans: min = 3
        assert_eq!(p.min, 3);
        // Move the slow reader on behind the writer's back: the cache is not refreshed.
        assert_eq!(recv(&mut slow).unwrap(), [3]);
        send(&mut p, &[6]).unwrap();
        assert_eq!(p.min, 3, "no scan while the cache says there is room");
        for i in 4..7u8 {
            assert_eq!(recv(&mut slow).unwrap(), [i]);
            assert_eq!(recv(&mut fast).unwrap(), [i]);
        }
        // A closed reader no longer holds the writer back.
        slow.close();
        for i in 7..20u8 {
            send(&mut p, &[i]).unwrap();
            assert_eq!(recv(&mut fast).unwrap(), [i]);
        }
        assert_eq!(h.ctrl.receivers(), 1);
    }

    #[test]
    fn overwrite_laps_a_slow_reader_which_gets_lagged_once() {
        let mut h = Heap::new(4, 8, Overflow::Overwrite, 0);
        let mut p = h.producer();
        let mut slow = h.consumer();
        let mut fast = h.consumer();
        for i in 0..10u64 {
            send(&mut p, &i.to_le_bytes()).unwrap(); // never Full
            assert_eq!(recv(&mut fast).unwrap(), i.to_le_bytes());
        }
        // Positions 0..10 written into 4 slots: 6 and older are gone; 7, 8, 9 are retained
        // (6's slot would be the next one written).
        match recv(&mut slow) {
            Err(Error::Lagged { missed }) => assert_eq!(missed, 7),
            other => panic!("expected Lagged, got {other:?}"),
        }
        for i in 7..10u64 {
            assert_eq!(recv(&mut slow).unwrap(), i.to_le_bytes(), "once, then on");
        }
        assert!(matches!(recv(&mut slow), Err(Error::Empty)));
    }

    #[test]
    fn a_copy_the_writer_overwrote_meanwhile_is_thrown_away() {
        let mut h = Heap::new(2, 8, Overflow::Overwrite, 0);
        let mut p = h.producer();
        let mut r = h.consumer();
        send(&mut p, b"first").unwrap();
        // The writer starts overwriting slot 0 (position 2) before the reader's re-check:
        // simulate by reserving position 2 after the first load, which `copy_validated`
        // re-checks. Here: reserve 1 and 2 first, so the slot of 0 shows `writing(2)`.
        send(&mut p, b"second").unwrap();
        let g = p.try_reserve(5).unwrap(); // position 2, slot 0 now says "being written"
        assert_eq!(h.ctrl.tail.load(Ordering::Relaxed), 2);
        match recv(&mut r) {
            Err(Error::Lagged { missed }) => assert_eq!(missed, 1),
            other => panic!("expected Lagged, got {other:?}"),
        }
        assert_eq!(recv(&mut r).unwrap(), b"second");
        p.commit(g, 0);
        assert_eq!(recv(&mut r).unwrap(), b"");
    }

    #[test]
    fn history_gives_a_late_reader_the_newest_messages() {
        for policy in [Overflow::Block, Overflow::Overwrite] {
            let mut h = Heap::new(8, 8, policy, 3);
            let mut p = h.producer();
            let mut early = h.consumer();
            for i in 0..6u8 {
                send(&mut p, &[i]).unwrap();
                assert_eq!(recv(&mut early).unwrap(), [i]);
            }
            let mut late = h.consumer();
            for i in 3..6u8 {
                assert_eq!(recv(&mut late).unwrap(), [i], "{policy:?}");
            }
            assert!(matches!(recv(&mut late), Err(Error::Empty)));
            // Without history a new reader starts at the next message.
            let mut h = Heap::new(8, 8, policy, 0);
            let mut p = h.producer();
            send(&mut p, b"old").unwrap();
            let mut r = h.consumer();
            assert!(matches!(recv(&mut r), Err(Error::Empty)));
            send(&mut p, b"new").unwrap();
            assert_eq!(recv(&mut r).unwrap(), b"new");
        }
    }

    #[test]
    fn block_keeps_the_history_window_with_no_reader() {
        let mut h = Heap::new(4, 8, Overflow::Block, 2);
        let mut p = h.producer();
        for i in 0..50u8 {
            send(&mut p, &[i]).unwrap(); // no reader: never Full
        }
        let mut late = h.consumer();
        assert_eq!(recv(&mut late).unwrap(), [48]);
        assert_eq!(recv(&mut late).unwrap(), [49]);
    }

    #[test]
    fn a_joiner_behind_the_writers_cached_minimum_starts_at_it() {
        // History 3 of 4 slots; the writer's last rescan allowed it to overwrite up to what
        // it published: a joiner must not start below that.
        let mut h = Heap::new(4, 8, Overflow::Block, 3);
        let mut p = h.producer();
        let mut r = h.consumer();
        for i in 0..4u8 {
            send(&mut p, &[i]).unwrap();
        }
        for i in 0..4u8 {
            assert_eq!(recv(&mut r).unwrap(), [i]);
        }
        for i in 4..6u8 {
            send(&mut p, &[i]).unwrap(); // rescan publishes min >= 2
        }
        let published = h.ctrl.writer_min.load(Ordering::SeqCst);
        let late = h.consumer();
        assert!(
            late.position() >= published,
            "{} {published}",
            late.position()
        );
        assert!(late.position() >= 3);
    }

    #[test]
    fn a_writer_dead_inside_a_batch_leaves_a_minimum_above_tail_that_is_not_trusted() {
        let mut h = Heap::new(4, 8, Overflow::Block, 0);
        let mut p = h.producer();
        p.begin_batch();
        for _ in 0..5 {
            let g = p.try_reserve(1).unwrap(); // the 5th rescans: no reader, min = 4
            p.stage(g, 1);
        }
        assert_eq!(h.ctrl.writer_min.load(Ordering::SeqCst), 4);
        assert_eq!(h.ctrl.tail.load(Ordering::SeqCst), 0);
        std::mem::forget(p); // dies: nothing published
        let mut r = h.consumer();
        assert_eq!(
            r.position(),
            4,
            "the joiner does not start below the published minimum"
        );
        let mut p2 = h.producer();
        assert_eq!(p2.position(), 0);
        for i in 0..8u8 {
            send(&mut p2, &[i]).unwrap();
        }
        assert!(
            matches!(send(&mut p2, &[8]), Err(Error::Full)),
            "the reader holds it"
        );
        // Positions 4.. were never overwritten under the reader.
        for i in 4..8u8 {
            assert_eq!(recv(&mut r).unwrap(), [i]);
        }
    }

    #[test]
    fn a_dead_reader_is_detached_and_a_newcomer_in_its_place_is_not() {
        let mut h = Heap::new(4, 8, Overflow::Block, 0);
        let mut p = h.producer();
        let dead = h.consumer(); // place 0: never reads, "dies"
        let mut live = h.consumer(); // place 1
        for i in 0..4u8 {
            send(&mut p, &[i]).unwrap();
            assert_eq!(recv(&mut live).unwrap(), [i]);
        }
        assert!(matches!(send(&mut p, b"x"), Err(Error::Full)));
        let w = p.watcher();
        let mut asked = Vec::new();
        assert!(!w
            .detach_dead(&mut |i| {
                asked.push(i);
                Ok(true)
            })
            .unwrap());
        assert_eq!(
            asked,
            [READER_BASE],
            "only the reader holding it back is asked"
        );
        // A newcomer took the dead reader's place (its lock) before the writer's CAS: the
        // writer's view of the old state is stale and must not detach the newcomer.
        let stale = h.ctrl.places[0].state.load(Ordering::Relaxed);
        let newcomer = h.consumer_at(0);
        assert!(!h.ctrl.free_place(&h.ctrl.places[0], stale));
        assert_eq!(
            h.ctrl.receivers(),
            2,
            "the dead one counted out once, the newcomer in"
        );
        // Both "die": their places stay as they are (no close).
        std::mem::forget(newcomer);
        std::mem::forget(dead);
        // Now the place holds the newcomer, at the newest message; the writer goes on.
        send(&mut p, &[4]).unwrap();
        // Detach for real: the newcomer "dies" too, a ring behind.
        for i in 5..8u8 {
            send(&mut p, &[i]).unwrap();
        }
        for i in 4..8u8 {
            assert_eq!(recv(&mut live).unwrap(), [i]);
        }
        assert!(matches!(send(&mut p, b"x"), Err(Error::Full)));
        assert!(w.detach_dead(&mut |i| Ok(i != READER_BASE)).unwrap());
        assert_eq!(h.ctrl.receivers(), 1);
        send(&mut p, b"on").unwrap();
        assert_eq!(recv(&mut live).unwrap(), b"on");
    }

    #[test]
    fn readers_drain_then_disconnected_and_writer_sees_readers_gone() {
        let mut h = Heap::new(4, 8, Overflow::Block, 0);
        let mut p = h.producer();
        let mut r = h.consumer();
        send(&mut p, b"a").unwrap();
        h.ctrl.leave_sender();
        assert_eq!(recv(&mut r).unwrap(), b"a");
        assert!(matches!(recv(&mut r), Err(Error::Disconnected)));
        r.close();
        assert!(matches!(send(&mut p, b"b"), Err(Error::Disconnected)));
        let _r2 = h.consumer();
        send(&mut p, b"b").unwrap();
    }

    #[test]
    fn batches_publish_together_and_a_discarded_batch_sends_nothing() {
        for policy in [Overflow::Block, Overflow::Overwrite] {
            let mut h = Heap::new(8, 8, policy, 0);
            let mut p = h.producer();
            let mut r = h.consumer();
            p.begin_batch();
            for i in 0..3u8 {
                let g = p.try_reserve(1).unwrap();
                // SAFETY: one byte of the grant's slot.
                unsafe { *p.payload(&g) = i };
                p.stage(g, 1);
            }
            assert!(matches!(r.try_peek(), Err(Error::Empty)), "unpublished");
            assert!(p.flush());
            p.begin_batch();
            let g = p.try_reserve(1).unwrap();
            p.stage(g, 1);
            p.discard();
            send(&mut p, &[9]).unwrap();
            let mut got = Vec::new();
            while let Ok(f) = r.try_peek() {
                // SAFETY: a validated frame; taken frames stay valid until the flush.
                got.push(unsafe { *r.payload(&f) });
                r.take(f);
            }
            assert!(r.flush_taken());
            assert_eq!(got, [0, 1, 2, 9], "{policy:?}");
        }
    }

    #[test]
    fn a_lag_found_inside_a_batch_is_reported_by_the_next_call() {
        let mut h = Heap::new(4, 8, Overflow::Overwrite, 0);
        let mut p = h.producer();
        let mut r = h.consumer();
        r.defer(Error::Lagged { missed: 5 });
        r.defer(Error::Empty);
        assert!(matches!(r.try_peek(), Err(Error::Lagged { missed: 5 })));
        assert!(matches!(r.try_peek(), Err(Error::Empty)));
        send(&mut p, b"x").unwrap();
        assert_eq!(recv(&mut r).unwrap(), b"x");
    }

    #[test]
    fn a_new_writer_continues_after_the_last_complete_message() {
        let mut h = Heap::new(4, 8, Overflow::Overwrite, 0);
        let mut p = h.producer();
        let mut r = h.consumer();
        send(&mut p, b"a").unwrap();
        send(&mut p, b"b").unwrap();
        h.ctrl.tail.store(1, Ordering::Relaxed); // died before its tail store of "b"
        drop(p);
        let mut p2 = h.producer();
        assert_eq!(p2.position(), 2);
        send(&mut p2, b"c").unwrap();
        for m in [b"a", b"b", b"c"] {
            assert_eq!(recv(&mut r).unwrap(), m);
        }
    }

    #[test]
    fn hostile_stamps_and_lengths_are_corrupted_never_a_panic() {
        for policy in [Overflow::Block, Overflow::Overwrite] {
            let mut h = Heap::new(4, 8, policy, 0);
            let mut p = h.producer();
            let mut r = h.consumer();
            send(&mut p, b"ok").unwrap();
            *h.slot_word(0, 1) = 9; // length beyond the slot
            assert!(
                matches!(recv(&mut r), Err(Error::Corrupted(_))),
                "{policy:?}"
            );
            *h.slot_word(0, 0) = done(1); // a stamp of another slot's position
            assert!(matches!(recv(&mut r), Err(Error::Corrupted(_))));
        }
        let mut h = Heap::new(4, 8, Overflow::Block, 0);
        let _p = h.producer();
        let mut r = h.consumer();
        *h.slot_word(0, 0) = done(4); // a lap ahead in Block mode
        assert!(matches!(recv(&mut r), Err(Error::Corrupted(_))));
        // Settings no creator writes.
        let mut h = Heap::new(4, 8, Overflow::Block, 0);
        h.ctrl.settings.policy.store(7, Ordering::Relaxed);
        let (c, d) = h.parts();
        // SAFETY: the heap ring outlives the attempt.
        let bad_policy = unsafe { Producer::attach(c, d, 4, 8) };
        assert!(matches!(bad_policy, Err(Error::Corrupted(_))));
        h.ctrl.settings.policy.store(1, Ordering::Relaxed);
        h.ctrl.settings.history.store(4, Ordering::Relaxed);
        // SAFETY: as above.
        let bad_history = unsafe { Consumer::attach(c, d, 4, 8, 0) };
        assert!(matches!(bad_history, Err(Error::Corrupted(_))));
        h.ctrl.settings.history.store(0, Ordering::Relaxed);
        // SAFETY: as above.
        let bad_place = unsafe { Consumer::attach(c, d, 4, 8, MAX_READERS as usize) };
        assert!(matches!(bad_place, Err(Error::Corrupted(_))));
    }

    #[test]
    fn scribbled_words_never_panic_or_hang() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let rounds = if cfg!(miri) { 100 } else { 2000 };
        for round in 0..rounds {
            let policy = if round % 2 == 0 {
                Overflow::Block
            } else {
                Overflow::Overwrite
            };
            let mut h = Heap::new(8, 24, policy, (round % 4) as u64);
            let mut p = h.producer();
            let mut c = h.consumer();
            for i in 0..(round % 11) {
                let _ = send(&mut p, &[i as u8; 3]);
            }
            for _ in 0..(1 + next() % 4) {
                let r = next();
                let v = if r % 3 == 0 { next() % 40 } else { next() };
                match r % 5 {
                    0 | 1 => *h.slot_word(next() % 8, (next() % 2) as usize) = v,
                    2 => h.ctrl.tail.store(v, Ordering::Relaxed),
                    3 => h.ctrl.places[0].cursor.store(v, Ordering::Relaxed),
                    _ => h.ctrl.writer_min.store(v, Ordering::Relaxed),
                }
            }
            for _ in 0..30 {
                match c.try_peek() {
                    Ok(f) => {
                        assert!(f.len <= 24);
                        // SAFETY: a validated frame of our heap ring.
                        let _ = unsafe { std::slice::from_raw_parts(c.payload(&f), f.len) };
                        c.release(f);
                    }
                    Err(Error::Empty | Error::Corrupted(_) | Error::Lagged { .. }) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
                match send(&mut p, b"abc") {
                    Ok(()) | Err(Error::Full | Error::Disconnected) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
                let _ = c.more();
                let _ = p.room();
                let _ = p.watcher().detach_dead(&mut |_| Ok(false));
            }
        }
    }

    #[test]
    fn observe_decodes_positions_readers_and_settings() {
        let mut h = Heap::new(8, 8, Overflow::Overwrite, 2);
        let mut p = h.producer();
        let mut a = h.consumer();
        let _b = h.consumer();
        for i in 0..5u8 {
            send(&mut p, &[i]).unwrap();
        }
        recv(&mut a).unwrap();
        let c = NonNull::from(&*h.ctrl).cast();
        // SAFETY: a live, aligned control block whose writes are all atomic.
        let (ring, v) = unsafe { (observe(c, 8), observe_readers(c, 16)) };
        assert_eq!(v.policy, Some(Overflow::Overwrite));
        assert_eq!((v.history, v.tail, v.hi), (2, 5, 2));
        assert_eq!(v.readers.len(), 2);
        assert_eq!((v.readers[0].cursor, v.readers[0].lag), (1, 4));
        assert_eq!((v.readers[1].cursor, v.readers[1].lag), (0, 5));
        assert!(v.readers.iter().all(|r| r.active && r.generation == 1));
        assert_eq!((ring.head, ring.tail, ring.used), (0, 5, 5));
        assert_eq!((ring.senders, ring.receivers), (Some(1), Some(2)));
        a.close();
        // SAFETY: as above.
        let v = unsafe { observe_readers(c, 16) };
        assert!(!v.readers[0].active);
    }
}
