//! Cross-process stress test of the MPMC channel: 4 producer and 4 consumer processes.
//!
//! Each producer sends `(producer id, sequence, checksum)` for sequences `0..N`. Every consumer
//! checks each message's checksum and that each producer's sequences arrive in increasing order
//! at it, and reports per producer how many it got, their sum and their sum of squares. The
//! parent adds the reports up: every producer's count must be `N` and both sums those of
//! `0..N`, i.e. every message delivered exactly once (a duplicate and a loss cannot hide in all
//! three at once while each consumer sees increasing sequences).
//!
//! The children are this test binary again (`current_exe()`), running only the
//! `mpmc_stress_child` test, which does nothing unless the role variables are set.
//!
//! `N` is `SHMRING_STRESS_MSGS` (default 1 000 000 per producer: 4 million messages per wait
//! strategy, about a second on two cores).

use std::process::{Command, Stdio};
use std::time::Instant;

use shmring::{mpmc, Config, Error, Wait};

const PRODUCERS: u64 = 4;
const CONSUMERS: u64 = 4;

fn messages() -> u64 {
    std::env::var("SHMRING_STRESS_MSGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn checksum(id: u64, seq: u64) -> u64 {
    // splitmix64 of the pair: any bit flipped in id or seq changes it.
    let mut z = (id << 48 ^ seq).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The child process: a producer or a consumer, chosen by environment variables.
#[test]
fn mpmc_stress_child() {
    let Ok(role) = std::env::var("SHMRING_STRESS_ROLE") else {
        return; // run directly by `cargo test`: nothing to do
    };
    let name = std::env::var("SHMRING_STRESS_NAME").unwrap();
    let id: u64 = std::env::var("SHMRING_STRESS_ID").unwrap().parse().unwrap();
    let n = messages();
    match role.as_str() {
        "producer" => {
            let mut tx = mpmc::Sender::open(&name).unwrap();
            for seq in 0..n {
                tx.send_pod(&[id, seq, checksum(id, seq)]).unwrap();
            }
        }
        "consumer" => {
            let mut rx = mpmc::Receiver::open(&name).unwrap();
            let mut last = [None::<u64>; PRODUCERS as usize];
            let mut count = [0u64; PRODUCERS as usize];
            let mut sum = [0u64; PRODUCERS as usize];
            let mut sq = [0u64; PRODUCERS as usize];
            loop {
                match rx.recv_pod::<[u64; 3]>() {
                    Ok([p, seq, sum_check]) => {
                        assert!(p < PRODUCERS, "bad producer id {p}");
                        assert_eq!(sum_check, checksum(p, seq), "bad checksum");
                        let i = p as usize;
                        assert!(
                            last[i].is_none_or(|l| l < seq),
                            "producer {p}: {seq} after {:?}",
                            last[i]
                        );
                        last[i] = Some(seq);
                        count[i] += 1;
                        sum[i] = sum[i].wrapping_add(seq);
                        sq[i] = sq[i].wrapping_add(seq.wrapping_mul(seq));
                    }
                    Err(Error::Disconnected) => break,
                    Err(e) => panic!("consumer {id}: {e}"),
                }
            }
            for p in 0..PRODUCERS as usize {
                println!("STRESS {p} {} {} {}", count[p], sum[p], sq[p]);
            }
        }
        "die" => {
            // Send one message, then die without closing (no destructor runs).
            let mut tx = mpmc::Sender::open(&name).unwrap();
            tx.send(b"last words").unwrap();
            std::process::abort();
        }
        "die-rx" => {
            // Take one message, then die without closing.
            let mut rx = mpmc::Receiver::open(&name).unwrap();
            drop(rx.recv().unwrap());
            std::process::abort();
        }
        other => panic!("unknown role {other}"),
    }
}

/// The two runs take turns: each wants every core, and its timing is reported.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(wait: Wait) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = messages();
    let name = format!("stress-{wait:?}-{}", std::process::id());
    let cfg = Config::default()
        .capacity(1024)
        .slot_size(64)
        .wait(wait)
        .persist(true) // the name must outlive `guard`; removed at the end
        .max_senders(PRODUCERS as u32 + 1);
    // The parent holds a sender (sending nothing) until every producer process has exited, so
    // that no consumer can see "every sender left" while a producer has yet to start.
    let guard = mpmc::Sender::create(&name, cfg).unwrap();
    let exe = std::env::current_exe().unwrap();
    let spawn = |role: &str, id: u64| {
        Command::new(&exe)
            .args([
                "--exact",
                "mpmc_stress_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SHMRING_STRESS_ROLE", role)
            .env("SHMRING_STRESS_NAME", &name)
            .env("SHMRING_STRESS_ID", id.to_string())
            .env("SHMRING_STRESS_MSGS", n.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let start = Instant::now();
    let consumers: Vec<_> = (0..CONSUMERS).map(|id| spawn("consumer", id)).collect();
    let producers: Vec<_> = (0..PRODUCERS).map(|id| spawn("producer", id)).collect();
    for p in producers {
        let out = p.wait_with_output().unwrap();
        assert!(out.status.success(), "producer failed");
    }
    drop(guard);
    let mut count = [0u64; PRODUCERS as usize];
    let mut sum = [0u64; PRODUCERS as usize];
    let mut sq = [0u64; PRODUCERS as usize];
    for c in consumers {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "consumer failed");
        if std::env::var_os("SHMRING_STRESS_DEBUG").is_some() {
            eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // The harness prints "test mpmc_stress_child ... " before the first line.
            let Some(at) = line.find("STRESS ") else {
                continue;
            };
            let rest = &line[at + 7..];
            let v: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            let p = v[0] as usize;
            count[p] += v[1];
            sum[p] = sum[p].wrapping_add(v[2]);
            sq[p] = sq[p].wrapping_add(v[3]);
        }
    }
    let elapsed = start.elapsed();
    // `inspect::remove` also removes the segment's System V semaphore set (Wait::Semaphore).
    shmring::inspect::remove(&name).unwrap();
    let want_sum = (0..n).fold(0u64, |a, s| a.wrapping_add(s));
    let want_sq = (0..n).fold(0u64, |a, s| a.wrapping_add(s.wrapping_mul(s)));
    for p in 0..PRODUCERS as usize {
        assert_eq!(count[p], n, "producer {p}: messages delivered");
        assert_eq!(sum[p], want_sum, "producer {p}: sum of sequences");
        assert_eq!(sq[p], want_sq, "producer {p}: sum of squares");
    }
    let total = n * PRODUCERS;
    eprintln!(
        "mpmc stress {wait:?}: {PRODUCERS}x{CONSUMERS} processes, {total} messages in {elapsed:.2?} ({:.2} M msgs/s)",
        total as f64 / elapsed.as_secs_f64() / 1e6
    );
}

#[test]
fn mpmc_stress_futex() {
    run(Wait::Futex);
}

#[test]
fn mpmc_stress_semaphore() {
    run(Wait::Semaphore);
}

/// A sender process that dies without closing: the receiver gets what it sent, then
/// `PeerDead` (its count stays, and no live process holds a sender lock).
#[test]
fn mpmc_sender_death_is_peer_dead() {
    let name = format!("stress-death-{}", std::process::id());
    let mut rx = mpmc::Receiver::create(&name, Config::default().capacity(8)).unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mpmc_stress_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHMRING_STRESS_ROLE", "die")
        .env("SHMRING_STRESS_NAME", &name)
        .env("SHMRING_STRESS_ID", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    assert_eq!(&*rx.recv().unwrap(), b"last words");
    assert!(matches!(rx.recv(), Err(Error::PeerDead)));
    assert_eq!(rx.peers(), (1, 1));
}

/// The only receiver process dies while the sender is about to block on a full ring: the
/// sender gets `PeerDead` instead of waiting for ever.
#[test]
fn mpmc_receiver_death_is_peer_dead() {
    let name = format!("stress-death-rx-{}", std::process::id());
    let mut tx = mpmc::Sender::create(&name, Config::default().capacity(2)).unwrap();
    tx.send(b"1").unwrap();
    tx.send(b"2").unwrap();
    assert!(!run_child("die-rx", &name).success());
    tx.send(b"3").unwrap(); // the slot the dead receiver freed
    assert!(matches!(tx.send(b"4"), Err(Error::PeerDead)));
}

fn run_child(role: &str, name: &str) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mpmc_stress_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHMRING_STRESS_ROLE", role)
        .env("SHMRING_STRESS_NAME", name)
        .env("SHMRING_STRESS_ID", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}
