//! The blocking WaitSet: 1000 channels, random ones become ready.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{unique_name, Rng};
use shmring::waitset::Ready;
use shmring::{spsc, Config, Error, WaitSet};

#[test]
fn a_thousand_channels_random_ones_ready() {
    const CHANNELS: usize = 1000;
    const ROUNDS: usize = 200;
    let cfg = Config::default().capacity(4096);
    let mut set = WaitSet::new().unwrap();
    let mut senders = Vec::new();
    for i in 0..CHANNELS {
        let name = unique_name(&format!("ws{i}"));
        senders.push(spsc::Sender::create(&name, cfg.clone()).unwrap());
        let key = set.insert(spsc::Receiver::open(&name).unwrap()).unwrap();
        assert_eq!(key, i);
    }
    let mut ready = Vec::new();
    // The insertion report: all of them, nothing to read.
    set.wait(Some(Duration::ZERO), &mut ready).unwrap();
    assert_eq!(ready.len(), CHANNELS);
    for r in &ready {
        assert!(matches!(
            set.get_mut(r.key).unwrap().try_recv(),
            Err(Error::Empty)
        ));
    }

    let (go_tx, go_rx) = std::sync::mpsc::channel::<Vec<usize>>();
    let producer = std::thread::spawn(move || {
        for picks in go_rx {
            for (n, i) in picks.into_iter().enumerate() {
                senders[i].send(&(n as u64).to_le_bytes()).unwrap();
            }
        }
        senders
    });
    let mut rng = Rng(99);
    let mut buf = Vec::new();
    for _ in 0..ROUNDS {
        let k = 1 + (rng.next() % 8) as usize;
        let picks: BTreeSet<usize> = (0..k).map(|_| (rng.next() as usize) % CHANNELS).collect();
        go_tx.send(picks.iter().copied().collect()).unwrap();
        let mut got = BTreeSet::new();
        let end = Instant::now() + Duration::from_secs(10);
        while got.len() < picks.len() {
            assert!(
                Instant::now() < end,
                "lost wakeup: got {got:?} of {picks:?}"
            );
            set.wait(Some(Duration::from_secs(1)), &mut ready).unwrap();
            for &Ready { key, peer_dead } in &ready {
                assert!(!peer_dead);
                let rx = set.get_mut(key).unwrap();
                loop {
                    match rx.try_recv_into(&mut buf) {
                        Ok(_) => {
                            assert!(picks.contains(&key), "message on unpicked {key}");
                            assert!(got.insert(key), "two messages on {key}");
                        }
                        Err(Error::Empty) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
    }
    drop(go_tx);
    let mut senders = producer.join().unwrap();
    // Close rings too: the closed channel is reported and says Disconnected.
    drop(senders.remove(500));
    set.wait(Some(Duration::ZERO), &mut ready).unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while !ready.iter().any(|r| r.key == 500) {
        assert!(Instant::now() < end, "close did not ring");
        set.wait(Some(Duration::from_secs(1)), &mut ready).unwrap();
    }
    assert!(matches!(
        set.get_mut(500).unwrap().try_recv(),
        Err(Error::Disconnected)
    ));
    let rx = set.remove(500).unwrap();
    assert!(!rx.is_armed());
    assert_eq!(set.len(), CHANNELS - 1);
}

#[test]
fn a_spin_ring_is_refused() {
    let name = unique_name("ws-spin");
    let _tx = spsc::Sender::create(&name, Config::default().wait(shmring::Wait::Spin)).unwrap();
    let mut set = WaitSet::new().unwrap();
    let rx = spsc::Receiver::open(&name).unwrap();
    assert!(matches!(set.insert(rx), Err(Error::Incompatible(_))));
    assert!(set.is_empty());
}
