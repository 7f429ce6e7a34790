//! A soak of both rings in blocking (futex) mode, across processes, for a given time:
//! one SPSC channel (a producer process, this process consuming) and one MPMC channel (two
//! producer processes, two consumer threads here), all running at once. Every message carries
//! (producer, sequence, checksum); the run fails on any loss, duplicate, reorder or torn message.
//!
//! ```text
//! cargo run --release --example soak -- 600      # ten minutes
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmring::{mpmc, spsc, Config, Error, Wait};

/// `[producer u32 | len u32 | seq u64 | checksum u64 | body]`; the body is derived from seq.
fn fill(producer: u32, seq: u64, buf: &mut [u8]) {
    let len = buf.len();
    for (j, b) in buf[24..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(131).wrapping_add(j * 7) as u8;
    }
    let sum = checksum(&buf[24..]);
    buf[..4].copy_from_slice(&producer.to_le_bytes());
    buf[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    buf[16..24].copy_from_slice(&sum.to_le_bytes());
}

fn checksum(body: &[u8]) -> u64 {
    body.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    })
}

/// Checks a message; returns (producer, seq).
fn check(msg: &[u8]) -> (u32, u64) {
    assert!(
        msg.len() >= 24,
        "message shorter than its header: {}",
        msg.len()
    );
    let producer = u32::from_le_bytes(msg[..4].try_into().unwrap());
    let len = u32::from_le_bytes(msg[4..8].try_into().unwrap()) as usize;
    let seq = u64::from_le_bytes(msg[8..16].try_into().unwrap());
    let sum = u64::from_le_bytes(msg[16..24].try_into().unwrap());
    assert_eq!(len, msg.len(), "producer {producer} seq {seq}: torn length");
    assert_eq!(
        sum,
        checksum(&msg[24..]),
        "producer {producer} seq {seq}: torn body"
    );
    (producer, seq)
}

fn produce(kind: &str, name: &str, producer: u32, secs: u64) -> shmring::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = vec![0u8; 1024];
    let mut seq = 0u64;
    let mut x = u64::from(producer) + 1;
    let mut spsc_tx = None;
    let mut mpmc_tx = None;
    if kind == "spsc" {
        spsc_tx = Some(spsc::Sender::open(name)?);
    } else {
        mpmc_tx = Some(mpmc::Sender::open(name)?);
    }
    while seq % 1024 != 0 || Instant::now() < deadline {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 24 + (x % 1000) as usize;
        fill(producer, seq, &mut buf[..len]);
        match (&mut spsc_tx, &mut mpmc_tx) {
            (Some(tx), _) => tx.send(&buf[..len])?,
            (_, Some(tx)) => tx.send(&buf[..len])?,
            _ => unreachable!(),
        }
        seq += 1;
    }
    Ok(seq)
}

fn main() -> shmring::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("produce") {
        let n = produce(
            &args[1],
            &args[2],
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
        )?;
        println!("{n}");
        return Ok(());
    }
    let secs: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let id = std::process::id();
    let (spsc_name, mpmc_name) = (format!("soak-spsc-{id}"), format!("soak-mpmc-{id}"));
    let cfg = Config::default().wait(Wait::Futex);
    let mut spsc_rx = spsc::Receiver::create(&spsc_name, cfg.clone().capacity(1 << 16))?;
    let mpmc_rx = mpmc::Receiver::create(&mpmc_name, cfg.clone().capacity(256).slot_size(1024))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
    let spawn = |kind: &str, name: &str, producer: u32| {
        Command::new(&exe)
            .args([
                "produce",
                kind,
                name,
                &producer.to_string(),
                &secs.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn producer")
    };
    let children = vec![
        (0u32, spawn("spsc", &spsc_name, 0)),
        (1, spawn("mpmc", &mpmc_name, 1)),
        (2, spawn("mpmc", &mpmc_name, 2)),
    ];
    let start = Instant::now();

    // MPMC: two consumer threads (two receiver handles), each checking per-producer order.
    let second = mpmc::Receiver::open(&mpmc_name)?;
    let mut consumers = Vec::new();
    for (c, mut rx) in [mpmc_rx, second].into_iter().enumerate() {
        consumers.push(std::thread::spawn(move || {
            let mut last = [None::<u64>; 3];
            let mut count = [0u64; 3];
            let mut seq_sum = [0u128; 3];
            loop {
                match rx.recv() {
                    Ok(msg) => {
                        let (p, seq) = check(&msg);
                        let p = p as usize;
                        assert!(
                            last[p].is_none_or(|l| l < seq),
                            "producer {p}: reordered or duplicated at {seq}"
                        );
                        last[p] = Some(seq);
                        count[p] += 1;
                        seq_sum[p] += u128::from(seq);
                    }
                    Err(Error::Disconnected) => return (count, seq_sum),
                    Err(e) => panic!("mpmc consumer {c}: {e}"),
                }
            }
        }));
    }

    // SPSC: consumed here.
    let mut spsc_count = 0u64;
    loop {
        match spsc_rx.recv() {
            Ok(msg) => {
                let (_, seq) = check(&msg);
                assert_eq!(
                    seq, spsc_count,
                    "spsc: lost, duplicated or reordered at {seq}"
                );
                spsc_count += 1;
            }
            Err(Error::Disconnected) => break,
            Err(e) => return Err(e),
        }
    }
    let mut sent = [0u64; 3];
    for (p, child) in children {
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io("wait for a producer", e))?;
        assert!(out.status.success(), "producer {p} failed: {}", out.status);
        sent[p as usize] = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("count");
    }
    let (mut got, mut sums) = ([0u64; 3], [0u128; 3]);
    for c in consumers {
        let (count, sum) = c.join().expect("consumer thread");
        for p in 0..3 {
            got[p] += count[p];
            sums[p] += sum[p];
        }
    }
    assert_eq!(
        spsc_count, sent[0],
        "spsc: sent {} received {spsc_count}",
        sent[0]
    );
    for p in 1..3 {
        let n = u128::from(sent[p]);
        assert_eq!(
            got[p], sent[p],
            "mpmc producer {p}: sent {} received {}",
            sent[p], got[p]
        );
        assert_eq!(
            sums[p],
            n * (n.max(1) - 1) / 2,
            "mpmc producer {p}: duplicates offset losses"
        );
    }
    println!(
        "soak of {:.0} s, blocking (futex): spsc {} messages, mpmc {} messages from 2 producers to 2 consumers; zero lost, duplicated, reordered or torn",
        start.elapsed().as_secs_f64(),
        spsc_count,
        got[1] + got[2]
    );
    Ok(())
}
