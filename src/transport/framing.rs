//! Length-prefixed frames over a byte stream: the one place where pipes, FIFOs, Unix stream
//! sockets and TCP turn bytes into messages.
//!
//! A frame is a 4-byte little-endian payload length, then the payload. The receiver checks the
//! length against its maximum *before* it makes room for the payload: a length above it is
//! [`Error::Corrupted`] (the peer is buggy or hostile, or the stream is not ours), never an
//! allocation of that size.
//!
//! Both halves put their descriptor in non-blocking mode and wait with `poll(2)`, so that the
//! `try_` and `_timeout` forms are exact. A message that the kernel took only in part (the
//! stream was nearly full) counts as sent: the rest is kept and written before the next
//! message, by the next call or, at the latest, when the sender drops.
//!
//! ```
//! use shmring::channel::{Receiver, Sender};
//! use shmring::transport::framing::{FramedReceiver, FramedSender, StreamKind};
//! use std::os::unix::net::UnixStream;
//!
//! let (a, b) = UnixStream::pair().unwrap();
//! let mut tx = FramedSender::new(a.into(), StreamKind::Socket, 1024, "socketpair")?;
//! let mut rx = FramedReceiver::new(b.into(), StreamKind::Socket, 1024, "socketpair")?;
//! tx.send(b"")?;
//! tx.send(b"framed")?;
//! let mut buf = Vec::new();
//! assert_eq!(rx.recv_into(&mut buf)?, 0);
//! assert_eq!(rx.recv_into(&mut buf)?, 6);
//! assert_eq!(buf, b"framed");
//! assert!(matches!(tx.send(&[0; 1025]), Err(shmring::Error::TooLarge { size: 1025, max: 1024 })));
//! # Ok::<(), shmring::Error>(())
//! ```

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::MsgFlags;

use super::{
    batch_prefix, in_background, out_of_time, partial, poll_now, set_nonblocking, wait_fd, Until,
    DROP_WAIT,
};
use crate::error::{Error, Result};

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// The largest maximum a framed transport can have (the prefix is a `u32`).
pub const MAX_FRAME: usize = u32::MAX as usize;

/// How many bytes the receiver asks the kernel for at once (more if a frame needs it).
const READ_CHUNK: usize = 64 << 10;

/// What kind of descriptor carries the stream: it decides how bytes are written and how the
/// end of the stream is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// A pipe (written with `writev`; end of stream = `read` returns 0).
    Pipe,
    /// A named FIFO. `read` also returns 0 before any writer has opened it, so the end of the
    /// stream is taken only when `poll` reports a hang-up, which Linux does only after a writer
    /// has come and gone.
    Fifo,
    /// A stream socket (written with `sendmsg(MSG_NOSIGNAL)`).
    Socket,
}

/// The sending half of a framed byte stream.
#[derive(Debug)]
pub struct FramedSender {
    fd: OwnedFd,
    kind: StreamKind,
    max: usize,
    /// The unwritten tail of a message that was accepted in part.
    pending: Vec<u8>,
    pending_off: usize,
    what: String,
}

impl FramedSender {
    /// Wraps the write end of a stream (made non-blocking here). `max` is the largest payload;
    /// `what` names the stream in errors.
    pub fn new(fd: OwnedFd, kind: StreamKind, max: usize, what: &str) -> Result<Self> {
        set_nonblocking(&fd, what)?;
        Ok(FramedSender {
            fd,
            kind,
            max: max.min(MAX_FRAME),
            pending: Vec::new(),
            pending_off: 0,
            what: what.to_owned(),
        })
    }

    /// Finishes a partly written message (waiting up to a second, else `Err(Timeout)`) and
    /// gives back the descriptor (a duplicate of it, to the same stream).
    pub fn into_fd(mut self) -> Result<OwnedFd> {
        self.flush_pending(Until::after(DROP_WAIT))?;
        self.fd
            .try_clone()
            .map_err(|e| Error::io(format!("dup of {}", self.what), e))
    }

    /// Writes what it can of `bufs` now: `Ok(None)` if the stream is full.
    fn write_some(&self, bufs: &[IoSlice<'_>]) -> Result<Option<usize>> {
        loop {
            let r = match self.kind {
                StreamKind::Socket => nix::sys::socket::sendmsg::<()>(
                    self.fd.as_raw_fd(),
                    bufs,
                    &[],
                    MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
                    None,
                ),
                StreamKind::Pipe | StreamKind::Fifo => nix::sys::uio::writev(self.fd.as_fd(), bufs),
            };
            return match r {
                Ok(n) => Ok(Some(n)),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => Ok(None),
                Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => Err(Error::Disconnected),
                Err(e) => Err(Error::io(format!("write to {}", self.what), e)),
            };
        }
    }

    fn wait_writable(&self, until: Until) -> Result<()> {
        wait_fd(self.fd.as_fd(), PollFlags::POLLOUT, until, None, &self.what).map(drop)
    }

    /// Writes the rest of a partly written message. `Err(Full)`/`Err(Timeout)` if it could not.
    fn flush_pending(&mut self, until: Until) -> Result<()> {
        while self.pending_off < self.pending.len() {
            match self.write_some(&[IoSlice::new(&self.pending[self.pending_off..])])? {
                Some(n) => self.pending_off += n,
                None if until == Until::Now => return Err(Error::Full),
                None => self.wait_writable(until)?,
            }
        }
        self.pending.clear();
        self.pending_off = 0;
        Ok(())
    }

    fn send_until(&mut self, msg: &[u8], until: Until) -> Result<()> {
        if msg.len() > self.max {
            return Err(Error::TooLarge {
                size: msg.len(),
                max: self.max,
            });
        }
        self.flush_pending(until)?;
        let header = (msg.len() as u32).to_le_bytes();
        let total = HEADER_LEN + msg.len();
        let mut done = 0;
        while done < total {
            let bufs_owned;
            let bufs: &[IoSlice<'_>] = if done < HEADER_LEN {
                bufs_owned = [IoSlice::new(&header[done..]), IoSlice::new(msg)];
                &bufs_owned
            } else {
                bufs_owned = [IoSlice::new(&msg[done - HEADER_LEN..]), IoSlice::new(&[])];
                &bufs_owned[..1]
            };
            match self.write_some(bufs)? {
                Some(n) => done += n,
                None if done == 0 => {
                    // Nothing of this message is written yet: it may still be refused.
                    if until.expired() {
                        return Err(out_of_time(until, Error::Full));
                    }
                    match self.wait_writable(until) {
                        Err(Error::Timeout) => return Err(Error::Timeout),
                        r => r?,
                    }
                }
                None if until == Until::Forever => self.wait_writable(until)?,
                None => {
                    // Accepted in part: keep the rest for the next call.
                    let mut rest = Vec::with_capacity(total - done);
                    if done < HEADER_LEN {
                        rest.extend_from_slice(&header[done..]);
                        rest.extend_from_slice(msg);
                    } else {
                        rest.extend_from_slice(&msg[done - HEADER_LEN..]);
                    }
                    self.pending = rest;
                    self.pending_off = 0;
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

impl FramedSender {
    /// `send_batch`: the frames of many messages written with one `writev` / `sendmsg` per
    /// [`IOV_BATCH`] messages (headers and payloads as separate iovecs, no copy). Progress as
    /// `channel::Sender::send_batch` says; a message the stream took in part counts as sent
    /// and its rest is finished by the next call, as for `send`.
    fn send_batch_until(&mut self, msgs: &[&[u8]], until: Until) -> Result<usize> {
        let fits = batch_prefix(msgs, self.max)?;
        if fits == 0 {
            return Ok(0);
        }
        self.flush_pending(until)?;
        let mut sent = 0; // messages wholly written
        while sent < fits {
            let chunk = &msgs[sent..fits.min(sent + IOV_BATCH)];
            let headers: Vec<[u8; HEADER_LEN]> = chunk
                .iter()
                .map(|m| (m.len() as u32).to_le_bytes())
                .collect();
            let frame = |i: usize| HEADER_LEN + chunk[i].len();
            // `first` is the first message not wholly written, `skip` its bytes already written.
            let (mut first, mut skip) = (0, 0);
            while first < chunk.len() {
                let mut bufs = Vec::with_capacity(2 * (chunk.len() - first));
                for (i, m) in chunk.iter().enumerate().skip(first) {
                    let s = if i == first { skip } else { 0 };
                    if s < HEADER_LEN {
                        bufs.push(IoSlice::new(&headers[i][s..]));
                        bufs.push(IoSlice::new(m));
                    } else {
                        bufs.push(IoSlice::new(&m[s - HEADER_LEN..]));
                    }
                }
                match self.write_some(&bufs) {
                    Ok(Some(mut n)) => {
                        while n > 0 && first < chunk.len() {
                            let left = frame(first) - skip;
                            if n >= left {
                                n -= left;
                                first += 1;
                                skip = 0;
                            } else {
                                skip += n;
                                n = 0;
                            }
                        }
                    }
                    Ok(None) if until == Until::Forever => {
                        if let Err(e) = self.wait_writable(until) {
                            return partial(sent + first, e);
                        }
                    }
                    Ok(None) if skip > 0 => {
                        // Taken in part: it counts as sent; its rest goes out first next time.
                        let m = chunk[first];
                        let mut rest = Vec::with_capacity(frame(first) - skip);
                        if skip < HEADER_LEN {
                            rest.extend_from_slice(&headers[first][skip..]);
                            rest.extend_from_slice(m);
                        } else {
                            rest.extend_from_slice(&m[skip - HEADER_LEN..]);
                        }
                        self.pending = rest;
                        self.pending_off = 0;
                        return Ok(sent + first + 1);
                    }
                    Ok(None) if sent + first > 0 && until == Until::Now => return Ok(sent + first),
                    Ok(None) => {
                        if until.expired() {
                            return partial(sent + first, out_of_time(until, Error::Full));
                        }
                        if let Err(e) = self.wait_writable(until) {
                            return partial(sent + first, e);
                        }
                    }
                    Err(e) => return partial(sent + first, e),
                }
            }
            sent += chunk.len();
        }
        Ok(sent)
    }
}

/// Messages per `writev` of a batch (two iovecs each; the kernel takes up to 1024).
const IOV_BATCH: usize = 256;

impl crate::channel::Sender for FramedSender {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_until(msg, Until::Forever)
    }
    fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_until(msg, Until::Now)
    }
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_until(msg, Until::after(timeout))
    }
    fn max_message_size(&self) -> usize {
        self.max
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

impl Drop for FramedSender {
    fn drop(&mut self) {
        if self.pending_off == self.pending.len() {
            return;
        }
        // A message the caller was told is sent must arrive whole: wait a little, then let a
        // thread finish it (it holds a duplicate of the descriptor, so the receiver sees the
        // end of the stream only after the message).
        if let Err(Error::Timeout) = self.flush_pending(Until::after(DROP_WAIT)) {
            if let Ok(fd) = self.fd.try_clone() {
                let mut rest = FramedSender {
                    fd,
                    kind: self.kind,
                    max: self.max,
                    pending: std::mem::take(&mut self.pending),
                    pending_off: self.pending_off,
                    what: self.what.clone(),
                };
                in_background(move || {
                    let _ = rest.flush_pending(Until::Forever);
                });
            }
        }
    }
}

/// The receiving half of a framed byte stream.
#[derive(Debug)]
pub struct FramedReceiver {
    fd: OwnedFd,
    kind: StreamKind,
    max: usize,
    /// Bytes read from the stream; `start..end` are not yet handed out.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    what: String,
}

impl FramedReceiver {
    /// Wraps the read end of a stream (made non-blocking here). `max` is the largest payload
    /// accepted; a longer frame is [`Error::Corrupted`].
    pub fn new(fd: OwnedFd, kind: StreamKind, max: usize, what: &str) -> Result<Self> {
        set_nonblocking(&fd, what)?;
        Ok(FramedReceiver {
            fd,
            kind,
            max: max.min(MAX_FRAME),
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            what: what.to_owned(),
        })
    }

    /// Takes one whole frame out of the buffer, if there is one. Makes room for the frame
    /// being read (after checking its length) if there is not.
    fn take_frame(&mut self, out: &mut Vec<u8>) -> Result<Option<usize>> {
        let avail = self.end - self.start;
        let need = if avail >= HEADER_LEN {
            let mut h = [0u8; HEADER_LEN];
            h.copy_from_slice(&self.buf[self.start..self.start + HEADER_LEN]);
            let len = u32::from_le_bytes(h) as usize;
            if len > self.max {
                return Err(Error::Corrupted(
                    "a frame length above the transport's maximum message size",
                ));
            }
            if avail >= HEADER_LEN + len {
                let body = self.start + HEADER_LEN;
                out.clear();
                out.extend_from_slice(&self.buf[body..body + len]);
                self.start = body + len;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                return Ok(Some(len));
            }
            HEADER_LEN + len
        } else {
            HEADER_LEN
        };
        // Not whole yet: make sure `need` bytes fit from `start`, plus room to read ahead.
        if self.start + need > self.buf.len() || self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let want = need.max(READ_CHUNK);
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
        }
        Ok(None)
    }

    /// Reads what the stream has now. `Ok(false)` if nothing is there.
    fn fill(&mut self) -> Result<bool> {
        loop {
            match nix::unistd::read(self.fd.as_raw_fd(), &mut self.buf[self.end..]) {
                Ok(0) => {
                    if self.kind == StreamKind::Fifo {
                        // Before a writer has opened the FIFO, read also returns 0.
                        let ev = poll_now(self.fd.as_fd(), PollFlags::POLLIN, &self.what)?;
                        if !ev.contains(PollFlags::POLLHUP) {
                            return Ok(false);
                        }
                    }
                    self.eof = true;
                    return Ok(true);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(false),
                Err(Errno::ECONNRESET) => {
                    self.eof = true;
                    return Ok(true);
                }
                Err(e) => return Err(Error::io(format!("read from {}", self.what), e)),
            }
        }
    }

    fn recv_until(&mut self, out: &mut Vec<u8>, until: Until) -> Result<usize> {
        loop {
            if let Some(n) = self.take_frame(out)? {
                return Ok(n);
            }
            if self.eof {
                return Err(if self.end > self.start {
                    Error::Corrupted("the stream ended inside a frame")
                } else {
                    Error::Disconnected
                });
            }
            if !self.fill()? {
                if until.expired() {
                    return Err(out_of_time(until, Error::Empty));
                }
                // A FIFO without a writer yet reads as "nothing"; poll would not sleep then
                // only if it reported a hang-up, which it does not before a writer came.
                wait_fd(self.fd.as_fd(), PollFlags::POLLIN, until, None, &self.what)?;
            }
        }
    }
}

impl crate::channel::Receiver for FramedReceiver {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_until(buf, Until::Forever)
    }
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_until(buf, Until::Now)
    }
    fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.recv_until(buf, Until::after(timeout))
    }
    fn max_message_size(&self) -> usize {
        self.max
    }
}

pollable!(FramedSender, Writable, |s| s.fd.as_fd());
pollable!(FramedReceiver, Readable, |s| s.fd.as_fd());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Receiver, Sender};
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn oversized_length_is_corrupted_without_allocating() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut rx = FramedReceiver::new(b.into(), StreamKind::Socket, 1024, "pair").unwrap();
        a.write_all(&u32::MAX.to_le_bytes()).unwrap();
        let mut buf = Vec::new();
        assert!(matches!(
            rx.try_recv_into(&mut buf),
            Err(Error::Corrupted(_))
        ));
        assert!(rx.buf.len() <= READ_CHUNK);
    }

    #[test]
    fn truncated_stream_is_corrupted() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut rx = FramedReceiver::new(b.into(), StreamKind::Socket, 1024, "pair").unwrap();
        a.write_all(&10u32.to_le_bytes()).unwrap();
        a.write_all(b"abc").unwrap();
        drop(a);
        let mut buf = Vec::new();
        assert!(matches!(rx.recv_into(&mut buf), Err(Error::Corrupted(_))));
    }

    #[test]
    fn partial_write_is_finished_later() {
        let (a, b) = UnixStream::pair().unwrap();
        let max = 4 << 20;
        let mut tx = FramedSender::new(a.into(), StreamKind::Socket, max, "pair").unwrap();
        let mut rx = FramedReceiver::new(b.into(), StreamKind::Socket, max, "pair").unwrap();
        let big: Vec<u8> = (0..max).map(|i| i as u8).collect();
        // Too big for the socket buffer: accepted in part, the rest pending.
        tx.try_send(&big).unwrap();
        assert!(matches!(tx.try_send(b"x"), Err(Error::Full)));
        let t = std::thread::spawn(move || {
            tx.send(b"after").unwrap();
        });
        let mut buf = Vec::new();
        rx.recv_into(&mut buf).unwrap();
        assert_eq!(buf, big);
        rx.recv_into(&mut buf).unwrap();
        assert_eq!(buf, b"after");
        t.join().unwrap();
        assert!(matches!(rx.recv_into(&mut buf), Err(Error::Disconnected)));
    }
}
