//! loom models of shmring's channel halves, rings and wait/wake protocol.
//!
//! The models drive the production halves (`shmring::spsc`, `shmring::mpmc`) through the
//! crate's loom entry module (`shmring::loom`, which exists only under `--cfg shmring_loom`):
//! the same generic half, ring code and ring-to-wait glue that run in production, over heap
//! memory laid out as a segment is. The crate's atomics shim hands them loom's atomics, and the
//! futex is replaced by a loom model in which "compare the word, then sleep" is atomic with
//! respect to a wake, and a wake of one wakes exactly one sleeper. A sleeper that is never
//! woken is a loom deadlock (the model futex has no timeout), so every model that blocks also
//! checks that no wakeup is lost.
//!
//! Halves are attached before threads are spawned, so that the model explores the messages,
//! not the attach bookkeeping.
//!
//! Payload bytes are checked by value and, under loom, through one `loom::cell::UnsafeCell` per
//! SPSC data word or MPMC slot that the rings touch while a side owns those bytes: a payload
//! access the protocol does not order fails the model ("Causality violation"). The `*_spin_*`
//! models wait with `Wait::Spin`: with the futex, the `fence(SeqCst)` that `notify` issues after
//! every commit and release orders what a weakened Release would not, and hides it.
//! `.ci/loom-mutants` checks that every ordering of the rings and the wait protocol is caught
//! when weakened, and names the models that catch each.
//!
//! Run: `RUSTFLAGS="--cfg shmring_loom" CARGO_TARGET_DIR=target/loom cargo test -p loom-tests --release`
//! (or `.ci/loom`).
#![cfg(shmring_loom)]

use std::sync::Arc;

use loom::thread;
use shmring::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use shmring::loom::{
    arm_poller, disarm_poller, halt_receiver, halt_sender, kill, resume_sender, wait_for,
    Broadcast, Event, Half, Halt, Heap, Mpmc, Overflow, Spsc,
};
use shmring::{Config, Error, Wait};

const W: Wait = Wait::Futex;

/// Checks `f` in every interleaving with at most `bound` preemptions, or fewer if
/// `LOOM_MAX_PREEMPTIONS` says so (`.ci/loom-mutants` runs models at a lower bound: a weakened
/// ordering shows up in the values loads may return, which the bound does not limit).
fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(b.preemption_bound.map_or(bound, |env| env.min(bound)));
    // The recovery models poll (try, liveness check, yield) up to 64 rounds, and each check
    // reads every participant's intent word: more branches than loom's default of 1000.
    b.max_branches = 20_000;
    b.check(f);
}

/// An SPSC channel with a 64-byte ring (the minimum) on the heap.
fn spsc() -> (shmring::spsc::Sender, shmring::spsc::Receiver) {
    spsc_with(W)
}

/// As [`spsc`], waiting with `wait`.
fn spsc_with(wait: Wait) -> (shmring::spsc::Sender, shmring::spsc::Receiver) {
    let heap = Heap::<Spsc>::new(Config::default().capacity(64).wait(wait)).unwrap();
    (heap.sender().unwrap(), heap.receiver().unwrap())
}

/// An MPMC channel of two 16-byte slots on the heap.
fn mpmc() -> Heap<Mpmc> {
    mpmc_with(W)
}

/// As [`mpmc`], waiting with `wait`.
fn mpmc_with(wait: Wait) -> Heap<Mpmc> {
    Heap::<Mpmc>::new(Config::default().capacity(2).slot_size(16).wait(wait)).unwrap()
}

fn recv<R: shmring::channel::Receiver>(rx: &mut R) -> shmring::Result<Vec<u8>> {
    let mut buf = Vec::new();
    rx.recv_into(&mut buf)?;
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------
// SPSC

/// Three 16-byte messages (24-byte frames) through a 64-byte ring: the third needs a wrap
/// marker, and the ring is full on the way. Bound 2 (it was 3, and took most of the suite's
/// time): every mutant `.ci/loom-mutants` applies is caught at bound 1, and so is a producer or
/// consumer that skips its wake on `Full` / `Empty` (by `spsc_reserve_without_commit`).
#[test]
fn spsc_three_messages_wrap_around() {
    model(2, || {
        let (mut tx, mut rx) = spsc();
        let t = thread::spawn(move || {
            for i in 0..3u8 {
                tx.send(&[i; 16]).unwrap();
            }
        });
        for i in 0..3u8 {
            assert_eq!(recv(&mut rx).unwrap(), [i; 16]);
        }
        t.join().unwrap();
    });
}

/// Five messages of mixed sizes through the 64-byte ring: more than two laps, so the consumer
/// reads header words that held payload or older headers in the lap before. It must only ever
/// see the zero the producer left there or the new header (the invariant of `ring/spsc.rs`).
#[test]
fn spsc_two_laps_never_read_a_stale_header() {
    model(2, || {
        let (mut tx, mut rx) = spsc();
        let sizes = [24usize, 8, 40, 16, 0];
        let t = thread::spawn(move || {
            for (i, &n) in sizes.iter().enumerate() {
                tx.send(&vec![i as u8 + 1; n]).unwrap();
            }
        });
        for (i, &n) in sizes.iter().enumerate() {
            assert_eq!(recv(&mut rx).unwrap(), vec![i as u8 + 1; n]);
        }
        t.join().unwrap();
    });
}

/// A reservation dropped without commit sends nothing, even when it published a wrap marker.
/// Bound 2 (it was 3): a skipped wake on `Full` or `Empty` deadlocks it at bound 1 already.
#[test]
fn spsc_reserve_without_commit() {
    model(2, || {
        let (mut tx, mut rx) = spsc();
        let t = thread::spawn(move || {
            tx.send(&[1; 16]).unwrap();
            // 40 bytes do not fit before the end (offset 24): wrap marker, then room at 0.
            drop(tx.reserve(40).unwrap());
            tx.send(&[2; 8]).unwrap();
        });
        assert_eq!(recv(&mut rx).unwrap(), [1; 16]);
        assert_eq!(recv(&mut rx).unwrap(), [2; 8]);
        t.join().unwrap();
    });
}

/// The receiver sleeps on an empty ring; the sender sends one message and drops: the receiver
/// gets the message, then `Disconnected`, and never sleeps for ever.
#[test]
fn spsc_sender_closes_while_receiver_waits() {
    model(3, || {
        let (mut tx, mut rx) = spsc();
        let t = thread::spawn(move || {
            tx.send(&[7; 8]).unwrap();
            drop(tx);
        });
        assert_eq!(recv(&mut rx).unwrap(), [7; 8]);
        assert!(matches!(recv(&mut rx), Err(Error::Disconnected)));
        t.join().unwrap();
    });
}

/// The ring's own orderings, without the wait protocol: with `Wait::Spin` no `SeqCst` fence
/// follows a commit or a release (with the futex, `notify` issues one after each, and a fence
/// followed by a Relaxed store publishes like a Release store, which would hide a weakened
/// one). Messages of 8, 8 and 32 bytes: the producer reads `head` after the first release
/// (room for the wrap marker at 32), then needs the wrap skip itself (room for 48 bytes at 0,
/// over the second message's payload, whose release it never read): only the skip's Release
/// orders the consumer's read of that payload before the overwrite. Then the sender closes,
/// and the close must not overtake the last message.
#[test]
fn spsc_spin_wrap_over_unread_release_then_close() {
    model(2, || {
        let (mut tx, mut rx) = spsc_with(Wait::Spin);
        let t = thread::spawn(move || {
            tx.send(&[1; 8]).unwrap();
            tx.send(&[2; 8]).unwrap();
            tx.send(&[3; 32]).unwrap();
        });
        assert_eq!(recv(&mut rx).unwrap(), [1; 8]);
        assert_eq!(recv(&mut rx).unwrap(), [2; 8]);
        assert_eq!(recv(&mut rx).unwrap(), [3; 32]);
        assert!(matches!(recv(&mut rx), Err(Error::Disconnected)));
        t.join().unwrap();
    });
}

/// Batches both ways, waiting with `Wait::Spin` (no fence to hide a weakened ordering): two
/// 16-byte messages staged and published by one flush (the first header's Release orders the
/// second frame, stored Relaxed), received as one batch and given back by one store of `head`;
/// a second batch needs that room, so only the flush's Release orders the consumer's reads
/// before the producer's overwrite.
#[test]
fn spsc_spin_batches_publish_and_free_together() {
    model(2, || {
        let (mut tx, mut rx) = spsc_with(Wait::Spin);
        let t = thread::spawn(move || {
            for round in 0..2u8 {
                let mut batch = tx.batch();
                batch.push(&[round * 2 + 1; 16]).unwrap();
                batch.push(&[round * 2 + 2; 16]).unwrap();
                // The second round may find the ring full and publish early (then fewer).
                let n = batch.finish();
                assert!(n == 2 || round == 1 && n <= 2, "{n}");
            }
        });
        let mut seen = 0u8;
        while seen < 4 {
            let got = rx.recv_batch(8).unwrap();
            for m in got.iter() {
                seen += 1;
                assert_eq!(m, [seen; 16]);
            }
        }
        t.join().unwrap();
    });
}

/// Frames committed one by one (each header its own Release) and received in batches: the
/// batch loop (`Consumer::take_ready`) reaches a later frame by its own Acquire load of that
/// frame's header, not through the first one's, and the third frame's wrap marker goes to
/// the general path (`try_peek`) in the middle of a batch, with frames taken.
#[test]
fn spsc_spin_recv_batch_takes_frames_published_apart() {
    model(2, || {
        let (mut tx, mut rx) = spsc_with(Wait::Spin);
        let t = thread::spawn(move || {
            for i in 1..=3u8 {
                tx.send(&[i; 16]).unwrap();
            }
        });
        let mut seen = 0u8;
        while seen < 3 {
            let got = rx.recv_batch(8).unwrap();
            for m in got.iter() {
                seen += 1;
                assert_eq!(m, [seen; 16]);
            }
        }
        t.join().unwrap();
    });
}

/// MPMC batches: one producer stages two messages (each slot claimed and marked on its own)
/// while another sends one; the consumer takes what is ready as one batch and frees it
/// together. Every message arrives once, each producer's in order.
#[test]
fn mpmc_batch_with_a_concurrent_sender() {
    model(1, || {
        let heap = mpmc();
        let mut a = heap.sender().unwrap();
        let mut b = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        let ta = thread::spawn(move || {
            let mut batch = a.batch();
            batch.push(&[1]).unwrap();
            batch.push(&[2]).unwrap();
            batch.finish();
            a
        });
        let tb = thread::spawn(move || {
            b.send(&[3]).unwrap();
            b
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            let batch = rx.recv_batch(4).unwrap();
            got.extend(batch.iter().map(|m| m[0]));
        }
        let from_a: Vec<u8> = got.iter().copied().filter(|&m| m != 3).collect();
        assert_eq!(from_a, [1, 2], "{got:?}");
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3]);
        drop((ta.join().unwrap(), tb.join().unwrap()));
    });
}

/// An MPMC producer killed in the middle of a batch: it holds two staged claims (each
/// marked), so the consumer stuck behind them frees both on their marks, while a live
/// producer sends; only the live message arrives (at most once).
#[test]
fn mpmc_producer_killed_mid_batch_is_recovered() {
    model(1, || {
        let heap = mpmc();
        let mut doomed = heap.sender().unwrap();
        let mut live = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        let mut batch = doomed.batch();
        batch.push(&[8]).unwrap();
        batch.push(&[9]).unwrap();
        std::mem::forget(batch); // SIGKILLed: neither published nor given up
        kill(doomed);
        let t = thread::spawn(move || {
            live.send(&[3]).unwrap();
            live
        });
        assert_eq!(recv_recovering(&mut rx).unwrap(), [3]);
        drop(t.join().unwrap());
    });
}

/// An MPMC producer killed while it publishes a batch, which goes last claim first: the
/// second staged slot is inside `publish` (length stored, stamp not, named only by the intent),
/// the first still carries its mark. The consumer stuck at the first frees it on its mark, the
/// second on the intent, and gets the live producer's message, which waited for room behind
/// them (a ring of two slots); nothing of the dead batch arrives.
#[test]
fn mpmc_producer_killed_mid_flush_is_recovered() {
    model(1, || {
        let heap = mpmc();
        let mut doomed = heap.sender().unwrap();
        let mut live = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        halt_sender(&mut doomed, Halt::InPublish);
        let mut batch = doomed.batch();
        batch.push(&[8]).unwrap();
        batch.push(&[9]).unwrap();
        batch.finish(); // stops inside the first publish: the second claim's
        kill(doomed);
        let t = thread::spawn(move || {
            live.send(&[3]).unwrap();
            live
        });
        assert_eq!(recv_recovering(&mut rx).unwrap(), [3]);
        assert!(matches!(
            rx.try_recv_into(&mut Vec::new()),
            Err(Error::Empty)
        ));
        drop(t.join().unwrap());
    });
}

/// The sender sleeps on a full ring; the receiver drops: the sender gets `Disconnected`.
#[test]
fn spsc_receiver_closes_while_sender_waits() {
    model(3, || {
        let (mut tx, rx) = spsc();
        let t = thread::spawn(move || drop(rx));
        // 48 bytes (the largest message) fill the ring; the next send waits for the close.
        let first = tx.send(&[0; 48]);
        assert!(matches!(first, Ok(()) | Err(Error::Disconnected)));
        assert!(matches!(tx.send(&[0; 48]), Err(Error::Disconnected)));
        t.join().unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Broadcast

/// A broadcast channel of `slots` 16-byte slots on the heap, with `policy`, waiting with `wait`.
fn broadcast(policy: Overflow, wait: Wait, slots: u64) -> Heap<Broadcast> {
    let cfg = Config::default()
        .capacity(slots)
        .slot_size(16)
        .overflow(policy)
        .wait(wait);
    Heap::<Broadcast>::new(cfg).unwrap()
}

/// Reads `n` messages `[1; 16]`, `[2; 16]`, … with `recv`, then `Disconnected`.
fn read_all_of(rx: &mut shmring::broadcast::Receiver, n: u8) {
    for i in 1..=n {
        assert_eq!(recv(rx).unwrap(), [i; 16], "message {i}");
    }
    assert!(matches!(recv(rx), Err(Error::Disconnected)));
}

/// One writer, one reader, `Block`, two slots, waiting with `Wait::Spin` (no fence of the
/// wait protocol to hide a weakened ordering): three messages of different lengths, so the
/// writer must find the ring full, rescan the reader's cursor and see its release before it
/// rewrites the first slot; the reader sees every message whole and in order (payload checked
/// by value and, per slot, through loom's causality checker; the length word is a loom atomic),
/// then `Disconnected` once the writer left: the leave must not overtake the last message.
#[test]
fn broadcast_spin_writer_reuses_a_slot_only_after_its_release() {
    model(2, || {
        let heap = broadcast(Overflow::Block, Wait::Spin, 2);
        let mut tx = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        let w = thread::spawn(move || {
            for i in 1..=3u8 {
                tx.send(&vec![i; 4 * i as usize]).unwrap();
            }
        });
        for i in 1..=3u8 {
            assert_eq!(
                recv(&mut rx).unwrap(),
                vec![i; 4 * i as usize],
                "message {i}"
            );
        }
        assert!(matches!(recv(&mut rx), Err(Error::Disconnected)));
        w.join().unwrap();
    });
}

/// One writer, two readers, `Block`, two slots, waiting with the futex: three messages, so the
/// writer must wait for the slower reader before it reuses the first slot; both readers see
/// every message, whole and in order, then `Disconnected`. Two readers asleep on the empty ring
/// are both woken by each publication (the writer wakes every sleeping reader, and only when
/// one sleeps), and the writer asleep on the full ring is woken by the slower reader's release.
/// Nobody sleeps for ever (a lost wakeup is a loom deadlock).
#[test]
fn broadcast_two_readers_see_every_message() {
    model(1, || {
        let heap = broadcast(Overflow::Block, W, 2);
        let mut tx = heap.sender().unwrap();
        let mut a = heap.receiver().unwrap();
        let mut b = heap.receiver().unwrap();
        let w = thread::spawn(move || {
            for i in 1..=3u8 {
                tx.send(&[i; 16]).unwrap();
            }
        });
        let t = thread::spawn(move || read_all_of(&mut b, 3));
        read_all_of(&mut a, 3);
        t.join().unwrap();
        w.join().unwrap();
    });
}

/// `Overwrite`, two slots: the writer never waits and sends four messages (lengths 4, 8, 12,
/// 16) while the reader reads; whatever the interleaving, every message the reader returns is
/// the one due (never torn, never a newer one in an older one's place: the copy is validated by
/// the stamp re-check), every skip is reported as `Lagged { missed }`, and messages read plus
/// missed account for all four before `Disconnected`.
///
/// In `Overwrite` mode the reader copies the payload with plain atomic loads of the real
/// memory, which loom does not model (they always see the newest bytes, where loom's stamp
/// loads may return an older store), so the payload's bytes are not the check here: the
/// length word is a loom atomic written in the write window (checked per message), and the
/// ring's own witness word, stored by the writer in the window and loaded inside the copy,
/// makes the ring assert under loom that a validated copy is of its own message.
#[test]
fn broadcast_overwrite_lapped_reader_is_told_and_never_torn() {
    model(2, || {
        let heap = broadcast(Overflow::Overwrite, Wait::Spin, 2);
        let mut tx = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        let w = thread::spawn(move || {
            for i in 1..=4u8 {
                tx.send(&vec![i; 4 * i as usize]).unwrap();
            }
        });
        let mut next = 0u64; // position of the next message due
        loop {
            match recv(&mut rx) {
                Ok(m) => {
                    assert_eq!(m.len() as u64, 4 * (next + 1), "message at position {next}");
                    next += 1;
                }
                Err(Error::Lagged { missed }) => {
                    assert!(missed > 0);
                    next += missed;
                }
                Err(Error::Disconnected) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(next, 4, "read + missed account for every message");
        w.join().unwrap();
    });
}

/// `Block`, two slots: the slow reader holds its first message as a zero-copy guard (over the
/// slot itself) while the writer sends two more; the second one needs that slot, so the writer
/// waits (asleep on the futex) for the slowest reader. The guard's bytes stay the first
/// message until it drops (checked by value, and by loom's causality checker on the slot's
/// payload cell), the fast reader sees all three, and the slow one then the rest.
#[test]
fn broadcast_block_writer_waits_for_the_slowest_reader() {
    model(1, || {
        let heap = broadcast(Overflow::Block, W, 2);
        let mut tx = heap.sender().unwrap();
        let mut fast = heap.receiver().unwrap();
        let mut slow = heap.receiver().unwrap();
        tx.send(&[1; 16]).unwrap();
        let w = thread::spawn(move || {
            tx.send(&[2; 16]).unwrap();
            tx.send(&[3; 16]).unwrap();
        });
        let t = thread::spawn(move || read_all_of(&mut fast, 3));
        {
            let g = slow.recv().unwrap();
            thread::yield_now();
            assert_eq!(&*g, &[1; 16], "the held slot was not overwritten");
        }
        assert_eq!(recv(&mut slow).unwrap(), [2; 16]);
        assert_eq!(recv(&mut slow).unwrap(), [3; 16]);
        t.join().unwrap();
        w.join().unwrap();
    });
}

/// Batches both ways in `Block` mode, waiting with `Wait::Spin`: two messages staged and
/// published by one flush (each stamp stored with Release at the flush), taken as one batch
/// and given back by one cursor store; a second batch needs those slots, so only the
/// reader's flush orders its reads before the writer's rewrite.
#[test]
fn broadcast_spin_batches_publish_and_free_together() {
    model(1, || {
        let heap = broadcast(Overflow::Block, Wait::Spin, 2);
        let mut tx = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        let w = thread::spawn(move || {
            for round in 0..2u8 {
                let mut batch = tx.batch();
                batch.push(&[round * 2 + 1; 16]).unwrap();
                // The second round may find the ring full: the push publishes the first
                // message early, then waits for room (the finish publishes fewer).
                batch.push(&[round * 2 + 2; 16]).unwrap();
                let n = batch.finish();
                assert!(n == 2 || round == 1 && n <= 2, "{n}");
            }
        });
        let mut seen = 0u8;
        while seen < 4 {
            let got = rx.recv_batch(8).unwrap();
            for m in got.iter() {
                seen += 1;
                assert_eq!(m, [seen; 16]);
            }
        }
        w.join().unwrap();
    });
}

/// `Block`, two slots: a reader dies (its liveness place released, its cursor left at 0) and
/// never reads. The writer, blocked behind it on the full ring, detaches it in its liveness
/// check and goes on; the live reader sees all four messages.
#[test]
fn broadcast_block_dead_reader_is_detached() {
    model(2, || {
        let heap = broadcast(Overflow::Block, Wait::Spin, 2);
        let mut tx = heap.sender().unwrap();
        let mut live = heap.receiver().unwrap();
        let dead = heap.receiver().unwrap();
        kill(dead);
        let w = thread::spawn(move || {
            for i in 1..=4u8 {
                loop {
                    match tx.try_send(&[i; 16]) {
                        Ok(()) => break,
                        Err(Error::Full) => {
                            tx.check().unwrap();
                            thread::yield_now();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        read_all_of(&mut live, 4);
        w.join().unwrap();
    });
}

/// `Block`, two slots, history 1, waiting with `Wait::Spin`: a reader joins (attaches and
/// activates its place, in its own thread) while the writer sends four messages. Before the
/// joiner is active the writer counts nobody, so its minimum follows its own position (less the
/// history) and it overwrites slots freely; the join handshake (ring/broadcast.rs, "Joining":
/// the joiner raises `joins`, then starts no lower than the writer's published `writer_min`;
/// the writer re-reads `joins` after publishing it and scans again if it changed) must keep the
/// joiner from starting at a position the writer may already be overwriting. The joiner gets a
/// gap-free run of whole messages ending with the last one (a slot overwritten under it is
/// `Corrupted` in `Block` mode, a concurrent rewrite a causality violation on the slot's payload
/// cell), then `Disconnected`.
#[test]
fn broadcast_spin_reader_joins_while_block_writer_runs() {
    model(2, || {
        let cfg = Config::default()
            .capacity(2)
            .slot_size(16)
            .history(1)
            .overflow(Overflow::Block)
            .wait(Wait::Spin);
        let heap = Heap::<Broadcast>::new(cfg).unwrap();
        let mut tx = heap.sender().unwrap();
        let w = thread::spawn(move || {
            for i in 1..=4u8 {
                tx.send(&[i; 16]).unwrap();
            }
        });
        let mut rx = heap.receiver().unwrap();
        let mut last = None::<u8>;
        loop {
            match recv(&mut rx) {
                Ok(m) => {
                    let i = m[0];
                    assert_eq!(m, [i; 16], "a whole message");
                    if let Some(prev) = last {
                        assert_eq!(i, prev + 1, "gap-free after the join");
                    }
                    last = Some(i);
                }
                Err(Error::Disconnected) => break,
                Err(e) => panic!("joiner: {e}"),
            }
        }
        assert_eq!(last, Some(4), "the joiner sees the newest message");
        w.join().unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// MPMC

/// Two producers, one consumer, two slots: one message is already in the ring, each producer
/// sends one more, so one of them finds the ring full and sleeps until the consumer frees a
/// slot. The consumer gets all three, the prefilled one first.
#[test]
fn mpmc_two_producers_one_consumer_full() {
    model(2, || {
        let heap = mpmc();
        let mut first = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        first.send(&[9]).unwrap();
        let producers: Vec<_> = (0..2u8)
            .map(|id| {
                let mut tx = heap.sender().unwrap();
                thread::spawn(move || tx.send(&[id]).unwrap())
            })
            .collect();
        assert_eq!(recv(&mut rx).unwrap(), [9]);
        let mut got = [recv(&mut rx).unwrap()[0], recv(&mut rx).unwrap()[0]];
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        for p in producers {
            p.join().unwrap();
        }
    });
}

/// One producer, two consumers sleeping on the empty ring: two messages, one each, nobody
/// sleeps for ever, nothing is delivered twice.
#[test]
fn mpmc_one_producer_two_consumers_empty() {
    model(2, || {
        let heap = mpmc();
        let mut tx = heap.sender().unwrap();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let mut rx = heap.receiver().unwrap();
                thread::spawn(move || recv(&mut rx).unwrap()[0])
            })
            .collect();
        tx.send(&[0]).unwrap();
        tx.send(&[1]).unwrap();
        let mut got: Vec<u8> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
    });
}

/// The last producer leaves while a consumer sleeps: it drains, then sees `Disconnected`.
#[test]
fn mpmc_last_sender_closes_while_receiver_waits() {
    model(3, || {
        let heap = mpmc();
        let mut tx = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        let t = thread::spawn(move || {
            tx.send(&[5]).unwrap();
            drop(tx);
        });
        assert_eq!(recv(&mut rx).unwrap(), [5]);
        assert!(matches!(recv(&mut rx), Err(Error::Disconnected)));
        t.join().unwrap();
    });
}

/// The last producer leaves with `Wait::Spin` (no `SeqCst` fence after its commit, see
/// `spsc_spin_wrap_over_unread_release_then_close`): the consumer that sees every producer gone
/// looks once more, and the Release of the leave must make the last commit visible to that look.
#[test]
fn mpmc_spin_last_sender_leaves() {
    model(2, || {
        let heap = mpmc_with(Wait::Spin);
        let mut tx = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        let t = thread::spawn(move || {
            tx.send(&[5, 6, 7]).unwrap();
            drop(tx);
        });
        assert_eq!(recv(&mut rx).unwrap(), [5, 6, 7]);
        assert!(matches!(recv(&mut rx), Err(Error::Disconnected)));
        t.join().unwrap();
    });
}

/// Two producers, two sleeping consumers, one message each. The second slot may be committed
/// first, and its wake reach a consumer that then finds the first slot unwritten and sleeps
/// again: the wake passing of the half (`notify_one_if(more)`) must make sure nobody sleeps on
/// a ready message. Four threads: bound 1 keeps it fast.
#[test]
fn mpmc_out_of_order_commit_wakes_pass_on() {
    model(1, || {
        let heap = mpmc();
        let mut rx0 = heap.receiver().unwrap();
        let mut rx1 = heap.receiver().unwrap();
        let senders: Vec<_> = (0..2).map(|_| heap.sender().unwrap()).collect();
        // The main thread is one consumer: it blocks at once, so the other threads run without
        // spending the preemption bound, which goes to "a producer stops between claim and
        // commit".
        let other = thread::spawn(move || recv(&mut rx1).unwrap()[0]);
        let producers: Vec<_> = senders
            .into_iter()
            .zip(0..2u8)
            .map(|(mut tx, id)| thread::spawn(move || tx.send(&[id]).unwrap()))
            .collect();
        let mine = recv(&mut rx0).unwrap()[0];
        for p in producers {
            p.join().unwrap();
        }
        let mut got = [mine, other.join().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
    });
}

/// Receives with `try_` and, while empty, runs the half's liveness check (what the wait loop
/// does once per slice), yielding in between. Bounded: a wedge fails the model.
fn recv_recovering(rx: &mut shmring::mpmc::Receiver) -> shmring::Result<Vec<u8>> {
    let mut buf = Vec::new();
    for _ in 0..64 {
        match rx.try_recv_into(&mut buf) {
            Ok(_) => return Ok(buf),
            Err(Error::Empty) => {
                rx.check()?;
                thread::yield_now();
            }
            Err(e) => return Err(e),
        }
    }
    panic!("the receiver never got past the dead producer's slot");
}

/// A producer claims a slot and dies before committing, while another producer sends: the
/// consumer, stuck behind the dead claim, recovers it (a skip) and gets the live message. The
/// recovery (owner mark read, CAS of the length word, Release of the stamp) runs against the
/// live producer's claim and commit in every interleaving.
#[test]
fn mpmc_dead_producer_slot_is_recovered() {
    model(2, || {
        let heap = mpmc();
        let mut doomed = heap.sender().unwrap();
        let mut live = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        let d = thread::spawn(move || {
            let slot = doomed.reserve(8).unwrap();
            std::mem::forget(slot);
            kill(doomed);
        });
        let t = thread::spawn(move || {
            live.send(&[3]).unwrap();
            live
        });
        assert_eq!(recv_recovering(&mut rx).unwrap(), [3]);
        d.join().unwrap();
        drop(t.join().unwrap());
    });
}

/// A consumer claims a message and dies holding it: a producer blocked on the full ring frees
/// the dead consumer's slot (at most once: that message is not delivered again) and its send
/// goes through; the surviving consumer gets the messages behind it.
#[test]
fn mpmc_dead_consumer_slot_is_recovered() {
    model(2, || {
        let heap = mpmc();
        let mut tx = heap.sender().unwrap();
        let mut doomed = heap.receiver().unwrap();
        let mut rx = heap.receiver().unwrap();
        tx.send(&[1]).unwrap();
        tx.send(&[2]).unwrap();
        let d = thread::spawn(move || {
            let guard = doomed.recv().unwrap();
            assert_eq!(&*guard, [1]);
            std::mem::forget(guard);
            kill(doomed);
        });
        d.join().unwrap();
        // The survivor stays attached until the end (returned by its thread): with every live
        // receiver gone, `PeerDead` would be the right answer to the sender.
        let t = thread::spawn(move || {
            assert_eq!(recv(&mut rx).unwrap(), [2]);
            rx
        });
        let mut sent = false;
        for _ in 0..64 {
            match tx.try_send(&[3]) {
                Ok(()) => {
                    sent = true;
                    break;
                }
                Err(Error::Full) => {
                    tx.check().unwrap();
                    thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(sent, "the sender never got past the dead consumer's slot");
        drop(t.join().unwrap());
    });
}

/// A producer dies holding a claimed slot; one consumer (the main thread) clears it, another
/// consumer reads past it. The clearer and the reader are different threads, so only the
/// Release of the recovery's stamp store (`Watcher::clear_abandoned`) orders the skip's length
/// word before the reader sees the stamp: without it the reader can find the dead producer's
/// owner mark where the length should be.
#[test]
fn mpmc_dead_producer_slot_cleared_by_another_consumer() {
    model(3, || {
        let heap = mpmc();
        let mut doomed = heap.sender().unwrap();
        let mut live = heap.sender().unwrap();
        let clearer = heap.receiver().unwrap();
        let mut reader = heap.receiver().unwrap();
        std::mem::forget(doomed.reserve(8).unwrap());
        kill(doomed);
        live.send(&[3, 4, 5]).unwrap();
        let t = thread::spawn(move || {
            let mut buf = Vec::new();
            for _ in 0..64 {
                match reader.try_recv_into(&mut buf) {
                    Ok(_) => return (reader, buf),
                    Err(Error::Empty) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            panic!("the reader never got past the dead producer's slot");
        });
        clearer.check().unwrap();
        let (_reader, got) = t.join().unwrap();
        assert_eq!(got, [3, 4, 5]);
        drop(live);
    });
}

/// A consumer dies while it reads a message; one producer (the main thread) frees the dead
/// consumer's slot, another producer writes into it. Only the Release of the recovery's stamp
/// store orders the dead consumer's read of the slot (made visible to the clearer by the
/// liveness lock) before the second producer's write: without it loom reports the payload
/// cell accessed out of order.
#[test]
fn mpmc_dead_consumer_slot_freed_for_another_producer() {
    model(2, || {
        let heap = mpmc();
        let clearer = heap.sender().unwrap();
        let mut writer = heap.sender().unwrap();
        let mut doomed = heap.receiver().unwrap();
        let mut rx = heap.receiver().unwrap();
        {
            let mut tx = heap.sender().unwrap();
            tx.send(&[1]).unwrap();
            tx.send(&[2, 2]).unwrap();
        }
        let d = thread::spawn(move || {
            let guard = doomed.recv().unwrap();
            assert_eq!(&*guard, [1]);
            std::mem::forget(guard);
            kill(doomed);
        });
        let w = thread::spawn(move || {
            for _ in 0..64 {
                match writer.try_send(&[4, 4, 4, 4]) {
                    Ok(()) => return writer,
                    Err(Error::Full) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            panic!("the writer never got past the dead consumer's slot");
        });
        d.join().unwrap();
        clearer.check().unwrap();
        let _writer = w.join().unwrap();
        assert_eq!(recv(&mut rx).unwrap(), [2, 2]);
        assert_eq!(recv(&mut rx).unwrap(), [4, 4, 4, 4]);
    });
}

/// A producer killed between its `tail` CAS and its owner mark (the slot holds last lap's
/// word): its intent names it, and the consumer stuck behind it skips the slot once it finds
/// it dead, while the live producer's claim and commit run in every interleaving.
#[test]
fn mpmc_producer_killed_between_claim_and_mark_is_recovered() {
    model(2, || {
        let heap = mpmc();
        let mut doomed = heap.sender().unwrap();
        let mut live = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        halt_sender(&mut doomed, Halt::AfterClaim);
        let d = thread::spawn(move || {
            assert!(doomed.try_send(&[9]).is_err(), "halted after the claim");
            kill(doomed);
        });
        let t = thread::spawn(move || {
            live.send(&[3]).unwrap();
            live
        });
        d.join().unwrap();
        assert_eq!(recv_recovering(&mut rx).unwrap(), [3]);
        drop(t.join().unwrap());
    });
}

/// A producer killed inside `publish`, between the length store and the stamp store: its
/// message is given up as a skip (at most once), the live producer's arrives.
#[test]
fn mpmc_producer_killed_inside_publish_is_recovered() {
    model(2, || {
        let heap = mpmc();
        let mut doomed = heap.sender().unwrap();
        let mut live = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        halt_sender(&mut doomed, Halt::InPublish);
        let d = thread::spawn(move || {
            doomed.send(&[9]).unwrap(); // the stamp store never happens
            kill(doomed);
        });
        let t = thread::spawn(move || {
            live.send(&[3]).unwrap();
            live
        });
        d.join().unwrap();
        assert_eq!(recv_recovering(&mut rx).unwrap(), [3]);
        assert!(matches!(
            rx.try_recv_into(&mut Vec::new()),
            Err(Error::Empty)
        ));
        drop(t.join().unwrap());
    });
}

/// A dead producer's intent names a position it never claimed (it died between its intent store
/// and its CAS), and a live producer claims that position and publishes an empty message, which
/// writes back the very length word the slot held before (0): an ABA that the length word's CAS
/// in recovery cannot see. The consumer's recovery must learn from the live producer's moved-on
/// intent (its next claim's, or withdrawn after a `Full`) that the claim was published (the
/// stamp re-check in `Watcher::unblock`) and leave the slot alone; else it turns the live
/// message into a skip and the empty message is lost.
///
/// The live producer and the consumer run in two threads that never synchronise except through
/// the ring, so that in the schedule where the producer runs to its end first, the consumer's
/// first look may read any of its stores (loom returns older values only to a thread that has
/// not synchronised with the newer store and has not seen the older one before a yield). That
/// is what lets a weakened Release of the intent (claim or withdraw) or of the `tail` CAS, or a
/// weakened Acquire of the intent load, show as the stale stamp that clobbers the message.
#[test]
fn mpmc_live_claimer_races_recovery_on_a_dead_intent() {
    model(2, || {
        let heap = mpmc_with(Wait::Spin);
        let mut doomed = heap.sender().unwrap();
        let mut live = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        halt_sender(&mut doomed, Halt::BeforeClaim);
        assert!(doomed.try_send(&[9]).is_err(), "halted before the claim");
        kill(doomed);
        let p = thread::spawn(move || {
            live.send(&[]).unwrap();
            // Moves the live producer's intent on.
            live.send(&[4]).unwrap();
            // `Full` (withdrawing the intent) unless the consumer took the empty message.
            let third = live.try_send(&[5]).is_ok();
            (live, third)
        });
        let c = thread::spawn(move || {
            // Recovery first, before any load the consumer could see again after a yield.
            rx.check().unwrap();
            assert_eq!(recv_recovering(&mut rx).unwrap(), Vec::<u8>::new());
            assert_eq!(recv_recovering(&mut rx).unwrap(), [4]);
            rx
        });
        let (live, third) = p.join().unwrap();
        let mut rx = c.join().unwrap();
        if third {
            assert_eq!(recv_recovering(&mut rx).unwrap(), [5]);
        }
        drop(live);
    });
}

/// The consumer side of the race above: a dead consumer's intent names position 0, which it
/// never claimed, while a live consumer claims 0 and 1 (then finds the ring empty, withdrawing
/// its intent) and a producer of the same thread refills 0's slot with a message of the same
/// length as the one taken from it (so the length word reads as it did: an ABA). A producer in
/// another thread, stuck on the full ring, recovers: it must learn from the live consumer's
/// moved-on intent that slot 0 was freed, and not clear the new message's length word. The two
/// threads synchronise only through the ring (see the model above), so a weakened Release of
/// the consumer's intent (claim or withdraw) or of the `head` CAS shows as a stale stamp.
#[test]
fn mpmc_live_consumer_races_recovery_on_a_dead_intent() {
    model(2, || {
        let heap = mpmc_with(Wait::Spin);
        let mut tx = heap.sender().unwrap();
        let mut refill = heap.sender().unwrap();
        let mut doomed = heap.receiver().unwrap();
        let mut rx = heap.receiver().unwrap();
        tx.send(&[1]).unwrap();
        tx.send(&[2]).unwrap();
        halt_receiver(&mut doomed, Halt::BeforeClaim);
        assert!(
            doomed.try_recv_into(&mut Vec::new()).is_err(),
            "halted before the claim"
        );
        kill(doomed);
        let c = thread::spawn(move || {
            let mut got = vec![recv(&mut rx).unwrap(), recv(&mut rx).unwrap()];
            let mut buf = Vec::new();
            if rx.try_recv_into(&mut buf).is_ok() {
                got.push(buf);
            }
            refill.send(&[3]).unwrap();
            (rx, refill, got)
        });
        let p = thread::spawn(move || {
            for _ in 0..64 {
                match tx.try_send(&[4]) {
                    Ok(()) => return tx,
                    Err(Error::Full) => {
                        tx.check().unwrap();
                        thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            panic!("the sender never got past the full ring");
        });
        let (mut rx, _refill, mut got) = c.join().unwrap();
        let _tx = p.join().unwrap();
        while got.len() < 4 {
            got.push(recv(&mut rx).unwrap());
        }
        got.sort();
        assert_eq!(got, [vec![1], vec![2], vec![3], vec![4]]);
    });
}

/// A newcomer must not take the place of a dead claimer whose claim is still ambiguous: the
/// dead winner of position 0 (killed between its CAS and its mark) and a live participant stopped
/// between its intent and its CAS both name 0. Taking the dead one's place would overwrite the
/// only record of the claim with the newcomer's first intent, and once the stopped one moves on,
/// nothing would name the slot: a wedge. The newcomer takes another place; the slot is freed
/// once no live participant names it, and every later message arrives.
#[test]
fn mpmc_newcomer_skips_the_place_of_an_ambiguous_dead_claim() {
    model(1, || {
        let heap = mpmc();
        let mut dead = heap.sender().unwrap();
        let mut stopped = heap.sender().unwrap();
        let mut rx = heap.receiver().unwrap();
        halt_sender(&mut stopped, Halt::BeforeClaim);
        assert!(stopped.try_send(&[8]).is_err(), "stopped before its CAS");
        halt_sender(&mut dead, Halt::AfterClaim);
        assert!(
            dead.try_send(&[9]).is_err(),
            "halted after winning position 0"
        );
        kill(dead);
        let mut newcomer = heap.sender().unwrap();
        newcomer.send(&[5]).unwrap();
        // While the stopped participant lives, position 0 may be its claim: nothing is freed.
        assert!(matches!(
            rx.try_recv_into(&mut Vec::new()),
            Err(Error::Empty)
        ));
        rx.check().unwrap();
        assert!(matches!(
            rx.try_recv_into(&mut Vec::new()),
            Err(Error::Empty)
        ));
        // The stopped participant is continued: the ring is full (0 stuck, 1 holds [5]), so its
        // call withdraws its intent, and only the dead winner's record (kept) names 0.
        resume_sender(&mut stopped);
        assert!(matches!(stopped.try_send(&[8]), Err(Error::Full)));
        assert_eq!(recv_recovering(&mut rx).unwrap(), [5]);
        stopped.send(&[8]).unwrap();
        assert_eq!(recv_recovering(&mut rx).unwrap(), [8]);
        drop((newcomer, stopped));
    });
}

/// A consumer killed between its `head` CAS and its owner mark: the producer blocked on the
/// full ring frees the slot on the dead consumer's intent; the live consumer's claims race it.
#[test]
fn mpmc_consumer_killed_between_claim_and_mark_is_recovered() {
    model(2, || {
        let heap = mpmc();
        let mut tx = heap.sender().unwrap();
        let mut doomed = heap.receiver().unwrap();
        let mut rx = heap.receiver().unwrap();
        tx.send(&[1]).unwrap();
        tx.send(&[2]).unwrap();
        halt_receiver(&mut doomed, Halt::AfterClaim);
        let d = thread::spawn(move || {
            assert!(doomed.try_recv_into(&mut Vec::new()).is_err(), "halted");
            kill(doomed);
        });
        d.join().unwrap();
        let t = thread::spawn(move || {
            assert_eq!(recv(&mut rx).unwrap(), [2]);
            rx
        });
        let mut sent = false;
        for _ in 0..64 {
            match tx.try_send(&[3]) {
                Ok(()) => {
                    sent = true;
                    break;
                }
                Err(Error::Full) => {
                    tx.check().unwrap();
                    thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(sent, "the sender never got past the dead consumer's claim");
        drop(t.join().unwrap());
    });
}

// ---------------------------------------------------------------------------------------------
// The wait/wake protocol alone

/// One sleeper, one notifier: the flag set before `notify_one` is never missed (a lost wakeup
/// would leave the sleeper on the model futex for ever: a loom deadlock).
#[test]
fn wait_no_lost_wakeup() {
    model(3, || {
        let ev = Arc::new((Event::new(), AtomicU32::new(0)));
        let ev2 = ev.clone();
        let t = thread::spawn(move || {
            // Release: pairs with the Acquire load in the sleeper's attempt.
            ev2.1.store(1, Ordering::Release);
            let _ = ev2.0.notify_one(W);
        });
        wait_for(W, &ev.0, || {
            if ev.1.load(Ordering::Acquire) == 1 {
                Ok(())
            } else {
                Err(Error::Empty)
            }
        })
        .unwrap();
        t.join().unwrap();
    });
}

/// One notifier, two events, one fence: it publishes a flag for each of two sleepers (one per
/// event) and wakes both with `notify_one_and_one_if` (what an MPMC `send` does for the
/// receivers' event and the pass-on to the senders' event). Neither sleeper may be missed: the
/// shared fence must order both publications before both `waiters` loads.
#[test]
fn wait_one_fence_for_two_events_loses_no_wakeup() {
    model(2, || {
        let ev = Arc::new((
            Event::new(),
            Event::new(),
            AtomicU32::new(0),
            AtomicU32::new(0),
        ));
        let ev2 = ev.clone();
        let t = thread::spawn(move || {
            wait_for(W, &ev2.1, || {
                // Acquire: pairs with the Release store of the notifier.
                if ev2.3.load(Ordering::Acquire) == 1 {
                    Ok(())
                } else {
                    Err(Error::Empty)
                }
            })
            .unwrap();
        });
        let ev3 = ev.clone();
        let n = thread::spawn(move || {
            // Release: pair with the Acquire loads in the sleepers' attempts.
            ev3.2.store(1, Ordering::Release);
            ev3.3.store(1, Ordering::Release);
            let _ = ev3.0.notify_one_and_one_if(W, &ev3.1, W, || true);
        });
        wait_for(W, &ev.0, || {
            if ev.2.load(Ordering::Acquire) == 1 {
                Ok(())
            } else {
                Err(Error::Empty)
            }
        })
        .unwrap();
        t.join().unwrap();
        n.join().unwrap();
    });
}

/// A poller (an event loop's doorbell) announces itself and re-checks; a notifier publishes
/// and notifies. Either the poller's re-check sees the change, or the mask the notifier returns
/// (the doorbells it rings) holds the poller's bit: never neither, the lost wakeup of an event
/// loop. Covers the poller's announcement (Release count, SeqCst fence) and the notifier's
/// Acquire re-load of the count that makes the poller's bit visible.
#[test]
fn wait_poller_is_rung_or_sees_the_change() {
    model(3, || {
        let ev = Arc::new((Event::new(), AtomicU32::new(0), AtomicU64::new(0)));
        let ev2 = ev.clone();
        let t = thread::spawn(move || {
            // Release: pairs with the Acquire load of the poller's re-check.
            ev2.1.store(1, Ordering::Release);
            let rung = ev2.0.notify_one(W);
            ev2.2.store(rung, Ordering::Relaxed);
        });
        arm_poller(&ev.0, 5);
        let seen = ev.1.load(Ordering::Acquire) == 1;
        t.join().unwrap();
        let rung = ev.2.load(Ordering::Relaxed);
        assert!(
            seen || rung & (1 << 5) != 0,
            "the poller neither saw the change nor was rung (mask {rung:#x})"
        );
        disarm_poller(&ev.0);
    });
}

/// Two sleepers, two tokens, one `notify_one` per token: each sleeper takes one token, and
/// neither sleeps for ever (a wake reaches one sleeper only, in the model as in the kernel).
#[test]
fn wait_two_sleepers_notify_one_each() {
    model(2, || {
        let ev = Arc::new((Event::new(), AtomicU32::new(0)));
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let ev = ev.clone();
                thread::spawn(move || {
                    wait_for(W, &ev.0, || {
                        // Take a token if there is one (a lost CAS race is retried at once:
                        // another sleeper took a token, which is progress).
                        let mut n = ev.1.load(Ordering::Acquire);
                        loop {
                            if n == 0 {
                                return Err(Error::Empty);
                            }
                            match ev.1.compare_exchange(
                                n,
                                n - 1,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            ) {
                                Ok(_) => return Ok(()),
                                Err(now) => n = now,
                            }
                        }
                    })
                    .unwrap();
                })
            })
            .collect();
        for _ in 0..2 {
            ev.1.fetch_add(1, Ordering::Release);
            let _ = ev.0.notify_one(W);
        }
        for s in sleepers {
            s.join().unwrap();
        }
    });
}
