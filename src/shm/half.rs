//! The generic channel halves: [`Sender`] and [`Receiver`] over any ring flavor.

// `Site` is `Segment` itself outside the loom build, where `Segment -> Site` is the identity.
#![cfg_attr(not(shmring_loom), allow(clippy::useless_conversion))]

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut, Range};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Duration;

use super::flavor::{ConsumerEnd, End, Flavor, Frame as _, Grant as _, Parts, ProducerEnd, Role};
use super::site::Site;
use super::{init_events, Events, READABLE, WRITABLE};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ring::layout::{align_up, copy_bytes};
use crate::segment::{Identity, Segment};
use crate::sync::doorbell::{Bell, Ringer};
use crate::sync::semaphore::SemSet;
use crate::sync::wait::{block_on, Event, Fences, Sleep, Until, WaitPolicy};
use crate::sync::Wait;

/// Offsets of the parts of a segment whose body is `body_len` bytes (module docs of `shm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    ctrl: u64,
    events: u64,
    body: u64,
    total: u64,
}

/// Spins a busy-poll (`Wait::Spin`) wait makes inline, in the caller's `send` / `recv`,
/// before it enters the wait loop (`block_on`). The loop makes the same attempts, with no look
/// at the clock for its first 32 spins either; but there each attempt is a call of a closure
/// that returns its `Result` through memory, and a message that arrives ends the wait through
/// the closure's, the loop's and `peek_blocking`'s returns (about 60 instructions from the
/// header load to `recv_into`, in the disassembly of x86-64 release builds). Here the ring's
/// `try_peek` / `try_reserve` is inlined into the loop and one return ends it (about 40), and
/// most waits of a round trip (a few hundred nanoseconds) end here. 31 spins: with the loop's
/// first 32, no clock is read for the first ~60 spins, well inside a slice.
#[cfg(not(shmring_loom))]
const INLINE_SPINS: u32 = 31;

/// Offset of the events in a segment holding an `R` ring.
#[cfg_attr(shmring_loom, allow(dead_code))]
pub(crate) fn events_offset<R: Flavor>() -> u64 {
    align_up(
        crate::segment::CONTROL_OFFSET + std::mem::size_of::<R::Control>(),
        128,
    ) as u64
}

impl Layout {
    fn new<R: Flavor>(body_len: u64) -> Result<Layout> {
        let ctrl = crate::segment::CONTROL_OFFSET;
        let events = align_up(ctrl + std::mem::size_of::<R::Control>(), 128);
        let body = align_up(events + std::mem::size_of::<Events>(), 4096) as u64;
        Ok(Layout {
            ctrl: ctrl as u64,
            events: events as u64,
            body,
            total: body
                .checked_add(body_len)
                .ok_or(Error::Corrupted("segment length overflows"))?,
        })
    }
}

/// How a half comes to its segment.
enum How<'a> {
    Create(&'a str),
    Open(&'a str),
    CreateOrOpen(&'a str),
    Anonymous,
    Fd(OwnedFd),
    #[cfg(shmring_loom)]
    Heap(super::site::HeapSite),
}

/// What a half holds besides its ring end: the mapping, how to wait, and who its peers are.
#[derive(Debug)]
pub(super) struct Link<R: Flavor> {
    site: Site,
    events: NonNull<Events>,
    ctrl: NonNull<R::Control>,
    wait: Wait,
    /// How to sleep on each event (the semaphores of `sem`, for `Wait::Semaphore`).
    sleep: [Sleep; 2],
    /// The System V semaphore set this handle validated and joined (`Wait::Semaphore`).
    #[cfg(not(shmring_loom))]
    sem: Option<SemSet>,
    policy: WaitPolicy,
    role: Role,
    /// Participant indexes of our side and of the other side, and our own place.
    mine: Range<usize>,
    peers: Range<usize>,
    index: usize,
    /// True if this half passes wakes on to others of its side (`mpmc` docs, "Waking"): the
    /// ring wants it (`PASS_ON`), someone may sleep (not `Wait::Spin`), and the header admits
    /// another participant of our side to sleep (more than one place; the maxima are fixed at
    /// creation, so with one place nobody else of our side can ever exist).
    pass_on: bool,
    /// The events' doorbell tokens, read once at attach (a peer changing them later changes
    /// nothing for us).
    tokens: [u64; 2],
    /// Rings the doorbells of armed pollers (its socket is made on the first ring).
    ringer: Ringer,
    /// Our own doorbell, bound on first use, and whether we are armed on our event.
    bell: Option<Bell>,
    armed: bool,
    /// The half's pollable descriptor ([`AsFd`]): an epoll instance made at attach, into which
    /// the doorbell is added when it is bound, so the descriptor exists (and can be registered
    /// with an event loop) before the first `arm` and stays the same for the half's life. It
    /// is readable exactly when the doorbell is.
    #[cfg(not(shmring_loom))]
    poll: nix::sys::epoll::Epoll,
}

// SAFETY: the pointers lead into the mapping that `site` owns (it moves with them), and
// everything reached through them is atomic (events, control block).
unsafe impl<R: Flavor> Send for Link<R> {}

impl<R: Flavor> Link<R> {
    fn event(&self, which: usize) -> &Event {
        // SAFETY: `events` points into the mapping owned by `self.site` (checked by `at`),
        // initialised by the creator before it published the segment. `Event` holds only
        // atomics and a process-shared semaphore, which may be shared with other processes.
        unsafe { &self.events.as_ref()[which] }
    }

    fn control(&self) -> &R::Control {
        // SAFETY: inside the mapping we own (checked by `at`), initialised by the creator
        // before it published the segment; control blocks hold atomics only.
        unsafe { self.ctrl.as_ref() }
    }

    /// Wakes one sleeper of `which` (not in `Wait::Spin`: nobody sleeps), or rings the
    /// doorbells armed on it.
    #[inline]
    pub(super) fn notify_one(&self, which: usize) {
        if self.wait != Wait::Spin {
            let bells = self.event(which).notify_one(self.sleep[which]);
            if bells != 0 {
                self.ring(which, bells);
            }
        }
    }

    /// As [`notify_one`](Self::notify_one), only if `cond` holds (`Event::notify_one_if`).
    #[inline]
    fn notify_one_if(&self, which: usize, cond: impl FnOnce() -> bool) {
        let bells = self.event(which).notify_one_if(self.sleep[which], cond);
        if bells != 0 {
            self.ring(which, bells);
        }
    }

    /// `notify_one(which)`, then the pass-on `notify_one_if(other, cond)`, after one fence
    /// (`Event::notify_one_and_one_if`): for a copying call that has claimed, copied and
    /// published (or freed) by the time it notifies, so both wakes follow its stores.
    #[inline]
    fn notify_one_and_pass_on(&self, which: usize, other: usize, cond: impl FnOnce() -> bool) {
        let (bells, other_bells) = self.event(which).notify_one_and_one_if(
            self.sleep[which],
            self.event(other),
            self.sleep[other],
            cond,
        );
        if bells != 0 {
            self.ring(which, bells);
        }
        if other_bells != 0 {
            self.ring(other, other_bells);
        }
    }

    fn notify_all(&self, which: usize) {
        let bells = self.event(which).notify_all(self.sleep[which]);
        if bells != 0 {
            self.ring(which, bells);
        }
    }

    /// Rings the doorbells in `mask` of the places that wait on `which` (module docs of
    /// `sync::doorbell`), except our own.
    #[cold]
    #[inline(never)]
    fn ring(&self, which: usize, mask: u64) {
        let waiting = if which == READABLE {
            Role::Receiver
        } else {
            Role::Sender
        };
        let places = if waiting == self.role {
            self.mine.clone()
        } else {
            self.peers.clone()
        };
        for i in places {
            if mask & (1u64 << (i % 64)) != 0 && i != self.index {
                self.ringer.ring(self.tokens[which], i);
            }
        }
    }

    /// The event this half waits on: `READABLE` for a receiver, `WRITABLE` for a sender.
    fn own_event(&self) -> usize {
        match self.role {
            Role::Receiver => READABLE,
            Role::Sender => WRITABLE,
        }
    }

    /// Binds our doorbell if not yet done, and gives it.
    fn bell(&mut self) -> Result<&Bell> {
        if self.bell.is_none() {
            let token = self.tokens[self.own_event()];
            let bell = Bell::bind(token, self.index)?;
            #[cfg(not(shmring_loom))]
            {
                use nix::sys::epoll::{EpollEvent, EpollFlags};
                self.poll
                    .add(bell.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 0))
                    .map_err(|e| {
                        Error::io(
                            "adding the doorbell to the half's epoll",
                            std::io::Error::from(e),
                        )
                    })?;
            }
            self.bell = Some(bell);
        }
        Ok(self.bell.as_ref().expect("bound above"))
    }

    /// Announces us as a poller on our event (doorbell bound first). Idempotent.
    fn arm(&mut self) -> Result<()> {
        self.bell()?;
        if !self.armed {
            let fences = self.sleep[self.own_event()].fences();
            self.event(self.own_event())
                .arm_poller(self.index as u32, fences);
            self.armed = true;
        }
        Ok(())
    }

    /// Withdraws the announcement of [`arm`](Self::arm). Idempotent.
    fn disarm(&mut self) {
        if self.armed {
            self.event(self.own_event()).disarm_poller();
            self.armed = false;
        }
    }

    /// Wakes the receivers after a publication: one, or every one for a ring whose receivers
    /// each read every message (`ProducerEnd::WAKE_ALL`).
    #[inline]
    pub(super) fn notify_readers(&self) {
        if <R::Producer as ProducerEnd>::WAKE_ALL {
            if self.wait != Wait::Spin {
                self.notify_all(READABLE);
            }
        } else {
            self.notify_one(READABLE);
        }
    }

    fn peer_role(&self) -> Role {
        match self.role {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        }
    }

    /// Whether participant `index` of `role` is alive (see [`alive_in`]).
    fn alive(&self, role: Role, index: usize) -> Result<bool> {
        alive_in(&self.site, self.role, &self.mine, &self.peers, role, index)
    }

    /// Once per wait slice: frees what a dead participant blocking us holds, then
    /// `Err(PeerDead)` if the other side counts someone attached but no live process holds any
    /// of its places.
    fn check<E: End>(&self, watcher: E::Watcher, own_event: usize) -> Result<()> {
        if E::recover(watcher, &mut |role_is_producer, i| {
            self.alive(Role::of_producer(role_is_producer), i)
        })? {
            // Others of our side may be asleep behind the same slot.
            self.notify_all(own_event);
        }
        let peer = self.peer_role();
        let ever = self.site.side_ever_attached(peer.side());
        if R::counted(self.control(), peer, ever) == 0 {
            return Ok(());
        }
        for i in self.peers.clone() {
            if self.site.side_alive(i)? {
                return Ok(());
            }
        }
        Err(Error::PeerDead)
    }

    fn segment(&self) -> &Segment {
        #[cfg(not(shmring_loom))]
        return &self.site;
        #[cfg(shmring_loom)]
        return self.site.segment();
    }
}

impl<R: Flavor> Drop for Link<R> {
    fn drop(&mut self) {
        self.disarm();
        #[cfg(not(shmring_loom))]
        if let Some(set) = self.sem.take() {
            // Runs before the segment drops (and maybe unlinks its name): ask it what it will
            // be then.
            set.leave(!self.site.reachable_after_drop());
        }
    }
}

/// The fence pairing the header asks for (`sync::barrier`): with [`FLAG_MEMBARRIER`] this
/// process must register for `membarrier`, or its notifiers would not be covered by the
/// other participants' barriers.
///
/// [`FLAG_MEMBARRIER`]: crate::segment::FLAG_MEMBARRIER
fn fences_of(snap: &crate::segment::HeaderSnapshot, name: &str) -> Result<Fences> {
    if snap.flags & !crate::segment::KNOWN_FLAGS != 0 {
        return Err(Error::Corrupted("unknown flags in header"));
    }
    if snap.flags & crate::segment::FLAG_MEMBARRIER == 0 {
        return Ok(Fences::Symmetric);
    }
    #[cfg(not(shmring_loom))]
    if crate::sync::barrier::register() {
        return Ok(Fences::Membarrier);
    }
    Err(Error::Incompatible(format!(
        "{name} pairs its wakeups with membarrier(2), which this process cannot use (a kernel \
         before 4.16, or a seccomp filter refusing it); have its creator set \
         Config::membarrier(false)"
    )))
}

/// Creates a segment (named, or anonymous for `None`) and lays out an empty `R` ring in it,
/// not yet published.
fn create<R: Flavor>(name: Option<&str>, cfg: &Config) -> Result<Site> {
    let (capacity, slot_size) = R::geometry(cfg)?;
    let layout = Layout::new::<R>(R::body_len(capacity, slot_size)?)?;
    let id = Identity {
        ring_kind: R::KIND,
        wait: cfg.wait.to_raw(),
        capacity,
        slot_size,
        data_offset: layout.body,
        total_len: layout.total,
        flags: if cfg.wait != Wait::Spin && cfg.membarrier && crate::sync::barrier::register() {
            crate::segment::FLAG_MEMBARRIER
        } else {
            0
        },
    };
    let seg = match name {
        Some(name) => Segment::create(name, &id, cfg.mode)?,
        None => Segment::create_anonymous(R::KIND.as_str(), &id)?,
    };
    let mut site = Site::from(seg);
    site.set_unlink_on_drop(!cfg.persist);
    // The semaphore set: made here, recorded in the events; every handle (this one too, in
    // `attach`) then joins it through the record. On failure it goes with the segment.
    #[cfg(not(shmring_loom))]
    let sem = match cfg.wait {
        Wait::Semaphore => Some(SemSet::create(cfg.mode)?),
        _ => None,
    };
    #[cfg(shmring_loom)]
    let sem = None;
    let made = init::<R>(&site, cfg, &layout, capacity, slot_size, sem.as_ref());
    #[cfg(not(shmring_loom))]
    if let Some(set) = sem {
        set.leave(made.is_err());
    }
    made?;
    Ok(site)
}

/// Writes the control block, the events and the body of a fresh segment.
fn init<R: Flavor>(
    site: &Site,
    cfg: &Config,
    layout: &Layout,
    capacity: u64,
    slot_size: u64,
    sem: Option<&SemSet>,
) -> Result<()> {
    let (max_s, max_r) = R::maxima(cfg)?;
    let h = site.header();
    h.max_senders
        .store(max_s, std::sync::atomic::Ordering::Relaxed);
    h.max_receivers
        .store(max_r, std::sync::atomic::Ordering::Relaxed);
    let ctrl = site.at(layout.ctrl, std::mem::size_of::<R::Control>() as u64)?;
    let events = site.at(layout.events, std::mem::size_of::<Events>() as u64)?;
    let body = site.at(layout.body, layout.total - layout.body)?;
    // SAFETY: the regions are inside the fresh mapping (checked by `at`), aligned (128-byte and
    // 4 KiB offsets of a page-aligned mapping), and no other process uses them before
    // `publish`. Writing whole values initialises them without forming references first.
    unsafe {
        ctrl.cast::<R::Control>()
            .as_ptr()
            .write(R::new_control(cfg));
        init_events(events, sem)?;
        R::init_body(Parts {
            ctrl: ctrl.cast(),
            body,
            capacity,
            slot_size,
        });
    }
    Ok(())
}

/// Comes to the segment (per `how`), checks that it holds an `R` ring, and takes a free place
/// of `role` in it.
/// Whether participant `index` of `asked` is alive, for a handle of role `me` with places
/// `mine` and peers' places `peers`. An index outside that role's places (a scribbled owner
/// mark) counts as alive: nothing is freed on its word.
fn alive_in(
    site: &Site,
    me: Role,
    mine: &Range<usize>,
    peers: &Range<usize>,
    asked: Role,
    index: usize,
) -> Result<bool> {
    let places = if asked == me { mine } else { peers };
    if !places.contains(&index) {
        return Ok(true);
    }
    site.side_alive(index)
}

/// Opens or creates the segment, checks its header, takes a place (a liveness lock) and makes
/// this handle's ring end there with `make`. A place whose dead previous holder left a claim
/// that cannot be told apart yet from a live participant's (`End::clear_predecessor`) is given
/// back and the next one is tried. Returns the link, the end and how many slots the
/// predecessor's leftovers freed.
fn attach<R: Flavor, E: End>(
    how: How<'_>,
    cfg: &Config,
    role: Role,
    make: impl Fn(Parts<R::Control>, usize) -> Result<E>,
) -> Result<(Link<R>, E, usize)> {
    let (site, created): (Site, bool) = match how {
        How::Create(name) => (create::<R>(Some(name), cfg)?, true),
        How::Open(name) => (
            Segment::open(name, cfg.open_timeout, &cfg.trust())?.into(),
            false,
        ),
        How::CreateOrOpen(name) => create_or_open::<R>(name, cfg)?,
        How::Anonymous => (create::<R>(None, cfg)?, true),
        How::Fd(fd) => (Segment::from_fd(fd, cfg.open_timeout)?.into(), false),
        #[cfg(shmring_loom)]
        How::Heap(heap) => (Site::Heap(heap), false),
    };
    let snap = site.header().snapshot();
    let found = crate::segment::RingKind::from_raw(snap.ring_kind)
        .ok_or(Error::Corrupted("unknown ring kind in header"))?;
    if found != R::KIND {
        return Err(Error::Incompatible(format!(
            "{} holds an {} ring; open it with shmring::{}",
            site.name(),
            found.as_str(),
            found.as_str()
        )));
    }
    let wait =
        Wait::from_raw(snap.wait).ok_or(Error::Corrupted("unknown wait strategy in header"))?;
    let fences = fences_of(&snap, site.name())?;
    let body_len = R::body_len(snap.capacity, snap.slot_size)?;
    let layout = Layout::new::<R>(body_len)?;
    if snap.data_offset != layout.body || snap.total_len != layout.total {
        return Err(Error::Corrupted(
            "header offsets do not match the ring's layout",
        ));
    }
    let mine = R::places(&snap, role)?;
    let peer_role = match role {
        Role::Sender => Role::Receiver,
        Role::Receiver => Role::Sender,
    };
    let peers = R::places(&snap, peer_role)?;
    let events = site
        .at(layout.events, std::mem::size_of::<Events>() as u64)?
        .cast();
    let ctrl = site
        .at(layout.ctrl, std::mem::size_of::<R::Control>() as u64)?
        .cast();
    let body = site.at(layout.body, body_len)?;
    let parts = Parts {
        ctrl,
        body,
        capacity: snap.capacity,
        slot_size: snap.slot_size,
    };
    let mut taken = None;
    for i in mine.clone() {
        if !site.lock_side(i)? {
            continue;
        }
        let mut end = make(parts, i)?;
        let (freed, settled) = end.clear_predecessor(&mut |p, j| {
            alive_in(&site, role, &mine, &peers, Role::of_producer(p), j)
        })?;
        if settled {
            taken = Some((end, freed, i));
            break;
        }
        // Keep the dead holder's record for the survivors; this place is tried again later.
        drop(end);
        site.unlock_side(i)?;
    }
    let Some((end, freed, index)) = taken else {
        let name = site.name().to_owned();
        return Err(
            if R::ONE_PER_SIDE || (R::ONE_SENDER && role == Role::Sender) {
                Error::InUse {
                    name,
                    side: role.as_str(),
                }
            } else {
                Error::TooManyPeers {
                    name,
                    side: role.as_str(),
                    max: mine.len() as u32,
                }
            },
        );
    };
    site.record_side(role.side());
    if created {
        site.publish();
    }
    #[cfg(not(shmring_loom))]
    let (sleep, sem) = {
        // SAFETY: `events` lies in the mapping `site` owns (checked by `at`), initialised by
        // the creator before it published the segment; `Event` holds only atomics.
        let first: &Event = unsafe { &events.cast::<Events>().as_ref()[READABLE] };
        match wait {
            Wait::Spin => ([Sleep::Spin; 2], None),
            Wait::Futex => ([Sleep::Futex(fences); 2], None),
            Wait::Semaphore => {
                let set = SemSet::attach(first.sem_record(), site.owner_uid()?)?;
                let sleep = [
                    Sleep::Semaphore(set.slot(READABLE as u16), fences),
                    Sleep::Semaphore(set.slot(WRITABLE as u16), fences),
                ];
                (sleep, Some(set))
            }
        }
    };
    #[cfg(shmring_loom)]
    let sleep = {
        let _ = fences;
        [Sleep::from(wait); 2]
    };
    // SAFETY: as above: inside the mapping, initialised before publication, atomics only.
    let ev: &Events = unsafe { events.cast::<Events>().as_ref() };
    let tokens = [ev[READABLE].token(), ev[WRITABLE].token()];
    let link = Link {
        site,
        events,
        ctrl,
        wait,
        sleep,
        #[cfg(not(shmring_loom))]
        sem,
        policy: WaitPolicy::new(cfg.liveness_interval, cfg.spin_budget),
        role,
        pass_on: wait != Wait::Spin
            && mine.len() > 1
            && match role {
                Role::Sender => <R::Producer as ProducerEnd>::PASS_ON,
                Role::Receiver => <R::Consumer as ConsumerEnd>::PASS_ON,
            },
        mine,
        peers,
        index,
        tokens,
        ringer: Ringer::default(),
        bell: None,
        armed: false,
        #[cfg(not(shmring_loom))]
        poll: nix::sys::epoll::Epoll::new(nix::sys::epoll::EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| {
                Error::io(
                    "epoll for the half's pollable descriptor",
                    std::io::Error::from(e),
                )
            })?,
    };
    Ok((link, end, freed))
}

/// Creates `name`, or opens it if it exists (retrying a few times if its creator removes it
/// between our two calls).
fn create_or_open<R: Flavor>(name: &str, cfg: &Config) -> Result<(Site, bool)> {
    let mut tries = 0;
    loop {
        match create::<R>(Some(name), cfg) {
            Ok(site) => return Ok((site, true)),
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::AlreadyExists) => {}
            Err(e) => return Err(e),
        }
        match Segment::open(name, cfg.open_timeout, &cfg.trust()) {
            Ok(seg) => return Ok((seg.into(), false)),
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) && tries < 8 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The constructors and the introspection, the same for both halves of every ring.
macro_rules! constructors {
    ($half:ident, $role:expr, $peer_side:expr) => {
        /// The half's pollable descriptor, for `epoll`, `poll` or tokio's `AsyncFd`: readable
        /// when the other side has rung this half's [doorbell](Self::doorbell), which it does
        /// only while the half is [armed](Self::arm) (so register it, then `arm`; see
        /// `doorbell` for the whole loop). It exists from attach on and never changes (an epoll
        /// instance holding the doorbell, bound on the first `arm`).
        ///
        /// ```
        /// use std::os::fd::{AsFd, AsRawFd};
        /// use shmring::{mpmc, Config, Error};
        /// # let name = format!("doc-asfd-{}", std::process::id());
        /// let mut tx = mpmc::Sender::create(&name, Config::default().capacity(8).slot_size(16))?;
        /// let mut rx = mpmc::Receiver::open(&name)?;
        /// let fd = rx.as_fd().as_raw_fd();             // register it with your event loop
        /// rx.arm()?;
        /// assert!(matches!(rx.try_recv(), Err(Error::Empty)));
        /// tx.send(b"ding")?;
        /// let mut pfd = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
        /// // SAFETY: one valid pollfd.
        /// assert_eq!(unsafe { libc::poll(pfd.as_mut_ptr(), 1, 1000) }, 1);
        /// rx.clear_doorbell();
        /// assert_eq!(&*rx.try_recv()?, b"ding");
        /// # Ok::<(), shmring::Error>(())
        /// ```
        #[cfg(not(shmring_loom))]
        impl<R: Flavor> AsFd for $half<R> {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.link.poll.0.as_fd()
            }
        }

        impl<R: Flavor> $half<R> {
            /// Creates the segment `name` and attaches to it. Fails if the name exists.
            ///
            /// ```
            /// # let name = format!("doc-create-{}", std::process::id());
            /// use shmring::{spsc, Config};
            /// let tx = spsc::Sender::create(&name, Config::default())?;
            /// assert!(spsc::Sender::create(&name, Config::default()).is_err());
            /// # Ok::<(), shmring::Error>(())
            /// ```
            pub fn create(name: &str, cfg: Config) -> Result<Self> {
                Self::attach(How::Create(name), &cfg)
            }

            /// Opens the existing segment `name`.
            pub fn open(name: &str) -> Result<Self> {
                Self::attach(How::Open(name), &Config::default())
            }

            /// Opens the existing segment `name`, with `cfg`'s timeouts (the ring's own
            /// settings are the creator's, read from the segment).
            pub fn open_with(name: &str, cfg: Config) -> Result<Self> {
                Self::attach(How::Open(name), &cfg)
            }

            /// Opens `name` if it exists, or creates it with `cfg`.
            pub fn create_or_open(name: &str, cfg: Config) -> Result<Self> {
                Self::attach(How::CreateOrOpen(name), &cfg)
            }

            /// Creates an anonymous segment (a sealed memfd, no name in /dev/shm) and attaches
            /// to it. Hand [`segment_fd`](Self::segment_fd) to the other process over a Unix
            /// socket ([`send_fd`](crate::segment::fd_passing::send_fd)); it opens it with
            /// `from_fd`. Nothing is left behind when both processes are gone.
            ///
            /// ```
            /// use shmring::{spsc, Config};
            /// let mut tx = spsc::Sender::create_anonymous(Config::default().capacity(4096))?;
            /// // Normally received over a socket by another process:
            /// let fd = tx.segment_fd().try_clone_to_owned().unwrap();
            /// let mut rx = spsc::Receiver::from_fd(fd, Config::default())?;
            /// tx.send(b"no name in /dev/shm")?;
            /// assert_eq!(&*rx.recv()?, b"no name in /dev/shm");
            /// # Ok::<(), shmring::Error>(())
            /// ```
            pub fn create_anonymous(cfg: Config) -> Result<Self> {
                Self::attach(How::Anonymous, &cfg)
            }

            /// Opens an anonymous segment received as a descriptor. Refuses a descriptor
            /// that is not a sealed shmring memfd.
            pub fn from_fd(fd: OwnedFd, cfg: Config) -> Result<Self> {
                Self::attach(How::Fd(fd), &cfg)
            }

            /// The segment's descriptor, to pass to another process (see
            /// [`create_anonymous`](Self::create_anonymous)).
            pub fn segment_fd(&self) -> BorrowedFd<'_> {
                self.link.segment().fd()
            }

            /// The segment's name, with its leading `/`.
            pub fn name(&self) -> &str {
                self.link.site.name()
            }

            /// The largest message this channel carries: the capacity minus 16 bytes for
            /// SPSC (a frame header, and the word after the frame that the ring keeps clean),
            /// the slot size for MPMC.
            pub fn max_message_size(&self) -> usize {
                self.end.max_message()
            }

            /// The wait strategy in force (the creator's, recorded in the segment).
            pub fn wait_strategy(&self) -> Wait {
                self.link.wait
            }

            /// True once a handle of the other side has attached (it may have left since).
            /// Until then a blocked call waits for one to arrive; use the `_timeout` forms to
            /// bound that.
            pub fn peer_attached(&self) -> bool {
                self.link.site.side_ever_attached($peer_side)
            }

            /// Senders and receivers attached now, as counted in the segment (a process that
            /// died without closing stays counted until a blocked call notices it).
            pub fn peers(&self) -> (u32, u32) {
                let site = &self.link.site;
                let ctrl = self.link.control();
                let count =
                    |role: Role| R::counted(ctrl, role, site.side_ever_attached(role.side()));
                (count(Role::Sender), count(Role::Receiver))
            }

            /// This half's doorbell: a descriptor (for `epoll`, `poll`, tokio's `AsyncFd`) that
            /// turns readable when the other side rings it, bound on first use.
            ///
            /// It is rung only while this half is [armed](Self::arm), so an unpolled channel
            /// costs nothing. To wait in an event loop:
            ///
            /// 1. [`arm`](Self::arm), then try the operation (`try_recv`, `try_send`...);
            /// 2. on `Empty` / `Full`, wait until the doorbell is readable, for at most the
            ///    [liveness interval](Self::liveness_interval);
            /// 3. [`clear_doorbell`](Self::clear_doorbell), then
            ///    [`check_peer`](Self::check_peer) if the interval passed, and go to 1;
            /// 4. once the operation succeeded, [`disarm`](Self::disarm) (or stay armed while
            ///    you keep polling; the other side then rings on every change).
            ///
            /// The doorbell is rung on every message (for a receiver) or freed room (for a
            /// sender) and on close; a dead peer rings nothing, hence step 3.
            ///
            /// ```
            /// use std::os::fd::AsRawFd;
            /// use shmring::{spsc, Config, Error};
            /// # let name = format!("doc-doorbell-{}", std::process::id());
            /// let mut tx = spsc::Sender::create(&name, Config::default())?;
            /// let mut rx = spsc::Receiver::open(&name)?;
            /// rx.arm()?;
            /// assert!(matches!(rx.try_recv(), Err(Error::Empty)));
            /// tx.send(b"ding")?;
            /// let mut pfd = [libc::pollfd { fd: rx.doorbell()?.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
            /// // SAFETY: one valid pollfd.
            /// assert_eq!(unsafe { libc::poll(pfd.as_mut_ptr(), 1, 1000) }, 1);
            /// rx.clear_doorbell();
            /// assert_eq!(&*rx.try_recv()?, b"ding");
            /// rx.disarm();
            /// # Ok::<(), shmring::Error>(())
            /// ```
            pub fn doorbell(&mut self) -> Result<BorrowedFd<'_>> {
                Ok(self.link.bell()?.as_fd())
            }

            /// Announces this half as a poller, so that the other side rings its
            /// [doorbell](Self::doorbell) on every change; binds the doorbell first if needed.
            /// Try the operation again after arming: a change made just before was not rung.
            pub fn arm(&mut self) -> Result<()> {
                self.link.arm()
            }

            /// Withdraws [`arm`](Self::arm): the other side stops ringing. Dropping the half
            /// disarms it too.
            pub fn disarm(&mut self) {
                self.link.disarm()
            }

            /// True while the half is [armed](Self::arm).
            pub fn is_armed(&self) -> bool {
                self.link.armed
            }

            /// Takes the pending rings off the doorbell (so it stops being readable); how many
            /// there were. Call before re-trying the operation.
            pub fn clear_doorbell(&mut self) -> usize {
                self.link.bell.as_ref().map_or(0, |b| b.drain())
            }

            /// How often a waiter should call [`check_peer`](Self::check_peer): the
            /// creator-side config's liveness interval, as used by the blocking calls.
            pub fn liveness_interval(&self) -> Duration {
                self.link.policy.slice
            }

            /// A half over heap memory, for the loom models.
            #[cfg(shmring_loom)]
            pub(crate) fn on_heap(site: super::site::HeapSite, cfg: &Config) -> Result<Self> {
                Self::attach(How::Heap(site), cfg)
            }

            /// Releases the liveness place of a heap half as a dying process would.
            #[cfg(shmring_loom)]
            pub(crate) fn heap_kill(&self) {
                if let Site::Heap(h) = &self.link.site {
                    h.kill()
                }
            }
        }
    };
}

constructors!(Sender, Role::Sender, crate::segment::RECEIVER);
constructors!(Receiver, Role::Receiver, crate::segment::SENDER);

/// Lays out a heap segment for `R` (loom models): the same layout and init as a real one.
#[cfg(shmring_loom)]
pub(crate) fn heap_site<R: Flavor>(cfg: &Config) -> Result<super::site::HeapSite> {
    let (capacity, slot_size) = R::geometry(cfg)?;
    let layout = Layout::new::<R>(R::body_len(capacity, slot_size)?)?;
    let id = Identity {
        ring_kind: R::KIND,
        wait: cfg.wait.to_raw(),
        capacity,
        slot_size,
        data_offset: layout.body,
        total_len: layout.total,
        flags: 0,
    };
    let (s, r) = R::maxima(cfg)?;
    let places = (s.max(1) + r.max(1)) as usize;
    let heap = super::site::HeapSite::create(&id, places)?;
    let site = Site::Heap(heap.share());
    init::<R>(&site, cfg, &layout, capacity, slot_size, None)?;
    site.publish();
    Ok(heap)
}

/// The sending half of a shared-memory channel: [`spsc::Sender`](crate::spsc::Sender) or
/// [`mpmc::Sender`](crate::mpmc::Sender).
///
/// Dropping it closes this sender: when no sender is left, receivers drain what was sent,
/// then get [`Error::Disconnected`].
#[derive(Debug)]
pub struct Sender<R: Flavor> {
    pub(super) end: R::Producer,
    pub(super) link: Link<R>,
}

impl<R: Flavor> Sender<R> {
    fn attach(how: How<'_>, cfg: &Config) -> Result<Self> {
        // SAFETY: the parts lie in the mapping that `link` owns and keeps alive as long as the
        // end (both move together in `Self`); `index` is the place whose lock we hold.
        let make = |parts, index| unsafe { R::producer(parts, index) };
        // `attach` freed what the previous holder of our place left claimed (it is dead).
        let (link, end, freed) = attach::<R, _>(how, cfg, Role::Sender, make)?;
        R::join(link.control(), Role::Sender);
        if freed > 0 {
            link.notify_all(READABLE);
        }
        Ok(Sender { end, link })
    }

    /// Reserves room for a message of up to `len` bytes inside the segment, waiting while the
    /// ring is full. Write into the slot, then [`commit`](SendSlot::commit) what you wrote;
    /// dropping the slot uncommitted sends nothing.
    ///
    /// ```
    /// # let name = format!("doc-reserve-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// let mut slot = tx.reserve(64)?;
    /// let n = {
    ///     use std::io::Write;
    ///     let mut w = &mut slot[..];
    ///     write!(w, "tick {}", 42).unwrap();
    ///     64 - w.len()
    /// };
    /// slot.commit(n);
    /// assert_eq!(&*rx.recv()?, b"tick 42");
    /// # Ok::<(), shmring::Error>(())
    /// ```
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<SendSlot<'_, R>> {
        let grant = self.reserve_until(len, Until::Forever)?;
        Ok(SendSlot::new(self, grant))
    }

    /// Reserves room for up to `len` bytes, or fails at once with [`Error::Full`].
    pub fn try_reserve(&mut self, len: usize) -> Result<SendSlot<'_, R>> {
        let grant = self.reserve_until(len, Until::Now)?;
        Ok(SendSlot::new(self, grant))
    }

    /// Like [`reserve`](Self::reserve), waiting at most `timeout` ([`Error::Timeout`]).
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<SendSlot<'_, R>> {
        let grant = self.reserve_until(len, Until::after(timeout))?;
        Ok(SendSlot::new(self, grant))
    }

    /// Sends a copy of `msg`, waiting while the ring is full.
    ///
    /// ```
    /// # let name = format!("doc-send-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// tx.send(b"hello")?;
    /// assert_eq!(&*rx.recv()?, b"hello");
    /// # Ok::<(), shmring::Error>(())
    /// ```
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        if <R::Producer as ProducerEnd>::PASS_ON && !<R::Producer as ProducerEnd>::WAKE_ALL {
            return self.send_passing_on(msg, Until::Forever);
        }
        let grant = self.reserve_until(msg.len(), Until::Forever)?;
        self.write_commit(grant, msg);
        Ok(())
    }

    /// Sends a copy of `msg`, or fails at once with [`Error::Full`].
    pub fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        if <R::Producer as ProducerEnd>::PASS_ON && !<R::Producer as ProducerEnd>::WAKE_ALL {
            return self.send_passing_on(msg, Until::Now);
        }
        let grant = self.reserve_until(msg.len(), Until::Now)?;
        self.write_commit(grant, msg);
        Ok(())
    }

    /// Sends a copy of `msg`, waiting at most `timeout` ([`Error::Timeout`]).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        if <R::Producer as ProducerEnd>::PASS_ON && !<R::Producer as ProducerEnd>::WAKE_ALL {
            return self.send_passing_on(msg, Until::after(timeout));
        }
        let grant = self.reserve_until(msg.len(), Until::after(timeout))?;
        self.write_commit(grant, msg);
        Ok(())
    }

    /// Sends a plain-old-data value as its bytes.
    ///
    /// ```
    /// #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C)]
    /// struct Tick { price: u64, qty: u32, side: u32 }
    /// # let name = format!("doc-pod-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// tx.send_pod(&Tick { price: 101, qty: 5, side: 1 })?;
    /// assert_eq!(rx.recv_pod::<Tick>()?, Tick { price: 101, qty: 5, side: 1 });
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub fn send_pod<T: bytemuck::Pod>(&mut self, value: &T) -> Result<()> {
        self.send(bytemuck::bytes_of(value))
    }

    /// Sends a plain-old-data value, or fails at once with [`Error::Full`].
    pub fn try_send_pod<T: bytemuck::Pod>(&mut self, value: &T) -> Result<()> {
        self.try_send(bytemuck::bytes_of(value))
    }

    /// Sends a plain-old-data value, waiting at most `timeout`.
    pub fn send_pod_timeout<T: bytemuck::Pod>(
        &mut self,
        value: &T,
        timeout: Duration,
    ) -> Result<()> {
        self.send_timeout(bytemuck::bytes_of(value), timeout)
    }

    /// `send` and its forms for a ring whose producers pass wakes on (MPMC; the other rings
    /// keep the plain `reserve_until` + `write_commit`). Where this half does, the fast path
    /// claims, copies and commits first, then wakes a receiver and passes a wake on to another
    /// sender under one fence (`Link::notify_one_and_pass_on`), where `reserve_until` +
    /// `commit` pay a fence each: the copy is short, so the pass-on comes a few nanoseconds
    /// later.
    #[inline(always)]
    fn send_passing_on(&mut self, msg: &[u8], until: Until) -> Result<()> {
        if self.link.pass_on {
            if let Ok(grant) = self.end.try_reserve(msg.len()) {
                debug_assert!(msg.len() <= grant.capacity());
                // SAFETY: as in `write_commit`.
                unsafe { copy_bytes(msg.as_ptr(), self.end.payload(&grant), msg.len()) };
                self.end.commit(grant, msg.len());
                let end = &self.end;
                self.link
                    .notify_one_and_pass_on(READABLE, WRITABLE, || end.room());
                return Ok(());
            }
            // The slow path finds the error again, as in `reserve_until`.
            let grant = self.reserve_blocking(msg.len(), until)?;
            self.write_commit(grant, msg);
            return Ok(());
        }
        let grant = self.reserve_until(msg.len(), until)?;
        self.write_commit(grant, msg);
        Ok(())
    }

    #[inline(always)]
    fn write_commit(&mut self, grant: ProducerGrant<R>, msg: &[u8]) {
        debug_assert!(msg.len() <= grant.capacity());
        // SAFETY: the grant covers `msg.len()` bytes of the body that the ring's protocol gives
        // to this producer alone until it commits; `msg` is our own memory, so no overlap.
        unsafe { copy_bytes(msg.as_ptr(), self.end.payload(&grant), msg.len()) };
        self.commit(grant, msg.len());
    }

    #[inline(always)]
    fn commit(&mut self, grant: ProducerGrant<R>, len: usize) {
        self.end.commit(grant, len);
        self.link.notify_readers();
    }

    fn abandon(&mut self, grant: ProducerGrant<R>) {
        self.end.abandon(grant);
        // A receiver may be stalled at this slot: it must see the skip.
        self.link.notify_readers();
    }

    /// The fast path inline: most reservations succeed at once, and the wait loop (with its
    /// large `Result`s moving through closures) would double the cost of a message. Only the
    /// grant flows out of it; any error is found again (and handled) by the slow path.
    #[inline(always)]
    pub(super) fn reserve_until(&mut self, len: usize, until: Until) -> Result<ProducerGrant<R>> {
        if let Ok(grant) = self.end.try_reserve(len) {
            if <R::Producer as ProducerEnd>::PASS_ON && self.link.pass_on {
                // Pass a wake on if more room is free too (`mpmc` docs, "Waking").
                let end = &self.end;
                self.link.notify_one_if(WRITABLE, || end.room());
            }
            return Ok(grant);
        }
        self.reserve_spin(len, until)
    }

    /// A busy-poll wait's first spins, each a `try_reserve` inlined into this small loop (see
    /// `INLINE_SPINS`), then the wait loop. Any error but `Full` is found again by the next
    /// attempt, here or in the wait loop. Out of line, so that the fast path of `send` stays
    /// as small as it was.
    #[inline(never)]
    fn reserve_spin(&mut self, len: usize, until: Until) -> Result<ProducerGrant<R>> {
        #[cfg(not(shmring_loom))]
        if self.link.wait == Wait::Spin && until != Until::Now {
            for _ in 0..INLINE_SPINS {
                std::hint::spin_loop();
                match self.end.try_reserve(len) {
                    Ok(grant) => return Ok(grant),
                    Err(Error::Full) => {}
                    Err(_) => break,
                }
            }
        }
        self.reserve_blocking(len, until)
    }

    #[cold]
    #[inline(never)]
    fn reserve_blocking(&mut self, len: usize, until: Until) -> Result<ProducerGrant<R>> {
        let Sender { end, link } = self;
        let watcher = end.watcher();
        let wait = link.wait;
        let link = &*link;
        block_on(
            link.sleep[WRITABLE],
            link.event(WRITABLE),
            &link.policy,
            until,
            || {
                let r = end.try_reserve(len);
                if wait != Wait::Spin {
                    match &r {
                        Err(Error::Full) if <R::Producer as ProducerEnd>::WAKE_ON_FULL => {
                            link.notify_one(READABLE)
                        }
                        // Pass a wake on if more room is free too (`mpmc` docs, "Waking").
                        Ok(_) if <R::Producer as ProducerEnd>::PASS_ON && link.pass_on => {
                            link.notify_one_if(WRITABLE, || end.room())
                        }
                        _ => {}
                    }
                }
                r
            },
            || link.check::<R::Producer>(watcher, WRITABLE),
        )
    }
}

impl<R: Flavor> Sender<R> {
    /// What a blocking call does once per liveness interval: frees slots that dead senders
    /// hold, then [`Error::PeerDead`] if receivers attached but none is alive. For waiters in an
    /// event loop (see [`doorbell`](Self::doorbell)): a dead peer rings no doorbell.
    pub fn check_peer(&self) -> Result<()> {
        self.link.check::<R::Producer>(self.end.watcher(), WRITABLE)
    }
}

#[cfg(shmring_loom)]
impl<R: Flavor> Sender<R> {
    /// One round of the wait loop's liveness check (loom models).
    pub(crate) fn liveness_check(&self) -> Result<()> {
        self.check_peer()
    }

    /// The ring end (loom models' hooks).
    pub(crate) fn end_mut(&mut self) -> &mut R::Producer {
        &mut self.end
    }
}

impl<R: Flavor> Receiver<R> {
    /// As [`Sender::check_peer`]: frees what dead receivers hold, then [`Error::PeerDead`] if
    /// senders attached but none is alive.
    pub fn check_peer(&self) -> Result<()> {
        self.link.check::<R::Consumer>(self.end.watcher(), READABLE)
    }
}

#[cfg(shmring_loom)]
impl<R: Flavor> Receiver<R> {
    /// One round of the wait loop's liveness check (loom models).
    pub(crate) fn liveness_check(&self) -> Result<()> {
        self.check_peer()
    }

    /// The ring end (loom models' hooks).
    pub(crate) fn end_mut(&mut self) -> &mut R::Consumer {
        &mut self.end
    }
}

impl<R: Flavor> Drop for Sender<R> {
    fn drop(&mut self) {
        self.end.close();
        // Count out before the liveness lock goes (when the site drops after this).
        R::leave(self.link.control(), Role::Sender);
        // Wake every receiver: if we were the last sender, they must see the close.
        self.link.notify_all(READABLE);
    }
}

pub(super) type ProducerGrant<R> = <<R as Flavor>::Producer as ProducerEnd>::Grant;
pub(super) type ConsumerFrame<R> = <<R as Flavor>::Consumer as ConsumerEnd>::Frame;

/// Room for one message inside the segment, from [`Sender::reserve`]. Dereferences to the
/// reserved bytes; [`commit`](Self::commit) publishes a prefix of them. Dropped without a
/// commit, nothing is sent.
#[derive(Debug)]
pub struct SendSlot<'a, R: Flavor> {
    tx: &'a mut Sender<R>,
    /// Taken by `commit` or by drop, exactly once.
    grant: ManuallyDrop<ProducerGrant<R>>,
}

impl<'a, R: Flavor> SendSlot<'a, R> {
    fn new(tx: &'a mut Sender<R>, grant: ProducerGrant<R>) -> Self {
        SendSlot {
            tx,
            grant: ManuallyDrop::new(grant),
        }
    }

    /// Publishes the first `len` bytes as one message.
    ///
    /// # Panics
    /// If `len` exceeds the reserved size (the reservation is given up first, so the panic
    /// does not stall the receivers).
    pub fn commit(self, len: usize) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the grant is taken here exactly once.
        let grant = unsafe { ManuallyDrop::take(&mut this.grant) };
        let cap = grant.capacity();
        if len > cap {
            this.tx.abandon(grant);
            panic!("commit of {len} bytes into a reservation of {cap}");
        }
        this.tx.commit(grant, len);
    }
}

impl<R: Flavor> Drop for SendSlot<'_, R> {
    fn drop(&mut self) {
        // SAFETY: drop runs once, and `commit` (the only other taker) forgets the slot.
        let grant = unsafe { ManuallyDrop::take(&mut self.grant) };
        self.tx.abandon(grant);
    }
}

impl<R: Flavor> Deref for SendSlot<'_, R> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the grant's bytes lie in the body and belong to this producer alone until it
        // commits (honest receivers do not touch them; see the crate's trust model).
        unsafe {
            std::slice::from_raw_parts(self.tx.end.payload(&self.grant), self.grant.capacity())
        }
    }
}

impl<R: Flavor> DerefMut for SendSlot<'_, R> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference to the bytes.
        unsafe {
            std::slice::from_raw_parts_mut(self.tx.end.payload(&self.grant), self.grant.capacity())
        }
    }
}

/// The receiving half of a shared-memory channel: [`spsc::Receiver`](crate::spsc::Receiver)
/// or [`mpmc::Receiver`](crate::mpmc::Receiver).
///
/// After the last sender closed: the remaining messages, then [`Error::Disconnected`]. After
/// the senders died: what they committed, then [`Error::PeerDead`].
#[derive(Debug)]
pub struct Receiver<R: Flavor> {
    pub(super) end: R::Consumer,
    pub(super) link: Link<R>,
    /// The messages of the current [`RecvBatch`](super::batch::RecvBatch) (kept to reuse the
    /// allocation).
    pub(super) spans: super::batch::Spans,
}

impl<R: Flavor> Receiver<R> {
    fn attach(how: How<'_>, cfg: &Config) -> Result<Self> {
        // SAFETY: as in `Sender::attach`, for the consuming end.
        let make = |parts, index| unsafe { R::consumer(parts, index) };
        let (link, end, freed) = attach::<R, _>(how, cfg, Role::Receiver, make)?;
        R::join(link.control(), Role::Receiver);
        if freed > 0 {
            link.notify_all(WRITABLE);
        }
        Ok(Receiver {
            end,
            link,
            spans: Default::default(),
        })
    }

    /// The next message, borrowed from the segment (zero copy), waiting while there is none.
    /// Its room is given back to the senders when the guard drops.
    ///
    /// ```
    /// # let name = format!("doc-recv-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// tx.send(b"hello")?;
    /// let msg = rx.recv()?;
    /// assert_eq!(&*msg, b"hello");
    /// # Ok::<(), shmring::Error>(())
    /// ```
    #[inline]
    pub fn recv(&mut self) -> Result<RecvGuard<'_, R>> {
        let frame = self.peek_until(Until::Forever)?;
        Ok(RecvGuard::new(self, frame))
    }

    /// The next message, borrowed from the segment, or [`Error::Empty`] at once.
    pub fn try_recv(&mut self) -> Result<RecvGuard<'_, R>> {
        let frame = self.peek_until(Until::Now)?;
        Ok(RecvGuard::new(self, frame))
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout` ([`Error::Timeout`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<RecvGuard<'_, R>> {
        let frame = self.peek_until(Until::after(timeout))?;
        Ok(RecvGuard::new(self, frame))
    }

    /// Copies the next message into `buf` (cleared first), waiting while there is none; returns
    /// its length. The copy is taken once, so the result cannot change under a misbehaving peer.
    ///
    /// ```
    /// # let name = format!("doc-recv-into-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// tx.send(b"copied")?;
    /// let mut buf = Vec::new();
    /// assert_eq!(rx.recv_into(&mut buf)?, 6);
    /// assert_eq!(buf, b"copied");
    /// # Ok::<(), shmring::Error>(())
    /// ```
    #[inline]
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        if <R::Consumer as ConsumerEnd>::PASS_ON {
            return self.recv_into_passing_on(buf, Until::Forever);
        }
        let frame = self.peek_until(Until::Forever)?;
        Ok(self.copy_out(frame, buf))
    }

    /// Copies the next message into `buf`, or fails at once with [`Error::Empty`].
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        if <R::Consumer as ConsumerEnd>::PASS_ON {
            return self.recv_into_passing_on(buf, Until::Now);
        }
        let frame = self.peek_until(Until::Now)?;
        Ok(self.copy_out(frame, buf))
    }

    /// Copies the next message into `buf`, waiting at most `timeout`.
    pub fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        if <R::Consumer as ConsumerEnd>::PASS_ON {
            return self.recv_into_passing_on(buf, Until::after(timeout));
        }
        let frame = self.peek_until(Until::after(timeout))?;
        Ok(self.copy_out(frame, buf))
    }

    /// Receives a plain-old-data value. A message whose length is not `size_of::<T>()` is
    /// consumed and reported as [`Error::Incompatible`].
    pub fn recv_pod<T: bytemuck::Pod>(&mut self) -> Result<T> {
        let frame = self.peek_until(Until::Forever)?;
        self.take_pod(frame)
    }

    /// Receives a plain-old-data value, or fails at once with [`Error::Empty`].
    pub fn try_recv_pod<T: bytemuck::Pod>(&mut self) -> Result<T> {
        let frame = self.peek_until(Until::Now)?;
        self.take_pod(frame)
    }

    /// Receives a plain-old-data value, waiting at most `timeout`.
    pub fn recv_pod_timeout<T: bytemuck::Pod>(&mut self, timeout: Duration) -> Result<T> {
        let frame = self.peek_until(Until::after(timeout))?;
        self.take_pod(frame)
    }

    fn take_pod<T: bytemuck::Pod>(&mut self, frame: ConsumerFrame<R>) -> Result<T> {
        let guard = RecvGuard::new(self, frame);
        if guard.len() != std::mem::size_of::<T>() {
            return Err(Error::Incompatible(format!(
                "message of {} bytes is not a {} ({} bytes)",
                guard.len(),
                std::any::type_name::<T>(),
                std::mem::size_of::<T>()
            )));
        }
        Ok(bytemuck::pod_read_unaligned(&guard))
    }

    /// `recv_into` and its forms for a ring whose consumers pass wakes on (MPMC). Where this
    /// half does (`Link::pass_on`), the fast path claims, copies and frees first, then wakes a
    /// sender and passes a wake on to another receiver under one fence, as
    /// `Sender::send_passing_on` does.
    #[inline(always)]
    fn recv_into_passing_on(&mut self, buf: &mut Vec<u8>, until: Until) -> Result<usize> {
        if self.link.pass_on && self.end.producer_may_wait() {
            match self.end.try_peek() {
                Ok(frame) => {
                    // SAFETY: the ring validated that the frame's bytes lie in the body, and
                    // they stay ours until the release below.
                    let len = unsafe { copy_into(self.end.payload(&frame), frame.len(), buf) };
                    self.end.release(frame);
                    let end = &self.end;
                    self.link
                        .notify_one_and_pass_on(WRITABLE, READABLE, || end.more());
                    return Ok(len);
                }
                // As in `peek_until`.
                Err(e) => self.end.defer(e),
            }
            let frame = self.peek_blocking(until)?;
            return Ok(self.copy_out(frame, buf));
        }
        let frame = self.peek_until(until)?;
        Ok(self.copy_out(frame, buf))
    }

    #[inline(always)]
    fn copy_out(&mut self, frame: ConsumerFrame<R>, buf: &mut Vec<u8>) -> usize {
        let len = frame.len();
        buf.clear();
        buf.reserve(len);
        // SAFETY: the ring validated that the frame's `len` bytes lie inside the body, and the
        // protocol keeps them unchanged by honest producers until we release the frame; `buf`
        // has room for `len` bytes (reserved above) and is our own memory, so no overlap.
        unsafe {
            copy_bytes(self.end.payload(&frame), buf.as_mut_ptr(), len);
            buf.set_len(len);
        }
        self.release(frame);
        len
    }

    #[inline(always)]
    fn release(&mut self, frame: ConsumerFrame<R>) {
        self.end.release(frame);
        if self.end.producer_may_wait() {
            self.link.notify_one(WRITABLE);
        }
    }

    /// The fast path inline, as in `Sender::reserve_until`.
    #[inline(always)]
    pub(super) fn peek_until(&mut self, until: Until) -> Result<ConsumerFrame<R>> {
        match self.end.try_peek() {
            Ok(frame) => {
                if <R::Consumer as ConsumerEnd>::PASS_ON && self.link.pass_on {
                    // Pass a wake on if the next message is ready too.
                    let end = &self.end;
                    self.link.notify_one_if(READABLE, || end.more());
                }
                return Ok(frame);
            }
            // The slow path finds any error again, except one the ring would not (a
            // broadcast `Lagged`): the ring keeps that for the next call.
            Err(e) => self.end.defer(e),
        }
        self.peek_spin(until)
    }

    /// As `Sender::reserve_spin`, for `try_peek`: an error other than `Empty` is kept
    /// (`defer`) and found again by the wait loop.
    #[inline(never)]
    fn peek_spin(&mut self, until: Until) -> Result<ConsumerFrame<R>> {
        #[cfg(not(shmring_loom))]
        if self.link.wait == Wait::Spin && until != Until::Now {
            for _ in 0..INLINE_SPINS {
                std::hint::spin_loop();
                match self.end.try_peek() {
                    Ok(frame) => return Ok(frame),
                    Err(Error::Empty) => {}
                    Err(e) => {
                        self.end.defer(e);
                        break;
                    }
                }
            }
        }
        self.peek_blocking(until)
    }

    #[cold]
    #[inline(never)]
    fn peek_blocking(&mut self, until: Until) -> Result<ConsumerFrame<R>> {
        let Receiver { end, link, .. } = self;
        let watcher = end.watcher();
        let wait = link.wait;
        let link = &*link;
        block_on(
            link.sleep[READABLE],
            link.event(READABLE),
            &link.policy,
            until,
            || {
                let r = end.try_peek();
                if wait != Wait::Spin {
                    match &r {
                        Err(Error::Empty)
                            if <R::Consumer as ConsumerEnd>::WAKE_ON_EMPTY || end.freed_skips() =>
                        {
                            link.notify_one(WRITABLE)
                        }
                        // Pass a wake on if the next message is ready too.
                        Ok(_) if <R::Consumer as ConsumerEnd>::PASS_ON && link.pass_on => {
                            link.notify_one_if(READABLE, || end.more())
                        }
                        _ => {}
                    }
                }
                r
            },
            || link.check::<R::Consumer>(watcher, READABLE),
        )
    }
}

impl<R: Flavor> Drop for Receiver<R> {
    fn drop(&mut self) {
        self.end.close();
        R::leave(self.link.control(), Role::Receiver);
        self.link.notify_all(WRITABLE);
    }
}

/// A received message, borrowed from the segment (zero copy). Dereferences to its bytes; its
/// room in the ring is given back to the senders when the guard drops.
///
/// The bytes are only as stable as the senders are honest: a misbehaving sender could write
/// them while you read. Use [`Receiver::recv_into`] to take one copy from peers you do not
/// trust.
#[derive(Debug)]
pub struct RecvGuard<'a, R: Flavor> {
    rx: &'a mut Receiver<R>,
    /// Taken by drop, exactly once.
    frame: ManuallyDrop<ConsumerFrame<R>>,
}

impl<'a, R: Flavor> RecvGuard<'a, R> {
    fn new(rx: &'a mut Receiver<R>, frame: ConsumerFrame<R>) -> Self {
        RecvGuard {
            rx,
            frame: ManuallyDrop::new(frame),
        }
    }
}

impl<R: Flavor> Deref for RecvGuard<'_, R> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the ring validated that the frame lies inside the body; honest producers do
        // not touch it until we release it on drop (see the crate's trust model).
        unsafe { std::slice::from_raw_parts(self.rx.end.payload(&self.frame), self.frame.len()) }
    }
}

impl<R: Flavor> Drop for RecvGuard<'_, R> {
    fn drop(&mut self) {
        // SAFETY: drop runs once, and nothing else takes the frame.
        let frame = unsafe { ManuallyDrop::take(&mut self.frame) };
        self.rx.release(frame);
    }
}

/// The doorbell as a [`Readiness`](crate::channel::Readiness), the same for both halves.
macro_rules! readiness {
    ($half:ident) => {
        impl<R: Flavor> crate::channel::Readiness for $half<R> {
            fn arm(&mut self) -> Result<Option<(BorrowedFd<'_>, crate::channel::Interest)>> {
                // A spinning ring's notifiers skip all wake-up work: nothing would ring.
                if self.link.wait == Wait::Spin {
                    return Ok(None);
                }
                self.link.arm()?;
                let bell = self.link.bell.as_ref().expect("bound by arm");
                Ok(Some((bell.as_fd(), crate::channel::Interest::Readable)))
            }
            fn disarm(&mut self) {
                self.link.disarm()
            }
            fn clear(&mut self) {
                self.clear_doorbell();
            }
            fn check_peer(&self) -> Result<()> {
                $half::check_peer(self)
            }
            fn check_interval(&self) -> Option<Duration> {
                Some(self.link.policy.slice)
            }
        }
    };
}
readiness!(Sender);
readiness!(Receiver);

impl<R: Flavor> crate::channel::Sender for Sender<R> {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Sender::send(self, msg)
    }
    fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        Sender::try_send(self, msg)
    }
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        Sender::send_timeout(self, msg, timeout)
    }
    fn max_message_size(&self) -> usize {
        Sender::max_message_size(self)
    }
    fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        self.send_batch_until(msgs, Until::Forever)
    }
    fn try_send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        self.send_batch_until(msgs, Until::Now)
    }
    fn send_batch_timeout(&mut self, msgs: &[&[u8]], timeout: Duration) -> Result<usize> {
        self.send_batch_until(msgs, Until::after(timeout))
    }
}

impl<R: Flavor> crate::channel::Receiver for Receiver<R> {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        Receiver::recv_into(self, buf)
    }
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        Receiver::try_recv_into(self, buf)
    }
    fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        Receiver::recv_into_timeout(self, buf, timeout)
    }
    fn max_message_size(&self) -> usize {
        Receiver::max_message_size(self)
    }
    fn recv_batch(&mut self, batch: &mut crate::channel::Batch, max: usize) -> Result<usize> {
        self.recv_batch_copy(batch, max, Until::Forever)
    }
    fn try_recv_batch(&mut self, batch: &mut crate::channel::Batch, max: usize) -> Result<usize> {
        self.recv_batch_copy(batch, max, Until::Now)
    }
    fn recv_batch_timeout(
        &mut self,
        batch: &mut crate::channel::Batch,
        max: usize,
        timeout: Duration,
    ) -> Result<usize> {
        self.recv_batch_copy(batch, max, Until::after(timeout))
    }
}

/// Copies the `len` message bytes at `src` into `buf`, cleared first; returns `len`.
///
/// # Safety
/// `src` is valid for reads of `len` bytes (a frame's payload, validated by the ring and not
/// yet released).
#[inline(always)]
unsafe fn copy_into(src: *const u8, len: usize, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    buf.reserve(len);
    // SAFETY: `src` holds `len` readable bytes (this function's contract); `buf` has room for
    // `len` bytes (reserved above) and is our own memory, so no overlap.
    unsafe {
        copy_bytes(src, buf.as_mut_ptr(), len);
        buf.set_len(len);
    }
    len
}
