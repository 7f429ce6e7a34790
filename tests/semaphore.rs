//! The SPSC channel with `Wait::Semaphore`: the same blocking behaviour as with the futex.

use std::time::Duration;

use shmring::{spsc, Config, Error, Wait};

#[test]
fn spsc_blocks_both_ways_with_each_wait() {
    for wait in [Wait::Futex, Wait::Semaphore] {
        let name = format!("sem-spsc-{wait:?}-{}", std::process::id());
        // 256 bytes: a few messages fill it, so both sides sleep often.
        let mut tx =
            spsc::Sender::create(&name, Config::default().capacity(256).wait(wait)).unwrap();
        let mut rx = spsc::Receiver::open(&name).unwrap();
        assert_eq!(tx.wait_strategy(), wait);
        const N: u32 = 100_000;
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..N {
                    tx.send(&i.to_le_bytes()[..(i % 4 + 1) as usize]).unwrap();
                }
            });
            for i in 0..N {
                let m = rx.recv().unwrap();
                assert_eq!(&*m, &i.to_le_bytes()[..(i % 4 + 1) as usize]);
            }
            assert!(matches!(rx.recv(), Err(Error::Disconnected)));
        });
    }
}

#[test]
fn spsc_semaphore_timeouts() {
    let name = format!("sem-spsc-timeout-{}", std::process::id());
    let mut tx =
        spsc::Sender::create(&name, Config::default().capacity(64).wait(Wait::Semaphore)).unwrap();
    let mut rx = spsc::Receiver::open(&name).unwrap();
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(Error::Timeout)
    ));
    tx.send(&[0; 48]).unwrap(); // the largest message of a 64-byte ring
    assert!(matches!(
        tx.send_timeout(&[0; 8], Duration::from_millis(5)),
        Err(Error::Timeout)
    ));
}

/// Blocking ping-pong between two threads over two SPSC channels, futex beside semaphore (a
/// quick figure, not a benchmark):
/// `cargo test --test semaphore -- --ignored --nocapture pingpong`.
#[test]
#[ignore]
fn pingpong_futex_vs_semaphore() {
    const ROUNDS: u32 = 20_000;
    for wait in [Wait::Futex, Wait::Semaphore, Wait::Futex, Wait::Semaphore] {
        let mut times = Vec::new();
        for run in 0..3 {
            let ping = format!("pp-ping-{wait:?}-{run}-{}", std::process::id());
            let pong = format!("pp-pong-{wait:?}-{run}-{}", std::process::id());
            let cfg = Config::default().capacity(4096).wait(wait);
            let mut a_tx = spsc::Sender::create(&ping, cfg.clone()).unwrap();
            let mut b_rx = spsc::Receiver::open(&ping).unwrap();
            let mut b_tx = spsc::Sender::create(&pong, cfg).unwrap();
            let mut a_rx = spsc::Receiver::open(&pong).unwrap();
            let t = std::time::Instant::now();
            std::thread::scope(|s| {
                s.spawn(move || {
                    for _ in 0..ROUNDS {
                        let m = b_rx.recv().unwrap().to_vec();
                        b_tx.send(&m).unwrap();
                    }
                });
                for i in 0..ROUNDS {
                    a_tx.send(&i.to_le_bytes()).unwrap();
                    assert_eq!(a_rx.recv().unwrap().len(), 4);
                }
            });
            times.push(t.elapsed().as_nanos() as f64 / f64::from(ROUNDS));
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        eprintln!(
            "ping-pong {wait:?}: median {:.0} ns per round trip ({times:.0?})",
            times[1]
        );
    }
}
