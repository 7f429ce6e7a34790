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
//! One event per direction, shared by every sleeper of that side. Each message wakes one
//! receiver, each freed slot one sender; closing wakes everyone. Because a position is claimed
//! before it is filled, a wake can reach a receiver while the slot at `head` is still being
//! written by a slower sender (the message it was woken for sits behind it): so a side that has
//! just claimed a slot passes a wake on when the next slot is ready too
//! (`Event::notify_one_if`), and no ready message waits for a sleeper's slice to end. A copying
//! `send` or `recv_into` passes its wake on after its commit or release, under the same fence
//! as its own wake (`Event::notify_one_and_one_if`); a side whose header admits a single
//! participant has nobody to pass a wake to, and skips it.

use std::ops::Range;
use std::ptr::NonNull;
use std::time::Duration;

use super::flavor::{self, Parts, Role};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ring::layout::align_up;
use crate::ring::mpmc::{self as ring, Consumer, MpmcControl, Producer, Watcher};
use crate::segment::{HeaderSnapshot, RingKind};
use crate::sync::atomic::AtomicU64;

/// The MPMC ring kind (a marker type: `mpmc::Sender` is `Sender<Mpmc>`).
#[derive(Debug, Clone, Copy)]
pub struct Mpmc;

/// The most senders (and, separately, receivers) a segment may allow.
pub use crate::ring::mpmc::MAX_PEERS;

/// A sending handle of a shared-memory MPMC channel.
pub type Sender = super::Sender<Mpmc>;
/// A receiving handle of a shared-memory MPMC channel.
pub type Receiver = super::Receiver<Mpmc>;
/// A slot inside the segment, from [`Sender::reserve`](super::Sender::reserve); dropped
/// without a commit, receivers skip it.
pub type SendSlot<'a> = super::SendSlot<'a, Mpmc>;
/// A received message borrowed from the segment, from [`Receiver::recv`](super::Receiver::recv).
pub type RecvGuard<'a> = super::RecvGuard<'a, Mpmc>;
/// A batch of messages being staged: see [`Sender::batch`](super::Sender::batch).
pub type SendBatch<'a> = super::SendBatch<'a, Mpmc>;
/// Room for one message of a [`SendBatch`].
pub type BatchSlot<'b, 'a> = super::BatchSlot<'b, 'a, Mpmc>;
/// Messages received at once: see [`Receiver::recv_batch`](super::Receiver::recv_batch).
pub type RecvBatch<'a> = super::RecvBatch<'a, Mpmc>;

/// Bytes of the stamp array before the slots, in the body.
fn stamps_len(slots: u64) -> u64 {
    align_up((slots * 8) as usize, 128) as u64
}

/// The stamp array and the slots inside a body.
fn split(parts: &Parts<MpmcControl>) -> (NonNull<AtomicU64>, NonNull<u8>) {
    let stamps = parts.body.cast();
    // SAFETY: `body_len` validated the geometry and the body holds `stamps_len + data_len`
    // bytes (checked by `Segment::at`), so the slots start inside it.
    let data = unsafe { parts.body.add(stamps_len(parts.capacity) as usize) };
    (stamps, data)
}

impl flavor::Flavor for Mpmc {
    const KIND: RingKind = RingKind::Mpmc;
    const ONE_PER_SIDE: bool = false;
    type Control = MpmcControl;
    type Producer = Producer;
    type Consumer = Consumer;

    fn new_control(_: &Config) -> MpmcControl {
        MpmcControl::new()
    }

    fn geometry(cfg: &Config) -> Result<(u64, u64)> {
        let slots = cfg.capacity_slots()?;
        let slot_size = cfg.checked_slot_size()?;
        cfg.peer_maxima()?;
        ring::validate_geometry(slots, slot_size)?;
        Ok((slots, slot_size))
    }

    fn maxima(cfg: &Config) -> Result<(u32, u32)> {
        cfg.peer_maxima()
    }

    fn body_len(slots: u64, slot_size: u64) -> Result<u64> {
        ring::validate_geometry(slots, slot_size)?;
        Ok(stamps_len(slots) + ring::data_len(slots, slot_size))
    }

    unsafe fn init_body(parts: Parts<MpmcControl>) {
        let (stamps, _) = split(&parts);
        // SAFETY: the stamp array lies at the start of the body (per this function's contract,
        // in a fresh mapping nobody else uses yet).
        unsafe { ring::init_stamps(stamps, parts.capacity) };
    }

    fn places(snap: &HeaderSnapshot, role: Role) -> Result<Range<usize>> {
        let (s, r) = (snap.max_senders, snap.max_receivers);
        if !(1..=MAX_PEERS).contains(&s) || !(1..=MAX_PEERS).contains(&r) {
            return Err(Error::Corrupted(
                "MPMC sender or receiver maximum outside 1..=1024",
            ));
        }
        let (s, r) = (s as usize, r as usize);
        Ok(match role {
            Role::Sender => 0..s,
            Role::Receiver => s..s + r,
        })
    }

    fn counted(ctrl: &MpmcControl, role: Role, _ever_attached: bool) -> u32 {
        match role {
            Role::Sender => ctrl.senders(),
            Role::Receiver => ctrl.receivers(),
        }
    }

    fn join(ctrl: &MpmcControl, role: Role) {
        match role {
            Role::Sender => ctrl.join_sender(),
            Role::Receiver => ctrl.join_receiver(),
        }
    }

    fn leave(ctrl: &MpmcControl, role: Role) {
        match role {
            Role::Sender => ctrl.leave_sender(),
            Role::Receiver => ctrl.leave_receiver(),
        }
    }

    unsafe fn producer(parts: Parts<MpmcControl>, index: usize) -> Result<Producer> {
        let (stamps, data) = split(&parts);
        // SAFETY: forwarded from this function's contract; stamps and slots lie in the body
        // whose geometry `body_len` validated.
        let mut p =
            unsafe { Producer::attach(parts.ctrl, stamps, data, parts.capacity, parts.slot_size)? };
        p.set_owner(index as u16);
        Ok(p)
    }

    unsafe fn consumer(parts: Parts<MpmcControl>, index: usize) -> Result<Consumer> {
        let (stamps, data) = split(&parts);
        // SAFETY: as in `producer`.
        let mut c =
            unsafe { Consumer::attach(parts.ctrl, stamps, data, parts.capacity, parts.slot_size)? };
        c.set_owner(index as u16);
        Ok(c)
    }
}

flavor::forward_ends!(ring, wake_on_full_or_empty = false, pass_on = true);

/// Frees the slot a dead holder blocks us with (`ring::mpmc` docs, "Windows, and how each is
/// recovered"), if `alive` says every participant that may hold it is dead.
fn recover(
    unblock: impl FnOnce(ring::Alive<'_>) -> Result<ring::Unblock>,
    alive: &mut dyn FnMut(bool, usize) -> Result<bool>,
) -> Result<bool> {
    Ok(unblock(&mut |p, i| alive(p, usize::from(i)))? == ring::Unblock::Cleared)
}

/// How long a newcomer waits for a live participant that shares its dead predecessor's
/// intent (a loser of the same CAS, inside its own call) to move on before it gives the place
/// back and tries the next one.
const PREDECESSOR_WAIT: Duration = Duration::from_millis(20);

/// Clears what the dead previous holder of `owner`'s place left. A claim its intent names
/// stays ambiguous while another live participant names the same position (it lost that CAS
/// and is still inside its call, for a few instructions, or is stopped there): wait a little
/// for it to move on; if it does not, the place is not settled, and the newcomer takes
/// another, since its own first claim would overwrite the only record of the dead claim.
fn clear_predecessor(
    w: Watcher,
    owner: u16,
    alive: &mut dyn FnMut(bool, usize) -> Result<bool>,
) -> Result<(usize, bool)> {
    let start = std::time::Instant::now();
    let mut freed = 0;
    for round in 0.. {
        let (cleared, pending) = w.clear_owned_by(owner, &mut |p, i| alive(p, usize::from(i)))?;
        freed += cleared;
        if !pending {
            break;
        }
        // Under loom a few rounds stand for the wait (a model's clock does not advance).
        if cfg!(shmring_loom) && round == 2 || start.elapsed() > PREDECESSOR_WAIT {
            return Ok((freed, false));
        }
        crate::sync::hint::yield_now();
    }
    Ok((freed, true))
}

impl flavor::End for Producer {
    type Watcher = Watcher;
    fn watcher(&self) -> Watcher {
        Producer::watcher(self)
    }
    fn max_message(&self) -> usize {
        Producer::max_message(self)
    }
    fn recover(w: Watcher, alive: &mut dyn FnMut(bool, usize) -> Result<bool>) -> Result<bool> {
        recover(|a| w.unblock_producer(a), alive)
    }
    fn clear_predecessor(
        &mut self,
        alive: &mut dyn FnMut(bool, usize) -> Result<bool>,
    ) -> Result<(usize, bool)> {
        clear_predecessor(Producer::watcher(self), self.owner(), alive)
    }
    fn close(&mut self) {}
}

impl flavor::End for Consumer {
    type Watcher = Watcher;
    fn watcher(&self) -> Watcher {
        Consumer::watcher(self)
    }
    fn max_message(&self) -> usize {
        Consumer::max_message(self)
    }
    fn recover(w: Watcher, alive: &mut dyn FnMut(bool, usize) -> Result<bool>) -> Result<bool> {
        recover(|a| w.unblock_consumer(a), alive)
    }
    fn clear_predecessor(
        &mut self,
        alive: &mut dyn FnMut(bool, usize) -> Result<bool>,
    ) -> Result<(usize, bool)> {
        clear_predecessor(Consumer::watcher(self), self.owner(), alive)
    }
    fn close(&mut self) {}
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;
    use crate::sync::Wait;

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
