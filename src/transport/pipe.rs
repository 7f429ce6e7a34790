//! Anonymous pipes (`pipe:`): between a parent and the child that inherits one end.
//!
//! A pipe has no name: its two ends exist from [`channel`] on, and a child process reaches its
//! end by inheriting the descriptor. The endpoint `pipe:FD` names such an inherited descriptor
//! (`pipe:` alone means standard input for [`listen`](crate::listen) and standard output for
//! [`connect`](crate::connect), as in a shell pipeline `producer | consumer`). Messages are
//! [framed](super::framing); the largest is 1 MiB unless the URL says `max=`.
//!
//! Whoever turns a descriptor number into a half takes ownership of it: the half closes it on
//! drop, and nothing else in the process may use it.
//!
//! ```
//! use shmring::channel::{Receiver, Sender};
//! use std::os::fd::IntoRawFd;
//!
//! let (tx, mut rx) = shmring::transport::pipe::channel()?;
//! // Normally the child process does this with the descriptor it inherited.
//! let fd = tx.into_fd()?.into_raw_fd();
//! let mut tx = shmring::connect(&format!("pipe:{fd}"))?;
//! tx.send(b"from the child")?;
//! drop(tx);
//! let mut buf = Vec::new();
//! rx.recv_into(&mut buf)?;
//! assert_eq!(buf, b"from the child");
//! assert!(matches!(rx.recv_into(&mut buf), Err(shmring::Error::Disconnected)));
//! # Ok::<(), shmring::Error>(())
//! ```

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::fcntl::OFlag;

use super::framing::{FramedReceiver, FramedSender, StreamKind};
use super::DEFAULT_STREAM_MAX;
use crate::error::{Error, Result};

/// The write end of a pipe.
#[derive(Debug)]
pub struct PipeSender {
    inner: FramedSender,
    fd: RawFd,
}

/// The read end of a pipe.
#[derive(Debug)]
pub struct PipeReceiver {
    inner: FramedReceiver,
}

/// A new pipe, both ends close-on-exec (clear `FD_CLOEXEC` on the end a child should inherit,
/// e.g. in `CommandExt::pre_exec`), carrying messages of up to 1 MiB.
pub fn channel() -> Result<(PipeSender, PipeReceiver)> {
    channel_with_max(DEFAULT_STREAM_MAX)
}

/// A new pipe carrying messages of up to `max` bytes.
pub fn channel_with_max(max: usize) -> Result<(PipeSender, PipeReceiver)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::io("pipe2", e))?;
    Ok((PipeSender::from_fd(w, max)?, PipeReceiver::from_fd(r, max)?))
}

/// Takes ownership of the inherited descriptor `fd` after checking that it is open and a pipe.
pub(crate) fn adopt(fd: RawFd, what: &str) -> Result<OwnedFd> {
    let st = nix::sys::stat::fstat(fd)
        .map_err(|e| Error::io(format!("fstat of inherited descriptor {fd} ({what})"), e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(Error::InvalidName {
            name: format!("pipe:{fd}"),
            reason: "the descriptor is not a pipe",
        });
    }
    // SAFETY: the descriptor is open (fstat succeeded); the `pipe:FD` contract documented on
    // this module makes the caller hand its ownership to us, so no one else closes it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl PipeSender {
    /// Wraps the write end of a pipe.
    pub fn from_fd(fd: OwnedFd, max: usize) -> Result<Self> {
        use std::os::fd::AsRawFd;
        let raw = fd.as_raw_fd();
        Ok(PipeSender {
            inner: FramedSender::new(fd, StreamKind::Pipe, max, &format!("pipe (fd {raw})"))?,
            fd: raw,
        })
    }

    /// Takes ownership of the inherited write end `fd` (see the module docs).
    pub fn from_inherited(fd: RawFd, max: usize) -> Result<Self> {
        Self::from_fd(adopt(fd, "pipe write end")?, max)
    }

    /// The descriptor number, e.g. to clear its `FD_CLOEXEC` before spawning a child.
    pub fn raw_fd(&self) -> RawFd {
        self.fd
    }

    /// Gives the descriptor back (to hand it to a child process, say).
    pub fn into_fd(self) -> Result<OwnedFd> {
        self.inner.into_fd()
    }
}

impl PipeReceiver {
    /// Wraps the read end of a pipe.
    pub fn from_fd(fd: OwnedFd, max: usize) -> Result<Self> {
        use std::os::fd::AsRawFd;
        let raw = fd.as_raw_fd();
        Ok(PipeReceiver {
            inner: FramedReceiver::new(fd, StreamKind::Pipe, max, &format!("pipe (fd {raw})"))?,
        })
    }

    /// Takes ownership of the inherited read end `fd` (see the module docs).
    pub fn from_inherited(fd: RawFd, max: usize) -> Result<Self> {
        Self::from_fd(adopt(fd, "pipe read end")?, max)
    }
}

impl crate::channel::Sender for PipeSender {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        self.inner.send_batch(msgs)
    }
    fn try_send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        self.inner.try_send_batch(msgs)
    }
    fn send_batch_timeout(&mut self, msgs: &[&[u8]], timeout: Duration) -> Result<usize> {
        self.inner.send_batch_timeout(msgs, timeout)
    }
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.inner.send(msg)
    }
    fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        self.inner.try_send(msg)
    }
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.inner.send_timeout(msg, timeout)
    }
    fn max_message_size(&self) -> usize {
        crate::channel::Sender::max_message_size(&self.inner)
    }
}

impl crate::channel::Receiver for PipeReceiver {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.inner.recv_into(buf)
    }
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.inner.try_recv_into(buf)
    }
    fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.inner.recv_into_timeout(buf, timeout)
    }
    fn max_message_size(&self) -> usize {
        crate::channel::Receiver::max_message_size(&self.inner)
    }
}
pollable!(PipeSender, Writable, |s| std::os::fd::AsFd::as_fd(&s.inner));
pollable!(PipeReceiver, Readable, |s| std::os::fd::AsFd::as_fd(
    &s.inner
));
