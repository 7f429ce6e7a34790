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

/// Runs for the PeerDead latency figures (`SHMRING_FORK_RUNS`, 20 by default).
fn fork_runs() -> usize {
    std::env::var("SHMRING_FORK_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// The child process of the two tests below: opens the sender, forks a grandchild that
/// sleeps (if asked), says "ready" through the channel, and waits to be killed.
fn sender_process_that_may_fork() {
    use common::child_param;
    let name = child_param("NAME").unwrap();
    let mut tx = spsc::Sender::open(&name).unwrap();
    if child_param("FORK").as_deref() == Some("1") {
        // SAFETY: the grandchild only sleeps and leaves with `_exit` (async-signal-safe calls,
        // no destructor touches the parent's handle).
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: plain libc calls in the forked child.
                unsafe {
                    libc::sleep(2);
                    libc::_exit(0)
                }
            }
            nix::unistd::ForkResult::Parent { .. } => {}
        }
    }
    tx.send(b"ready").unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Kills a sender process `fork_runs()` times (one that forked a sleeping child, or not) and
/// returns how long a receiver blocked in `recv` took to get `PeerDead` after each kill.
fn peer_dead_latencies(test: &str, fork: bool) -> Vec<Duration> {
    let mut out = Vec::new();
    for _ in 0..fork_runs() {
        let name = unique_name("forkdead");
        let mut rx = spsc::Receiver::create(&name, Config::default().capacity(4096)).unwrap();
        let child = common::spawn_self(
            test,
            &[("NAME", name.clone()), ("FORK", (fork as u8).to_string())],
        );
        assert_eq!(
            &*rx.recv_timeout(Duration::from_secs(30)).unwrap(),
            b"ready"
        );
        let (got, killed_at) = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let r = rx.recv_timeout(Duration::from_secs(10)).map(|m| m.len());
                (r, Instant::now())
            });
            // Let the receiver go to sleep first.
            std::thread::sleep(Duration::from_millis(25));
            let killed_at = Instant::now();
            child.kill();
            let (r, at) = waiter.join().unwrap();
            (r.map(|_| ()), at.saturating_duration_since(killed_at))
        });
        assert!(matches!(got, Err(Error::PeerDead)), "{got:?}");
        out.push(killed_at);
    }
    out.sort();
    out
}

fn report(what: &str, lat: &[Duration]) {
    let p50 = lat[lat.len() / 2];
    let max = *lat.last().unwrap();
    eprintln!(
        "{what}: PeerDead after the kill, {} runs: p50 {p50:?}, max {max:?}",
        lat.len()
    );
    // The default liveness slice is 10 ms; the child of a fork sleeps 2 s. Allow scheduling
    // delay on a loaded machine, but far less than the child's sleep.
    assert!(max < Duration::from_millis(500), "{what}: max {max:?}");
}

/// Issue 13 point 4: the parent forks a child that sleeps 2 s and is SIGKILLed; the receiver
/// gets `PeerDead` within about one slice, not when the child exits.
#[test]
fn a_killed_sender_that_forked_is_dead_within_a_slice() {
    if common::is_child() {
        return sender_process_that_may_fork();
    }
    let _serial = common::serial();
    let lat = peer_dead_latencies("a_killed_sender_that_forked_is_dead_within_a_slice", true);
    report("sender that forked", &lat);
}

/// The same without the fork, for comparison.
#[test]
fn a_killed_sender_is_dead_within_a_slice() {
    if common::is_child() {
        return sender_process_that_may_fork();
    }
    let _serial = common::serial();
    let lat = peer_dead_latencies("a_killed_sender_is_dead_within_a_slice", false);
    report("plain sender", &lat);
}

/// In the fork child, the copy of a handle holds no lock: the parent's place is still taken
/// (by the parent), and the child can open a place of its own on the inherited descriptor.
#[test]
fn a_fork_child_does_not_hold_the_parents_lock() {
    let _serial = common::serial();
    let tx = spsc::Sender::create_anonymous(Config::default().capacity(4096)).unwrap();
    let fd = tx.segment_fd().try_clone_to_owned().unwrap();
    // SAFETY: the child only opens a handle on its own descriptor, reports through its exit
    // status and leaves with `_exit` (the parent's handle is neither used nor dropped there).
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            // A second sender must find the place held by the (live) parent...
            let held = matches!(
                spsc::Sender::from_fd(fd.try_clone().unwrap(), Config::default()),
                Err(Error::InUse { .. })
            );
            // ...and a receiver opened in the child is a participant of its own.
            let rx_ok = spsc::Receiver::from_fd(fd, Config::default()).is_ok();
            // SAFETY: leaving the forked child without running destructors.
            unsafe { libc::_exit(if held && rx_ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
    drop(tx);
}
