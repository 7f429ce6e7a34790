//! How a side waits for the other: the wait strategies and the wait/wake protocol.
//!
//! # The protocol (no lost wakeup)
//! Each direction has an [`Event`] in shared memory: a futex word that counts notifications and
//! a count of sleepers. A side that finds the ring empty (or full):
//!
//! 1. spins a little ([`Backoff`]): most waits end here, without a system call;
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
//! Waits come in slices ([`WaitPolicy::slice`]) so that a deadline, a closed channel or a dead
//! peer is noticed even if no wake ever comes.
//!
//! # The semaphore variant
//! With [`Wait::Semaphore`] the [`Event`] sleeps on a process-shared POSIX semaphore instead of
//! the futex word; `waiters` and the two fences are the same. There is no compare: a post made
//! between the sleeper's re-check (3) and its `sem_wait` (4) stays in the semaphore, so the
//! `sem_wait` returns at once. That is the same "no lost wakeup" argument with the semaphore's
//! memory in place of the futex word's.
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

use crossbeam_utils::Backoff;

use crate::error::{Error, Result};
use crate::sync::atomic::{fence, AtomicU32, Ordering};
use crate::sync::futex::Futex;
use crate::sync::hint;
use crate::sync::semaphore::Semaphore;

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
    /// Spin briefly, then sleep on a process-shared POSIX semaphore (`sem_init` with
    /// `pshared = 1`) in the segment. For systems or tools that expect POSIX semaphores; the
    /// futex is the faster of the two.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitPolicy {
    /// The longest single sleep (and, when spinning, the interval between checks of the peer):
    /// a dead peer or a closed channel is noticed within about this long.
    pub slice: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            slice: Duration::from_millis(10),
        }
    }
}

/// One direction's wake-up point: placed in shared memory (or on the heap under loom).
///
/// Which primitive it sleeps on is the segment's [`Wait`] (from the validated header), passed in
/// by the caller, not read from the event: both primitives are always present.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Event {
    futex: Futex,
    waiters: AtomicU32,
    sem: Semaphore,
}

/// True if `wait` sleeps on the semaphore (never under loom: the models use the futex).
#[inline]
fn uses_sem(wait: Wait) -> bool {
    !cfg!(shmring_loom) && wait == Wait::Semaphore
}

impl Event {
    /// A fresh event with no sleeper. Before a [`Wait::Semaphore`] side uses it, call
    /// [`prepare`](Self::prepare) where it will stay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Initialises what `wait` needs (the semaphore) in place.
    ///
    /// # Safety
    /// Called once by the creator, before any other thread or process uses the event, at the
    /// address where it stays.
    pub unsafe fn prepare(&self, wait: Wait) -> Result<()> {
        if wait == Wait::Semaphore {
            // SAFETY: forwarded from this function's contract.
            unsafe { self.sem.init()? };
        }
        Ok(())
    }

    /// Wakes one sleeper, if any announced itself. Call after the Release store that published
    /// the change the sleeper waits for.
    #[inline]
    pub fn notify_one(&self, wait: Wait) {
        self.notify(wait, 1, || true);
    }

    /// Wakes every sleeper (on close, or when several may be waiting for the same change).
    pub fn notify_all(&self, wait: Wait) {
        self.notify(wait, u32::MAX, || true);
    }

    /// Wakes one sleeper if any announced itself *and* `cond` (evaluated only then, after the
    /// fence) holds. For passing a wake on: a side that just took a message calls it with "is
    /// the next one ready too?", so a wake that reached a waiter too early is not lost.
    #[inline]
    pub fn notify_one_if(&self, wait: Wait, cond: impl FnOnce() -> bool) {
        self.notify(wait, 1, cond);
    }

    #[inline]
    fn notify(&self, wait: Wait, count: u32, cond: impl FnOnce() -> bool) {
        // Pairs with the fence in `sleep`: either we see its `waiters` increment, or its
        // re-check sees the store our caller made before this fence.
        fence(Ordering::SeqCst);
        let waiters = self.waiters.load(Ordering::Relaxed);
        if waiters == 0 || !cond() {
            return;
        }
        if uses_sem(wait) {
            #[cfg(not(shmring_loom))]
            {
                // Post only up to the number of wakes wanted; pending posts count (module docs).
                // Bounded, whatever `waiters` a peer wrote.
                let want = count.min(waiters).min(1024) as i32;
                let pending = self.sem.value().max(0);
                for _ in pending..want {
                    self.sem.post();
                }
            }
        } else {
            // Release: pairs with the Acquire load of the word in `sleep`.
            self.futex.word().fetch_add(1, Ordering::Release);
            self.futex.wake(count);
        }
    }

    /// Steps 2 to 4 of the protocol. `ready` re-checks the condition; `Ok(Some(_))` ends the wait.
    fn sleep<T>(
        &self,
        wait: Wait,
        timeout: Duration,
        ready: &mut impl FnMut() -> Result<T>,
    ) -> Result<Option<T>> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `notify` (see the module docs).
        fence(Ordering::SeqCst);
        // Acquire: pairs with the Release bump in `notify`.
        let seq = self.futex.word().load(Ordering::Acquire);
        let outcome = match not_ready(ready()) {
            Ok(None) => {
                let slept = if uses_sem(wait) {
                    #[cfg(not(shmring_loom))]
                    let slept = self.sem.wait(Some(timeout));
                    #[cfg(shmring_loom)]
                    let slept = Ok(());
                    // Pairs with the notifier's fence: a post it counted on but did not make
                    // is seen by the re-check that follows (module docs, semaphore variant).
                    fence(Ordering::SeqCst);
                    slept
                } else {
                    self.futex.wait(seq, Some(timeout));
                    Ok(())
                };
                slept.map(|()| None)
            }
            other => other,
        };
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        outcome
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
    wait: Wait,
    event: &Event,
    policy: &WaitPolicy,
    until: Until,
    mut attempt: impl FnMut() -> Result<T>,
    mut peer_gone: impl FnMut() -> Result<()>,
) -> Result<T> {
    // The common case first, before any setup: the ring is ready.
    let first = attempt();
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
    let backoff = Backoff::new();
    let mut spins: u32 = 0;
    // Set at the first look at the clock: reading it costs ~20 ns, too much for the fast path.
    let mut next_check: Option<Option<Instant>> = None;
    loop {
        let sleepy = wait != Wait::Spin && (cfg!(shmring_loom) || backoff.is_completed());
        if !sleepy {
            spins = spins.wrapping_add(1);
            if cfg!(shmring_loom) {
                hint::yield_now();
            } else if wait != Wait::Spin {
                backoff.snooze();
            } else {
                hint::spin_loop();
            }
            if spins % 128 != 0 {
                if let Some(v) = not_ready(attempt())? {
                    return Ok(v);
                }
                continue;
            }
        }
        let now = Instant::now();
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
            if let Some(v) = event.sleep(wait, slice, &mut attempt)? {
                return Ok(v);
            }
        } else if let Some(v) = not_ready(attempt())? {
            return Ok(v);
        }
    }
}
