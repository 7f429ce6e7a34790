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

/// The ids of the System V semaphore sets of three semaphores with a private key (as shmring
/// makes them), from /proc/sysvipc/sem.
fn private_sets() -> std::collections::BTreeSet<i64> {
    let table = std::fs::read_to_string("/proc/sysvipc/sem").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"0") && f.get(3) == Some(&"3")).then(|| f[1].parse().unwrap())
        })
        .collect()
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The set lives in the kernel (visible in /proc/sysvipc/sem, as `ipcs -s` shows it) while a
/// handle uses it, and goes with the last handle once the name is gone; a persisting segment's
/// set goes with `inspect::remove` (`shmring rm`).
#[test]
fn the_semaphore_set_is_kernel_held_and_removed_with_the_segment() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("sem-life-{}", std::process::id());
    let before = private_sets();
    let mut tx =
        spsc::Sender::create(&name, Config::default().capacity(256).wait(Wait::Semaphore)).unwrap();
    let new: Vec<i64> = private_sets().difference(&before).copied().collect();
    assert_eq!(new.len(), 1, "one set per segment: {new:?}");
    let mut rx = spsc::Receiver::open(&name).unwrap();
    tx.send(b"x").unwrap();
    drop(tx); // the creator unlinks the name; the receiver still uses the set
    assert!(private_sets().contains(&new[0]));
    assert_eq!(&*rx.recv().unwrap(), b"x");
    assert!(matches!(rx.recv(), Err(Error::Disconnected)));
    drop(rx);
    assert!(
        !private_sets().contains(&new[0]),
        "set {} left behind",
        new[0]
    );

    let cfg = Config::default().wait(Wait::Semaphore).persist(true);
    let before = private_sets();
    drop(spsc::Sender::create(&name, cfg).unwrap());
    let new: Vec<i64> = private_sets().difference(&before).copied().collect();
    assert_eq!(new.len(), 1);
    let rx = spsc::Receiver::open(&name).unwrap(); // persisted: still usable
    drop(rx);
    assert!(
        private_sets().contains(&new[0]),
        "persisting segment keeps its set"
    );
    shmring::inspect::remove(&name).unwrap().unwrap();
    assert!(!private_sets().contains(&new[0]), "rm removes the set");
}

/// A peer that scribbles the set's record in the segment changes nothing for handles already
/// attached (they hold the id they validated), and a new opener gets an error, not an abort.
#[test]
fn a_scribbled_semaphore_record_is_an_error_not_an_abort() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("sem-scribble-{}", std::process::id());
    let mut tx =
        spsc::Sender::create(&name, Config::default().capacity(256).wait(Wait::Semaphore)).unwrap();
    let mut rx = spsc::Receiver::open(&name).unwrap();
    // Scribble everything between the control block and the body (both events).
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap();
    let map = memmap2::MmapOptions::new().len(4096).map_raw(&f).unwrap();
    let ctrl_end = 256 + 256; // past the header and the SPSC control block
    for off in (ctrl_end..4096).step_by(4) {
        // SAFETY: inside the 4 KiB mapping, 4-aligned; written atomically as a hostile peer.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(map.as_mut_ptr().add(off).cast()) }
            .store(0xFFFF_FFFF, std::sync::atomic::Ordering::Relaxed);
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0u32..2000 {
                tx.send(&i.to_le_bytes()).unwrap();
            }
        });
        for i in 0u32..2000 {
            assert_eq!(&*rx.recv().unwrap(), &i.to_le_bytes());
        }
    });
    drop(rx);
    let again = spsc::Receiver::open(&name);
    assert!(
        matches!(again, Err(Error::Incompatible(_))),
        "expected Incompatible, got {again:?}"
    );
}
