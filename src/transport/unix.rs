//! Unix domain sockets: stream (`unix://`), seqpacket (`unix-seqpacket://`) and datagram
//! (`unix-dgram://`).
//!
//! The address after `//` is a filesystem path (`unix:///run/orders.sock`) or, with a leading
//! `@`, a name in the Linux abstract namespace (`unix-seqpacket://@orders`), which needs no
//! file and vanishes with the last socket bound to it.
//!
//! * **stream**: messages are [framed](super::framing) (largest 1 MiB unless `max=`).
//! * **seqpacket**: one packet per message (largest 64 KiB unless `max=`), connection-oriented:
//!   the receiver sees [`Error::Disconnected`] when the sender closes.
//! * **datagram**: one datagram per message (largest 64 KiB unless `max=`). A datagram socket
//!   has no connection, so the sender sends an in-band close marker when it drops; the receiver
//!   drains and then returns [`Error::Disconnected`]. When the receiver's socket is gone, the
//!   sender's next send fails with `ECONNREFUSED`, reported as [`Error::Disconnected`]. Any
//!   process that may write to the socket path can send to the receiver: treat what arrives as
//!   untrusted (lengths are checked; content is yours to validate).
//!
//! Packets (seqpacket and datagram) carry one leading tag byte (message or close), so that an
//! empty message is not mistaken for the end of the connection. The kernel bounds a packet by
//! the socket send buffer (`/proc/sys/net/core/wmem_max`), so `max=` is at most
//! [`PACKET_MAX_LIMIT`].
//!
//! The listening side binds the address (and fails if a path already exists; a socket file
//! gets mode 0600, so only the same user may connect), accepts its one
//! sender lazily on the first receive, and removes a socket file it created when it drops.
//!
//! ```
//! use shmring::channel::{Receiver, Sender};
//! for scheme in ["unix", "unix-seqpacket", "unix-dgram"] {
//!     let url = format!("{scheme}://@doc-unix-{}", std::process::id());
//!     let mut rx = shmring::listen(&url)?;
//!     let mut tx = shmring::connect(&url)?;
//!     tx.send(b"hello")?;
//!     drop(tx);
//!     let mut buf = Vec::new();
//!     rx.recv_into(&mut buf)?;
//!     assert_eq!(buf, b"hello");
//!     assert!(matches!(rx.recv_into(&mut buf), Err(shmring::Error::Disconnected)));
//! }
//! # Ok::<(), shmring::Error>(())
//! ```

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{self, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, UnixAddr};

use super::framing::{FramedReceiver, FramedSender, StreamKind};
use super::{batch_prefix, in_background, out_of_time, partial, wait_fd, Until, DROP_WAIT};
use crate::channel::{Batch, Receiver, Sender};
use crate::error::{Error, Result};
use crate::trust::{peer_credentials, FileKind, PeerCredentials, Trust};

/// The largest `max=` of a packet transport: what the default socket buffers carry.
pub const PACKET_MAX_LIMIT: usize = 200 << 10;

const TAG_DATA: u8 = 0;
const TAG_CLOSE: u8 = 1;

/// How long a sender retries while the listener's backlog is full.
const CONNECT_RETRY: Duration = Duration::from_secs(1);

/// Which kind of Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixKind {
    /// `SOCK_STREAM` with length-prefixed frames (`unix://`).
    Stream,
    /// `SOCK_SEQPACKET`, one packet per message (`unix-seqpacket://`).
    Seqpacket,
    /// `SOCK_DGRAM`, one datagram per message (`unix-dgram://`).
    Datagram,
}

impl UnixKind {
    /// The URL scheme of this kind.
    pub fn scheme(self) -> &'static str {
        match self {
            UnixKind::Stream => "unix",
            UnixKind::Seqpacket => "unix-seqpacket",
            UnixKind::Datagram => "unix-dgram",
        }
    }

    fn sock_type(self) -> SockType {
        match self {
            UnixKind::Stream => SockType::Stream,
            UnixKind::Seqpacket => SockType::SeqPacket,
            UnixKind::Datagram => SockType::Datagram,
        }
    }
}

/// Where a Unix socket lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnixAddress {
    /// A path in the file system.
    Path(PathBuf),
    /// A name in the Linux abstract namespace (written `@name`).
    Abstract(String),
}

impl UnixAddress {
    /// Parses `@name` (abstract) or a path.
    pub fn parse(s: &str) -> UnixAddress {
        match s.strip_prefix('@') {
            Some(name) => UnixAddress::Abstract(name.to_owned()),
            None => UnixAddress::Path(PathBuf::from(s)),
        }
    }

    fn sockaddr(&self) -> Result<UnixAddr> {
        match self {
            UnixAddress::Path(p) => UnixAddr::new(p.as_path()),
            UnixAddress::Abstract(n) => UnixAddr::new_abstract(n.as_bytes()),
        }
        .map_err(|e| Error::io(format!("socket address {self}"), e))
    }
}

impl std::fmt::Display for UnixAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnixAddress::Path(p) => write!(f, "{}", p.display()),
            UnixAddress::Abstract(n) => write!(f, "@{n}"),
        }
    }
}

fn new_socket(kind: UnixKind, what: &str) -> Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        kind.sock_type(),
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| Error::io(format!("socket for {what}"), e))
}

/// A listening socket whose one peer is accepted on the first receive.
#[derive(Debug)]
pub(crate) struct Accepting<C> {
    listener: Option<OwnedFd>,
    conn: Option<C>,
    wrap: fn(OwnedFd, usize, &str) -> Result<C>,
    pub(crate) max: usize,
    what: String,
    /// If set, each connection's `SO_PEERCRED` must pass it (Unix sockets; TCP has none).
    trust: Option<Trust>,
    /// The accepted peer's credentials (Unix sockets).
    peer: Option<PeerCredentials>,
}

impl<C: Receiver> Accepting<C> {
    /// `listener` must be a listening, non-blocking socket.
    pub(crate) fn new(
        listener: OwnedFd,
        wrap: fn(OwnedFd, usize, &str) -> Result<C>,
        max: usize,
        what: &str,
    ) -> Self {
        Accepting {
            listener: Some(listener),
            conn: None,
            wrap,
            max,
            what: what.to_owned(),
            trust: None,
            peer: None,
        }
    }

    /// The descriptor to poll: the connection once accepted, the listener before (one of the
    /// two is always held: the listener goes only when a connection replaces it).
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_>
    where
        C: AsFd,
    {
        match (&self.conn, &self.listener) {
            (Some(c), _) => c.as_fd(),
            (None, Some(l)) => l.as_fd(),
            (None, None) => unreachable!("Accepting holds a listener until it has a connection"),
        }
    }

    /// Checks the credentials of each connection against `trust` before it is used; a refused
    /// one is closed, the listener stays open for the rightful sender.
    pub(crate) fn with_trust(mut self, trust: Trust) -> Self {
        self.trust = Some(trust);
        self
    }

    fn conn(&mut self, until: Until) -> Result<&mut C> {
        if self.conn.is_none() {
            let Some(listener) = self.listener.as_ref() else {
                return Err(Error::Disconnected);
            };
            loop {
                match socket::accept4(
                    listener.as_raw_fd(),
                    SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                ) {
                    Ok(fd) => {
                        // SAFETY: accept4 just returned this descriptor; nothing else owns it.
                        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                        if let Some(trust) = &self.trust {
                            let cred = peer_credentials(fd.as_fd(), &self.what)?;
                            // A refused peer's connection is closed here (dropping `fd`); the
                            // caller learns of it, and the next call accepts again.
                            trust.check_peer(&self.what, &cred)?;
                            self.peer = Some(cred);
                        }
                        self.conn = Some((self.wrap)(fd, self.max, &self.what)?);
                        // One sender per channel: later connection attempts are refused.
                        self.listener = None;
                        break;
                    }
                    Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
                    Err(Errno::EAGAIN) => {
                        if until.expired() {
                            return Err(out_of_time(until, Error::Empty));
                        }
                        wait_fd(listener.as_fd(), PollFlags::POLLIN, until, None, &self.what)?;
                    }
                    Err(e) => return Err(Error::io(format!("accept on {}", self.what), e)),
                }
            }
        }
        Ok(self.conn.as_mut().expect("connection accepted above"))
    }

    pub(crate) fn recv_until(&mut self, buf: &mut Vec<u8>, until: Until) -> Result<usize> {
        let conn = self.conn(until)?;
        match until {
            Until::Now => conn.try_recv_into(buf),
            Until::Forever => conn.recv_into(buf),
            Until::Deadline(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                conn.recv_into_timeout(buf, left)
            }
        }
    }

    /// As [`recv_until`](Self::recv_until), for a batch (the connection's own batching).
    pub(crate) fn recv_batch_until(
        &mut self,
        batch: &mut Batch,
        max: usize,
        until: Until,
    ) -> Result<usize> {
        let conn = self.conn(until)?;
        match until {
            Until::Now => conn.try_recv_batch(batch, max),
            Until::Forever => conn.recv_batch(batch, max),
            Until::Deadline(_) => conn.recv_batch_timeout(batch, max, until.remaining()),
        }
    }
}

/// Sends packets (seqpacket or datagram), one per message, after a tag byte.
#[derive(Debug)]
pub struct PacketSender {
    fd: OwnedFd,
    max: usize,
    dgram: bool,
    /// Whether dropping sends the close marker (datagrams, until it is handed off).
    close_on_drop: bool,
    what: String,
}

impl PacketSender {
    fn send_tagged(&self, tag: u8, msg: &[u8], until: Until) -> Result<()> {
        let iov = [IoSlice::new(std::slice::from_ref(&tag)), IoSlice::new(msg)];
        loop {
            match socket::sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                &[],
                MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN | Errno::ENOBUFS) => {
                    if until.expired() {
                        return Err(out_of_time(until, Error::Full));
                    }
                    // Datagram flow control is on the peer's queue: poll in slices.
                    let cap = self.dgram.then_some(Duration::from_millis(10));
                    wait_fd(self.fd.as_fd(), PollFlags::POLLOUT, until, cap, &self.what)?;
                }
                Err(Errno::ECONNREFUSED | Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => {
                    return Err(Error::Disconnected)
                }
                Err(e) => return Err(Error::io(format!("send to {}", self.what), e)),
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
        self.send_tagged(TAG_DATA, msg, until)
    }

    /// `send_batch` with `sendmmsg(2)`: up to [`MMSG_MAX`] packets per system call. Progress is
    /// reported as `channel::Sender::send_batch` says: `Ok(k)` once any went.
    fn send_batch_until(&mut self, msgs: &[&[u8]], until: Until) -> Result<usize> {
        let fits = batch_prefix(msgs, self.max)?;
        if fits == 0 {
            return Ok(0);
        }
        let tag = TAG_DATA;
        let mut sent = 0;
        while sent < fits {
            let chunk = &msgs[sent..fits.min(sent + MMSG_MAX)];
            let mut iovs: Vec<[libc::iovec; 2]> = chunk
                .iter()
                .map(|m| {
                    [
                        libc::iovec {
                            iov_base: std::ptr::from_ref(&tag).cast_mut().cast(),
                            iov_len: 1,
                        },
                        libc::iovec {
                            iov_base: m.as_ptr().cast_mut().cast(),
                            iov_len: m.len(),
                        },
                    ]
                })
                .collect();
            let mut hdrs: Vec<libc::mmsghdr> = iovs
                .iter_mut()
                .map(|iov| {
                    // SAFETY: an all-zero `mmsghdr` is a valid value (null pointers, zero
                    // lengths); the fields that matter are set below.
                    let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    h.msg_hdr.msg_iov = iov.as_mut_ptr();
                    h.msg_hdr.msg_iovlen = 2;
                    h
                })
                .collect();
            // SAFETY: `hdrs` holds `hdrs.len()` initialised headers whose iovecs point into
            // `iovs`, `tag` and the caller's messages, all alive and unmoved for the call; the
            // kernel only reads the buffers and writes each header's `msg_len`.
            let rc = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    hdrs.len() as libc::c_uint,
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if rc > 0 {
                sent += rc as usize;
                continue;
            }
            match Errno::last() {
                Errno::EINTR => {}
                Errno::EAGAIN | Errno::ENOBUFS => {
                    if sent > 0 && until == Until::Now {
                        return Ok(sent);
                    }
                    if until.expired() {
                        return partial(sent, out_of_time(until, Error::Full));
                    }
                    let cap = self.dgram.then_some(Duration::from_millis(10));
                    if let Err(e) =
                        wait_fd(self.fd.as_fd(), PollFlags::POLLOUT, until, cap, &self.what)
                    {
                        return partial(sent, e);
                    }
                }
                Errno::ECONNREFUSED | Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN => {
                    return partial(sent, Error::Disconnected)
                }
                e => return partial(sent, Error::io(format!("sendmmsg to {}", self.what), e)),
            }
        }
        Ok(sent)
    }
}

/// Packets per `sendmmsg` / `recvmmsg` call (the kernel caps a call at `UIO_MAXIOV`, 1024).
const MMSG_MAX: usize = 256;
/// Bytes of receive buffers one `recvmmsg` may fill (fewer packets when they are large).
const MMSG_BYTES: usize = 1 << 20;

impl Drop for PacketSender {
    fn drop(&mut self) {
        if !self.close_on_drop {
            return;
        }
        if let Err(Error::Timeout) = self.send_tagged(TAG_CLOSE, &[], Until::after(DROP_WAIT)) {
            if let Ok(fd) = self.fd.try_clone() {
                let rest = PacketSender {
                    fd,
                    max: self.max,
                    dgram: self.dgram,
                    close_on_drop: false,
                    what: self.what.clone(),
                };
                in_background(move || {
                    let _ = rest.send_tagged(TAG_CLOSE, &[], Until::Forever);
                });
            }
        }
    }
}

impl Sender for PacketSender {
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

/// Receives packets (seqpacket or datagram), one per message.
#[derive(Debug)]
pub struct PacketReceiver {
    fd: OwnedFd,
    /// Room for the tag, `max` bytes, and one more to see a packet that is too long.
    buf: Vec<u8>,
    max: usize,
    dgram: bool,
    closed: bool,
    what: String,
    /// Datagrams: each one's `SCM_CREDENTIALS` must pass this (`SO_PASSCRED` is set).
    trust: Option<Trust>,
    /// Datagrams: the sender of the last one accepted.
    peer: Option<PeerCredentials>,
    /// The refusal of the last datagram, handed to the caller.
    refused: Option<Error>,
    /// Room for the packets of one `recvmmsg` (reused).
    mbuf: Vec<u8>,
    /// What stopped a batch after it had messages, reported by the next call.
    deferred: Option<Error>,
}

impl PacketReceiver {
    fn new(fd: OwnedFd, max: usize, dgram: bool, what: &str) -> PacketReceiver {
        PacketReceiver {
            fd,
            buf: vec![0; max + 2],
            max,
            dgram,
            closed: false,
            what: what.to_owned(),
            trust: None,
            peer: None,
            refused: None,
            mbuf: Vec::new(),
            deferred: None,
        }
    }

    /// Receives one packet into `self.buf`. Datagrams with a trust set come with the sender's
    /// kernel-recorded credentials, which must pass it: a refused datagram is dropped and
    /// reported as [`Error::Untrusted`].
    fn recv_packet(&mut self) -> nix::Result<usize> {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC;
        let Some(trust) = &self.trust else {
            return socket::recv(self.fd.as_raw_fd(), &mut self.buf, flags);
        };
        let mut cmsg = nix::cmsg_space!(socket::UnixCredentials);
        let mut iov = [std::io::IoSliceMut::new(&mut self.buf)];
        let msg = socket::recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut cmsg), flags)?;
        let n = msg.bytes;
        let mut cred = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let socket::ControlMessageOwned::ScmCredentials(uc) = c {
                    cred = Some(PeerCredentials {
                        pid: uc.pid(),
                        uid: uc.uid(),
                        gid: uc.gid(),
                    });
                }
            }
        }
        // With SO_PASSCRED the kernel attaches credentials to every datagram; one without is
        // refused like a stranger's.
        let cred = cred.unwrap_or(PeerCredentials {
            pid: 0,
            uid: u32::MAX,
            gid: u32::MAX,
        });
        if let Err(e) = trust.check_peer(&self.what, &cred) {
            self.refused = Some(e);
            return Err(Errno::EPERM);
        }
        self.peer = Some(cred);
        Ok(n)
    }

    /// `recv_batch`: the first packet as `recv` takes it (waiting), then what else is queued
    /// with one `recvmmsg(2)` (without waiting). Datagrams checked against a trust set take
    /// the one-by-one path, which reads each one's credentials.
    fn recv_batch_until(&mut self, batch: &mut Batch, max: usize, until: Until) -> Result<usize> {
        batch.clear();
        if max == 0 {
            return Ok(0);
        }
        batch.push_received(|b| self.recv_until(b, until))?;
        if self.trust.is_some() {
            while batch.len() < max
                && batch
                    .push_received(|b| self.recv_until(b, Until::Now))
                    .is_ok()
            {}
            return Ok(batch.len());
        }
        let room = self.max + 2; // tag, payload, one byte to see an over-long packet
        let want = (max - 1).min(MMSG_MAX).min((MMSG_BYTES / room).max(1));
        if want == 0 || self.closed {
            return Ok(batch.len());
        }
        self.mbuf.resize(want * room, 0);
        let base = self.mbuf.as_mut_ptr();
        let mut iovs: Vec<libc::iovec> = (0..want)
            .map(|i| libc::iovec {
                // SAFETY: `i * room` is inside `mbuf`, which holds
                // `want * room` bytes.
                iov_base: unsafe { base.add(i * room) }.cast(),
                iov_len: room,
            })
            .collect();
        let mut hdrs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: an all-zero `mmsghdr` is a valid value; the iovec is set below.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = std::ptr::from_mut(iov);
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        let got = loop {
            // SAFETY: `hdrs` holds `want` headers, each with one iovec of `room` writable bytes
            // inside `mbuf`, alive and unmoved for the call; a null timeout means none.
            let rc = unsafe {
                libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    want as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if rc >= 0 {
                break rc as usize;
            }
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN => return Ok(batch.len()),
                Errno::ECONNRESET => {
                    self.closed = true;
                    return Ok(batch.len());
                }
                e => {
                    self.deferred = Some(Error::io(format!("recvmmsg from {}", self.what), e));
                    return Ok(batch.len());
                }
            }
        };
        for (i, h) in hdrs.iter().take(got).enumerate() {
            let n = h.msg_len as usize;
            let packet = &self.mbuf[i * room..i * room + n.min(room)];
            if n == 0 {
                if self.dgram {
                    self.deferred = Some(Error::Corrupted("a datagram without its tag byte"));
                } else {
                    self.closed = true;
                }
                break;
            }
            if n > self.max + 1 {
                self.deferred = Some(Error::Corrupted(
                    "a packet longer than the transport's maximum message size",
                ));
                break;
            }
            match packet[0] {
                TAG_DATA => batch.push(&packet[1..]),
                TAG_CLOSE if self.dgram => {
                    self.closed = true;
                    break;
                }
                _ => {
                    self.deferred = Some(Error::Corrupted("a packet with an unknown tag byte"));
                    break;
                }
            }
        }
        Ok(batch.len())
    }

    fn recv_until(&mut self, out: &mut Vec<u8>, until: Until) -> Result<usize> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        loop {
            if self.closed {
                return Err(Error::Disconnected);
            }
            match self.recv_packet() {
                Ok(0) if self.dgram => {
                    return Err(Error::Corrupted("a datagram without its tag byte"));
                }
                Ok(0) => self.closed = true,
                Ok(n) if n > self.max + 1 => {
                    return Err(Error::Corrupted(
                        "a packet longer than the transport's maximum message size",
                    ));
                }
                Ok(n) => match self.buf[0] {
                    TAG_DATA => {
                        out.clear();
                        out.extend_from_slice(&self.buf[1..n]);
                        return Ok(n - 1);
                    }
                    TAG_CLOSE if self.dgram => self.closed = true,
                    _ => return Err(Error::Corrupted("a packet with an unknown tag byte")),
                },
                Err(Errno::EINTR) => {}
                Err(Errno::EPERM) if self.refused.is_some() => {
                    return Err(self.refused.take().expect("checked above"));
                }
                Err(Errno::ECONNRESET) => self.closed = true,
                Err(Errno::EAGAIN) => {
                    if until.expired() {
                        return Err(out_of_time(until, Error::Empty));
                    }
                    wait_fd(self.fd.as_fd(), PollFlags::POLLIN, until, None, &self.what)?;
                }
                Err(e) => return Err(Error::io(format!("recv from {}", self.what), e)),
            }
        }
    }
}

impl Receiver for PacketReceiver {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_until(buf, Until::Forever)
    }
    fn recv_batch(&mut self, batch: &mut Batch, max: usize) -> Result<usize> {
        self.recv_batch_until(batch, max, Until::Forever)
    }
    fn try_recv_batch(&mut self, batch: &mut Batch, max: usize) -> Result<usize> {
        self.recv_batch_until(batch, max, Until::Now)
    }
    fn recv_batch_timeout(
        &mut self,
        batch: &mut Batch,
        max: usize,
        timeout: Duration,
    ) -> Result<usize> {
        self.recv_batch_until(batch, max, Until::after(timeout))
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

#[derive(Debug)]
enum Inner {
    Stream(Accepting<FramedReceiver>),
    Seqpacket(Accepting<PacketReceiver>),
    Datagram(PacketReceiver),
}

/// The listening (receiving) side of a Unix socket. Removes its socket file when dropped.
#[derive(Debug)]
pub struct UnixReceiver {
    inner: Inner,
    kind: UnixKind,
    addr: UnixAddress,
    _guard: PathGuard,
}

/// The connecting (sending) side of a Unix socket.
#[derive(Debug)]
pub struct UnixSender {
    conn: Conn,
    peer: Option<PeerCredentials>,
}

#[derive(Debug)]
enum Conn {
    /// A stream socket with framed messages.
    Stream(FramedSender),
    /// A seqpacket or datagram socket.
    Packet(PacketSender),
}

fn check_packet_max(kind: UnixKind, max: usize) -> Result<()> {
    if kind != UnixKind::Stream && max > PACKET_MAX_LIMIT {
        return Err(Error::InvalidName {
            name: format!("{}:max={max}", kind.scheme()),
            reason: "a packet transport carries at most 200 KiB per message",
        });
    }
    Ok(())
}

impl UnixReceiver {
    /// Binds `addr` and listens for one sender (stream, seqpacket) or datagrams. Only peers
    /// running as this process's effective uid are accepted; [`bind_with`](Self::bind_with)
    /// trusts more.
    pub fn bind(kind: UnixKind, addr: UnixAddress, max: usize) -> Result<Self> {
        Self::bind_with(kind, addr, max, &Trust::default())
    }

    /// [`bind`](Self::bind), trusting also the uids and groups `trust` allows.
    ///
    /// Stream and seqpacket: the kernel-recorded credentials of each connection
    /// (`SO_PEERCRED`) are checked when it is accepted; a refused connection is closed and the
    /// receive call that accepted it returns [`Error::Untrusted`] (the next call listens on).
    /// Datagram: `SO_PASSCRED` is set and each datagram's `SCM_CREDENTIALS` checked; a refused
    /// datagram is dropped and reported the same way. This matters most for abstract names
    /// (`@name`), which have no permission bits: any process in the network namespace can
    /// connect to them.
    pub fn bind_with(kind: UnixKind, addr: UnixAddress, max: usize, trust: &Trust) -> Result<Self> {
        check_packet_max(kind, max)?;
        let what = format!("{}://{addr}", kind.scheme());
        let fd = new_socket(kind, &what)?;
        socket::bind(fd.as_raw_fd(), &addr.sockaddr()?)
            .map_err(|e| Error::io(format!("bind {what}"), e))?;
        // From here on, a path we bound is ours to remove, even if `listen` fails.
        let guard = PathGuard(match &addr {
            UnixAddress::Path(p) => Some(p.clone()),
            UnixAddress::Abstract(_) => None,
        });
        if let UnixAddress::Path(p) = &addr {
            // Like the segments and FIFOs: only this user may connect.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(format!("chmod 0600 {}", p.display()), e))?;
        }
        if kind != UnixKind::Datagram {
            socket::listen(&fd, Backlog::new(1).unwrap_or(Backlog::MAXCONN))
                .map_err(|e| Error::io(format!("listen on {what}"), e))?;
        }
        let inner = match kind {
            UnixKind::Stream => Inner::Stream(
                Accepting::new(
                    fd,
                    |fd, max, what| FramedReceiver::new(fd, StreamKind::Socket, max, what),
                    max,
                    &what,
                )
                .with_trust(trust.clone()),
            ),
            UnixKind::Seqpacket => Inner::Seqpacket(
                Accepting::new(
                    fd,
                    |fd, max, what| Ok(PacketReceiver::new(fd, max, false, what)),
                    max,
                    &what,
                )
                .with_trust(trust.clone()),
            ),
            UnixKind::Datagram => {
                socket::setsockopt(&fd, socket::sockopt::PassCred, &true)
                    .map_err(|e| Error::io(format!("setsockopt(SO_PASSCRED) on {what}"), e))?;
                let mut p = PacketReceiver::new(fd, max, true, &what);
                p.trust = Some(trust.clone());
                Inner::Datagram(p)
            }
        };
        Ok(UnixReceiver {
            inner,
            kind,
            addr,
            _guard: guard,
        })
    }

    /// The kernel-recorded credentials of the sender: of the accepted connection (stream,
    /// seqpacket; `None` before the first receive has accepted it), or of the sender of the
    /// last datagram received (datagram).
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        match &self.inner {
            Inner::Stream(a) => a.peer,
            Inner::Seqpacket(a) => a.peer,
            Inner::Datagram(p) => p.peer,
        }
    }

    fn recv_until(&mut self, buf: &mut Vec<u8>, until: Until) -> Result<usize> {
        match &mut self.inner {
            Inner::Stream(a) => a.recv_until(buf, until),
            Inner::Seqpacket(a) => a.recv_until(buf, until),
            Inner::Datagram(p) => p.recv_until(buf, until),
        }
    }

    fn recv_batch_until(&mut self, batch: &mut Batch, max: usize, until: Until) -> Result<usize> {
        match &mut self.inner {
            Inner::Stream(a) => a.recv_batch_until(batch, max, until),
            Inner::Seqpacket(a) => a.recv_batch_until(batch, max, until),
            Inner::Datagram(p) => p.recv_batch_until(batch, max, until),
        }
    }
}

/// Removes a socket file when dropped.
#[derive(Debug)]
struct PathGuard(Option<PathBuf>);

impl Drop for PathGuard {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl UnixSender {
    /// Connects to the receiver listening at `addr`. Only a receiver running as this process's
    /// effective uid is accepted; [`connect_with`](Self::connect_with) trusts more.
    pub fn connect(kind: UnixKind, addr: UnixAddress, max: usize) -> Result<Self> {
        Self::connect_with(kind, addr, max, &Trust::default())
    }

    /// [`connect`](Self::connect), trusting also the uids and groups `trust` allows.
    ///
    /// Stream and seqpacket: the listener's kernel-recorded credentials (`SO_PEERCRED`, taken
    /// when it called `listen`) are checked before anything is sent. Datagram sockets carry no
    /// credentials of the receiver: for a path the socket file's owner and mode are checked
    /// instead; for an abstract name (`@name`) the sender cannot tell who bound it (the
    /// receiver still checks every datagram's sender).
    pub fn connect_with(
        kind: UnixKind,
        addr: UnixAddress,
        max: usize,
        trust: &Trust,
    ) -> Result<Self> {
        check_packet_max(kind, max)?;
        let what = format!("{}://{addr}", kind.scheme());
        let fd = new_socket(kind, &what)?;
        let sockaddr = addr.sockaddr()?;
        let start = std::time::Instant::now();
        loop {
            match socket::connect(fd.as_raw_fd(), &sockaddr) {
                Ok(()) => break,
                Err(Errno::EINTR) => {}
                // The listener's backlog is full (another sender is connecting): retry a while.
                Err(Errno::EAGAIN) if start.elapsed() < CONNECT_RETRY => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(Error::io(format!("connect to {what}"), e)),
            }
        }
        let peer = match (kind, &addr) {
            (UnixKind::Datagram, UnixAddress::Path(p)) => {
                use std::os::unix::fs::MetadataExt;
                let md = std::fs::symlink_metadata(p)
                    .map_err(|e| Error::io(format!("stat {}", p.display()), e))?;
                // SAFETY: `stat` is a plain C struct for which all-zero bytes are a valid value.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                st.st_uid = md.uid();
                st.st_gid = md.gid();
                st.st_mode = md.mode();
                trust.check_file(&what, FileKind::Socket, &st)?;
                None
            }
            (UnixKind::Datagram, UnixAddress::Abstract(_)) => None,
            _ => {
                let cred = peer_credentials(fd.as_fd(), &what)?;
                trust.check_peer(&what, &cred)?;
                Some(cred)
            }
        };
        let conn = match kind {
            UnixKind::Stream => {
                Conn::Stream(FramedSender::new(fd, StreamKind::Socket, max, &what)?)
            }
            _ => Conn::Packet(PacketSender {
                fd,
                max,
                dgram: kind == UnixKind::Datagram,
                close_on_drop: kind == UnixKind::Datagram,
                what,
            }),
        };
        Ok(UnixSender { conn, peer })
    }

    /// The receiver's kernel-recorded credentials (stream, seqpacket: `SO_PEERCRED` of the
    /// listener). `None` for datagram sockets, which carry none.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.peer
    }

    fn inner(&mut self) -> &mut dyn Sender {
        match &mut self.conn {
            Conn::Stream(s) => s,
            Conn::Packet(p) => p,
        }
    }
}

impl Sender for UnixSender {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        self.inner().send_batch(msgs)
    }
    fn try_send_batch(&mut self, msgs: &[&[u8]]) -> Result<usize> {
        self.inner().try_send_batch(msgs)
    }
    fn send_batch_timeout(&mut self, msgs: &[&[u8]], timeout: Duration) -> Result<usize> {
        self.inner().send_batch_timeout(msgs, timeout)
    }
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.inner().send(msg)
    }
    fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        self.inner().try_send(msg)
    }
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.inner().send_timeout(msg, timeout)
    }
    fn max_message_size(&self) -> usize {
        match &self.conn {
            Conn::Stream(s) => s.max_message_size(),
            Conn::Packet(p) => p.max_message_size(),
        }
    }
}

impl Receiver for UnixReceiver {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_until(buf, Until::Forever)
    }
    fn recv_batch(&mut self, batch: &mut Batch, max: usize) -> Result<usize> {
        self.recv_batch_until(batch, max, Until::Forever)
    }
    fn try_recv_batch(&mut self, batch: &mut Batch, max: usize) -> Result<usize> {
        self.recv_batch_until(batch, max, Until::Now)
    }
    fn recv_batch_timeout(
        &mut self,
        batch: &mut Batch,
        max: usize,
        timeout: Duration,
    ) -> Result<usize> {
        self.recv_batch_until(batch, max, Until::after(timeout))
    }
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_until(buf, Until::Now)
    }
    fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.recv_until(buf, Until::after(timeout))
    }
    fn max_message_size(&self) -> usize {
        match &self.inner {
            Inner::Stream(a) => a.max,
            Inner::Seqpacket(a) => a.max,
            Inner::Datagram(p) => p.max,
        }
    }
    fn local_url(&self) -> Option<String> {
        Some(format!("{}://{}", self.kind.scheme(), self.addr))
    }
}

pollable!(PacketSender, Writable, |s| s.fd.as_fd());
pollable!(PacketReceiver, Readable, |s| s.fd.as_fd());
pollable!(UnixSender, Writable, |s| match &s.conn {
    Conn::Stream(f) => f.as_fd(),
    Conn::Packet(p) => p.as_fd(),
});
// The listener until the sender connects, then the connection (it changes once, on accept).
pollable!(UnixReceiver, Readable, |s| match &s.inner {
    Inner::Stream(a) => a.fd(),
    Inner::Seqpacket(a) => a.fd(),
    Inner::Datagram(p) => p.as_fd(),
});

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_sender(addr: &UnixAddress) -> OwnedFd {
        let fd = new_socket(UnixKind::Datagram, "test").unwrap();
        socket::connect(fd.as_raw_fd(), &addr.sockaddr().unwrap()).unwrap();
        fd
    }

    #[test]
    fn hostile_datagrams_are_corrupted_not_trusted() {
        let addr = UnixAddress::Abstract(format!("shmring-unit-{}", std::process::id()));
        let mut rx = UnixReceiver::bind(UnixKind::Datagram, addr.clone(), 16).unwrap();
        let fd = raw_sender(&addr);
        let send = |b: &[u8]| socket::send(fd.as_raw_fd(), b, MsgFlags::empty()).unwrap();
        let mut buf = Vec::new();
        send(&[TAG_DATA; 100]); // longer than max + tag
        assert!(matches!(
            rx.try_recv_into(&mut buf),
            Err(Error::Corrupted(_))
        ));
        send(&[7, 1, 2]); // unknown tag
        assert!(matches!(
            rx.try_recv_into(&mut buf),
            Err(Error::Corrupted(_))
        ));
        send(&[]); // no tag at all
        assert!(matches!(
            rx.try_recv_into(&mut buf),
            Err(Error::Corrupted(_))
        ));
        send(&[TAG_DATA, b'o', b'k']); // and the channel goes on
        assert_eq!(rx.try_recv_into(&mut buf).unwrap(), 2);
        assert_eq!(buf, b"ok");
    }

    #[test]
    fn socket_file_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("shmring-unit-{}.sock", std::process::id()));
        let rx = UnixReceiver::bind(UnixKind::Stream, UnixAddress::Path(path.clone()), 16).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(UnixReceiver::bind(UnixKind::Stream, UnixAddress::Path(path.clone()), 16).is_err());
        assert!(
            path.exists(),
            "a failed bind must not remove the live listener's socket"
        );
        drop(rx);
        assert!(!path.exists());
    }
}
