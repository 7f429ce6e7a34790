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

use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::error::{Error, Result};
use crate::sync::atomic::{fence, AtomicU32, Ordering};
use crate::sync::futex::Futex;
use crate::sync::hint;

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
}

impl Wait {
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            Wait::Spin => 1,
            Wait::Futex => 2,
        }
    }

    pub(crate) fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Wait::Spin),
            2 => Some(Wait::Futex),
            _ => None,
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
#[repr(C)]
#[derive(Debug, Default)]
pub struct Event {
    futex: Futex,
    waiters: AtomicU32,
}

impl Event {
    /// A fresh event with no sleeper.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes one sleeper, if any announced itself. Call after the Release store that published
    /// the change the sleeper waits for.
    #[inline]
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every sleeper (on close, or when several may be waiting for the same change).
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }

    #[inline]
    fn notify(&self, count: u32) {
        // Pairs with the fence in `sleep`: either we see its `waiters` increment, or its
        // re-check sees the store our caller made before this fence.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            // Release: pairs with the Acquire load of the word in `sleep`.
            self.futex.word().fetch_add(1, Ordering::Release);
            self.futex.wake(count);
        }
    }

    /// Steps 2 to 4 of the protocol. `ready` re-checks the condition; `Ok(Some(_))` ends the wait.
    fn sleep<T>(
        &self,
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
                self.futex.wait(seq, Some(timeout));
                Ok(None)
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
/// * `deadline`: `None` waits for ever (in slices); past it, `Err(Timeout)`.
pub(crate) fn block_on<T>(
    wait: Wait,
    event: &Event,
    policy: &WaitPolicy,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Result<T>,
    mut peer_gone: impl FnMut() -> Result<()>,
) -> Result<T> {
    // The common case first, before any setup: the ring is ready.
    if let Some(v) = not_ready(attempt())? {
        return Ok(v);
    }
    let backoff = Backoff::new();
    let mut spins: u32 = 0;
    // Set at the first look at the clock: reading it costs ~20 ns, too much for the fast path.
    let mut next_check: Option<Instant> = None;
    loop {
        let sleepy = wait == Wait::Futex && (cfg!(shmring_loom) || backoff.is_completed());
        if !sleepy {
            spins = spins.wrapping_add(1);
            if cfg!(shmring_loom) {
                hint::yield_now();
            } else if wait == Wait::Futex {
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
        let check_at = *next_check.get_or_insert(now + policy.slice);
        if now >= check_at {
            next_check = Some(now + policy.slice);
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
            if let Some(v) = event.sleep(slice, &mut attempt)? {
                return Ok(v);
            }
        } else if let Some(v) = not_ready(attempt())? {
            return Ok(v);
        }
    }
}
