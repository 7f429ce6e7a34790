//! Crashes, restarts, creation races, permissions and a full /dev/shm, with real processes.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{
    check_message, child_param, fill_message, is_child, self_command, serial, spawn_self,
    unique_name, ChildGuard, Rng,
};
use shmring::segment::Segment;
use shmring::{spsc, Config, Error};

/// A counter in a small shared file, that a child bumps and the parent reads after the kill.
struct SharedCounter {
    path: String,
    map: memmap2::MmapRaw,
}

impl SharedCounter {
    fn create(path: &str) -> Self {
        let f = std::fs::File::create(path).unwrap();
        f.set_len(4096).unwrap();
        Self::open(path)
    }
    fn open(path: &str) -> Self {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        SharedCounter {
            path: path.to_owned(),
            map: memmap2::MmapOptions::new().len(4096).map_raw(&f).unwrap(),
        }
    }
    fn cell(&self) -> &AtomicU64 {
        // SAFETY: the mapping is 4096 bytes, page aligned, alive as long as `self`, and both
        // processes access the word only atomically.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().cast()) }
    }
    fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn kill_runs() -> u32 {
    std::env::var("SHMRING_KILL_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// SIGKILL the producer at random moments: every message it committed before the kill is
/// delivered, in order, untorn, without duplicates; then the receiver gets PeerDead in bounded
/// time. Repeated `SHMRING_KILL_RUNS` times (200 by default).
#[test]
fn killed_producer_loses_nothing_it_committed() {
    const TEST: &str = "killed_producer_loses_nothing_it_committed";
    if is_child() {
        let counter = SharedCounter::open(&child_param("COUNTER").unwrap());
        let mut tx = spsc::Sender::open(&child_param("NAME").unwrap()).unwrap();
        let mut rng = Rng(1);
        for seq in 0.. {
            let len = (rng.next() % 600) as usize;
            let mut slot = tx.reserve(len).unwrap();
            fill_message(seq, &mut slot[..len]);
            slot.commit(len);
            counter.cell().store(seq + 1, Ordering::Release);
        }
        return;
    }
    let _serial = serial();
    let mut rng = Rng(0xC0FFEE);
    let mut total = 0u64;
    for run in 0..kill_runs() {
        let name = unique_name("kill");
        let counter_path = format!("/dev/shm/{}-count", unique_name("kill"));
        let counter = SharedCounter::create(&counter_path);
        let cfg = Config::default().capacity(4096 << (run % 4));
        let mut rx = spsc::Receiver::create(&name, cfg).unwrap();
        let child = spawn_self(TEST, &[("NAME", name), ("COUNTER", counter_path.clone())]);
        // A sender that never attached is late, not dead: start once it is there.
        let t0 = Instant::now();
        while !rx.peer_attached() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the sender never attached"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        // Read a random number of messages first, so the kill lands anywhere in the stream.
        let mut sizes = Rng(1);
        let mut seq = 0u64;
        let before = rng.next() % 3000;
        while seq < before {
            let len = (sizes.next() % 600) as usize;
            let msg = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            check_message(seq, len, &msg).unwrap_or_else(|e| panic!("run {run}: {e}"));
            seq += 1;
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 2000));
        child.kill();
        let committed = counter.cell().load(Ordering::Acquire);
        let killed_at = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(msg) => {
                    let len = (sizes.next() % 600) as usize;
                    check_message(seq, len, &msg).unwrap_or_else(|e| panic!("run {run}: {e}"));
                    seq += 1;
                }
                Err(Error::PeerDead) => break,
                Err(e) => panic!("run {run}: expected PeerDead, got {e}"),
            }
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(2),
            "run {run}: PeerDead took {:?}",
            killed_at.elapsed()
        );
        assert!(
            seq >= committed,
            "run {run}: {committed} committed, {seq} delivered"
        );
        total += seq;
        counter.remove();
    }
    eprintln!("{} kill runs, {total} messages checked", kill_runs());
}

/// SIGKILL the consumer at random moments: the producer never hangs; once the ring is full it
/// gets PeerDead. The consumer checks order and content up to its death.
#[test]
fn killed_consumer_makes_blocked_sender_peer_dead() {
    const TEST: &str = "killed_consumer_makes_blocked_sender_peer_dead";
    if is_child() {
        let mut rx = spsc::Receiver::open(&child_param("NAME").unwrap()).unwrap();
        let mut rng = Rng(2);
        for seq in 0.. {
            let len = (rng.next() % 300) as usize;
            let msg = rx.recv().unwrap();
            check_message(seq, len, &msg).unwrap();
        }
        return;
    }
    let _serial = serial();
    let mut rng = Rng(0xBEEF);
    for run in 0..kill_runs() / 2 {
        let name = unique_name("killrx");
        let mut tx = spsc::Sender::create(&name, Config::default().capacity(4096)).unwrap();
        let child = spawn_self(TEST, &[("NAME", name)]);
        // A receiver that never attached is not dead, only late: start once it is there.
        let t0 = Instant::now();
        while !tx.peer_attached() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the receiver never attached"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let kill_after = rng.next() % 3000;
        let mut sizes = Rng(2);
        let mut killed: Option<(ChildGuard, Instant)> = Some((child, Instant::now()));
        let mut killed_at = None;
        for seq in 0u64.. {
            if seq == kill_after {
                let (c, _) = killed.take().unwrap();
                c.kill();
                killed_at = Some(Instant::now());
            }
            let len = (sizes.next() % 300) as usize;
            let mut msg = vec![0u8; len];
            fill_message(seq, &mut msg);
            match tx.send_timeout(&msg, Duration::from_secs(10)) {
                Ok(()) => {}
                Err(Error::PeerDead) => {
                    let waited = killed_at.expect("PeerDead before the kill").elapsed();
                    assert!(
                        waited < Duration::from_secs(2),
                        "run {run}: took {waited:?}"
                    );
                    break;
                }
                Err(e) => panic!("run {run}: expected PeerDead, got {e}"),
            }
        }
    }
}

/// After the producer died, a new process takes its place by opening the name again, and the
/// channel carries on where the old one stopped.
#[test]
fn a_new_producer_takes_the_dead_ones_place() {
    const TEST: &str = "a_new_producer_takes_the_dead_ones_place";
    if is_child() {
        let mut tx = spsc::Sender::open(&child_param("NAME").unwrap()).unwrap();
        let from: u64 = child_param("FROM").unwrap().parse().unwrap();
        for seq in from..from + 100 {
            tx.send_pod(&seq).unwrap();
        }
        if child_param("LINGER").is_some() {
            std::thread::sleep(Duration::from_secs(60)); // killed before
        }
        return;
    }
    let _serial = serial();
    let name = unique_name("restart");
    let mut rx = spsc::Receiver::create(&name, Config::default().capacity(4096)).unwrap();
    let first = spawn_self(
        TEST,
        &[
            ("NAME", name.clone()),
            ("FROM", "0".into()),
            ("LINGER", "1".into()),
        ],
    );
    for seq in 0..100u64 {
        assert_eq!(
            rx.recv_pod_timeout::<u64>(Duration::from_secs(30)).unwrap(),
            seq
        );
    }
    first.kill();
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(Error::PeerDead)
    ));
    let second = spawn_self(TEST, &[("NAME", name), ("FROM", "100".into())]);
    // Until the new process has opened the sender side, the place is still the dead one's, so
    // a wait may end in `PeerDead` again (it is not sticky: README, "Restart"); a loaded
    // machine can take longer than one liveness slice to start a process. Retry on it only
    // before the first new message, for at most 30 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let first_new = loop {
        match rx.recv_pod_timeout::<u64>(Duration::from_secs(30)) {
            Ok(v) => break v,
            Err(Error::PeerDead) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("waiting for the new producer: {e}"),
        }
    };
    assert_eq!(first_new, 100);
    for seq in 101..200u64 {
        assert_eq!(
            rx.recv_pod_timeout::<u64>(Duration::from_secs(30)).unwrap(),
            seq
        );
    }
    second.join(Duration::from_secs(30));
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(Error::Disconnected)
    ));
}

/// 16 processes race `create_or_open` on one name: exactly one creates (and so holds the sender
/// side, which it takes before it publishes the segment), the others open the fully initialised
/// segment and are told the side is in use. No
/// process dies of a signal (no SIGBUS). `SHMRING_RACE_ROUNDS` rounds (5 by default).
#[test]
fn sixteen_processes_race_create_or_open() {
    const TEST: &str = "sixteen_processes_race_create_or_open";
    if is_child() {
        let start: u128 = child_param("START").unwrap().parse().unwrap();
        while std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            < start
        {
            std::hint::spin_loop();
        }
        let cfg = Config::default().capacity(1 << 20).persist(true);
        match spsc::Sender::create_or_open(&child_param("NAME").unwrap(), cfg) {
            Ok(_tx) => {
                // Hold the side while the others race: a side whose holder has exited is free
                // for the next process (that is how a restart works).
                std::thread::sleep(Duration::from_millis(1500));
                std::process::exit(10)
            }
            Err(Error::InUse { .. }) => std::process::exit(11),
            Err(e) => {
                eprintln!("racer: {e}");
                std::process::exit(12)
            }
        }
    }
    let _serial = serial();
    let rounds: u32 = std::env::var("SHMRING_RACE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    for round in 0..rounds {
        let name = unique_name("race");
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            + 300_000_000;
        let mut racers: Vec<_> = (0..16)
            .map(|_| {
                self_command(
                    TEST,
                    &[("NAME", name.clone()), ("START", start.to_string())],
                )
                .spawn()
                .unwrap()
            })
            .collect();
        let codes: Vec<i32> = racers
            .iter_mut()
            .map(|c| {
                let st = c.wait().unwrap();
                st.code()
                    .unwrap_or_else(|| panic!("round {round}: racer killed by {st}"))
            })
            .collect();
        Segment::unlink(&name).unwrap();
        let created = codes.iter().filter(|&&c| c == 10).count();
        let in_use = codes.iter().filter(|&&c| c == 11).count();
        assert_eq!(
            (created, in_use),
            (1, 15),
            "round {round}: exit codes {codes:?}"
        );
    }
}

/// With root, a process of another user cannot open a segment made with the default 0600.
#[test]
fn another_user_cannot_open_a_private_segment() {
    const TEST: &str = "another_user_cannot_open_a_private_segment";
    if is_child() {
        match spsc::Receiver::open(&child_param("NAME").unwrap()) {
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::PermissionDenied) => {
                std::process::exit(0)
            }
            other => panic!("expected permission denied, got {:?}", other.map(|_| ())),
        }
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run a process as a second uid");
        return;
    }
    let name = unique_name("perm");
    let _tx = spsc::Sender::create(&name, Config::default()).unwrap();
    let mut cmd = self_command(TEST, &[("NAME", name)]);
    std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
    std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
    match cmd.spawn() {
        Ok(mut child) => {
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "uid 65534 could open the segment: {status}"
            );
        }
        Err(e) => eprintln!("skipped: cannot run the test binary as uid 65534: {e}"),
    }
}

/// A segment larger than the free space of /dev/shm is an error at create time (the pages are
/// reserved with posix_fallocate), never a SIGBUS later. The child mounts a 1 MiB tmpfs over
/// /dev/shm in a private mount namespace.
#[test]
fn full_dev_shm_is_an_error_at_create() {
    const TEST: &str = "full_dev_shm_is_an_error_at_create";
    if is_child() {
        use nix::mount::{mount, MsFlags};
        use nix::sched::{unshare, CloneFlags};
        let private = unshare(CloneFlags::CLONE_NEWNS)
            .and_then(|_| {
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
            })
            .and_then(|_| {
                mount(
                    Some("tmpfs"),
                    "/dev/shm",
                    Some("tmpfs"),
                    MsFlags::empty(),
                    Some("size=1m"),
                )
            });
        if let Err(e) = private {
            eprintln!("skipped: cannot mount a small tmpfs over /dev/shm: {e}");
            std::process::exit(77);
        }
        let cfg = Config::default().capacity(4 << 20);
        match spsc::Sender::create("full-dev-shm", cfg) {
            Err(e) if e.to_string().contains("posix_fallocate") => {
                assert!(
                    !std::path::Path::new("/dev/shm/full-dev-shm").exists(),
                    "a failed create left its name behind"
                );
                std::process::exit(0)
            }
            other => panic!(
                "expected an ENOSPC error at create, got {:?}",
                other.map(|_| ())
            ),
        }
    }
    let status = self_command(TEST, &[]).status().unwrap();
    match status.code() {
        Some(0) => {}
        Some(77) => eprintln!("skipped: no mount namespace here"),
        _ => panic!("child failed: {status}"),
    }
}

/// A consumer killed while it holds a zero-copy guard had not released that message: the
/// process that takes its place receives it again (at-least-once for that one message), then
/// the rest in order.
#[test]
fn a_new_consumer_gets_the_message_a_dead_one_held() {
    const TEST: &str = "a_new_consumer_gets_the_message_a_dead_one_held";
    if is_child() {
        let mut rx = spsc::Receiver::open(&child_param("NAME").unwrap()).unwrap();
        for i in 0..2u64 {
            assert_eq!(rx.recv_pod::<u64>().unwrap(), i);
        }
        let held = rx.recv().unwrap();
        assert_eq!(held.len(), 8);
        std::fs::write(child_param("MARK").unwrap(), b"holding").unwrap();
        std::thread::sleep(Duration::from_secs(60)); // killed while holding the guard
        drop(held);
        return;
    }
    let _serial = serial();
    let name = unique_name("heldguard");
    let mark = format!("/tmp/{}", unique_name("heldguard-mark"));
    let mut tx = spsc::Sender::create(&name, Config::default().capacity(4096)).unwrap();
    for i in 0..5u64 {
        tx.send_pod(&i).unwrap();
    }
    let child = spawn_self(TEST, &[("NAME", name.clone()), ("MARK", mark.clone())]);
    let t0 = Instant::now();
    while !std::path::Path::new(&mark).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the child never took the guard"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill();
    std::fs::remove_file(&mark).unwrap();
    let mut rx = spsc::Receiver::open(&name).unwrap();
    for i in 2..5u64 {
        assert_eq!(
            rx.recv_pod_timeout::<u64>(Duration::from_secs(5)).unwrap(),
            i
        );
    }
}

/// Waits for a child's marker file (it reached the point where it is to be killed).
fn wait_for_mark(mark: &str) {
    let t0 = Instant::now();
    while !std::path::Path::new(mark).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the child never got there"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::remove_file(mark).unwrap();
}

/// MPMC: a producer killed between claiming a slot and committing it does not wedge the
/// consumers while another producer lives: the claim is found (its owner's lock is free) and
/// skipped; that one message is lost (at most once), the others arrive.
#[test]
fn mpmc_producer_killed_mid_claim_does_not_wedge_consumers() {
    use shmring::mpmc;
    const TEST: &str = "mpmc_producer_killed_mid_claim_does_not_wedge_consumers";
    if is_child() {
        let mut tx = mpmc::Sender::open(&child_param("NAME").unwrap()).unwrap();
        let _claimed = tx.reserve(8).unwrap();
        std::fs::write(child_param("MARK").unwrap(), b"claimed").unwrap();
        std::thread::sleep(Duration::from_secs(60)); // killed holding the claim
        return;
    }
    let _serial = serial();
    let name = unique_name("mpmc-claim");
    let mark = format!("/tmp/{}", unique_name("mpmc-claim-mark"));
    let cfg = Config::default().capacity(8).slot_size(64);
    let mut rx = mpmc::Receiver::create(&name, cfg).unwrap();
    let child = spawn_self(TEST, &[("NAME", name.clone()), ("MARK", mark.clone())]);
    wait_for_mark(&mark);
    child.kill();
    let mut tx = mpmc::Sender::open(&name).unwrap();
    for i in 0..5u64 {
        tx.send_pod(&i).unwrap();
    }
    let t0 = Instant::now();
    for i in 0..5u64 {
        assert_eq!(
            rx.recv_pod_timeout::<u64>(Duration::from_secs(5)).unwrap(),
            i
        );
    }
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "recovery took {:?}",
        t0.elapsed()
    );
}

/// MPMC: a consumer killed while it holds a message (a zero-copy guard) does not wedge the
/// producers a lap later: the slot is found (its holder's lock is free) and freed; the held
/// message is not delivered again (at most once), the others arrive in order.
#[test]
fn mpmc_consumer_killed_holding_a_guard_does_not_wedge_producers() {
    use shmring::mpmc;
    const TEST: &str = "mpmc_consumer_killed_holding_a_guard_does_not_wedge_producers";
    if is_child() {
        let mut rx = mpmc::Receiver::open(&child_param("NAME").unwrap()).unwrap();
        let held = rx.recv().unwrap();
        std::fs::write(child_param("MARK").unwrap(), b"holding").unwrap();
        std::thread::sleep(Duration::from_secs(60)); // killed holding the guard
        drop(held);
        return;
    }
    let _serial = serial();
    let name = unique_name("mpmc-guard");
    let mark = format!("/tmp/{}", unique_name("mpmc-guard-mark"));
    let cfg = Config::default().capacity(4).slot_size(64);
    let mut tx = mpmc::Sender::create(&name, cfg).unwrap();
    let child = spawn_self(TEST, &[("NAME", name.clone()), ("MARK", mark.clone())]);
    tx.send_pod(&0u64).unwrap();
    wait_for_mark(&mark);
    child.kill();
    let mut rx = mpmc::Receiver::open(&name).unwrap();
    let t0 = Instant::now();
    for i in 1..40u64 {
        tx.send_pod_timeout(&i, Duration::from_secs(5)).unwrap();
        assert_eq!(
            rx.recv_pod_timeout::<u64>(Duration::from_secs(5)).unwrap(),
            i
        );
    }
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "recovery took {:?}",
        t0.elapsed()
    );
}

/// MPMC: SIGKILL the producer at random moments (`SHMRING_KILL_RUNS` runs): every message it
/// committed is delivered once, in order, untorn; a claim it held at its death is skipped; the
/// consumer then gets PeerDead in bounded time.
#[test]
fn mpmc_killed_producer_loses_nothing_it_committed() {
    use shmring::mpmc;
    const TEST: &str = "mpmc_killed_producer_loses_nothing_it_committed";
    if is_child() {
        let counter = SharedCounter::open(&child_param("COUNTER").unwrap());
        let mut tx = mpmc::Sender::open(&child_param("NAME").unwrap()).unwrap();
        let mut rng = Rng(3);
        for seq in 0.. {
            let len = (rng.next() % 200) as usize;
            let mut slot = tx.reserve(len).unwrap();
            fill_message(seq, &mut slot[..len]);
            slot.commit(len);
            counter.cell().store(seq + 1, Ordering::Release);
        }
        return;
    }
    let _serial = serial();
    let mut rng = Rng(0xFACE);
    for run in 0..kill_runs() {
        let name = unique_name("mpmckill");
        let counter_path = format!("/dev/shm/{}-count", unique_name("mpmckill"));
        let counter = SharedCounter::create(&counter_path);
        let cfg = Config::default().capacity(16 << (run % 3)).slot_size(200);
        let mut rx = shmring::mpmc::Receiver::create(&name, cfg).unwrap();
        let child = spawn_self(TEST, &[("NAME", name), ("COUNTER", counter_path.clone())]);
        // A sender that never attached is late, not dead: start once it is there.
        let t0 = Instant::now();
        while rx.peers().0 == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the sender never attached"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        let mut sizes = Rng(3);
        let mut seq = 0u64;
        let before = rng.next() % 2000;
        while seq < before {
            let len = (sizes.next() % 200) as usize;
            let msg = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            check_message(seq, len, &msg).unwrap_or_else(|e| panic!("run {run}: {e}"));
            seq += 1;
        }
        std::thread::sleep(Duration::from_micros(rng.next() % 1000));
        child.kill();
        let committed = counter.cell().load(Ordering::Acquire);
        let killed_at = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(msg) => {
                    let len = (sizes.next() % 200) as usize;
                    check_message(seq, len, &msg).unwrap_or_else(|e| panic!("run {run}: {e}"));
                    seq += 1;
                }
                Err(Error::PeerDead) => break,
                Err(e) => panic!("run {run}: expected PeerDead, got {e}"),
            }
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(2),
            "run {run}: PeerDead took {:?}",
            killed_at.elapsed()
        );
        assert!(
            seq >= committed,
            "run {run}: {committed} committed, {seq} delivered"
        );
        counter.remove();
    }
}
