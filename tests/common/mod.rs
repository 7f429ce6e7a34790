//! Helpers shared by the integration tests: two real processes, deterministic messages.
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
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in params {
        cmd.env(format!("SHMRING_TEST_{k}"), v);
    }
    ChildGuard(Some(cmd.spawn().expect("spawn child test process")))
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
