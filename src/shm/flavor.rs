//! What a ring kind gives the generic half: its layout in a segment and its two ends.
//!
//! The trait is public only so that the public `Sender<R>` / `Receiver<R>` can name it; it
//! lives in a private module, so no user can name, implement or call it (a sealed trait).

use std::ops::Range;
use std::ptr::NonNull;

use crate::config::Config;
use crate::error::Result;
use crate::segment::{HeaderSnapshot, RingKind};

/// Which side of a channel a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A producer.
    Sender,
    /// A consumer.
    Receiver,
}

impl Role {
    /// The role of a holder that `End::recover`'s `alive` asks about.
    pub(crate) fn of_producer(producer: bool) -> Role {
        if producer {
            Role::Sender
        } else {
            Role::Receiver
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }

    /// The index of this role in the header's `sides` (pid records for display).
    pub(crate) fn side(self) -> usize {
        match self {
            Role::Sender => crate::segment::SENDER,
            Role::Receiver => crate::segment::RECEIVER,
        }
    }
}

/// Where a ring's parts lie in a mapped, validated segment.
#[derive(Debug)]
pub struct Parts<C> {
    /// The control block (initialised by the creator, atomics only).
    pub ctrl: NonNull<C>,
    /// The body: `Flavor::body_len(capacity, slot_size)` bytes, page aligned.
    pub body: NonNull<u8>,
    /// The header's capacity (validated by `Flavor::body_len`).
    pub capacity: u64,
    /// The header's slot size (validated by `Flavor::body_len`).
    pub slot_size: u64,
}

impl<C> Clone for Parts<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Parts<C> {}

/// A ring kind as the channel layer sees it (see the module docs).
pub trait Flavor: Sized + Send + std::fmt::Debug + 'static {
    /// What the header records.
    const KIND: RingKind;
    /// True if each side has exactly one place: a second handle is `InUse`, not
    /// `TooManyPeers`.
    const ONE_PER_SIDE: bool;
    /// True if the ring has exactly one sender place whatever the config (broadcast): a
    /// second sender is `InUse`.
    const ONE_SENDER: bool = Self::ONE_PER_SIDE;
    /// The ring's shared control block, placed right after the header.
    type Control: Send + Sync + std::fmt::Debug;
    /// The producing end.
    type Producer: ProducerEnd;
    /// The consuming end.
    type Consumer: ConsumerEnd;

    /// A fresh control block for a segment made with `cfg` (already validated by
    /// [`geometry`](Self::geometry)).
    fn new_control(cfg: &Config) -> Self::Control;
    /// `(capacity, slot_size)` of a new segment made with `cfg`, validated.
    fn geometry(cfg: &Config) -> Result<(u64, u64)>;
    /// The most senders and receivers a new segment made with `cfg` admits, as recorded in
    /// the header (0 where the ring fixes them), or `InvalidConfig` outside their range.
    fn maxima(cfg: &Config) -> Result<(u32, u32)>;
    /// Validates a geometry (from `cfg` or from a header) and gives the body's length.
    fn body_len(capacity: u64, slot_size: u64) -> Result<u64>;
    /// Initialises a fresh body (beyond the zeroes a new segment holds).
    ///
    /// # Safety
    /// `parts` lie in a mapping being created that no other process uses yet.
    unsafe fn init_body(parts: Parts<Self::Control>);
    /// The participant (liveness lock) indexes of `role`, from the header's maxima.
    fn places(snap: &HeaderSnapshot, role: Role) -> Result<Range<usize>>;
    /// How many of `role` the ring counts as attached (a peer that died leaves its count).
    fn counted(ctrl: &Self::Control, role: Role, ever_attached: bool) -> u32;
    /// Counts a participant of `role` in (after it took its lock) or out (before it drops it).
    fn join(ctrl: &Self::Control, role: Role);
    /// See [`join`](Self::join).
    fn leave(ctrl: &Self::Control, role: Role);
    /// The producing end over `parts`, for participant `index`.
    ///
    /// # Safety
    /// `parts` stay valid as long as the end lives; `index` is this process's locked place.
    unsafe fn producer(parts: Parts<Self::Control>, index: usize) -> Result<Self::Producer>;
    /// The consuming end over `parts`, for participant `index`.
    ///
    /// # Safety
    /// As for [`producer`](Self::producer).
    unsafe fn consumer(parts: Parts<Self::Control>, index: usize) -> Result<Self::Consumer>;
}

/// What both ends do.
pub trait End: Send + std::fmt::Debug {
    /// A `Copy` view for finding slots that dead participants hold, used by the wait loop's
    /// liveness check beside the end's own attempt.
    type Watcher: Copy;
    /// See [`Watcher`](Self::Watcher).
    fn watcher(&self) -> Self::Watcher;
    /// The largest message.
    fn max_message(&self) -> usize;
    /// Frees what a dead participant blocking this side holds, if `alive` says it is dead.
    /// True if something was freed (others of this side may be waiting behind it).
    /// `alive(holder_is_producer, index)` says whether a participant is alive.
    fn recover(
        w: Self::Watcher,
        alive: &mut dyn FnMut(bool, usize) -> Result<bool>,
    ) -> Result<bool>;
    /// Frees whatever the previous holder of this end's participant index left claimed (we
    /// took its lock, so it is dead). Returns how many slots were freed, and whether the place
    /// is settled: false if what the predecessor left cannot be told apart yet from a live
    /// participant's claim; then the caller gives the place back and tries another, so that
    /// the dead holder's record stays for the survivors' recovery. `alive` as for
    /// [`recover`](Self::recover), for the other participants that may share a claim with it.
    fn clear_predecessor(
        &mut self,
        alive: &mut dyn FnMut(bool, usize) -> Result<bool>,
    ) -> Result<(usize, bool)>;
    /// Marks this end closed in the ring (before its lock goes).
    fn close(&mut self);
}

/// Room for one message, reserved by a producer.
pub trait Grant: std::fmt::Debug {
    /// Bytes reserved.
    fn capacity(&self) -> usize;
}

/// A message claimed by a consumer.
pub trait Frame: std::fmt::Debug {
    /// Payload bytes.
    fn len(&self) -> usize;
}

/// The producing end of a ring.
pub trait ProducerEnd: End {
    /// A reservation; not `Copy`, so a grant is committed or given up once.
    type Grant: Grant;
    /// True if the receivers should be woken when a reservation finds the ring full (SPSC: a
    /// wrap marker was published that a sleeping receiver must step over).
    const WAKE_ON_FULL: bool;
    /// True if a producer that claimed room should pass a wake on to another sleeping
    /// producer when more room is free (MPMC).
    const PASS_ON: bool;
    /// True if a publication wakes every sleeping receiver, not one (broadcast: each receiver
    /// reads every message).
    const WAKE_ALL: bool = false;
    /// Reserves room for `len` bytes, or `Full` / `TooLarge` / `Disconnected` / `Corrupted`.
    fn try_reserve(&mut self, len: usize) -> Result<Self::Grant>;
    /// The reserved bytes (`grant.capacity()` of them), the producer's alone until commit.
    fn payload(&self, grant: &Self::Grant) -> *mut u8;
    /// Publishes `len <= grant.capacity()` bytes as one message.
    fn commit(&mut self, grant: Self::Grant, len: usize);
    /// Gives a reservation up: nothing is sent.
    fn abandon(&mut self, grant: Self::Grant);
    /// Starts a batch: reservations and [`stage`](Self::stage)s until [`flush`](Self::flush)
    /// or [`discard`](Self::discard) publish nothing.
    fn begin_batch(&mut self);
    /// Writes `len <= grant.capacity()` bytes as a message of the batch, unpublished.
    fn stage(&mut self, grant: Self::Grant, len: usize);
    /// Publishes the batch; true if it held anything (then wake the receivers).
    fn flush(&mut self) -> bool;
    /// Gives the batch up: none of its messages is delivered.
    fn discard(&mut self);
    /// A hint: is there room for another producer now?
    fn room(&self) -> bool;
    /// Stages a copy of `msg` in one step where the ring has a fast path for it (SPSC: a
    /// frame after the batch's first that fits in the room known free); false, having done
    /// nothing, otherwise: then the caller reserves, copies and [`stage`](Self::stage)s.
    #[inline(always)]
    fn stage_copy(&mut self, msg: &[u8]) -> bool {
        let _ = msg;
        false
    }
    /// [`stage_copy`](Self::stage_copy) for `msgs` in order while each is that case;
    /// returns how many it staged (0 where the ring has no such path).
    #[inline(always)]
    fn stage_copies(&mut self, msgs: &[&[u8]]) -> usize {
        let _ = msgs;
        0
    }
}

/// The consuming end of a ring.
pub trait ConsumerEnd: End {
    /// A claimed message; not `Copy`, so it is released once.
    type Frame: Frame;
    /// As [`ProducerEnd::WAKE_ON_FULL`], for a consumer that found nothing (SPSC: it may have
    /// stepped over a wrap marker, freeing room a sleeping sender waits for).
    const WAKE_ON_EMPTY: bool;
    /// As [`ProducerEnd::PASS_ON`], for consumers.
    const PASS_ON: bool;
    /// Claims the next message, or `Empty` / `Disconnected` / `Corrupted`.
    fn try_peek(&mut self) -> Result<Self::Frame>;
    /// The message's bytes (`frame.len()` of them), validated to lie in the body.
    fn payload(&self, frame: &Self::Frame) -> *const u8;
    /// Gives the message's room back to the producers.
    fn release(&mut self, frame: Self::Frame);
    /// Consumes the message as part of a batch: the next `try_peek` goes past it, but its
    /// bytes stay valid until [`flush_taken`](Self::flush_taken).
    fn take(&mut self, frame: Self::Frame);
    /// Gives back every message taken since the last flush; true if any (then wake the
    /// senders).
    fn flush_taken(&mut self) -> bool;
    /// A hint: is another message ready now?
    fn more(&self) -> bool;
    /// True if the claims since the last call freed room on the way (skipped slots) that a
    /// producer sleeping on a full ring waits for: the caller that found nothing wakes one.
    fn freed_skips(&mut self) -> bool;
    /// Keeps an error that ended a batch early (after its first message) for the next call,
    /// if the ring would not find it again by itself (broadcast: `Lagged`).
    fn defer(&mut self, e: crate::error::Error) {
        let _ = e;
    }
    /// Takes up to `max` more ready messages as [`take`](Self::take) does, handing each one's
    /// payload (validated: `len` bytes in the body, valid until
    /// [`flush_taken`](Self::flush_taken)) to `f`; returns how many, and the error that
    /// stopped it early (`Empty` when nothing more is ready), which the next `try_peek` finds
    /// again (or [`defer`](Self::defer) keeps).
    #[inline(always)]
    fn take_ready(
        &mut self,
        max: usize,
        mut f: impl FnMut(*const u8, usize),
    ) -> (usize, Option<crate::error::Error>) {
        for n in 0..max {
            match self.try_peek() {
                Ok(frame) => {
                    f(self.payload(&frame), frame.len());
                    self.take(frame);
                }
                Err(e) => return (n, Some(e)),
            }
        }
        (max, None)
    }
    /// False if no producer can be waiting for room this consumer frees (broadcast in
    /// `Overwrite` mode): a release then skips the wake's fence.
    fn producer_may_wait(&self) -> bool {
        true
    }
}

/// Implements [`Grant`], [`Frame`], [`ProducerEnd`] and [`ConsumerEnd`] for a ring module's
/// types by forwarding to their inherent methods of the same names, so each flavor file states
/// only what differs: its wake rules. (`End` differs in substance, so each flavor writes it.)
macro_rules! forward_ends {
    (
        $ring:ident,
        wake_on_full_or_empty = $wake:expr,
        pass_on = $pass:expr
        $(, producer_extra = { $($producer_extra:tt)* })?
        $(, consumer_extra = { $($consumer_extra:tt)* })?
    ) => {
        impl $crate::shm::flavor::Grant for $ring::Grant {
            #[inline]
            fn capacity(&self) -> usize {
                $ring::Grant::capacity(self)
            }
        }

        impl $crate::shm::flavor::Frame for $ring::Frame {
            #[inline]
            fn len(&self) -> usize {
                $ring::Frame::len(self)
            }
        }

        impl $crate::shm::flavor::ProducerEnd for $ring::Producer {
            type Grant = $ring::Grant;
            const WAKE_ON_FULL: bool = $wake;
            const PASS_ON: bool = $pass;
            #[inline(always)]
            fn try_reserve(&mut self, len: usize) -> Result<$ring::Grant> {
                $ring::Producer::try_reserve(self, len)
            }
            #[inline]
            fn payload(&self, grant: &$ring::Grant) -> *mut u8 {
                $ring::Producer::payload(self, grant)
            }
            #[inline(always)]
            fn commit(&mut self, grant: $ring::Grant, len: usize) {
                $ring::Producer::commit(self, grant, len)
            }
            fn abandon(&mut self, grant: $ring::Grant) {
                $ring::Producer::abandon(self, grant)
            }
            #[inline]
            fn begin_batch(&mut self) {
                $ring::Producer::begin_batch(self)
            }
            #[inline]
            fn stage(&mut self, grant: $ring::Grant, len: usize) {
                $ring::Producer::stage(self, grant, len)
            }
            #[inline]
            fn flush(&mut self) -> bool {
                $ring::Producer::flush(self)
            }
            fn discard(&mut self) {
                $ring::Producer::discard(self)
            }
            fn room(&self) -> bool {
                $ring::Producer::room(self)
            }
            $($($producer_extra)*)?
        }

        impl $crate::shm::flavor::ConsumerEnd for $ring::Consumer {
            type Frame = $ring::Frame;
            const WAKE_ON_EMPTY: bool = $wake;
            const PASS_ON: bool = $pass;
            #[inline(always)]
            fn try_peek(&mut self) -> Result<$ring::Frame> {
                $ring::Consumer::try_peek(self)
            }
            #[inline]
            fn payload(&self, frame: &$ring::Frame) -> *const u8 {
                $ring::Consumer::payload(self, frame)
            }
            #[inline(always)]
            fn release(&mut self, frame: $ring::Frame) {
                $ring::Consumer::release(self, frame)
            }
            #[inline]
            fn take(&mut self, frame: $ring::Frame) {
                $ring::Consumer::take(self, frame)
            }
            #[inline]
            fn flush_taken(&mut self) -> bool {
                $ring::Consumer::flush_taken(self)
            }
            fn more(&self) -> bool {
                $ring::Consumer::more(self)
            }
            #[inline]
            fn freed_skips(&mut self) -> bool {
                $ring::Consumer::freed_skips(self)
            }
            $($($consumer_extra)*)?
        }
    };
}
pub(crate) use forward_ends;
