//! Ring + segment + wait: the shared-memory channel halves.
//!
//! [`spsc`] puts the byte ring of [`crate::ring::spsc`] into a named segment, [`mpmc`] the slot
//! ring of [`crate::ring::mpmc`]. This module holds what every half needs whatever its ring:
//! the create/open flow with its header checks, the events, the wait strategy, and the peer
//! check.

/// Implements the Channel traits for a pair of halves by forwarding to their inherent
/// methods of the same names (the shm halves have richer inherent APIs: zero copy, pods).
macro_rules! channel_traits {
    ($sender:ident, $receiver:ident) => {
        impl crate::channel::Sender for $sender {
            fn send(&mut self, msg: &[u8]) -> Result<()> {
                $sender::send(self, msg)
            }
            fn try_send(&mut self, msg: &[u8]) -> Result<()> {
                $sender::try_send(self, msg)
            }
            fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
                $sender::send_timeout(self, msg, timeout)
            }
            fn max_message_size(&self) -> usize {
                $sender::max_message_size(self)
            }
        }

        impl crate::channel::Receiver for $receiver {
            fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
                $receiver::recv_into(self, buf)
            }
            fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
                $receiver::try_recv_into(self, buf)
            }
            fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
                $receiver::recv_into_timeout(self, buf, timeout)
            }
            fn max_message_size(&self) -> usize {
                $receiver::max_message_size(self)
            }
        }
    };
}
use channel_traits;

pub mod mpmc;
pub mod spsc;

use std::ptr::NonNull;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::segment::{HeaderSnapshot, RingKind, Segment};
use crate::sync::wait::{Event, WaitPolicy};
use crate::sync::Wait;

/// How a half comes to its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attach {
    Create,
    Open,
    CreateOrOpen,
}

/// What a half holds besides its ring end: the mapping, how to wait, and who its peer is.
#[derive(Debug)]
struct Link {
    seg: Segment,
    wait: Wait,
    policy: WaitPolicy,
    /// Index of the peer's side in the header.
    peer: usize,
}

impl Link {
    /// `Err(PeerDead)` if a peer attached once and no live process holds its side any more.
    fn check_peer(&self) -> Result<()> {
        if self.seg.side_ever_attached(self.peer) && !self.seg.side_alive(self.peer)? {
            return Err(Error::PeerDead);
        }
        Ok(())
    }
}

/// The instant `timeout` from now (`None` if that is beyond what `Instant` can hold: forever).
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A segment that was created or opened and holds a ring of the kind asked for.
struct Attached {
    seg: Segment,
    /// True if this call created it (the caller publishes it once its side is taken).
    created: bool,
    /// The header, read once after `init`.
    snap: HeaderSnapshot,
    /// The creator's wait strategy, validated.
    wait: Wait,
}

/// Creates and/or opens the segment `name` (per `how`; `create` makes a fresh one, laid out and
/// not yet published), then checks that it holds a `kind` ring with a known wait strategy.
/// The caller validates the ring's own fields against its layout.
fn attach_segment(
    name: &str,
    cfg: &Config,
    how: Attach,
    kind: RingKind,
    create: impl Fn(&str, &Config) -> Result<Segment>,
) -> Result<Attached> {
    let (seg, created) = match how {
        Attach::Create => (create(name, cfg)?, true),
        Attach::Open => (Segment::open(name, cfg.open_timeout, &cfg.trust())?, false),
        Attach::CreateOrOpen => {
            let mut tries = 0;
            loop {
                match create(name, cfg) {
                    Ok(seg) => break (seg, true),
                    Err(e) if e.io_kind() == Some(std::io::ErrorKind::AlreadyExists) => {}
                    Err(e) => return Err(e),
                }
                match Segment::open(name, cfg.open_timeout, &cfg.trust()) {
                    Ok(seg) => break (seg, false),
                    // Its creator removed it between our two calls: try again, a few times.
                    Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) && tries < 8 => {
                        tries += 1
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    };
    Attached::check(seg, created, kind)
}

impl Attached {
    /// Checks that `seg` holds a `kind` ring with a known wait strategy.
    fn check(seg: Segment, created: bool, kind: RingKind) -> Result<Attached> {
        let snap = seg.header().snapshot();
        let found = RingKind::from_raw(snap.ring_kind)
            .ok_or(Error::Corrupted("unknown ring kind in header"))?;
        if found != kind {
            return Err(Error::Incompatible(format!(
                "{} holds an {} ring; open it with shmring::{}",
                seg.name(),
                found.as_str(),
                found.as_str()
            )));
        }
        let wait =
            Wait::from_raw(snap.wait).ok_or(Error::Corrupted("unknown wait strategy in header"))?;
        Ok(Attached {
            seg,
            created,
            snap,
            wait,
        })
    }
}

/// The two events of a channel: the receivers sleep on `READABLE`, the senders on `WRITABLE`.
type Events = [CachePadded<Event>; 2];
const READABLE: usize = 0;
const WRITABLE: usize = 1;

/// Writes fresh events at `at` (inside a segment being created) and prepares them for `wait`.
///
/// # Safety
/// `at` is valid for writes of `size_of::<Events>()` bytes, aligned for `Events`, and no other
/// process uses the memory before the segment is published.
unsafe fn init_events(at: NonNull<u8>, wait: Wait) -> Result<()> {
    let events = at.cast::<Events>();
    // SAFETY: per the contract; writing a whole value initialises the memory without forming
    // a reference to what it held before.
    unsafe {
        events.as_ptr().write([
            CachePadded::new(Event::new()),
            CachePadded::new(Event::new()),
        ])
    };
    // SAFETY: just initialised above; it stays at this address for the life of the segment and
    // nobody else uses it yet (contract).
    let events = unsafe { events.as_ref() };
    for e in events {
        // SAFETY: as above: once, before sharing, at its final address.
        unsafe { e.prepare(wait)? };
    }
    Ok(())
}

/// The events of a placed half.
///
/// # Safety
/// `events` points at initialised `Events` inside a mapping that outlives the returned borrow.
unsafe fn event<'a>(events: NonNull<Events>, which: usize) -> &'a Event {
    // SAFETY: per the contract; `Event` holds only atomics and a process-shared semaphore,
    // which may be shared with other processes.
    unsafe { &events.as_ref()[which] }
}
