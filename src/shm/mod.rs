//! Ring + segment + wait: the shared-memory channel halves, written once.
//!
//! [`Sender`] and [`Receiver`] are generic over a [`Flavor`]: the ring kind, which says how
//! its control block and body are laid out and gives the two ring ends. Everything else is
//! here, once, whatever the ring: the create/open flow with its header checks, taking a
//! participant place (a liveness lock), the two events and the wait strategy, the
//! blocking / `try_` / `_timeout` forms, plain-old-data values, the zero-copy slot and guard,
//! close, and noticing a dead peer. [`spsc`], [`mpmc`] and [`broadcast`] are thin
//! instantiations; a ring kind costs a ring file in `ring/`, a flavor file here and a line in
//! `lib.rs`.
//!
//! # Segment layout (every flavor)
//! `[Header | control block | Event readable | Event writable | pad to 4 KiB | body]`. The
//! header's `data_offset` is the body; the flavor lays out the body (SPSC: the data bytes;
//! MPMC: stamps, then slots; broadcast: slots, each with its stamp).
//!
//! # Doorbells
//! Every half can also wait in an event loop: [`Sender::arm`] / [`Receiver::arm`] announce it as
//! a poller on its event and [`Receiver::doorbell`] gives a descriptor that the other side
//! rings, only while someone is armed (see `sync::doorbell`). The async halves
//! (`shmring::tokio`, feature `tokio`) and [`WaitSet`](crate::WaitSet) are built on it.

mod batch;
mod flavor;
mod half;
pub(crate) mod site;

pub mod broadcast;
pub mod mpmc;
pub mod spsc;

pub use batch::{BatchSlot, RecvBatch, SendBatch};
pub(crate) use flavor::Flavor;
#[cfg(shmring_loom)]
pub(crate) use half::heap_site;
pub use half::{Receiver, RecvGuard, SendSlot, Sender};

use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::error::Result;
use crate::sync::semaphore::SemSet;
use crate::sync::wait::Event;

/// The two events of a channel: the receivers sleep on `READABLE`, the senders on `WRITABLE`.
pub(crate) type Events = [CachePadded<Event>; 2];
pub(crate) const READABLE: usize = 0;
pub(crate) const WRITABLE: usize = 1;

/// Writes fresh events at `at` (inside a segment being created), recording `sem` (the set of a
/// [`Wait::Semaphore`] segment) in both.
///
/// # Safety
/// `at` is valid for writes of `size_of::<Events>()` bytes, aligned for `Events`, and no other
/// process uses the memory before the segment is published.
unsafe fn init_events(at: NonNull<u8>, sem: Option<&SemSet>) -> Result<()> {
    let events = at.cast::<Events>();
    // SAFETY: per the contract; writing a whole value initialises the memory without forming
    // a reference to what it held before.
    unsafe {
        events.as_ptr().write([
            CachePadded::new(Event::new()),
            CachePadded::new(Event::new()),
        ])
    };
    // SAFETY: just initialised above; it stays at this address for the life of the segment.
    let events = unsafe { events.as_ref() };
    // Under loom no doorbell is ever bound: no token, no read of /dev/urandom.
    let token = if cfg!(shmring_loom) {
        0
    } else {
        crate::sync::doorbell::new_token()?
    };
    for e in events.iter() {
        e.set_token(token);
    }
    if let Some(set) = sem {
        for (i, e) in events.iter().enumerate() {
            set.record(e.sem_record(), i as u16)?;
        }
    }
    Ok(())
}

/// Byte offset, in a segment holding a `kind` ring, of the semaphore set record (id, then
/// creation time at +8) of the first event: for `inspect::remove`, which reads it from the
/// file.
#[cfg(not(shmring_loom))]
pub(crate) fn sem_record_offset(kind: crate::segment::RingKind) -> u64 {
    use crate::segment::RingKind;
    let events = match kind {
        RingKind::Spsc => half::events_offset::<spsc::Spsc>(),
        RingKind::Mpmc => half::events_offset::<mpmc::Mpmc>(),
        RingKind::Broadcast => half::events_offset::<broadcast::Broadcast>(),
    };
    events + std::mem::offset_of!(Event, sem) as u64
}
