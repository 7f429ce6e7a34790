//! What the conformance and hygiene suites share: the transports, unique endpoint names, and
//! how to make a connected pair of halves from each.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use shmring::channel::{Receiver, Sender};
use shmring::transport::pipe;

/// Every transport behind the Channel traits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    ShmSpsc,
    Pipe,
    Fifo,
    UnixPath,
    UnixAbstract,
    Seqpacket,
    Dgram,
    PosixMq,
    SysvMq,
    Tcp,
}

pub const ALL: [T; 10] = [
    T::ShmSpsc,
    T::Pipe,
    T::Fifo,
    T::UnixPath,
    T::UnixAbstract,
    T::Seqpacket,
    T::Dgram,
    T::PosixMq,
    T::SysvMq,
    T::Tcp,
];

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SYSV_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The high byte of every System V key the suites use; the next 20 bits are the pid's low
/// bits, the last 4 a counter.
pub const SYSV_KEY_TAG: u32 = 0x5e00_0000;

/// A name no other test (in this process or another) uses: `{prefix}-{pid}-{n}`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A System V key no other test uses.
pub fn sysv_key() -> u32 {
    let n = SYSV_COUNTER.fetch_add(1, Ordering::Relaxed);
    assert!(n < 16, "more System V queues than the key scheme allows per process");
    SYSV_KEY_TAG | (std::process::id() & 0xf_ffff) << 4 | n
}

/// A fresh endpoint URL for `t` (not for pipes, which have no name). `prefix` marks what the
/// hygiene check looks for.
pub fn url(t: T, prefix: &str) -> String {
    let tmp = std::env::temp_dir();
    match t {
        T::ShmSpsc => format!("shm://{}?ring=spsc&capacity=1MiB", unique(prefix)),
        T::Pipe => "pipe:".to_owned(),
        T::Fifo => format!("fifo://{}", tmp.join(unique(prefix)).display()),
        T::UnixPath => format!("unix://{}", tmp.join(unique(prefix)).display()),
        T::UnixAbstract => format!("unix://@{}", unique(prefix)),
        T::Seqpacket => format!("unix-seqpacket://@{}", unique(prefix)),
        T::Dgram => format!("unix-dgram://{}", tmp.join(unique(prefix)).display()),
        T::PosixMq => format!("mq://{}", unique(prefix)),
        T::SysvMq => format!("sysv://{:#x}", sysv_key()),
        T::Tcp => "tcp://127.0.0.1:0".to_owned(),
    }
}

/// A connected sender and receiver of transport `t`, and the URL the sender connected to.
pub fn pair(t: T, prefix: &str) -> (Box<dyn Sender>, Box<dyn Receiver>, String) {
    if t == T::Pipe {
        let (tx, rx) = pipe::channel().expect("pipe");
        return (Box::new(tx), Box::new(rx), "pipe:".to_owned());
    }
    let url = url(t, prefix);
    let rx = shmring::listen(&url).unwrap_or_else(|e| panic!("listen {url}: {e}"));
    let url = rx.local_url().unwrap_or(url);
    let tx = shmring::connect(&url).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    (tx, rx, url)
}
