//! Opening segments that are missing, foreign, of another version, or taken; and a reader over
//! a live segment whose control words are scribbled on.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{unique_name, Rng};
use shmring::segment::{Segment, HEADER_LEN};
use shmring::{spsc, Config, Error};

fn shm_path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

#[test]
fn open_of_a_missing_name_is_not_found() {
    let err = spsc::Receiver::open(&unique_name("missing")).unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains("shm_open"), "{err}");
}

#[test]
fn invalid_names_are_rejected_before_any_system_call() {
    for bad in ["", "/", "a/b", "/a/b", &"x".repeat(300)] {
        match spsc::Sender::create(bad, Config::default()) {
            Err(Error::InvalidName { .. }) => {}
            other => panic!("{bad:?}: expected InvalidName, got {other:?}"),
        }
    }
}

#[test]
fn open_of_a_non_shmring_file_is_incompatible() {
    let name = unique_name("foreign");
    std::fs::write(shm_path(&name), vec![0xAB; 8192]).unwrap();
    let err = spsc::Receiver::open(&name).unwrap_err();
    std::fs::remove_file(shm_path(&name)).unwrap();
    assert!(
        matches!(&err, Error::Incompatible(m) if m.contains("not a shmring segment")),
        "{err}"
    );
}

#[test]
fn open_of_a_short_file_is_incompatible_after_the_bounded_wait() {
    let name = unique_name("short");
    std::fs::write(shm_path(&name), b"tiny").unwrap();
    let cfg = Config::default().open_timeout(Duration::from_millis(50));
    let err = spsc::Receiver::open_with(&name, cfg).unwrap_err();
    std::fs::remove_file(shm_path(&name)).unwrap();
    assert!(
        matches!(&err, Error::Incompatible(m) if m.contains("too short")),
        "{err}"
    );
}

#[test]
fn open_of_a_wrong_version_is_incompatible() {
    let name = unique_name("version");
    let _tx = spsc::Sender::create(&name, Config::default().capacity(4096)).unwrap();
    // The version is the u32 right after the 8-byte magic.
    let mut bytes = std::fs::read(shm_path(&name)).unwrap();
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(shm_path(&name), &bytes).unwrap();
    let err = spsc::Receiver::open(&name).unwrap_err();
    assert!(
        matches!(&err, Error::Incompatible(m) if m.contains("version 99")),
        "{err}"
    );
}

/// The header's flags word: the u32 after the creator's pid (offset 60).
const FLAGS: std::ops::Range<usize> = 60..64;

fn header_flags(name: &str) -> u32 {
    let bytes = std::fs::read(shm_path(name)).unwrap();
    u32::from_le_bytes(bytes[FLAGS].try_into().unwrap())
}

/// Whether this process can register for membarrier(GLOBAL_EXPEDITED) (QUERY lists it).
fn membarrier_offered() -> bool {
    // SAFETY: MEMBARRIER_CMD_QUERY (0) takes no pointers and only returns a bit mask.
    let mask = unsafe { libc::syscall(libc::SYS_membarrier, 0, 0, 0) };
    mask >= 0 && mask & 0b110 == 0b110
}

#[test]
fn a_futex_channel_pairs_its_wakeups_with_membarrier_unless_told_not_to() {
    let on = unique_name("mb-on");
    let off = unique_name("mb-off");
    let spin = unique_name("mb-spin");
    let cfg = Config::default().capacity(4096);
    let tx_on = spsc::Sender::create(&on, cfg.clone()).unwrap();
    let tx_off = spsc::Sender::create(&off, cfg.clone().membarrier(false)).unwrap();
    let _spin = spsc::Sender::create(&spin, cfg.wait(shmring::Wait::Spin)).unwrap();
    assert_eq!(header_flags(&on), u32::from(membarrier_offered()));
    assert_eq!(header_flags(&off), 0);
    assert_eq!(header_flags(&spin), 0, "a spinning channel never sleeps");
    // Both pairings open and wake a receiver that went to sleep: the sender waits until the
    // receiver has slept (its spin budget is spent within milliseconds), then sends.
    for (name, mut tx) in [(&on, tx_on), (&off, tx_off)] {
        let mut rx = spsc::Receiver::open(name).unwrap();
        let sender = std::thread::spawn(move || {
            for i in 0..20u8 {
                std::thread::sleep(Duration::from_millis(5));
                tx.send(&[i; 16]).unwrap();
            }
        });
        for i in 0..20u8 {
            let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(&got[..], &[i; 16], "{name}");
        }
        sender.join().unwrap();
    }
}

#[test]
fn unknown_header_flags_are_corrupted() {
    let name = unique_name("flags");
    let _tx = spsc::Sender::create(&name, Config::default().capacity(4096)).unwrap();
    let mut bytes = std::fs::read(shm_path(&name)).unwrap();
    let flags = u32::from_le_bytes(bytes[FLAGS].try_into().unwrap());
    bytes[FLAGS].copy_from_slice(&(flags | 0x8000_0000).to_le_bytes());
    std::fs::write(shm_path(&name), &bytes).unwrap();
    let err = spsc::Receiver::open(&name).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupted(m) if m.contains("flags")),
        "{err}"
    );
}

#[test]
fn a_second_create_of_a_live_name_fails_clearly() {
    let name = unique_name("twice");
    let _tx = spsc::Sender::create(&name, Config::default()).unwrap();
    let err = spsc::Receiver::create(&name, Config::default()).unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::AlreadyExists), "{err}");
    assert!(err.to_string().contains("exists"), "{err}");
}

#[test]
fn a_second_live_sender_is_refused() {
    let name = unique_name("inuse");
    let _tx = spsc::Sender::create(&name, Config::default()).unwrap();
    match spsc::Sender::open(&name) {
        Err(Error::InUse { side: "sender", .. }) => {}
        other => panic!("expected InUse, got {other:?}"),
    }
}

#[test]
fn creator_unlinks_on_drop_unless_persist() {
    let name = unique_name("unlink");
    drop(spsc::Sender::create(&name, Config::default()).unwrap());
    assert!(!std::path::Path::new(&shm_path(&name)).exists());
    drop(spsc::Sender::create(&name, Config::default().persist(true)).unwrap());
    assert!(std::path::Path::new(&shm_path(&name)).exists());
    Segment::unlink(&name).unwrap();
}

#[test]
fn segment_is_private_to_its_user_by_default() {
    use std::os::unix::fs::PermissionsExt;
    let name = unique_name("mode");
    let _tx = spsc::Sender::create(&name, Config::default()).unwrap();
    let mode = std::fs::metadata(shm_path(&name))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Scribbles random values over the ring positions and frame headers of a live segment, through
/// a second mapping of the file: every receive is Ok with in-bounds data or Err(Corrupted)
/// (Empty/Disconnected when the scribble happens to look like that); the sender likewise.
#[test]
fn scribbled_live_segment_yields_only_in_bounds_data_or_corrupted() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let cap = 4096u64;
    let mut rng = Rng(7);
    let mut seen_corrupted = 0;
    for round in 0..300 {
        let name = unique_name("scribble");
        let mut tx = spsc::Sender::create(&name, Config::default().capacity(cap)).unwrap();
        let mut rx = spsc::Receiver::open(&name).unwrap();
        for i in 0..(round % 20) {
            tx.try_send(&vec![i as u8; (rng.next() % 300) as usize])
                .ok();
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(shm_path(&name))
            .unwrap();
        let map = memmap2::MmapOptions::new().map_raw(&file).unwrap();
        let len = map.len();
        let data_off = len - cap as usize;
        let word = |off: usize| {
            // SAFETY: `off` is 8-aligned and inside the mapping; all access to these words is
            // atomic on both sides.
            unsafe { AtomicU64::from_ptr(map.as_mut_ptr().add(off).cast()) }
        };
        for _ in 0..(1 + rng.next() % 4) {
            let off = match rng.next() % 4 {
                // The header of the next frame the receiver reads.
                0 => data_off,
                // The tail and head positions: the first words after the header, a line apart.
                1 => HEADER_LEN,
                2 => HEADER_LEN + 128,
                // Any word of the data.
                _ => data_off + ((rng.next() % (cap / 8)) * 8) as usize,
            };
            let value = match rng.next() % 4 {
                0 => rng.next(),
                1 => (0x5348_4D46u64 << 32) | (rng.next() % 5000),
                2 => 0x5348_4D57u64 << 32,
                _ => (rng.next() % 1024) * 8,
            };
            word(off).store(value, Ordering::Relaxed);
        }
        let mut buf = Vec::new();
        for _ in 0..30 {
            match rx.try_recv_into(&mut buf) {
                Ok(n) => assert!(n as u64 <= cap - 16 && buf.len() == n),
                Err(Error::Corrupted(_)) => {
                    seen_corrupted += 1;
                    break;
                }
                Err(Error::Empty | Error::Disconnected) => break,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        // The sender validates the receiver's position before it trusts it.
        match tx.try_send(&[1; 100]) {
            Ok(()) | Err(Error::Full | Error::Corrupted(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
        drop(map);
    }
    assert!(
        seen_corrupted > 30,
        "scribbles were rarely detected: {seen_corrupted}"
    );
}

/// Another process scribbles over the ring control block and frame headers of a live segment
/// while this one sends and receives 10 million times: every call is Ok (with in-bounds data),
/// Corrupted, or an ordinary Empty/Full/Disconnected; nothing panics, hangs or faults.
#[test]
fn racing_writer_in_another_process_never_breaks_the_reader() {
    const TEST: &str = "racing_writer_in_another_process_never_breaks_the_reader";
    let cap = 4096u64;
    if common::is_child() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let path = shm_path(&common::child_param("NAME").unwrap());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let map = memmap2::MmapOptions::new().map_raw(&file).unwrap();
        let data_off = map.len() - cap as usize;
        let mut rng = Rng(11);
        loop {
            let off = match rng.next() % 4 {
                0 => HEADER_LEN + ((rng.next() % 48) * 8) as usize, // control block and events
                _ => data_off + ((rng.next() % (cap / 8)) * 8) as usize,
            };
            let value = match rng.next() % 4 {
                0 => rng.next(),
                1 => (0x5348_4D46u64 << 32) | (rng.next() % 5000),
                2 => 0x5348_4D57u64 << 32,
                _ => (rng.next() % 1024) * 8,
            };
            // SAFETY: `off` is 8-aligned and inside the mapping; every access to these words
            // from the library is atomic too.
            unsafe { AtomicU64::from_ptr(map.as_mut_ptr().add(off).cast()) }
                .store(value, Ordering::Relaxed);
            if rng.next() % 64 == 0 {
                std::thread::yield_now();
            }
        }
    }
    let _serial = common::serial();
    let name = unique_name("racing");
    let mut tx = spsc::Sender::create(&name, Config::default().capacity(cap)).unwrap();
    let mut rx = spsc::Receiver::open(&name).unwrap();
    let writer = common::spawn_self(TEST, &[("NAME", name)]);
    let (mut ok, mut corrupted) = (0u64, 0u64);
    let mut buf = Vec::new();
    let msg = [0x77u8; 200];
    for i in 0..10_000_000u64 {
        if i % 2 == 0 {
            match tx.try_send(&msg[..(i % 200) as usize]) {
                Ok(()) | Err(Error::Full | Error::Disconnected | Error::Corrupted(_)) => {}
                Err(e) => panic!("send: unexpected {e}"),
            }
        }
        match rx.try_recv_into(&mut buf) {
            Ok(n) => {
                assert!(n as u64 <= cap - 16 && buf.len() == n);
                ok += 1;
            }
            Err(Error::Corrupted(_)) => corrupted += 1,
            Err(Error::Empty | Error::Disconnected) => {}
            Err(e) => panic!("recv: unexpected {e}"),
        }
    }
    writer.kill();
    eprintln!("10M calls under a racing writer: {ok} Ok, {corrupted} Corrupted");
    assert!(corrupted > 0, "the scribbles were never noticed");
}
