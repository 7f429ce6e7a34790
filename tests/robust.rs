//! Extreme arguments and process tricks (issue 13): `Duration::MAX` everywhere, capacities out
//! of range, and liveness across `fork`.

mod common;

use std::time::{Duration, Instant};

use common::unique_name;
use shmring::{mpmc, spsc, Config, Error, Wait};

/// Every wait strategy (the semaphore's sleep takes the slice too).
const WAITS: [Wait; 3] = [Wait::Futex, Wait::Semaphore, Wait::Spin];

#[test]
fn open_timeout_duration_max_opens() {
    let name = unique_name("dmax-open");
    let _tx = spsc::Sender::create(&name, Config::default().capacity(4096)).unwrap();
    let rx = spsc::Receiver::open_with(&name, Config::default().open_timeout(Duration::MAX));
    assert!(rx.is_ok(), "{rx:?}");
    let m = mpmc::Sender::create(&format!("{name}-m"), Config::default()).unwrap();
    let r = mpmc::Receiver::open_with(m.name(), Config::default().open_timeout(Duration::MAX));
    assert!(r.is_ok(), "{r:?}");
}

/// `liveness_interval(Duration::MAX)`, then blocking calls of every form that sleep: no
/// overflow adding the slice to the clock, and the wake still comes.
#[test]
fn liveness_interval_duration_max_then_blocking_calls() {
    for wait in WAITS {
        let name = unique_name("dmax-live");
        let cfg = Config::default()
            .capacity(64)
            .wait(wait)
            .liveness_interval(Duration::MAX);
        let mut tx = spsc::Sender::create(&name, cfg.clone()).unwrap();
        let mut rx = spsc::Receiver::open_with(&name, cfg).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(30));
                tx.send(b"one").unwrap();
                // 48 bytes fill the 64-byte ring: the next send blocks until the receiver reads.
                tx.send(&[7; 48]).unwrap();
                tx.send_timeout(b"three", Duration::MAX).unwrap();
            });
            let t = Instant::now();
            assert_eq!(&*rx.recv().unwrap(), b"one", "{wait:?}");
            assert!(t.elapsed() >= Duration::from_millis(20));
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(rx.recv_timeout(Duration::MAX).unwrap().len(), 48);
            let mut buf = Vec::new();
            rx.recv_into_timeout(&mut buf, Duration::MAX).unwrap();
            assert_eq!(buf, b"three");
        });
        // A short timeout still times out with the endless slice.
        assert!(matches!(
            rx.recv_timeout(Duration::from_millis(5)),
            Err(Error::Timeout | Error::Disconnected)
        ));
    }
}

#[test]
fn mpmc_duration_max_forms() {
    for wait in WAITS {
        let name = unique_name("dmax-mpmc");
        let cfg = Config::default()
            .capacity(2)
            .slot_size(16)
            .wait(wait)
            .liveness_interval(Duration::MAX);
        let mut tx = mpmc::Sender::create(&name, cfg.clone()).unwrap();
        let mut rx = mpmc::Receiver::open_with(&name, cfg).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0u8..6 {
                    tx.send_timeout(&[i; 16], Duration::MAX).unwrap();
                }
            });
            std::thread::sleep(Duration::from_millis(20));
            for i in 0u8..6 {
                assert_eq!(&*rx.recv_timeout(Duration::MAX).unwrap(), &[i; 16]);
            }
        });
    }
}

fn invalid<T: std::fmt::Debug>(r: shmring::Result<T>) -> String {
    match r {
        Err(Error::InvalidConfig(msg)) => msg,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// Out-of-range capacities, slot sizes and peer maxima fail at create, with the range in the
/// message, and leave no segment behind.
#[test]
fn out_of_range_configs_fail_at_create() {
    let name = unique_name("range");
    let path = format!("/dev/shm/{name}");
    for cap in [0, 1, 63, 1 << 40, u64::MAX] {
        let msg = invalid(spsc::Sender::create(&name, Config::default().capacity(cap)));
        assert!(msg.contains("64..="), "{msg}");
        assert!(std::fs::symlink_metadata(&path).is_err(), "left {path}");
    }
    for cap in [0, 1, 1 << 40] {
        let msg = invalid(mpmc::Sender::create(&name, Config::default().capacity(cap)));
        assert!(msg.contains("2..="), "{msg}");
    }
    for size in [0, (1 << 24) + 1] {
        let msg = invalid(mpmc::Receiver::create(
            &name,
            Config::default().slot_size(size),
        ));
        assert!(msg.contains("slot size"), "{msg}");
    }
    for (s, r) in [(0, 4), (4, 0), (1025, 4), (4, 5000)] {
        let cfg = Config::default().max_senders(s).max_receivers(r);
        let msg = invalid(mpmc::Sender::create(&name, cfg));
        assert!(msg.contains("1..=1024"), "{msg}");
    }
    assert!(std::fs::symlink_metadata(&path).is_err(), "left {path}");
    // In range: rounded up, never clamped.
    let tx = spsc::Sender::create(&name, Config::default().capacity(100)).unwrap();
    assert_eq!(tx.max_message_size(), 128 - 16);
    drop(tx);
    let tx = mpmc::Sender::create(&name, Config::default().capacity(3).max_senders(1024)).unwrap();
    drop(tx);
    // The anonymous constructors check the same way.
    invalid(spsc::Sender::create_anonymous(
        Config::default().capacity(0),
    ));
    invalid(mpmc::Sender::create_anonymous(
        Config::default().max_receivers(0),
    ));
}
