//! Ring operations in one process (no cross-core traffic): the software cost of the fast path.
//!
//! `cargo bench -p shm-bench --bench ring`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use shmring::{spsc, Config, Wait};

fn pair(tag: &str, wait: Wait) -> (spsc::Sender, spsc::Receiver) {
    let name = format!("bench-ring-{tag}-{}", std::process::id());
    let tx = spsc::Sender::create(&name, Config::default().capacity(1 << 16).wait(wait))
        .expect("create");
    let rx = spsc::Receiver::open(&name).expect("open");
    (tx, rx)
}

fn spsc_ops(c: &mut Criterion) {
    let msg = [0x5Au8; 64];
    let mut g = c.benchmark_group("spsc");
    g.throughput(Throughput::Elements(1));
    for (label, wait) in [("spin", Wait::Spin), ("futex", Wait::Futex)] {
        let (mut tx, mut rx) = pair(label, wait);
        let mut buf = Vec::with_capacity(64);
        g.bench_function(format!("send+recv_into 64B ({label})"), |b| {
            b.iter(|| {
                tx.send(black_box(&msg)).unwrap();
                rx.recv_into(&mut buf).unwrap();
            })
        });
        g.bench_function(format!("reserve/commit + recv guard 64B ({label})"), |b| {
            b.iter(|| {
                let mut slot = tx.reserve(64).unwrap();
                slot.copy_from_slice(black_box(&msg));
                slot.commit(64);
                black_box(rx.recv().unwrap()[0]);
            })
        });
    }
    let (mut tx, mut rx) = pair("batch", Wait::Spin);
    g.throughput(Throughput::Elements(256));
    g.bench_function("batch of 256 x 64B send, then 256 recv (spin)", |b| {
        b.iter(|| {
            for _ in 0..256 {
                tx.try_send(black_box(&msg)).unwrap();
            }
            for _ in 0..256 {
                black_box(rx.try_recv().unwrap()[0]);
            }
        })
    });
    g.bench_function(
        "batch of 256 x 64B reserve/commit, then 256 recv (spin)",
        |b| {
            b.iter(|| {
                for i in 0..256u32 {
                    let mut slot = tx.try_reserve(64).unwrap();
                    slot[..4].copy_from_slice(&i.to_le_bytes());
                    slot[4..].copy_from_slice(black_box(&msg[4..]));
                    slot.commit(64);
                }
                for _ in 0..256 {
                    black_box(rx.try_recv().unwrap()[0]);
                }
            })
        },
    );
    g.finish();
}

/// The MPMC ring in one process: one sender and one receiver handle, 64-byte messages.
fn mpmc_ops(c: &mut Criterion) {
    use shmring::mpmc;
    let msg = [0x5Au8; 64];
    let mut g = c.benchmark_group("mpmc");
    for (label, wait) in [("spin", Wait::Spin), ("futex", Wait::Futex)] {
        let name = format!("bench-ring-mpmc-{label}-{}", std::process::id());
        let cfg = Config::default().capacity(1024).slot_size(64).wait(wait);
        let mut tx = mpmc::Sender::create(&name, cfg).expect("create");
        let mut rx = mpmc::Receiver::open(&name).expect("open");
        let mut buf = Vec::with_capacity(64);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("send+recv_into 64B ({label})"), |b| {
            b.iter(|| {
                tx.send(black_box(&msg)).unwrap();
                rx.recv_into(&mut buf).unwrap();
            })
        });
        g.bench_function(format!("reserve/commit + recv guard 64B ({label})"), |b| {
            b.iter(|| {
                let mut slot = tx.reserve(64).unwrap();
                slot.copy_from_slice(black_box(&msg));
                slot.commit(64);
                black_box(rx.recv().unwrap()[0]);
            })
        });
        g.throughput(Throughput::Elements(256));
        g.bench_function(format!("batch of 256 x 64B ({label})"), |b| {
            b.iter(|| {
                for _ in 0..256 {
                    tx.try_send(&msg).unwrap();
                }
                for _ in 0..256 {
                    black_box(rx.try_recv().unwrap()[0]);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, spsc_ops, mpmc_ops);
criterion_main!(benches);
