//! The multi-producer multi-consumer ring: a bounded array of fixed-size slots, each with a
//! sequence number (a *stamp*), in the manner of Dmitry Vyukov's bounded MPMC queue and
//! crossbeam's `ArrayQueue`.
//!
//! # Positions and slots
//! `slots` (a power of two, at least 2) slots, each `SLOT_HEADER` bytes (the message length) plus
//! room for `slot_size` payload bytes. Two positions count messages since the ring was made and
//! never wrap in practice (`u64`); position `p` lives in slot `p & (slots - 1)`:
//!
//! * `tail`: the next position a producer will claim. Every producer moves it, by CAS.
//! * `head`: the next position a consumer will claim. Every consumer moves it, by CAS.
//!
//! # Stamps: who may touch a slot, and when
//! The positions alone cannot tell a producer whether the consumer of the previous lap is done
//! with a slot, nor a consumer whether the producer of this lap has finished writing it: a CAS
//! only *claims* a position, the copy comes after. Each slot therefore has a stamp, a `u64`
//! that says which position the slot is ready for and in which role:
//!
//! * `stamp == p`: the slot is free for the producer of position `p`. Initially slot `i` has
//!   stamp `i` (free for lap 0).
//! * `stamp == p + 1`: the producer of `p` has written it; it is ready for the consumer of `p`.
//! * after that consumer is done, it stores `p + slots`: free for the producer one lap later.
//!
//! A producer that loaded `tail == p` reads the stamp of `p`'s slot (Acquire):
//! equal to `p`, it tries to CAS `tail` from `p` to `p + 1`, and on success owns the slot alone;
//! it writes length and payload, then stores the stamp `p + 1` (Release). A stamp *below* `p`
//! means the slot still holds last lap's message (or its consumer is still reading it): the ring
//! is full. A stamp *above* `p` means another producer got `p` first: reload `tail`, retry.
//! Consumers mirror this with `head`, expecting `p + 1` and leaving `p + slots` behind.
//!
//! # Invariants, checked where a stamp or position is read
//! * A stamp of slot `s` is, modulo `slots`, `s` (free) or `s + 1` (written): both kinds of
//!   store keep that congruence. Anything else is [`Error::Corrupted`].
//! * A stamp above the expected one means some other participant finished with position `p`,
//!   and it did so after moving the position past `p`; the Acquire load of the stamp makes that
//!   move visible, so re-reading the position and finding `p` again cannot happen with honest
//!   peers: it is [`Error::Corrupted`], not a reason to spin.
//! * A message length is at most `slot_size`, or [`SKIP`] (a claimed slot given up without a
//!   message). Anything else is [`Error::Corrupted`].
//! * Every retry loop is bounded ([`MAX_STEPS`]); running out returns `Full` / `Empty`, so a
//!   hostile peer can at worst make this side wait, never hang it inside a call.
//!
//! # Claiming cannot be undone, but a dead claimer's slot can be recovered
//! Once a producer has claimed a position, later producers fill the positions after it, and a
//! consumer must see *something* there before it can move on. A reservation dropped without a
//! commit is therefore published as a [`SKIP`] message, which consumers step over silently.
//!
//! A process that dies holding a slot would wedge the ring, so every slot a participant holds
//! can be attributed to it at every instruction, from two records:
//!
//! * **The intent word.** The control block has one word per participant index (the channel
//!   layer's liveness lock index, [`MAX_OWNERS`] of them, each on its own cache line). Right
//!   before its claiming CAS a participant stores there the position it is about to claim and
//!   its role (the CAS itself is Release, so whoever acquires the moved position sees the
//!   intent; see "The orderings recovery rests on"). A participant whose call ends without a
//!   claim withdraws its intent (stores "none") before returning; a successful claim leaves it
//!   in place until the next one. Participants that lost the CAS for the same position may
//!   name it too, for the few instructions until their next attempt or their return.
//! * **The owner mark.** Right after its claim a participant writes an owner mark
//!   (`PRODUCER_MARK` or `CONSUMER_MARK`, the position's low 32 bits, and its index) into the
//!   slot's length word (a consumer has copied the length out by then).
//!
//! A side that finds itself stuck behind a slot (a consumer: the slot at `head` claimed but
//! unwritten; a producer: the slot at `tail` still held by the previous lap's consumer) asks
//! the channel layer, once per liveness slice, whether the holder is alive (its liveness
//! lock), and frees the slot if it is dead ([`Watcher::unblock_consumer`],
//! [`Watcher::unblock_producer`]): a CAS of the length word from the value it read (one
//! clearer wins, and a holder that wrote since makes it fail), then a CAS of the stamp from
//! the held value (never set back). A dead producer's claim becomes a skipped slot, a dead
//! consumer's claim a free slot. A newcomer that takes a dead participant's index frees what
//! that index held at once ([`Watcher::clear_owned_by`]). Its own first claim would overwrite
//! the intent, so while a live participant names the same position (a loser of the same CAS
//! still inside its call, or stopped there) the claim is ambiguous: the newcomer waits briefly
//! for it to move on, and if it does not, gives the index back and takes another (the channel
//! layer, `shm::half::attach`), leaving the dead claimer's intent for the survivors.
//!
//! ## Windows, and how each is recovered
//! | Killed between | State left | Recovered by |
//! |---|---|---|
//! | producer: intent store and `tail` CAS | intent names `p`, `tail == p`, nothing claimed | nothing to recover; the stale intent matches no stuck slot |
//! | producer: `tail` CAS and owner mark | `tail > p`, stamp `p`, length word holds last lap's value | the intent: every participant naming `p` as producer is dead, so the slot is skipped |
//! | producer: mark and `publish` | stamp `p`, producer mark | the mark (as the intent would) |
//! | producer: `publish`'s length store and stamp store | stamp `p`, length word holds the length | the intent: the message is given up as skipped |
//! | consumer: intent store and `head` CAS | nothing claimed | nothing to recover |
//! | consumer: `head` CAS and owner mark | `head > p`, stamp `p + 1`, length word holds the length | the intent: every participant naming `p` as consumer is dead, so the slot is freed |
//! | consumer: `head` CAS and the free of a skipped slot | as above, length [`SKIP`] | the intent: freed |
//! | consumer: mark and release (holding a guard) | stamp `p + 1`, consumer mark | the mark: freed |
//!
//! Each recovery happens within one liveness slice of a survivor blocked behind the slot, or
//! at once when a newcomer takes the dead participant's index. A live holder is never
//! robbed: the slot is freed only if *every* participant whose intent names it is dead (a live
//! one may be the winner), and a holder that finished meanwhile shows in the stamp (checked
//! again after the intents) or makes the length word's CAS fail. One participant holds at most
//! one *unmarked* claim at a time for this to hold: the claim its intent names, between the
//! CAS and the mark, or inside `publish`. Every other claim it holds carries its owner mark.
//!
//! ## The orderings recovery rests on
//! A survivor decides on an unmarked claim from words other participants wrote without any
//! lock, so two inferences must hold, and each is carried by a Release/Acquire pair:
//!
//! * **A live claimer's intent is seen.** The claimer stores its intent before its claiming CAS,
//!   which is Release; the survivor reads the moved position with Acquire
//!   (`Watcher::claimed_tail` / `claimed_head`) before it reads the intents. Without this, a
//!   survivor could find only a dead participant's intent naming the position (a CAS loser, or
//!   one that died before its CAS) and free a live claimer's slot.
//! * **An intent that moved on means the claim was finished.** A claimer's next intent, or its
//!   withdrawal ("none"), is stored with Release after the stamp store that finished its claim,
//!   and the survivor loads the intents with Acquire, so the stamp re-check after them sees the
//!   finished claim. The length word's CAS cannot stand in for this: a producer that publishes
//!   an empty message writes back the very word the slot held before (0), an ABA, and a
//!   consumer's slot refilled a lap later with a message of the same length reads the same.
//!
//! Each of these orderings is a mutant of `.ci/loom-mutants`, caught by
//! `mpmc_live_claimer_races_recovery_on_a_dead_intent` (producers) or
//! `mpmc_live_consumer_races_recovery_on_a_dead_intent` (consumers): there the live side and
//! the recovering side synchronise only through the ring, so loom may return stale values to
//! the survivor. The other loads of recovery only name candidates (a position, a stamp, the
//! length word), which the CASes of `release_slot` re-check against the latest values: they
//! are Relaxed.
//!
//! ## Batches
//! A producer may hold several claims at once ([`Producer::stage`]): each is marked right
//! after its CAS, as a single claim is, and stays marked until [`Producer::flush`] publishes
//! the batch slot by slot, storing its intent for each slot before that slot's two stores, so
//! the one unmarked claim is always the one its intent names. It publishes the last claim
//! first: consumers claim in position order, so the order of delivery is unchanged, and a
//! consumer waiting at the first slot finds the whole batch ready at once instead of chasing
//! the publishing loop (then every stamp line would move between the two cores once per
//! message). A process killed in the middle of the loop leaves a published suffix and a
//! marked prefix, recovered by its marks as below. A consumer may hold several
//! ([`Consumer::take`]), each marked, and frees them together ([`Consumer::flush_taken`]). A
//! process killed in the middle of a batch leaves marked slots (recovered by their marks) and
//! at most one window of the table above. What a batch saves here is the wakes and the
//! calls, not the claiming CAS: each slot is still claimed on its own.
//!
//! ## Delivery of the message a dead process held: at most once
//! The message of a producer that died before its stamp store is lost (given up as a skip).
//! The message a consumer claimed or held (a zero-copy guard) when it died is not delivered
//! again: the slot is freed for the next lap. No message is ever delivered twice. This is the
//! price of a bounded array queue with per-slot stamps: the head has moved past the dead
//! consumer's position, and there is no place to put the message back.
//!
//! # Disconnect
//! The control block counts the producers and consumers that have joined and not yet left. A
//! consumer that finds the ring empty while no producer is left (after at least one joined)
//! looks once more, then reports [`Error::Disconnected`]; a producer reports it when every
//! consumer has left. A dead process never decrements its count: the channel layer detects that
//! through liveness locks instead.
//!
//! This module makes no system call and reaches atomics only through [`crate::sync::atomic`],
//! so the loom models run it, inside the production channel halves, on heap memory.

use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::error::{Error, Result};
use crate::ring::layout::align8;
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Bytes before each slot's payload: the message length word.
pub const SLOT_HEADER: u64 = 8;
/// The length of a slot that was claimed and given up: consumers skip it.
pub const SKIP: u64 = u64::MAX;
/// The fewest slots a ring may have (the stamp congruence needs two distinct residues).
pub const MIN_SLOTS: u64 = 2;
/// The most slots a ring may have.
pub const MAX_SLOTS: u64 = 1 << 24;
/// The largest slot (payload bytes).
pub const MAX_SLOT_SIZE: u64 = 1 << 24;
/// The most retries of one claim before a call gives up with `Full` / `Empty`. Honest
/// contention ends far sooner: a retry happens only when another participant made progress.
pub const MAX_STEPS: u32 = 1 << 16;
/// The most senders (and, separately, receivers) a segment may allow: the bound of the
/// per-peer liveness tables that follow the control block.
pub const MAX_PEERS: u32 = 1024;

/// Participant indexes that record a claiming intent (senders and receivers together: the
/// channel layer numbers senders `0..S` and receivers `S..S+R`, both at most [`MAX_PEERS`]).
#[cfg_attr(shmring_loom, allow(dead_code))]
pub const MAX_OWNERS: usize = 2 * MAX_PEERS as usize;
/// Intent words under loom (the models use the default maxima, 16 + 16).
#[cfg(shmring_loom)]
pub const LOOM_OWNERS: usize = 32;

/// An intent word that records nothing.
const NO_INTENT: u64 = 0;

/// The intent word of a participant about to claim `pos` as a producer or as a consumer: the
/// position and the role, never [`NO_INTENT`] (module docs, "Claiming with an intent").
#[inline]
fn intent_word(pos: u64, consumer: bool) -> u64 {
    ((pos << 1) | u64::from(consumer)).wrapping_add(1)
}

/// One participant's intent word, alone on its cache line: participants write their own
/// word on every claim, and must not contend with each other for it.
#[repr(C, align(64))]
#[derive(Debug)]
struct Intent(AtomicU64);

const SENDERS_JOINED: u32 = 1;
const RECEIVERS_JOINED: u32 = 2;

/// The shared control block of an MPMC ring. `#[repr(C)]`, so it can be placed in a segment.
#[repr(C)]
#[derive(Debug)]
pub struct MpmcControl {
    head: CachePadded<AtomicU64>,
    tail: CachePadded<AtomicU64>,
    peers: CachePadded<Peers>,
    /// Per participant index: the position it is claiming or last claimed, and in which role
    /// (`intent_word`), written before its claiming CAS (module docs).
    #[cfg(not(shmring_loom))]
    intents: [Intent; MAX_OWNERS],
    #[cfg(shmring_loom)]
    intents: Vec<Intent>,
    /// Under loom the slots' length words are loom atomics kept here, one per slot, so the
    /// model checker sees them as the atomics they are in production (where they are the
    /// first word of each slot).
    #[cfg(shmring_loom)]
    loom_lens: Vec<AtomicU64>,
    /// Under loom, one model cell per slot standing for its payload bytes (which stay plain
    /// memory): a producer touches it for writing while it owns the slot, a consumer for
    /// reading, so loom's causality checker reports a payload access that the stamp protocol
    /// does not order after the previous owner's (a weakened Release or Acquire).
    #[cfg(shmring_loom)]
    loom_payload: crate::ring::LoomPayload,
}

/// The most slots a ring may have under loom (its length words live in the control block).
#[cfg(shmring_loom)]
pub const LOOM_MAX_SLOTS: u64 = 8;

/// Who is attached: counts of producers and consumers, and whether each kind ever joined (so
/// "none yet" differs from "all gone").
#[repr(C)]
#[derive(Debug, Default)]
struct Peers {
    senders: AtomicU32,
    receivers: AtomicU32,
    joined: AtomicU32,
}

impl MpmcControl {
    /// A control block for an empty ring, with nobody attached.
    pub fn new() -> Self {
        MpmcControl {
            head: CachePadded::new(AtomicU64::new(0)),
            tail: CachePadded::new(AtomicU64::new(0)),
            peers: CachePadded::new(Peers::default()),
            #[cfg(not(shmring_loom))]
            intents: [const { Intent(AtomicU64::new(NO_INTENT)) }; MAX_OWNERS],
            #[cfg(shmring_loom)]
            intents: (0..LOOM_OWNERS)
                .map(|_| Intent(AtomicU64::new(NO_INTENT)))
                .collect(),
            #[cfg(shmring_loom)]
            loom_lens: (0..LOOM_MAX_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            #[cfg(shmring_loom)]
            loom_payload: crate::ring::LoomPayload::new(LOOM_MAX_SLOTS),
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

    /// The intent word of participant `owner`, if the block has one for that index.
    fn intent(&self, owner: u16) -> Option<&AtomicU64> {
        self.intents.get(usize::from(owner)).map(|i| &i.0)
    }

    /// Messages claimed by producers and not yet claimed by consumers (for display; two
    /// separate loads, so only approximate while the ring is busy).
    pub fn used(&self) -> u64 {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head)
    }

    /// Producers attached now, as counted in shared memory.
    pub fn senders(&self) -> u32 {
        self.peers.senders.load(Ordering::Acquire)
    }

    /// Consumers attached now, as counted in shared memory.
    pub fn receivers(&self) -> u32 {
        self.peers.receivers.load(Ordering::Acquire)
    }

    fn join(&self, count: &AtomicU32, bit: u32) {
        count.fetch_add(1, Ordering::AcqRel);
        // Release: pairs with the Acquire load of `joined` in `gone`: who sees the bit sees
        // the increment before it, so "joined and zero" never shows up transiently.
        self.peers.joined.fetch_or(bit, Ordering::Release);
    }

    fn gone(&self, count: &AtomicU32, bit: u32) -> bool {
        // Acquire: pairs with the Release `fetch_or` in `join`.
        self.peers.joined.load(Ordering::Acquire) & bit != 0
            // Acquire: pairs with the Release decrement in `leave_*`: everything the last
            // participant published before leaving is visible after this load.
            && count.load(Ordering::Acquire) == 0
    }

    /// Counts a new producer in.
    pub fn join_sender(&self) {
        self.join(&self.peers.senders, SENDERS_JOINED);
    }

    /// Counts a new consumer in.
    pub fn join_receiver(&self) {
        self.join(&self.peers.receivers, RECEIVERS_JOINED);
    }

    /// Counts a producer out (it has committed or given up every reservation).
    pub fn leave_sender(&self) {
        // Release: pairs with the Acquire load in `gone` (consumers' `senders_gone`).
        self.peers.senders.fetch_sub(1, Ordering::Release);
    }

    /// Counts a consumer out.
    pub fn leave_receiver(&self) {
        // Release: pairs with the Acquire load in `gone` (producers' `receivers_gone`).
        self.peers.receivers.fetch_sub(1, Ordering::Release);
    }

    /// True if producers joined and every one of them left.
    #[inline]
    pub fn senders_gone(&self) -> bool {
        self.gone(&self.peers.senders, SENDERS_JOINED)
    }

    /// True if consumers joined and every one of them left.
    #[inline]
    pub fn receivers_gone(&self) -> bool {
        self.gone(&self.peers.receivers, RECEIVERS_JOINED)
    }
}

/// Checks a slot count and slot size read from a header (or a config).
pub fn validate_geometry(slots: u64, slot_size: u64) -> Result<()> {
    if !slots.is_power_of_two() || !(MIN_SLOTS..=MAX_SLOTS).contains(&slots) {
        return Err(Error::Corrupted(
            "MPMC slot count is not a power of two in 2..=16Mi",
        ));
    }
    if slot_size == 0 || slot_size > MAX_SLOT_SIZE {
        return Err(Error::Corrupted("MPMC slot size is not in 1 B..=16 MiB"));
    }
    Ok(())
}

/// Bytes from one slot to the next: the length word and the payload, padded to 8.
pub fn slot_stride(slot_size: u64) -> u64 {
    SLOT_HEADER + align8(slot_size)
}

/// Bytes of data area (slots) a ring of this geometry needs; stamps are separate.
pub fn data_len(slots: u64, slot_size: u64) -> u64 {
    slots * slot_stride(slot_size)
}

/// Prepares the stamps of a fresh ring: slot `i` free for position `i`.
///
/// # Safety
/// `stamps` points at `slots` atomics that no other thread or process uses yet.
pub unsafe fn init_stamps(stamps: NonNull<AtomicU64>, slots: u64) {
    for i in 0..slots {
        // SAFETY: `i < slots`, inside the array per the contract. The value is written in
        // place (the memory may be fresh, zeroed bytes of a segment) rather than stored
        // through a reference, so it is initialised whatever it held.
        unsafe { stamps.as_ptr().add(i as usize).write(AtomicU64::new(i)) };
    }
}

/// Tag of an owner mark written by a producer that claimed a slot (see the module docs).
const PRODUCER_MARK: u64 = 0x5052 << 48; // "PR"
/// Tag of an owner mark written by a consumer that claimed a slot.
const CONSUMER_MARK: u64 = 0x434F << 48; // "CO"
const MARK_TAG: u64 = 0xFFFF << 48;

/// The owner mark of participant `owner` for position `pos`.
fn owner_mark(tag: u64, pos: u64, owner: u16) -> u64 {
    tag | ((pos & 0xFFFF_FFFF) << 16) | u64::from(owner)
}

/// The argument of `halted`: a [`Halt`] under loom, nothing (and never halted) otherwise.
#[cfg(shmring_loom)]
macro_rules! halt {
    ($at:ident) => {
        Halt::$at
    };
}
#[cfg(not(shmring_loom))]
macro_rules! halt {
    ($at:ident) => {
        ()
    };
}

/// Where a loom model stops an end, as a SIGKILL there would (a hidden hook, loom only).
#[cfg(shmring_loom)]
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// Right after the claiming CAS, before the owner mark: the claim fails with `Corrupted`
    /// and leaves its intent.
    AfterClaim,
    /// A producer's `publish` returns after the length store, before the stamp store.
    InPublish,
    /// Right after the intent store, before the claiming CAS (a participant that dies before
    /// claiming, or a CAS loser that dies before withdrawing): the claim fails with `Corrupted`
    /// and leaves an intent that names a position it never held.
    BeforeClaim,
}

/// Where the ring lives: control block, stamps and slots.
#[derive(Debug, Clone, Copy)]
struct Ring {
    ctrl: NonNull<MpmcControl>,
    stamps: NonNull<AtomicU64>,
    data: NonNull<u8>,
    slots: u64,
    slot_size: u64,
}

impl Ring {
    /// # Safety
    /// See [`Producer::attach`].
    unsafe fn new(
        ctrl: NonNull<MpmcControl>,
        stamps: NonNull<AtomicU64>,
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
        Ok(Ring {
            ctrl,
            stamps,
            data,
            slots,
            slot_size,
        })
    }

    fn ctrl(&self) -> &MpmcControl {
        // SAFETY: valid per `Ring::new`'s contract; `MpmcControl` holds only atomics, so a
        // shared reference is sound while other processes write it.
        unsafe { self.ctrl.as_ref() }
    }

    fn mask(&self) -> u64 {
        self.slots - 1
    }

    /// The stamp of the slot of position `pos`.
    fn stamp(&self, pos: u64) -> &AtomicU64 {
        let i = (pos & self.mask()) as usize;
        // SAFETY: `i < slots` (masked), inside the stamp array that `Ring::new`'s contract keeps
        // valid; the stamps are atomics, shareable with writers in other processes.
        unsafe { &*self.stamps.as_ptr().add(i) }
    }

    /// The start (length word) of the slot of position `pos`.
    fn slot(&self, pos: u64) -> *mut u8 {
        let i = pos & self.mask();
        // SAFETY: `i < slots`, so `i * stride + stride <= data_len`, inside the data area that
        // `Ring::new`'s contract keeps valid.
        unsafe {
            self.data
                .as_ptr()
                .add((i * slot_stride(self.slot_size)) as usize)
        }
    }

    /// The length word of the slot of position `pos`: the message length once written, an
    /// owner mark while a participant holds the slot (module docs). Always accessed atomically
    /// (Relaxed: the stamps carry the ordering).
    #[inline]
    fn len_word(&self, pos: u64) -> &AtomicU64 {
        #[cfg(not(shmring_loom))]
        {
            // SAFETY: the slot start is 8-aligned (strides are multiples of 8 from an 8-aligned
            // data area) and inside the data area (`slot`); every access to length words, in
            // every process, is atomic, which is what `from_ptr` requires.
            unsafe { AtomicU64::from_ptr(self.slot(pos).cast()) }
        }
        #[cfg(shmring_loom)]
        {
            &self.ctrl().loom_lens[(pos & self.mask()) as usize]
        }
    }

    /// Under loom: records an access to the payload of `pos`'s slot (see
    /// `MpmcControl::loom_payload`), a write by its producer or a read by its consumer. Loom
    /// panics if the access is not ordered after every access of the other kind before it. A
    /// no-op in production.
    #[inline(always)]
    fn touch_payload(&self, pos: u64, write: bool) {
        #[cfg(shmring_loom)]
        self.ctrl().loom_payload.touch(pos & self.mask(), write);
        #[cfg(not(shmring_loom))]
        let _ = (pos, write);
    }

    /// Checks the congruence invariant of a stamp read for position `pos` (module docs).
    fn check_stamp(&self, pos: u64, stamp: u64) -> Result<()> {
        let m = self.mask();
        let (s, st) = (pos & m, stamp & m);
        if st != s && st != (s + 1) & m {
            return Err(Error::Corrupted("slot stamp does not belong to its slot"));
        }
        Ok(())
    }
}

/// A slot that some participant claimed and has not finished with, blocking this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned {
    pos: u64,
    mark: u64,
    /// The participant index in the owner mark: ask whether it is alive.
    pub owner: u16,
    /// True if the holder is a producer (the slot is claimed but unwritten).
    pub by_producer: bool,
}

/// Finds and clears slots whose holder died (see the module docs). `Copy`, so that the wait
/// loop's liveness check can use it beside the handle's own attempt.
#[derive(Debug, Clone, Copy)]
pub struct Watcher {
    ring: Ring,
}

// SAFETY: as for `Producer`: pointers into memory the handle's contract keeps valid, reached
// through atomics only.
unsafe impl Send for Watcher {}

/// A slot that blocks one side, as read: its position, its length word, and the stamp it has
/// while its holder has not finished.
#[derive(Debug, Clone, Copy)]
struct Blocked {
    pos: u64,
    word: u64,
    stamp: u64,
    by_producer: bool,
}

/// What an attempt to free a blocking slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblock {
    /// Nothing blocks, or what blocks has no holder on record (yet).
    Nothing,
    /// A holder (or a participant that may be the holder) is alive: wait.
    Alive,
    /// The slot was freed (or given up as skipped) by this call.
    Cleared,
    /// Every possible holder is dead, but another participant freed the slot first.
    Lost,
}

/// The liveness question the channel layer answers: `alive(holder_is_producer, index)`.
pub type Alive<'a> = &'a mut dyn FnMut(bool, u16) -> Result<bool>;

impl Watcher {
    /// For a consumer: the slot at `head`, if it is claimed by a producer and still unwritten.
    fn blocked_consumer(&self) -> Option<Blocked> {
        // Relaxed: `head` only names the candidate position; what `unblock` decides on is the
        // producers' claims, seen through `claimed_tail`.
        let head = self.ring.ctrl().head.load(Ordering::Relaxed);
        self.producer_claim_at(head, self.claimed_tail())
    }

    /// `tail`, acquired: pairs with the Release CAS of `tail` in `Producer::claim` (and the
    /// RMWs after it, a release sequence), so that the intent word every producer stored
    /// before a claim up to the value read is visible to `unblock`: without it a live claimer's
    /// intent could be missed beside a dead participant's that names the same position
    /// (caught by `mpmc_live_claimer_races_recovery_on_a_dead_intent`).
    #[inline]
    fn claimed_tail(&self) -> u64 {
        self.ring.ctrl().tail.load(Ordering::Acquire)
    }

    /// `head`, acquired: as [`claimed_tail`](Self::claimed_tail), for the consumers' claims
    /// (pairs with the Release CAS of `head` in `Consumer::claim`; caught by
    /// `mpmc_live_consumer_races_recovery_on_a_dead_intent`).
    #[inline]
    fn claimed_head(&self) -> u64 {
        self.ring.ctrl().head.load(Ordering::Acquire)
    }

    /// Position `pos` as a claimed and unwritten slot, if it is one (`tail` from
    /// [`claimed_tail`](Self::claimed_tail)).
    fn producer_claim_at(&self, pos: u64, tail: u64) -> Option<Blocked> {
        let claimed = tail.wrapping_sub(pos);
        if claimed == 0 || claimed > self.ring.slots {
            return None;
        }
        // Relaxed: a candidate only. A stale stamp or length word read here frees nothing that
        // is not the claim it names: the length word is cleared by a CAS from the value read
        // (an RMW, which fails if the word moved on), the stamp by a CAS from `pos` (the same),
        // and `unblock` re-reads the stamp after the intents' Acquire.
        if self.ring.stamp(pos).load(Ordering::Relaxed) != pos {
            return None;
        }
        Some(Blocked {
            pos,
            word: self.ring.len_word(pos).load(Ordering::Relaxed),
            stamp: pos,
            by_producer: true,
        })
    }

    /// For a producer: the slot at `tail`, if last lap's consumer claimed it and never freed it.
    fn blocked_producer(&self) -> Option<Blocked> {
        // Relaxed: `tail` only names the candidate (see `blocked_consumer`).
        let tail = self.ring.ctrl().tail.load(Ordering::Relaxed);
        self.consumer_claim_at(tail.wrapping_sub(self.ring.slots), self.claimed_head())
    }

    /// Position `pos` as a slot claimed by a consumer and not yet freed, if it is one.
    fn consumer_claim_at(&self, pos: u64, head: u64) -> Option<Blocked> {
        // The position must be claimed by a consumer (head past it) and written.
        let claimed = head.wrapping_sub(pos);
        if claimed == 0 || claimed > self.ring.slots {
            return None;
        }
        let written = pos.wrapping_add(1);
        // Relaxed: a candidate only (see `producer_claim_at`).
        if self.ring.stamp(pos).load(Ordering::Relaxed) != written {
            return None;
        }
        Some(Blocked {
            pos,
            word: self.ring.len_word(pos).load(Ordering::Relaxed),
            stamp: written,
            by_producer: false,
        })
    }

    /// For a consumer: the slot at `head`, if it is claimed by a producer, still unwritten and
    /// carries the producer's owner mark (the claim and publish windows leave no mark: see
    /// [`unblock_consumer`](Self::unblock_consumer)).
    pub fn stuck_consumer(&self) -> Option<Abandoned> {
        self.blocked_consumer().and_then(|b| self.marked(b))
    }

    /// For a producer: the slot at `tail`, if last lap's consumer claimed it, never freed it,
    /// and marked it.
    pub fn stuck_producer(&self) -> Option<Abandoned> {
        self.blocked_producer().and_then(|b| self.marked(b))
    }

    /// Frees the slot a consumer is stalled at (at `head`), if every participant that may hold
    /// it is dead per `alive` (module docs, "Windows, and how each is recovered").
    pub fn unblock_consumer(&self, alive: Alive<'_>) -> Result<Unblock> {
        match self.blocked_consumer() {
            Some(b) => self.unblock(b, alive, None),
            None => Ok(Unblock::Nothing),
        }
    }

    /// Frees the slot a producer is stalled at (last lap's at `tail`), if every participant
    /// that may hold it is dead per `alive`.
    pub fn unblock_producer(&self, alive: Alive<'_>) -> Result<Unblock> {
        match self.blocked_producer() {
            Some(b) => self.unblock(b, alive, None),
            None => Ok(Unblock::Nothing),
        }
    }

    fn marked(&self, b: Blocked) -> Option<Abandoned> {
        let tag = if b.by_producer {
            PRODUCER_MARK
        } else {
            CONSUMER_MARK
        };
        let word = b.word;
        (word & MARK_TAG == tag && word == owner_mark(tag, b.pos, word as u16)).then_some(
            Abandoned {
                pos: b.pos,
                mark: word,
                owner: word as u16,
                by_producer: b.by_producer,
            },
        )
    }

    /// Frees `b` if its holder is dead. `dead` is a participant known dead whatever `alive`
    /// says (a newcomer that took its place).
    fn unblock(&self, b: Blocked, alive: Alive<'_>, dead: Option<u16>) -> Result<Unblock> {
        if let Some(a) = self.marked(b) {
            if Some(a.owner) != dead && alive(a.by_producer, a.owner)? {
                return Ok(Unblock::Alive);
            }
            return Ok(if self.clear_abandoned(a) {
                Unblock::Cleared
            } else {
                Unblock::Lost
            });
        }
        // No mark: the holder is between its claiming CAS and its mark, or (a producer)
        // between the two stores of `publish`. Its intent word names it, but so may the words
        // of participants that lost the CAS for the same position: free the slot only if every
        // one of them is dead.
        let want = intent_word(b.pos, !b.by_producer);
        let mut holders = 0;
        for (i, intent) in self.ring.ctrl().intents.iter().enumerate() {
            // Acquire: pairs with the Release store of the intent word: a word that moved on
            // from `want` shows the claimer's earlier stamp store to the check below.
            if intent.0.load(Ordering::Acquire) != want {
                continue;
            }
            let i = i as u16;
            if Some(i) != dead && alive(b.by_producer, i)? {
                return Ok(Unblock::Alive);
            }
            holders += 1;
        }
        if holders == 0 {
            return Ok(Unblock::Nothing);
        }
        // A live claimer that finished after our first look has stored its stamp before its
        // next intent (or its withdrawal), both Release; the intent load above acquired that,
        // so coherence alone makes the stamp store visible to this load: Relaxed suffices.
        if self.ring.stamp(b.pos).load(Ordering::Relaxed) != b.stamp {
            return Ok(Unblock::Nothing);
        }
        Ok(
            if self.release_slot(b.pos, b.word, b.stamp, b.by_producer) {
                Unblock::Cleared
            } else {
                Unblock::Lost
            },
        )
    }

    /// Clears what participant `owner` holds: called by a process that has just taken `owner`'s
    /// liveness lock, so the previous holder of that index is dead. Slots it marked are freed;
    /// the claim its intent word names is freed unless another participant that may hold it
    /// is alive (then [`Unblock::Alive`]: call again soon, before this index claims anything,
    /// since its first claim overwrites the intent). Returns how many slots were released and
    /// whether the intent is still pending.
    pub fn clear_owned_by(&self, owner: u16, alive: Alive<'_>) -> Result<(usize, bool)> {
        let ctrl = self.ring.ctrl();
        // Relaxed (this load, the stamps and the intent below): the caller has just taken the
        // dead owner's liveness lock, which orders everything the owner stored before it died
        // before these loads; the marks are then cleared by CAS, as in `unblock`.
        let tail = ctrl.tail.load(Ordering::Relaxed);
        let mut cleared = 0;
        for back in 1..=self.ring.slots {
            // Every position a producer or consumer of the last lap may still hold.
            let pos = tail.wrapping_sub(back);
            let stamp = self.ring.stamp(pos).load(Ordering::Relaxed);
            let by_producer = if stamp == pos {
                true
            } else if stamp == pos.wrapping_add(1) {
                false
            } else {
                continue;
            };
            let b = Blocked {
                pos,
                word: self.ring.len_word(pos).load(Ordering::Relaxed),
                stamp,
                by_producer,
            };
            if let Some(a) = self.marked(b) {
                if a.owner == owner && self.clear_abandoned(a) {
                    cleared += 1;
                }
            }
        }
        let Some(intent) = ctrl.intent(owner) else {
            return Ok((cleared, false));
        };
        let word = intent.load(Ordering::Relaxed);
        if word == NO_INTENT {
            return Ok((cleared, false));
        }
        let v = word.wrapping_sub(1);
        let (pos, consumer) = (v >> 1, v & 1 == 1);
        // Live participants may name the same position: their intents must be visible to
        // `unblock`, as for a blocked side.
        let blocked = if consumer {
            self.consumer_claim_at(pos, self.claimed_head())
        } else {
            self.producer_claim_at(pos, self.claimed_tail())
        };
        let Some(b) = blocked else {
            return Ok((cleared, false));
        };
        match self.unblock(b, alive, Some(owner))? {
            Unblock::Cleared => Ok((cleared + 1, false)),
            Unblock::Alive => Ok((cleared, true)),
            Unblock::Nothing | Unblock::Lost => Ok((cleared, false)),
        }
    }

    /// Releases a slot whose holder the caller found dead: a producer's claim becomes a skipped
    /// slot, a consumer's claim a free slot. False if someone else did it first (or the holder
    /// finished after all).
    pub fn clear_abandoned(&self, a: Abandoned) -> bool {
        let stamp = if a.by_producer {
            a.pos
        } else {
            a.pos.wrapping_add(1)
        };
        self.release_slot(a.pos, a.mark, stamp, a.by_producer)
    }

    /// Replaces the length word `word` of `pos` (by CAS: one clearer wins, and a holder that
    /// wrote since makes it fail), then moves the stamp on from `stamp` (by CAS, so that a
    /// stamp that moved on meanwhile is never set back).
    fn release_slot(&self, pos: u64, word: u64, stamp: u64, by_producer: bool) -> bool {
        let replacement = if by_producer { SKIP } else { 0 };
        // Relaxed: the stamp store below publishes.
        if self
            .ring
            .len_word(pos)
            .compare_exchange(word, replacement, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let next = if by_producer {
            pos.wrapping_add(1)
        } else {
            pos.wrapping_add(self.ring.slots)
        };
        // Release: pairs with the Acquire loads of the stamp in `try_peek` / `try_reserve`,
        // as a commit (of a skip) or a free would.
        self.ring
            .stamp(pos)
            .compare_exchange(stamp, next, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }
}

/// A slot claimed by a producer: its `pos`ition and room for `capacity` bytes. Made only by
/// [`Producer::try_reserve`]; not `Copy`, so it is committed or abandoned once.
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

/// A message claimed by a consumer: its `pos`ition and payload `len`. Made only by
/// [`Consumer::try_peek`]; not `Copy`, so it is released once.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pos: u64,
    len: usize,
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
}

/// A producing end of an MPMC ring (one per producer; any number may share a ring).
#[derive(Debug)]
pub struct Producer {
    ring: Ring,
    owner: u16,
    /// Claimed slots written as a batch's messages, `(position, length)`, published by
    /// [`flush`](Self::flush); each still carries our owner mark.
    staged: Vec<(u64, u64)>,
    #[cfg(shmring_loom)]
    halt: Option<Halt>,
    /// Set once a halt fired: the "dead" end claims nothing more (loom only).
    #[cfg(shmring_loom)]
    stopped: std::cell::Cell<bool>,
}

// SAFETY: the pointers lead to memory that `Producer::attach`'s contract keeps valid; all
// shared state is reached through atomics, and slot bytes only while the stamp protocol gives
// them to this producer alone.
unsafe impl Send for Producer {}

impl Producer {
    const CONSUMES: bool = false;
    /// Attaches to a ring as one of its producers. Does not count itself in: call
    /// [`MpmcControl::join_sender`] (and `leave_sender` when done) for disconnect detection.
    ///
    /// # Safety
    /// `ctrl`, `slots` stamps at `stamps`, and [`data_len`]`(slots, slot_size)` bytes at `data`
    /// (8-aligned) stay valid for reads and writes as long as the producer lives, and every
    /// participant uses the same geometry.
    pub unsafe fn attach(
        ctrl: NonNull<MpmcControl>,
        stamps: NonNull<AtomicU64>,
        data: NonNull<u8>,
        slots: u64,
        slot_size: u64,
    ) -> Result<Self> {
        // SAFETY: forwarded from this function's contract.
        let ring = unsafe { Ring::new(ctrl, stamps, data, slots, slot_size)? };
        Ok(Producer {
            ring,
            owner: 0,
            staged: Vec::new(),
            #[cfg(shmring_loom)]
            halt: None,
            #[cfg(shmring_loom)]
            stopped: std::cell::Cell::new(false),
        })
    }

    /// Sets the participant index written into owner marks (the channel layer's liveness
    /// lock index; see the module docs).
    pub fn set_owner(&mut self, owner: u16) {
        self.owner = owner;
    }

    /// The participant index written into owner marks.
    pub fn owner(&self) -> u16 {
        self.owner
    }

    /// Records that we are about to claim `pos` (module docs, "Claiming with an intent").
    #[inline]
    fn intend(&self, pos: u64) {
        if let Some(w) = self.ring.ctrl().intent(self.owner) {
            // Release: a survivor that reads a later intent of ours sees our stamp stores
            // before it (`Watcher::unblock`'s stamp re-check; caught by
            // `mpmc_live_claimer_races_recovery_on_a_dead_intent`).
            w.store(intent_word(pos, Self::CONSUMES), Ordering::Release);
        }
    }

    /// Withdraws the intent after a claim that did not happen.
    #[cold]
    fn withdraw(&self) {
        if self.stopped() {
            return; // "killed": a dead process withdraws nothing
        }
        if let Some(w) = self.ring.ctrl().intent(self.owner) {
            // Release: as in `intend`, a survivor that reads "none" sees the stamp stores of
            // our claims before it (withdrawn after a producer's `Full`).
            w.store(NO_INTENT, Ordering::Release);
        }
    }

    /// Stops this end at `at` from now on (loom models: see [`Halt`]).
    #[cfg(shmring_loom)]
    #[doc(hidden)]
    pub fn halt_at(&mut self, at: Halt) {
        self.halt = Some(at);
    }

    /// Lets a halted end run on, as a process stopped (SIGSTOP) where the halt fired would when
    /// it is continued (loom models only): its next call starts from the ring's state then.
    #[cfg(shmring_loom)]
    #[doc(hidden)]
    pub fn resume(&mut self) {
        self.halt = None;
        self.stopped.set(false);
    }

    #[cfg(shmring_loom)]
    #[inline]
    fn halted(&self, at: Halt) -> bool {
        self.halt == Some(at)
    }

    #[cfg(not(shmring_loom))]
    #[inline(always)]
    fn halted(&self, _: ()) -> bool {
        false
    }

    /// Marks a halted end as dead: it claims nothing more (loom only; a no-op otherwise).
    #[inline(always)]
    fn stop(&self) {
        #[cfg(shmring_loom)]
        self.stopped.set(true);
    }

    /// True once a halt fired (always false outside loom).
    #[inline(always)]
    fn stopped(&self) -> bool {
        #[cfg(shmring_loom)]
        return self.stopped.get();
        #[cfg(not(shmring_loom))]
        return false;
    }

    /// A handle for finding and clearing slots held by dead participants.
    pub fn watcher(&self) -> Watcher {
        Watcher { ring: self.ring }
    }

    /// The largest message (the slot size).
    pub fn max_message(&self) -> usize {
        self.ring.slot_size as usize
    }

    /// The number of slots.
    pub fn slots(&self) -> u64 {
        self.ring.slots
    }

    /// The control block (for joining, leaving and display).
    pub fn control(&self) -> &MpmcControl {
        self.ring.ctrl()
    }

    /// Claims a slot for a message of up to `len` bytes.
    ///
    /// `Err(Full)`: no free slot now. `Err(TooLarge)`: larger than a slot. `Err(Disconnected)`:
    /// every consumer left. The claim must be ended by [`commit`](Self::commit) or
    /// [`abandon`](Self::abandon), or consumers stall at it.
    #[inline(always)]
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant> {
        let max = self.max_message();
        if len > max {
            return Err(Error::TooLarge { size: len, max });
        }
        let ctrl = self.ring.ctrl();
        if ctrl.receivers_gone() {
            return Err(Error::Disconnected);
        }
        match self.claim(len) {
            Ok(grant) => Ok(grant),
            Err(e) => {
                // A lost CAS may have left our intent naming a position someone else claimed:
                // withdraw it, or a survivor would wait on us for a claim we do not hold.
                self.withdraw();
                Err(e)
            }
        }
    }

    #[inline(always)]
    fn claim(&self, len: usize) -> Result<Grant> {
        if self.stopped() {
            return Err(Error::Corrupted("stopped by a loom halt"));
        }
        let ctrl = self.ring.ctrl();
        // Relaxed: the position only names a candidate; the stamp's Acquire load below is what
        // orders our use of the slot after its previous consumer.
        let mut pos = ctrl.tail.load(Ordering::Relaxed);
        for _ in 0..MAX_STEPS {
            // Acquire: pairs with the Release store of the stamp in `Consumer::release` (the
            // previous lap's consumer is done reading) and in `commit` (another producer's claim
            // of `pos` is visible, see the module invariants).
            let stamp = self.ring.stamp(pos).load(Ordering::Acquire);
            self.ring.check_stamp(pos, stamp)?;
            let diff = stamp.wrapping_sub(pos) as i64;
            if diff == 0 {
                // Before the claim, so that a survivor can name us if we die right after it.
                self.intend(pos);
                if self.halted(halt!(BeforeClaim)) {
                    self.stop();
                    return Err(Error::Corrupted("halted before the claim (loom)"));
                }
                // Release: orders the intent store before the claim: pairs with the Acquire
                // load in `Watcher::claimed_tail`, so a survivor that sees the moved `tail` sees
                // our intent. The slot itself was handed over by the stamp.
                match ctrl.tail.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        if self.halted(halt!(AfterClaim)) {
                            self.stop();
                            return Err(Error::Corrupted("halted after the claim (loom)"));
                        }
                        // The slot is ours until we publish it (stamp protocol): mark it so a
                        // survivor can attribute it if we die (module docs).
                        self.ring.len_word(pos).store(
                            owner_mark(PRODUCER_MARK, pos, self.owner),
                            Ordering::Relaxed,
                        );
                        self.ring.touch_payload(pos, true);
                        return Ok(Grant { pos, capacity: len });
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                return Err(Error::Full);
            } else {
                let now = ctrl.tail.load(Ordering::Relaxed);
                if now == pos {
                    return Err(Error::Corrupted("slot stamp is ahead of the tail"));
                }
                pos = now;
            }
        }
        Err(Error::Full)
    }

    /// A pointer to the payload bytes of `grant`, for the caller to fill (`capacity` bytes).
    pub fn payload(&self, grant: &Grant) -> *mut u8 {
        // SAFETY: the payload follows the 8-byte length word inside the slot.
        unsafe { self.ring.slot(grant.pos).add(SLOT_HEADER as usize) }
    }

    /// Publishes the first `len` bytes of `grant` as one message.
    ///
    /// # Panics
    /// If `len > grant.capacity`: a bug in the caller, not in the peer.
    pub fn commit(&mut self, grant: Grant, len: usize) {
        assert!(
            len <= grant.capacity,
            "commit of {len} bytes into a reservation of {}",
            grant.capacity
        );
        self.publish(grant.pos, len as u64);
    }

    /// Gives a claimed slot up: consumers skip it.
    pub fn abandon(&mut self, grant: Grant) {
        self.publish(grant.pos, SKIP);
    }

    /// Starts a batch (nothing to do here: every claim is marked and staged on its own).
    #[inline]
    pub fn begin_batch(&mut self) {}

    /// Keeps the first `len` bytes of `grant` as a message of a batch: the slot stays claimed
    /// (and marked as ours) until [`flush`](Self::flush) publishes it or
    /// [`discard`](Self::discard) turns it into a skip. Consumers that reach it wait, as for a
    /// slow producer. The claims of a batch are amortised in the wakes, not in the CAS: each
    /// slot is claimed on its own (see the module docs, "Batches").
    ///
    /// # Panics
    /// As [`commit`](Self::commit).
    pub fn stage(&mut self, grant: Grant, len: usize) {
        assert!(
            len <= grant.capacity,
            "commit of {len} bytes into a reservation of {}",
            grant.capacity
        );
        self.staged.push((grant.pos, len as u64));
    }

    /// Publishes every staged slot, in claim order. True if anything was published.
    pub fn flush(&mut self) -> bool {
        self.end_staged(false)
    }

    /// Turns every staged slot into a skip: nothing of the batch is delivered.
    pub fn discard(&mut self) {
        self.end_staged(true);
    }

    fn end_staged(&mut self, skip: bool) -> bool {
        let mut staged = std::mem::take(&mut self.staged);
        // Last claim first (module docs, "Batches"): a consumer waiting at the batch's first
        // slot sees nothing until the whole batch is out, then takes it from lines this loop
        // no longer writes. In claim order it would chase the loop, each stamp line moving to
        // it and back once per message (the 64-message batch ran at half the per-call rate).
        // Consumers claim in position order whatever the order of the stamp stores, so the
        // delivery order is the same.
        for &(pos, len) in staged.iter().rev() {
            // Our intent names the slot while its length word holds a length and no mark
            // (between the two stores of `publish`), as for a single commit.
            self.intend(pos);
            self.publish(pos, if skip { SKIP } else { len });
            if self.stopped() {
                break; // "killed" inside `publish` (loom): the rest of the batch stays marked
            }
        }
        let any = !staged.is_empty();
        staged.clear();
        self.staged = staged; // keep the allocation
        any
    }

    fn publish(&mut self, pos: u64, len: u64) {
        self.ring.touch_payload(pos, true);
        // We own the slot (stamp protocol) until the Release store below, which orders this.
        self.ring.len_word(pos).store(len, Ordering::Relaxed);
        if self.halted(halt!(InPublish)) {
            self.stop();
            return;
        }
        // Release: pairs with the Acquire load of the stamp in `Consumer::try_peek`: length and
        // payload are visible before the slot is seen as written.
        self.ring
            .stamp(pos)
            .store(pos.wrapping_add(1), Ordering::Release);
    }

    /// True if the slot at `tail` looks free now: a hint that another sleeping producer should
    /// be woken after this one claimed a slot (see the channel layer's wake passing).
    pub fn room(&self) -> bool {
        let pos = self.ring.ctrl().tail.load(Ordering::Relaxed);
        self.ring.stamp(pos).load(Ordering::Relaxed) == pos
    }
}

/// A consuming end of an MPMC ring (one per consumer; any number may share a ring).
#[derive(Debug)]
pub struct Consumer {
    ring: Ring,
    owner: u16,
    /// Positions of messages taken as a batch, freed by [`flush_taken`](Self::flush_taken);
    /// each still carries our owner mark.
    taken: Vec<u64>,
    /// Set when a claim freed a skipped slot (room a sleeping producer may wait for); read
    /// and cleared by [`freed_skips`](Self::freed_skips).
    freed_skip: std::cell::Cell<bool>,
    #[cfg(shmring_loom)]
    halt: Option<Halt>,
    /// Set once a halt fired: the "dead" end claims nothing more (loom only).
    #[cfg(shmring_loom)]
    stopped: std::cell::Cell<bool>,
}

// SAFETY: as for `Producer`.
unsafe impl Send for Consumer {}

impl Consumer {
    const CONSUMES: bool = true;
    /// Attaches to a ring as one of its consumers. Does not count itself in: call
    /// [`MpmcControl::join_receiver`] (and `leave_receiver`).
    ///
    /// # Safety
    /// As for [`Producer::attach`].
    pub unsafe fn attach(
        ctrl: NonNull<MpmcControl>,
        stamps: NonNull<AtomicU64>,
        data: NonNull<u8>,
        slots: u64,
        slot_size: u64,
    ) -> Result<Self> {
        // SAFETY: forwarded from this function's contract.
        let ring = unsafe { Ring::new(ctrl, stamps, data, slots, slot_size)? };
        Ok(Consumer {
            ring,
            owner: 0,
            taken: Vec::new(),
            freed_skip: std::cell::Cell::new(false),
            #[cfg(shmring_loom)]
            halt: None,
            #[cfg(shmring_loom)]
            stopped: std::cell::Cell::new(false),
        })
    }

    /// Sets the participant index written into owner marks (the channel layer's liveness
    /// lock index; see the module docs).
    pub fn set_owner(&mut self, owner: u16) {
        self.owner = owner;
    }

    /// The participant index written into owner marks.
    pub fn owner(&self) -> u16 {
        self.owner
    }

    /// Records that we are about to claim `pos` (module docs, "Claiming with an intent").
    #[inline]
    fn intend(&self, pos: u64) {
        if let Some(w) = self.ring.ctrl().intent(self.owner) {
            // Release: a survivor that reads a later intent of ours sees our stamp stores
            // (the free) before it (`Watcher::unblock`'s stamp re-check; caught by
            // `mpmc_live_consumer_races_recovery_on_a_dead_intent`).
            w.store(intent_word(pos, Self::CONSUMES), Ordering::Release);
        }
    }

    /// Withdraws the intent after a claim that did not happen.
    #[cold]
    fn withdraw(&self) {
        if self.stopped() {
            return; // "killed": a dead process withdraws nothing
        }
        if let Some(w) = self.ring.ctrl().intent(self.owner) {
            // Release: as in `intend`, a survivor that reads "none" sees the stamp stores of
            // our claims before it (withdrawn after a consumer's `Empty`).
            w.store(NO_INTENT, Ordering::Release);
        }
    }

    /// Stops this end at `at` from now on (loom models: see [`Halt`]).
    #[cfg(shmring_loom)]
    #[doc(hidden)]
    pub fn halt_at(&mut self, at: Halt) {
        self.halt = Some(at);
    }

    #[cfg(shmring_loom)]
    #[inline]
    fn halted(&self, at: Halt) -> bool {
        self.halt == Some(at)
    }

    #[cfg(not(shmring_loom))]
    #[inline(always)]
    fn halted(&self, _: ()) -> bool {
        false
    }

    /// Marks a halted end as dead: it claims nothing more (loom only; a no-op otherwise).
    #[inline(always)]
    fn stop(&self) {
        #[cfg(shmring_loom)]
        self.stopped.set(true);
    }

    /// True once a halt fired (always false outside loom).
    #[inline(always)]
    fn stopped(&self) -> bool {
        #[cfg(shmring_loom)]
        return self.stopped.get();
        #[cfg(not(shmring_loom))]
        return false;
    }

    /// A handle for finding and clearing slots held by dead participants.
    pub fn watcher(&self) -> Watcher {
        Watcher { ring: self.ring }
    }

    /// The largest message (the slot size).
    pub fn max_message(&self) -> usize {
        self.ring.slot_size as usize
    }

    /// The control block (for joining, leaving and display).
    pub fn control(&self) -> &MpmcControl {
        self.ring.ctrl()
    }

    /// Claims the next message. It stays this consumer's until [`release`](Self::release).
    ///
    /// `Err(Empty)`: nothing now (or the producer of the next position has not committed yet).
    /// `Err(Disconnected)`: every producer left and the ring is drained. `Err(Corrupted)`: a
    /// stamp, position or length no honest peer writes.
    #[inline(always)]
    pub fn try_peek(&mut self) -> Result<Frame> {
        match self.claim() {
            Ok(frame) => Ok(frame),
            Err(e) => {
                // As in `Producer::try_reserve`: no claim is held, so no intent either.
                self.withdraw();
                Err(e)
            }
        }
    }

    #[inline(always)]
    fn claim(&self) -> Result<Frame> {
        if self.stopped() {
            return Err(Error::Corrupted("stopped by a loom halt"));
        }
        let ring = self.ring;
        let ctrl = ring.ctrl();
        let mut looked_again = false;
        // Relaxed: as in `Producer::try_reserve`, the stamp carries the ordering.
        let mut pos = ctrl.head.load(Ordering::Relaxed);
        for _ in 0..MAX_STEPS {
            // Acquire: pairs with the Release store of the stamp in `Producer::publish`.
            let stamp = self.ring.stamp(pos).load(Ordering::Acquire);
            self.ring.check_stamp(pos, stamp)?;
            let diff = stamp.wrapping_sub(pos.wrapping_add(1)) as i64;
            if diff == 0 {
                // As in `Producer::try_reserve`: the intent first, the claim (Release) after.
                self.intend(pos);
                if self.halted(halt!(BeforeClaim)) {
                    self.stop();
                    return Err(Error::Corrupted("halted before the claim (loom)"));
                }
                // Release: pairs with the Acquire load in `Watcher::claimed_head` (our intent
                // is visible to whoever sees the moved `head`).
                match ctrl.head.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        if self.halted(halt!(AfterClaim)) {
                            self.stop();
                            return Err(Error::Corrupted("halted after the claim (loom)"));
                        }
                        // The producer wrote the word before its Release store that we acquired.
                        let len = self.ring.len_word(pos).load(Ordering::Relaxed);
                        if len == SKIP {
                            self.free(pos);
                            self.freed_skip.set(true);
                            pos = pos.wrapping_add(1);
                            continue;
                        }
                        if len > self.ring.slot_size {
                            // Give the slot back so that the ring does not stall on it.
                            self.free(pos);
                            return Err(Error::Corrupted("message length exceeds the slot size"));
                        }
                        // The length is copied out: the word now says who holds the slot.
                        // The slot is ours until we free it.
                        self.ring.len_word(pos).store(
                            owner_mark(CONSUMER_MARK, pos, self.owner),
                            Ordering::Relaxed,
                        );
                        self.ring.touch_payload(pos, false);
                        return Ok(Frame {
                            pos,
                            len: len as usize,
                        });
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                if looked_again || !ctrl.senders_gone() {
                    return Err(if looked_again {
                        Error::Disconnected
                    } else {
                        Error::Empty
                    });
                }
                // Every producer left; their last commits come before their Release leave,
                // which `senders_gone` acquired: one more look sees them.
                looked_again = true;
                pos = ctrl.head.load(Ordering::Relaxed);
            } else {
                let now = ctrl.head.load(Ordering::Relaxed);
                if now == pos {
                    return Err(Error::Corrupted("slot stamp is ahead of the head"));
                }
                pos = now;
            }
        }
        Err(Error::Empty)
    }

    /// A pointer to the payload of `frame` (`frame.len` bytes).
    pub fn payload(&self, frame: &Frame) -> *const u8 {
        // SAFETY: the payload follows the 8-byte length word inside the slot.
        unsafe { self.ring.slot(frame.pos).add(SLOT_HEADER as usize) }
    }

    /// Frees the slot of `frame` (the one [`try_peek`](Self::try_peek) returned) for the
    /// producer one lap later.
    pub fn release(&mut self, frame: Frame) {
        self.ring.touch_payload(frame.pos, false);
        self.free(frame.pos);
    }

    /// Consumes `frame` as part of a batch: its slot stays ours (marked, valid to read) until
    /// [`flush_taken`](Self::flush_taken) frees it.
    pub fn take(&mut self, frame: Frame) {
        self.ring.touch_payload(frame.pos, false);
        self.taken.push(frame.pos);
    }

    /// True if claims since the last call freed skipped slots (a dead producer's recovered
    /// claims, or abandoned ones): room that a producer sleeping on a full ring waits for.
    pub fn freed_skips(&mut self) -> bool {
        self.freed_skip.replace(false)
    }

    /// Frees every slot taken since the last flush. True if anything was freed.
    pub fn flush_taken(&mut self) -> bool {
        for &pos in &self.taken {
            self.free(pos);
        }
        let any = !self.taken.is_empty();
        self.taken.clear();
        any
    }

    fn free(&self, pos: u64) {
        // Release: pairs with the Acquire load of the stamp in `Producer::try_reserve`: we are
        // done reading the slot before the next lap's producer may overwrite it.
        self.ring
            .stamp(pos)
            .store(pos.wrapping_add(self.ring.slots), Ordering::Release);
    }

    /// True if the message at `head` looks ready now: a hint that another sleeping consumer
    /// should be woken after this one claimed a message (see the channel layer's wake passing).
    pub fn more(&self) -> bool {
        let pos = self.ring.ctrl().head.load(Ordering::Relaxed);
        self.ring.stamp(pos).load(Ordering::Relaxed) == pos.wrapping_add(1)
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;

    /// A ring on the heap, for tests.
    struct Heap {
        ctrl: Box<MpmcControl>,
        stamps: Box<[AtomicU64]>,
        data: Vec<u64>,
        slots: u64,
        slot_size: u64,
    }

    impl Heap {
        fn new(slots: u64, slot_size: u64) -> Heap {
            let stamps: Box<[AtomicU64]> = (0..slots).map(AtomicU64::new).collect();
            Heap {
                ctrl: Box::new(MpmcControl::new()),
                stamps,
                data: vec![0; (data_len(slots, slot_size) / 8) as usize],
                slots,
                slot_size,
            }
        }
        fn parts(&mut self) -> (NonNull<MpmcControl>, NonNull<AtomicU64>, NonNull<u8>) {
            (
                NonNull::from(&*self.ctrl),
                NonNull::new(self.stamps.as_ptr().cast_mut()).unwrap(),
                NonNull::new(self.data.as_mut_ptr().cast()).unwrap(),
            )
        }
        fn producer(&mut self) -> Producer {
            let (c, s, d) = self.parts();
            // SAFETY: the heap ring outlives the handle in every test.
            unsafe { Producer::attach(c, s, d, self.slots, self.slot_size) }.unwrap()
        }
        fn consumer(&mut self) -> Consumer {
            let (c, s, d) = self.parts();
            // SAFETY: as in `producer`.
            unsafe { Consumer::attach(c, s, d, self.slots, self.slot_size) }.unwrap()
        }
    }

    fn send(p: &mut Producer, msg: &[u8]) -> Result<()> {
        let g = p.try_reserve(msg.len())?;
        // SAFETY: the grant has room for `msg.len()` bytes that we own until commit.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p.payload(&g), msg.len()) };
        p.commit(g, msg.len());
        Ok(())
    }

    fn recv(c: &mut Consumer) -> Result<Vec<u8>> {
        let f = c.try_peek()?;
        // SAFETY: the frame is ours until release and was validated to fit its slot.
        let v = unsafe { std::slice::from_raw_parts(c.payload(&f), f.len) }.to_vec();
        c.release(f);
        Ok(v)
    }

    #[test]
    fn fifo_full_empty_and_wrap() {
        let mut h = Heap::new(4, 20);
        let mut p = h.producer();
        let mut c = h.consumer();
        assert!(matches!(c.try_peek(), Err(Error::Empty)));
        for round in 0..10u8 {
            for i in 0..4u8 {
                send(&mut p, &vec![round ^ i; i as usize * 5]).unwrap();
            }
            assert!(matches!(send(&mut p, b"x"), Err(Error::Full)));
            for i in 0..4u8 {
                assert_eq!(recv(&mut c).unwrap(), vec![round ^ i; i as usize * 5]);
            }
            assert!(matches!(c.try_peek(), Err(Error::Empty)));
        }
        assert!(matches!(
            p.try_reserve(21),
            Err(Error::TooLarge { size: 21, max: 20 })
        ));
    }

    #[test]
    fn abandoned_reservation_is_skipped() {
        let mut h = Heap::new(2, 8);
        let mut p = h.producer();
        let mut c = h.consumer();
        let g = p.try_reserve(8).unwrap();
        p.abandon(g);
        send(&mut p, b"after").unwrap();
        assert_eq!(recv(&mut c).unwrap(), b"after");
        assert!(matches!(c.try_peek(), Err(Error::Empty)));
    }

    #[test]
    fn out_of_order_commits_are_delivered_in_position_order() {
        let mut h = Heap::new(4, 8);
        let mut p1 = h.producer();
        let mut p2 = h.producer();
        let mut c = h.consumer();
        let g1 = p1.try_reserve(1).unwrap();
        let g2 = p2.try_reserve(1).unwrap();
        p2.commit(g2, 0);
        assert!(matches!(c.try_peek(), Err(Error::Empty)));
        assert!(!c.more());
        p1.commit(g1, 0);
        assert!(c.more());
        assert_eq!(c.try_peek().unwrap().pos, 0);
        assert_eq!(c.try_peek().unwrap().pos, 1);
    }

    #[test]
    fn disconnect_both_ways() {
        let mut h = Heap::new(4, 8);
        let mut p = h.producer();
        let mut c = h.consumer();
        p.control().join_sender();
        c.control().join_receiver();
        send(&mut p, b"last").unwrap();
        p.control().leave_sender();
        assert_eq!(recv(&mut c).unwrap(), b"last");
        assert!(matches!(c.try_peek(), Err(Error::Disconnected)));
        c.control().leave_receiver();
        assert!(matches!(p.try_reserve(1), Err(Error::Disconnected)));
    }

    #[test]
    fn threads_exactly_once_in_order_per_producer() {
        // Miri interprets every step and explores thread interleavings: fewer messages there.
        const PER: u64 = if cfg!(miri) { 300 } else { 50_000 };
        let mut h = Heap::new(64, 16);
        let producers: Vec<_> = (0..3).map(|_| h.producer()).collect();
        let consumers: Vec<_> = (0..3).map(|_| h.consumer()).collect();
        for p in &producers {
            p.control().join_sender();
        }
        for c in &consumers {
            c.control().join_receiver();
        }
        let seen = std::thread::scope(|s| {
            for (id, mut p) in producers.into_iter().enumerate() {
                s.spawn(move || {
                    for seq in 0..PER {
                        let mut msg = [0u8; 16];
                        msg[..8].copy_from_slice(&(id as u64).to_le_bytes());
                        msg[8..].copy_from_slice(&seq.to_le_bytes());
                        loop {
                            match send(&mut p, &msg) {
                                Ok(()) => break,
                                Err(Error::Full) => std::thread::yield_now(),
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    p.control().leave_sender();
                });
            }
            let handles: Vec<_> = consumers
                .into_iter()
                .map(|mut c| {
                    s.spawn(move || {
                        let mut last = [None::<u64>; 3];
                        let mut n = 0u64;
                        loop {
                            match recv(&mut c) {
                                Ok(m) => {
                                    let id = u64::from_le_bytes(m[..8].try_into().unwrap());
                                    let seq = u64::from_le_bytes(m[8..].try_into().unwrap());
                                    let l = &mut last[id as usize];
                                    assert!(l.is_none_or(|l| l < seq), "out of order");
                                    *l = Some(seq);
                                    n += 1;
                                }
                                Err(Error::Empty) => std::thread::yield_now(),
                                Err(Error::Disconnected) => return n,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(seen, 3 * PER);
    }

    /// Scribbles random values over stamps, lengths and positions: every call must return
    /// `Ok` with a frame inside the ring, or an error; never panic or loop for ever.
    #[test]
    fn a_dead_producers_claim_is_found_and_skipped() {
        let mut h = Heap::new(4, 16);
        let mut dead = h.producer();
        dead.set_owner(3);
        let mut live = h.producer();
        let mut c = h.consumer();
        let _claimed = dead.try_reserve(8).unwrap(); // never committed: its process "died"
        send(&mut live, b"after").unwrap();
        assert!(matches!(recv(&mut c), Err(Error::Empty)));
        let w = c.watcher();
        let stuck = w.stuck_consumer().expect("the unwritten claim is found");
        assert_eq!((stuck.owner, stuck.by_producer), (3, true));
        assert!(w.clear_abandoned(stuck));
        assert!(!w.clear_abandoned(stuck), "only one clearer wins");
        assert_eq!(recv(&mut c).unwrap(), b"after");
    }

    #[test]
    fn a_dead_consumers_slot_is_freed_for_the_next_lap() {
        let mut h = Heap::new(2, 16);
        let mut p = h.producer();
        let mut dead = h.consumer();
        dead.set_owner(7);
        let mut live = h.consumer();
        send(&mut p, b"one").unwrap();
        send(&mut p, b"two").unwrap();
        let _held = dead.try_peek().unwrap(); // "one", never released
        assert_eq!(recv(&mut live).unwrap(), b"two");
        // The next position maps to the slot the dead consumer holds: the ring is stuck.
        assert!(matches!(send(&mut p, b"three"), Err(Error::Full)));
        let w = p.watcher();
        let stuck = w.stuck_producer().expect("the held slot is found");
        assert_eq!((stuck.owner, stuck.by_producer), (7, false));
        assert!(w.clear_abandoned(stuck));
        send(&mut p, b"three").unwrap();
        send(&mut p, b"four").unwrap();
        assert_eq!(recv(&mut live).unwrap(), b"three");
        assert_eq!(recv(&mut live).unwrap(), b"four");
    }

    #[test]
    fn a_new_holder_of_an_index_clears_what_its_predecessor_held() {
        let mut h = Heap::new(4, 16);
        let mut dead = h.producer();
        dead.set_owner(2);
        let _claimed = dead.try_reserve(8).unwrap();
        let mut successor = h.producer();
        successor.set_owner(2);
        assert_eq!(
            successor
                .watcher()
                .clear_owned_by(2, &mut |_, _| Ok(true))
                .unwrap(),
            (1, false)
        );
        send(&mut successor, b"next").unwrap();
        let mut c = h.consumer();
        assert_eq!(recv(&mut c).unwrap(), b"next");
    }

    fn alive_none(_: bool, _: u16) -> Result<bool> {
        Ok(false)
    }

    /// A producer killed between its `tail` CAS and its owner mark: the slot holds last lap's
    /// word, and only the intent names the claimer.
    #[test]
    fn a_producer_dead_between_claim_and_mark_is_named_by_its_intent() {
        let mut h = Heap::new(2, 16);
        let mut dead = h.producer();
        dead.set_owner(3);
        let mut live = h.producer();
        live.set_owner(4);
        let mut c = h.consumer();
        c.set_owner(9);
        let before = dead.ring.len_word(0).load(Ordering::Relaxed);
        let _claimed = dead.try_reserve(8).unwrap();
        dead.ring.len_word(0).store(before, Ordering::Relaxed); // as if killed before the mark
        send(&mut live, b"after").unwrap();
        assert!(matches!(recv(&mut c), Err(Error::Empty)));
        let w = c.watcher();
        assert_eq!(w.stuck_consumer(), None, "no mark to go by");
        let mut asked = Vec::new();
        let mut alive = |p: bool, i: u16| {
            asked.push((p, i));
            Ok(true)
        };
        assert_eq!(w.unblock_consumer(&mut alive).unwrap(), Unblock::Alive);
        assert_eq!(asked, [(true, 3)], "only the claimer is asked about");
        assert_eq!(
            w.unblock_consumer(&mut alive_none).unwrap(),
            Unblock::Cleared
        );
        assert_eq!(
            w.unblock_consumer(&mut alive_none).unwrap(),
            Unblock::Nothing
        );
        assert_eq!(recv(&mut c).unwrap(), b"after");
    }

    /// A producer killed inside `publish`, between the length store and the stamp store.
    #[test]
    fn a_producer_dead_inside_publish_is_named_by_its_intent() {
        let mut h = Heap::new(4, 16);
        let mut dead = h.producer();
        dead.set_owner(1);
        let mut c = h.consumer();
        let g = dead.try_reserve(8).unwrap();
        dead.ring.len_word(g.pos).store(8, Ordering::Relaxed); // the length, not the stamp
        assert!(matches!(recv(&mut c), Err(Error::Empty)));
        let w = c.watcher();
        assert_eq!(w.stuck_consumer(), None);
        assert_eq!(
            w.unblock_consumer(&mut alive_none).unwrap(),
            Unblock::Cleared
        );
        assert!(
            matches!(recv(&mut c), Err(Error::Empty)),
            "given up as a skip"
        );
        send(&mut h.producer(), b"next").unwrap();
        assert_eq!(recv(&mut c).unwrap(), b"next");
    }

    /// A loser of the same CAS that died leaves an intent too; a live winner must not lose its
    /// slot to it, and a withdrawn intent names nobody.
    #[test]
    fn a_live_claimer_is_never_cleared_on_a_dead_losers_intent() {
        let mut h = Heap::new(4, 16);
        let mut winner = h.producer();
        winner.set_owner(0);
        let mut loser = h.producer();
        loser.set_owner(2);
        let mut c = h.consumer();
        c.set_owner(5);
        let g = winner.try_reserve(4).unwrap();
        // The loser stored its intent for position 0, lost the CAS, and "died" there.
        loser.intend(0);
        let before = winner.ring.len_word(0).load(Ordering::Relaxed);
        assert_ne!(before & MARK_TAG, 0, "marked");
        winner.ring.len_word(0).store(7, Ordering::Relaxed); // inside publish now
        let w = c.watcher();
        // Both name position 0; the winner (index 0) answers alive: nothing is freed.
        let mut alive = |_: bool, i: u16| Ok(i == 0);
        assert_eq!(w.unblock_consumer(&mut alive).unwrap(), Unblock::Alive);
        winner.ring.len_word(0).store(before, Ordering::Relaxed);
        winner.commit(g, 4);
        assert_eq!(
            w.unblock_consumer(&mut alive_none).unwrap(),
            Unblock::Nothing
        );
        assert_eq!(recv(&mut c).unwrap().len(), 4);
        loser.withdraw();
        assert_eq!(h.ctrl.intent(2).unwrap().load(Ordering::Relaxed), NO_INTENT);
    }

    /// A consumer killed between its `head` CAS and its mark: the slot holds the length.
    #[test]
    fn a_consumer_dead_between_claim_and_mark_is_named_by_its_intent() {
        let mut h = Heap::new(2, 16);
        let mut p = h.producer();
        let mut dead = h.consumer();
        dead.set_owner(6);
        let mut live = h.consumer();
        live.set_owner(7);
        send(&mut p, b"one").unwrap();
        send(&mut p, b"two").unwrap();
        let f = dead.try_peek().unwrap();
        dead.ring.len_word(f.pos).store(3, Ordering::Relaxed); // as if killed before the mark
        assert_eq!(recv(&mut live).unwrap(), b"two");
        assert!(matches!(send(&mut p, b"three"), Err(Error::Full)));
        let w = p.watcher();
        assert_eq!(w.stuck_producer(), None);
        assert_eq!(
            w.unblock_producer(&mut |_, i| Ok(i != 6)).unwrap(),
            Unblock::Cleared
        );
        send(&mut p, b"three").unwrap();
        assert_eq!(recv(&mut live).unwrap(), b"three");
    }

    /// A newcomer in a dead producer's place frees the claim its intent names.
    #[test]
    fn a_newcomer_frees_the_claim_its_predecessors_intent_names() {
        let mut h = Heap::new(4, 16);
        let mut dead = h.producer();
        dead.set_owner(2);
        let before = dead.ring.len_word(0).load(Ordering::Relaxed);
        let _g = dead.try_reserve(8).unwrap();
        dead.ring.len_word(0).store(before, Ordering::Relaxed);
        let mut successor = h.producer();
        successor.set_owner(2);
        // Its own index counts as dead whatever `alive` says.
        let w = successor.watcher();
        assert_eq!(
            w.clear_owned_by(2, &mut |_, _| Ok(true)).unwrap(),
            (1, false)
        );
        send(&mut successor, b"next").unwrap();
        let mut c = h.consumer();
        assert_eq!(recv(&mut c).unwrap(), b"next");
    }

    #[test]
    fn scribbled_control_words_never_panic() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Miri interprets every step: fewer rounds there.
        let rounds = if cfg!(miri) { 200 } else { 2000 };
        for round in 0..rounds {
            let mut h = Heap::new(8, 24);
            let mut p = h.producer();
            let mut c = h.consumer();
            for i in 0..(round % 9) {
                let _ = send(&mut p, &[i as u8; 3]);
            }
            // Scribble: sometimes a plausible value, sometimes any.
            for _ in 0..(1 + next() % 4) {
                let r = next();
                let v = if r % 3 == 0 { next() % 20 } else { next() };
                match r % 4 {
                    0 => h.stamps[(next() % 8) as usize].store(v, Ordering::Relaxed),
                    1 => h.data[((next() % 8) * slot_stride(24) / 8) as usize] = v,
                    2 => h.ctrl.head.store(v, Ordering::Relaxed),
                    _ => h.ctrl.tail.store(v, Ordering::Relaxed),
                }
            }
            for _ in 0..20 {
                match c.try_peek() {
                    Ok(f) => {
                        assert!(f.len <= 24);
                        // SAFETY: validated frame of our heap ring.
                        let _ = unsafe { std::slice::from_raw_parts(c.payload(&f), f.len) };
                        c.release(f);
                    }
                    Err(Error::Empty | Error::Corrupted(_)) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
                match send(&mut p, b"abc") {
                    Ok(()) | Err(Error::Full | Error::Corrupted(_)) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
                let _ = c.more();
                let _ = p.room();
            }
        }
    }
}

/// Bytes of the MPMC control block that [`observe`] reads.
#[cfg(not(shmring_loom))]
pub const CONTROL_LEN: usize = std::mem::size_of::<MpmcControl>();

/// Reads the control block at `ctrl` of a ring of `slots` slots without attaching to it, for
/// monitoring: positions, messages in the ring, and the producers and consumers counted in.
/// Each word is read at its field's offset in the real `#[repr(C)]` block (`offset_of!`;
/// `CachePadded` is `repr(C)` with its value first), so reordering [`MpmcControl`] cannot make
/// a monitor read the wrong word. Display only: the words are read one at a time (Relaxed), and
/// a hostile peer may have written anything; check [`RingView::consistent`] before trusting
/// `used`.
///
/// # Safety
/// `ctrl` is aligned for [`MpmcControl`] and valid for reads of [`CONTROL_LEN`] bytes for the
/// duration of the call, and every concurrent write to those bytes is atomic.
#[cfg(not(shmring_loom))]
pub unsafe fn observe(ctrl: NonNull<u8>, slots: u64) -> crate::ring::layout::RingView {
    use crate::ring::layout::{peek_u32, peek_u64, RingView};
    use std::mem::offset_of;
    let peers = offset_of!(MpmcControl, peers);
    // SAFETY: each offset is a field of the block the contract makes readable; the block is
    // aligned, and so (repr(C)) is each field.
    let (head, tail, senders, receivers, joined) = unsafe {
        (
            peek_u64(ctrl, offset_of!(MpmcControl, head)),
            peek_u64(ctrl, offset_of!(MpmcControl, tail)),
            peek_u32(ctrl, peers + offset_of!(Peers, senders)),
            peek_u32(ctrl, peers + offset_of!(Peers, receivers)),
            peek_u32(ctrl, peers + offset_of!(Peers, joined)),
        )
    };
    RingView {
        head,
        tail,
        used: tail.wrapping_sub(head),
        capacity: slots,
        senders_closed: joined & SENDERS_JOINED != 0 && senders == 0,
        receivers_closed: joined & RECEIVERS_JOINED != 0 && receivers == 0,
        senders: Some(senders),
        receivers: Some(receivers),
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod observe_tests {
    use super::*;

    #[test]
    fn observe_matches_the_ring_own_used_and_peer_counts() {
        let (slots, slot_size) = (8u64, 16u64);
        let ctrl = Box::new(MpmcControl::new());
        let stamps: Box<[AtomicU64]> = (0..slots).map(AtomicU64::new).collect();
        let mut data = vec![0u64; (data_len(slots, slot_size) / 8) as usize];
        let c = NonNull::from(&*ctrl);
        let s = NonNull::new(stamps.as_ptr().cast_mut()).unwrap();
        let d = NonNull::new(data.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: control block, stamps and data outlive both ends (dropped at the end).
        let (mut p, mut r) = unsafe {
            (
                Producer::attach(c, s, d, slots, slot_size).unwrap(),
                Consumer::attach(c, s, d, slots, slot_size).unwrap(),
            )
        };
        let view = || {
            // SAFETY: `ctrl` is a live, aligned control block; all its writes are atomic.
            unsafe { observe(c.cast(), slots) }
        };
        let v = view();
        assert_eq!((v.used, v.senders, v.receivers), (0, Some(0), Some(0)));
        assert!(!v.senders_closed && !v.receivers_closed, "none joined yet");
        ctrl.join_sender();
        ctrl.join_receiver();
        ctrl.join_receiver();
        for n in 1..=5u64 {
            let g = p.try_reserve(3).unwrap();
            p.commit(g, 3);
            assert_eq!(view().used, ctrl.used());
            assert_eq!(view().used, n);
        }
        let f = r.try_peek().unwrap();
        r.release(f);
        let v = view();
        assert_eq!((v.head, v.tail, v.used), (1, 5, ctrl.used()));
        assert_eq!((v.senders, v.receivers), (Some(ctrl.senders()), Some(2)));
        assert!(v.consistent());
        ctrl.leave_sender();
        let v = view();
        assert!(v.senders_closed && !v.receivers_closed);
        assert_eq!(v.senders_closed, ctrl.senders_gone());
    }
}
