//! shaq 5.1.1 (anza-xyz), the closest Rust peer, measured with the same one-way loop as
//! `throughput` (built with `--features peers` on nightly: shaq 5.1.1 uses
//! `isolate_highest_one`, newer than the stable toolchain here).
//!
//! shaq carries fixed-size items: 64-byte `[u8; 64]` items here, the size. The forked
//! child stamps each item with its sequence number (first and last eight bytes) and writes it
//! with `try_write` (per item) or a `write_batch` of up to `batch` items; the parent reads with
//! `try_read` or `try_reserve_read_batch(batch)`, checks both stamps and sums, as shmring's loop
//! does. Same pinning, handshake and time budget.

use std::num::NonZeroUsize;
use std::time::Instant;

use crate::proc::{self, Rendezvous};
use crate::throughput::{Params, Rate};

const SIZE: usize = 64;
type Item = [u8; SIZE];
/// The queue file's size: 4 MiB, as shmring's SPSC ring in `throughput`.
const FILE_SIZE: usize = 4 << 20;

/// One run over a shaq SPSC queue in a fresh /dev/shm file.
pub fn spsc_throughput(p: &Params) -> Result<Rate, String> {
    assert_eq!(p.size, SIZE, "shaq items are {SIZE} bytes here");
    let path = format!("/dev/shm/shm-bench-shaq-{}", std::process::id());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("{path}: {e}"))?;
    let _cleanup = Unlink(path.clone());
    // SAFETY: this process creates and initialises the queue once, as its only consumer; the
    // child joins it as the only producer, with the same item type.
    let mut rx = unsafe { shaq::spsc::Consumer::<Item>::create(&file, FILE_SIZE) }
        .map_err(|e| format!("shaq create: {e:?}"))?;
    proc::pin(p.cpus[0]);
    let meet = Rendezvous::new();
    let batch = p.batch.max(1);
    let pid = proc::spawn(p.cpus[1], || {
        // SAFETY: as above; this is the queue's one producer.
        let mut tx = unsafe { shaq::spsc::Producer::<Item>::join(&file) }.expect("shaq join");
        meet.set_ready(None);
        meet.wait_go();
        let mut item = [0x3Cu8; SIZE];
        let mut seq = 0u64;
        while !meet.stopped() {
            if batch == 1 {
                stamp(&mut item, seq);
                if tx.try_write(item).is_ok() {
                    seq += 1;
                }
                continue;
            }
            let mut b = tx.write_batch();
            for _ in 0..batch {
                stamp(&mut item, seq);
                if b.try_write(item).is_err() {
                    break;
                }
                seq += 1;
            }
            // Dropping the batch publishes it.
        }
    });
    meet.wait_ready(pid);
    let max = NonZeroUsize::new(batch).expect("batch >= 1");
    let t0 = Instant::now();
    meet.go();
    let (mut count, mut sum) = (0u64, 0u64);
    let mut check = |m: &Item, count: &mut u64| {
        let first = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
        let last = u64::from_le_bytes(m[SIZE - 8..].try_into().expect("8 bytes"));
        assert!(
            first == *count && last == *count,
            "shaq item {count} arrived wrong"
        );
        sum = sum.wrapping_add(first ^ u64::from(m[SIZE / 2]));
        *count += 1;
    };
    let secs = loop {
        if batch == 1 {
            for _ in 0..1024 {
                if let Some(m) = rx.try_read() {
                    check(&m, &mut count);
                }
            }
        } else if let Some(b) = rx.try_reserve_read_batch(max) {
            for m in b.iter() {
                check(m, &mut count);
            }
        }
        let t = t0.elapsed();
        if t >= p.budget || count >= p.max_msgs {
            break t.as_secs_f64();
        }
    };
    meet.stop();
    // Free room so that a child stuck on a full queue sees "stop".
    while rx.try_read().is_some() {}
    proc::join(pid);
    std::hint::black_box(sum);
    Ok(Rate::new(count, SIZE, secs))
}

fn stamp(item: &mut Item, seq: u64) {
    item[..8].copy_from_slice(&seq.to_le_bytes());
    item[SIZE - 8..].copy_from_slice(&seq.to_le_bytes());
}

/// Removes the queue file when the run ends.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The same loop over shmring's own SPSC API (not the `channel` traits): `send` / `try_recv`
/// per message, or `Sender::batch` and the zero-copy `Receiver::recv_batch`, as shaq's loop
/// uses its own batches.
pub fn shmring_spsc_throughput(p: &Params) -> Result<Rate, String> {
    use shmring::{spsc, Config, Wait};
    let name = format!("shm-bench-native-{}", std::process::id());
    let cfg = Config::default()
        .capacity(FILE_SIZE as u64)
        .wait(Wait::Spin);
    let mut rx = spsc::Receiver::create(&name, cfg).map_err(|e| format!("{name}: {e}"))?;
    proc::pin(p.cpus[0]);
    let meet = Rendezvous::new();
    let batch = p.batch.max(1);
    let pid = proc::spawn(p.cpus[1], || {
        let mut tx = spsc::Sender::open(&name).expect("open");
        meet.set_ready(None);
        meet.wait_go();
        let mut item = [0x3Cu8; SIZE];
        let mut seq = 0u64;
        while !meet.stopped() {
            if batch == 1 {
                stamp(&mut item, seq);
                if tx.try_send(&item).is_ok() {
                    seq += 1;
                }
                continue;
            }
            let mut b = tx.batch();
            for _ in 0..batch {
                stamp(&mut item, seq);
                if b.try_push(&item).is_err() {
                    break;
                }
                seq += 1;
            }
            b.finish();
        }
    });
    meet.wait_ready(pid);
    let t0 = Instant::now();
    meet.go();
    let (mut count, mut sum) = (0u64, 0u64);
    let mut check = |m: &[u8], count: &mut u64| {
        let first = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
        let last = u64::from_le_bytes(m[SIZE - 8..].try_into().expect("8 bytes"));
        assert!(
            m.len() == SIZE && first == *count && last == *count,
            "message {count} arrived wrong"
        );
        sum = sum.wrapping_add(first ^ u64::from(m[SIZE / 2]));
        *count += 1;
    };
    let secs = loop {
        if batch == 1 {
            for _ in 0..1024 {
                if let Ok(m) = rx.try_recv() {
                    check(&m, &mut count);
                }
            }
        } else if let Ok(b) = rx.try_recv_batch(batch) {
            for m in b.iter() {
                check(m, &mut count);
            }
        }
        let t = t0.elapsed();
        if t >= p.budget || count >= p.max_msgs {
            break t.as_secs_f64();
        }
    };
    meet.stop();
    while rx.try_recv().is_ok() {}
    proc::join(pid);
    std::hint::black_box(sum);
    Ok(Rate::new(count, SIZE, secs))
}
