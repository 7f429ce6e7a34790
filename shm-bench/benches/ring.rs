//! Ring operations in one process (no cross-core traffic): the software cost of the fast path.
//!
//! `cargo bench -p shm-bench --bench ring`

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
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
    g.bench_function("batch of 256 x 64B (spin)", |b| {
        b.iter_batched(
            || (),
            |()| {
                for _ in 0..256 {
                    tx.try_send(&msg).unwrap();
                }
                for _ in 0..256 {
                    black_box(rx.try_recv().unwrap()[0]);
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, spsc_ops);
criterion_main!(benches);
