//! Options of a shared-memory channel.

use std::time::Duration;

use crate::ring::mpmc::MAX_PEERS;
use crate::sync::Wait;
use crate::trust::Trust;

/// How a segment is created and how its handles behave.
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
/// assert_eq!(cfg.capacity_bytes(), 1 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `None`: the ring's default (1 MiB of data for SPSC, 1024 slots for MPMC).
    pub(crate) capacity: Option<u64>,
    pub(crate) slot_size: u64,
    pub(crate) max_senders: u32,
    pub(crate) max_receivers: u32,
    pub(crate) wait: Wait,
    pub(crate) mode: u32,
    pub(crate) persist: bool,
    pub(crate) open_timeout: Duration,
    pub(crate) liveness_interval: Duration,
    /// Uids and groups trusted besides this process's effective uid.
    pub(crate) trust: Trust,
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
            open_timeout: Duration::from_secs(1),
            liveness_interval: Duration::from_millis(10),
            trust: Trust::default(),
        }
    }
}

impl Config {
    /// Ring size: data bytes for SPSC (rounded up to a power of two; the largest message is
    /// this minus 16; default 1 MiB), slot count for MPMC (rounded up to a power of two;
    /// default 1024).
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// MPMC: the most sender handles that may be attached at once (each holds a liveness lock
    /// of its own); the next one fails with [`Error::TooManyPeers`](crate::Error::TooManyPeers).
    /// Default 16, at most 1024. Unused by SPSC (always one).
    pub fn max_senders(mut self, n: u32) -> Self {
        self.max_senders = n.clamp(1, MAX_PEERS);
        self
    }

    /// MPMC: the most receiver handles that may be attached at once. Default 16, at most 1024.
    pub fn max_receivers(mut self, n: u32) -> Self {
        self.max_receivers = n.clamp(1, MAX_PEERS);
        self
    }

    /// Largest message of an MPMC ring (bytes per slot). Unused by SPSC.
    pub fn slot_size(mut self, bytes: u64) -> Self {
        self.slot_size = bytes;
        self
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

    /// How long `open` waits for a segment that is being created to become ready.
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// How often a blocked call checks that its peer is still alive (and the longest single
    /// sleep). A dead peer is noticed within about this long.
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval.max(Duration::from_micros(100));
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

    /// The ring data bytes an SPSC segment made with this config gets.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity
            .unwrap_or(1 << 20)
            .clamp(
                crate::ring::spsc::MIN_CAPACITY,
                crate::ring::spsc::MAX_CAPACITY,
            )
            .next_power_of_two()
    }

    /// The slot count an MPMC segment made with this config gets.
    pub fn capacity_slots(&self) -> u64 {
        self.capacity
            .unwrap_or(1024)
            .clamp(crate::ring::mpmc::MIN_SLOTS, crate::ring::mpmc::MAX_SLOTS)
            .next_power_of_two()
    }

    /// The configured wait strategy.
    pub fn wait_strategy(&self) -> Wait {
        self.wait
    }
}
