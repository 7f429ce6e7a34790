//! The loom models' one way in: exists only under `--cfg shmring_loom`, never in a normal build.
//!
//! The models in `loom-tests/` drive the production channel halves ([`crate::spsc`],
//! [`crate::mpmc`]) over heap memory laid out exactly as a segment is (header, control block,
//! events, body), so the glue between ring and wait that runs in production is the glue they
//! check. A participant "dies" by releasing its liveness flag without closing its half
//! ([`kill`]), which is what the kernel does to a SIGKILLed process's lock.

use crate::config::Config;
use crate::error::Result;
use crate::shm::site::HeapSite;
use crate::shm::{Flavor, Receiver, Sender};

pub use crate::shm::broadcast::{Broadcast, Overflow};
pub use crate::shm::mpmc::Mpmc;
pub use crate::shm::spsc::Spsc;
pub use crate::sync::atomic;
pub use crate::sync::wait::{Event, WaitPolicy};
pub use crate::Wait;

/// Announces a poller at bit `bit` of `event` (what arming a doorbell does to the event), for
/// the doorbell models: the sockets themselves are not modelled, the mask a notifier returns
/// is what it would ring.
pub fn arm_poller(event: &Event, bit: u32) {
    event.arm_poller(bit, crate::sync::wait::Fences::Symmetric)
}

/// Withdraws a poller announced by [`arm_poller`].
pub fn disarm_poller(event: &Event) {
    event.disarm_poller()
}

/// A heap "segment" holding one ring of kind `R`, shared by the model's threads.
#[derive(Debug)]
pub struct Heap<R: Flavor> {
    site: HeapSite,
    cfg: Config,
    _ring: std::marker::PhantomData<R>,
}

impl<R: Flavor> Heap<R> {
    /// Lays out an empty ring made with `cfg` (keep it small: loom explores every interleaving).
    pub fn new(cfg: Config) -> Result<Self> {
        let site = crate::shm::heap_site::<R>(&cfg)?;
        Ok(Heap {
            site,
            cfg,
            _ring: std::marker::PhantomData,
        })
    }

    /// A sending half attached to the ring (takes a free place, as `open` does).
    pub fn sender(&self) -> Result<Sender<R>> {
        Sender::on_heap(self.site.share(), &self.cfg)
    }

    /// A receiving half attached to the ring.
    pub fn receiver(&self) -> Result<Receiver<R>> {
        Receiver::on_heap(self.site.share(), &self.cfg)
    }
}

/// A half that a model can kill and whose liveness check it can run.
pub trait Half {
    /// Releases the half's liveness place without closing anything, then leaks the half: what
    /// a SIGKILLed process leaves behind.
    fn kill(self);
    /// One round of the wait loop's liveness check: frees what a dead participant blocking
    /// this half holds, then `Err(PeerDead)` if the other side is counted but dead.
    fn check(&self) -> Result<()>;
}

impl<R: Flavor> Half for Sender<R> {
    fn kill(self) {
        self.heap_kill();
        std::mem::forget(self);
    }
    fn check(&self) -> Result<()> {
        self.liveness_check()
    }
}

impl<R: Flavor> Half for Receiver<R> {
    fn kill(self) {
        self.heap_kill();
        std::mem::forget(self);
    }
    fn check(&self) -> Result<()> {
        self.liveness_check()
    }
}

pub use crate::ring::mpmc::Halt;

/// Stops an MPMC sender at `at` from its next call on, as a SIGKILL there would (then
/// [`kill`] it).
pub fn halt_sender(tx: &mut Sender<Mpmc>, at: Halt) {
    tx.end_mut().halt_at(at);
}

/// Lets a sender halted at [`Halt::BeforeClaim`] run on, as a stopped process continued: its
/// next call claims afresh (its claim would fail anyway: the position moved on).
pub fn resume_sender(tx: &mut Sender<Mpmc>) {
    tx.end_mut().resume();
}

/// Stops an MPMC receiver at `at` (only [`Halt::AfterClaim`] applies to consumers).
pub fn halt_receiver(rx: &mut Receiver<Mpmc>, at: Halt) {
    rx.end_mut().halt_at(at);
}

/// See [`Half::kill`].
pub fn kill(half: impl Half) {
    half.kill()
}

/// `block_on` for the wait-protocol models: waits on `event` until `attempt` succeeds.
pub fn wait_for<T>(wait: Wait, event: &Event, attempt: impl FnMut() -> Result<T>) -> Result<T> {
    crate::sync::wait::block_on(
        wait,
        event,
        &WaitPolicy::default(),
        crate::sync::wait::Until::Forever,
        attempt,
        || Ok(()),
    )
}
