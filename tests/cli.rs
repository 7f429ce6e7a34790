//! The `shmring` CLI against real segments: ls, inspect, rm (never a foreign file), gc; and
//! against what else /dev/shm can hold (FIFOs, sockets, links, huge sparse files), in bounded
//! time.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{child_param, is_child, spawn_self, unique_name};
use shmring::broadcast::{self, Overflow};
use shmring::{spsc, Config};

fn shmring(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shmring"))
        .args(args)
        .output()
        .expect("run shmring");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ls_inspect_rm_and_gc() {
    let name = unique_name("cli");
    let mut tx =
        spsc::Sender::create(&name, Config::default().capacity(4096).persist(true)).unwrap();
    tx.send(b"twelve bytes").unwrap(); // 8 header + 16 payload (padded)

    let (code, out, _) = shmring(&["ls", "--json"]);
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == format!("/{name}"))
        .expect("our segment is listed");
    assert_eq!(row["kind"], "spsc");
    assert_eq!(row["capacity"], 4096);
    assert_eq!(row["used"], 24);
    assert_eq!(row["mode"], "0600");
    let sender = &row["participants"][0];
    assert_eq!(
        (sender["role"].as_str(), sender["alive"].as_bool()),
        (Some("sender"), Some(true))
    );
    assert_eq!(row["participants"][1]["alive"], false);

    let (code, out, _) = shmring(&["inspect", &name]);
    assert_eq!(code, 0);
    assert!(out.contains("problems      none"), "{out}");

    // A file that is not ours is refused and left alone.
    let foreign = unique_name("foreign");
    std::fs::write(format!("/dev/shm/{foreign}"), b"not a segment").unwrap();
    let (code, _, err) = shmring(&["rm", &foreign]);
    assert_eq!(code, 1);
    assert!(err.contains("not a shmring segment"), "{err}");
    assert!(std::path::Path::new(&format!("/dev/shm/{foreign}")).exists());
    std::fs::remove_file(format!("/dev/shm/{foreign}")).unwrap();

    // While the sender lives, gc leaves it; once it is gone (persisted name), gc removes it.
    let (_, out, _) = shmring(&["gc", "--dry-run", "--min-age", "0", "--prefix", &name]);
    assert!(!out.contains(&name), "{out}");
    drop(tx);
    let (code, out, _) = shmring(&["gc", "--dry-run", "--min-age", "0", "--prefix", &name]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("would remove /{name}")), "{out}");
    assert!(std::path::Path::new(&format!("/dev/shm/{name}")).exists());
    let (code, out, _) = shmring(&["gc", "--min-age", "0", "--prefix", &name]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("removed /{name}")), "{out}");
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

#[test]
fn rm_removes_a_shmring_segment() {
    let name = unique_name("clirm");
    let tx = spsc::Sender::create(&name, Config::default().persist(true)).unwrap();
    drop(tx);
    let (code, out, _) = shmring(&["rm", &name]);
    assert_eq!(code, 0, "{out}");
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

/// Runs the CLI, killing it if it has not finished within `limit`; `None` if it had to be
/// killed (it hung).
fn shmring_within(args: &[&str], limit: Duration) -> Option<(i32, String, String)> {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmring"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shmring");
    // Drain the pipes on threads so a large `ls` cannot fill them and stall the child.
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait shmring") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    status.map(|s| (s.code().unwrap_or(-1), out, err))
}

/// Entries in /dev/shm that are removed when the test ends, pass or fail.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[test]
fn hostile_entries_neither_hang_nor_confuse_the_cli() {
    let limit = Duration::from_secs(20);
    let fifo = unique_name("fifo");
    let sock = unique_name("sock");
    let link = unique_name("link");
    let sparse = unique_name("sparse");
    let empty_sparse = unique_name("sparse0");
    let target = unique_name("target");
    let path = |n: &str| format!("/dev/shm/{n}");
    let _cleanup = Cleanup(
        [&fifo, &sock, &link, &sparse, &empty_sparse]
            .iter()
            .map(|n| path(n))
            .collect(),
    );
    nix::unistd::mkfifo(path(&fifo).as_str(), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(path(&sock)).unwrap();
    let mut tx = spsc::Sender::create(&target, Config::default()).unwrap();
    tx.send(b"x").unwrap();
    std::os::unix::fs::symlink(path(&target), path(&link)).unwrap();
    // 1 TiB, sparse: one starts with our magic (so it is read as a segment), one is all holes.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(path(&sparse)).unwrap();
        f.write_all_at(b"SHMRING\0", 0).unwrap();
        f.set_len(1 << 40).unwrap();
        std::fs::File::create(path(&empty_sparse))
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
    }

    let t = Instant::now();
    let (code, out, err) = shmring_within(&["ls", "--json"], limit).expect("ls finishes");
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&format!("/{target}").as_str()), "{names:?}");
    for skipped in [&fifo, &sock, &link, &empty_sparse] {
        assert!(
            !names.contains(&format!("/{skipped}").as_str()),
            "{skipped}"
        );
    }
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == format!("/{sparse}"))
        .expect("the sparse file with our magic is listed, with its problems");
    assert_eq!(row["file_len"], 1u64 << 40);
    assert_eq!(row["initialised"], false);
    let problems = row["problems"].to_string();
    assert!(problems.contains("header says 0 bytes"), "{problems}");

    // inspect and rm refuse each non-regular entry, say what it is, and leave it alone.
    for (name, what) in [
        (&fifo, "a FIFO"),
        (&sock, "a socket"),
        (&link, "symbolic link"),
    ] {
        let (code, _, err) = shmring_within(&["inspect", name], limit).expect("inspect finishes");
        assert_ne!(code, 0);
        assert!(err.contains(what), "{name}: {err}");
        let (code, _, err) = shmring_within(&["rm", name], limit).expect("rm finishes");
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(what), "{name}: {err}");
        assert!(
            Path::new(&path(name)).symlink_metadata().is_ok(),
            "{name} kept"
        );
    }
    assert!(Path::new(&path(&target)).exists(), "the link's target kept");
    let (code, out, _) =
        shmring_within(&["inspect", &sparse], limit).expect("inspect of 1 TiB finishes");
    assert_eq!(code, 0);
    assert!(out.contains("file length   1099511627776"), "{out}");

    // gc over all of it finishes and removes none of the odd entries. The sparse file with our
    // magic is a dead, half-made segment by every measure (no live participant, created at 0):
    // that one it would remove.
    let (code, out, err) = shmring_within(&["gc", "--dry-run", "--prefix", "shmring-test-"], limit)
        .expect("gc finishes");
    assert_eq!(code, 0, "{err}");
    for name in [&fifo, &sock, &link, &empty_sparse, &target] {
        assert!(!out.contains(name.as_str()), "{name}: {out}");
    }
    assert!(out.contains(&format!("would remove /{sparse}")), "{out}");
    assert!(t.elapsed() < limit, "took {:?}", t.elapsed());
    drop(tx);
}

/// A broadcast segment with three readers: one up to date, one that read nothing (its lag is
/// every message), one in a child process SIGKILLed while attached (dead: its place is still
/// taken, its lock is free). `ls` and `inspect` show the policy, each reader's lag and the dead
/// one.
#[test]
fn ls_and_inspect_show_broadcast_readers_their_lag_and_dead_ones() {
    const TEST: &str = "ls_and_inspect_show_broadcast_readers_their_lag_and_dead_ones";
    if is_child() {
        if let Some(name) = child_param("BCAST") {
            let _rx = broadcast::Receiver::open(&name).unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        return;
    }
    let name = unique_name("cli-bcast");
    let cfg = Config::default()
        .capacity(16)
        .slot_size(32)
        .overflow(Overflow::Overwrite);
    let mut tx = broadcast::Sender::create(&name, cfg).unwrap();
    let mut fast = broadcast::Receiver::open(&name).unwrap();
    let _slow = broadcast::Receiver::open(&name).unwrap();
    let child = spawn_self(TEST, &[("BCAST", name.clone())]);
    let active = || {
        shmring::inspect::inspect(&name)
            .unwrap()
            .and_then(|i| i.broadcast)
            .map_or(0, |b| b.readers.iter().filter(|r| r.active).count())
    };
    let t0 = Instant::now();
    while active() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "child never attached"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill();
    for i in 0..5u8 {
        tx.send(&[i; 20]).unwrap();
    }
    for i in 0..5u8 {
        assert_eq!(&*fast.recv().unwrap(), &[i; 20]);
    }

    let (code, out, _) = shmring(&["ls", "--json"]);
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == format!("/{name}"))
        .expect("our segment is listed");
    assert_eq!(row["kind"], "broadcast");
    let b = &row["broadcast"];
    assert_eq!(b["policy"], "overwrite");
    assert_eq!(b["tail"], 5);
    let mut readers: Vec<(String, u64)> = b["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["state"].as_str().unwrap().to_owned(),
                r["lag"].as_u64().unwrap(),
            )
        })
        .collect();
    readers.sort();
    assert_eq!(
        readers,
        [("alive".into(), 0), ("alive".into(), 5), ("dead".into(), 5)],
        "{b}"
    );

    let (code, out, _) = shmring(&["ls"]);
    assert_eq!(code, 0);
    let line = out.lines().find(|l| l.contains(&name)).expect("listed");
    assert!(
        line.contains("overwrite") && line.contains("5 (1 dead)"),
        "{line}"
    );

    let (code, out, _) = shmring(&["inspect", &name]);
    assert_eq!(code, 0);
    assert!(out.contains("policy        overwrite"), "{out}");
    assert!(out.contains("max lag       5 (1 dead)"), "{out}");
    let dead = out
        .lines()
        .filter(|l| l.starts_with("reader") && l.contains(" dead "))
        .count();
    assert_eq!(dead, 1, "{out}");
    assert!(out.contains("died without leaving"), "{out}");
    drop(tx);
}
