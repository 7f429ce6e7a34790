//! Handing a segment's descriptor to another process over a Unix socket (SCM_RIGHTS): the way
//! to share an anonymous (memfd) segment, which has no name in /dev/shm.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::error::{Error, Result};

/// Sends `fd` over the connected socket `sock`, with one byte of ordinary data.
///
/// ```no_run
/// use std::os::unix::net::UnixStream;
/// use shmring::{spsc, Config};
/// use shmring::segment::fd_passing::send_fd;
///
/// let tx = spsc::Sender::create_anonymous(Config::default())?;
/// let sock = UnixStream::connect("/run/app/handoff.sock").expect("connect");
/// send_fd(&sock, tx.segment_fd())?;
/// # Ok::<(), shmring::Error>(())
/// ```
pub fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"S")];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(|e| Error::io("sendmsg(SCM_RIGHTS)", e))?;
    Ok(())
}

/// Receives one descriptor sent with [`send_fd`] on `sock` (blocking). Any extra descriptors in
/// the same message are closed.
pub fn recv_fd(sock: &UnixStream) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::io("recvmsg(SCM_RIGHTS)", e))?;
    let mut received: Vec<OwnedFd> = Vec::new();
    for cmsg in msg
        .cmsgs()
        .map_err(|e| Error::io("recvmsg(SCM_RIGHTS)", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for raw in fds {
                // SAFETY: the kernel installed `raw` in our table for this message; nothing else
                // owns it, so taking ownership (and closing it on drop) is sound.
                received.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    if received.is_empty() {
        return Err(Error::Incompatible(
            "the message carried no file descriptor".into(),
        ));
    }
    Ok(received.swap_remove(0))
}
