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
