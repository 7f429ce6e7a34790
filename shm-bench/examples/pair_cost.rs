//! The software cost of a 64-byte message, for callgrind: `n` send+recv pairs in one process
//! (no cross-core traffic), one mode per run. Instruction counts are deterministic, so two runs
//! with different `n` give the cost of one pair as their difference over the extra pairs:
//!
//! ```text
//! cargo build --release -p shm-bench --example pair_cost
//! for n in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
//!     target/release/examples/pair_cost spsc-single $n
//! done   # (Ir(200000) - Ir(100000)) / 100000 = instructions per pair
//! ```
//!
//! Modes: `spsc-single` (`send` + `recv_into`, inherent API), `spsc-guard` (`try_send` +
//! `try_recv`, the zero-copy guard), `spsc-batch` (64-message `batch().push` + `recv_batch`),
//! `spsc-dyn` (through `channel::Sender` / `channel::Receiver`, as `shm-bench` does),
//! `spsc-dyn-batch` (64-message `send_batch` + `recv_batch` into a `channel::Batch`, as
//! `shm-bench throughput --batch 64` does), `mpmc-single`, `mpmc-batch`, `bcast-guard`
//! (broadcast `try_send` + `try_recv`, one reader, `Overflow::Block`, as `shm-bench fanout`
//! drives it), `bcast-overwrite` (the same in `Overflow::Overwrite`: the validated copy), and
//! through the traits with futex waiting (the wake bookkeeping; nobody sleeps) `spsc-futex`,
//! `mpmc-futex`.

use std::hint::black_box;

use shmring::broadcast::{self, Overflow};
use shmring::{mpmc, spsc, Config, Wait};

const SIZE: usize = 64;
const BATCH: usize = 64;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "spsc-single".into());
    let n: usize = args
        .next()
        .map(|s| s.parse().expect("n: a number of pairs"))
        .unwrap_or(100_000);
    let name = format!("pair-cost-{}", std::process::id());
    let msg = [0x5Au8; SIZE];
    let mut buf = Vec::with_capacity(SIZE);
    let spin = Config::default().wait(Wait::Spin);
    match mode.as_str() {
        "spsc-single" | "spsc-guard" | "spsc-batch" => {
            let mut tx = spsc::Sender::create(&name, spin.capacity(1 << 16)).expect("create");
            let mut rx = spsc::Receiver::open(&name).expect("open");
            match mode.as_str() {
                "spsc-single" => spsc_single(&mut tx, &mut rx, &msg, &mut buf, n),
                "spsc-guard" => {
                    for _ in 0..n {
                        tx.try_send(black_box(&msg)).unwrap();
                        black_box(rx.try_recv().unwrap()[SIZE - 1]);
                    }
                }
                _ => {
                    for _ in 0..n / BATCH {
                        let mut b = tx.batch();
                        for _ in 0..BATCH {
                            b.try_push(black_box(&msg)).unwrap();
                        }
                        b.finish();
                        let got = rx.try_recv_batch(BATCH).unwrap();
                        for m in got.iter() {
                            black_box(m[SIZE - 1]);
                        }
                    }
                }
            }
        }
        "spsc-dyn" => {
            let url = format!("shm://{name}?ring=spsc&capacity=64KiB&wait=spin");
            let mut rx = shmring::listen(&url).expect("listen");
            let mut tx = shmring::connect(&url).expect("connect");
            for _ in 0..n {
                tx.send(black_box(&msg)).unwrap();
                rx.recv_into(&mut buf).unwrap();
                black_box(&buf);
            }
        }
        "spsc-dyn-batch" => {
            let url = format!("shm://{name}?ring=spsc&capacity=64KiB&wait=spin");
            let mut rx = shmring::listen(&url).expect("listen");
            let mut tx = shmring::connect(&url).expect("connect");
            let msgs = [msg; BATCH];
            let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
            let mut batch = shmring::channel::Batch::new();
            for _ in 0..n / BATCH {
                assert_eq!(tx.try_send_batch(black_box(&refs)).unwrap(), BATCH);
                assert_eq!(rx.try_recv_batch(&mut batch, BATCH).unwrap(), BATCH);
                for m in batch.iter() {
                    black_box(m[SIZE - 1]);
                }
            }
        }
        "mpmc-futex" | "spsc-futex" => {
            // Futex waiting: the wake bookkeeping (fences, `waiters` loads, MPMC pass-on) that
            // spin skips; nobody sleeps here, so no system call.
            let ring = if mode == "mpmc-futex" {
                "mpmc&capacity=1024&slot=64"
            } else {
                "spsc&capacity=64KiB"
            };
            let url = format!("shm://{name}?ring={ring}&wait=futex");
            let mut rx = shmring::listen(&url).expect("listen");
            let mut tx = shmring::connect(&url).expect("connect");
            for _ in 0..n {
                tx.send(black_box(&msg)).unwrap();
                rx.recv_into(&mut buf).unwrap();
                black_box(&buf);
            }
        }
        "mpmc-single" | "mpmc-batch" => {
            let cfg = spin.capacity(1024).slot_size(SIZE as u64);
            let mut tx = mpmc::Sender::create(&name, cfg).expect("create");
            let mut rx = mpmc::Receiver::open(&name).expect("open");
            if mode == "mpmc-single" {
                for _ in 0..n {
                    tx.send(black_box(&msg)).unwrap();
                    rx.recv_into(&mut buf).unwrap();
                    black_box(&buf);
                }
            } else {
                for _ in 0..n / BATCH {
                    let mut b = tx.batch();
                    for _ in 0..BATCH {
                        b.try_push(black_box(&msg)).unwrap();
                    }
                    b.finish();
                    let got = rx.try_recv_batch(BATCH).unwrap();
                    for m in got.iter() {
                        black_box(m[SIZE - 1]);
                    }
                }
            }
        }
        "bcast-guard" | "bcast-overwrite" => {
            let policy = if mode == "bcast-guard" {
                Overflow::Block
            } else {
                Overflow::Overwrite
            };
            let cfg = spin
                .capacity(1024)
                .slot_size(SIZE as u64)
                .max_receivers(1)
                .overflow(policy);
            let mut tx = broadcast::Sender::create(&name, cfg).expect("create");
            let mut rx = broadcast::Receiver::open(&name).expect("open");
            bcast_guard(&mut tx, &mut rx, &msg, n);
        }
        other => panic!("unknown mode {other:?}"),
    }
}

/// Its own function, so that its loop is easy to find in the disassembly.
#[inline(never)]
fn spsc_single(
    tx: &mut spsc::Sender,
    rx: &mut spsc::Receiver,
    msg: &[u8; SIZE],
    buf: &mut Vec<u8>,
    n: usize,
) {
    for _ in 0..n {
        tx.send(black_box(msg)).unwrap();
        rx.recv_into(buf).unwrap();
        black_box(&buf);
    }
}

/// Its own function, as `spsc_single`.
#[inline(never)]
fn bcast_guard(
    tx: &mut broadcast::Sender,
    rx: &mut broadcast::Receiver,
    msg: &[u8; SIZE],
    n: usize,
) {
    for _ in 0..n {
        tx.try_send(black_box(msg)).unwrap();
        black_box(rx.try_recv().unwrap()[SIZE - 1]);
    }
}
