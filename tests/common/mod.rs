//! Helpers shared by the integration tests: two real processes, deterministic messages, the
//! transports and their unique endpoint names, and the hygiene check.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "SHMRING_TEST_CHILD";

/// Heavy cross-process tests run one at a time: the machine may have two cores only.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A name no other test (or test run) uses.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shmring-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// In a child started by [`spawn_self`], the value of its `key` parameter.
pub fn child_param(key: &str) -> Option<String> {
    std::env::var(CHILD_ENV).ok()?;
    std::env::var(format!("SHMRING_TEST_{key}")).ok()
}

/// True in a child process started by [`spawn_self`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// A child process that runs the test `test` of this same test binary, with `params` in its
/// environment. The test body checks [`is_child`] and plays the other side. The child is killed
/// when the guard drops, so a failing parent never leaves it behind.
pub fn spawn_self(test: &str, params: &[(&str, String)]) -> ChildGuard {
    ChildGuard(Some(
        self_command(test, params)
            .spawn()
            .expect("spawn child test process"),
    ))
}

/// The command [`spawn_self`] runs, to adjust (a uid, say) before spawning.
pub fn self_command(test: &str, params: &[(&str, String)]) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in params {
        cmd.env(format!("SHMRING_TEST_{k}"), v);
    }
    cmd
}

/// Kills the child on drop unless it was waited for.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// Waits at most `limit` for the child; panics if it fails or hangs.
    pub fn join(mut self, limit: Duration) {
        let mut child = self.0.take().unwrap();
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "child process failed: {status}");
                return;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child process hung for more than {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILLs the child now.
    pub fn kill(mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// SplitMix64, for sizes both sides derive from the same seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A position-sensitive checksum, eight bytes at a time (fast enough for gigabytes).
fn checksum(body: &[u8]) -> u64 {
    let mut chunks = body.chunks_exact(8);
    let mut h = 0xCBF2_9CE4_8422_2325u64 ^ body.len() as u64;
    for (i, c) in (&mut chunks).enumerate() {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h.rotate_left(5) ^ w)
            .wrapping_mul(0x100_0000_01B3)
            .wrapping_add(i as u64);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
    }
    h
}

fn pattern(seq: u64, body: &mut [u8]) {
    for (j, b) in body.iter_mut().enumerate() {
        *b = (seq as usize)
            .wrapping_mul(31)
            .wrapping_add(j.wrapping_mul(7)) as u8;
    }
}

/// Message `seq` of length `len`: `[seq | checksum(body) | body]` when there is room for the
/// 16-byte header, else just the pattern (the receiver derives `len` from the shared seed).
pub fn fill_message(seq: u64, buf: &mut [u8]) {
    if buf.len() >= 16 {
        let (head, body) = buf.split_at_mut(16);
        pattern(seq, body);
        head[..8].copy_from_slice(&seq.to_le_bytes());
        head[8..].copy_from_slice(&checksum(body).to_le_bytes());
    } else {
        pattern(seq, buf);
    }
}

/// Checks that `msg` is exactly message `seq` of length `len`; the error says how it is not.
pub fn check_message(seq: u64, len: usize, msg: &[u8]) -> Result<(), String> {
    if msg.len() != len {
        return Err(format!("message {seq}: length {} != {len}", msg.len()));
    }
    if len >= 16 {
        let got_seq = u64::from_le_bytes(msg[..8].try_into().unwrap());
        if got_seq != seq {
            return Err(format!(
                "expected message {seq}, got {got_seq} (lost, duplicated or reordered)"
            ));
        }
        let sum = u64::from_le_bytes(msg[8..16].try_into().unwrap());
        if sum != checksum(&msg[16..]) {
            return Err(format!("message {seq}: checksum mismatch (torn)"));
        }
    }
    // Long bodies are covered by the checksum; short ones are compared byte for byte.
    if len < 16 {
        let mut want = [0u8; 16];
        fill_message(seq, &mut want[..len]);
        if want[..len] != *msg {
            return Err(format!("message {seq}: bytes differ (torn)"));
        }
    }
    Ok(())
}

// ---- transports (the conformance and hygiene suites) ----

use shmring::channel::{Receiver, Sender};
use shmring::transport::pipe;

/// Every transport behind the Channel traits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    ShmSpsc,
    ShmMpmc,
    ShmBroadcast,
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

pub const ALL: [T; 12] = [
    T::ShmSpsc,
    T::ShmMpmc,
    T::ShmBroadcast,
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
        T::ShmMpmc => format!("shm://{}?ring=mpmc&capacity=256&slot=1KiB", unique(prefix)),
        T::ShmBroadcast => format!(
            "shm://{}?ring=broadcast&capacity=256&slot=1KiB",
            unique(prefix)
        ),
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
    use shmring::endpoint::Endpoint;
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
        Endpoint::SysvMq { key, .. } => {
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
