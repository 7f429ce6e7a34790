//! The shared-memory SPSC channel: one [`Sender`] process, one [`Receiver`] process, a named
//! segment between them holding the variable-length byte ring of `ring::spsc`.
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
//! Exactly one live process may hold the sender (and one the receiver) of a segment at a time;
//! a second gets [`Error::InUse`](crate::Error::InUse). The body is the ring's data bytes; the
//! largest message is the capacity minus 16 bytes.
//!
//! # Crash semantics
//! A sender that dies between publishing a frame and storing `tail` is stepped over by its
//! successor. A receiver that dies holding a guard never stored its `head`, so its successor
//! gets that message again: **at least once** for the message in the hands of a process that
//! died.
//!
//! A [`SendSlot`] cannot be forged or committed twice: it is made only by `reserve`, holds a
//! grant that is neither `Copy` nor constructible outside the crate, and `commit` consumes it.
//!
//! ```compile_fail
//! # let name = format!("doc-forge-{}", std::process::id());
//! let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default()).unwrap();
//! let slot = tx.reserve(8).unwrap();
//! let copy = slot;           // moves: there is no second handle on the reservation
//! slot.commit(8);            // error[E0382]: use of moved value
//! ```
//!
//! ```compile_fail
//! // The ring layer (and its `Grant`) is private: nothing can be built by hand.
//! use shmring::ring::spsc::Grant;
//! ```

use std::ops::Range;

use super::flavor::{self, Parts, Role};
use crate::config::Config;
use crate::error::Result;
use crate::ring::spsc::{self as ring, Consumer, Producer, SpscControl};
use crate::segment::{HeaderSnapshot, RingKind};

/// The SPSC ring kind (a marker type: `spsc::Sender` is `Sender<Spsc>`).
#[derive(Debug, Clone, Copy)]
pub struct Spsc;

/// The sending half of a shared-memory SPSC channel.
pub type Sender = super::Sender<Spsc>;
/// The receiving half of a shared-memory SPSC channel.
pub type Receiver = super::Receiver<Spsc>;
/// Room for one message inside the segment, from [`Sender::reserve`](super::Sender::reserve).
pub type SendSlot<'a> = super::SendSlot<'a, Spsc>;
/// A received message borrowed from the segment, from [`Receiver::recv`](super::Receiver::recv).
pub type RecvGuard<'a> = super::RecvGuard<'a, Spsc>;
/// A batch of messages being staged: see [`Sender::batch`](super::Sender::batch).
pub type SendBatch<'a> = super::SendBatch<'a, Spsc>;
/// Room for one message of a [`SendBatch`].
pub type BatchSlot<'b, 'a> = super::BatchSlot<'b, 'a, Spsc>;
/// Messages received at once: see [`Receiver::recv_batch`](super::Receiver::recv_batch).
pub type RecvBatch<'a> = super::RecvBatch<'a, Spsc>;

impl flavor::Flavor for Spsc {
    const KIND: RingKind = RingKind::Spsc;
    const ONE_PER_SIDE: bool = true;
    type Control = SpscControl;
    type Producer = Producer;
    type Consumer = Consumer;

    fn new_control(_: &Config) -> SpscControl {
        SpscControl::new()
    }

    fn geometry(cfg: &Config) -> Result<(u64, u64)> {
        let cap = cfg.capacity_bytes()?;
        ring::validate_capacity(cap)?;
        Ok((cap, 0))
    }

    fn maxima(_: &Config) -> Result<(u32, u32)> {
        Ok((0, 0))
    }

    fn body_len(capacity: u64, _slot_size: u64) -> Result<u64> {
        ring::validate_capacity(capacity)?;
        Ok(capacity)
    }

    unsafe fn init_body(_: Parts<SpscControl>) {
        // A fresh segment is zeroed: an empty ring (module docs of `ring::spsc`).
    }

    fn places(_: &HeaderSnapshot, role: Role) -> Result<Range<usize>> {
        let i = role.side();
        Ok(i..i + 1)
    }

    fn counted(ctrl: &SpscControl, role: Role, ever_attached: bool) -> u32 {
        let closed = match role {
            Role::Sender => ctrl.sender_closed(),
            Role::Receiver => ctrl.receiver_closed(),
        };
        u32::from(ever_attached && !closed)
    }

    fn join(_: &SpscControl, _: Role) {}

    fn leave(_: &SpscControl, _: Role) {}

    unsafe fn producer(parts: Parts<SpscControl>, _index: usize) -> Result<Producer> {
        // SAFETY: forwarded from this function's contract (`body` holds `capacity` bytes, page
        // aligned); the side lock makes us the only producer.
        unsafe { Producer::attach(parts.ctrl, parts.body, parts.capacity) }
    }

    unsafe fn consumer(parts: Parts<SpscControl>, _index: usize) -> Result<Consumer> {
        // SAFETY: as in `producer`, for the only consumer.
        unsafe { Consumer::attach(parts.ctrl, parts.body, parts.capacity) }
    }
}

/// Nothing to recover: a dead SPSC peer holds nothing the survivor needs back.
macro_rules! no_recovery {
    () => {
        type Watcher = ();
        fn watcher(&self) {}
        fn recover(_: (), _: &mut dyn FnMut(bool, usize) -> Result<bool>) -> Result<bool> {
            Ok(false)
        }
        fn clear_predecessor(
            &mut self,
            _alive: &mut dyn FnMut(bool, usize) -> Result<bool>,
        ) -> Result<(usize, bool)> {
            Ok((0, true))
        }
        #[inline]
        fn max_message(&self) -> usize {
            Self::max_message(self)
        }
        fn close(&mut self) {
            Self::close(self)
        }
    };
}

flavor::forward_ends!(
    ring,
    wake_on_full_or_empty = true,
    pass_on = false,
    producer_extra = {
        #[inline(always)]
        fn stage_copy(&mut self, msg: &[u8]) -> bool {
            ring::Producer::stage_copy(self, msg)
        }
        #[inline(always)]
        fn stage_copies(&mut self, msgs: &[&[u8]]) -> usize {
            ring::Producer::stage_copies(self, msgs)
        }
    },
    consumer_extra = {
        #[inline(always)]
        fn take_ready(
            &mut self,
            max: usize,
            f: impl FnMut(*const u8, usize),
        ) -> (usize, Option<crate::error::Error>) {
            ring::Consumer::take_ready(self, max, f)
        }
    }
);

impl flavor::End for Producer {
    no_recovery!();
}

impl flavor::End for Consumer {
    no_recovery!();
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::time::Duration;

    #[test]
    fn both_halves_report_the_same_geometry_and_peers() {
        let n = format!("t-spsc-geom-{}", std::process::id());
        let tx = Sender::create(&n, Config::default().capacity(4096)).unwrap();
        assert!(!tx.peer_attached());
        assert_eq!(tx.peers(), (1, 0));
        let rx = Receiver::open(&n).unwrap();
        assert!(tx.peer_attached() && rx.peer_attached());
        assert_eq!(tx.max_message_size(), 4096 - 16);
        assert_eq!(rx.max_message_size(), 4096 - 16);
        assert_eq!(rx.peers(), (1, 1));
        assert!(matches!(
            Receiver::open(&n),
            Err(Error::InUse {
                side: "receiver",
                ..
            })
        ));
        drop(rx);
        assert_eq!(tx.peers(), (1, 0));
    }

    #[test]
    fn dropped_slot_sends_nothing_and_oversized_commit_panics_cleanly() {
        let n = format!("t-spsc-slot-{}", std::process::id());
        let mut tx = Sender::create(&n, Config::default().capacity(4096)).unwrap();
        let mut rx = Receiver::open(&n).unwrap();
        drop(tx.reserve(16).unwrap());
        assert!(matches!(rx.try_recv(), Err(Error::Empty)));
        let slot = tx.reserve(4).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| slot.commit(5)));
        assert!(r.is_err());
        tx.send(b"after").unwrap();
        assert_eq!(&*rx.recv_timeout(Duration::from_secs(1)).unwrap(), b"after");
    }
}
