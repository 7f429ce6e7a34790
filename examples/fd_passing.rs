//! An anonymous segment (a sealed memfd, no name in /dev/shm) handed to an unrelated process
//! over a Unix socket with SCM_RIGHTS.
//!
//! ```text
//! cargo run --example fd_passing
//! ```
//! The parent creates the channel, listens on a socket, and starts a second copy of this program
//! (a fresh exec: it inherits no descriptor). That process connects, receives the segment's
//! descriptor, opens it as the receiver and reads what the parent sends.

use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;

use shmring::segment::fd_passing::{recv_fd, send_fd};
use shmring::{spsc, Config, Error};

fn main() -> shmring::Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("receiver") {
        let path = args.next().expect("socket path");
        return receiver(&path);
    }
    let path = std::env::temp_dir().join(format!("shmring-fd-passing-{}.sock", std::process::id()));
    let listener =
        UnixListener::bind(&path).map_err(|e| Error::io(format!("bind {}", path.display()), e))?;
    let mut tx = spsc::Sender::create_anonymous(Config::default().capacity(1 << 16))?;

    let exe = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
    let mut child = Command::new(exe)
        .arg("receiver")
        .arg(&path)
        .spawn()
        .map_err(|e| Error::io("spawn the receiver", e))?;
    let (sock, _) = listener.accept().map_err(|e| Error::io("accept", e))?;
    send_fd(&sock, tx.segment_fd())?;
    drop(sock);
    let _ = std::fs::remove_file(&path);

    for i in 0..1000u32 {
        tx.send(format!("message {i}").as_bytes())?;
    }
    drop(tx); // closes the channel: the receiver drains, then sees Disconnected
    let status = child
        .wait()
        .map_err(|e| Error::io("wait for the receiver", e))?;
    println!("sender: done, receiver exited with {status}");
    Ok(())
}

fn receiver(path: &str) -> shmring::Result<()> {
    let sock = UnixStream::connect(path).map_err(|e| Error::io(format!("connect {path}"), e))?;
    let fd = recv_fd(&sock)?;
    let mut rx = spsc::Receiver::from_fd(fd, Config::default())?;
    let mut n = 0;
    let mut last = String::new();
    loop {
        match rx.recv() {
            Ok(msg) => {
                n += 1;
                last = String::from_utf8_lossy(&msg).into_owned();
            }
            Err(Error::Disconnected) => break,
            Err(e) => return Err(e),
        }
    }
    println!(
        "receiver (pid {}): {n} messages over an anonymous segment, last {last:?}",
        std::process::id()
    );
    Ok(())
}
