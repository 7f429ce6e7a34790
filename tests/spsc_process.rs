//! The SPSC channel between two real processes: the child is this test binary re-executed.

mod common;

use std::time::Duration;

use common::{
    check_message, child_param, fill_message, is_child, serial, spawn_self, unique_name, Rng,
};
use shmring::{spsc, Config, Error, Wait};

const MAX_SIZE: u64 = 4096;

/// Streams `count` messages of random sizes 0..=4 KiB from a child sender to this receiver and
/// checks every one: none lost, duplicated, reordered or torn.
fn stream(test: &str, wait: Wait, capacity: u64, count: u64, max_size: u64) {
    if is_child() {
        let name = child_param("NAME").unwrap();
        let count: u64 = child_param("COUNT").unwrap().parse().unwrap();
        let max_size: u64 = child_param("MAX").unwrap().parse().unwrap();
        let mut tx = spsc::Sender::open(&name).unwrap();
        let mut rng = Rng(42);
        for seq in 0..count {
            let len = (rng.next() % (max_size + 1)) as usize;
            let mut slot = tx.reserve(len).unwrap();
            fill_message(seq, &mut slot[..len]);
            slot.commit(len);
        }
        return;
    }
    let _serial = serial();
    let name = unique_name(test);
    let mut rx =
        spsc::Receiver::create(&name, Config::default().capacity(capacity).wait(wait)).unwrap();
    let child = spawn_self(
        test,
        &[
            ("NAME", name.clone()),
            ("COUNT", count.to_string()),
            ("MAX", max_size.to_string()),
        ],
    );
    let mut rng = Rng(42);
    for seq in 0..count {
        let len = (rng.next() % (max_size + 1)) as usize;
        let msg = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        if let Err(e) = check_message(seq, len, &msg) {
            panic!("{e}");
        }
    }
    // The sender exited cleanly after its last message: drained, then Disconnected.
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(30)),
        Err(Error::Disconnected)
    ));
    child.join(Duration::from_secs(30));
}

#[test]
fn ten_million_random_messages_spin() {
    stream(
        "ten_million_random_messages_spin",
        Wait::Spin,
        1 << 20,
        10_000_000,
        MAX_SIZE,
    );
}

#[test]
fn ten_million_random_messages_futex() {
    stream(
        "ten_million_random_messages_futex",
        Wait::Futex,
        1 << 20,
        10_000_000,
        MAX_SIZE,
    );
}

/// A ring barely larger than the messages: nearly every message wraps, and both sides sleep
/// on the futex all the time.
#[test]
fn wrap_around_at_tiny_capacity_futex() {
    stream(
        "wrap_around_at_tiny_capacity_futex",
        Wait::Futex,
        128,
        300_000,
        112,
    );
}

#[test]
fn wrap_around_at_tiny_capacity_spin() {
    stream(
        "wrap_around_at_tiny_capacity_spin",
        Wait::Spin,
        64,
        300_000,
        48,
    );
}

/// 10 million blocking round trips (futex wait): a lost wakeup would hang it, and the
/// per-message timeout turns a hang into a failure.
#[test]
fn ping_pong_ten_million_round_trips_futex() {
    const TEST: &str = "ping_pong_ten_million_round_trips_futex";
    if is_child() {
        let ping = child_param("PING").unwrap();
        let pong = child_param("PONG").unwrap();
        let mut rx = spsc::Receiver::open(&ping).unwrap();
        let mut tx = spsc::Sender::open(&pong).unwrap();
        loop {
            let v = match rx.recv_pod::<u64>() {
                Ok(v) => v,
                Err(Error::Disconnected) => return,
                Err(e) => panic!("{e}"),
            };
            tx.send_pod(&(v + 1)).unwrap();
        }
    }
    let _serial = serial();
    let (ping, pong) = (unique_name("ping"), unique_name("pong"));
    let cfg = Config::default().capacity(4096).wait(Wait::Futex);
    let mut tx = spsc::Sender::create(&ping, cfg.clone()).unwrap();
    let mut rx = spsc::Receiver::create(&pong, cfg).unwrap();
    let child = spawn_self(TEST, &[("PING", ping), ("PONG", pong)]);
    for i in 0..10_000_000u64 {
        tx.send_pod(&i).unwrap();
        let back: u64 = rx.recv_pod_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(back, i + 1);
    }
    drop(tx);
    child.join(Duration::from_secs(30));
}

/// Messages at and just under the largest size, across processes; one byte more is TooLarge.
#[test]
fn sizes_at_and_under_capacity() {
    const TEST: &str = "sizes_at_and_under_capacity";
    let sizes = [4080usize, 4079, 4073, 4072, 0, 1, 4080, 2000, 4080];
    if is_child() {
        let mut tx = spsc::Sender::open(&child_param("NAME").unwrap()).unwrap();
        assert_eq!(tx.max_message_size(), 4080);
        match tx.try_send(&[0; 4081]) {
            Err(Error::TooLarge {
                size: 4081,
                max: 4080,
            }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        for (i, &len) in sizes.iter().enumerate() {
            let mut msg = vec![0u8; len];
            fill_message(i as u64, &mut msg);
            tx.send(&msg).unwrap();
        }
        return;
    }
    let _serial = serial();
    let name = unique_name("sizes");
    let mut rx = spsc::Receiver::create(&name, Config::default().capacity(4096)).unwrap();
    let child = spawn_self(TEST, &[("NAME", name)]);
    let mut buf = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        let n = rx
            .recv_into_timeout(&mut buf, Duration::from_secs(30))
            .unwrap();
        assert_eq!(n, len);
        check_message(i as u64, len, &buf).unwrap();
    }
    child.join(Duration::from_secs(30));
}

/// The receiver goes away: the sender's next send fails with Disconnected, not a hang.
#[test]
fn receiver_drop_disconnects_sender() {
    const TEST: &str = "receiver_drop_disconnects_sender";
    if is_child() {
        let mut rx = spsc::Receiver::open(&child_param("NAME").unwrap()).unwrap();
        assert_eq!(&*rx.recv().unwrap(), b"one");
        return; // drops the receiver
    }
    let _serial = serial();
    let name = unique_name("rxdrop");
    let mut tx = spsc::Sender::create(&name, Config::default().capacity(4096)).unwrap();
    let child = spawn_self(TEST, &[("NAME", name)]);
    tx.send(b"one").unwrap();
    child.join(Duration::from_secs(30));
    // The ring has room for many messages: only the close can stop these.
    let mut result = Ok(());
    for _ in 0..1000 {
        result = tx.send_timeout(b"more", Duration::from_secs(5));
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(Error::Disconnected)), "{result:?}");
}

/// The sender is SIGKILLed: its committed messages are delivered, then PeerDead, in bounded time.
#[test]
fn killed_sender_is_peer_dead_after_drain() {
    const TEST: &str = "killed_sender_is_peer_dead_after_drain";
    if is_child() {
        let mut tx = spsc::Sender::open(&child_param("NAME").unwrap()).unwrap();
        for i in 0..10u64 {
            tx.send_pod(&i).unwrap();
        }
        std::thread::sleep(Duration::from_secs(60)); // killed long before
        return;
    }
    let _serial = serial();
    let name = unique_name("killed");
    let mut rx = spsc::Receiver::create(&name, Config::default().capacity(4096)).unwrap();
    let child = spawn_self(TEST, &[("NAME", name)]);
    for i in 0..10u64 {
        assert_eq!(
            rx.recv_pod_timeout::<u64>(Duration::from_secs(30)).unwrap(),
            i
        );
    }
    child.kill();
    let start = std::time::Instant::now();
    match rx.recv_timeout(Duration::from_secs(10)) {
        Err(Error::PeerDead) => {}
        other => panic!("expected PeerDead, got {:?}", other.map(|m| m.to_vec())),
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
}
