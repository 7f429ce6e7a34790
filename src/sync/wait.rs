//! How a side waits for the other: the wait strategies and the wait/wake protocol.
//!
//! # The protocol (no lost wakeup)
//! Each direction has an [`Event`] in shared memory: a futex word that counts notifications and
//! a count of sleepers. A side that finds the ring empty (or full):
//!
//! 1. spins for its spin budget ([`WaitPolicy::spin`]: a fixed `Duration`, zero to sleep at
//!    once, or adaptive: about twice the waits that recently ended while it spun, up to
//!    [`MAX_ADAPTIVE_SPIN`]); most waits end here, without a system call;
//! 2. announces itself: `waiters += 1`, then a `SeqCst` fence, then reads the futex word;
//! 3. re-checks the ring; if the condition now holds it leaves (`waiters -= 1`);
//! 4. sleeps on the futex while the word still holds the value read in 2, for one slice.
//!
//! The other side, after publishing (a Release store of its index), issues a `SeqCst` fence and
//! reads `waiters`; only if someone announced itself does it bump the word and `FUTEX_WAKE`.
//! The two fences order the pair "publish, read waiters" against "announce, re-check": either
//! the notifier sees the announcement, or the re-check sees the publication. A bump between
//! 2 and 4 makes the futex compare fail, so the sleeper returns at once.
//!
//! On a segment made with `FLAG_MEMBARRIER` ([`Fences::Membarrier`]) the notifier's fence is a
//! compiler fence and the sleeper adds `membarrier(GLOBAL_EXPEDITED)` after its own fence: the
//! same pairing, with the cost moved to the side that is about to sleep anyway
//! (`sync::barrier` gives the argument). Under loom both sides keep the `SeqCst` fence.
//!
//! Waits come in slices ([`WaitPolicy::slice`]) so that a deadline, a closed channel or a dead
//! peer is noticed even if no wake ever comes.
//!
//! # Pollers (doorbells)
//! A half that waits in an event loop instead of on the futex announces itself the same way,
//! with [`POLLER`] in place of 1 in `waiters` (and its place's bit in the event's `bells`),
//! then re-checks and waits for its doorbell descriptor (`sync::doorbell`). The notifier's fast
//! path is unchanged, "fence, read `waiters`, stop at 0": a channel nobody polls pays nothing
//! for the doorbells. Only when `waiters` is non-zero does the slow path look at the poller
//! count and return the mask of doorbells its caller must ring.
//!
//! # The semaphore variant
//! With [`Wait::Semaphore`] the [`Event`] sleeps on a semaphore of a kernel-held System V set
//! (`sync::semaphore`: nothing in shared memory that a peer could corrupt into an abort)
//! instead of the futex word; `waiters` and the two fences are the same. There is no compare:
//! a post made between the sleeper's re-check (3) and its `semtimedop` (4) stays in the
//! semaphore, so the sleep returns at once. That is the same "no lost wakeup" argument with
//! the semaphore's value in place of the futex word's.
//!
//! Posts accumulate where futex wakes do not: a post made for a waiter that then found its
//! condition on the re-check, and left without `sem_wait`, stays pending and makes a later wait
//! return early. That is only a spurious wakeup (every waiter re-checks), but to keep such
//! stale posts few a notifier posts only while the semaphore's value is below the number of
//! posts wanted (1, or the waiter count). Skipping is safe: a pending post will be taken by
//! some waiter, which then issues a `SeqCst` fence before re-checking; the notifier's fence
//! came before it read the value the post is part of, so that re-check sees the notifier's
//! change. One waiter looking again is all `notify_one` promises; the MPMC channel passes the
//! wake on when more than one message (or slot) is ready (see `Event::notify_one_if`).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use crate::sync::futex::Futex;
use crate::sync::hint;
use crate::sync::semaphore::SemRecord;
#[cfg(not(shmring_loom))]
use crate::sync::semaphore::SemSlot;
#[cfg(not(shmring_loom))]
use std::sync::atomic::compiler_fence;

/// How a blocking call waits when the ring is empty (receiver) or full (sender).
///
/// The strategy is chosen by the creator of a segment and recorded in its header, so both sides
/// agree on it; the opener's [`Config`](crate::Config) value is not used.
///
/// ```
/// use shmring::{Config, Wait};
/// let busy = Config::default().wait(Wait::Spin);
/// assert_eq!(busy.wait_strategy(), Wait::Spin);
/// assert_eq!(Config::default().wait_strategy(), Wait::Futex);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Wait {
    /// Busy-poll. The lowest latency; burns a core for as long as it waits. The sending side
    /// skips the wake-up bookkeeping entirely.
    Spin,
    /// Spin briefly, then sleep on a shared futex word in the segment. The default.
    #[default]
    Futex,
    /// Spin briefly, then sleep on a System V semaphore (`semget`), one set per segment,
    /// held by the kernel: visible to `ipcs -s`, removed by its last user (or `shmring rm`),
    /// nothing in shared memory that a peer could corrupt. For systems or tools that expect semaphores. Measured
    /// against the futex (64 B round trip, both sides pinned): the same median, a longer tail
    /// (p999 about 1.6x), because its sleeps cost more.
    Semaphore,
}

impl Wait {
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            Wait::Spin => 1,
            Wait::Futex => 2,
            Wait::Semaphore => 3,
        }
    }

    pub(crate) fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Wait::Spin),
            2 => Some(Wait::Futex),
            3 => Some(Wait::Semaphore),
            _ => None,
        }
    }
}

/// How long a blocking call may wait: one spelling for every channel half and transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// Not at all: the `try_` forms.
    Now,
    /// Until this instant: the `_timeout` forms.
    Deadline(Instant),
    /// For ever: the blocking forms.
    Forever,
}

impl Until {
    /// The deadline `timeout` from now; for ever if that is beyond what `Instant` can hold
    /// (so `Duration::MAX` means "no deadline", never an overflow).
    pub(crate) fn after(timeout: Duration) -> Until {
        Instant::now()
            .checked_add(timeout)
            .map_or(Until::Forever, Until::Deadline)
    }

    /// The time left, as a timeout for a call that takes one (`Duration::MAX` for ever,
    /// zero for `Now` or a deadline passed).
    pub(crate) fn remaining(self) -> Duration {
        match self {
            Until::Now => Duration::ZERO,
            Until::Deadline(d) => d.saturating_duration_since(Instant::now()),
            Until::Forever => Duration::MAX,
        }
    }

    /// True once there is no time left to wait (at once for `Now`).
    pub(crate) fn expired(self) -> bool {
        match self {
            Until::Now => true,
            Until::Deadline(d) => Instant::now() >= d,
            Until::Forever => false,
        }
    }
}

/// Timing knobs of a blocking wait.
#[derive(Clone, Debug)]
pub struct WaitPolicy {
    /// The longest single sleep (and, when spinning, the interval between checks of the peer):
    /// a dead peer or a closed channel is noticed within about this long.
    pub slice: Duration,
    /// How long to spin before sleeping (futex and semaphore waits): `Some(d)` fixed (zero:
    /// sleep at once), `None` adaptive (see the module docs).
    pub spin: Option<Duration>,
    /// The adaptive budget's estimate of a wait that spinning can cover, in nanoseconds.
    estimate: std::cell::Cell<u32>,
}

/// The most an adaptive spin budget grows to: a wait longer than this is not worth a core.
pub const MAX_ADAPTIVE_SPIN: Duration = Duration::from_micros(100);
/// The adaptive estimate's floor and start (the budget is twice the estimate: 2 µs).
const MIN_ADAPTIVE_SPIN_NS: u32 = 1_000;

impl WaitPolicy {
    /// A policy with checks every `slice` and spin budget `spin` (`None`: adaptive).
    pub fn new(slice: Duration, spin: Option<Duration>) -> Self {
        WaitPolicy {
            slice,
            spin,
            estimate: std::cell::Cell::new(MIN_ADAPTIVE_SPIN_NS),
        }
    }

    /// How long the next wait spins before it sleeps.
    fn budget(&self) -> Duration {
        match self.spin {
            Some(d) => d,
            None => Duration::from_nanos(u64::from(self.estimate.get()) * 2).clamp(
                Duration::from_nanos(u64::from(MIN_ADAPTIVE_SPIN_NS)),
                MAX_ADAPTIVE_SPIN,
            ),
        }
    }

    /// Teaches the adaptive budget how long a wait took, and whether it had to sleep: a wait
    /// that fits the ceiling pulls the estimate towards it (so a round trip longer than the
    /// current budget is covered next time, with no cliff at some message size); a longer
    /// one (an idle peer) halves it, so an idle channel soon sleeps almost at once.
    fn learn(&self, waited: Duration) {
        if self.spin.is_some() {
            return;
        }
        let est = u64::from(self.estimate.get());
        let next = if waited <= MAX_ADAPTIVE_SPIN {
            (est * 3 + waited.as_nanos() as u64) / 4
        } else {
            est / 2
        };
        self.estimate
            .set(next.max(u64::from(MIN_ADAPTIVE_SPIN_NS)) as u32);
    }
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy::new(Duration::from_millis(10), None)
    }
}

/// How this process sleeps on one event: the segment's [`Wait`], with what it needs that is
/// not in shared memory (for the semaphore, the validated set this handle holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sleep {
    /// [`Wait::Spin`].
    Spin,
    /// [`Wait::Futex`] (and, under loom, [`Wait::Semaphore`]: the models use the futex).
    Futex(Fences),
    /// [`Wait::Semaphore`]: this semaphore.
    #[cfg(not(shmring_loom))]
    Semaphore(SemSlot, Fences),
}

/// How the two sides of the protocol fence (module docs, and `sync::barrier`): what the
/// segment's header says all its participants do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fences {
    /// A `SeqCst` fence on both sides.
    Symmetric,
    /// A compiler fence in the notifier, `membarrier(GLOBAL_EXPEDITED)` in the sleeper; every
    /// participant is registered for it.
    #[cfg(not(shmring_loom))]
    Membarrier,
}

impl Sleep {
    /// The strategy.
    pub fn wait(self) -> Wait {
        match self {
            Sleep::Spin => Wait::Spin,
            Sleep::Futex(_) => Wait::Futex,
            #[cfg(not(shmring_loom))]
            Sleep::Semaphore(..) => Wait::Semaphore,
        }
    }

    /// The segment's fence pairing (symmetric for a spinning channel, which never notifies).
    #[inline]
    pub fn fences(self) -> Fences {
        match self {
            Sleep::Spin => Fences::Symmetric,
            Sleep::Futex(f) => f,
            #[cfg(not(shmring_loom))]
            Sleep::Semaphore(_, f) => f,
        }
    }
}

/// Under loom, a strategy is all a sleep needs (no semaphores there).
#[cfg(shmring_loom)]
impl From<Wait> for Sleep {
    fn from(wait: Wait) -> Sleep {
        match wait {
            Wait::Spin => Sleep::Spin,
            Wait::Futex | Wait::Semaphore => Sleep::Futex(Fences::Symmetric),
        }
    }
}

/// One direction's wake-up point: placed in shared memory (or on the heap under loom).
///
/// How to sleep on it is the caller's [`Sleep`] (from the validated header, and for the
/// semaphore from the set the handle validated when it attached), not read from the event.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Event {
    futex: Futex,
    /// Sleepers on the futex or semaphore (low 16 bits) plus [`POLLER`] per armed doorbell.
    waiters: AtomicU32,
    /// Where the creator records the semaphore set ([`Wait::Semaphore`] only). Read once, by
    /// an attaching handle, and validated.
    pub(crate) sem: SemRecord,
    /// Which participant places have armed a doorbell: bit `index % 64` (`sync::doorbell`).
    /// Bits are only set, never cleared: a stale bit costs a datagram nobody receives.
    bells: AtomicU64,
    /// The random token in the doorbells' addresses, written by the creator before it
    /// publishes the segment (0: a segment without doorbells).
    token: AtomicU64,
}

/// What an armed doorbell adds to [`Event`]'s `waiters`: pollers and sleepers share the one
/// word the notifier reads on its fast path, so an unpolled channel pays nothing more.
pub(crate) const POLLER: u32 = 1 << 16;
const SLEEPERS: u32 = POLLER - 1;

impl Event {
    /// A fresh event with no sleeper.
    pub fn new() -> Self {
        Self::default()
    }

    /// The semaphore set record (creator: write it; opener: read and validate it once).
    pub fn sem_record(&self) -> &SemRecord {
        &self.sem
    }

    /// Wakes one sleeper, if any announced itself. Call after the Release store that published
    /// the change the sleeper waits for.
    ///
    /// Returns the doorbell mask to ring: non-zero only if a poller armed a doorbell
    /// ([`arm_poller`](Self::arm_poller)); the caller, which knows the places and owns a
    /// socket, rings them (`sync::doorbell`).
    #[inline]
    #[must_use = "the doorbells to ring"]
    pub fn notify_one(&self, how: impl Into<Sleep>) -> u64 {
        self.notify(how.into(), 1, || true)
    }

    /// Wakes every sleeper (on close, or when several may be waiting for the same change).
    /// Returns the doorbells to ring, as [`notify_one`](Self::notify_one).
    #[must_use = "the doorbells to ring"]
    pub fn notify_all(&self, how: impl Into<Sleep>) -> u64 {
        self.notify(how.into(), u32::MAX, || true)
    }

    /// Wakes one sleeper if any announced itself *and* `cond` (evaluated only then, after the
    /// fence) holds. For passing a wake on: a side that just took a message calls it with "is
    /// the next one ready too?", so a wake that reached a waiter too early is not lost.
    /// Returns the doorbells to ring, as [`notify_one`](Self::notify_one).
    #[inline]
    #[must_use = "the doorbells to ring"]
    pub fn notify_one_if(&self, how: impl Into<Sleep>, cond: impl FnOnce() -> bool) -> u64 {
        self.notify(how.into(), 1, cond)
    }

    /// Announces a poller (an armed doorbell at bit `bit`): from now on every notifier sees it
    /// in `waiters` and returns the doorbell mask. The same step as a sleeper's announcement
    /// (step 2): the caller re-checks its condition after this, then waits for its doorbell.
    pub(crate) fn arm_poller(&self, bit: u32, fences: Fences) {
        // Both Relaxed, both before the fence: a notifier whose fence comes after ours (in the
        // SeqCst order) sees the count *and* the bit; one whose fence comes before may see the
        // count without the bit, but then our re-check sees its publication, so the ring it
        // misses is one we do not need (model `wait_poller_is_rung_or_sees_the_change`; an
        // Acquire/Release pair here was tried and its weakening survived that model).
        self.bells.fetch_or(1u64 << (bit % 64), Ordering::Relaxed);
        self.waiters.fetch_add(POLLER, Ordering::Relaxed);
        // Pairs with the fence in `notify`: either the notifier sees this announcement, or
        // our re-check sees its publication (module docs, as for a sleeper).
        fence(Ordering::SeqCst);
        heavy(fences);
    }

    /// Withdraws a poller announced by [`arm_poller`](Self::arm_poller).
    pub(crate) fn disarm_poller(&self) {
        self.waiters.fetch_sub(POLLER, Ordering::Relaxed);
    }

    /// The doorbell token (0 in a segment made without doorbells, and under loom).
    pub(crate) fn token(&self) -> u64 {
        self.token.load(Ordering::Relaxed)
    }

    /// Sets the doorbell token: by the creator, before it publishes the segment (whose
    /// publication orders it for every opener).
    pub(crate) fn set_token(&self, token: u64) {
        self.token.store(token, Ordering::Relaxed);
    }

    /// [`notify_one`](Self::notify_one) on `self`, then [`notify_one_if`](Self::notify_one_if)
    /// on `other`, after one fence for both: for a side that published on one event and passes
    /// a wake on on the other right after (an MPMC `send`: its commit wakes a receiver, its
    /// claim may pass a wake on to another sender). Each notification is the protocol's own:
    /// the caller's stores for both came before the fence, and each `waiters` load after it.
    /// Returns the doorbell masks of `self` and of `other`.
    #[inline]
    #[must_use = "the doorbells to ring"]
    pub fn notify_one_and_one_if(
        &self,
        how: impl Into<Sleep>,
        other: &Event,
        other_how: impl Into<Sleep>,
        cond: impl FnOnce() -> bool,
    ) -> (u64, u64) {
        let (how, other_how) = (how.into(), other_how.into());
        // Both events are the same segment's, so they share its fence pairing.
        notifier_fence(how.fences());
        (
            self.notify_fenced(how, 1, || true),
            other.notify_fenced(other_how, 1, cond),
        )
    }

    #[inline]
    fn notify(&self, how: Sleep, count: u32, cond: impl FnOnce() -> bool) -> u64 {
        notifier_fence(how.fences());
        self.notify_fenced(how, count, cond)
    }

    /// `notify` after its fence (the caller issued it, after the store it publishes).
    #[inline]
    fn notify_fenced(&self, how: Sleep, count: u32, cond: impl FnOnce() -> bool) -> u64 {
        let waiters = self.waiters.load(Ordering::Relaxed);
        if waiters == 0 || !cond() {
            return 0;
        }
        self.wake(how, count, waiters)
    }

    /// The slow half of `notify`: someone announced itself (a sleeper, a poller, or both).
    #[cold]
    #[inline(never)]
    fn wake(&self, how: Sleep, count: u32, waiters: u32) -> u64 {
        // Relaxed: see `arm_poller` for why a bit missed here is a ring nobody needs.
        let bells = if waiters >= POLLER {
            self.bells.load(Ordering::Relaxed)
        } else {
            0
        };
        let sleepers = waiters & SLEEPERS;
        if sleepers == 0 {
            return bells;
        }
        match how {
            #[cfg(not(shmring_loom))]
            Sleep::Semaphore(sem, _) => {
                // Post only up to the number of wakes wanted; pending posts count (module docs).
                // Bounded, whatever `waiters` a peer wrote.
                let want = count.min(sleepers).min(1024) as i32;
                let pending = sem.value();
                for _ in pending..want {
                    sem.post();
                }
            }
            _ => {
                // Release: pairs with the Acquire load of the word in `sleep`.
                self.futex.word().fetch_add(1, Ordering::Release);
                self.futex.wake(count);
            }
        }
        bells
    }

    /// Steps 2 to 4 of the protocol. `ready` re-checks the condition; `Ok(Some(_))` ends the wait.
    fn sleep<T>(
        &self,
        how: Sleep,
        timeout: Duration,
        ready: &mut impl FnMut() -> Result<T>,
    ) -> Result<Option<T>> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `notify` (see the module docs).
        fence(Ordering::SeqCst);
        heavy(how.fences());
        // Acquire: pairs with the Release bump in `notify`.
        let seq = self.futex.word().load(Ordering::Acquire);
        let outcome = match not_ready(ready()) {
            Ok(None) => {
                let slept = match how {
                    #[cfg(not(shmring_loom))]
                    Sleep::Semaphore(sem, fences) => {
                        let slept = sem.wait(Some(timeout));
                        // Pairs with the notifier's fence: a post it counted on but did not
                        // make is seen by the re-check that follows (module docs, semaphore
                        // variant).
                        fence(Ordering::SeqCst);
                        heavy(fences);
                        slept
                    }
                    _ => {
                        self.futex.wait(seq, Some(timeout));
                        Ok(())
                    }
                };
                slept.map(|()| None)
            }
            other => other,
        };
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        outcome
    }
}

/// The notifier's half of the fence pair, between the caller's publication and the `waiters`
/// load(s) of [`Event::notify`] and [`Event::notify_one_and_one_if`].
#[inline]
fn notifier_fence(fences: Fences) {
    match fences {
        #[cfg(not(shmring_loom))]
        Fences::Membarrier => {
            // The light half of the asymmetric pair (`sync::barrier`): the sleeper's
            // `membarrier` orders our publication against our load of `waiters`; the
            // compiler must still keep them in program order.
            compiler_fence(Ordering::SeqCst);
        }
        Fences::Symmetric => {
            // Pairs with the fence in `sleep` and in `arm_poller`: either we see its `waiters`
            // increment, or its re-check sees the store our caller made before this fence.
            fence(Ordering::SeqCst);
        }
    }
}

/// The sleeper's half of the fence pair, after its `SeqCst` fence: under
/// [`Fences::Membarrier`] the notifier fenced only the compiler, so a barrier on its CPU is
/// needed too (`sync::barrier`).
#[inline]
fn heavy(fences: Fences) {
    match fences {
        #[cfg(not(shmring_loom))]
        Fences::Membarrier => crate::sync::barrier::heavy(),
        Fences::Symmetric => {}
    }
}

/// `Err(Empty)` and `Err(Full)` mean "not yet"; anything else ends the wait.
fn not_ready<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Empty | Error::Full) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Blocks until `attempt` succeeds or fails for good.
///
/// * `attempt` tries the operation once: `Err(Empty)`/`Err(Full)` means "not yet".
/// * `peer_gone` is called about once per slice; `Err` from it (the peer died) ends the wait
///   after one last attempt, so what the peer committed before it died is still delivered.
/// * `until`: `Now` tries once (`Err(Empty)`/`Err(Full)` as they come); `Forever` waits in
///   slices; past a `Deadline`, `Err(Timeout)`.
pub(crate) fn block_on<T>(
    how: impl Into<Sleep>,
    event: &Event,
    policy: &WaitPolicy,
    until: Until,
    mut attempt: impl FnMut() -> Result<T>,
    mut peer_gone: impl FnMut() -> Result<()>,
) -> Result<T> {
    // The common case first, before any setup: the ring is ready.
    let first = attempt();
    let how = how.into();
    let wait = how.wait();
    if until == Until::Now {
        return first;
    }
    if let Some(v) = not_ready(first)? {
        return Ok(v);
    }
    let deadline = match until {
        Until::Deadline(d) => Some(d),
        _ => None,
    };
    let mut spins: u32 = 0;
    let budget = policy.budget();
    // Futex and semaphore waits sleep once the budget is spent (at once for a zero budget).
    let mut spun_out = budget.is_zero();
    // The clock is first read at the first check, 32 spins in (at once when sleeping at once):
    // a look costs ~20 ns, and a wait that ends within a few spins (the other half of a round
    // trip arriving) would pay it on the critical path, twice with the learning below. So the
    // budget counts from that first look, and a wait that ended before it is learned as zero
    // (it was shorter than 32 spins, well inside the smallest budget).
    let mut start: Option<Instant> = None;
    let mut spin_until: Option<Instant> = None;
    // Only an adaptive futex or semaphore budget learns; a spin wait never sleeps.
    let learns = wait != Wait::Spin && policy.spin.is_none();
    let done = |v: T, start: Option<Instant>| {
        if learns {
            policy.learn(start.map_or(Duration::ZERO, |s| s.elapsed()));
        }
        Ok(v)
    };
    // Set at the first look at the clock.
    let mut next_check: Option<Option<Instant>> = None;
    loop {
        let sleepy = wait != Wait::Spin && (cfg!(shmring_loom) || spun_out);
        if !sleepy {
            spins = spins.wrapping_add(1);
            if cfg!(shmring_loom) {
                hint::yield_now();
            } else {
                hint::spin_loop();
            }
            // Look at the clock (budget, deadline, liveness) every 32 spins.
            if spins % 32 != 0 {
                if let Some(v) = not_ready(attempt())? {
                    return done(v, start);
                }
                continue;
            }
        }
        let now = Instant::now();
        if start.is_none() {
            start = Some(now);
            spin_until = now.checked_add(budget);
        }
        spun_out = spun_out || spin_until.is_some_and(|at| now >= at);
        if let Some(d) = deadline {
            if now >= d {
                return Err(Error::Timeout);
            }
        }
        // `None` inside: the slice reaches past what an `Instant` can hold (`Duration::MAX`),
        // so the peer is never checked.
        let check_at = *next_check.get_or_insert(now.checked_add(policy.slice));
        // Under loom there is no time: check every round, so that the model is deterministic
        // and explores the liveness check against every step of the other threads.
        if cfg!(shmring_loom) || check_at.is_some_and(|at| now >= at) {
            next_check = Some(now.checked_add(policy.slice));
            if let Err(gone) = peer_gone() {
                // One last look: messages committed before the peer died come first.
                return not_ready(attempt())?.ok_or(gone);
            }
        }
        if sleepy {
            let mut slice = policy.slice;
            if let Some(d) = deadline {
                slice = slice.min(d.saturating_duration_since(now));
            }
            if let Some(v) = event.sleep(how, slice, &mut attempt)? {
                return done(v, start);
            }
        } else if let Some(v) = not_ready(attempt())? {
            return done(v, start);
        }
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;

    #[test]
    fn fixed_budgets_stay_and_the_adaptive_one_follows_the_waits() {
        let zero = WaitPolicy::new(Duration::from_millis(10), Some(Duration::ZERO));
        zero.learn(Duration::from_micros(50));
        assert_eq!(zero.budget(), Duration::ZERO);
        let auto = WaitPolicy::default();
        assert_eq!(auto.budget(), Duration::from_micros(2));
        // Waits of 30 us (a round trip longer than the budget): the budget grows past them.
        for _ in 0..20 {
            auto.learn(Duration::from_micros(30));
        }
        assert!(
            auto.budget() > Duration::from_micros(50),
            "{:?}",
            auto.budget()
        );
        assert!(auto.budget() <= MAX_ADAPTIVE_SPIN);
        // An idle peer (waits of milliseconds): the budget falls back to its floor.
        for _ in 0..20 {
            auto.learn(Duration::from_millis(3));
        }
        assert_eq!(auto.budget(), Duration::from_micros(2));
    }
}
