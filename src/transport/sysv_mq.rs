//! System V message queues (`sysv://0x1234`), made with `msgget(2)`.
//!
//! The key is hexadecimal (`0x…`) or decimal, and not 0 (`IPC_PRIVATE`). The listening side
//! ([`SysvReceiver::create`]) creates the queue (mode 0600; it fails if the key is taken) and
//! removes it (`IPC_RMID`) when it drops; the connecting side ([`SysvSender::open`]) finds it by
//! key, and refuses ([`Error::Untrusted`]) a queue whose owner or creator is another user, or
//! that is writable by group or others, unless allowed ([`SysvSender::open_with`],
//! `allow_uid=` / `allow_gid=`). One queue message carries one message.
//!
//! # Limits
//! The largest message is the smaller of `/proc/sys/kernel/msgmax` (bytes per message) and
//! `/proc/sys/kernel/msgmnb` (bytes per queue); a longer one fails with [`Error::TooLarge`].
//!
//! # Closing
//! Messages travel as type 1; a dropping sender queues an empty message of type 2 and the
//! receiver asks for the lowest type first, so it drains and then returns
//! [`Error::Disconnected`]. When the receiver drops, the queue is removed and the sender's next
//! send fails with `EIDRM`, reported as [`Error::Disconnected`].
//!
//! System V queues have no descriptor to `poll`: the blocking forms sleep in the kernel, the
//! `_timeout` forms retry with a backoff of at most 1 ms.
//!
//! ```
//! use shmring::channel::{Receiver, Sender};
//! let url = format!("sysv://{:#x}", 0x5e00_0000u32 | (std::process::id() & 0xf_ffff) << 4 | 0xf);
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

use std::mem::size_of;
use std::time::Duration;

use nix::errno::Errno;

use super::{in_background, out_of_time, read_proc_limit, Until, DROP_WAIT};
use crate::channel::{Receiver, Sender};
use crate::error::{Error, Result};
use crate::trust::Trust;

/// The system's largest message.
pub const MSGMAX_PATH: &str = "/proc/sys/kernel/msgmax";
/// The system's default queue size in bytes.
pub const MSGMNB_PATH: &str = "/proc/sys/kernel/msgmnb";

const TYPE_DATA: libc::c_long = 1;
const TYPE_CLOSE: libc::c_long = 2;
const MTYPE: usize = size_of::<libc::c_long>();

/// The largest message a System V queue carries on this system.
pub fn max_message_size() -> Result<usize> {
    Ok(read_proc_limit(MSGMAX_PATH)?.min(read_proc_limit(MSGMNB_PATH)?))
}

/// A `struct msgbuf`: the type, then room for `max` bytes of text, `c_long`-aligned.
#[derive(Debug)]
struct MsgBuf {
    words: Vec<libc::c_long>,
}

impl MsgBuf {
    fn new(max: usize) -> MsgBuf {
        MsgBuf {
            words: vec![0; 1 + max.div_ceil(MTYPE)],
        }
    }
    fn text_mut(&mut self) -> &mut [u8] {
        let len = (self.words.len() - 1) * MTYPE;
        // SAFETY: the words after the first are `len` initialised bytes that we borrow
        // mutably through `self`; u8 has no alignment or validity requirement.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().add(1).cast(), len) }
    }
}

fn wait_slice(backoff: &mut Duration, until: Until) {
    let mut nap = *backoff;
    if let Until::Deadline(d) = until {
        nap = nap.min(d.saturating_duration_since(std::time::Instant::now()));
    }
    std::thread::sleep(nap);
    *backoff = (*backoff * 2).min(Duration::from_millis(1));
}

/// The listening (receiving) side of a System V queue; removes the queue when dropped.
#[derive(Debug)]
pub struct SysvReceiver {
    id: libc::c_int,
    key: libc::key_t,
    buf: MsgBuf,
    max: usize,
    closed: bool,
}

impl SysvReceiver {
    /// Creates the queue with `key`.
    pub fn create(key: libc::key_t) -> Result<Self> {
        let max = max_message_size()?;
        // SAFETY: msgget takes plain integers and touches no memory of ours.
        let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        if id < 0 {
            return Err(Error::last_os(format!("msgget(IPC_CREAT) sysv://{key:#x}")));
        }
        Ok(SysvReceiver {
            id,
            key,
            buf: MsgBuf::new(max),
            max,
            closed: false,
        })
    }

    fn recv_until(&mut self, out: &mut Vec<u8>, until: Until) -> Result<usize> {
        let mut backoff = Duration::from_micros(20);
        loop {
            if self.closed {
                return Err(Error::Disconnected);
            }
            let flags = if until == Until::Forever {
                0
            } else {
                libc::IPC_NOWAIT
            };
            // SAFETY: `buf` is a c_long followed by at least `max` bytes, which is what
            // msgrcv writes at most (the type, then up to `max` bytes of text).
            let n = unsafe {
                libc::msgrcv(
                    self.id,
                    self.buf.words.as_mut_ptr().cast(),
                    self.max,
                    -TYPE_CLOSE,
                    flags,
                )
            };
            if n >= 0 {
                let n = n as usize;
                match self.buf.words[0] {
                    TYPE_DATA if n <= self.max => {
                        out.clear();
                        out.extend_from_slice(&self.buf.text_mut()[..n]);
                        return Ok(n);
                    }
                    TYPE_CLOSE => self.closed = true,
                    _ => return Err(Error::Corrupted("a queue message of unknown type")),
                }
                continue;
            }
            match Errno::last() {
                Errno::EINTR => {}
                Errno::ENOMSG => {
                    if until.expired() {
                        return Err(out_of_time(until, Error::Empty));
                    }
                    wait_slice(&mut backoff, until);
                }
                Errno::EIDRM | Errno::EINVAL => self.closed = true,
                Errno::E2BIG => {
                    return Err(Error::Corrupted(
                        "a queue message longer than the largest message",
                    ))
                }
                e => return Err(Error::io(format!("msgrcv sysv://{:#x}", self.key), e)),
            }
        }
    }
}

impl Drop for SysvReceiver {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID reads no buffer; a null pointer is allowed.
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

impl Receiver for SysvReceiver {
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
    fn local_url(&self) -> Option<String> {
        Some(format!("sysv://{:#x}", self.key))
    }
}

/// The connecting (sending) side of a System V queue.
#[derive(Debug)]
pub struct SysvSender {
    id: libc::c_int,
    key: libc::key_t,
    buf: MsgBuf,
    max: usize,
    /// Whether dropping queues the close marker (until it is handed off).
    close_on_drop: bool,
}

impl SysvSender {
    /// Opens the existing queue with `key`. Its owner and creator must be this process's
    /// effective uid and it must be writable by nobody else ([`Error::Untrusted`] otherwise);
    /// [`open_with`](Self::open_with) trusts more.
    pub fn open(key: libc::key_t) -> Result<Self> {
        Self::open_with(key, &Trust::default())
    }

    /// [`open`](Self::open), trusting also what `trust` allows. The check reads the queue's
    /// owner, creator and mode with `IPC_STAT` on the id that is then used.
    pub fn open_with(key: libc::key_t, trust: &Trust) -> Result<Self> {
        let max = max_message_size()?;
        // SAFETY: msgget takes plain integers and touches no memory of ours.
        let id = unsafe { libc::msgget(key, 0) };
        if id < 0 {
            return Err(Error::last_os(format!("msgget sysv://{key:#x}")));
        }
        // SAFETY: `msqid_ds` is a plain C struct for which all-zero bytes are a valid value.
        let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: IPC_STAT writes one `msqid_ds` into `ds`, which lives on this stack.
        if unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) } != 0 {
            return Err(Error::last_os(format!("msgctl(IPC_STAT) sysv://{key:#x}")));
        }
        trust.check_ipc_perm(&format!("System V queue sysv://{key:#x}"), &ds.msg_perm)?;
        Ok(SysvSender {
            id,
            key,
            buf: MsgBuf::new(max),
            max,
            close_on_drop: true,
        })
    }

    fn send_typed(&mut self, mtype: libc::c_long, msg: &[u8], until: Until) -> Result<()> {
        self.buf.words[0] = mtype;
        self.buf.text_mut()[..msg.len()].copy_from_slice(msg);
        let mut backoff = Duration::from_micros(20);
        loop {
            let flags = if until == Until::Forever {
                0
            } else {
                libc::IPC_NOWAIT
            };
            // SAFETY: `buf` is a c_long type followed by at least `msg.len()` bytes of text.
            let r =
                unsafe { libc::msgsnd(self.id, self.buf.words.as_ptr().cast(), msg.len(), flags) };
            if r == 0 {
                return Ok(());
            }
            match Errno::last() {
                Errno::EINTR => {}
                Errno::EAGAIN => {
                    if until.expired() {
                        return Err(out_of_time(until, Error::Full));
                    }
                    wait_slice(&mut backoff, until);
                }
                Errno::EIDRM | Errno::EINVAL => return Err(Error::Disconnected),
                e => return Err(Error::io(format!("msgsnd sysv://{:#x}", self.key), e)),
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
        self.send_typed(TYPE_DATA, msg, until)
    }
}

impl Drop for SysvSender {
    fn drop(&mut self) {
        if !self.close_on_drop {
            return;
        }
        if let Err(Error::Timeout) = self.send_typed(TYPE_CLOSE, &[], Until::after(DROP_WAIT)) {
            let mut rest = SysvSender {
                id: self.id,
                key: self.key,
                buf: MsgBuf::new(0),
                max: self.max,
                close_on_drop: false,
            };
            in_background(move || {
                let _ = rest.send_typed(TYPE_CLOSE, &[], Until::Forever);
            });
        }
    }
}

impl Sender for SysvSender {
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
