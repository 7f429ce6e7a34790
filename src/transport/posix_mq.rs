//! POSIX message queues (`mq://name`), made with `mq_open(3)`.
//!
//! The listening side ([`MqReceiver::create`]) creates the queue (mode 0600; it fails if the
//! name exists) and unlinks it when it drops; the connecting side ([`MqSender::open`]) opens it
//! for writing, and refuses ([`Error::Untrusted`]) a queue owned by another user or writable by
//! group or others unless allowed ([`MqSender::open_with`], `allow_uid=` / `allow_gid=`). One queue message carries one message.
//!
//! # Limits
//! The kernel bounds a queue by `/proc/sys/fs/mqueue/msgsize_max` (bytes per message) and
//! `/proc/sys/fs/mqueue/msg_max` (messages in the queue). The receiver asks for both maxima
//! unless the URL says `msgsize=` or `maxmsg=`; asking for more than the system allows is a
//! clear error naming the limit, and a message longer than the queue's message size fails
//! with [`Error::TooLarge`].
//!
//! # Closing
//! Messages travel at priority 1. A dropping sender queues an empty message at priority 0,
//! which the kernel delivers only after every message of priority 1: the receiver drains and
//! then returns [`Error::Disconnected`]. A queue cannot tell its writer that the reader has
//! gone, so the sender checks that the queue's name still leads to its queue whenever it finds
//! the queue full and, otherwise, at most every 20 ms: within about 20 ms of the receiver's
//! drop, sends fail with [`Error::Disconnected`] (messages sent in between are lost).
//!
//! ```
//! use shmring::channel::{Receiver, Sender};
//! let url = format!("mq://doc-mq-{}", std::process::id());
//! let mut rx = shmring::listen(&url)?;
//! let mut tx = shmring::connect(&url)?;
//! tx.send(b"queued")?;
//! drop(tx);
//! let mut buf = Vec::new();
//! rx.recv_into(&mut buf)?;
//! assert_eq!(buf, b"queued");
//! assert!(matches!(rx.recv_into(&mut buf), Err(shmring::Error::Disconnected)));
//! # Ok::<(), shmring::Error>(())
//! ```

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mqueue::{self, MQ_OFlag, MqAttr, MqdT};
use nix::poll::PollFlags;
use nix::sys::stat::Mode;

use super::{in_background, out_of_time, read_proc_limit, wait_fd, Until, DROP_WAIT};
use crate::channel::{Receiver, Sender};
use crate::error::{Error, Result};
use crate::trust::{FileKind, Trust};

/// The system's largest message size for a queue.
pub const MSGSIZE_MAX_PATH: &str = "/proc/sys/fs/mqueue/msgsize_max";
/// The system's largest number of messages in a queue.
pub const MSG_MAX_PATH: &str = "/proc/sys/fs/mqueue/msg_max";

const PRIO_DATA: u32 = 1;
const PRIO_CLOSE: u32 = 0;
const CHECK_EVERY: Duration = Duration::from_millis(20);

/// The queue's options, checked against the system limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MqOptions {
    /// Bytes per message (default: `/proc/sys/fs/mqueue/msgsize_max`).
    pub msgsize: Option<usize>,
    /// Messages the queue holds (default: `/proc/sys/fs/mqueue/msg_max`).
    pub maxmsg: Option<usize>,
}

fn queue_name(name: &str) -> Result<String> {
    crate::segment::normalize_name(name)
}

fn limit_error(what: &str, asked: usize, path: &str, limit: usize) -> Error {
    Error::io(
        format!("POSIX queue: {what}={asked} is above the system limit {limit} in {path}"),
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "raise the limit (as root) or ask for less",
        ),
    )
}

fn ino(q: &MqdT, name: &str) -> Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(q.as_fd().as_raw_fd())
        .map_err(|e| Error::io(format!("fstat of POSIX queue {name}"), e))?;
    Ok((st.st_dev, st.st_ino))
}

/// The listening (receiving) side of a POSIX queue; unlinks the queue when dropped.
#[derive(Debug)]
pub struct MqReceiver {
    mq: Option<MqdT>,
    name: String,
    buf: Vec<u8>,
    closed: bool,
}

impl MqReceiver {
    /// Creates the queue `name` (with or without its leading `/`).
    pub fn create(name: &str, opts: MqOptions) -> Result<Self> {
        let name = queue_name(name)?;
        let size_max = read_proc_limit(MSGSIZE_MAX_PATH)?;
        let msg_max = read_proc_limit(MSG_MAX_PATH)?;
        let msgsize = opts.msgsize.unwrap_or(size_max);
        let maxmsg = opts.maxmsg.unwrap_or(msg_max);
        if msgsize > size_max {
            return Err(limit_error("msgsize", msgsize, MSGSIZE_MAX_PATH, size_max));
        }
        if maxmsg > msg_max {
            return Err(limit_error("maxmsg", maxmsg, MSG_MAX_PATH, msg_max));
        }
        let attr = MqAttr::new(0, maxmsg.max(1) as _, msgsize.max(1) as _, 0);
        let mq = mqueue::mq_open(
            name.as_str(),
            MQ_OFlag::O_CREAT
                | MQ_OFlag::O_EXCL
                | MQ_OFlag::O_RDONLY
                | MQ_OFlag::O_NONBLOCK
                | MQ_OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
            Some(&attr),
        )
        .map_err(|e| Error::io(format!("mq_open(O_CREAT) {name}"), e))?;
        let mut me = MqReceiver {
            mq: Some(mq),
            name,
            buf: Vec::new(),
            closed: false,
        };
        let attr = mqueue::mq_getattr(me.mq())
            .map_err(|e| Error::io(format!("mq_getattr {}", me.name), e))?;
        me.buf = vec![0; attr.msgsize() as usize];
        Ok(me)
    }

    fn mq(&self) -> &MqdT {
        self.mq.as_ref().expect("open until drop")
    }

    /// The queue's name, with its leading `/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn recv_until(&mut self, out: &mut Vec<u8>, until: Until) -> Result<usize> {
        loop {
            if self.closed {
                return Err(Error::Disconnected);
            }
            let mut prio = 0;
            let mq = self.mq.as_ref().expect("open until drop");
            match mqueue::mq_receive(mq, &mut self.buf, &mut prio) {
                Ok(n) if prio == PRIO_DATA => {
                    out.clear();
                    out.extend_from_slice(&self.buf[..n]);
                    return Ok(n);
                }
                Ok(_) if prio == PRIO_CLOSE => self.closed = true,
                Ok(_) => return Err(Error::Corrupted("a queue message of unknown priority")),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    if until.expired() {
                        return Err(out_of_time(until, Error::Empty));
                    }
                    wait_fd(mq.as_fd(), PollFlags::POLLIN, until, None, &self.name)?;
                }
                Err(e) => return Err(Error::io(format!("mq_receive {}", self.name), e)),
            }
        }
    }
}

impl Drop for MqReceiver {
    fn drop(&mut self) {
        let _ = mqueue::mq_unlink(self.name.as_str());
        if let Some(mq) = self.mq.take() {
            let _ = mqueue::mq_close(mq);
        }
    }
}

impl Receiver for MqReceiver {
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
        self.buf.len()
    }
    fn local_url(&self) -> Option<String> {
        Some(format!("mq:/{}", self.name))
    }
}

/// The connecting (sending) side of a POSIX queue.
#[derive(Debug)]
pub struct MqSender {
    mq: Option<MqdT>,
    name: String,
    max: usize,
    ino: (u64, u64),
    checked: Instant,
    gone: bool,
    /// Whether dropping queues the close marker (until it is handed off).
    close_on_drop: bool,
}

impl MqSender {
    /// Opens the existing queue `name` for writing. The queue must be owned by this process's
    /// effective uid and writable by nobody else ([`Error::Untrusted`] otherwise);
    /// [`open_with`](Self::open_with) trusts more.
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Trust::default())
    }

    /// [`open`](Self::open), trusting also what `trust` allows. The check runs on `fstat` of
    /// the queue descriptor itself (a queue is a file of the mqueue file system), before
    /// anything is sent.
    pub fn open_with(name: &str, trust: &Trust) -> Result<Self> {
        let name = queue_name(name)?;
        let mq = mqueue::mq_open(
            name.as_str(),
            MQ_OFlag::O_WRONLY | MQ_OFlag::O_NONBLOCK | MQ_OFlag::O_CLOEXEC,
            Mode::empty(),
            None,
        )
        .map_err(|e| Error::io(format!("mq_open {name}"), e))?;
        if let Err(e) = trust.check_fd(
            &format!("POSIX queue {name}"),
            FileKind::Regular,
            mq.as_fd(),
        ) {
            let _ = mqueue::mq_close(mq);
            return Err(e);
        }
        let attr =
            mqueue::mq_getattr(&mq).map_err(|e| Error::io(format!("mq_getattr {name}"), e))?;
        let ino = ino(&mq, &name)?;
        Ok(MqSender {
            mq: Some(mq),
            max: attr.msgsize() as usize,
            name,
            ino,
            checked: Instant::now(),
            gone: false,
            close_on_drop: true,
        })
    }

    /// True once the queue's name no longer leads to our queue (the receiver dropped).
    fn receiver_gone(&mut self) -> bool {
        if !self.gone {
            self.checked = Instant::now();
            self.gone = match mqueue::mq_open(
                self.name.as_str(),
                MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK | MQ_OFlag::O_CLOEXEC,
                Mode::empty(),
                None,
            ) {
                Err(Errno::ENOENT) => true,
                Err(_) => false,
                Ok(q) => {
                    let same = ino(&q, &self.name).map(|i| i == self.ino).unwrap_or(true);
                    let _ = mqueue::mq_close(q);
                    !same
                }
            };
        }
        self.gone
    }

    fn send_prio(&mut self, msg: &[u8], prio: u32, until: Until) -> Result<()> {
        if self.gone || (self.checked.elapsed() >= CHECK_EVERY && self.receiver_gone()) {
            return Err(Error::Disconnected);
        }
        loop {
            let mq = self.mq.as_ref().expect("open until drop");
            match mqueue::mq_send(mq, msg, prio) {
                Ok(()) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    if self.receiver_gone() {
                        return Err(Error::Disconnected);
                    }
                    if until.expired() {
                        return Err(out_of_time(until, Error::Full));
                    }
                    let mq = self.mq.as_ref().expect("open until drop");
                    wait_fd(
                        mq.as_fd(),
                        PollFlags::POLLOUT,
                        until,
                        Some(CHECK_EVERY),
                        &self.name,
                    )?;
                }
                Err(e) => return Err(Error::io(format!("mq_send {}", self.name), e)),
            }
        }
    }

    fn send_until(&mut self, msg: &[u8], until: Until) -> Result<()> {
        if msg.len() > self.max {
            return Err(Error::TooLarge {
                size: msg.len(),
                max: self.max,
            });
        }
        self.send_prio(msg, PRIO_DATA, until)
    }
}

impl Drop for MqSender {
    fn drop(&mut self) {
        if self.close_on_drop {
            if let Err(Error::Timeout) = self.send_prio(&[], PRIO_CLOSE, Until::after(DROP_WAIT)) {
                let mut rest = MqSender {
                    mq: self.mq.take(),
                    name: self.name.clone(),
                    max: self.max,
                    ino: self.ino,
                    checked: self.checked,
                    gone: self.gone,
                    close_on_drop: false,
                };
                in_background(move || {
                    let _ = rest.send_prio(&[], PRIO_CLOSE, Until::Forever);
                });
            }
        }
        if let Some(mq) = self.mq.take() {
            let _ = mqueue::mq_close(mq);
        }
    }
}

impl Sender for MqSender {
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
}

pollable!(MqSender, Writable, |s| s
    .mq
    .as_ref()
    .expect("open until drop")
    .as_fd());
pollable!(MqReceiver, Readable, |s| s.mq().as_fd());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_above_the_system_limit_names_the_limit() {
        let limit = read_proc_limit(MSGSIZE_MAX_PATH).unwrap();
        let name = format!("shmring-unit-mq-{}", std::process::id());
        let opts = MqOptions {
            msgsize: Some(limit + 1),
            maxmsg: None,
        };
        let err = MqReceiver::create(&name, opts).unwrap_err().to_string();
        assert!(err.contains(MSGSIZE_MAX_PATH), "{err}");
        let opts = MqOptions {
            msgsize: Some(128),
            maxmsg: Some(2),
        };
        let rx = MqReceiver::create(&name, opts).unwrap();
        let mut tx = MqSender::open(&name).unwrap();
        assert_eq!(tx.max_message_size(), 128);
        assert!(matches!(
            tx.send(&[0; 129]),
            Err(Error::TooLarge {
                size: 129,
                max: 128
            })
        ));
        tx.try_send(b"1").unwrap();
        tx.try_send(b"2").unwrap();
        assert!(matches!(tx.try_send(b"3"), Err(Error::Full)));
        drop(rx);
        assert!(matches!(tx.try_send(b"4"), Err(Error::Disconnected)));
    }
}
