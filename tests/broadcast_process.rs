//! The broadcast channel between real processes (this test binary re-executed as children):
//! several reader processes each see every message in order (`Block`), or every message they
//! return intact and in order with each skip reported by `Lagged` (`Overwrite`); a SIGKILLed
//! reader does not stall a `Block` writer; a SIGKILLed writer's readers drain, then get
//! `PeerDead`.

mod common;

use std::time::{Duration, Instant};

use common::{check_message, child_param, fill_message, is_child, serial, spawn_self, unique_name};
use shmring::broadcast::{self, Overflow};
use shmring::{Config, Error};

const MAX_SIZE: u64 = 256;

/// Message `seq`'s length: at least 16, so that it carries its sequence number and checksum.
fn len_of(seq: u64) -> usize {
    (16 + seq.wrapping_mul(7919) % (MAX_SIZE - 15)) as usize
}

fn send_seq(tx: &mut broadcast::Sender, seq: u64) -> Result<(), Error> {
    let len = len_of(seq);
    let mut slot = tx.reserve(len)?;
    fill_message(seq, &mut slot[..len]);
    slot.commit(len);
    Ok(())
}

/// Waits until `n` receivers are attached.
fn wait_for_receivers(tx: &broadcast::Sender, n: u32) {
    let start = Instant::now();
    while tx.peers().1 < n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "only {} of {n} reader processes attached",
            tx.peers().1
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A reader process: receives until `Disconnected`; checks every message (intact, in order)
/// and, in `Overwrite` mode, that what it skipped is what `Lagged` reported. With `SLOW` set it
/// sleeps now and then, so the writer laps it (`Overwrite`) or waits for it (`Block`).
fn reader_child() {
    let name = child_param("NAME").unwrap();
    let count: u64 = child_param("COUNT").unwrap().parse().unwrap();
    let slow = child_param("SLOW").is_some();
    let mut rx = broadcast::Receiver::open(&name).unwrap();
    let (mut next, mut got, mut lost, mut lags) = (0u64, 0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    loop {
        if slow && got % 500 == 499 {
            std::thread::sleep(Duration::from_millis(2));
        }
        // Zero-copy guards and copies in turn.
        let r = if got % 2 == 0 {
            rx.recv_timeout(Duration::from_secs(30)).map(|m| {
                buf.clear();
                buf.extend_from_slice(&m);
            })
        } else {
            rx.recv_into_timeout(&mut buf, Duration::from_secs(30))
                .map(|_| ())
        };
        match r {
            Ok(()) => {
                if let Err(e) = check_message(next, len_of(next), &buf) {
                    panic!("reader: {e} (after {got} received, {lost} lost)");
                }
                next += 1;
                got += 1;
            }
            Err(Error::Lagged { missed }) => {
                assert!(missed > 0);
                next += missed;
                lost += missed;
                lags += 1;
            }
            Err(Error::Disconnected) => break,
            Err(e) => panic!("reader: {e} at {next}"),
        }
    }
    assert_eq!(next, count, "every message received or reported lost");
    assert_eq!(got + lost, count);
    if child_param("EXPECT_LAG").is_some() {
        assert!(lost > 0, "a slow reader was never lapped");
        assert!(got > 0);
    } else if child_param("EXPECT_ALL").is_some() {
        assert_eq!(lost, 0, "Block mode lost messages");
    }
    eprintln!("reader: {got} received, {lost} lost in {lags} lags");
}

fn fan_out(test: &str, policy: Overflow, count: u64) {
    if is_child() {
        return reader_child();
    }
    let _serial = serial();
    let name = unique_name(test);
    let cfg = Config::default()
        .capacity(64)
        .slot_size(MAX_SIZE)
        .overflow(policy);
    let mut tx = broadcast::Sender::create(&name, cfg).unwrap();
    let mut params = vec![("NAME", name.clone()), ("COUNT", count.to_string())];
    if policy == Overflow::Block {
        params.push(("EXPECT_ALL", "1".into()));
    }
    let mut children: Vec<_> = (0..3).map(|_| spawn_self(test, &params)).collect();
    let mut slow = params.clone();
    slow.push(("SLOW", "1".into()));
    if policy == Overflow::Overwrite {
        slow.push(("EXPECT_LAG", "1".into()));
    }
    children.push(spawn_self(test, &slow));
    wait_for_receivers(&tx, 4);
    for seq in 0..count {
        send_seq(&mut tx, seq).unwrap();
    }
    drop(tx);
    for c in children {
        c.join(Duration::from_secs(120));
    }
}

#[test]
fn block_every_reader_process_sees_every_message_in_order() {
    fan_out(
        "block_every_reader_process_sees_every_message_in_order",
        Overflow::Block,
        200_000,
    );
}

#[test]
fn overwrite_reader_processes_get_intact_messages_and_account_for_every_skip() {
    fan_out(
        "overwrite_reader_processes_get_intact_messages_and_account_for_every_skip",
        Overflow::Overwrite,
        500_000,
    );
}

/// A `Block` writer, two reader processes: one reads everything, the other holds a zero-copy
/// guard and stops reading, and is SIGKILLed while the writer waits for it. The writer goes on
/// (the dead reader is detached within the liveness interval) and the live reader sees every
/// message.
#[test]
fn a_killed_reader_does_not_stall_a_block_writer() {
    const TEST: &str = "a_killed_reader_does_not_stall_a_block_writer";
    if is_child() {
        if child_param("STALL").is_some() {
            let name = child_param("NAME").unwrap();
            let mut rx = broadcast::Receiver::open(&name).unwrap();
            let _held = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            std::thread::sleep(Duration::from_secs(600)); // until killed
            return;
        }
        return reader_child();
    }
    let _serial = serial();
    let name = unique_name("bcast-kill-reader");
    let count = 50_000u64;
    let cfg = Config::default()
        .capacity(32)
        .slot_size(MAX_SIZE)
        .liveness_interval(Duration::from_millis(10));
    let mut tx = broadcast::Sender::create(&name, cfg).unwrap();
    let base = vec![("NAME", name.clone()), ("COUNT", count.to_string())];
    let live = spawn_self(TEST, &base);
    let mut stall = base.clone();
    stall.push(("STALL", "1".into()));
    let victim = spawn_self(TEST, &stall);
    wait_for_receivers(&tx, 2);
    // The victim holds message 0 (its cursor stays there): the writer can send one ring of
    // messages (0..32), then waits for it, until it is killed and detached.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = sent.clone();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let at_kill = seen.load(std::sync::atomic::Ordering::SeqCst);
        victim.kill();
        at_kill
    });
    let start = Instant::now();
    for seq in 0..count {
        send_seq(&mut tx, seq).unwrap();
        sent.store(seq + 1, std::sync::atomic::Ordering::SeqCst);
    }
    let took = start.elapsed();
    let at_kill = killer.join().unwrap();
    assert_eq!(at_kill, 32, "the writer waited for the stalled reader");
    // Not a speed figure: a bound far above the liveness interval, so that a writer stalled on
    // the dead reader for ever fails here instead of hanging the suite.
    assert!(took < Duration::from_secs(20), "writer took {took:?}");
    assert_eq!(tx.peers().1, 1, "the dead reader was detached");
    drop(tx);
    live.join(Duration::from_secs(60));
}

/// A writer process sends, then is SIGKILLed: every reader drains what it sent, then gets
/// `PeerDead`.
#[test]
fn readers_of_a_killed_writer_drain_then_peer_dead() {
    const TEST: &str = "readers_of_a_killed_writer_drain_then_peer_dead";
    if is_child() {
        let name = child_param("NAME").unwrap();
        let count: u64 = child_param("COUNT").unwrap().parse().unwrap();
        let mut tx = broadcast::Sender::open(&name).unwrap();
        for seq in 0..count {
            send_seq(&mut tx, seq).unwrap();
        }
        std::fs::write(child_param("DONE").unwrap(), b"sent").unwrap();
        std::thread::sleep(Duration::from_secs(600)); // until killed
        return;
    }
    let _serial = serial();
    let name = unique_name("bcast-kill-writer");
    let done = std::env::temp_dir().join(format!("{name}.done"));
    let count = 500u64;
    let cfg = Config::default()
        .capacity(1024)
        .slot_size(MAX_SIZE)
        .liveness_interval(Duration::from_millis(10));
    let mut a = broadcast::Receiver::create(&name, cfg).unwrap();
    let mut b = broadcast::Receiver::open(&name).unwrap();
    let writer = spawn_self(
        TEST,
        &[
            ("NAME", name.clone()),
            ("COUNT", count.to_string()),
            ("DONE", done.display().to_string()),
        ],
    );
    let start = Instant::now();
    while !done.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "writer never finished"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    writer.kill();
    std::fs::remove_file(&done).unwrap();
    for rx in [&mut a, &mut b] {
        for seq in 0..count {
            let m = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            if let Err(e) = check_message(seq, len_of(seq), &m) {
                panic!("{e}");
            }
        }
        match rx.recv_timeout(Duration::from_secs(10)) {
            Err(Error::PeerDead) => {}
            other => panic!("expected PeerDead after the drain, got {:?}", other.err()),
        }
    }
}
