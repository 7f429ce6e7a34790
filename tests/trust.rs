//! Who may attach (issue 14), with a real second user: a child of this test binary runs as uid
//! and gid 65534 (nobody) and squats names, or connects to sockets, and this process (root)
//! must refuse what it did not allow, accept what it did, and say how to allow the rest.
//! Every test is skipped (with a note) when not run as root.

mod common;

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{child_param, is_child, self_command, unique_name, ChildGuard};
use shmring::channel::{Receiver, Sender};
use shmring::transport::unix::{UnixAddress, UnixKind, UnixReceiver, UnixSender};
use shmring::{spsc, Config, Error, Trust};

const NOBODY: u32 = 65534;

/// True if this process may start children as another uid.
fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root to run a process as a second uid");
    false
}

/// Runs the test `test` of this binary as uid/gid 65534 with `params`; `None` if it cannot be
/// started as that user (then the test is skipped).
fn as_nobody(test: &str, params: &[(&str, String)]) -> Option<ChildGuard> {
    let mut cmd = self_command(test, params);
    cmd.uid(NOBODY).gid(NOBODY);
    match cmd.spawn() {
        Ok(c) => Some(ChildGuard(Some(c))),
        Err(e) => {
            eprintln!("skipped: cannot run the test binary as uid {NOBODY}: {e}");
            None
        }
    }
}

/// Runs the child to completion; false if it could not be started.
fn run_as_nobody(test: &str, params: &[(&str, String)]) -> bool {
    match as_nobody(test, params) {
        Some(child) => {
            child.join(Duration::from_secs(20));
            true
        }
        None => false,
    }
}

/// The child's permission bits: exactly `MODE`, whatever the umask.
fn child_mode() -> u32 {
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    u32::from_str_radix(&child_param("MODE").unwrap(), 8).unwrap()
}

/// Asserts `r` is a refusal naming `owner` and `hint` (the way to allow it); returns its text.
fn assert_refused<T>(r: shmring::Result<T>, owner: u32, hint: &str) -> String {
    match r {
        Err(e @ Error::Untrusted { .. }) => {
            let Error::Untrusted { owner: o, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*o, owner, "{e}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("uid {owner}")), "{msg}");
            assert!(msg.contains(hint), "no {hint:?} in: {msg}");
            msg
        }
        Err(e) => panic!("expected Untrusted, got {e}"),
        Ok(_) => panic!("expected Untrusted, got a handle"),
    }
}

/// True if this process has any mapping whose path mentions `name`.
fn mapped(name: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .any(|l| l.contains(name))
}

/// Removes a segment name when dropped.
struct Unlink(String);
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = shmring::segment::Segment::unlink(&self.0);
    }
}

/// A segment made first by another user (mode 0666, a valid header and a message waiting) is
/// refused by `open` and by `create_or_open`, with the owner and the way to allow it, and
/// nothing of it is mapped. Allowing the uid is not enough while it is world-writable; allowing
/// the uid and the mode is.
#[test]
fn squatted_segment_is_refused() {
    const TEST: &str = "squatted_segment_is_refused";
    if is_child() {
        let mode = child_mode();
        let cfg = Config::default().persist(true).mode(mode).capacity(4096);
        let mut tx = spsc::Sender::create(&child_param("NAME").unwrap(), cfg).unwrap();
        tx.send(b"planted by nobody").unwrap();
        return;
    }
    if !root() {
        return;
    }
    let name = unique_name("squat");
    let _cleanup = Unlink(name.clone());
    if !run_as_nobody(TEST, &[("NAME", name.clone()), ("MODE", "666".into())]) {
        return;
    }
    let msg = assert_refused(spsc::Receiver::open(&name), NOBODY, "allow_uid(65534)");
    assert!(msg.contains("mode 0666"), "{msg}");
    assert!(!mapped(&name), "a refused segment must not be mapped");
    assert_refused(
        spsc::Sender::create_or_open(&name, Config::default()),
        NOBODY,
        "Config::allow_uid(65534)",
    );
    assert_refused(
        shmring::connect(&format!("shm://{name}")),
        NOBODY,
        "allow_uid=65534",
    );
    assert!(!mapped(&name));
    // Allowing the owner does not allow every user's write access.
    let r = spsc::Receiver::open_with(&name, Config::default().allow_uid(NOBODY));
    let msg = assert_refused(r, NOBODY, "Config::mode(0o666)");
    assert!(msg.contains("every user"), "{msg}");
    assert!(!mapped(&name));
    // Both, on purpose: accepted, and the planted message is there.
    let cfg = Config::default().allow_uid(NOBODY).mode(0o666);
    let mut rx = spsc::Receiver::open_with(&name, cfg).unwrap();
    let mut buf = Vec::new();
    rx.recv_into_timeout(&mut buf, Duration::from_secs(5))
        .unwrap();
    assert_eq!(buf, b"planted by nobody");
}

/// A private (0600) segment of another uid opens once that uid is allowed, by Config or URL.
#[test]
fn allowed_uid_segment_is_accepted() {
    const TEST: &str = "allowed_uid_segment_is_accepted";
    if is_child() {
        let mode = child_mode();
        let cfg = Config::default().persist(true).mode(mode).capacity(4096);
        let mut tx = spsc::Sender::create(&child_param("NAME").unwrap(), cfg).unwrap();
        tx.send(b"from nobody").unwrap();
        return;
    }
    if !root() {
        return;
    }
    let name = unique_name("allowuid");
    let _cleanup = Unlink(name.clone());
    if !run_as_nobody(TEST, &[("NAME", name.clone()), ("MODE", "600".into())]) {
        return;
    }
    let msg = assert_refused(spsc::Receiver::open(&name), NOBODY, "allow_uid(65534)");
    assert!(
        msg.contains("not by this process's effective uid 0"),
        "{msg}"
    );
    let mut rx = spsc::Receiver::open_with(&name, Config::default().allow_uid(NOBODY)).unwrap();
    let mut buf = Vec::new();
    rx.recv_into_timeout(&mut buf, Duration::from_secs(5))
        .unwrap();
    assert_eq!(buf, b"from nobody");
    // The same by URL (the child's sender is gone, so its side is free).
    assert_refused(
        shmring::connect(&format!("shm://{name}")),
        NOBODY,
        "allow_uid=65534",
    );
    let mut tx = shmring::connect(&format!("shm://{name}?allow_uid={NOBODY}")).unwrap();
    tx.send(b"and from root").unwrap();
    rx.recv_into_timeout(&mut buf, Duration::from_secs(5))
        .unwrap();
    assert_eq!(buf, b"and from root");
}

/// A group-shared segment (0660, group 65534, made by another member) opens with
/// `allow_gid`, and is refused without it.
#[test]
fn allowed_gid_segment_is_accepted() {
    const TEST: &str = "allowed_gid_segment_is_accepted";
    if is_child() {
        let mode = child_mode();
        let cfg = Config::default().persist(true).mode(mode).capacity(4096);
        let mut tx = spsc::Sender::create(&child_param("NAME").unwrap(), cfg).unwrap();
        tx.send(b"to the group").unwrap();
        return;
    }
    if !root() {
        return;
    }
    let name = unique_name("allowgid");
    let _cleanup = Unlink(name.clone());
    if !run_as_nobody(TEST, &[("NAME", name.clone()), ("MODE", "660".into())]) {
        return;
    }
    assert_refused(spsc::Receiver::open(&name), NOBODY, "allow_gid(65534)");
    let mut rx = spsc::Receiver::open_with(&name, Config::default().allow_gid(NOBODY)).unwrap();
    let mut buf = Vec::new();
    rx.recv_into_timeout(&mut buf, Duration::from_secs(5))
        .unwrap();
    assert_eq!(buf, b"to the group");
}

/// A FIFO made first by another user (mode 0622: anybody may write into it, its owner reads
/// what we send) is refused before anything is written; a 0600 one of an allowed uid is used.
#[test]
fn squatted_fifo_is_refused() {
    const TEST: &str = "squatted_fifo_is_refused";
    if is_child() {
        let mode = child_mode();
        let path = PathBuf::from(child_param("PATH").unwrap());
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(mode)).unwrap();
        return;
    }
    if !root() {
        return;
    }
    for (mode, allow_ok) in [("622", false), ("600", true)] {
        let path = std::env::temp_dir().join(unique_name("fifo-squat"));
        if !run_as_nobody(
            TEST,
            &[("PATH", path.display().to_string()), ("MODE", mode.into())],
        ) {
            return;
        }
        // A reader, so that opening for writing does not fail with ENXIO.
        let reader = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let url = format!("fifo://{}", path.display());
        assert_refused(shmring::connect(&url), NOBODY, "allow_uid=65534");
        let allowed = shmring::connect(&format!("{url}?allow_uid={NOBODY}"));
        if allow_ok {
            let mut tx = allowed.unwrap();
            tx.send(b"to an allowed owner").unwrap();
        } else {
            let msg = assert_refused(allowed, NOBODY, "every user");
            assert!(msg.contains("mode 0622"), "{msg}");
        }
        drop(reader);
        std::fs::remove_file(&path).unwrap();
    }
}

/// POSIX and System V queues made first by another user are refused; allowed, they are used.
#[test]
fn squatted_queues_are_refused() {
    const TEST: &str = "squatted_queues_are_refused";
    if is_child() {
        let mode = child_mode();
        let name = format!("/{}", child_param("MQ").unwrap());
        let attr = nix::mqueue::MqAttr::new(0, 4, 64, 0);
        let q = nix::mqueue::mq_open(
            name.as_str(),
            nix::mqueue::MQ_OFlag::O_CREAT
                | nix::mqueue::MQ_OFlag::O_EXCL
                | nix::mqueue::MQ_OFlag::O_RDONLY,
            nix::sys::stat::Mode::from_bits_truncate(mode),
            Some(&attr),
        )
        .unwrap();
        nix::mqueue::mq_close(q).unwrap();
        let key: i32 = child_param("KEY").unwrap().parse().unwrap();
        // SAFETY: msgget takes plain integers.
        let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | mode as i32) };
        assert!(id >= 0, "msgget: {}", std::io::Error::last_os_error());
        return;
    }
    if !root() {
        return;
    }
    for (mode, allow_ok) in [("666", false), ("600", true)] {
        let mq = unique_name("mq-squat");
        let key = common::sysv_key() as i32;
        if !run_as_nobody(
            TEST,
            &[
                ("MQ", mq.clone()),
                ("KEY", key.to_string()),
                ("MODE", mode.into()),
            ],
        ) {
            return;
        }
        let mq_url = format!("mq://{mq}");
        let sysv_url = format!("sysv://{key:#x}");
        for url in [&mq_url, &sysv_url] {
            assert_refused(shmring::connect(url), NOBODY, "allow_uid=65534");
            let allowed = shmring::connect(&format!("{url}?allow_uid={NOBODY}"));
            if allow_ok {
                let mut tx = allowed.unwrap_or_else(|e| panic!("{url}: {e}"));
                tx.send(b"to an allowed owner").unwrap();
            } else {
                assert_refused(allowed, NOBODY, "every user");
            }
        }
        let _ = nix::mqueue::mq_unlink(format!("/{mq}").as_str());
        // SAFETY: msgget/msgctl take plain integers; IPC_RMID reads no buffer.
        unsafe {
            let id = libc::msgget(key, 0);
            libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

/// A process of another uid that connects to an abstract socket (which has no permission
/// bits) is refused by the listener, which stays usable; allowed, it is accepted and its
/// credentials are reported. Stream, seqpacket and datagram.
#[test]
fn foreign_uid_on_abstract_socket_is_refused() {
    const TEST: &str = "foreign_uid_on_abstract_socket_is_refused";
    if is_child() {
        // The listener runs as root: this side must allow it to connect at all.
        let url = format!("{}?allow_uid=0", child_param("URL").unwrap());
        let mut tx = shmring::connect(&url).unwrap();
        match tx.send(b"from nobody") {
            Ok(()) => {}
            // Refused: the listener may close the connection before we send.
            Err(Error::Disconnected) if child_param("EXPECT").unwrap() == "refused" => {}
            Err(e) => panic!("send: {e}"),
        }
        // Stay connected until the parent has looked.
        std::thread::sleep(Duration::from_millis(500));
        return;
    }
    if !root() {
        return;
    }
    for kind in [UnixKind::Stream, UnixKind::Seqpacket, UnixKind::Datagram] {
        let addr = UnixAddress::Abstract(unique_name("abstract"));
        let url = format!("{}://{addr}", kind.scheme());
        // Refused by default.
        let mut rx = UnixReceiver::bind(kind, addr.clone(), 1024).unwrap();
        let params = [("URL", url.clone()), ("EXPECT", "refused".to_owned())];
        let Some(child) = as_nobody(TEST, &params) else {
            return;
        };
        let mut buf = Vec::new();
        let r = rx.recv_into_timeout(&mut buf, Duration::from_secs(10));
        let msg = assert_refused(r, NOBODY, "allow_uid(65534)");
        assert!(msg.contains("peer"), "{msg}");
        assert!(rx.peer_credentials().is_none(), "{kind:?}");
        child.join(Duration::from_secs(20));
        // The listener goes on, and takes a sender of its own uid.
        let mut tx = UnixSender::connect(kind, addr.clone(), 1024).unwrap();
        tx.send(b"from root").unwrap();
        // A datagram sender's close marker is one more refused datagram: it is reported too,
        // and does not close the channel.
        let mut refusals = 0;
        loop {
            match rx.recv_into_timeout(&mut buf, Duration::from_secs(5)) {
                Ok(_) => break,
                Err(Error::Untrusted { owner: NOBODY, .. }) if kind == UnixKind::Datagram => {
                    refusals += 1;
                    assert!(refusals <= 1, "more refusals than the close marker");
                }
                Err(e) => panic!("{kind:?}: {e}"),
            }
        }
        assert_eq!(buf, b"from root", "{kind:?}");
        let me = rx.peer_credentials().unwrap();
        assert_eq!((me.uid, me.pid), (0, std::process::id() as i32));
        drop((tx, rx));

        // Allowed: accepted, and the peer's credentials are the kernel's.
        let trust = Trust::default().allow_uid(NOBODY);
        let mut rx = UnixReceiver::bind_with(kind, addr.clone(), 1024, &trust).unwrap();
        let params = [("URL", url.clone()), ("EXPECT", "accepted".to_owned())];
        let Some(child) = as_nobody(TEST, &params) else {
            return;
        };
        let child_pid = child.0.as_ref().unwrap().id() as i32;
        rx.recv_into_timeout(&mut buf, Duration::from_secs(10))
            .unwrap();
        assert_eq!(buf, b"from nobody", "{kind:?}");
        let peer = rx.peer_credentials().unwrap();
        assert_eq!((peer.uid, peer.gid), (NOBODY, NOBODY), "{kind:?}");
        assert_eq!(peer.pid, child_pid, "{kind:?}");
        child.join(Duration::from_secs(20));
    }
}

/// A sender refuses a listener of another uid (a squatted abstract name): it learns who
/// listens from `SO_PEERCRED` before it sends anything.
#[test]
fn sender_refuses_a_foreign_listener() {
    const TEST: &str = "sender_refuses_a_foreign_listener";
    if is_child() {
        let url = child_param("URL").unwrap();
        let _rx = shmring::listen(&url).unwrap();
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    if !root() {
        return;
    }
    for scheme in ["unix", "unix-seqpacket"] {
        let url = format!("{scheme}://@{}", unique_name("foreign-listener"));
        let Some(child) = as_nobody(TEST, &[("URL", url.clone())]) else {
            return;
        };
        let start = Instant::now();
        let r = loop {
            match shmring::connect(&url) {
                Err(e) if e.io_kind() == Some(std::io::ErrorKind::ConnectionRefused) => {
                    assert!(start.elapsed() < Duration::from_secs(10), "never listened");
                    std::thread::sleep(Duration::from_millis(5));
                }
                r => break r,
            }
        };
        assert_refused(r, NOBODY, "allow_uid=65534");
        let tx = UnixSender::connect_with(
            if scheme == "unix" {
                UnixKind::Stream
            } else {
                UnixKind::Seqpacket
            },
            UnixAddress::parse(url.split("://").nth(1).unwrap()),
            1024,
            &Trust::default().allow_uid(NOBODY),
        )
        .unwrap();
        let peer = tx.peer_credentials().unwrap();
        assert_eq!(peer.uid, NOBODY);
        assert_eq!(peer.pid, child.0.as_ref().unwrap().id() as i32);
        child.kill();
    }
}
