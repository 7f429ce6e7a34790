//! Hygiene: the transports leave nothing behind in /dev/shm, /dev/mqueue, the System V IPC
//! tables or the file system.
//!
//! Every conformance test already checks its own endpoint once both halves are gone
//! (`common::assert_gone`). Here we check that the check itself sees live endpoints, and scan
//! the system for anything named by the suites (`shmring-conf-PID-N`, `shmring-hyg-PID-N`,
//! System V keys `0x5eXXXXXN`) whose process has exited: a leak. Cargo runs this binary after
//! `conformance` (alphabetical order), so the scan covers the whole suite.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use common::{assert_gone, pair, ALL, SYSV_KEY_TAG, T};

const PREFIXES: [&str; 2] = ["shmring-conf-", "shmring-hyg-"];

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid in `…shmring-conf-PID-N…`, if `name` is one of ours.
fn our_pid(name: &str) -> Option<u32> {
    PREFIXES.iter().find_map(|p| {
        let rest = &name[name.find(p)? + p.len()..];
        rest.split('-').next()?.parse().ok()
    })
}

fn leaked_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| our_pid(n).is_some_and(|pid| !alive(pid)))
        .map(|n| dir.join(n).display().to_string())
        .collect()
}

#[test]
fn the_check_sees_live_endpoints() {
    for t in ALL {
        if matches!(t, T::Pipe | T::Tcp) {
            continue; // nothing named to leave behind
        }
        let (tx, rx, url) = pair(t, "shmring-hyg");
        let seen = catch_unwind(AssertUnwindSafe(|| assert_gone(&url))).is_err();
        assert!(
            seen,
            "{t:?}: the hygiene check does not see the live endpoint {url}"
        );
        drop(tx);
        drop(rx);
        assert_gone(&url);
    }
}

#[test]
fn listeners_remove_what_they_made_even_if_the_sender_outlives_them() {
    for t in ALL {
        if matches!(t, T::Pipe | T::Tcp) {
            continue;
        }
        let (tx, rx, url) = pair(t, "shmring-hyg");
        drop(rx);
        assert_gone(&url);
        drop(tx);
        assert_gone(&url);
    }
}

#[test]
fn nothing_left_behind_by_finished_processes() {
    let mut leaks = Vec::new();
    leaks.extend(leaked_in(Path::new("/dev/shm")));
    leaks.extend(leaked_in(Path::new("/dev/mqueue"))); // listed only where it is mounted
    leaks.extend(leaked_in(&std::env::temp_dir()));

    // Sockets, abstract ones included.
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    for line in table.lines().skip(1) {
        if let Some(name) = line.split_whitespace().nth(7) {
            if our_pid(name).is_some_and(|pid| !alive(pid)) {
                leaks.push(format!("socket {name}"));
            }
        }
    }

    // System V queues: key = tag | (pid & 0xfffff) << 4 | n.
    let msg = std::fs::read_to_string("/proc/sysvipc/msg").unwrap_or_default();
    for line in msg.lines().skip(1) {
        let Some(key) = line
            .split_whitespace()
            .next()
            .and_then(|k| k.parse::<i64>().ok())
        else {
            continue;
        };
        let key = key as u32;
        if key & 0xff00_0000 == SYSV_KEY_TAG && !alive((key >> 4) & 0xf_ffff) {
            leaks.push(format!("System V queue {key:#x}"));
        }
    }
    assert!(leaks.is_empty(), "left behind: {leaks:#?}");
}
