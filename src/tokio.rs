//! Async channel halves for tokio (feature `tokio`): every ring and every transport URL.
//!
//! [`AsyncSender`] and [`AsyncReceiver`] wrap any channel half (a shared-memory
//! [`shm::Sender`] / [`shm::Receiver`] of any ring, or a fallback transport, or the boxed half
//! of [`listen_async`](crate::listen_async) / [`connect_async`](crate::connect_async)) and wait on its
//! [readiness descriptor](crate::channel::Readiness) with tokio's [`AsyncFd`], so one task (or
//! one thread of a current-thread runtime) serves any number of channels next to sockets and
//! timers. A shared-memory half waits on its *doorbell*, which its peer rings only while the
//! half is armed (`sync::doorbell`); a transport waits on its own socket, pipe, FIFO or queue
//! descriptor.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> shmring::Result<()> {
//! use shmring::{spsc, Config};
//! # let name = format!("doc-tokio-{}", std::process::id());
//! let mut tx = spsc::Sender::create(&name, Config::default())?.into_async()?;
//! let mut rx = spsc::Receiver::open(&name)?.into_async()?;
//! tx.send(b"async hello").await?;
//! assert_eq!(rx.recv().await?, b"async hello");
//!
//! // Any transport, by URL:
//! let url = format!("unix-seqpacket://@doc-tokio-{}", std::process::id());
//! let mut rx = shmring::listen_async(&url)?;
//! let mut tx = shmring::connect_async(&url)?;
//! tx.send_batch(&[b"one", b"two"]).await?;
//! let mut batch = shmring::channel::Batch::new();
//! let n = rx.recv_batch(&mut batch, 16).await?;
//! assert!(n >= 1 && &batch[0] == b"one");
//! # Ok(()) }
//! ```
//!
//! # Cancel safety
//! Every `recv*` and `send*` future is cancel safe: a message is taken from the channel (or
//! put into it) only inside a poll that then returns it, so a future dropped while pending has
//! taken or sent nothing, and the half stays usable. A dropped future also withdraws the
//! half's doorbell announcement, so an idle half costs its peer nothing.
//!
//! # Peer death
//! A shared-memory peer that dies rings no doorbell; a pending call re-checks the peer every
//! liveness interval (a tokio timer) and ends with [`Error::PeerDead`] after delivering what
//! the peer committed. The runtime needs its time driver (`enable_time` or `enable_all`) for
//! the shared-memory halves. Transports learn of their peer's end from the descriptor.
//!
//! # Without a descriptor
//! With [`Wait::Spin`](crate::Wait::Spin) the peer rings nothing (it skips all wake-up work),
//! so a pending call re-polls at every turn of the runtime: it busy-waits, as spin asks. System
//! V message queues have no descriptor to poll: their pending calls retry every millisecond.

use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use ::tokio::io::unix::AsyncFd;
use ::tokio::time::{Instant, Sleep};

use crate::channel::{self, Batch, Interest, Readiness};
use crate::error::{Error, Result};
use crate::shm::{self, Flavor};

/// How often a half without a descriptor (System V queues) is retried.
const POLL_PERIOD: Duration = Duration::from_millis(1);

/// A duplicate of the half's readiness descriptor, registered with tokio's reactor.
#[derive(Debug)]
struct Fd(OwnedFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// How a pending call learns that it may try again.
#[derive(Debug)]
enum Source {
    /// Not armed yet.
    None,
    /// The descriptor in the reactor, which half descriptor it duplicates, and which way.
    Fd {
        fd: AsyncFd<Fd>,
        of: RawFd,
        interest: Interest,
    },
    /// The peer never rings (`Wait::Spin`): re-poll at once.
    Spin,
    /// No descriptor (System V queues): retry on a timer.
    Timer,
}

/// What both async halves share: the readiness descriptor in the reactor, the liveness timer,
/// and whether the half is armed.
#[derive(Debug)]
struct Waiter {
    source: Source,
    /// Made on first need (the shared-memory liveness re-check, or the retry timer).
    timer: Option<Pin<Box<Sleep>>>,
    /// How often the timer fires: the liveness interval, or [`POLL_PERIOD`].
    period: Option<Duration>,
    armed: bool,
}

/// What one poll of a waiting call found.
enum Step {
    /// Try the operation again (after clearing the descriptor).
    Retry,
    /// Check the peer's liveness, then try again.
    CheckPeer,
}

impl Waiter {
    fn new() -> Waiter {
        Waiter {
            source: Source::None,
            timer: None,
            period: None,
            armed: false,
        }
    }

    /// Announces the half (idempotent) and makes sure the reactor watches its current
    /// descriptor (it may change once, when a listening socket accepts its sender).
    fn arm(&mut self, r: Option<&mut dyn Readiness>) -> Result<()> {
        let first = !self.armed;
        match r {
            None => {
                self.source = Source::Timer;
                self.period = Some(POLL_PERIOD);
            }
            Some(r) => {
                let interval = r.check_interval();
                match r.arm()? {
                    None => {
                        self.source = Source::Spin;
                        self.period = interval;
                    }
                    Some((fd, interest)) => {
                        let same = matches!(&self.source,
                            Source::Fd { of, interest: i, .. }
                                if *of == fd.as_raw_fd() && *i == interest);
                        if !same {
                            self.source = register(fd, interest)?;
                        }
                        self.period = interval;
                    }
                }
            }
        }
        self.armed = true;
        if first {
            self.start();
        }
        Ok(())
    }

    fn disarm(&mut self, r: Option<&mut dyn Readiness>) {
        if self.armed {
            if let Some(r) = r {
                r.disarm();
            }
            self.armed = false;
        }
    }

    /// Called when the half is armed and the operation found nothing to do: `Pending` until
    /// the descriptor is ready or the timer fires.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        match &self.source {
            Source::Fd { fd, interest, .. } => {
                let polled = match interest {
                    Interest::Readable => fd.poll_read_ready(cx),
                    Interest::Writable => fd.poll_write_ready(cx),
                };
                match polled {
                    Poll::Ready(Ok(mut guard)) => {
                        // Clears tokio's readiness unless a new event came in since it
                        // reported it; the caller then clears the doorbell and re-tries.
                        guard.clear_ready();
                        return Poll::Ready(Step::Retry);
                    }
                    // The reactor is gone (runtime shutting down): fall back to the timer.
                    Poll::Ready(Err(_)) => {
                        if self.period.is_none() {
                            self.period = Some(POLL_PERIOD);
                        }
                    }
                    Poll::Pending => {}
                }
            }
            Source::Spin => cx.waker().wake_by_ref(),
            Source::Timer => {
                return self.poll_timer(cx).map(|()| Step::Retry);
            }
            Source::None => return Poll::Ready(Step::Retry),
        }
        if self.period.is_some() {
            return self.poll_timer(cx).map(|()| Step::CheckPeer);
        }
        Poll::Pending
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let period = self.period.unwrap_or(POLL_PERIOD);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(::tokio::time::sleep(period)));
        ready!(timer.as_mut().poll(cx));
        timer.as_mut().reset(Instant::now() + period);
        Poll::Ready(())
    }

    /// At the start of a wait: a timer that fired long ago would check the peer at once;
    /// make it due one period from now if it is already past.
    fn start(&mut self) {
        if let (Some(timer), Some(period)) = (self.timer.as_mut(), self.period) {
            let now = Instant::now();
            if timer.deadline() <= now {
                timer.as_mut().reset(now + period);
            }
        }
    }

    /// The reactor's descriptor, if the half has one and has been armed once.
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.source {
            Source::Fd { fd, .. } => {
                use std::os::fd::AsFd;
                Some(fd.get_ref().0.as_fd())
            }
            _ => None,
        }
    }
}

/// Registers a duplicate of `fd` with the current runtime's reactor.
fn register(fd: BorrowedFd<'_>, interest: Interest) -> Result<Source> {
    let of = fd.as_raw_fd();
    let dup = fd
        .try_clone_to_owned()
        .map_err(|e| Error::io("duplicating a readiness descriptor", e))?;
    let tokio_interest = match interest {
        Interest::Readable => ::tokio::io::Interest::READABLE,
        Interest::Writable => ::tokio::io::Interest::WRITABLE,
    };
    // SAFETY: `Fd` owns the descriptor (an `OwnedFd` it never gives away or replaces), so it
    // stays open and the same for as long as the `AsyncFd` holds it.
    let fd = unsafe { AsyncFd::register_with_interest(Fd(dup), tokio_interest) }.map_err(|e| {
        Error::io(
            "registering a readiness descriptor with tokio",
            io::Error::from(e),
        )
    })?;
    Ok(Source::Fd { fd, of, interest })
}

/// One poll of an operation on half `h`: try it; on `Empty`/`Full` arm (and re-check once
/// after announcing: no lost wakeup), then wait for the descriptor or the timer. Shared by
/// every operation of both halves.
fn poll_op<H: ?Sized, T>(
    h: &mut H,
    ready_of: fn(&mut H) -> Option<&mut dyn Readiness>,
    w: &mut Waiter,
    cx: &mut Context<'_>,
    op: &mut dyn FnMut(&mut H) -> Result<T>,
) -> Poll<Result<T>> {
    loop {
        match op(h) {
            Err(Error::Empty | Error::Full) => {}
            done => {
                w.disarm(ready_of(h));
                return Poll::Ready(done);
            }
        }
        let first = !w.armed;
        if let Err(e) = w.arm(ready_of(h)) {
            w.disarm(ready_of(h));
            return Poll::Ready(Err(e));
        }
        if first {
            continue; // re-check after announcing (no lost wakeup)
        }
        match ready!(w.poll_wait(cx)) {
            Step::Retry => {
                if let Some(r) = ready_of(h) {
                    r.clear();
                }
            }
            Step::CheckPeer => {
                let gone = ready_of(h).map_or(Ok(()), |r| r.check_peer());
                if let Err(gone) = gone {
                    // What the peer committed before it died comes first.
                    let last = op(h);
                    w.disarm(ready_of(h));
                    return Poll::Ready(match last {
                        Err(Error::Empty | Error::Full) => Err(gone),
                        other => other,
                    });
                }
            }
        }
    }
}

fn rx_readiness<T: channel::Receiver + ?Sized>(rx: &mut T) -> Option<&mut dyn Readiness> {
    rx.readiness()
}

fn tx_readiness<T: channel::Sender + ?Sized>(tx: &mut T) -> Option<&mut dyn Readiness> {
    tx.readiness()
}

/// An async receiving half over any channel [`Receiver`](channel::Receiver).
#[derive(Debug)]
pub struct AsyncReceiver<T: channel::Receiver> {
    waiter: Waiter,
    rx: T,
}

/// Disarms the receiver when the future holding it is dropped (completed or cancelled).
struct RxGuard<'a, T: channel::Receiver>(&'a mut AsyncReceiver<T>);

impl<T: channel::Receiver> Drop for RxGuard<'_, T> {
    fn drop(&mut self) {
        self.0.disarm();
    }
}

impl<T: channel::Receiver> AsyncReceiver<T> {
    /// Wraps `rx`. Its readiness descriptor is registered with the current tokio runtime on
    /// the first wait (so call that within one).
    pub fn new(rx: T) -> Self {
        AsyncReceiver {
            waiter: Waiter::new(),
            rx,
        }
    }

    /// The half back (disarmed).
    pub fn into_inner(mut self) -> T {
        self.disarm();
        let AsyncReceiver { rx, .. } = self;
        rx
    }

    /// The wrapped half, for its `try_` forms and introspection.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.rx
    }

    /// The next message, copied into a new vector. Cancel safe.
    pub async fn recv(&mut self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.recv_into(&mut buf).await?;
        Ok(buf)
    }

    /// Copies the next message into `buf` (cleared first); its length. Cancel safe: if the
    /// future is dropped before it completes, no message was taken.
    pub async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        let g = RxGuard(self);
        poll_fn(|cx| g.0.poll_recv_into(cx, buf)).await
    }

    /// Receives up to `max` messages into `batch` (cleared first), waiting while there is
    /// none, then taking what else is ready with the transport's batching (one release of the
    /// ring, one `recvmmsg`...); how many. Cancel safe: dropped pending, it took nothing.
    pub async fn recv_batch(&mut self, batch: &mut Batch, max: usize) -> Result<usize> {
        let g = RxGuard(self);
        poll_fn(|cx| g.0.poll_recv_batch(cx, batch, max)).await
    }

    /// Polls for the next message, copying it into `buf`. On `Pending` the half stays armed
    /// (its peer rings it) until a poll returns `Ready` or [`disarm`](Self::disarm).
    pub fn poll_recv_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<Result<usize>> {
        poll_op(
            &mut self.rx,
            rx_readiness::<T>,
            &mut self.waiter,
            cx,
            &mut |rx| rx.try_recv_into(buf),
        )
    }

    /// Polls for a batch, as [`recv_batch`](Self::recv_batch).
    pub fn poll_recv_batch(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut Batch,
        max: usize,
    ) -> Poll<Result<usize>> {
        if max == 0 {
            batch.clear();
            return Poll::Ready(Ok(0));
        }
        poll_op(
            &mut self.rx,
            rx_readiness::<T>,
            &mut self.waiter,
            cx,
            &mut |rx| rx.try_recv_batch(batch, max),
        )
    }

    /// Withdraws the doorbell announcement left by a `Pending` poll (the futures of this type
    /// do it when dropped).
    pub fn disarm(&mut self) {
        self.waiter.disarm(self.rx.readiness());
    }

    /// True while the half is armed (a `Pending` poll not yet followed by `Ready`).
    pub fn is_armed(&self) -> bool {
        self.waiter.armed
    }

    /// The descriptor registered with tokio (a duplicate of the half's readiness descriptor),
    /// once a call has waited; `None` before, and for halves without one (spin rings, System V
    /// queues).
    pub fn readiness_fd(&self) -> Option<BorrowedFd<'_>> {
        self.waiter.fd()
    }
}

// Nothing in the halves is structurally pinned: the futures and streams only use `&mut`.
impl<T: channel::Receiver> Unpin for AsyncReceiver<T> {}
impl<T: channel::Sender> Unpin for AsyncSender<T> {}

impl<T: channel::Receiver> futures_core::Stream for AsyncReceiver<T> {
    /// Each message; the stream ends when the senders closed ([`Error::Disconnected`]) and
    /// yields other errors (such as [`Error::PeerDead`]) as items.
    type Item = Result<Vec<u8>>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut buf = Vec::new();
        match ready!(self.get_mut().poll_recv_into(cx, &mut buf)) {
            Ok(_) => Poll::Ready(Some(Ok(buf))),
            Err(Error::Disconnected) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

/// An async sending half over any channel [`Sender`](channel::Sender).
///
/// Also a [`futures_sink::Sink`] of `Vec<u8>` (one message buffered: `poll_ready` sends the
/// previous one).
#[derive(Debug)]
pub struct AsyncSender<T: channel::Sender> {
    waiter: Waiter,
    tx: T,
    /// The message a `Sink::start_send` handed over and not yet sent.
    pending: Option<Vec<u8>>,
}

/// Disarms the sender when the future holding it is dropped.
struct TxGuard<'a, T: channel::Sender>(&'a mut AsyncSender<T>);

impl<T: channel::Sender> Drop for TxGuard<'_, T> {
    fn drop(&mut self) {
        self.0.disarm();
    }
}

impl<T: channel::Sender> AsyncSender<T> {
    /// Wraps `tx`; its readiness descriptor is registered on the first wait.
    pub fn new(tx: T) -> Self {
        AsyncSender {
            waiter: Waiter::new(),
            tx,
            pending: None,
        }
    }

    /// The half back (disarmed). A message buffered by the `Sink` and not flushed is dropped.
    pub fn into_inner(mut self) -> T {
        self.disarm();
        let AsyncSender { tx, .. } = self;
        tx
    }

    /// The wrapped half.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.tx
    }

    /// Sends a copy of `msg`, waiting while the channel is full. Cancel safe: dropped before
    /// it completes, it sent nothing.
    pub async fn send(&mut self, msg: &[u8]) -> Result<()> {
        let g = TxGuard(self);
        poll_fn(|cx| g.0.poll_send(cx, msg)).await
    }

    /// Sends `msgs` in order with the transport's batching (one publication on the rings, one
    /// `sendmmsg` or `writev`), waiting while nothing fits; how many went, as
    /// [`channel::Sender::send_batch`] reports progress: `Ok(k)` for the first `k` sent (call
    /// again with the rest), an error only when nothing was sent. Cancel safe: dropped
    /// pending, it sent nothing.
    pub async fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        let g = TxGuard(self);
        poll_fn(|cx| g.0.poll_send_batch(cx, msgs)).await
    }

    /// Polls to send `msg`. On `Pending` nothing was sent and the half stays armed until a
    /// poll returns `Ready` or [`disarm`](Self::disarm).
    pub fn poll_send(&mut self, cx: &mut Context<'_>, msg: &[u8]) -> Poll<Result<()>> {
        poll_op(
            &mut self.tx,
            tx_readiness::<T>,
            &mut self.waiter,
            cx,
            &mut |tx| tx.try_send(msg),
        )
    }

    /// Polls to send a batch, as [`send_batch`](Self::send_batch).
    pub fn poll_send_batch(&mut self, cx: &mut Context<'_>, msgs: &[&[u8]]) -> Poll<Result<usize>> {
        if msgs.is_empty() {
            return Poll::Ready(Ok(0));
        }
        poll_op(
            &mut self.tx,
            tx_readiness::<T>,
            &mut self.waiter,
            cx,
            &mut |tx| tx.try_send_batch(msgs),
        )
    }

    /// Withdraws the doorbell announcement left by a `Pending` poll.
    pub fn disarm(&mut self) {
        self.waiter.disarm(self.tx.readiness());
    }

    /// True while the half is armed.
    pub fn is_armed(&self) -> bool {
        self.waiter.armed
    }

    /// As [`AsyncReceiver::readiness_fd`].
    pub fn readiness_fd(&self) -> Option<BorrowedFd<'_>> {
        self.waiter.fd()
    }

    fn poll_flush_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(msg) = self.pending.take() {
            if self.poll_send(cx, &msg)?.is_pending() {
                self.pending = Some(msg);
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: channel::Sender> futures_sink::Sink<Vec<u8>> for AsyncSender<T> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_flush_pending(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Vec<u8>) -> Result<()> {
        let this = self.get_mut();
        if this.pending.is_some() {
            return Err(Error::Full);
        }
        this.pending = Some(item);
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_flush_pending(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_flush_pending(cx)
    }
}

impl<R: Flavor> shm::Receiver<R> {
    /// This half as an [`AsyncReceiver`] (feature `tokio`; wait within a tokio runtime with
    /// its time driver).
    pub fn into_async(self) -> Result<AsyncReceiver<Self>> {
        Ok(AsyncReceiver::new(self))
    }
}

impl<R: Flavor> shm::Sender<R> {
    /// This half as an [`AsyncSender`] (feature `tokio`).
    pub fn into_async(self) -> Result<AsyncSender<Self>> {
        Ok(AsyncSender::new(self))
    }
}
