//! The fallback transports: the classic Linux IPC mechanisms behind the same
//! [`Sender`](crate::channel::Sender) / [`Receiver`](crate::channel::Receiver) traits as the
//! shared-memory rings.
//!
//! Each is built from an endpoint URL by [`listen`](crate::listen) (the side that creates the
//! endpoint and receives) and [`connect`](crate::connect) (the side that sends), or directly from
//! its module:
//!
//! | URL | module | unit | largest message (default) |
//! |-----|--------|------|------------------|
//! | `pipe:` / `pipe:FD` | [`pipe`] | length-prefixed frames | 1 MiB (`max=`) |
//! | `fifo:///path` | [`fifo`] | length-prefixed frames | 1 MiB (`max=`) |
//! | `unix:///path`, `unix://@name` | [`unix`] | length-prefixed frames | 1 MiB (`max=`) |
//! | `unix-seqpacket://…` | [`unix`] | one packet per message | 64 KiB (`max=`) |
//! | `unix-dgram://…` | [`unix`] | one datagram per message | 64 KiB (`max=`) |
//! | `mq://name` | [`posix_mq`] | one queue message per message | `/proc/sys/fs/mqueue/msgsize_max` |
//! | `sysv://0x1234` | [`sysv_mq`] | one queue message per message | `/proc/sys/kernel/msgmax` |
//! | `tcp://host:port` | [`tcp`] | length-prefixed frames | 1 MiB (`max=`) |
//!
//! Byte streams (pipe, FIFO, Unix stream, TCP) are framed in one place, [`framing`]: a 4-byte
//! little-endian length, then the payload. A frame length above the receiver's maximum is
//! [`Error::Corrupted`]; the receiver never allocates more than its maximum for a peer.
//!
//! # One sender, one receiver
//! Every channel here joins one sender to one receiver, like the SPSC ring. Transports that have
//! no notion of a connection (datagrams, message queues) carry an in-band close marker that the
//! sender emits when it drops, so that the receiver drains what was sent and then sees
//! [`Error::Disconnected`], exactly as over a stream.
//!
//! A sender that drops while the receiver has no room waits up to a second for room, then
//! leaves the marker (or the rest of a partly written message) to a background thread that
//! delivers it once the receiver makes room, or gives up when the receiver goes away; if the
//! process exits before that, the receiver sees no marker (a stream: a cut-off frame,
//! [`Error::Corrupted`]). A sender process that dies without dropping its half cannot send that marker: a receiver
//! of a datagram socket or a message queue then waits for ever in a blocking receive. Use the
//! `_timeout` forms where the sender may be killed. (Stream transports see the kernel close the
//! dead sender's descriptor, and report [`Error::Disconnected`].)
//!
//! # Signals
//! The socket transports send with `MSG_NOSIGNAL`. Pipes and FIFOs cannot: a write to a pipe
//! whose reader is gone raises `SIGPIPE`, which the Rust runtime ignores in every Rust `main`
//! (then the write fails with `EPIPE` and the sender reports [`Error::Disconnected`]). A program
//! that is not a Rust binary must ignore `SIGPIPE` itself before using a pipe or FIFO sender.
//!
//! ```
//! use shmring::channel::{Receiver, Sender};
//! let (mut tx, mut rx) = shmring::transport::pipe::channel()?;
//! tx.send(b"ping")?;
//! let mut buf = Vec::new();
//! rx.recv_into(&mut buf)?;
//! assert_eq!(buf, b"ping");
//! # Ok::<(), shmring::Error>(())
//! ```

/// Gives a transport half its readiness fd: `AsFd` (the descriptor `$fd` names, borrowed from
/// `$s`) and a [`Readiness`](crate::channel::Readiness) whose `arm` gives it with `$interest`
/// (the kernel reports the peer's progress and its end on the descriptor itself, so there is
/// nothing to announce, clear or check).
macro_rules! pollable {
    ($ty:ty, $interest:ident, |$s:ident| $fd:expr) => {
        impl std::os::fd::AsFd for $ty {
            /// The transport's own descriptor, to poll for readiness (see
            /// [`Readiness`](crate::channel::Readiness)).
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                let $s = self;
                $fd
            }
        }
        impl crate::channel::Readiness for $ty {
            fn arm(
                &mut self,
            ) -> crate::error::Result<
                Option<(std::os::fd::BorrowedFd<'_>, crate::channel::Interest)>,
            > {
                Ok(Some((
                    std::os::fd::AsFd::as_fd(&*self),
                    crate::channel::Interest::$interest,
                )))
            }
        }
    };
}

pub mod fifo;
pub mod framing;
pub mod pipe;
pub mod posix_mq;
pub mod sysv_mq;
pub mod tcp;
pub mod unix;

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::error::{Error, Result};

/// The largest message of the byte-stream transports unless the URL says `max=`.
pub const DEFAULT_STREAM_MAX: usize = 1 << 20;
/// The largest message of the packet transports (seqpacket, datagram) unless the URL says `max=`.
pub const DEFAULT_PACKET_MAX: usize = 64 << 10;

/// How long a dropping sender waits, in `drop`, to finish a partly written message or to
/// deliver its close marker, before it hands the rest to a background thread.
pub(crate) const DROP_WAIT: Duration = Duration::from_secs(1);

/// Runs `f` on a detached thread: the end of a dropped sender's work, which waits (for room
/// or for the receiver's departure) without blocking the caller's `drop`. The work is lost if
/// the process exits first.
pub(crate) fn in_background(f: impl FnOnce() + Send + 'static) {
    let _ = std::thread::Builder::new()
        .name("shmring-drop".into())
        .spawn(f);
}

pub(crate) use crate::sync::wait::Until;

impl Until {
    /// The poll timeout for the next slice, capped at `cap` (if any). `None` once expired.
    pub(crate) fn slice(self, cap: Option<Duration>) -> Option<PollTimeout> {
        let left = match self {
            Until::Now => return None,
            Until::Forever => None,
            Until::Deadline(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                Some(d - now)
            }
        };
        let left = match (left, cap) {
            (Some(l), Some(c)) => Some(l.min(c)),
            (l, c) => l.or(c),
        };
        Some(match left {
            None => PollTimeout::NONE,
            // Round up, so that poll never returns before the deadline.
            Some(l) => {
                let ms = l.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms.max(1)).unwrap_or(PollTimeout::MAX)
            }
        })
    }
}

/// How many of `msgs`, from the first, a batch may send: those up to the first longer than
/// `max`. `Err(TooLarge)` if that is the first one (so the caller reports it), `Ok(0)` for an
/// empty batch.
pub(crate) fn batch_prefix(msgs: &[&[u8]], max: usize) -> Result<usize> {
    let fits = msgs
        .iter()
        .position(|m| m.len() > max)
        .unwrap_or(msgs.len());
    match msgs.get(fits) {
        Some(m) if fits == 0 => Err(Error::TooLarge { size: m.len(), max }),
        _ => Ok(fits),
    }
}

/// The batch methods' progress rule: `Ok(sent)` if any message went (what stopped the batch is
/// seen again by the next call), else the error.
pub(crate) fn partial(sent: usize, e: Error) -> Result<usize> {
    if sent > 0 {
        Ok(sent)
    } else {
        Err(e)
    }
}

/// The error a `try_`/`_timeout` call returns when it ran out of time: `on_now` (`Empty` or
/// `Full`) for [`Until::Now`], `Timeout` otherwise.
pub(crate) fn out_of_time(until: Until, on_now: Error) -> Error {
    match until {
        Until::Now => on_now,
        _ => Error::Timeout,
    }
}

/// Waits until `fd` reports one of `events` (or an error or hang-up, which the caller's next
/// call discovers), or one slice of at most `cap` has passed. `Err(Timeout)` once `until` has
/// expired; `Ok(false)` when the slice ended without an event.
pub(crate) fn wait_fd(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    until: Until,
    cap: Option<Duration>,
    what: &str,
) -> Result<bool> {
    let Some(timeout) = until.slice(cap) else {
        return Err(Error::Timeout);
    };
    let mut fds = [PollFd::new(fd, events)];
    match nix::poll::poll(&mut fds, timeout) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(Error::io(format!("poll on {what}"), e)),
    }
}

/// The events `fd` reports now, without waiting.
pub(crate) fn poll_now(fd: BorrowedFd<'_>, events: PollFlags, what: &str) -> Result<PollFlags> {
    let mut fds = [PollFd::new(fd, events)];
    loop {
        match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => return Ok(fds[0].revents().unwrap_or(PollFlags::empty())),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::io(format!("poll on {what}"), e)),
        }
    }
}

/// Sets `O_NONBLOCK` on `fd`.
pub(crate) fn set_nonblocking(fd: &OwnedFd, what: &str) -> Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)
        .map_err(|e| Error::io(format!("fcntl(F_GETFL) on {what}"), e))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags))
        .map_err(|e| Error::io(format!("fcntl(F_SETFL) on {what}"), e))?;
    Ok(())
}

/// Reads a number from a /proc file (a system limit).
pub(crate) fn read_proc_limit(path: &str) -> Result<usize> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("read {path}"), e))?;
    text.trim().parse::<usize>().map_err(|_| {
        Error::io(
            format!("parse {path}"),
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not a number"),
        )
    })
}
