//! Named FIFOs (`fifo:///path`), made with `mkfifo(3)`.
//!
//! The listening side ([`FifoReceiver::create`]) makes the FIFO (mode 0600; it fails if the
//! path exists) and removes it when it drops; the connecting side ([`FifoSender::open`]) opens
//! it for writing, which fails with `ENXIO` while no receiver has it open, and refuses
//! ([`Error::Untrusted`]) a FIFO owned by another user or writable by group or others unless
//! allowed ([`FifoSender::open_with`], `allow_uid=` / `allow_gid=` in the URL). Messages are
//! [framed](super::framing); the largest is 1 MiB unless the URL says `max=`.
//!
//! Before a writer has opened the FIFO, the receiver simply finds it empty; once the writer
//! has closed it, the receiver drains it and gets [`Error::Disconnected`].
//!
//! ```
//! use shmring::channel::{Receiver, Sender};
//! let path = std::env::temp_dir().join(format!("doc-fifo-{}", std::process::id()));
//! let url = format!("fifo://{}", path.display());
//! let mut rx = shmring::listen(&url)?;
//! let mut tx = shmring::connect(&url)?;
//! tx.send(b"through the fifo")?;
//! let mut buf = Vec::new();
//! rx.recv_into(&mut buf)?;
//! assert_eq!(buf, b"through the fifo");
//! drop(rx);
//! assert!(!path.exists());
//! # Ok::<(), shmring::Error>(())
//! ```

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::framing::{FramedReceiver, FramedSender, StreamKind};
use crate::error::{Error, Result};
use crate::trust::{FileKind, Trust};

/// The listening (reading) side of a FIFO; removes the FIFO when dropped.
#[derive(Debug)]
pub struct FifoReceiver {
    inner: FramedReceiver,
    path: PathBuf,
}

/// The writing side of a FIFO.
#[derive(Debug)]
pub struct FifoSender {
    inner: FramedSender,
}

fn open(path: &Path, flags: OFlag) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(format!("open FIFO {}", path.display()), e))?;
    // SAFETY: `open` just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl FifoReceiver {
    /// Makes the FIFO at `path` and opens it for reading (without waiting for a writer).
    pub fn create(path: impl AsRef<Path>, max: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(|e| Error::io(format!("mkfifo {}", path.display()), e))?;
        let fd = match open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let what = format!("FIFO {}", path.display());
        Ok(FifoReceiver {
            inner: FramedReceiver::new(fd, StreamKind::Fifo, max, &what)?,
            path,
        })
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FifoReceiver {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl FifoSender {
    /// Opens the FIFO at `path` for writing. Fails (`ENXIO`) if no receiver has it open.
    /// The FIFO must be owned by this process's effective uid and writable by nobody else
    /// ([`Error::Untrusted`] otherwise); [`open_with`](Self::open_with) trusts more.
    pub fn open(path: impl AsRef<Path>, max: usize) -> Result<Self> {
        Self::open_with(path, max, &Trust::default())
    }

    /// [`open`](Self::open), trusting also what `trust` allows. The check runs on `fstat` of
    /// the descriptor that is then written (no race with a rename), before anything is sent.
    pub fn open_with(path: impl AsRef<Path>, max: usize, trust: &Trust) -> Result<Self> {
        use std::os::fd::AsFd;
        let path = path.as_ref();
        let fd = open(
            path,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW,
        )?;
        let what = format!("FIFO {}", path.display());
        trust.check_fd(&what, FileKind::Fifo, fd.as_fd())?;
        Ok(FifoSender {
            inner: FramedSender::new(fd, StreamKind::Fifo, max, &what)?,
        })
    }
}

impl crate::channel::Sender for FifoSender {
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
        self.inner.max_message_size()
    }
}

impl crate::channel::Receiver for FifoReceiver {
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
        self.inner.max_message_size()
    }
    fn local_url(&self) -> Option<String> {
        Some(format!("fifo://{}", self.path.display()))
    }
}

pollable!(FifoSender, Writable, |s| std::os::fd::AsFd::as_fd(&s.inner));
pollable!(FifoReceiver, Readable, |s| std::os::fd::AsFd::as_fd(
    &s.inner
));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Receiver, Sender};
    use std::time::Instant;

    #[test]
    fn before_any_writer_the_fifo_is_empty_not_closed() {
        let path = std::env::temp_dir().join(format!("shmring-unit-fifo-{}", std::process::id()));
        let mut rx = FifoReceiver::create(&path, 64).unwrap();
        let mut buf = Vec::new();
        assert!(matches!(rx.try_recv_into(&mut buf), Err(Error::Empty)));
        let start = Instant::now();
        let r = rx.recv_into_timeout(&mut buf, Duration::from_millis(30));
        assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
        assert!(start.elapsed() >= Duration::from_millis(30));
        let mut tx = FifoSender::open(&path, 64).unwrap();
        tx.send(b"late writer").unwrap();
        drop(tx);
        rx.recv_into(&mut buf).unwrap();
        assert_eq!(buf, b"late writer");
        assert!(matches!(rx.recv_into(&mut buf), Err(Error::Disconnected)));
        drop(rx);
        assert!(!path.exists());
        // No receiver: the writer cannot open it.
        assert!(FifoSender::open(&path, 64).is_err());
    }
}
