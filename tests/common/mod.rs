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
    assert!(
        n < 16,
        "more System V queues than the key scheme allows per process"
    );
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

/// Whether a socket bound to `name` (a path, or `@abstract`) is listed in /proc/net/unix.
pub fn unix_socket_listed(name: &str) -> bool {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(7) == Some(name))
}

/// Panics if what `url` named still exists: the segment, FIFO, socket file or abstract name,
/// POSIX queue or System V queue. Call it once both halves have dropped.
pub fn assert_gone(url: &str) {
    use shmring::channel::Endpoint;
    use shmring::transport::unix::UnixAddress;
    match Endpoint::parse(url).unwrap() {
        Endpoint::Shm { name, .. } => {
            let p = std::path::Path::new("/dev/shm").join(&name);
            assert!(
                p.symlink_metadata().is_err(),
                "{url}: {} left behind",
                p.display()
            );
        }
        Endpoint::Fifo { path, .. } => {
            assert!(path.symlink_metadata().is_err(), "{url}: FIFO left behind");
        }
        Endpoint::Unix { addr, .. } => match addr {
            UnixAddress::Path(p) => {
                assert!(
                    p.symlink_metadata().is_err(),
                    "{url}: socket file left behind"
                );
                assert!(
                    !unix_socket_listed(&p.display().to_string()),
                    "{url}: still bound"
                );
            }
            UnixAddress::Abstract(n) => {
                assert!(!unix_socket_listed(&format!("@{n}")), "{url}: still bound");
            }
        },
        Endpoint::PosixMq { name, .. } => {
            use nix::mqueue::{mq_close, mq_open, MQ_OFlag};
            match mq_open(
                format!("/{name}").as_str(),
                MQ_OFlag::O_RDONLY,
                nix::sys::stat::Mode::empty(),
                None,
            ) {
                Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => panic!("{url}: mq_open: {e}"),
                Ok(q) => {
                    let _ = mq_close(q);
                    panic!("{url}: POSIX queue left behind");
                }
            }
        }
        Endpoint::SysvMq { key } => {
            // SAFETY: msgget takes plain integers and touches no memory of ours.
            let id = unsafe { libc::msgget(key, 0) };
            let errno = std::io::Error::last_os_error().raw_os_error();
            assert!(
                id == -1 && errno == Some(libc::ENOENT),
                "{url}: System V queue left behind"
            );
        }
        _ => {}
    }
}
