//! Many messages per synchronisation: a batch writer for a [`Sender`] and a borrowed batch of
//! received messages for a [`Receiver`], the same for every ring.
//!
//! A [`SendBatch`] stages messages in the ring (written in place, zero copy with
//! [`SendBatch::reserve`]) and publishes them all with [`SendBatch::finish`]: one publication
//! and one wake for the batch, where [`Sender::send`] pays one of each per message. Dropped
//! unfinished, it publishes nothing of what it staged. A [`RecvBatch`] borrows up to `max`
//! messages at once and gives their room back together when it drops: one release and one wake.
//!
//! What "one synchronisation" means per ring: SPSC publishes a batch with one Release store of
//! the first frame's header and frees it with one store of `head`; MPMC still claims each slot
//! with its own CAS (crash recovery names one unmarked claim per participant, see
//! `ring/mpmc.rs`, "Batches"), and saves the wakes and the calls.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::flavor::{ConsumerEnd, Flavor, Grant as _, ProducerEnd};
use super::half::{ProducerGrant, Receiver, Sender};
use super::WRITABLE;
use crate::error::{Error, Result};
use crate::ring::layout::copy_bytes;
use crate::sync::wait::Until;

impl<R: Flavor> Sender<R> {
    /// Starts a batch: messages pushed into it are published together by
    /// [`finish`](SendBatch::finish), or not at all if the batch is dropped.
    ///
    /// ```
    /// # let name = format!("doc-batch-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// let mut batch = tx.batch();
    /// for i in 0..10u8 {
    ///     batch.push(&[i; 8])?;
    /// }
    /// assert_eq!(batch.finish(), 10);
    /// let got = rx.recv_batch(64)?;
    /// assert_eq!(got.len(), 10);
    /// assert_eq!(got.get(3), Some(&[3u8; 8][..]));
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub fn batch(&mut self) -> SendBatch<'_, R> {
        self.end.begin_batch();
        SendBatch {
            tx: self,
            staged: 0,
            done: false,
        }
    }

    /// `channel::Sender::send_batch` and its forms: one staged batch, published at the end
    /// (or earlier, where the ring fills up); progress reported as the trait says.
    pub(super) fn send_batch_until(&mut self, msgs: &[&[u8]], until: Until) -> Result<usize> {
        let mut batch = self.batch();
        let mut k = 0;
        while k < msgs.len() {
            // The ring's loop over as many as take its one-step path, then one by the
            // general path (the first of the batch, a wrap, a full ring, an error).
            let fast = batch.tx.end.stage_copies(&msgs[k..]);
            batch.staged += fast;
            k += fast;
            let Some(m) = msgs.get(k) else { break };
            // `until` is absolute, so the whole batch shares one deadline.
            if let Err(e) = batch.push_general(m, until) {
                batch.finish();
                return if k == 0 { Err(e) } else { Ok(k) };
            }
            k += 1;
        }
        batch.finish();
        Ok(msgs.len())
    }
}

/// Messages staged in the ring, published together by [`finish`](Self::finish); made by
/// [`Sender::batch`]. Dropping it unfinished gives up every message it staged since it began
/// or since it last had to publish early (see [`push`](Self::push)).
#[derive(Debug)]
pub struct SendBatch<'a, R: Flavor> {
    tx: &'a mut Sender<R>,
    staged: usize,
    done: bool,
}

impl<'a, R: Flavor> SendBatch<'a, R> {
    /// Stages a copy of `msg`. If the ring has no room, the messages staged so far are
    /// published first (the receivers can only free room by reading published messages, so a
    /// batch larger than the free room cannot stay unpublished), then it waits for room as
    /// [`Sender::send`] does.
    #[inline]
    pub fn push(&mut self, msg: &[u8]) -> Result<()> {
        self.push_until(msg, Until::Forever)
    }

    /// Stages a copy of `msg`, or fails at once with [`Error::Full`] (nothing is published).
    #[inline]
    pub fn try_push(&mut self, msg: &[u8]) -> Result<()> {
        self.push_until(msg, Until::Now)
    }

    /// Like [`push`](Self::push), waiting at most `timeout` for room ([`Error::Timeout`]).
    pub fn push_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.push_until(msg, Until::after(timeout))
    }

    /// Reserves room for up to `len` bytes in the ring (zero copy); the message joins the
    /// batch when the slot is [`commit`](BatchSlot::commit)ted. Waits for room as
    /// [`push`](Self::push) does.
    ///
    /// ```
    /// # let name = format!("doc-batch-reserve-{}", std::process::id());
    /// # let mut tx = shmring::mpmc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::mpmc::Receiver::open(&name)?;
    /// let mut batch = tx.batch();
    /// let mut slot = batch.reserve(4)?;
    /// slot.copy_from_slice(b"ping");
    /// slot.commit(4);
    /// batch.finish();
    /// assert_eq!(&rx.recv_batch(8)?[0], b"ping");
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<BatchSlot<'_, 'a, R>> {
        let grant = self.grant(len, Until::Forever)?;
        Ok(BatchSlot::new(self, grant))
    }

    /// Reserves room for up to `len` bytes, or fails at once with [`Error::Full`].
    pub fn try_reserve(&mut self, len: usize) -> Result<BatchSlot<'_, 'a, R>> {
        let grant = self.grant(len, Until::Now)?;
        Ok(BatchSlot::new(self, grant))
    }

    /// Like [`reserve`](Self::reserve), waiting at most `timeout` ([`Error::Timeout`]).
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<BatchSlot<'_, 'a, R>> {
        let grant = self.grant(len, Until::after(timeout))?;
        Ok(BatchSlot::new(self, grant))
    }

    /// Messages staged and not yet published.
    pub fn len(&self) -> usize {
        self.staged
    }

    /// True if nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.staged == 0
    }

    /// Publishes every staged message at once and wakes the receivers; returns how many.
    pub fn finish(mut self) -> usize {
        self.done = true;
        let n = self.staged;
        self.publish();
        n
    }

    #[inline(always)]
    fn push_until(&mut self, msg: &[u8], until: Until) -> Result<()> {
        // The ring's one-step path for the common case (SPSC: a frame after the batch's first,
        // with room known free); everything else below.
        if self.tx.end.stage_copy(msg) {
            self.staged += 1;
            return Ok(());
        }
        self.push_general(msg, until)
    }

    /// Reserve, copy, stage: the first message of a batch, a wrap, a full ring, any error.
    #[inline]
    fn push_general(&mut self, msg: &[u8], until: Until) -> Result<()> {
        let grant = self.grant(msg.len(), until)?;
        let end = &mut self.tx.end;
        // SAFETY: the grant covers `msg.len()` bytes of the body that the ring's protocol gives
        // to this producer alone until the batch is published or given up; `msg` is our own
        // memory, so no overlap.
        unsafe { copy_bytes(msg.as_ptr(), end.payload(&grant), msg.len()) };
        end.stage(grant, msg.len());
        self.staged += 1;
        Ok(())
    }

    /// The fast path inline, as in `Sender::reserve_until`: only the grant flows out of it.
    #[inline]
    fn grant(&mut self, len: usize, until: Until) -> Result<ProducerGrant<R>> {
        if let Ok(grant) = self.tx.end.try_reserve(len) {
            return Ok(grant);
        }
        self.grant_slow(len, until)
    }

    #[cold]
    #[inline(never)]
    fn grant_slow(&mut self, len: usize, until: Until) -> Result<ProducerGrant<R>> {
        match self.tx.end.try_reserve(len) {
            Err(Error::Full) if until != Until::Now => {
                // Only published messages can be read to make room: publish, then wait.
                self.publish();
                let grant = self.tx.reserve_until(len, until);
                self.tx.end.begin_batch();
                grant
            }
            r => r,
        }
    }

    fn publish(&mut self) {
        self.staged = 0;
        if self.tx.end.flush() {
            self.tx.link.notify_readers();
        }
    }
}

impl<R: Flavor> Drop for SendBatch<'_, R> {
    fn drop(&mut self) {
        if !self.done {
            self.tx.end.discard();
        }
    }
}

/// Room for one message of a [`SendBatch`], in the ring: write it through `DerefMut`, then
/// [`commit`](Self::commit) what you wrote. Dropped uncommitted, it adds nothing.
#[derive(Debug)]
pub struct BatchSlot<'b, 'a, R: Flavor> {
    batch: &'b mut SendBatch<'a, R>,
    /// Taken by `commit` or drop, exactly once.
    grant: ManuallyDrop<ProducerGrant<R>>,
}

impl<'b, 'a, R: Flavor> BatchSlot<'b, 'a, R> {
    fn new(batch: &'b mut SendBatch<'a, R>, grant: ProducerGrant<R>) -> Self {
        BatchSlot {
            batch,
            grant: ManuallyDrop::new(grant),
        }
    }

    /// Adds the first `len` bytes to the batch (unpublished until the batch finishes).
    ///
    /// # Panics
    /// If `len` is larger than the reservation.
    pub fn commit(self, len: usize) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the grant is taken exactly once, here.
        let grant = unsafe { ManuallyDrop::take(&mut this.grant) };
        this.batch.tx.end.stage(grant, len);
        this.batch.staged += 1;
    }
}

impl<R: Flavor> Drop for BatchSlot<'_, '_, R> {
    fn drop(&mut self) {
        // SAFETY: drop runs once, and `commit` (which also takes it) forgets `self`.
        let grant = unsafe { ManuallyDrop::take(&mut self.grant) };
        self.batch.tx.end.abandon(grant);
    }
}

impl<R: Flavor> Deref for BatchSlot<'_, '_, R> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let end = &self.batch.tx.end;
        // SAFETY: the grant covers `capacity()` bytes of the body given to this producer alone
        // until it is staged or abandoned, which needs `self` by value or `&mut`.
        unsafe { std::slice::from_raw_parts(end.payload(&self.grant), self.grant.capacity()) }
    }
}

impl<R: Flavor> DerefMut for BatchSlot<'_, '_, R> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let end = &self.batch.tx.end;
        // SAFETY: as in `deref`; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(end.payload(&self.grant), self.grant.capacity()) }
    }
}

/// The messages of a [`RecvBatch`]: pointers into the segment the same receiver maps.
#[derive(Debug, Default)]
pub(crate) struct Spans(Vec<(*const u8, usize)>);

// SAFETY: the pointers lead into the mapping of the receiver that holds this value, and are
// only dereferenced through a `RecvBatch`, which borrows that receiver.
unsafe impl Send for Spans {}

impl<R: Flavor> Receiver<R> {
    /// Up to `max` messages at once, borrowed from the segment (zero copy), waiting while there
    /// is none; then it takes whatever else is ready, without waiting. Their room goes back to
    /// the senders together when the batch drops. `max == 0` returns an empty batch at once.
    ///
    /// ```
    /// # let name = format!("doc-recv-batch-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// for m in [&b"a"[..], b"bc", b"def"] {
    ///     tx.send(m)?;
    /// }
    /// let batch = rx.recv_batch(2)?;
    /// assert_eq!(batch.iter().collect::<Vec<_>>(), [&b"a"[..], b"bc"]);
    /// drop(batch);
    /// assert_eq!(&rx.recv_batch(2)?[0], b"def");
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub fn recv_batch(&mut self, max: usize) -> Result<RecvBatch<'_, R>> {
        self.batch_until(max, Until::Forever)
    }

    /// Up to `max` messages that are ready now, or [`Error::Empty`] if there is none.
    pub fn try_recv_batch(&mut self, max: usize) -> Result<RecvBatch<'_, R>> {
        self.batch_until(max, Until::Now)
    }

    /// Like [`recv_batch`](Self::recv_batch), waiting at most `timeout` for the first message
    /// ([`Error::Timeout`]).
    pub fn recv_batch_timeout(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<RecvBatch<'_, R>> {
        self.batch_until(max, Until::after(timeout))
    }

    /// `channel::Receiver::recv_batch`: the batch copied out of the ring, released at once.
    pub(super) fn recv_batch_copy(
        &mut self,
        batch: &mut crate::channel::Batch,
        max: usize,
        until: Until,
    ) -> Result<usize> {
        batch.clear();
        if max == 0 {
            return Ok(0);
        }
        // Copied straight from the ring into `batch` as the frames are taken (no list of
        // spans in between), then given back with one release, as a `RecvBatch` drop does.
        let first = self.peek_until(until)?;
        // SAFETY: the ring validated that the frame's `len` bytes lie in the body; they stay
        // ours (taken, not given back) until `release_taken` below.
        unsafe { batch.push_raw(self.end.payload(&first), super::flavor::Frame::len(&first)) };
        self.end.take(first);
        let (more, stop) = self.end.take_ready(max - 1, |ptr, len| {
            // SAFETY: as for the first: validated, and ours until `release_taken`.
            unsafe { batch.push_raw(ptr, len) }
        });
        if let Some(e) = stop {
            // As in `batch_until`: the next call finds (or the ring keeps) what stopped it.
            self.end.defer(e);
        }
        self.release_taken();
        Ok(1 + more)
    }

    #[inline]
    fn batch_until(&mut self, max: usize, until: Until) -> Result<RecvBatch<'_, R>> {
        self.spans.0.clear();
        if max > 0 {
            let first = self.peek_until(until)?;
            self.span(self.end.payload(&first), super::flavor::Frame::len(&first));
            self.end.take(first);
            let Receiver { end, spans, .. } = &mut *self;
            let stop = spans.take_from(end, max - 1);
            if let Some(e) = stop {
                // Whatever stops the batch (nothing more, a close, a bad frame) is seen again,
                // and reported, by the next call (the ring keeps what it would not find again:
                // `defer`).
                self.end.defer(e);
            }
        }
        Ok(RecvBatch { rx: self })
    }

    #[inline(always)]
    fn span(&mut self, ptr: *const u8, len: usize) {
        self.spans.push(ptr, len);
    }

    /// Gives the taken messages back with one release, waking a sender waiting for room.
    #[inline]
    fn release_taken(&mut self) {
        if self.end.flush_taken() && self.end.producer_may_wait() {
            self.link.notify_one(WRITABLE);
        }
    }
}

impl Spans {
    #[inline(always)]
    fn push(&mut self, ptr: *const u8, len: usize) {
        self.0.push((ptr, len));
    }

    /// Takes up to `max` more ready messages from `end` and records them; returns the error
    /// that stopped it early, if any. Room for a chunk of spans is reserved first and each
    /// span written straight into it (no length check and store per message).
    #[inline(always)]
    fn take_from<C: ConsumerEnd>(&mut self, end: &mut C, max: usize) -> Option<Error> {
        let mut left = max;
        while left > 0 {
            let chunk = left.min(SPAN_CHUNK);
            self.0.reserve(chunk);
            let base = self.0.len();
            let dst = self.0.as_mut_ptr();
            let mut i = 0;
            let (got, stop) = end.take_ready(chunk, |ptr, len| {
                // `take_ready` hands over at most `chunk` messages; the test keeps the writes
                // in the reserved room whatever it does.
                if i < chunk {
                    // SAFETY: `base + i < base + chunk`, within the capacity just reserved.
                    unsafe { dst.add(base + i).write((ptr, len)) };
                    i += 1;
                }
            });
            debug_assert_eq!(got, i);
            // SAFETY: the first `i` entries after `base` were written above.
            unsafe { self.0.set_len(base + i) };
            if stop.is_some() {
                return stop;
            }
            left -= got;
        }
        None
    }
}

/// Spans reserved at a time by `Spans::take_from` (a batch of `usize::MAX` reserves no more).
const SPAN_CHUNK: usize = 256;

/// Messages borrowed from the segment by [`Receiver::recv_batch`]; their room goes back to the
/// senders when it drops. As with [`RecvGuard`](super::RecvGuard), the bytes are only as
/// stable as the senders are honest: copy them out if you do not trust the peer.
#[derive(Debug)]
pub struct RecvBatch<'a, R: Flavor> {
    rx: &'a mut Receiver<R>,
}

impl<R: Flavor> RecvBatch<'_, R> {
    /// How many messages the batch holds.
    pub fn len(&self) -> usize {
        self.rx.spans.0.len()
    }

    /// True if it holds none (only for `max == 0`).
    pub fn is_empty(&self) -> bool {
        self.rx.spans.0.is_empty()
    }

    /// Message `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let &(ptr, len) = self.rx.spans.0.get(i)?;
        // SAFETY: the ring validated that the message's `len` bytes lie in the body, and they
        // stay ours (taken, not given back) until this batch drops; `&self` ties the slice to
        // the batch.
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }

    /// The messages, in order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.rx.spans.0.iter().map(|&(ptr, len)| {
            // SAFETY: as in `get`.
            unsafe { std::slice::from_raw_parts(ptr, len) }
        })
    }
}

impl<R: Flavor> std::ops::Index<usize> for RecvBatch<'_, R> {
    type Output = [u8];
    fn index(&self, i: usize) -> &[u8] {
        self.get(i).expect("message index out of range")
    }
}

impl<R: Flavor> Drop for RecvBatch<'_, R> {
    fn drop(&mut self) {
        self.rx.spans.0.clear();
        self.rx.release_taken();
    }
}
