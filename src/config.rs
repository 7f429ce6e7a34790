//! Options of a shared-memory channel.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::ring::broadcast::{Overflow, MAX_READERS};
use crate::ring::mpmc::{MAX_PEERS, MAX_SLOTS, MAX_SLOT_SIZE, MIN_SLOTS};
use crate::ring::spsc::{MAX_CAPACITY, MIN_CAPACITY};
use crate::sync::Wait;
use crate::trust::Trust;

/// SPSC ring data bytes when no capacity is set.
const DEFAULT_SPSC_BYTES: u64 = 1 << 20;
/// MPMC slots when no capacity is set.
const DEFAULT_MPMC_SLOTS: u64 = 1024;

/// How a segment is created and how its handles behave.
///
/// # Ranges
/// The builder methods store what they are given; the values are checked when a segment is
/// created, and one outside its range makes the create fail with
/// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the range. Nothing is clamped
/// silently. The one rounding: a capacity is rounded *up* to the next power of two.
///
/// | setting | range | rounding |
/// |---|---|---|
/// | [`capacity`](Self::capacity), SPSC (data bytes) | 64 B ..= 4 GiB | up to a power of two |
/// | [`capacity`](Self::capacity), MPMC (slots) | 2 ..= 16 Mi slots | up to a power of two |
/// | [`slot_size`](Self::slot_size) (MPMC) | 1 B ..= 16 MiB | none |
/// | [`capacity`](Self::capacity), broadcast (slots) | 2 ..= 16 Mi slots | up to a power of two |
/// | [`slot_size`](Self::slot_size) (broadcast) | 1 B ..= 16 MiB | none |
/// | [`max_senders`](Self::max_senders), [`max_receivers`](Self::max_receivers) (MPMC) | 1 ..= 1024 | none |
/// | [`max_receivers`](Self::max_receivers) (broadcast; one sender) | 1 ..= 1024 | none |
/// | [`history`](Self::history) (broadcast) | 0 ..= slots - 1 | none |
///
/// Durations accept anything, [`Duration::MAX`] included, which means "no deadline" (see each
/// method). An MPMC segment is about `slots × (slot_size + 8)` bytes, all reserved at create:
/// a size `/dev/shm` cannot hold is an `Io` error (`ENOSPC`) at create, never a fault later.
///
/// ```
/// use shmring::{spsc, Config, Error};
/// assert_eq!(Config::default().capacity(1000).capacity_bytes()?, 1024); // rounded up
/// assert!(matches!(Config::default().capacity(0).capacity_bytes(), Err(Error::InvalidConfig(_))));
/// let name = format!("doc-range-{}", std::process::id());
/// assert!(matches!(
///     spsc::Sender::create(&name, Config::default().capacity(1 << 40)),
///     Err(Error::InvalidConfig(_))
/// ));
/// # Ok::<(), Error>(())
/// ```
///
/// ```
/// use shmring::{Config, Wait};
/// use std::time::Duration;
///
/// let cfg = Config::default()
///     .capacity(1 << 20)          // ring data bytes, rounded up to a power of two
///     .wait(Wait::Spin)           // busy-poll instead of spin-then-futex
///     .mode(0o640)                // permissions of the /dev/shm file
///     .persist(true)              // the creator's drop leaves the name in /dev/shm
///     .liveness_interval(Duration::from_millis(5));
/// assert_eq!(cfg.capacity_bytes()?, 1 << 20);
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `None`: the ring's default (1 MiB of data for SPSC, 1024 slots for MPMC and broadcast).
    pub(crate) capacity: Option<u64>,
    pub(crate) slot_size: u64,
    pub(crate) max_senders: u32,
    pub(crate) max_receivers: u32,
    pub(crate) wait: Wait,
    pub(crate) mode: u32,
    pub(crate) persist: bool,
    pub(crate) membarrier: bool,
    pub(crate) open_timeout: Duration,
    pub(crate) liveness_interval: Duration,
    /// `None`: adaptive.
    pub(crate) spin_budget: Option<Duration>,
    /// Uids and groups trusted besides this process's effective uid.
    pub(crate) trust: Trust,
    /// Broadcast: what the sender does when the slowest receiver is a ring behind.
    pub(crate) overflow: Overflow,
    /// Broadcast: messages a new receiver finds already there.
    pub(crate) history: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            capacity: None,
            slot_size: 256,
            max_senders: 16,
            max_receivers: 16,
            wait: Wait::Futex,
            mode: 0o600,
            persist: false,
            membarrier: true,
            open_timeout: Duration::from_secs(1),
            liveness_interval: Duration::from_millis(10),
            spin_budget: None,
            trust: Trust::default(),
            overflow: Overflow::Block,
            history: 0,
        }
    }
}

impl Config {
    /// Ring size: data bytes for SPSC (64 B..=4 GiB, rounded up to a power of two; the
    /// largest message is this minus 16; default 1 MiB), slot count for MPMC and broadcast
    /// (2..=16 Mi, rounded up to a power of two; default 1024). Outside the range, create fails
    /// with [`Error::InvalidConfig`](crate::Error::InvalidConfig).
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// MPMC: the most sender handles that may be attached at once (each holds a liveness lock
    /// of its own); the next one fails with [`Error::TooManyPeers`](crate::Error::TooManyPeers).
    /// Default 16; 1..=1024, else creating an MPMC segment fails with
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig). Unused by SPSC (always one).
    pub fn max_senders(mut self, n: u32) -> Self {
        self.max_senders = n;
        self
    }

    /// MPMC and broadcast: the most receiver handles that may be attached at once (each holds
    /// a reader place and a liveness lock of its own). Default 16; 1..=1024, as for
    /// [`max_senders`](Self::max_senders). A broadcast channel has one sender.
    pub fn max_receivers(mut self, n: u32) -> Self {
        self.max_receivers = n;
        self
    }

    /// Largest message of an MPMC ring (bytes per slot): 1 B..=16 MiB, default 256; outside
    /// that, creating an MPMC segment fails with
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig). Unused by SPSC.
    pub fn slot_size(mut self, bytes: u64) -> Self {
        self.slot_size = bytes;
        self
    }

    /// Broadcast: what the sender does when the slowest receiver is a whole ring behind,
    /// recorded in the segment by its creator. [`Overflow::Block`] (the default) waits for it
    /// (a receiver that died is detached within the liveness interval);
    /// [`Overflow::Overwrite`] never waits, and a receiver that was lapped gets
    /// [`Error::Lagged`](crate::Error::Lagged) once. Unused by SPSC and MPMC.
    pub fn overflow(mut self, policy: Overflow) -> Self {
        self.overflow = policy;
        self
    }

    /// Broadcast: a receiver that joins finds up to the newest `n` messages already sent
    /// (default 0: it sees what is sent after it joined). At most the slot count minus one,
    /// else creating the segment fails with
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig). In [`Overflow::Block`] mode the
    /// sender keeps those `n` messages as if a receiver were `n` behind it.
    pub fn history(mut self, n: u64) -> Self {
        self.history = n;
        self
    }

    /// The broadcast settings `(overflow, history)` for a ring of `slots` slots, checked.
    pub(crate) fn broadcast_settings(&self, slots: u64) -> Result<(Overflow, u64)> {
        if self.history >= slots {
            return Err(Error::InvalidConfig(format!(
                "broadcast history {} is not below the slot count {slots} (raise the capacity)",
                self.history
            )));
        }
        Ok((self.overflow, self.history))
    }

    /// The broadcast reader maximum, checked against 1..=1024.
    pub(crate) fn reader_maximum(&self) -> Result<u32> {
        if !(1..=MAX_READERS).contains(&self.max_receivers) {
            return Err(Error::InvalidConfig(format!(
                "max_receivers {} is outside 1..={MAX_READERS}",
                self.max_receivers
            )));
        }
        Ok(self.max_receivers)
    }

    /// The wait strategy, recorded in the segment by its creator.
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// Permission bits of the segment file (0600 by default: only this user). Opening accepts
    /// the group and other write bits given here: a channel configured 0666 opens a segment of
    /// mode 0666, which the default refuses (see [`crate::trust`]).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// If true, the creator's drop leaves the name in `/dev/shm` (remove it with
    /// [`Segment::unlink`](crate::segment::Segment::unlink) or `shmring rm`). Default: false,
    /// the creator unlinks the name when it drops; peers that have it open keep working.
    pub fn persist(mut self, persist: bool) -> Self {
        self.persist = persist;
        self
    }

    /// Whether a futex or semaphore channel may pair its wakeups with `membarrier(2)` (default:
    /// true). With it, a notifier's only fence is a compiler fence and a side that goes to sleep
    /// pays a `membarrier` system call instead (`sync::barrier`): on the development VM this
    /// took the per-message `mfence` off both sides. Every process that opens such a segment
    /// must be able to register for `membarrier` (Linux 4.16+, not refused by seccomp); one
    /// that cannot gets [`Error::Incompatible`](crate::Error::Incompatible). Set false when
    /// such a process may join: both sides then fence on every notify, as before. Ignored
    /// when the creator cannot register itself, and by a spinning channel, which never
    /// sleeps.
    ///
    /// ```
    /// use shmring::{Config, Wait};
    /// let cfg = Config::default().wait(Wait::Futex).membarrier(false);
    /// # let _ = cfg;
    /// ```
    pub fn membarrier(mut self, on: bool) -> Self {
        self.membarrier = on;
        self
    }

    /// How long `open` waits for a segment that is being created to become ready.
    /// [`Duration::MAX`] waits for ever.
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// How often a blocked call checks that its peer is still alive (and the longest single
    /// sleep). A dead peer is noticed within about this long. Values below 100 µs count as
    /// 100 µs (a floor, so that a waiting side does not spin on the clock);
    /// [`Duration::MAX`] never checks (a dead peer is then never reported by a blocking call
    /// without a timeout).
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval.max(Duration::from_micros(100));
        self
    }

    /// How long a blocked call of this handle spins before it sleeps, with [`Wait::Futex`] and
    /// [`Wait::Semaphore`] ([`Wait::Spin`] always spins). `Duration::ZERO` sleeps at once: the
    /// least CPU, and the latency of a kernel wake-up (a few microseconds) on every wait. By
    /// default the budget is adaptive: about twice the waits that recently ended while
    /// spinning, between 2 µs and 100 µs, so that a peer answering within that range is met
    /// spinning whatever the message size, and an idle peer soon costs no CPU. This is a
    /// setting of this handle, not of the segment.
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmring::{Config, Wait};
    /// let cfg = Config::default().wait(Wait::Futex).spin_budget(Duration::ZERO);
    /// # let _ = cfg;
    /// ```
    pub fn spin_budget(mut self, budget: Duration) -> Self {
        self.spin_budget = Some(budget);
        self
    }

    /// Also opens segments owned by `uid`. By default a segment must be owned by this
    /// process's effective uid: another user could have made it first, to read or change
    /// everything sent through it ([`Error::Untrusted`](crate::Error::Untrusted)).
    ///
    /// ```
    /// let cfg = shmring::Config::default().allow_uid(1000).allow_gid(100);
    /// assert_eq!(cfg.trust().allowed_uids(), &[1000]);
    /// ```
    pub fn allow_uid(mut self, uid: u32) -> Self {
        self.trust = self.trust.allow_uid(uid);
        self
    }

    /// Also opens segments whose group is `gid`, whoever owns them and even if group-writable:
    /// the group-shared segment (`mode(0o660)`, made by any member of the group). Trusting a
    /// group trusts each of its members.
    pub fn allow_gid(mut self, gid: u32) -> Self {
        self.trust = self.trust.allow_gid(gid);
        self
    }

    /// What opening a segment with this config trusts: this process's effective uid, the
    /// allowed uids and groups, and the group/other write bits of [`mode`](Self::mode).
    pub fn trust(&self) -> Trust {
        self.trust.clone().allow_writable(self.mode)
    }

    /// The ring data bytes an SPSC segment made with this config gets (the capacity rounded
    /// up to a power of two), or [`Error::InvalidConfig`] if that is outside 64 B..=4 GiB.
    pub fn capacity_bytes(&self) -> Result<u64> {
        rounded_in(
            "SPSC capacity (ring data bytes)",
            self.capacity.unwrap_or(DEFAULT_SPSC_BYTES),
            MIN_CAPACITY,
            MAX_CAPACITY,
        )
    }

    /// The slot count an MPMC segment made with this config gets (the capacity rounded up to
    /// a power of two), or [`Error::InvalidConfig`] if that is outside 2..=16 Mi.
    pub fn capacity_slots(&self) -> Result<u64> {
        rounded_in(
            "MPMC capacity (slots)",
            self.capacity.unwrap_or(DEFAULT_MPMC_SLOTS),
            MIN_SLOTS,
            MAX_SLOTS,
        )
    }

    /// The MPMC slot size, checked against 1 B..=16 MiB.
    pub(crate) fn checked_slot_size(&self) -> Result<u64> {
        if (1..=MAX_SLOT_SIZE).contains(&self.slot_size) {
            Ok(self.slot_size)
        } else {
            Err(Error::InvalidConfig(format!(
                "MPMC slot size {} B is outside 1 B..={MAX_SLOT_SIZE} B",
                self.slot_size
            )))
        }
    }

    /// The MPMC maxima `(senders, receivers)`, checked against 1..=1024.
    pub(crate) fn peer_maxima(&self) -> Result<(u32, u32)> {
        for (what, n) in [
            ("max_senders", self.max_senders),
            ("max_receivers", self.max_receivers),
        ] {
            if !(1..=MAX_PEERS).contains(&n) {
                return Err(Error::InvalidConfig(format!(
                    "{what} {n} is outside 1..={MAX_PEERS}"
                )));
            }
        }
        Ok((self.max_senders, self.max_receivers))
    }

    /// The configured wait strategy.
    pub fn wait_strategy(&self) -> Wait {
        self.wait
    }
}

/// `want` rounded up to a power of two, if `want >= min` and the result is at most `max`.
fn rounded_in(what: &str, want: u64, min: u64, max: u64) -> Result<u64> {
    match want.checked_next_power_of_two() {
        Some(r) if want >= min && r <= max => Ok(r),
        _ => Err(Error::InvalidConfig(format!(
            "{what} {want} is outside {min}..={max} (a capacity is rounded up to a power of two, \
             and that must not exceed the maximum)"
        ))),
    }
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;

    fn invalid(r: Result<u64>) -> bool {
        matches!(r, Err(Error::InvalidConfig(_)))
    }

    #[test]
    fn capacities_round_up_inside_the_range_and_are_errors_outside() {
        let c = |n| Config::default().capacity(n);
        assert_eq!(Config::default().capacity_bytes().unwrap(), 1 << 20);
        assert_eq!(Config::default().capacity_slots().unwrap(), 1024);
        assert_eq!(c(64).capacity_bytes().unwrap(), 64);
        assert_eq!(c(65).capacity_bytes().unwrap(), 128);
        assert_eq!(c(1 << 32).capacity_bytes().unwrap(), 1 << 32);
        for bad in [0, 1, 63, (1 << 32) + 1, 1 << 40, u64::MAX] {
            assert!(invalid(c(bad).capacity_bytes()), "{bad}");
        }
        assert_eq!(c(2).capacity_slots().unwrap(), 2);
        assert_eq!(c(3).capacity_slots().unwrap(), 4);
        assert_eq!(c(1 << 24).capacity_slots().unwrap(), 1 << 24);
        for bad in [0, 1, (1 << 24) + 1, 1 << 40, u64::MAX] {
            assert!(invalid(c(bad).capacity_slots()), "{bad}");
        }
        let msg = c(0).capacity_bytes().unwrap_err().to_string();
        assert!(msg.contains("64..=4294967296"), "{msg}");
    }

    #[test]
    fn slot_sizes_and_peer_maxima_are_checked_not_clamped() {
        let d = Config::default();
        assert_eq!(d.clone().slot_size(1).checked_slot_size().unwrap(), 1);
        assert_eq!(
            d.clone().slot_size(1 << 24).checked_slot_size().unwrap(),
            1 << 24
        );
        assert!(d.clone().slot_size(0).checked_slot_size().is_err());
        assert!(d
            .clone()
            .slot_size((1 << 24) + 1)
            .checked_slot_size()
            .is_err());
        assert_eq!(
            d.clone().max_senders(1024).peer_maxima().unwrap(),
            (1024, 16)
        );
        assert_eq!(d.clone().max_receivers(1).peer_maxima().unwrap(), (16, 1));
        for (s, r) in [(0, 1), (1, 0), (1025, 1), (1, 1025), (u32::MAX, 1)] {
            let e = d.clone().max_senders(s).max_receivers(r).peer_maxima();
            assert!(matches!(e, Err(Error::InvalidConfig(_))), "{s} {r}");
        }
    }
}
