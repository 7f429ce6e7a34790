//! Batches on the shared-memory rings: `Sender::batch` (staged, published together) and
//! `Receiver::recv_batch` (borrowed together), within one process and between processes.

mod common;

use std::time::Duration;

use common::{
    check_message, child_param, fill_message, is_child, serial, spawn_self, unique_name, Rng,
};
use shmring::{mpmc, spsc, Config, Error, Wait};

const SECS: Duration = Duration::from_secs(30);

/// Nothing of a batch is visible before `finish`; everything after it, in order.
#[test]
fn spsc_batch_is_invisible_until_finish() {
    let name = unique_name("batch-invisible");
    let mut tx = spsc::Sender::create(&name, Config::default().capacity(4096)).unwrap();
    let mut rx = spsc::Receiver::open(&name).unwrap();
    let mut batch = tx.batch();
    for i in 0..20u8 {
        batch.push(&[i; 17]).unwrap();
    }
    assert_eq!(batch.len(), 20);
    assert!(matches!(rx.try_recv_batch(64), Err(Error::Empty)));
    assert_eq!(batch.finish(), 20);
    let got = rx.try_recv_batch(64).unwrap();
    assert_eq!(got.len(), 20);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, [i as u8; 17]);
    }
}

/// A dropped batch delivers none of its messages, and the channel goes on.
#[test]
fn dropped_batches_deliver_nothing() {
    for kind in ["spsc", "mpmc"] {
        let name = unique_name(&format!("batch-drop-{kind}"));
        let cfg = Config::default().capacity(64).slot_size(64);
        macro_rules! run {
            ($m:ident) => {{
                let mut tx = $m::Sender::create(&name, cfg).unwrap();
                let mut rx = $m::Receiver::open(&name).unwrap();
                for round in 0..200u8 {
                    let mut batch = tx.batch();
                    batch.push(&[round; 3]).unwrap();
                    let mut slot = batch.reserve(5).unwrap();
                    slot[..5].copy_from_slice(&[round; 5]);
                    slot.commit(5);
                    drop(batch); // given up
                    tx.send(&[round]).unwrap();
                    let mut buf = Vec::new();
                    rx.recv_into_timeout(&mut buf, SECS).unwrap();
                    assert_eq!(buf, [round], "{kind} round {round}");
                    assert!(matches!(rx.try_recv_into(&mut buf), Err(Error::Empty)));
                }
            }};
        }
        if kind == "spsc" {
            run!(spsc)
        } else {
            run!(mpmc)
        }
    }
}

/// A batch larger than the ring: `push` publishes what is staged when the ring is full, so a
/// reader on another thread receives everything, in order; `try_push` says Full instead.
#[test]
fn batch_larger_than_the_ring() {
    let name = unique_name("batch-large");
    let mut tx = spsc::Sender::create(&name, Config::default().capacity(4096)).unwrap();
    let mut rx = spsc::Receiver::open(&name).unwrap();
    {
        let mut batch = tx.batch();
        let mut n = 0;
        while batch.try_push(&[7; 100]).is_ok() {
            n += 1;
        }
        assert!((30..=40).contains(&n), "{n} messages of 100 B in 4 KiB");
        assert!(matches!(batch.try_push(&[7; 100]), Err(Error::Full)));
        assert_eq!(batch.finish(), n);
        let got = rx.recv_batch(usize::MAX).unwrap();
        assert_eq!(got.len(), n);
    }
    let reader = std::thread::spawn(move || {
        let mut seen = 0u32;
        while seen < 10_000 {
            let got = rx.recv_batch_timeout(256, SECS).unwrap();
            for m in got.iter() {
                assert_eq!(m, seen.to_le_bytes());
                seen += 1;
            }
        }
        assert!(matches!(
            rx.recv_batch_timeout(1, SECS),
            Err(Error::Disconnected)
        ));
    });
    let mut batch = tx.batch();
    for i in 0..10_000u32 {
        batch.push(&i.to_le_bytes()).unwrap();
    }
    batch.finish();
    drop(tx);
    reader.join().unwrap();
}

#[test]
fn timeouts_and_empty_max() {
    let name = unique_name("batch-timeout");
    let mut tx = mpmc::Sender::create(&name, Config::default().capacity(4).slot_size(8)).unwrap();
    let mut rx = mpmc::Receiver::open(&name).unwrap();
    assert!(matches!(
        rx.recv_batch_timeout(8, Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    assert!(rx.recv_batch(0).unwrap().is_empty());
    let mut batch = tx.batch();
    for i in 0..4u8 {
        batch.push(&[i]).unwrap();
    }
    // The ring is full of our own staged claims: the timeout form publishes them, then times
    // out waiting for room that only the receiver can free.
    assert!(matches!(
        batch.push_timeout(&[9], Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    assert!(batch.is_empty(), "published on the way");
    drop(batch);
    let got = rx.recv_batch(16).unwrap();
    assert_eq!(got.iter().collect::<Vec<_>>(), [[0u8], [1], [2], [3]]);
    drop(got);
    assert!(matches!(
        tx.batch().push(&[0; 9]),
        Err(Error::TooLarge { size: 9, max: 8 })
    ));
}

/// `count` messages of random sizes, sent in random batch sizes from a child process, received
/// in random batch sizes here: none lost, duplicated, reordered or torn.
fn stream(test: &str, kind: &str, wait: Wait, count: u64) {
    let max_size: u64 = 200;
    if is_child() {
        let name = child_param("NAME").unwrap();
        let mut rng = Rng(42);
        let mut sizes = Rng(7);
        let mut seq = 0;
        macro_rules! send {
            ($m:ident) => {{
                let mut tx = $m::Sender::open(&name).unwrap();
                while seq < count {
                    let n = 1 + sizes.next() % 64;
                    let mut batch = tx.batch();
                    for _ in 0..n.min(count - seq) {
                        let len = (rng.next() % (max_size + 1)) as usize;
                        let mut slot = batch.reserve(len).unwrap();
                        fill_message(seq, &mut slot[..len]);
                        slot.commit(len);
                        seq += 1;
                    }
                    batch.finish();
                }
            }};
        }
        if kind == "spsc" {
            send!(spsc)
        } else {
            send!(mpmc)
        }
        return;
    }
    let _serial = serial();
    let name = unique_name(test);
    let cfg = Config::default()
        .capacity(if kind == "spsc" { 16384 } else { 128 })
        .slot_size(max_size)
        .wait(wait);
    let child_env = [("NAME", name.clone())];
    let mut rng = Rng(42);
    let mut sizes = Rng(99);
    let mut seq = 0;
    macro_rules! recv {
        ($m:ident) => {{
            let mut rx = $m::Receiver::create(&name, cfg).unwrap();
            let child = spawn_self(test, &child_env);
            while seq < count {
                let max = 1 + (sizes.next() % 100) as usize;
                let got = rx.recv_batch_timeout(max, SECS).unwrap();
                assert!(!got.is_empty() && got.len() <= max);
                for m in got.iter() {
                    let len = (rng.next() % (max_size + 1)) as usize;
                    if let Err(e) = check_message(seq, len, m) {
                        panic!("{e}");
                    }
                    seq += 1;
                }
            }
            assert!(matches!(
                rx.recv_batch_timeout(1, SECS),
                Err(Error::Disconnected)
            ));
            child.join(SECS);
        }};
    }
    if kind == "spsc" {
        recv!(spsc)
    } else {
        recv!(mpmc)
    }
}

#[test]
fn spsc_batches_between_processes_spin() {
    stream(
        "spsc_batches_between_processes_spin",
        "spsc",
        Wait::Spin,
        300_000,
    );
}

#[test]
fn spsc_batches_between_processes_futex() {
    stream(
        "spsc_batches_between_processes_futex",
        "spsc",
        Wait::Futex,
        300_000,
    );
}

#[test]
fn mpmc_batches_between_processes_futex() {
    stream(
        "mpmc_batches_between_processes_futex",
        "mpmc",
        Wait::Futex,
        300_000,
    );
}

/// Several producers and consumers, all batching: every message arrives exactly once.
#[test]
fn mpmc_many_batching_producers_and_consumers() {
    let name = unique_name("batch-mpmc-many");
    let cfg = Config::default().capacity(64).slot_size(16);
    let rx0 = mpmc::Receiver::create(&name, cfg).unwrap();
    const PER: u64 = 20_000;
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let mut tx = mpmc::Sender::open(&name).unwrap();
            std::thread::spawn(move || {
                let mut i = 0;
                while i < PER {
                    let mut batch = tx.batch();
                    for _ in 0..(1 + i % 13).min(PER - i) {
                        batch.push(&(p * PER + i).to_le_bytes()).unwrap();
                        i += 1;
                    }
                    batch.finish();
                }
            })
        })
        .collect();
    let mut receivers = vec![rx0];
    for _ in 1..3 {
        receivers.push(mpmc::Receiver::open(&name).unwrap());
    }
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|mut rx| {
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    match rx.recv_batch_timeout(32, Duration::from_millis(500)) {
                        Ok(got) => seen.extend(
                            got.iter()
                                .map(|m| u64::from_le_bytes(m.try_into().unwrap())),
                        ),
                        Err(Error::Timeout) | Err(Error::Disconnected) => return seen,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all.len() as u64, 3 * PER, "none lost, none twice");
    assert!(all.iter().copied().eq(0..3 * PER));
}

/// `writev` batches on a pipe: `try_send_batch` into a pipe that fills up reports how many
/// messages went (one taken in part counts, and its rest goes out first next time); the
/// reader gets every message whole and in order.
#[test]
fn pipe_batches_report_partial_progress_and_lose_nothing() {
    use shmring::channel::{Batch, Receiver as _, Sender as _};
    let (mut tx, mut rx) = shmring::transport::pipe::channel().unwrap();
    let msgs: Vec<Vec<u8>> = (0..400u32)
        .map(|i| {
            let mut m = i.to_le_bytes().to_vec();
            m.resize(997, i as u8);
            m
        })
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    // Without a reader the pipe (64 KiB) takes about 65 of them, the last maybe in part.
    let first = tx.try_send_batch(&refs).unwrap();
    assert!((1..refs.len()).contains(&first), "{first}");
    assert!(matches!(
        tx.try_send_batch(&refs[first..]),
        Err(Error::Full)
    ));
    let reader = std::thread::spawn(move || {
        let mut batch = Batch::new();
        let mut i = 0u32;
        while i < 400 {
            rx.recv_batch_timeout(&mut batch, 64, SECS).unwrap();
            for m in batch.iter() {
                assert_eq!(m.len(), 997);
                assert_eq!(m[..4], i.to_le_bytes(), "message {i}");
                i += 1;
            }
        }
    });
    let mut sent = first;
    while sent < refs.len() {
        sent += tx.send_batch(&refs[sent..]).unwrap();
    }
    drop(tx);
    reader.join().unwrap();
}
