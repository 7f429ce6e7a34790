//! TCP (`tcp://host:port`): the transport for peers on other machines.
//!
//! Messages are [framed](super::framing) (largest 1 MiB unless the URL says `max=`);
//! `TCP_NODELAY` is set on both ends, so a small message leaves at once. The listening side
//! binds `host:port` (port 0 picks a free one: ask [`local_url`](crate::channel::Receiver::local_url)
//! which) and accepts its one sender lazily, on the first receive.
//!
//! # No credentials
//! TCP carries no identity: any process that can reach the port, on this machine or (for an
//! address other than loopback) on the network, can connect as the sender, and a sender
//! cannot tell who listens. shmring checks nothing here (`allow_uid=` is refused for `tcp://`);
//! bind `127.0.0.1` unless other machines must connect, and then put authentication (TLS, a
//! token) and a firewall in front. Every example and default in this crate binds loopback.
//!
//! When the receiver is gone, the sender learns it from the peer's reset: a send or two may
//! still succeed (into the kernel's buffers, lost) before sends fail with
//! [`Error::Disconnected`].
//!
//! ```
//! use shmring::channel::{Receiver, Sender};
//! let mut rx = shmring::listen("tcp://127.0.0.1:0")?;
//! let url = rx.local_url().unwrap();           // tcp://127.0.0.1:<the port chosen>
//! let mut tx = shmring::connect(&url)?;
//! tx.send(b"over tcp")?;
//! let mut buf = Vec::new();
//! rx.recv_into(&mut buf)?;
//! assert_eq!(buf, b"over tcp");
//! # Ok::<(), shmring::Error>(())
//! ```

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::time::Duration;

use super::framing::{FramedReceiver, FramedSender, StreamKind};
use super::unix::Accepting;
use super::Until;
use crate::channel::{Receiver, Sender};
use crate::error::{Error, Result};

/// The listening (receiving) side of a TCP channel.
#[derive(Debug)]
pub struct TcpReceiver {
    inner: Accepting<FramedReceiver>,
    local: SocketAddr,
}

/// The connecting (sending) side of a TCP channel.
#[derive(Debug)]
pub struct TcpSender {
    inner: FramedSender,
}

impl TcpReceiver {
    /// Binds `addr` (`host:port`) and listens for one sender.
    pub fn bind(addr: &str, max: usize) -> Result<Self> {
        let what = format!("tcp://{addr}");
        let listener = TcpListener::bind(addr).map_err(|e| Error::io(format!("bind {what}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io(format!("set_nonblocking on {what}"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io(format!("local_addr of {what}"), e))?;
        let what = format!("tcp://{local}");
        Ok(TcpReceiver {
            inner: Accepting::new(OwnedFd::from(listener), accepted, max, &what),
            local,
        })
    }

    /// The address bound (with the port the system chose, if port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

fn accepted(fd: OwnedFd, max: usize, what: &str) -> Result<FramedReceiver> {
    let stream = TcpStream::from(fd);
    // Only the sender's segments matter for latency, but acks go out at once too.
    let _ = stream.set_nodelay(true);
    FramedReceiver::new(OwnedFd::from(stream), StreamKind::Socket, max, what)
}

impl TcpSender {
    /// Connects to the receiver listening at `addr` (`host:port`).
    pub fn connect(addr: &str, max: usize) -> Result<Self> {
        let what = format!("tcp://{addr}");
        let stream =
            TcpStream::connect(addr).map_err(|e| Error::io(format!("connect to {what}"), e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io(format!("TCP_NODELAY on {what}"), e))?;
        Ok(TcpSender {
            inner: FramedSender::new(OwnedFd::from(stream), StreamKind::Socket, max, &what)?,
        })
    }
}

impl Sender for TcpSender {
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

impl Receiver for TcpReceiver {
    fn readiness(&mut self) -> Option<&mut dyn crate::channel::Readiness> {
        Some(self)
    }
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.inner.recv_until(buf, Until::Forever)
    }
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.inner.recv_until(buf, Until::Now)
    }
    fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.inner.recv_until(buf, Until::after(timeout))
    }
    fn max_message_size(&self) -> usize {
        self.inner.max
    }
    fn local_url(&self) -> Option<String> {
        Some(format!("tcp://{}", self.local))
    }
}
// The listener until the sender connects, then the connection (it changes once, on accept).
pollable!(TcpSender, Writable, |s| std::os::fd::AsFd::as_fd(&s.inner));
pollable!(TcpReceiver, Readable, |s| s.inner.fd());
