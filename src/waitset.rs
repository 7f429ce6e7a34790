//! A blocking [`WaitSet`]: one thread waits on many channel halves at once (`epoll` over their
//! doorbells) and learns which can make progress.
//!
//! Every half in the set stays [armed](crate::shm::Receiver::arm) while it is there, so its
//! peer rings its doorbell on every message (or freed room) and on close; [`WaitSet::wait`]
//! sleeps in `epoll_wait`, takes the rings of the halves it reports, and sweeps the members'
//! peers for liveness once per liveness interval (a dead peer rings nothing).
//!
//! The readiness is edge-like: a reported half should be served until its `try_` call says
//! `Empty` (or `Full`); what is still in it after that is reported again only when the peer
//! rings anew. A half is reported once at insertion, for what it held before.
//!
//! ```
//! use shmring::{spsc, Config, WaitSet};
//! # let base = format!("doc-waitset-{}", std::process::id());
//! let mut set = WaitSet::new()?;
//! let mut senders = Vec::new();
//! for i in 0..3 {
//!     let name = format!("{base}-{i}");
//!     senders.push(spsc::Sender::create(&name, Config::default().capacity(4096))?);
//!     set.insert(spsc::Receiver::open(&name)?)?;
//! }
//! let mut ready = Vec::new();
//! set.wait(Some(std::time::Duration::ZERO), &mut ready)?; // the insertion reports
//! senders[1].send(b"one")?;
//! set.wait(None, &mut ready)?;
//! assert_eq!(ready.iter().map(|r| r.key).collect::<Vec<_>>(), [1]);
//! assert_eq!(&*set.get_mut(1).unwrap().try_recv()?, b"one");
//! # Ok::<(), shmring::Error>(())
//! ```

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::error::{Error, Result};
use crate::shm::{self, Flavor};

mod sealed {
    pub trait Sealed {}
}

/// A channel half a [`WaitSet`] can wait on: the shared-memory [`shm::Sender`] and
/// [`shm::Receiver`] of every ring. (Sealed.)
pub trait Waitable: sealed::Sealed {
    #[doc(hidden)]
    fn ws_arm(&mut self) -> Result<BorrowedFd<'_>>;
    #[doc(hidden)]
    fn ws_disarm(&mut self);
    #[doc(hidden)]
    fn ws_clear(&mut self);
    #[doc(hidden)]
    fn ws_check(&self) -> Result<()>;
    #[doc(hidden)]
    fn ws_interval(&self) -> Duration;
}

macro_rules! waitable {
    ($half:ident) => {
        impl<R: Flavor> sealed::Sealed for shm::$half<R> {}
        impl<R: Flavor> Waitable for shm::$half<R> {
            fn ws_arm(&mut self) -> Result<BorrowedFd<'_>> {
                if self.wait_strategy() == crate::Wait::Spin {
                    // Its peer skips all wake-up work: the doorbell would never ring.
                    return Err(Error::Incompatible(
                        "a Wait::Spin ring rings no doorbell; a WaitSet cannot wait on it".into(),
                    ));
                }
                self.arm()?;
                self.doorbell()
            }
            fn ws_disarm(&mut self) {
                self.disarm()
            }
            fn ws_clear(&mut self) {
                self.clear_doorbell();
            }
            fn ws_check(&self) -> Result<()> {
                self.check_peer()
            }
            fn ws_interval(&self) -> Duration {
                self.liveness_interval()
            }
        }
    };
}
waitable!(Sender);
waitable!(Receiver);

/// A member reported by [`WaitSet::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// The key [`WaitSet::insert`] gave the half.
    pub key: usize,
    /// True if the half was reported because its peer died (its `check_peer` says
    /// [`Error::PeerDead`]); it is reported so at every sweep until removed.
    pub peer_dead: bool,
}

/// Many channel halves waited on by one thread (module docs).
#[derive(Debug)]
pub struct WaitSet<T: Waitable> {
    epoll: Epoll,
    slots: Vec<Option<T>>,
    free: Vec<usize>,
    /// Inserted since the last wait: reported once.
    fresh: Vec<usize>,
    events: Vec<EpollEvent>,
    interval: Duration,
    next_sweep: Instant,
}

impl<T: Waitable> WaitSet<T> {
    /// An empty set.
    pub fn new() -> Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::io("epoll_create1", std::io::Error::from(e)))?;
        let interval = Duration::from_millis(10);
        Ok(WaitSet {
            epoll,
            slots: Vec::new(),
            free: Vec::new(),
            fresh: Vec::new(),
            events: vec![EpollEvent::empty(); 256],
            interval,
            next_sweep: Instant::now() + interval,
        })
    }

    /// Adds `half` (armed from now on); its key. A half of a [`Wait::Spin`](crate::Wait::Spin)
    /// ring is refused ([`Error::Incompatible`]): its peer rings nothing.
    pub fn insert(&mut self, mut half: T) -> Result<usize> {
        // The key is taken only once the half is in: a refused half leaves the set as it was
        // (the half, dropped, disarms itself).
        let key = self.free.last().copied().unwrap_or(self.slots.len());
        let fd = half.ws_arm()?;
        self.epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, key as u64))
            .map_err(|e| Error::io("epoll_ctl(ADD) of a doorbell", std::io::Error::from(e)))?;
        self.interval = self.interval.min(half.ws_interval());
        if self.free.last() == Some(&key) {
            self.free.pop();
        }
        if key == self.slots.len() {
            self.slots.push(Some(half));
        } else {
            self.slots[key] = Some(half);
        }
        self.fresh.push(key);
        Ok(key)
    }

    /// Takes the half with `key` out of the set (disarmed).
    pub fn remove(&mut self, key: usize) -> Option<T> {
        let mut half = self.slots.get_mut(key)?.take()?;
        if let Ok(fd) = half.ws_arm() {
            let _ = self.epoll.delete(fd);
        }
        half.ws_disarm();
        self.free.push(key);
        self.fresh.retain(|&k| k != key);
        Some(half)
    }

    /// The half with `key`, to serve it.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.slots.get_mut(key)?.as_mut()
    }

    /// How many halves the set holds.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True if the set holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until some halves can make progress (or their peer died), at most `timeout`
    /// (`None`: for ever), and puts them in `ready` (cleared first; empty on timeout).
    pub fn wait(&mut self, timeout: Option<Duration>, ready: &mut Vec<Ready>) -> Result<()> {
        ready.clear();
        ready.extend(self.fresh.drain(..).map(|key| Ready {
            key,
            peer_dead: false,
        }));
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let now = Instant::now();
            let mut until = self.next_sweep.saturating_duration_since(now);
            if let Some(d) = deadline {
                until = until.min(d.saturating_duration_since(now));
            }
            if !ready.is_empty() {
                until = Duration::ZERO;
            }
            let ms = until.as_millis().min(u128::from(u16::MAX)) as u16;
            // Round up so that a sub-millisecond wait does not spin.
            let ms = if Duration::from_millis(u64::from(ms)) < until {
                ms.saturating_add(1)
            } else {
                ms
            };
            let n = match self.epoll.wait(&mut self.events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => return Err(Error::io("epoll_wait", std::io::Error::from(e))),
            };
            for ev in &self.events[..n] {
                let key = ev.data() as usize;
                if let Some(Some(half)) = self.slots.get_mut(key) {
                    half.ws_clear();
                    if !ready.iter().any(|r| r.key == key) {
                        ready.push(Ready {
                            key,
                            peer_dead: false,
                        });
                    }
                }
            }
            let now = Instant::now();
            if now >= self.next_sweep {
                self.next_sweep = now + self.interval;
                for (key, slot) in self.slots.iter().enumerate() {
                    if let Some(half) = slot {
                        if let Err(Error::PeerDead) = half.ws_check() {
                            ready.retain(|r| r.key != key);
                            ready.push(Ready {
                                key,
                                peer_dead: true,
                            });
                        }
                    }
                }
            }
            if !ready.is_empty() || deadline.is_some_and(|d| now >= d) {
                return Ok(());
            }
        }
    }
}

impl<T: Waitable> AsFd for WaitSet<T> {
    /// The `epoll` descriptor: readable when some member's doorbell rang (to nest the set in
    /// another event loop; call [`WaitSet::wait`] with a zero timeout then).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }
}

impl<T: Waitable> Drop for WaitSet<T> {
    fn drop(&mut self) {
        for half in self.slots.iter_mut().flatten() {
            half.ws_disarm();
        }
    }
}
