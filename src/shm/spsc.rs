//! The shared-memory SPSC channel: one [`Sender`] process, one [`Receiver`] process, a named
//! segment between them holding a variable-length byte ring.
//!
//! ```
//! use shmring::{spsc, Config};
//! let name = format!("doc-spsc-{}", std::process::id());
//!
//! // Usually in two processes; here in one for the example.
//! let mut tx = spsc::Sender::create(&name, Config::default().capacity(4096))?;
//! let mut rx = spsc::Receiver::open(&name)?;
//!
//! tx.send(b"hello")?;                      // copies in
//! let mut slot = tx.reserve(128)?;         // zero copy: room inside the segment
//! slot[..5].copy_from_slice(b"world");
//! slot.commit(5);                          // publishes 5 bytes
//!
//! assert_eq!(&*rx.recv()?, b"hello");      // zero copy: borrowed from the segment
//! let mut buf = Vec::new();
//! rx.recv_into(&mut buf)?;                 // copies out
//! assert_eq!(buf, b"world");
//! # Ok::<(), shmring::Error>(())
//! ```
//!
//! # Segment layout
//! `[Header | SpscControl | Event readable | Event writable | padding to 4 KiB | data]`.
//! The receiver sleeps on `readable`, the sender on `writable`.

use std::ops::{Deref, DerefMut};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use super::{
    attach_segment, deadline, init_events, Attach, Attached, Events, Link, READABLE, WRITABLE,
};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ring::layout::align_up;
use crate::ring::spsc::{self as ring, Consumer, Frame, Grant, Producer, SpscControl};
use crate::segment::{Identity, RingKind, Segment, HEADER_LEN, RECEIVER, SENDER};
use crate::sync::wait::{block_on, Event, WaitPolicy};
use crate::sync::Wait;

/// Offsets of the parts of an SPSC segment with `cap` data bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    ctrl: u64,
    events: u64,
    data: u64,
    total: u64,
}

impl Layout {
    fn new(cap: u64) -> Layout {
        let ctrl = HEADER_LEN;
        let events = align_up(ctrl + std::mem::size_of::<SpscControl>(), 128);
        let data = align_up(events + std::mem::size_of::<Events>(), 4096);
        Layout {
            ctrl: ctrl as u64,
            events: events as u64,
            data: data as u64,
            total: data as u64 + cap,
        }
    }
}

/// A half's end of the ring, placed in its segment.
#[derive(Debug)]
struct Placed {
    link: Link,
    events: NonNull<Events>,
    ctrl: NonNull<SpscControl>,
    data: NonNull<u8>,
    cap: u64,
}

/// Creates and/or opens the segment `name` and takes side `side` of it.
fn place(name: &str, cfg: &Config, side: usize, how: Attach) -> Result<Placed> {
    let attached = attach_segment(name, cfg, how, RingKind::Spsc, |name, cfg| {
        create(Some(name), cfg)
    })?;
    take_side(attached, cfg, side)
}

/// Creates an anonymous (memfd) segment and takes side `side` of it.
fn place_anonymous(cfg: &Config, side: usize) -> Result<Placed> {
    let seg = create(None, cfg)?;
    take_side(Attached::check(seg, true, RingKind::Spsc)?, cfg, side)
}

/// Opens a segment from a received descriptor and takes side `side` of it.
fn place_fd(fd: OwnedFd, cfg: &Config, side: usize) -> Result<Placed> {
    let seg = Segment::from_fd(fd, cfg.open_timeout)?;
    take_side(Attached::check(seg, false, RingKind::Spsc)?, cfg, side)
}

/// Validates the SPSC layout of an attached segment, takes side `side` (publishing the segment
/// if we made it) and finds the ring's parts.
fn take_side(attached: Attached, cfg: &Config, side: usize) -> Result<Placed> {
    let peer = 1 - side;
    let Attached {
        seg,
        created,
        snap,
        wait,
    } = attached;
    ring::validate_capacity(snap.capacity)?;
    let layout = Layout::new(snap.capacity);
    if snap.data_offset != layout.data || snap.total_len != layout.total {
        return Err(Error::Corrupted(
            "header offsets do not match the SPSC layout",
        ));
    }
    if !seg.lock_side(side)? {
        return Err(Error::InUse {
            name: seg.name().to_owned(),
            side: if side == SENDER { "sender" } else { "receiver" },
        });
    }
    seg.record_side(side);
    if created {
        seg.publish();
    }
    let events = seg
        .at(layout.events, std::mem::size_of::<Events>() as u64)?
        .cast();
    let ctrl = seg
        .at(layout.ctrl, std::mem::size_of::<SpscControl>() as u64)?
        .cast();
    let data = seg.at(layout.data, snap.capacity)?;
    let policy = WaitPolicy {
        slice: cfg.liveness_interval,
    };
    Ok(Placed {
        link: Link {
            seg,
            wait,
            policy,
            peer,
        },
        events,
        ctrl,
        data,
        cap: snap.capacity,
    })
}

/// Creates the segment `name` (an anonymous one for `None`) and lays out an empty ring in it
/// (not yet published).
fn create(name: Option<&str>, cfg: &Config) -> Result<Segment> {
    let cap = cfg.capacity_bytes();
    let layout = Layout::new(cap);
    let id = Identity {
        ring_kind: RingKind::Spsc,
        wait: cfg.wait.to_raw(),
        capacity: cap,
        slot_size: 0,
        data_offset: layout.data,
        total_len: layout.total,
    };
    let mut seg = match name {
        Some(name) => Segment::create(name, &id, cfg.mode)?,
        None => Segment::create_anonymous("spsc", &id)?,
    };
    seg.set_unlink_on_drop(!cfg.persist);
    let ctrl = seg.at(layout.ctrl, std::mem::size_of::<SpscControl>() as u64)?;
    let events = seg.at(layout.events, std::mem::size_of::<Events>() as u64)?;
    // SAFETY: both regions are inside the fresh mapping (checked by `at`), suitably aligned
    // (128-byte offsets of a page-aligned mapping), and no other process uses them before
    // `publish`. Writing whole values initialises them without forming references first.
    unsafe {
        ctrl.cast::<SpscControl>()
            .as_ptr()
            .write(SpscControl::new());
        init_events(events, cfg.wait)?;
    }
    Ok(seg)
}

// SAFETY: the pointers lead into the mapping that `link.seg` owns (it moves with them), and
// everything reached through them is atomic or handed out only through `&mut` of the owning half.
unsafe impl Send for Placed {}

impl Placed {
    fn event(&self, which: usize) -> &Event {
        // SAFETY: `events` points into the mapping owned by `self.link.seg` (checked by
        // `Segment::at`), initialised by the creator before it published the segment.
        unsafe { super::event(self.events, which) }
    }
}

/// The sending half of a shared-memory SPSC channel.
///
/// Exactly one live process may hold the sender of a segment at a time; a second gets
/// [`Error::InUse`]. Dropping the sender closes the channel: the receiver drains what was sent,
/// then gets [`Error::Disconnected`].
#[derive(Debug)]
pub struct Sender {
    producer: Producer,
    placed: Placed,
}

impl Sender {
    /// Creates the segment `name` and attaches as its sender. Fails if the name exists.
    ///
    /// ```
    /// # let name = format!("doc-create-{}", std::process::id());
    /// let tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// assert!(shmring::spsc::Sender::create(&name, shmring::Config::default()).is_err());
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub fn create(name: &str, cfg: Config) -> Result<Sender> {
        Self::attach(name, &cfg, Attach::Create)
    }

    /// Opens the existing segment `name` as its sender.
    pub fn open(name: &str) -> Result<Sender> {
        Self::attach(name, &Config::default(), Attach::Open)
    }

    /// Opens the existing segment `name` as its sender, with `cfg`'s timeouts.
    pub fn open_with(name: &str, cfg: Config) -> Result<Sender> {
        Self::attach(name, &cfg, Attach::Open)
    }

    /// Opens `name` if it exists, or creates it with `cfg`.
    pub fn create_or_open(name: &str, cfg: Config) -> Result<Sender> {
        Self::attach(name, &cfg, Attach::CreateOrOpen)
    }

    /// Creates an anonymous segment (a sealed memfd, no name in /dev/shm) and attaches as its
    /// sender. Hand [`segment_fd`](Self::segment_fd) to the receiving process over a Unix
    /// socket ([`send_fd`](crate::segment::fd_passing::send_fd)); it opens it with
    /// [`Receiver::from_fd`]. Nothing is left behind when both processes are gone.
    ///
    /// ```
    /// use shmring::{spsc, Config};
    /// let mut tx = spsc::Sender::create_anonymous(Config::default().capacity(4096))?;
    /// // Normally received over a socket by another process:
    /// let fd = tx.segment_fd().try_clone_to_owned().unwrap();
    /// let mut rx = spsc::Receiver::from_fd(fd, Config::default())?;
    /// tx.send(b"no name in /dev/shm")?;
    /// assert_eq!(&*rx.recv()?, b"no name in /dev/shm");
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub fn create_anonymous(cfg: Config) -> Result<Sender> {
        Self::finish(place_anonymous(&cfg, SENDER)?)
    }

    /// Opens an anonymous segment received as a descriptor, as its sender.
    pub fn from_fd(fd: OwnedFd, cfg: Config) -> Result<Sender> {
        Self::finish(place_fd(fd, &cfg, SENDER)?)
    }

    /// The segment's descriptor, to pass to the peer (see [`create_anonymous`](Self::create_anonymous)).
    pub fn segment_fd(&self) -> BorrowedFd<'_> {
        self.placed.link.seg.fd()
    }

    fn attach(name: &str, cfg: &Config, how: Attach) -> Result<Sender> {
        Self::finish(place(name, cfg, SENDER, how)?)
    }

    fn finish(placed: Placed) -> Result<Sender> {
        // SAFETY: `ctrl` and `data .. data + cap` lie in the mapping that `placed` owns and
        // keeps alive as long as the producer; the side lock makes us the only producer.
        let producer = unsafe { Producer::attach(placed.ctrl, placed.data, placed.cap)? };
        Ok(Sender { producer, placed })
    }

    /// The segment's name, with its leading `/`.
    pub fn name(&self) -> &str {
        self.placed.link.seg.name()
    }

    /// The largest message this channel accepts: the capacity minus 16 bytes (a frame header,
    /// and the word after the frame that the ring keeps clean).
    pub fn max_message_size(&self) -> usize {
        self.producer.max_message()
    }

    /// The wait strategy in force (the creator's).
    pub fn wait_strategy(&self) -> Wait {
        self.placed.link.wait
    }

    /// True once a receiver has attached (it may have left since). Until then a blocked send
    /// waits for one to arrive; use the `_timeout` forms to bound that.
    pub fn peer_attached(&self) -> bool {
        self.placed.link.seg.side_ever_attached(RECEIVER)
    }

    /// Reserves room for a message of up to `len` bytes, or fails at once with
    /// [`Error::Full`]. See [`reserve`](Self::reserve).
    pub fn try_reserve(&mut self, len: usize) -> Result<SendSlot<'_>> {
        let grant = self.reserve_once(len)?;
        Ok(SendSlot { tx: self, grant })
    }

    /// Reserves room for a message of up to `len` bytes inside the segment, waiting while the
    /// ring is full. Write into the slot, then [`commit`](SendSlot::commit) what you wrote;
    /// dropping the slot uncommitted sends nothing.
    ///
    /// ```
    /// # let name = format!("doc-reserve-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// let mut slot = tx.reserve(64)?;
    /// let n = {
    ///     use std::io::Write;
    ///     let mut w = &mut slot[..];
    ///     write!(w, "tick {}", 42).unwrap();
    ///     64 - w.len()
    /// };
    /// slot.commit(n);
    /// assert_eq!(&*rx.recv()?, b"tick 42");
    /// # Ok::<(), shmring::Error>(())
    /// ```
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<SendSlot<'_>> {
        let grant = self.reserve_until(len, None)?;
        Ok(SendSlot { tx: self, grant })
    }

    /// Like [`reserve`](Self::reserve), waiting at most `timeout` ([`Error::Timeout`]).
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<SendSlot<'_>> {
        let grant = self.reserve_until(len, deadline(timeout))?;
        Ok(SendSlot { tx: self, grant })
    }

    /// Sends a copy of `msg`, waiting while the ring is full.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        let grant = self.reserve_until(msg.len(), None)?;
        self.write_commit(grant, msg);
        Ok(())
    }

    /// Sends a copy of `msg`, or fails at once with [`Error::Full`].
    pub fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        let grant = self.reserve_once(msg.len())?;
        self.write_commit(grant, msg);
        Ok(())
    }

    /// Sends a copy of `msg`, waiting at most `timeout`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        let grant = self.reserve_until(msg.len(), deadline(timeout))?;
        self.write_commit(grant, msg);
        Ok(())
    }

    /// Sends a plain-old-data value as its bytes.
    ///
    /// ```
    /// #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C)]
    /// struct Tick { price: u64, qty: u32, side: u32 }
    /// # let name = format!("doc-pod-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// tx.send_pod(&Tick { price: 101, qty: 5, side: 1 })?;
    /// assert_eq!(rx.recv_pod::<Tick>()?, Tick { price: 101, qty: 5, side: 1 });
    /// # Ok::<(), shmring::Error>(())
    /// ```
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

    #[inline]
    fn write_commit(&mut self, grant: Grant, msg: &[u8]) {
        // SAFETY: the grant covers `msg.len()` bytes of the data area that the protocol gives to
        // the producer alone until it commits; `msg` is our own memory, so they do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), self.producer.payload(&grant), msg.len())
        };
        self.commit(grant, msg.len());
    }

    #[inline]
    fn commit(&mut self, grant: Grant, len: usize) {
        self.producer.commit(grant, len);
        if self.placed.link.wait != Wait::Spin {
            self.placed
                .event(READABLE)
                .notify_one(self.placed.link.wait);
        }
    }

    fn reserve_once(&mut self, len: usize) -> Result<Grant> {
        let r = self.producer.try_reserve(len);
        if matches!(r, Err(Error::Full)) && self.placed.link.wait != Wait::Spin {
            // A wrap marker may have just been published: a sleeping receiver must skip it
            // before there is room for us.
            self.placed
                .event(READABLE)
                .notify_one(self.placed.link.wait);
        }
        r
    }

    /// The fast path inline: most reservations succeed at once, and the wait loop (with its
    /// large `Result`s moving through closures) would double the cost of a message.
    #[inline]
    fn reserve_until(&mut self, len: usize, deadline: Option<Instant>) -> Result<Grant> {
        // Only the grant flows out of the fast path; any error is found again (and handled)
        // by the slow path, so no large `Result` is moved on the way.
        if let Ok(grant) = self.producer.try_reserve(len) {
            return Ok(grant);
        }
        self.reserve_blocking(len, deadline)
    }

    #[cold]
    #[inline(never)]
    fn reserve_blocking(&mut self, len: usize, deadline: Option<Instant>) -> Result<Grant> {
        let Sender { producer, placed } = self;
        let link = &placed.link;
        let readable = placed.event(READABLE);
        block_on(
            link.wait,
            placed.event(WRITABLE),
            &link.policy,
            deadline,
            || {
                let r = producer.try_reserve(len);
                if matches!(r, Err(Error::Full)) && link.wait != Wait::Spin {
                    readable.notify_one(link.wait);
                }
                r
            },
            || link.check_peer(),
        )
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.producer.close();
        // Wake a receiver that sleeps so that it sees the close (even in Spin mode, a
        // receiver opened with a wait of its own may sleep).
        self.placed
            .event(READABLE)
            .notify_all(self.placed.link.wait);
    }
}

/// Room for one message inside the segment, from [`Sender::reserve`]. Dereferences to the
/// reserved bytes; [`commit`](Self::commit) publishes a prefix of them.
#[derive(Debug)]
pub struct SendSlot<'a> {
    tx: &'a mut Sender,
    grant: Grant,
}

impl SendSlot<'_> {
    /// Publishes the first `len` bytes as one message.
    ///
    /// # Panics
    /// If `len` exceeds the reserved size.
    pub fn commit(self, len: usize) {
        self.tx.commit(self.grant, len);
    }
}

impl Deref for SendSlot<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the grant's bytes lie in the data area and belong to the producer alone until
        // it commits (an honest consumer does not touch them; see the crate's trust model).
        unsafe {
            std::slice::from_raw_parts(self.tx.producer.payload(&self.grant), self.grant.capacity)
        }
    }
}

impl DerefMut for SendSlot<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference to the bytes.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.tx.producer.payload(&self.grant),
                self.grant.capacity,
            )
        }
    }
}

/// The receiving half of a shared-memory SPSC channel.
///
/// Exactly one live process may hold the receiver of a segment at a time. Dropping it closes
/// the channel: the sender's next send fails with [`Error::Disconnected`].
#[derive(Debug)]
pub struct Receiver {
    consumer: Consumer,
    placed: Placed,
}

impl Receiver {
    /// Opens the existing segment `name` as its receiver.
    pub fn open(name: &str) -> Result<Receiver> {
        Self::attach(name, &Config::default(), Attach::Open)
    }

    /// Opens the existing segment `name` as its receiver, with `cfg`'s timeouts.
    pub fn open_with(name: &str, cfg: Config) -> Result<Receiver> {
        Self::attach(name, &cfg, Attach::Open)
    }

    /// Creates the segment `name` and attaches as its receiver (the sender opens it later).
    pub fn create(name: &str, cfg: Config) -> Result<Receiver> {
        Self::attach(name, &cfg, Attach::Create)
    }

    /// Opens `name` if it exists, or creates it with `cfg`.
    pub fn create_or_open(name: &str, cfg: Config) -> Result<Receiver> {
        Self::attach(name, &cfg, Attach::CreateOrOpen)
    }

    /// Creates an anonymous segment (a sealed memfd) and attaches as its receiver; see
    /// [`Sender::create_anonymous`].
    pub fn create_anonymous(cfg: Config) -> Result<Receiver> {
        Self::finish(place_anonymous(&cfg, RECEIVER)?)
    }

    /// Opens an anonymous segment received as a descriptor, as its receiver.
    pub fn from_fd(fd: OwnedFd, cfg: Config) -> Result<Receiver> {
        Self::finish(place_fd(fd, &cfg, RECEIVER)?)
    }

    /// The segment's descriptor, to pass to the peer.
    pub fn segment_fd(&self) -> BorrowedFd<'_> {
        self.placed.link.seg.fd()
    }

    fn attach(name: &str, cfg: &Config, how: Attach) -> Result<Receiver> {
        Self::finish(place(name, cfg, RECEIVER, how)?)
    }

    fn finish(placed: Placed) -> Result<Receiver> {
        // SAFETY: as in `Sender::finish`, for the consumer's end.
        let consumer = unsafe { Consumer::attach(placed.ctrl, placed.data, placed.cap)? };
        Ok(Receiver { consumer, placed })
    }

    /// The segment's name, with its leading `/`.
    pub fn name(&self) -> &str {
        self.placed.link.seg.name()
    }

    /// True once a sender has attached (it may have left since).
    pub fn peer_attached(&self) -> bool {
        self.placed.link.seg.side_ever_attached(SENDER)
    }

    /// The largest message this channel carries.
    pub fn max_message_size(&self) -> usize {
        self.consumer.max_message()
    }

    /// The next message, borrowed from the segment, or [`Error::Empty`] at once.
    pub fn try_recv(&mut self) -> Result<RecvGuard<'_>> {
        let frame = self.peek_once()?;
        Ok(RecvGuard { rx: self, frame })
    }

    /// The next message, borrowed from the segment (zero copy), waiting while there is none.
    /// Its bytes are freed for the sender when the guard drops.
    ///
    /// After the sender closed: the remaining messages, then [`Error::Disconnected`]. After
    /// the sender died: the messages it committed, then [`Error::PeerDead`].
    #[inline]
    pub fn recv(&mut self) -> Result<RecvGuard<'_>> {
        let frame = self.peek_until(None)?;
        Ok(RecvGuard { rx: self, frame })
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout` ([`Error::Timeout`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<RecvGuard<'_>> {
        let frame = self.peek_until(deadline(timeout))?;
        Ok(RecvGuard { rx: self, frame })
    }

    /// Copies the next message into `buf` (cleared first), waiting while there is none; returns
    /// its length. The copy is taken once, so the result cannot change under a misbehaving peer.
    #[inline]
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        let frame = self.peek_until(None)?;
        Ok(self.copy_out(frame, buf))
    }

    /// Copies the next message into `buf`, or fails at once with [`Error::Empty`].
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        let frame = self.peek_once()?;
        Ok(self.copy_out(frame, buf))
    }

    /// Copies the next message into `buf`, waiting at most `timeout`.
    pub fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        let frame = self.peek_until(deadline(timeout))?;
        Ok(self.copy_out(frame, buf))
    }

    /// Receives a plain-old-data value. A message whose length is not `size_of::<T>()` is
    /// consumed and reported as [`Error::Incompatible`].
    pub fn recv_pod<T: bytemuck::Pod>(&mut self) -> Result<T> {
        let frame = self.peek_until(None)?;
        self.take_pod(frame)
    }

    /// Receives a plain-old-data value, or fails at once with [`Error::Empty`].
    pub fn try_recv_pod<T: bytemuck::Pod>(&mut self) -> Result<T> {
        let frame = self.peek_once()?;
        self.take_pod(frame)
    }

    /// Receives a plain-old-data value, waiting at most `timeout`.
    pub fn recv_pod_timeout<T: bytemuck::Pod>(&mut self, timeout: Duration) -> Result<T> {
        let frame = self.peek_until(deadline(timeout))?;
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

    #[inline]
    fn copy_out(&mut self, frame: Frame, buf: &mut Vec<u8>) -> usize {
        buf.clear();
        buf.reserve(frame.len);
        // SAFETY: the frame was validated to lie inside the data area and below `tail`, so the
        // producer has published it and will not reuse it before we release it; `buf` has room
        // for `frame.len` bytes (reserved above) and is our own memory, so no overlap.
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

    #[inline]
    fn release(&mut self, frame: Frame) {
        self.consumer.release(frame);
        if self.placed.link.wait != Wait::Spin {
            self.placed
                .event(WRITABLE)
                .notify_one(self.placed.link.wait);
        }
    }

    fn peek_once(&mut self) -> Result<Frame> {
        let r = self.consumer.try_peek();
        if matches!(r, Err(Error::Empty)) && self.placed.link.wait != Wait::Spin {
            // We may have skipped a wrap marker, freeing room a sleeping sender waits for.
            self.placed
                .event(WRITABLE)
                .notify_one(self.placed.link.wait);
        }
        r
    }

    /// The fast path inline, as in `Sender::reserve_until`.
    #[inline]
    fn peek_until(&mut self, deadline: Option<Instant>) -> Result<Frame> {
        if let Ok(frame) = self.consumer.try_peek() {
            return Ok(frame);
        }
        self.peek_blocking(deadline)
    }

    #[cold]
    #[inline(never)]
    fn peek_blocking(&mut self, deadline: Option<Instant>) -> Result<Frame> {
        let Receiver { consumer, placed } = self;
        let link = &placed.link;
        let writable = placed.event(WRITABLE);
        block_on(
            link.wait,
            placed.event(READABLE),
            &link.policy,
            deadline,
            || {
                let r = consumer.try_peek();
                if matches!(r, Err(Error::Empty)) && link.wait != Wait::Spin {
                    writable.notify_one(link.wait);
                }
                r
            },
            || link.check_peer(),
        )
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.consumer.close();
        self.placed
            .event(WRITABLE)
            .notify_all(self.placed.link.wait);
    }
}

/// A received message, borrowed from the segment (zero copy). Dereferences to its bytes; its
/// room in the ring is given back to the sender when the guard drops.
///
/// The bytes are only as stable as the sender is honest: a misbehaving sender could write them
/// while you read. Use [`Receiver::recv_into`] to take one copy from a peer you do not trust.
#[derive(Debug)]
pub struct RecvGuard<'a> {
    rx: &'a mut Receiver,
    frame: Frame,
}

impl Deref for RecvGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the frame was validated to lie inside the data area and below the published
        // `tail`; an honest producer does not touch it until we release it on drop.
        unsafe { std::slice::from_raw_parts(self.rx.consumer.payload(&self.frame), self.frame.len) }
    }
}

impl Drop for RecvGuard<'_> {
    fn drop(&mut self) {
        self.rx.release(self.frame);
    }
}

super::channel_traits!(Sender, Receiver);
