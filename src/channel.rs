//! The Channel: the [`Sender`] and [`Receiver`] traits that every transport implements.
//!
//! Generic code (benchmarks, the conformance suite, users' programs) is written once against
//! them and runs over the shared-memory rings or any fallback transport. Both traits are object
//! safe, so a transport chosen at run time fits in a `Box<dyn Sender>`.
//!
//! ```
//! use shmring::{spsc, Config};
//! use shmring::channel::{Receiver, Sender};
//!
//! fn pump(tx: &mut dyn Sender, rx: &mut dyn Receiver) -> shmring::Result<Vec<u8>> {
//!     tx.send(b"over any transport")?;
//!     let mut buf = Vec::new();
//!     rx.recv_into(&mut buf)?;
//!     Ok(buf)
//! }
//!
//! let name = format!("doc-channel-{}", std::process::id());
//! let mut tx = spsc::Sender::create(&name, Config::default())?;
//! let mut rx = spsc::Receiver::open(&name)?;
//! assert_eq!(pump(&mut tx, &mut rx)?, b"over any transport");
//! # Ok::<(), shmring::Error>(())
//! ```
//!
//! # Choosing a transport at run time
//! The traits say nothing about how a channel is made. [`crate::endpoint`] (above every
//! transport) turns a URL such as `shm://orders?ring=mpmc` or `unix-seqpacket://@orders` into
//! a boxed half: see [`crate::listen`] and [`crate::connect`].

use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use crate::error::Result;

/// The sending half of any transport.
pub trait Sender: Send {
    /// Sends one message, waiting while the transport is full.
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// Sends one message, or fails with `Error::Full` at once.
    fn try_send(&mut self, msg: &[u8]) -> Result<()>;
    /// Sends one message, waiting at most `timeout` (then `Error::Timeout`).
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()>;
    /// The largest message this transport carries; larger ones fail with `Error::TooLarge`.
    fn max_message_size(&self) -> usize;

    /// Sends `msgs` in order, with as few synchronisations as the transport allows (one
    /// publication per batch on the shared-memory rings, one `sendmmsg` or `writev` where the
    /// OS has it), waiting while the transport is full.
    ///
    /// Returns how many messages were sent, counted from the first: all of them, unless an
    /// error stopped it after some were sent, as [`std::io::Write::write`] reports progress:
    /// `Ok(k)` with `k < msgs.len()` means the first `k` went out and message `k` did not;
    /// call again with `&msgs[k..]` to send the rest or to see the error. An error is returned
    /// only when nothing was sent, so no message is lost or sent twice unnoticed.
    ///
    /// ```
    /// use shmring::channel::{Batch, Receiver, Sender};
    /// # let name = format!("doc-send-batch-{}", std::process::id());
    /// # let mut tx = shmring::spsc::Sender::create(&name, shmring::Config::default())?;
    /// # let mut rx = shmring::spsc::Receiver::open(&name)?;
    /// let msgs: [&[u8]; 3] = [b"one", b"two", b"three"];
    /// assert_eq!(Sender::send_batch(&mut tx, &msgs)?, 3);
    /// let mut batch = Batch::new();
    /// assert_eq!(Receiver::recv_batch(&mut rx, &mut batch, 16)?, 3);
    /// assert_eq!(batch.iter().collect::<Vec<_>>(), msgs);
    /// # Ok::<(), shmring::Error>(())
    /// ```
    fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        send_each(msgs, |m| self.send(m))
    }

    /// Sends as many of `msgs` as fit now, in order, without waiting: `Ok(k)`, `k >= 1`, for
    /// the first `k` sent, or the error (`Error::Full` if not even the first fits).
    fn try_send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        send_each(msgs, |m| self.try_send(m))
    }

    /// As [`send_batch`](Self::send_batch), waiting at most `timeout` in all; what was sent
    /// before the time ran out is reported as `Ok(k)`.
    fn send_batch_timeout(&mut self, msgs: &[&[u8]], timeout: Duration) -> Result<usize> {
        let deadline = crate::sync::wait::Until::after(timeout);
        send_each(msgs, |m| self.send_timeout(m, deadline.remaining()))
    }

    /// How an event loop waits until this half can send: see [`Readiness`]. `None` for a
    /// transport with no descriptor to poll (System V queues): an event loop then retries on a
    /// timer.
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        None
    }
}

/// The default batch loop: sends one by one, reporting progress as
/// [`Sender::send_batch`] says.
fn send_each(msgs: &[&[u8]], mut send: impl FnMut(&[u8]) -> Result<()>) -> Result<usize> {
    for (k, m) in msgs.iter().enumerate() {
        if let Err(e) = send(m) {
            return if k == 0 { Err(e) } else { Ok(k) };
        }
    }
    Ok(msgs.len())
}

/// The default receive-batch loop: `recv(buf, true)` (which may wait), then
/// `recv(buf, false)` (which must not) until `max` or until it fails (what stopped it is seen
/// again by the next call).
fn recv_each(
    batch: &mut Batch,
    max: usize,
    mut recv: impl FnMut(&mut Vec<u8>, bool) -> Result<usize>,
) -> Result<usize> {
    batch.clear();
    if max == 0 {
        return Ok(0);
    }
    batch.push_received(|b| recv(b, true))?;
    while batch.len() < max && batch.push_received(|b| recv(b, false)).is_ok() {}
    Ok(batch.len())
}

/// Messages received together by [`Receiver::recv_batch`]: one byte buffer and the bounds of
/// each message, reused from call to call so that a steady stream allocates nothing.
///
/// ```
/// use shmring::channel::Batch;
/// let mut batch = Batch::new();
/// batch.push(b"ab");
/// batch.push(b"");
/// batch.push(b"cde");
/// assert_eq!(batch.len(), 3);
/// assert_eq!(&batch[2], b"cde");
/// assert_eq!(batch.iter().map(<[u8]>::len).sum::<usize>(), 5);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// One message's buffer for [`push_received`](Self::push_received).
    scratch: Vec<u8>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many messages it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True if it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Forgets every message, keeping the allocations.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Appends a copy of `msg`.
    pub fn push(&mut self, msg: &[u8]) {
        self.bytes.extend_from_slice(msg);
        self.ends.push(self.bytes.len());
    }

    /// Appends a copy of the `len` bytes at `ptr` (the shared-memory rings' batch receive:
    /// straight from the ring, with the small-copy routine the rings use).
    ///
    /// # Safety
    /// `ptr` is valid for reads of `len` bytes and does not point into this batch.
    #[inline(always)]
    pub(crate) unsafe fn push_raw(&mut self, ptr: *const u8, len: usize) {
        self.bytes.reserve(len);
        let at = self.bytes.len();
        // SAFETY: `reserve` made room for `len` more bytes after `at`; the caller's contract
        // makes `ptr` readable for `len` bytes and not part of `bytes`. The bytes are
        // initialised by the copy before `set_len` counts them.
        unsafe {
            crate::ring::layout::copy_bytes(ptr, self.bytes.as_mut_ptr().add(at), len);
            self.bytes.set_len(at + len);
        }
        self.ends.push(self.bytes.len());
    }

    /// Receives one message with `recv` (a `recv_into`-like call that fills a buffer and
    /// returns the length) and appends it; on error nothing is appended. For implementing
    /// [`Receiver::recv_batch`] over a one-message receive.
    pub fn push_received(
        &mut self,
        recv: impl FnOnce(&mut Vec<u8>) -> Result<usize>,
    ) -> Result<usize> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = recv(&mut scratch);
        if let Ok(n) = r {
            self.push(&scratch[..n]);
        }
        self.scratch = scratch;
        r
    }

    /// Message `i`, if there is one.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let range = self.range(i)?;
        Some(&self.bytes[range])
    }

    fn range(&self, i: usize) -> Option<Range<usize>> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(start..end)
    }

    /// The messages, in order. One pass over the ends, each message starting where the one
    /// before ended (no lookup of the previous end per message).
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let msg = &self.bytes[start..end];
            start = end;
            msg
        })
    }
}

impl std::ops::Index<usize> for Batch {
    type Output = [u8];
    fn index(&self, i: usize) -> &[u8] {
        self.get(i).expect("message index out of range")
    }
}

/// The receiving half of any transport.
pub trait Receiver: Send {
    /// Receives one message into `buf` (cleared first), waiting while there is none.
    /// Returns the message's length.
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize>;
    /// Receives one message into `buf`, or fails with `Error::Empty` at once.
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize>;
    /// Receives one message into `buf`, waiting at most `timeout` (then `Error::Timeout`).
    fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize>;
    /// The largest message this transport carries.
    fn max_message_size(&self) -> usize;
    /// Receives up to `max` messages into `batch` (cleared first), waiting while there is
    /// none, then taking, without waiting, what else is ready; returns how many. Transports
    /// that can, take them with one call (`recvmmsg`, one read of many frames, one release of
    /// the ring). `max == 0` returns `Ok(0)` at once.
    fn recv_batch(&mut self, batch: &mut Batch, max: usize) -> Result<usize> {
        recv_each(batch, max, |b, first| {
            if first {
                self.recv_into(b)
            } else {
                self.try_recv_into(b)
            }
        })
    }

    /// As [`recv_batch`](Self::recv_batch), or `Error::Empty` at once if nothing is ready.
    fn try_recv_batch(&mut self, batch: &mut Batch, max: usize) -> Result<usize> {
        recv_each(batch, max, |b, _| self.try_recv_into(b))
    }

    /// As [`recv_batch`](Self::recv_batch), waiting at most `timeout` for the first message.
    fn recv_batch_timeout(
        &mut self,
        batch: &mut Batch,
        max: usize,
        timeout: Duration,
    ) -> Result<usize> {
        recv_each(batch, max, |b, first| {
            if first {
                self.recv_into_timeout(b, timeout)
            } else {
                self.try_recv_into(b)
            }
        })
    }

    /// The URL a sender can [`connect`](crate::connect) to, if this receiver has one (a TCP listener bound to
    /// port 0 reports the port it got). `None` for receivers without an address (pipes) or
    /// that do not say.
    fn local_url(&self) -> Option<String> {
        None
    }

    /// How an event loop waits until this half can receive: see [`Readiness`]. `None` for a
    /// transport with no descriptor to poll (System V queues).
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        None
    }
}

/// Which way a readiness descriptor turns when its half can make progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Wait until the descriptor is readable (`POLLIN`, `EPOLLIN`).
    Readable,
    /// Wait until the descriptor is writable (`POLLOUT`, `EPOLLOUT`).
    Writable,
}

/// How an event loop (epoll, tokio: see [`WaitSet`](crate::WaitSet) and `shmring::tokio`)
/// waits on a channel half: a descriptor that turns ready when the half may make progress.
///
/// The protocol, the same for every transport:
///
/// 1. [`arm`](Self::arm) (idempotent), then *try* the operation (`try_recv_into`, `try_send`...);
/// 2. on `Empty` / `Full`, wait until the descriptor `arm` gave is ready (the interest it
///    gave), for at most [`check_interval`](Self::check_interval) if it has one;
/// 3. [`clear`](Self::clear), then [`check_peer`](Self::check_peer) if the interval passed,
///    and go to 1 (call `arm` again: the descriptor may change, once, when a listening
///    socket accepts its sender);
/// 4. once the operation succeeded, [`disarm`](Self::disarm) (or stay armed while polling).
///
/// A shared-memory half's descriptor is its *doorbell* (`sync::doorbell`), a datagram socket
/// the other side rings only while this half is armed, so a channel nobody polls costs
/// nothing. A fallback transport's is its own socket, pipe, FIFO or queue descriptor; `arm`,
/// `clear` and `disarm` do nothing there but give it.
pub trait Readiness {
    /// Announces the caller as a poller and gives the descriptor to wait on, with the
    /// readiness to wait for. `Ok(None)`: this half's peer never rings (a [`Wait::Spin`]
    /// ring): poll again at once, as spin asks.
    ///
    /// [`Wait::Spin`]: crate::Wait::Spin
    fn arm(&mut self) -> Result<Option<(BorrowedFd<'_>, Interest)>>;
    /// Withdraws [`arm`](Self::arm): the peer stops ringing. Idempotent.
    fn disarm(&mut self) {}
    /// Takes pending rings off the descriptor; call after it was reported ready and before
    /// trying the operation again.
    fn clear(&mut self) {}
    /// Whether the peer is alive: `Err(PeerDead)` when it died (a dead peer rings nothing).
    /// Call every [`check_interval`](Self::check_interval).
    fn check_peer(&self) -> Result<()> {
        Ok(())
    }
    /// How often to call [`check_peer`](Self::check_peer) while waiting; `None` if the
    /// descriptor itself reports the peer's end (sockets, pipes, queues).
    fn check_interval(&self) -> Option<Duration> {
        None
    }
}

impl<T: Sender + ?Sized> Sender for Box<T> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        (**self).send(msg)
    }
    fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        (**self).try_send(msg)
    }
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        (**self).send_timeout(msg, timeout)
    }
    fn max_message_size(&self) -> usize {
        (**self).max_message_size()
    }
    fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        (**self).send_batch(msgs)
    }
    fn try_send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        (**self).try_send_batch(msgs)
    }
    fn send_batch_timeout(&mut self, msgs: &[&[u8]], timeout: Duration) -> Result<usize> {
        (**self).send_batch_timeout(msgs, timeout)
    }
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        (**self).readiness()
    }
}

impl<T: Receiver + ?Sized> Receiver for Box<T> {
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        (**self).recv_into(buf)
    }
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        (**self).try_recv_into(buf)
    }
    fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        (**self).recv_into_timeout(buf, timeout)
    }
    fn max_message_size(&self) -> usize {
        (**self).max_message_size()
    }
    fn recv_batch(&mut self, batch: &mut Batch, max: usize) -> Result<usize> {
        (**self).recv_batch(batch, max)
    }
    fn try_recv_batch(&mut self, batch: &mut Batch, max: usize) -> Result<usize> {
        (**self).try_recv_batch(batch, max)
    }
    fn recv_batch_timeout(
        &mut self,
        batch: &mut Batch,
        max: usize,
        timeout: Duration,
    ) -> Result<usize> {
        (**self).recv_batch_timeout(batch, max, timeout)
    }
    fn local_url(&self) -> Option<String> {
        (**self).local_url()
    }
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        (**self).readiness()
    }
}
