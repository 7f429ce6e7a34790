//! The shared-memory MPMC channel: any number of [`Sender`] and [`Receiver`] processes (up to
//! the maxima the creator set) share a named segment holding a ring of fixed-size slots.
//! Every message goes to exactly one receiver; the messages of one sender reach any one
//! receiver in the order they were sent.
//!
//! ```
//! use shmring::{mpmc, Config};
//! let name = format!("doc-mpmc-{}", std::process::id());
//!
//! // Usually in many processes; here in one for the example.
//! let mut jobs = mpmc::Sender::create(&name, Config::default().capacity(64).slot_size(128))?;
//! let mut worker_a = mpmc::Receiver::open(&name)?;
//! let mut worker_b = mpmc::Receiver::open(&name)?;
//!
//! jobs.send(b"job 1")?;
//! let mut slot = jobs.reserve(16)?;        // zero copy: a slot inside the segment
//! slot[..5].copy_from_slice(b"job 2");
//! slot.commit(5);
//!
//! assert_eq!(&*worker_a.recv()?, b"job 1"); // zero copy: borrowed from the segment
//! let mut buf = Vec::new();
//! worker_b.recv_into(&mut buf)?;            // copies out
//! assert_eq!(buf, b"job 2");
//! # Ok::<(), shmring::Error>(())
//! ```
//!
//! # Segment layout
//! `[Header | MpmcControl | Event readable | Event writable | pad to 4 KiB | stamps | slots]`.
//! The header's `data_offset` is the stamp array; the slots follow it at a 128-byte boundary.
//!
//! # Peers and disconnect
//! Each handle holds an open-file-description lock on a byte of its own (senders `0..S`,
//! receivers `S..S+R`, where `S` and `R` are the maxima recorded in the header) and counts
//! itself in the ring's control block. When the last sender closes, receivers drain the ring
//! and then get [`Error::Disconnected`]; when the last receiver closes, senders get it at once.
//! A handle whose process dies without closing leaves its count behind; a blocked peer that
//! finds the count non-zero and none of the locks of that side held reports
//! [`Error::PeerDead`].
//!
//! # Waking
//! One [`Event`] per direction, shared by every sleeper of that side. Each message wakes one
//! receiver, each freed slot one sender; closing wakes everyone. Because a position is claimed
//! before it is filled, a wake can reach a receiver while the slot at `head` is still being
//! written by a slower sender (the message it was woken for sits behind it): so a side that has
//! just claimed a slot passes a wake on when the next slot is ready too
//! ([`Event::notify_one_if`]), and no ready message waits for a sleeper's slice to end.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use super::{attach_segment, deadline, init_events, Attach, Events, Link, READABLE, WRITABLE};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ring::layout::align_up;
use crate::ring::mpmc::{self as ring, Consumer, Frame, Grant, MpmcControl, Producer};
use crate::segment::{Identity, RingKind, Segment, HEADER_LEN, RECEIVER, SENDER};
use crate::sync::atomic::AtomicU64;
use crate::sync::wait::{block_on, Event, WaitPolicy};
use crate::sync::Wait;

pub use crate::ring::mpmc::MAX_PEERS;

/// Offsets of the parts of an MPMC segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    ctrl: u64,
    events: u64,
    stamps: u64,
    data: u64,
    total: u64,
}

impl Layout {
    fn new(slots: u64, slot_size: u64) -> Layout {
        let ctrl = HEADER_LEN;
        let events = align_up(ctrl + std::mem::size_of::<MpmcControl>(), 128);
        let stamps = align_up(events + std::mem::size_of::<Events>(), 4096) as u64;
        let data = stamps + align_up((slots * 8) as usize, 128) as u64;
        Layout {
            ctrl: ctrl as u64,
            events: events as u64,
            stamps,
            data,
            total: data + ring::data_len(slots, slot_size),
        }
    }
}

/// Which kind of participant a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Sender,
    Receiver,
}

/// A handle's place in its segment.
#[derive(Debug)]
struct Placed {
    link: Link,
    events: NonNull<Events>,
    ctrl: NonNull<MpmcControl>,
    stamps: NonNull<AtomicU64>,
    data: NonNull<u8>,
    slots: u64,
    slot_size: u64,
    /// Participant indexes of the other side: `peers.0 .. peers.0 + peers.1`.
    peers: (usize, usize),
    role: Role,
    /// Our own participant index (our liveness lock), written into owner marks.
    index: usize,
    /// The segment's maxima of senders and receivers (indexes `0..S` and `S..S+R`).
    maxima: (usize, usize),
}

// SAFETY: the pointers lead into the mapping that `link.seg` owns (it moves with them), and
// everything reached through them is atomic or handed out only through `&mut` of the owning half.
unsafe impl Send for Placed {}

/// Creates and/or opens `name` and takes a free participant place of `role`.
fn place(name: &str, cfg: &Config, role: Role, how: Attach) -> Result<Placed> {
    let super::Attached {
        seg,
        created,
        snap,
        wait,
    } = attach_segment(name, cfg, how, RingKind::Mpmc, create)?;
    ring::validate_geometry(snap.capacity, snap.slot_size)?;
    let layout = Layout::new(snap.capacity, snap.slot_size);
    if snap.data_offset != layout.stamps || snap.total_len != layout.total {
        return Err(Error::Corrupted(
            "header offsets do not match the MPMC layout",
        ));
    }
    let (max_s, max_r) = (snap.max_senders, snap.max_receivers);
    if !(1..=MAX_PEERS).contains(&max_s) || !(1..=MAX_PEERS).contains(&max_r) {
        return Err(Error::Corrupted(
            "MPMC sender or receiver maximum outside 1..=1024",
        ));
    }
    let (mine, peers, label, max) = match role {
        Role::Sender => (
            (0, max_s as usize),
            (max_s as usize, max_r as usize),
            "sender",
            max_s,
        ),
        Role::Receiver => (
            (max_s as usize, max_r as usize),
            (0, max_s as usize),
            "receiver",
            max_r,
        ),
    };
    let mut index = None;
    for i in mine.0..mine.0 + mine.1 {
        if seg.lock_side(i)? {
            index = Some(i);
            break;
        }
    }
    if index.is_none() {
        return Err(Error::TooManyPeers {
            name: seg.name().to_owned(),
            side: label,
            max,
        });
    }
    seg.record_side(if role == Role::Sender {
        SENDER
    } else {
        RECEIVER
    });
    let events = seg
        .at(layout.events, std::mem::size_of::<Events>() as u64)?
        .cast();
    let ctrl: NonNull<MpmcControl> = seg
        .at(layout.ctrl, std::mem::size_of::<MpmcControl>() as u64)?
        .cast();
    let stamps = seg.at(layout.stamps, snap.capacity * 8)?.cast();
    let data = seg.at(layout.data, layout.total - layout.data)?;
    // SAFETY: `ctrl` lies in the mapping (checked by `at`) and was initialised by the creator
    // before `init`; it holds only atomics.
    let control = unsafe { ctrl.as_ref() };
    // Count ourselves in after taking the lock (and out before dropping it), so that a non-zero
    // count with no lock held means a participant died (see the module docs).
    match role {
        Role::Sender => control.join_sender(),
        Role::Receiver => control.join_receiver(),
    }
    if created {
        seg.publish();
    }
    Ok(Placed {
        link: Link {
            seg,
            wait,
            policy: WaitPolicy {
                slice: cfg.liveness_interval,
            },
            peer: peers.0,
        },
        events,
        ctrl,
        stamps,
        data,
        slots: snap.capacity,
        slot_size: snap.slot_size,
        peers,
        role,
        index: index.unwrap_or(0),
        maxima: (max_s as usize, max_r as usize),
    })
}

/// Creates the segment and lays out an empty ring in it (not yet published).
fn create(name: &str, cfg: &Config) -> Result<Segment> {
    let slots = cfg.capacity_slots();
    let slot_size = cfg.slot_size;
    ring::validate_geometry(slots, slot_size).map_err(|_| {
        Error::Incompatible(format!(
            "an MPMC slot must hold 1 B..=16 MiB, not {slot_size} bytes"
        ))
    })?;
    let layout = Layout::new(slots, slot_size);
    let mut seg = Segment::create(
        name,
        &Identity {
            ring_kind: RingKind::Mpmc,
            wait: cfg.wait.to_raw(),
            capacity: slots,
            slot_size,
            data_offset: layout.stamps,
            total_len: layout.total,
        },
        cfg.mode,
    )?;
    seg.set_unlink_on_drop(!cfg.persist);
    let h = seg.header();
    h.max_senders.store(
        cfg.max_senders.clamp(1, MAX_PEERS),
        std::sync::atomic::Ordering::Relaxed,
    );
    h.max_receivers.store(
        cfg.max_receivers.clamp(1, MAX_PEERS),
        std::sync::atomic::Ordering::Relaxed,
    );
    let ctrl = seg.at(layout.ctrl, std::mem::size_of::<MpmcControl>() as u64)?;
    let events = seg.at(layout.events, std::mem::size_of::<Events>() as u64)?;
    let stamps = seg.at(layout.stamps, slots * 8)?;
    // SAFETY: the regions are inside the fresh mapping (checked by `at`), aligned (128-byte
    // and 4 KiB offsets of a page-aligned mapping), and no other process uses them before
    // `publish`. Writing whole values initialises them without forming references first.
    unsafe {
        ctrl.cast::<MpmcControl>()
            .as_ptr()
            .write(MpmcControl::new());
        init_events(events, cfg.wait)?;
        ring::init_stamps(stamps.cast(), slots);
    }
    Ok(seg)
}

impl Placed {
    fn event(&self, which: usize) -> &Event {
        // SAFETY: `events` points into the mapping owned by `self.link.seg` (checked by
        // `Segment::at`), initialised by the creator before it published the segment.
        unsafe { super::event(self.events, which) }
    }

    fn control(&self) -> &MpmcControl {
        // SAFETY: as in `place`: inside the mapping we own, atomics only.
        unsafe { self.ctrl.as_ref() }
    }

    /// Once per wait slice: frees a slot that blocks us and whose holder died (see
    /// `ring::mpmc`, "a dead claimer's slot can be recovered"), then checks the other side.
    fn check_and_recover(&self, watcher: ring::Watcher) -> Result<()> {
        let stuck = match self.role {
            Role::Receiver => watcher.stuck_consumer(),
            Role::Sender => watcher.stuck_producer(),
        };
        if let Some(a) = stuck {
            let owner = usize::from(a.owner);
            let (s, r) = self.maxima;
            let plausible = if a.by_producer {
                owner < s
            } else {
                (s..s + r).contains(&owner)
            };
            if plausible && !self.link.seg.side_alive(owner)? && watcher.clear_abandoned(a) {
                // Others of our side may be asleep behind the same slot.
                self.notify_all(if a.by_producer { READABLE } else { WRITABLE });
            }
        }
        self.check_peers()
    }

    fn notify_all(&self, which: usize) {
        if self.link.wait != Wait::Spin {
            self.event(which).notify_all(self.link.wait);
        }
    }

    /// `Err(PeerDead)` if the other side's count says someone is attached but no live process
    /// holds any of that side's locks: a participant died without closing.
    fn check_peers(&self) -> Result<()> {
        let counted = match self.role {
            Role::Sender => self.control().receivers(),
            Role::Receiver => self.control().senders(),
        };
        if counted == 0 {
            return Ok(());
        }
        for i in self.peers.0..self.peers.0 + self.peers.1 {
            if self.link.seg.side_alive(i)? {
                return Ok(());
            }
        }
        Err(Error::PeerDead)
    }

    fn notify_one(&self, which: usize) {
        if self.link.wait != Wait::Spin {
            self.event(which).notify_one(self.link.wait);
        }
    }
}

/// A sending handle of a shared-memory MPMC channel. Any number of processes (up to the
/// segment's maximum) may hold one; dropping the last one closes the channel for receivers.
#[derive(Debug)]
pub struct Sender {
    producer: Producer,
    placed: Placed,
}

impl Sender {
    /// Creates the segment `name` and attaches as one of its senders. Fails if the name exists.
    pub fn create(name: &str, cfg: Config) -> Result<Sender> {
        Self::attach(name, &cfg, Attach::Create)
    }

    /// Opens the existing segment `name` as one more sender.
    pub fn open(name: &str) -> Result<Sender> {
        Self::attach(name, &Config::default(), Attach::Open)
    }

    /// Opens the existing segment `name` as one more sender, with `cfg`'s timeouts.
    pub fn open_with(name: &str, cfg: Config) -> Result<Sender> {
        Self::attach(name, &cfg, Attach::Open)
    }

    /// Opens `name` if it exists, or creates it with `cfg`.
    pub fn create_or_open(name: &str, cfg: Config) -> Result<Sender> {
        Self::attach(name, &cfg, Attach::CreateOrOpen)
    }

    fn attach(name: &str, cfg: &Config, how: Attach) -> Result<Sender> {
        let placed = place(name, cfg, Role::Sender, how)?;
        // SAFETY: control block, stamps and slots lie in the mapping that `placed` owns and
        // keeps alive as long as the producer; the geometry is the validated header's.
        let mut producer = unsafe {
            Producer::attach(
                placed.ctrl,
                placed.stamps,
                placed.data,
                placed.slots,
                placed.slot_size,
            )?
        };
        producer.set_owner(placed.index as u16);
        // We hold this index's lock now: whatever its previous holder left claimed is abandoned.
        if producer.watcher().clear_owned_by(placed.index as u16) > 0 {
            placed.notify_all(READABLE);
        }
        Ok(Sender { producer, placed })
    }

    /// The segment's name, with its leading `/`.
    pub fn name(&self) -> &str {
        self.placed.link.seg.name()
    }

    /// The largest message this channel accepts (the slot size).
    pub fn max_message_size(&self) -> usize {
        self.producer.max_message()
    }

    /// The wait strategy in force (the creator's).
    pub fn wait_strategy(&self) -> Wait {
        self.placed.link.wait
    }

    /// Senders and receivers attached now, as counted in the segment.
    pub fn peers(&self) -> (u32, u32) {
        let c = self.placed.control();
        (c.senders(), c.receivers())
    }

    /// Reserves a slot for a message of up to `len` bytes, or fails at once with
    /// [`Error::Full`]. See [`reserve`](Self::reserve).
    pub fn try_reserve(&mut self, len: usize) -> Result<SendSlot<'_>> {
        let grant = self.reserve_until(len, None, true)?;
        Ok(SendSlot {
            tx: self,
            grant: Some(grant),
        })
    }

    /// Reserves a slot for a message of up to `len` bytes inside the segment, waiting while
    /// the ring is full. Write into it, then [`commit`](SendSlot::commit) what you wrote;
    /// dropping the slot uncommitted sends nothing (receivers skip the slot).
    pub fn reserve(&mut self, len: usize) -> Result<SendSlot<'_>> {
        let grant = self.reserve_until(len, None, false)?;
        Ok(SendSlot {
            tx: self,
            grant: Some(grant),
        })
    }

    /// Like [`reserve`](Self::reserve), waiting at most `timeout` ([`Error::Timeout`]).
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<SendSlot<'_>> {
        let grant = self.reserve_until(len, deadline(timeout), false)?;
        Ok(SendSlot {
            tx: self,
            grant: Some(grant),
        })
    }

    /// Sends a copy of `msg`, waiting while the ring is full.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        let grant = self.reserve_until(msg.len(), None, false)?;
        self.write_commit(grant, msg);
        Ok(())
    }

    /// Sends a copy of `msg`, or fails at once with [`Error::Full`].
    pub fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        let grant = self.reserve_until(msg.len(), None, true)?;
        self.write_commit(grant, msg);
        Ok(())
    }

    /// Sends a copy of `msg`, waiting at most `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        let grant = self.reserve_until(msg.len(), deadline(timeout), false)?;
        self.write_commit(grant, msg);
        Ok(())
    }

    /// Sends a plain-old-data value as its bytes.
    pub fn send_pod<T: bytemuck::Pod>(&mut self, value: &T) -> Result<()> {
        self.send(bytemuck::bytes_of(value))
    }

    /// Sends a plain-old-data value, or fails at once with [`Error::Full`].
    pub fn try_send_pod<T: bytemuck::Pod>(&mut self, value: &T) -> Result<()> {
        self.try_send(bytemuck::bytes_of(value))
    }

    /// Sends a plain-old-data value, waiting at most `timeout`.
    pub fn send_pod_timeout<T: bytemuck::Pod>(
        &mut self,
        value: &T,
        timeout: Duration,
    ) -> Result<()> {
        self.send_timeout(bytemuck::bytes_of(value), timeout)
    }

    fn write_commit(&mut self, grant: Grant, msg: &[u8]) {
        // SAFETY: the grant covers `msg.len()` bytes of a slot that the stamp protocol gives to
        // this producer alone until it commits; `msg` is our own memory, so no overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), self.producer.payload(&grant), msg.len())
        };
        self.commit(grant, msg.len());
    }

    fn commit(&mut self, grant: Grant, len: usize) {
        self.producer.commit(grant, len);
        self.placed.notify_one(READABLE);
    }

    fn abandon(&mut self, grant: Grant) {
        self.producer.abandon(grant);
        // A receiver may be stalled at this slot: it must see the skip.
        self.placed.notify_one(READABLE);
    }

    /// Claims a slot: once (`once`), or waiting until `deadline`.
    fn reserve_until(
        &mut self,
        len: usize,
        deadline: Option<Instant>,
        once: bool,
    ) -> Result<Grant> {
        let Sender { producer, placed } = self;
        let watcher = producer.watcher();
        let wait = placed.link.wait;
        let writable = placed.event(WRITABLE);
        let mut attempt = || {
            let g = producer.try_reserve(len)?;
            if wait != Wait::Spin {
                // Pass a wake on if another slot is free too (module docs).
                writable.notify_one_if(wait, || producer.room());
            }
            Ok(g)
        };
        if once {
            return attempt();
        }
        block_on(
            wait,
            writable,
            &placed.link.policy,
            deadline,
            attempt,
            || placed.check_and_recover(watcher),
        )
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Count out before the liveness lock goes (when the segment drops after this).
        self.placed.control().leave_sender();
        // Wake every receiver: if we were the last sender, they must see the close.
        self.placed
            .event(READABLE)
            .notify_all(self.placed.link.wait);
    }
}

/// A slot inside the segment, from [`Sender::reserve`]. Dereferences to the reserved bytes;
/// [`commit`](Self::commit) publishes a prefix of them. Dropped without a commit, it is given up
/// and receivers skip it.
#[derive(Debug)]
pub struct SendSlot<'a> {
    tx: &'a mut Sender,
    /// `None` once committed.
    grant: Option<Grant>,
}

impl SendSlot<'_> {
    /// Publishes the first `len` bytes as one message.
    ///
    /// # Panics
    /// If `len` exceeds the reserved size.
    pub fn commit(mut self, len: usize) {
        if let Some(grant) = self.grant.take() {
            if len > grant.capacity {
                // Give the slot up first, so the panic does not stall the receivers.
                self.tx.abandon(grant);
                panic!(
                    "commit of {len} bytes into a reservation of {}",
                    grant.capacity
                );
            }
            self.tx.commit(grant, len);
        }
    }

    fn grant(&self) -> Grant {
        // Present until `commit`, which consumes the slot.
        self.grant.expect("a SendSlot holds its grant until commit")
    }
}

impl Drop for SendSlot<'_> {
    fn drop(&mut self) {
        if let Some(grant) = self.grant.take() {
            self.tx.abandon(grant);
        }
    }
}

impl Deref for SendSlot<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let grant = self.grant();
        // SAFETY: the grant's bytes lie in a slot that belongs to this producer alone until it
        // commits (honest consumers do not read it before the stamp says so).
        unsafe { std::slice::from_raw_parts(self.tx.producer.payload(&grant), grant.capacity) }
    }
}

impl DerefMut for SendSlot<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let grant = self.grant();
        // SAFETY: as in `deref`; `&mut self` makes this the only reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(self.tx.producer.payload(&grant), grant.capacity) }
    }
}

/// A receiving handle of a shared-memory MPMC channel. Any number of processes (up to the
/// segment's maximum) may hold one; each message goes to exactly one of them.
#[derive(Debug)]
pub struct Receiver {
    consumer: Consumer,
    placed: Placed,
}

impl Receiver {
    /// Opens the existing segment `name` as one more receiver.
    pub fn open(name: &str) -> Result<Receiver> {
        Self::attach(name, &Config::default(), Attach::Open)
    }

    /// Opens the existing segment `name` as one more receiver, with `cfg`'s timeouts.
    pub fn open_with(name: &str, cfg: Config) -> Result<Receiver> {
        Self::attach(name, &cfg, Attach::Open)
    }

    /// Creates the segment `name` and attaches as one of its receivers.
    pub fn create(name: &str, cfg: Config) -> Result<Receiver> {
        Self::attach(name, &cfg, Attach::Create)
    }

    /// Opens `name` if it exists, or creates it with `cfg`.
    pub fn create_or_open(name: &str, cfg: Config) -> Result<Receiver> {
        Self::attach(name, &cfg, Attach::CreateOrOpen)
    }

    fn attach(name: &str, cfg: &Config, how: Attach) -> Result<Receiver> {
        let placed = place(name, cfg, Role::Receiver, how)?;
        // SAFETY: as in `Sender::attach`, for a consumer.
        let mut consumer = unsafe {
            Consumer::attach(
                placed.ctrl,
                placed.stamps,
                placed.data,
                placed.slots,
                placed.slot_size,
            )?
        };
        consumer.set_owner(placed.index as u16);
        // As in `Sender::attach`: slots the previous holder of our index left are abandoned.
        if consumer.watcher().clear_owned_by(placed.index as u16) > 0 {
            placed.notify_all(WRITABLE);
        }
        Ok(Receiver { consumer, placed })
    }

    /// The segment's name, with its leading `/`.
    pub fn name(&self) -> &str {
        self.placed.link.seg.name()
    }

    /// The largest message this channel carries (the slot size).
    pub fn max_message_size(&self) -> usize {
        self.consumer.max_message()
    }

    /// Senders and receivers attached now, as counted in the segment.
    pub fn peers(&self) -> (u32, u32) {
        let c = self.placed.control();
        (c.senders(), c.receivers())
    }

    /// The next message, borrowed from the segment, or [`Error::Empty`] at once.
    pub fn try_recv(&mut self) -> Result<RecvGuard<'_>> {
        let frame = self.peek_until(None, true)?;
        Ok(RecvGuard { rx: self, frame })
    }

    /// The next message, borrowed from the segment (zero copy), waiting while there is none.
    /// Its slot is freed for the senders when the guard drops.
    ///
    /// After the last sender closed: the remaining messages, then [`Error::Disconnected`].
    /// After the senders died: what they committed, then [`Error::PeerDead`].
    pub fn recv(&mut self) -> Result<RecvGuard<'_>> {
        let frame = self.peek_until(None, false)?;
        Ok(RecvGuard { rx: self, frame })
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout` ([`Error::Timeout`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<RecvGuard<'_>> {
        let frame = self.peek_until(deadline(timeout), false)?;
        Ok(RecvGuard { rx: self, frame })
    }

    /// Copies the next message into `buf` (cleared first), waiting while there is none; returns
    /// its length.
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        let frame = self.peek_until(None, false)?;
        Ok(self.copy_out(frame, buf))
    }

    /// Copies the next message into `buf`, or fails at once with [`Error::Empty`].
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        let frame = self.peek_until(None, true)?;
        Ok(self.copy_out(frame, buf))
    }

    /// Copies the next message into `buf`, waiting at most `timeout`.
    pub fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        let frame = self.peek_until(deadline(timeout), false)?;
        Ok(self.copy_out(frame, buf))
    }

    /// Receives a plain-old-data value. A message whose length is not `size_of::<T>()` is
    /// consumed and reported as [`Error::Incompatible`].
    pub fn recv_pod<T: bytemuck::Pod>(&mut self) -> Result<T> {
        let frame = self.peek_until(None, false)?;
        self.take_pod(frame)
    }

    /// Receives a plain-old-data value, or fails at once with [`Error::Empty`].
    pub fn try_recv_pod<T: bytemuck::Pod>(&mut self) -> Result<T> {
        let frame = self.peek_until(None, true)?;
        self.take_pod(frame)
    }

    /// Receives a plain-old-data value, waiting at most `timeout`.
    pub fn recv_pod_timeout<T: bytemuck::Pod>(&mut self, timeout: Duration) -> Result<T> {
        let frame = self.peek_until(deadline(timeout), false)?;
        self.take_pod(frame)
    }

    fn take_pod<T: bytemuck::Pod>(&mut self, frame: Frame) -> Result<T> {
        let guard = RecvGuard { rx: self, frame };
        if guard.len() != std::mem::size_of::<T>() {
            return Err(Error::Incompatible(format!(
                "message of {} bytes is not a {} ({} bytes)",
                guard.len(),
                std::any::type_name::<T>(),
                std::mem::size_of::<T>()
            )));
        }
        Ok(bytemuck::pod_read_unaligned(&guard))
    }

    fn copy_out(&mut self, frame: Frame, buf: &mut Vec<u8>) -> usize {
        buf.clear();
        buf.reserve(frame.len);
        // SAFETY: the frame's length was validated against the slot size, and the slot is ours
        // (stamp protocol) until we release it; `buf` has room for `frame.len` bytes (reserved
        // above) and is our own memory, so no overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.consumer.payload(&frame),
                buf.as_mut_ptr(),
                frame.len,
            );
            buf.set_len(frame.len);
        }
        self.release(frame);
        frame.len
    }

    fn release(&mut self, frame: Frame) {
        self.consumer.release(frame);
        self.placed.notify_one(WRITABLE);
    }

    /// Claims the next message: once (`once`), or waiting until `deadline`.
    fn peek_until(&mut self, deadline: Option<Instant>, once: bool) -> Result<Frame> {
        let Receiver { consumer, placed } = self;
        let watcher = consumer.watcher();
        let wait = placed.link.wait;
        let readable = placed.event(READABLE);
        let mut attempt = || {
            let f = consumer.try_peek()?;
            if wait != Wait::Spin {
                // Pass a wake on if the next message is ready too (module docs).
                readable.notify_one_if(wait, || consumer.more());
            }
            Ok(f)
        };
        if once {
            return attempt();
        }
        block_on(
            wait,
            readable,
            &placed.link.policy,
            deadline,
            attempt,
            || placed.check_and_recover(watcher),
        )
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.placed.control().leave_receiver();
        self.placed
            .event(WRITABLE)
            .notify_all(self.placed.link.wait);
    }
}

/// A received message, borrowed from the segment (zero copy). Dereferences to its bytes; its
/// slot is given back to the senders when the guard drops.
///
/// The bytes are only as stable as the senders are honest; use [`Receiver::recv_into`] to take
/// one copy from peers you do not trust.
#[derive(Debug)]
pub struct RecvGuard<'a> {
    rx: &'a mut Receiver,
    frame: Frame,
}

impl Deref for RecvGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the frame's length was validated against the slot size and the slot belongs
        // to this consumer until the guard drops.
        unsafe { std::slice::from_raw_parts(self.rx.consumer.payload(&self.frame), self.frame.len) }
    }
}

impl Drop for RecvGuard<'_> {
    fn drop(&mut self) {
        self.rx.release(self.frame);
    }
}

super::channel_traits!(Sender, Receiver);

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;

    fn name(tag: &str) -> String {
        format!("t-mpmc-{tag}-{}", std::process::id())
    }

    fn both_waits() -> [Wait; 3] {
        [Wait::Futex, Wait::Semaphore, Wait::Spin]
    }

    #[test]
    fn send_recv_reserve_pod_and_skip() {
        for wait in both_waits() {
            let n = name(&format!("basic-{wait:?}"));
            let cfg = Config::default().capacity(4).slot_size(32).wait(wait);
            let mut tx = Sender::create(&n, cfg).unwrap();
            let mut rx = Receiver::open(&n).unwrap();
            assert_eq!(rx.max_message_size(), 32);
            assert_eq!(tx.wait_strategy(), wait);
            tx.send(b"one").unwrap();
            let slot = tx.reserve(8).unwrap();
            drop(slot); // given up: skipped
            let mut slot = tx.reserve(8).unwrap();
            slot[..3].copy_from_slice(b"two");
            slot.commit(3);
            tx.send_pod(&7u64).unwrap();
            assert_eq!(&*rx.recv().unwrap(), b"one");
            let mut buf = Vec::new();
            assert_eq!(rx.recv_into(&mut buf).unwrap(), 3);
            assert_eq!(buf, b"two");
            assert_eq!(rx.recv_pod::<u64>().unwrap(), 7);
            assert!(matches!(rx.try_recv(), Err(Error::Empty)));
            assert!(matches!(
                rx.recv_timeout(Duration::from_millis(5)),
                Err(Error::Timeout)
            ));
            assert!(matches!(
                tx.send(&[0; 33]),
                Err(Error::TooLarge { size: 33, max: 32 })
            ));
            for _ in 0..4 {
                tx.try_send(b"x").unwrap();
            }
            assert!(matches!(tx.try_send(b"x"), Err(Error::Full)));
            assert!(matches!(
                tx.send_timeout(b"x", Duration::from_millis(5)),
                Err(Error::Timeout)
            ));
            drop(tx);
            for _ in 0..4 {
                assert_eq!(&*rx.recv().unwrap(), b"x");
            }
            assert!(matches!(rx.recv(), Err(Error::Disconnected)));
        }
    }

    #[test]
    fn last_receiver_closing_disconnects_senders() {
        let n = name("rxclose");
        let mut tx = Sender::create(&n, Config::default().capacity(2)).unwrap();
        let rx1 = Receiver::open(&n).unwrap();
        let rx2 = Receiver::open(&n).unwrap();
        assert_eq!(tx.peers(), (1, 2));
        drop(rx1);
        tx.send(b"a").unwrap();
        drop(rx2);
        assert!(matches!(tx.send(b"b"), Err(Error::Disconnected)));
    }

    #[test]
    fn maximum_of_senders_is_enforced() {
        let n = name("max");
        let cfg = Config::default().max_senders(2).max_receivers(1);
        let _a = Sender::create(&n, cfg).unwrap();
        let _b = Sender::open(&n).unwrap();
        assert!(matches!(
            Sender::open(&n),
            Err(Error::TooManyPeers {
                side: "sender",
                max: 2,
                ..
            })
        ));
        let _r = Receiver::open(&n).unwrap();
        assert!(matches!(
            Receiver::open(&n),
            Err(Error::TooManyPeers { .. })
        ));
        assert!(crate::spsc::Receiver::open(&n).is_err());
    }

    /// Many sleepers on each side, in threads (each handle has its own mapping and lock).
    #[test]
    fn blocking_threads_every_message_once() {
        for wait in [Wait::Futex, Wait::Semaphore] {
            let n = name(&format!("threads-{wait:?}"));
            let cfg = Config::default().capacity(4).slot_size(16).wait(wait);
            let keep = Receiver::create(&n, cfg).unwrap();
            const PER: u64 = 20_000;
            let total: u64 = std::thread::scope(|s| {
                let consumers: Vec<_> = (0..3)
                    .map(|_| {
                        let mut rx = Receiver::open(&n).unwrap();
                        s.spawn(move || {
                            let mut sum = 0u64;
                            loop {
                                match rx.recv_pod::<[u64; 2]>() {
                                    Ok([_, v]) => sum += v,
                                    Err(Error::Disconnected) => return sum,
                                    Err(e) => panic!("{e}"),
                                }
                            }
                        })
                    })
                    .collect();
                let producers: Vec<_> = (0..3u64)
                    .map(|id| {
                        let mut tx = Sender::open(&n).unwrap();
                        s.spawn(move || {
                            for v in 1..=PER {
                                tx.send_pod(&[id, v]).unwrap();
                            }
                        })
                    })
                    .collect();
                for p in producers {
                    p.join().unwrap();
                }
                drop(keep);
                consumers.into_iter().map(|c| c.join().unwrap()).sum()
            });
            assert_eq!(total, 3 * PER * (PER + 1) / 2, "{wait:?}");
        }
    }
}
