//! shaq 5.1.1 (anza-xyz), the closest Rust peer, measured with the same one-way loop as
//! `throughput` (built with `--features peers` on nightly: shaq 5.1.1 uses
//! `isolate_highest_one`, newer than the stable toolchain here).
//!
//! shaq carries fixed-size items: 64-byte `[u8; 64]` items here, the size. The forked
//! child stamps each item with its sequence number (first and last eight bytes) and writes it
//! per item or in batches of up to `batch`; the parent reads per item or in batches, checks
//! both stamps and sums. shmring runs the same loop through its own API (zero-copy batches), so
//! the two are compared on equal terms. Same pinning, handshake and time budget.

use std::num::NonZeroUsize;
use std::time::Instant;

use crate::proc::{self, Rendezvous};
use crate::throughput::{Params, Rate};

const SIZE: usize = 64;
type Item = [u8; SIZE];
/// Queue memory: 4 MiB, as shmring's SPSC ring in `throughput`.
const FILE_SIZE: usize = 4 << 20;

/// Which queue and API a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    ShaqSpsc,
    ShaqMpmc,
    ShmringSpsc,
    ShmringMpmc,
    /// The physical limit for this loop: a raw fixed-record ring, see [`raw_batched`].
    RawBatched,
}

impl Queue {
    pub fn label(self) -> &'static str {
        match self {
            Queue::ShaqSpsc => "shaq 5.1.1 spsc",
            Queue::ShaqMpmc => "shaq 5.1.1 mpmc",
            Queue::ShmringSpsc => "shmring spsc (own API, spin)",
            Queue::ShmringMpmc => "shmring mpmc (own API, spin)",
            Queue::RawBatched => "raw 64 B records (limit)",
        }
    }
}

/// One run of `queue`, one producer process and one consumer process.
pub fn throughput(queue: Queue, p: &Params) -> Result<Rate, String> {
    assert_eq!(p.size, SIZE, "shaq items are {SIZE} bytes here");
    let batch = p.batch.max(1);
    let max = NonZeroUsize::new(batch).expect("batch >= 1");
    match queue {
        Queue::RawBatched => Ok(raw_batched(p, batch)),
        Queue::ShaqSpsc | Queue::ShaqMpmc => {
            let path = format!("/dev/shm/shm-bench-shaq-{}", std::process::id());
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| format!("{path}: {e}"))?;
            let _cleanup = Unlink(path);
            if queue == Queue::ShaqSpsc {
                // SAFETY: this process creates and initialises the queue once, as its only
                // consumer; the child joins it as the only producer, with the same item type.
                let mut rx = unsafe { shaq::spsc::Consumer::<Item>::create(&file, FILE_SIZE) }
                    .map_err(|e| format!("shaq create: {e:?}"))?;
                let child = |meet: &Rendezvous| {
                    // SAFETY: as above; the queue's one producer.
                    let mut tx =
                        unsafe { shaq::spsc::Producer::<Item>::join(&file) }.expect("shaq join");
                    produce(meet, batch, |items| {
                        let mut b = tx.write_batch();
                        let mut n = 0;
                        while n < items.len() && b.try_write(items[n]).is_ok() {
                            n += 1;
                        }
                        n // dropping the batch publishes it
                    });
                };
                Ok(one_way(p, child, |check| {
                    if let Some(b) = rx.try_reserve_read_batch(max) {
                        b.iter().for_each(|m| check(m));
                    }
                }))
            } else {
                // SAFETY: as for SPSC; one consumer here and one producer in the child.
                let rx = unsafe { shaq::mpmc::Consumer::<Item>::create(&file, FILE_SIZE) }
                    .map_err(|e| format!("shaq create: {e:?}"))?;
                let child = |meet: &Rendezvous| {
                    // SAFETY: as above.
                    let tx =
                        unsafe { shaq::mpmc::Producer::<Item>::join(&file) }.expect("shaq join");
                    produce(meet, batch, |items| {
                        if items.len() == 1 {
                            usize::from(tx.try_write(items[0]).is_ok())
                        } else if tx.try_write_slice(items) {
                            items.len()
                        } else {
                            0
                        }
                    });
                };
                Ok(one_way(p, child, |check| {
                    if let Some(b) = rx.try_reserve_read_batch(max) {
                        b.iter().for_each(|m| check(m));
                    }
                }))
            }
        }
        Queue::ShmringSpsc | Queue::ShmringMpmc => {
            use shmring::{mpmc, spsc, Config, Wait};
            let name = format!("shm-bench-native-{}", std::process::id());
            let cfg = Config::default().wait(Wait::Spin);
            macro_rules! run {
                ($m:ident, $cfg:expr) => {{
                    let mut rx =
                        $m::Receiver::create(&name, $cfg).map_err(|e| format!("{name}: {e}"))?;
                    let child = |meet: &Rendezvous| {
                        let mut tx = $m::Sender::open(&name).expect("open");
                        produce(meet, batch, |items| {
                            if items.len() == 1 {
                                // One message per call: the plain send.
                                return usize::from(tx.try_send(&items[0]).is_ok());
                            }
                            let mut b = tx.batch();
                            let mut n = 0;
                            while n < items.len() && b.try_push(&items[n]).is_ok() {
                                n += 1;
                            }
                            b.finish();
                            n
                        });
                    };
                    Ok(one_way(p, child, |check| {
                        if batch == 1 {
                            if let Ok(m) = rx.try_recv() {
                                check(&m);
                            }
                        } else if let Ok(b) = rx.try_recv_batch(batch) {
                            b.iter().for_each(|m| check(m));
                        }
                    }))
                }};
            }
            if queue == Queue::ShmringSpsc {
                run!(spsc, cfg.capacity(FILE_SIZE as u64))
            } else {
                run!(
                    mpmc,
                    cfg.capacity((FILE_SIZE / 128) as u64)
                        .slot_size(SIZE as u64)
                )
            }
        }
    }
}

/// The limit of this loop on this machine: a raw SPSC stream of fixed 64-byte records in
/// shared anonymous memory (4 MiB, as the queues), batched as shaq batches: the producer
/// copies up to `batch` stamped records in and publishes them with one Release store of its
/// index; the consumer loads that index once, hands up to `batch` records to the same checker
/// and frees them with one store of its own. No headers, no validation, no wake-ups: no queue
/// of 64-byte messages can carry more through the same `produce` / `one_way` loops.
fn raw_batched(p: &Params, batch: usize) -> Rate {
    use std::sync::atomic::{AtomicU64, Ordering};
    let slots = FILE_SIZE / SIZE;
    let mem = crate::proc::SharedAnon::new(128 + FILE_SIZE);
    let base = mem.as_ptr();
    // SAFETY: the mapping is page aligned and holds both index lines; it outlives both
    // processes' use of it (the child is joined before `mem` drops); only atomics touch them.
    let (tail, head) = unsafe {
        (
            AtomicU64::from_ptr(base.cast()),
            AtomicU64::from_ptr(base.add(64).cast()),
        )
    };
    // SAFETY: `i & (slots - 1)` is a record inside the mapping.
    let record = |i: u64| unsafe { base.add(128 + (i as usize & (slots - 1)) * SIZE) };
    let child = |meet: &Rendezvous| {
        let (mut t, mut cached_head) = (0u64, 0u64);
        produce(meet, batch, |items| {
            let mut free = slots as u64 - t.wrapping_sub(cached_head);
            if free < items.len() as u64 {
                // Acquire: pairs with the consumer's Release store of `head` below.
                cached_head = head.load(Ordering::Acquire);
                free = slots as u64 - t.wrapping_sub(cached_head);
            }
            let n = (free as usize).min(items.len());
            for (k, item) in items[..n].iter().enumerate() {
                // SAFETY: record `t + k` is free: the consumer's head is past its last lap.
                unsafe { std::ptr::copy_nonoverlapping(item.as_ptr(), record(t + k as u64), SIZE) };
            }
            t += n as u64;
            // Release: pairs with the consumer's Acquire load of `tail`: the records first.
            tail.store(t, Ordering::Release);
            n
        });
    };
    let (mut h, mut cached_tail) = (0u64, 0u64);
    one_way(p, child, |check| {
        if h == cached_tail {
            // Acquire: pairs with the producer's Release store of `tail`.
            cached_tail = tail.load(Ordering::Acquire);
        }
        let n = cached_tail.wrapping_sub(h).min(batch as u64);
        for k in 0..n {
            // SAFETY: record `h + k` was published (below the producer's tail) and is not
            // freed until the store of `head` after the checks.
            let m = unsafe { std::slice::from_raw_parts(record(h + k), SIZE) };
            check(m);
        }
        if n > 0 {
            h += n;
            // Release: pairs with the producer's Acquire load of `head`: read before reused.
            head.store(h, Ordering::Release);
        }
    })
}

/// The child's loop: stamps `batch` items at a time and hands them to `write`, which sends
/// what fits now and says how many; until the parent says stop.
fn produce(meet: &Rendezvous, batch: usize, mut write: impl FnMut(&[Item]) -> usize) {
    meet.set_ready(None);
    meet.wait_go();
    let mut items = vec![[0x3Cu8; SIZE]; batch];
    let mut seq = 0u64;
    while !meet.stopped() {
        for (k, item) in items.iter_mut().enumerate() {
            let s = (seq + k as u64).to_le_bytes();
            item[..8].copy_from_slice(&s);
            item[SIZE - 8..].copy_from_slice(&s);
        }
        seq += write(&items) as u64;
    }
}

/// The parent's side: starts the child, counts what `poll` hands to its checker for the time
/// budget, checking every item's stamps.
fn one_way(
    p: &Params,
    child: impl FnOnce(&Rendezvous),
    mut poll: impl FnMut(&mut dyn FnMut(&[u8])),
) -> Rate {
    proc::pin(p.cpus[0]);
    let meet = Rendezvous::new();
    let pid = proc::spawn(p.cpus[1], || child(&meet));
    meet.wait_ready(pid);
    let t0 = Instant::now();
    meet.go();
    let (mut count, mut sum) = (0u64, 0u64);
    // The clock is looked at every 64 polls, not after each: one look costs 40-90 ns on this
    // VM, more than a 64-byte item (at 60 M/s, 17 ns), so a look per poll measured the clock:
    // 15-23 M/s per item for shmring, whatever the queue did.
    let mut polls = 0u32;
    let secs = loop {
        poll(&mut |m: &[u8]| {
            let first = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
            let last = u64::from_le_bytes(m[SIZE - 8..SIZE].try_into().expect("8 bytes"));
            assert!(
                m.len() == SIZE && first == count && last == count,
                "item {count} arrived wrong"
            );
            sum = sum.wrapping_add(first ^ u64::from(m[SIZE / 2]));
            count += 1;
        });
        polls = polls.wrapping_add(1);
        if polls % 64 == 0 || count >= p.max_msgs {
            let t = t0.elapsed();
            if t >= p.budget || count >= p.max_msgs {
                break t.as_secs_f64();
            }
        }
    };
    meet.stop();
    proc::join(pid);
    std::hint::black_box(sum);
    Rate::new(count, SIZE, secs)
}

/// Removes the queue file when the run ends.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
