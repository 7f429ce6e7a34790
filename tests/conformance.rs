//! The transport conformance suite: written once against the `Sender` / `Receiver` traits and
//! instantiated for every transport, the shared-memory SPSC ring included.
//!
//! Each transport gets the same tests: order kept and nothing lost or duplicated over many
//! messages, the empty message, a maximum-size message, an over-size message (`TooLarge`),
//! `try_recv` on empty (`Empty`), `try_send` on full (`Full`, at once) and `send_timeout` on
//! full (`Timeout`, not before its time), `recv_timeout` (returns `Timeout`, not before its time
//! nor more than 500 ms after), sender drop (the receiver drains, then `Disconnected`), receiver drop (the
//! sender gets `Disconnected`, at once or, for transports that learn it late, within a few
//! sends), and two real processes (this binary re-executed as the sending child).
//!
//! Every test also checks, once both halves are gone, that its endpoint left nothing behind.
//!
//! Message counts: 1 million for every transport (the figure). Measured on two shared
//! cores, one at a time: shm SPSC 0.2 s, pipe and FIFO 0.8 s, Unix stream 1.3-1.6 s, POSIX and
//! System V queues 1.5 s, seqpacket and datagram 2.5-2.7 s, TCP 6.9 s; the whole suite (all
//! tests in parallel) 20-40 s. If a slow machine needs it, lower `MANY` for TCP first and
//! say so here.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{pair, url, T};
use shmring::channel::{Receiver, Sender};
use shmring::Error;

/// Messages in the order test.
const MANY: u64 = 1_000_000;
/// Messages the child process sends in the two-process test.
const CHILD_MESSAGES: u64 = 10_000;
const PREFIX: &str = "shmring-conf";

/// Message `i`: its sequence number, then 0 to 12 bytes of filler derived from it.
fn message(i: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&i.to_le_bytes());
    out.extend(std::iter::repeat_n(i as u8, (i % 13) as usize));
}

fn check_message(i: u64, got: &[u8]) {
    let mut want = Vec::new();
    message(i, &mut want);
    assert!(
        got == &want[..],
        "message {i}: got {} bytes starting {:?}",
        got.len(),
        &got[..got.len().min(8)]
    );
}

fn send_all(tx: &mut dyn Sender, n: u64) {
    let mut msg = Vec::new();
    for i in 0..n {
        message(i, &mut msg);
        tx.send(&msg).unwrap_or_else(|e| panic!("send {i}: {e}"));
    }
}

fn recv_all(rx: &mut dyn Receiver, n: u64) {
    let mut buf = Vec::new();
    for i in 0..n {
        match rx.recv_into_timeout(&mut buf, Duration::from_secs(20)) {
            Ok(len) => {
                assert_eq!(len, buf.len());
                check_message(i, &buf);
            }
            Err(e) => panic!("recv {i}: {e}"),
        }
    }
    expect_disconnected(rx);
}

fn expect_disconnected(rx: &mut dyn Receiver) {
    let mut buf = Vec::new();
    for _ in 0..2 {
        match rx.recv_into_timeout(&mut buf, Duration::from_secs(10)) {
            Err(Error::Disconnected) => {}
            other => panic!("expected Disconnected after the sender dropped, got {other:?}"),
        }
    }
}

fn order_and_no_loss(t: T, n: u64) {
    let (mut tx, mut rx, url) = pair(t, PREFIX);
    let start = Instant::now();
    let sender = thread::spawn(move || send_all(&mut *tx, n));
    recv_all(&mut *rx, n);
    sender.join().unwrap();
    eprintln!("{t:?} ({url}): {n} messages in {:?}", start.elapsed());
    drop(rx);
    hygiene(t, &url);
}

fn empty_message(t: T) {
    let (mut tx, mut rx, url) = pair(t, PREFIX);
    tx.send(b"").unwrap();
    tx.send(b"x").unwrap();
    tx.send(b"").unwrap();
    let mut buf = vec![1, 2, 3];
    assert_eq!(rx.recv_into(&mut buf).unwrap(), 0);
    assert!(buf.is_empty());
    assert_eq!(rx.recv_into(&mut buf).unwrap(), 1);
    assert_eq!(buf, b"x");
    assert_eq!(rx.recv_into(&mut buf).unwrap(), 0);
    drop(tx);
    expect_disconnected(&mut *rx);
    drop(rx);
    hygiene(t, &url);
}

fn max_size_message(t: T) {
    let (mut tx, mut rx, url) = pair(t, PREFIX);
    let max = tx.max_message_size();
    assert_eq!(
        max,
        rx.max_message_size(),
        "both halves agree on the maximum"
    );
    assert!(max > 0);
    let big: Vec<u8> = (0..max).map(|i| (i * 7 + i / 251) as u8).collect();
    let expect = big.clone();
    let sender = thread::spawn(move || {
        tx.send(&big).unwrap();
        tx.send(b"after").unwrap();
    });
    let mut buf = Vec::new();
    assert_eq!(rx.recv_into(&mut buf).unwrap(), max);
    assert!(buf == expect, "the maximum-size message arrived intact");
    rx.recv_into(&mut buf).unwrap();
    assert_eq!(buf, b"after");
    sender.join().unwrap();
    expect_disconnected(&mut *rx);
    drop(rx);
    hygiene(t, &url);
}

fn over_size(t: T) {
    let (mut tx, mut rx, url) = pair(t, PREFIX);
    let max = tx.max_message_size();
    let big = vec![0u8; max + 1];
    for r in [
        tx.send(&big),
        tx.try_send(&big),
        tx.send_timeout(&big, Duration::from_millis(10)),
    ] {
        match r {
            Err(Error::TooLarge { size, max: m }) => {
                assert_eq!(size, max + 1);
                assert_eq!(m, max);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
    // The channel still works and nothing of the refused message arrives.
    tx.send(b"fine").unwrap();
    let mut buf = Vec::new();
    rx.recv_into(&mut buf).unwrap();
    assert_eq!(buf, b"fine");
    assert!(matches!(rx.try_recv_into(&mut buf), Err(Error::Empty)));
    drop(tx);
    drop(rx);
    hygiene(t, &url);
}

fn try_recv_empty(t: T) {
    let (mut tx, mut rx, url) = pair(t, PREFIX);
    let mut buf = Vec::new();
    assert!(matches!(rx.try_recv_into(&mut buf), Err(Error::Empty)));
    tx.send(b"one").unwrap();
    // The message may take a moment to arrive (sockets, TCP): wait for it, then empty again.
    rx.recv_into_timeout(&mut buf, Duration::from_secs(5))
        .unwrap();
    assert_eq!(buf, b"one");
    assert!(matches!(rx.try_recv_into(&mut buf), Err(Error::Empty)));
    drop(tx);
    drop(rx);
    hygiene(t, &url);
}

fn recv_timeout(t: T) {
    let (tx, mut rx, url) = pair(t, PREFIX);
    let mut buf = Vec::new();
    for timeout in [Duration::from_millis(1), Duration::from_millis(100)] {
        let start = Instant::now();
        let r = rx.recv_into_timeout(&mut buf, timeout);
        let took = start.elapsed();
        assert!(
            matches!(r, Err(Error::Timeout)),
            "expected Timeout, got {r:?}"
        );
        assert!(
            took >= timeout,
            "returned after {took:?}, before the {timeout:?} timeout"
        );
        assert!(
            took < timeout + Duration::from_millis(500),
            "returned {took:?} after a {timeout:?} timeout"
        );
    }
    drop(tx);
    drop(rx);
    hygiene(t, &url);
}

/// `Duration::MAX` means "no deadline" in both `_timeout` forms: no overflow, no panic, no
/// early `Timeout`; the call returns when the message (or room) comes.
fn duration_max(t: T) {
    let (mut tx, mut rx, url) = pair(t, PREFIX);
    let mut buf = Vec::new();
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(30));
            tx.send_timeout(b"late", Duration::MAX).unwrap();
        });
        let start = Instant::now();
        let n = rx.recv_into_timeout(&mut buf, Duration::MAX).unwrap();
        assert_eq!(&buf[..n], b"late");
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
    drop(tx);
    drop(rx);
    hygiene(t, &url);
}

fn sender_drop(t: T) {
    let (mut tx, mut rx, url) = pair(t, PREFIX);
    for m in [&b"a"[..], b"", b"ccc"] {
        tx.send(m).unwrap();
    }
    drop(tx);
    let mut buf = Vec::new();
    for m in [&b"a"[..], b"", b"ccc"] {
        rx.recv_into_timeout(&mut buf, Duration::from_secs(5))
            .unwrap();
        assert_eq!(buf, m);
    }
    expect_disconnected(&mut *rx);
    drop(rx);
    hygiene(t, &url);
}

fn receiver_drop(t: T) {
    let (mut tx, rx, url) = pair(t, PREFIX);
    tx.send(b"unread").unwrap();
    drop(rx);
    // Streams and rings know at once; TCP needs the peer's reset, POSIX queues a name check
    // (every 20 ms): a few sends may still be accepted before the sender learns.
    let start = Instant::now();
    let mut accepted = 0;
    loop {
        match tx.send_timeout(b"after the receiver left", Duration::from_millis(50)) {
            Err(Error::Disconnected) => break,
            Ok(()) | Err(Error::Timeout) | Err(Error::Full) => accepted += 1,
            Err(e) => panic!("expected Disconnected, got {e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "no Disconnected 3 s after the receiver dropped ({accepted} sends accepted)"
        );
        thread::sleep(Duration::from_millis(1));
    }
    // And it stays disconnected.
    assert!(matches!(tx.try_send(b"x"), Err(Error::Disconnected)));
    drop(tx);
    hygiene(t, &url);
}

fn full_then_timeout(t: T) {
    let (mut tx, mut rx, url) = pair(t, PREFIX);
    let size = tx.max_message_size().min(4096);
    let fill = |i: u64| {
        let mut m = i.to_le_bytes().to_vec();
        m.resize(size.max(8), i as u8);
        m
    };
    // try_send until the transport is full: it must say so at once, not block.
    let mut sent = 0u64;
    loop {
        let start = Instant::now();
        match tx.try_send(&fill(sent)) {
            Ok(()) => sent += 1,
            Err(Error::Full) => break,
            Err(e) => panic!("try_send {sent}: {e}"),
        }
        assert!(start.elapsed() < Duration::from_secs(1), "try_send blocked");
        assert!(sent * (size as u64) < 256 << 20, "never Full after 256 MiB");
    }
    assert!(sent > 0, "a fresh channel takes at least one message");
    // send_timeout on a full channel: Timeout, not before its time. (A stream may have moved
    // bytes on to the receiving socket meanwhile and take the message: that is fine too.)
    let start = Instant::now();
    match tx.send_timeout(&fill(sent), Duration::from_millis(50)) {
        Err(Error::Timeout) => assert!(start.elapsed() >= Duration::from_millis(50)),
        Ok(()) => sent += 1,
        Err(e) => panic!("send_timeout on full: {e}"),
    }
    drop(tx);
    let mut buf = Vec::new();
    for i in 0..sent {
        rx.recv_into_timeout(&mut buf, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("recv {i} of {sent}: {e}"));
        assert!(buf == fill(i), "message {i} of {sent}");
    }
    expect_disconnected(&mut *rx);
    drop(rx);
    hygiene(t, &url);
}

/// Drops nothing itself: called once every half of the test is gone (moved into a joined
/// thread or dropped), it checks that the endpoint left nothing behind.
fn hygiene(t: T, url: &str) {
    if t != T::Pipe {
        common::assert_gone(url);
    }
}

/// Two real processes: the test binary re-executes this very test (`test`, its full name) as a
/// child that connects and sends; this process listens and receives.
fn two_processes(t: T, test: &str) {
    if common::is_child() {
        let url = common::child_param("URL").unwrap();
        let n: u64 = common::child_param("COUNT").unwrap().parse().unwrap();
        let mut tx = shmring::connect(&url).unwrap_or_else(|e| panic!("child: connect {url}: {e}"));
        send_all(&mut *tx, n);
        return;
    }
    let count = ("COUNT", CHILD_MESSAGES.to_string());
    let (mut rx, child, url) = if t == T::Pipe {
        use std::os::unix::process::CommandExt;
        let (tx, rx) = shmring::transport::pipe::channel().unwrap();
        let fd = tx.raw_fd();
        let mut cmd = common::self_command(test, &[count, ("URL", format!("pipe:{fd}"))]);
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which
        // is async-signal-safe; it clears FD_CLOEXEC so that the child inherits the write end.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = common::ChildGuard(Some(cmd.spawn().unwrap()));
        // Our copy of the write end must go, or the receiver would never see the end.
        drop(tx);
        (Box::new(rx) as Box<dyn Receiver>, child, String::new())
    } else {
        let url = url(t, PREFIX);
        let rx = shmring::listen(&url).unwrap();
        let url = rx.local_url().unwrap_or(url);
        let child = common::spawn_self(test, &[count, ("URL", url.clone())]);
        (rx, child, url)
    };
    recv_all(&mut *rx, CHILD_MESSAGES);
    child.join(std::time::Duration::from_secs(60));
    drop(rx);
    hygiene(t, &url);
}

/// Batches both ways on a thread pair: `send_batch` of mixed sizes (empty and maximum-size
/// messages among them), `recv_batch` of varying `max`: order kept, none lost or doubled; an
/// over-size message stops a batch after the ones before it (`Ok(k)`), then is the error.
fn batches(t: T) {
    let (mut tx, mut rx, url) = pair(t, PREFIX);
    let max = tx.max_message_size().min(64 * 1024);
    let n: u64 = 20_000;
    let reader = thread::spawn(move || {
        let mut batch = shmring::channel::Batch::new();
        let mut i = 0u64;
        let mut round = 0usize;
        while i < n {
            round += 1;
            let got = rx
                .recv_batch_timeout(&mut batch, 1 + round % 50, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("recv_batch at {i}: {e}"));
            assert!(got >= 1 && got <= 1 + round % 50 && got == batch.len());
            for m in batch.iter() {
                if i % 1000 == 999 {
                    assert_eq!(m.len(), max, "message {i}");
                } else {
                    check_message(i, m);
                }
                i += 1;
            }
        }
        rx
    });
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    let mut i = 0u64;
    while i < n {
        msgs.clear();
        for _ in 0..(1 + i % 37).min(n - i) {
            let mut m = Vec::new();
            if i % 1000 == 999 {
                m = vec![0xA5; max];
            } else {
                message(i, &mut m);
            }
            msgs.push(m);
            i += 1;
        }
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let mut sent = 0;
        while sent < refs.len() {
            sent += tx
                .send_batch(&refs[sent..])
                .unwrap_or_else(|e| panic!("send_batch: {e}"));
        }
    }
    let mut rx = reader.join().unwrap();
    // An over-size message in the middle: the ones before it go, then it is the error.
    let big = vec![0u8; tx.max_message_size() + 1];
    let mut a = Vec::new();
    message(7, &mut a);
    if tx.max_message_size() < usize::MAX - 1 {
        let refs: [&[u8]; 3] = [&a, &big, &a];
        assert_eq!(tx.send_batch(&refs).unwrap(), 1);
        assert!(matches!(
            tx.send_batch(&refs[1..]),
            Err(Error::TooLarge { .. })
        ));
        let mut batch = shmring::channel::Batch::new();
        assert_eq!(
            rx.recv_batch_timeout(&mut batch, 8, Duration::from_secs(20))
                .unwrap(),
            1
        );
        check_message(7, &batch[0]);
    }
    assert!(
        rx.recv_batch(&mut shmring::channel::Batch::new(), 0)
            .unwrap()
            == 0
    );
    drop(tx);
    let mut batch = shmring::channel::Batch::new();
    assert!(matches!(
        rx.recv_batch_timeout(&mut batch, 8, Duration::from_secs(10)),
        Err(Error::Disconnected)
    ));
    drop(rx);
    hygiene(t, &url);
}

macro_rules! conformance {
    ($($name:ident: $t:expr, $many:expr;)*) => {$(
        mod $name {
            use super::*;
            #[test]
            fn order_and_no_loss() {
                super::order_and_no_loss($t, $many)
            }
            #[test]
            fn batches() {
                super::batches($t)
            }
            #[test]
            fn empty_message() {
                super::empty_message($t)
            }
            #[test]
            fn max_size_message() {
                super::max_size_message($t)
            }
            #[test]
            fn over_size_is_too_large() {
                super::over_size($t)
            }
            #[test]
            fn try_recv_on_empty_is_empty() {
                super::try_recv_empty($t)
            }
            #[test]
            fn try_send_on_full_is_full_and_send_timeout_times_out() {
                super::full_then_timeout($t)
            }
            #[test]
            fn recv_timeout_honours_its_timeout() {
                super::recv_timeout($t)
            }
            #[test]
            fn duration_max_means_no_deadline() {
                super::duration_max($t)
            }
            #[test]
            fn sender_drop_drains_then_disconnected() {
                super::sender_drop($t)
            }
            #[test]
            fn receiver_drop_disconnects_sender() {
                super::receiver_drop($t)
            }
            #[test]
            fn two_processes() {
                super::two_processes($t, concat!(stringify!($name), "::two_processes"))
            }
        }
    )*};
}

conformance! {
    shm_spsc: T::ShmSpsc, MANY;
    shm_mpmc: T::ShmMpmc, MANY;
    shm_broadcast: T::ShmBroadcast, MANY;
    pipe: T::Pipe, MANY;
    fifo: T::Fifo, MANY;
    unix_stream_path: T::UnixPath, MANY;
    unix_stream_abstract: T::UnixAbstract, MANY;
    unix_seqpacket: T::Seqpacket, MANY;
    unix_dgram: T::Dgram, MANY;
    posix_mq: T::PosixMq, MANY;
    sysv_mq: T::SysvMq, MANY;
    tcp: T::Tcp, MANY;
}

/// Broadcast: the conformance suite above runs it with one receiver; here three receivers (the
/// listener and two more opened by name) each see the whole sequence, in order.
#[test]
fn shm_broadcast_every_receiver_sees_the_whole_sequence() {
    let url = url(T::ShmBroadcast, PREFIX);
    let name = match shmring::endpoint::Endpoint::parse(&url).unwrap() {
        shmring::endpoint::Endpoint::Shm { name, .. } => name,
        other => panic!("{other:?}"),
    };
    let mut receivers: Vec<Box<dyn Receiver>> = vec![shmring::listen(&url).unwrap()];
    for _ in 0..2 {
        receivers.push(Box::new(shmring::broadcast::Receiver::open(&name).unwrap()));
    }
    let mut tx = shmring::connect(&url).unwrap();
    let start = Instant::now();
    let readers: Vec<_> = receivers
        .into_iter()
        .map(|mut rx| thread::spawn(move || recv_all(&mut *rx, MANY)))
        .collect();
    send_all(&mut *tx, MANY);
    drop(tx);
    for r in readers {
        r.join().unwrap();
    }
    eprintln!(
        "broadcast to 3 receivers: {MANY} messages in {:?}",
        start.elapsed()
    );
    hygiene(T::ShmBroadcast, &url);
}
