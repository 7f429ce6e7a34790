//! The shared-memory broadcast channel: one [`Sender`] process and any number of
//! [`Receiver`] processes (up to the maximum the creator set); every receiver sees every
//! message, in the order sent.
//!
//! ```
//! use shmring::{broadcast, Config};
//! let name = format!("doc-broadcast-{}", std::process::id());
//!
//! // Usually in many processes; here in one for the example.
//! let mut tx = broadcast::Sender::create(&name, Config::default().capacity(64).slot_size(128))?;
//! let mut a = broadcast::Receiver::open(&name)?;
//! let mut b = broadcast::Receiver::open(&name)?;
//!
//! tx.send(b"tick 1")?;
//! let mut slot = tx.reserve(16)?;              // zero copy: a slot inside the segment
//! slot[..6].copy_from_slice(b"tick 2");
//! slot.commit(6);
//!
//! for rx in [&mut a, &mut b] {
//!     assert_eq!(&*rx.recv()?, b"tick 1");     // both see both
//!     let mut buf = Vec::new();
//!     rx.recv_into(&mut buf)?;
//!     assert_eq!(buf, b"tick 2");
//! }
//! # Ok::<(), shmring::Error>(())
//! ```
//!
//! # Overflow, history and lag
//! The creator picks the policy ([`Config::overflow`](crate::Config::overflow)):
//! [`Overflow::Block`] (the default) makes the sender wait for the slowest live receiver;
//! [`Overflow::Overwrite`] never makes it wait, and a receiver that fell a whole ring behind
//! gets [`Error::Lagged`] once, then the oldest message still retained.
//!
//! ```
//! use shmring::{broadcast::{self, Overflow}, Config, Error};
//! let name = format!("doc-broadcast-lag-{}", std::process::id());
//! let cfg = Config::default().capacity(4).slot_size(8).overflow(Overflow::Overwrite);
//! let mut tx = broadcast::Sender::create(&name, cfg)?;
//! let mut rx = broadcast::Receiver::open(&name)?;
//! for i in 0..10u64 {
//!     tx.send_pod(&i)?;                         // never blocks
//! }
//! assert!(matches!(rx.recv_pod::<u64>(), Err(Error::Lagged { missed: 7 })));
//! assert_eq!(rx.recv_pod::<u64>()?, 7);         // the oldest still in the ring
//! # Ok::<(), shmring::Error>(())
//! ```
//!
//! A receiver starts with the next message sent after it joined, or, with
//! [`Config::history`](crate::Config::history)`(n)`, with up to the newest `n` already sent:
//!
//! ```
//! use shmring::{broadcast, Config};
//! let name = format!("doc-broadcast-history-{}", std::process::id());
//! let mut tx = broadcast::Sender::create(&name, Config::default().capacity(16).history(2))?;
//! for m in [&b"a"[..], b"b", b"c"] {
//!     tx.send(m)?;
//! }
//! let mut late = broadcast::Receiver::open(&name)?;
//! assert_eq!(&*late.recv()?, b"b");
//! assert_eq!(&*late.recv()?, b"c");
//! # Ok::<(), shmring::Error>(())
//! ```
//!
//! In `Block` mode a [`RecvGuard`] borrows the slot itself: the receiver's cursor holds the
//! sender back until the guard drops. In `Overwrite` mode every message is first copied into
//! the receiver's own buffer and validated (the ring's stamp check, see `ring/broadcast.rs`),
//! and the guard is over that copy: never over a slot the sender may be rewriting.
//!
//! # Segment layout
//! `[Header | BroadcastControl | Event readable | Event writable | pad to 4 KiB | slots]`. Each
//! slot is a stamp word, a length word and the payload. The control block holds the settings,
//! `tail`, and one reader place (cursor and state, on its own cache lines) per possible
//! receiver, up to [`MAX_READERS`].
//!
//! # Peers and disconnect
//! The sender holds liveness lock 0, receiver place `j` lock `1 + j`. When the sender closes,
//! receivers drain what it sent, then get [`Error::Disconnected`]; when it dies, they drain,
//! then get [`Error::PeerDead`]. A receiver that closes frees its place at once. One that dies
//! keeps its place until a `Block` sender, blocked behind it, finds its lock free (once per
//! liveness interval) and detaches it, or a new receiver takes the place. The sender gets
//! [`Error::Disconnected`] while receivers joined and none is attached now (a receiver joining
//! again lets it send again).
//!
//! # Waking
//! Receivers sleep on one shared event; a publication wakes all of them, and only if the
//! event's waiter count says someone sleeps. A `Block` sender sleeps on the other event, which
//! each receiver's release notifies (again only if it sleeps); `Overwrite` receivers skip that.

use std::ops::Range;

use super::flavor::{self, Parts, Role};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ring::broadcast::{self as ring, BroadcastControl, Consumer, Producer, Watcher};
use crate::segment::{HeaderSnapshot, RingKind};

pub use crate::ring::broadcast::{Overflow, MAX_READERS};

/// The broadcast ring kind (a marker type: `broadcast::Sender` is `Sender<Broadcast>`).
#[derive(Debug, Clone, Copy)]
pub struct Broadcast;

/// The sending handle of a shared-memory broadcast channel (one per channel).
pub type Sender = super::Sender<Broadcast>;
/// A receiving handle of a shared-memory broadcast channel: it sees every message.
pub type Receiver = super::Receiver<Broadcast>;
/// A slot inside the segment, from [`Sender::reserve`](super::Sender::reserve); dropped
/// without a commit, nothing is sent.
pub type SendSlot<'a> = super::SendSlot<'a, Broadcast>;
/// A received message, from [`Receiver::recv`](super::Receiver::recv): borrowed from the
/// segment (`Block`) or from the receiver's validated copy (`Overwrite`).
pub type RecvGuard<'a> = super::RecvGuard<'a, Broadcast>;
/// A batch of messages being staged: see [`Sender::batch`](super::Sender::batch).
pub type SendBatch<'a> = super::SendBatch<'a, Broadcast>;
/// Room for one message of a [`SendBatch`].
pub type BatchSlot<'b, 'a> = super::BatchSlot<'b, 'a, Broadcast>;
/// Messages received at once: see [`Receiver::recv_batch`](super::Receiver::recv_batch).
pub type RecvBatch<'a> = super::RecvBatch<'a, Broadcast>;

impl flavor::Flavor for Broadcast {
    const KIND: RingKind = RingKind::Broadcast;
    const ONE_PER_SIDE: bool = false;
    const ONE_SENDER: bool = true;
    type Control = BroadcastControl;
    type Producer = Producer;
    type Consumer = Consumer;

    fn new_control(cfg: &Config) -> BroadcastControl {
        // `geometry` validated the history against the slot count before this.
        BroadcastControl::new(cfg.overflow, cfg.history)
    }

    fn geometry(cfg: &Config) -> Result<(u64, u64)> {
        let slots = cfg.capacity_slots()?;
        let slot_size = cfg.checked_slot_size()?;
        cfg.reader_maximum()?;
        cfg.broadcast_settings(slots)?;
        ring::validate_geometry(slots, slot_size)?;
        #[cfg(shmring_loom)]
        if cfg.max_receivers as usize > ring::LOOM_READERS {
            return Err(Error::InvalidConfig(format!(
                "loom models have {} reader places",
                ring::LOOM_READERS
            )));
        }
        Ok((slots, slot_size))
    }

    fn maxima(cfg: &Config) -> Result<(u32, u32)> {
        Ok((1, cfg.reader_maximum()?))
    }

    fn body_len(slots: u64, slot_size: u64) -> Result<u64> {
        ring::validate_geometry(slots, slot_size)?;
        Ok(ring::data_len(slots, slot_size))
    }

    unsafe fn init_body(_: Parts<BroadcastControl>) {
        // A zeroed body is an empty ring: every stamp 0, "never written".
    }

    fn places(snap: &HeaderSnapshot, role: Role) -> Result<Range<usize>> {
        let (s, r) = (snap.max_senders, snap.max_receivers);
        if s != 1 || !(1..=MAX_READERS).contains(&r) {
            return Err(Error::Corrupted(
                "broadcast sender maximum is not 1 or receiver maximum outside 1..=1024",
            ));
        }
        Ok(match role {
            Role::Sender => 0..1,
            Role::Receiver => ring::READER_BASE..ring::READER_BASE + r as usize,
        })
    }

    fn counted(ctrl: &BroadcastControl, role: Role, _ever_attached: bool) -> u32 {
        match role {
            Role::Sender => ctrl.senders(),
            Role::Receiver => ctrl.receivers(),
        }
    }

    fn join(ctrl: &BroadcastControl, role: Role) {
        // A receiver is counted in when it activates its place (`End::clear_predecessor`).
        if role == Role::Sender {
            ctrl.join_sender();
        }
    }

    fn leave(ctrl: &BroadcastControl, role: Role) {
        // A receiver is counted out when it frees its place (`End::close`).
        if role == Role::Sender {
            ctrl.leave_sender();
        }
    }

    unsafe fn producer(parts: Parts<BroadcastControl>, _index: usize) -> Result<Producer> {
        // SAFETY: forwarded from this function's contract; the slots fill the body whose
        // geometry `body_len` validated.
        unsafe { Producer::attach(parts.ctrl, parts.body, parts.capacity, parts.slot_size) }
    }

    unsafe fn consumer(parts: Parts<BroadcastControl>, index: usize) -> Result<Consumer> {
        let place = index
            .checked_sub(ring::READER_BASE)
            .ok_or(Error::Corrupted(
                "broadcast reader index below the reader places",
            ))?;
        // SAFETY: as in `producer`.
        unsafe {
            Consumer::attach(
                parts.ctrl,
                parts.body,
                parts.capacity,
                parts.slot_size,
                place,
            )
        }
    }
}

impl flavor::Grant for ring::Grant {
    #[inline]
    fn capacity(&self) -> usize {
        ring::Grant::capacity(self)
    }
}

impl flavor::Frame for ring::Frame {
    #[inline]
    fn len(&self) -> usize {
        ring::Frame::len(self)
    }
}

impl flavor::ProducerEnd for Producer {
    type Grant = ring::Grant;
    const WAKE_ON_FULL: bool = false;
    const PASS_ON: bool = false;
    const WAKE_ALL: bool = true;
    #[inline(always)]
    fn try_reserve(&mut self, len: usize) -> Result<ring::Grant> {
        Producer::try_reserve(self, len)
    }
    #[inline]
    fn payload(&self, grant: &ring::Grant) -> *mut u8 {
        Producer::payload(self, grant)
    }
    #[inline(always)]
    fn commit(&mut self, grant: ring::Grant, len: usize) {
        Producer::commit(self, grant, len)
    }
    fn abandon(&mut self, grant: ring::Grant) {
        Producer::abandon(self, grant)
    }
    #[inline]
    fn begin_batch(&mut self) {
        Producer::begin_batch(self)
    }
    #[inline]
    fn stage(&mut self, grant: ring::Grant, len: usize) {
        Producer::stage(self, grant, len)
    }
    #[inline]
    fn flush(&mut self) -> bool {
        Producer::flush(self)
    }
    fn discard(&mut self) {
        Producer::discard(self)
    }
    fn room(&self) -> bool {
        Producer::room(self)
    }
}

impl flavor::ConsumerEnd for Consumer {
    type Frame = ring::Frame;
    const WAKE_ON_EMPTY: bool = false;
    const PASS_ON: bool = false;
    #[inline(always)]
    fn try_peek(&mut self) -> Result<ring::Frame> {
        Consumer::try_peek(self)
    }
    #[inline]
    fn payload(&self, frame: &ring::Frame) -> *const u8 {
        Consumer::payload(self, frame)
    }
    #[inline(always)]
    fn release(&mut self, frame: ring::Frame) {
        Consumer::release(self, frame)
    }
    #[inline]
    fn take(&mut self, frame: ring::Frame) {
        Consumer::take(self, frame)
    }
    #[inline]
    fn flush_taken(&mut self) -> bool {
        Consumer::flush_taken(self)
    }
    fn more(&self) -> bool {
        Consumer::more(self)
    }
    #[inline]
    fn freed_skips(&mut self) -> bool {
        false
    }
    fn defer(&mut self, e: Error) {
        Consumer::defer(self, e)
    }
    #[inline]
    fn producer_may_wait(&self) -> bool {
        self.writer_may_wait()
    }
}

impl flavor::End for Producer {
    type Watcher = Watcher;
    fn watcher(&self) -> Watcher {
        Producer::watcher(self)
    }
    fn max_message(&self) -> usize {
        Producer::max_message(self)
    }
    /// Detaches dead receivers that hold a `Block` sender back (once per liveness slice of
    /// the blocked sender).
    fn recover(w: Watcher, alive: &mut dyn FnMut(bool, usize) -> Result<bool>) -> Result<bool> {
        w.detach_dead(&mut |index| alive(false, index))
    }
    fn clear_predecessor(
        &mut self,
        _alive: &mut dyn FnMut(bool, usize) -> Result<bool>,
    ) -> Result<(usize, bool)> {
        // `Producer::attach` already continued after the last complete message.
        Ok((0, true))
    }
    fn close(&mut self) {}
}

impl flavor::End for Consumer {
    type Watcher = ();
    fn watcher(&self) {}
    fn max_message(&self) -> usize {
        Consumer::max_message(self)
    }
    fn recover((): (), _alive: &mut dyn FnMut(bool, usize) -> Result<bool>) -> Result<bool> {
        // A reader holds nothing the sender needs; a dead sender is `PeerDead` (the half's
        // liveness check).
        Ok(false)
    }
    fn clear_predecessor(
        &mut self,
        _alive: &mut dyn FnMut(bool, usize) -> Result<bool>,
    ) -> Result<(usize, bool)> {
        // We hold the place's lock: a previous holder is dead. Take the place over and join.
        self.activate()?;
        Ok((0, true))
    }
    fn close(&mut self) {
        Consumer::close(self)
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;
    use crate::sync::Wait;
    use std::time::Duration;

    fn name(tag: &str) -> String {
        format!("t-bcast-{tag}-{}", std::process::id())
    }

    #[test]
    fn every_form_over_a_named_segment() {
        for wait in [Wait::Futex, Wait::Semaphore, Wait::Spin] {
            for policy in [Overflow::Block, Overflow::Overwrite] {
                let n = name(&format!("forms-{wait:?}-{policy:?}"));
                let cfg = Config::default()
                    .capacity(4)
                    .slot_size(32)
                    .wait(wait)
                    .overflow(policy);
                let mut tx = Sender::create(&n, cfg).unwrap();
                let mut a = Receiver::open(&n).unwrap();
                let mut b = Receiver::open(&n).unwrap();
                assert_eq!(tx.peers(), (1, 2));
                assert_eq!(a.max_message_size(), 32);
                tx.send(b"one").unwrap();
                drop(tx.reserve(8).unwrap()); // given up: nothing sent
                let mut slot = tx.reserve(8).unwrap();
                slot[..3].copy_from_slice(b"two");
                slot.commit(3);
                tx.send_pod(&7u64).unwrap();
                for rx in [&mut a, &mut b] {
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
                }
                assert!(matches!(
                    tx.send(&[0; 33]),
                    Err(Error::TooLarge { size: 33, max: 32 })
                ));
                for _ in 0..4 {
                    tx.try_send(b"x").unwrap();
                }
                match policy {
                    Overflow::Block => {
                        assert!(matches!(tx.try_send(b"x"), Err(Error::Full)));
                        assert!(matches!(
                            tx.send_timeout(b"x", Duration::from_millis(5)),
                            Err(Error::Timeout)
                        ));
                    }
                    Overflow::Overwrite => tx.try_send(b"y").unwrap(),
                }
                drop(tx);
                for rx in [&mut a, &mut b] {
                    if policy == Overflow::Overwrite {
                        let r = rx.recv().map(|g| g.to_vec());
                        assert!(matches!(r, Err(Error::Lagged { missed: 2 })), "{r:?}");
                        for _ in 0..2 {
                            assert_eq!(&*rx.recv().unwrap(), b"x");
                        }
                        assert_eq!(&*rx.recv().unwrap(), b"y");
                    } else {
                        for _ in 0..4 {
                            assert_eq!(&*rx.recv().unwrap(), b"x");
                        }
                    }
                    assert!(matches!(rx.recv(), Err(Error::Disconnected)));
                }
            }
        }
    }

    #[test]
    fn anonymous_segment_and_batches() {
        let mut tx = Sender::create_anonymous(Config::default().capacity(64)).unwrap();
        let fd = tx.segment_fd().try_clone_to_owned().unwrap();
        let mut rx = Receiver::from_fd(fd, Config::default()).unwrap();
        let fd = tx.segment_fd().try_clone_to_owned().unwrap();
        let mut rx2 = Receiver::from_fd(fd, Config::default()).unwrap();
        let mut batch = tx.batch();
        for i in 0..10u8 {
            batch.push(&[i; 4]).unwrap();
        }
        assert_eq!(batch.finish(), 10);
        for r in [&mut rx, &mut rx2] {
            let got = r.recv_batch(64).unwrap();
            assert_eq!(got.len(), 10);
            assert_eq!(got.get(9), Some(&[9u8; 4][..]));
        }
    }

    #[test]
    fn the_maximum_of_receivers_is_enforced_and_a_second_sender_refused() {
        let n = name("max");
        let _tx = Sender::create(&n, Config::default().max_receivers(2)).unwrap();
        let _a = Receiver::open(&n).unwrap();
        let b = Receiver::open(&n).unwrap();
        assert!(matches!(
            Receiver::open(&n),
            Err(Error::TooManyPeers { max: 2, .. })
        ));
        drop(b);
        let _c = Receiver::open(&n).unwrap(); // a freed place is taken again
        assert!(matches!(
            Sender::open(&n),
            Err(Error::InUse { side: "sender", .. })
        ));
        assert!(crate::mpmc::Receiver::open(&n).is_err());
        assert!(matches!(
            Sender::create(&name("cfg"), Config::default().max_receivers(1025)),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            Sender::create(&name("hist"), Config::default().capacity(8).history(8)),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn a_thousand_and_twenty_four_receivers() {
        let n = name("1024");
        let mut tx = Sender::create(
            &n,
            Config::default()
                .capacity(8)
                .slot_size(8)
                .max_receivers(1024),
        )
        .unwrap();
        let mut rxs: Vec<_> = (0..1024).map(|_| Receiver::open(&n).unwrap()).collect();
        assert!(Receiver::open(&n).is_err());
        assert_eq!(tx.peers(), (1, 1024));
        tx.send(b"all").unwrap();
        for rx in &mut rxs {
            assert_eq!(&*rx.try_recv().unwrap(), b"all");
        }
    }

    /// Blocking receivers in threads; the sender waits for the slowest.
    #[test]
    fn blocking_threads_each_see_the_whole_sequence() {
        for wait in [Wait::Futex, Wait::Semaphore] {
            let n = name(&format!("threads-{wait:?}"));
            let cfg = Config::default().capacity(8).slot_size(16).wait(wait);
            let mut tx = Sender::create(&n, cfg).unwrap();
            const N: u64 = 20_000;
            std::thread::scope(|s| {
                let readers: Vec<_> = (0..3)
                    .map(|_| {
                        let mut rx = Receiver::open(&n).unwrap();
                        s.spawn(move || {
                            for want in 0..N {
                                assert_eq!(rx.recv_pod::<u64>().unwrap(), want);
                            }
                            assert!(matches!(rx.recv(), Err(Error::Disconnected)));
                        })
                    })
                    .collect();
                for v in 0..N {
                    tx.send_pod(&v).unwrap();
                }
                drop(tx);
                for r in readers {
                    r.join().unwrap();
                }
            });
        }
    }

    /// `Overwrite` with readers in threads: every message a reader returns is intact and in
    /// order, and what it skipped is exactly what `Lagged` said.
    #[test]
    fn overwrite_readers_see_intact_messages_and_account_for_every_skip() {
        let n = name("overwrite-threads");
        let cfg = Config::default()
            .capacity(8)
            .slot_size(64)
            .overflow(Overflow::Overwrite);
        let mut tx = Sender::create(&n, cfg).unwrap();
        const N: u64 = 200_000;
        std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let mut rx = Receiver::open(&n).unwrap();
                    s.spawn(move || {
                        let (mut next, mut got, mut lost) = (0u64, 0u64, 0u64);
                        loop {
                            match rx.recv_pod::<[u64; 8]>() {
                                Ok(m) => {
                                    assert!(m.iter().all(|w| *w == m[0]), "torn: {m:?}");
                                    assert_eq!(m[0], next, "out of order");
                                    next += 1;
                                    got += 1;
                                }
                                Err(Error::Lagged { missed }) => {
                                    next += missed;
                                    lost += missed;
                                }
                                Err(Error::Disconnected) => break,
                                Err(e) => panic!("{e}"),
                            }
                        }
                        assert_eq!(next, N);
                        (got, lost)
                    })
                })
                .collect();
            for v in 0..N {
                tx.send_pod(&[v; 8]).unwrap();
            }
            drop(tx);
            for r in readers {
                let (got, lost) = r.join().unwrap();
                assert_eq!(got + lost, N);
            }
        });
    }

    /// Readers join (with history) and leave over and over while the writer sends: in `Block`
    /// mode every reader gets a gap-free, intact run of messages from where it joined (the
    /// join handshake never lets the writer overwrite what a joiner was told it may read), and
    /// one reader that stays sees the whole sequence.
    #[test]
    fn block_readers_joining_and_leaving_get_gap_free_runs() {
        let n = name("churn");
        let cfg = Config::default().capacity(8).slot_size(64).history(5);
        let mut tx = Sender::create(&n, cfg).unwrap();
        let mut stay = Receiver::open(&n).unwrap();
        const N: u64 = 50_000;
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let done = &done;
            let n = &n;
            let churners: Vec<_> = (0..2u64)
                .map(|id| {
                    s.spawn(move || {
                        let (mut joins, mut seen) = (0u64, 0u64);
                        while !done.load(std::sync::atomic::Ordering::Relaxed) {
                            let mut rx = Receiver::open(n).unwrap();
                            joins += 1;
                            let mut prev: Option<u64> = None;
                            for _ in 0..(1 + (joins * 7 + id) % 40) {
                                match rx.recv_pod_timeout::<[u64; 8]>(Duration::from_millis(50)) {
                                    Ok(m) => {
                                        assert!(m.iter().all(|w| *w == m[0]), "torn: {m:?}");
                                        if let Some(p) = prev {
                                            assert_eq!(m[0], p + 1, "gap after a join");
                                        }
                                        prev = Some(m[0]);
                                        seen += 1;
                                    }
                                    Err(Error::Timeout | Error::Disconnected) => break,
                                    Err(e) => panic!("churning reader: {e}"),
                                }
                            }
                        }
                        (joins, seen)
                    })
                })
                .collect();
            let all = s.spawn(move || {
                for want in 0..N {
                    assert_eq!(stay.recv_pod::<[u64; 8]>().unwrap()[0], want);
                }
            });
            for v in 0..N {
                if let Err(e) = tx.send_pod_timeout(&[v; 8], Duration::from_secs(5)) {
                    panic!("send {v}: {e}; peers {:?}", tx.peers());
                }
            }
            all.join().unwrap();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            for c in churners {
                let (joins, seen) = c.join().unwrap();
                assert!(joins > 1 && seen > 0, "{joins} joins, {seen} seen");
            }
        });
    }
}
