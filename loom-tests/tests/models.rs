//! loom models of shmring's rings and of the wait/wake protocol.
//!
//! The models run the very code of `shmring::ring` and `shmring::sync::wait`: built with
//! `RUSTFLAGS="--cfg shmring_loom"`, the crate's atomics shim hands them loom's atomics, and the
//! futex is replaced by a loom model in which "compare the word, then sleep" is atomic with
//! respect to a wake, and a wake of one wakes exactly one sleeper. A sleeper that is never
//! woken is a loom deadlock (the model futex has no timeout), so every model that blocks also
//! checks that no wakeup is lost.
//!
//! The rings live on the heap here. The glue between ring and wait (which event to notify
//! after which ring call) mirrors `shm/spsc.rs` and `shm/mpmc.rs`, which need real segments.
//!
//! Run: `RUSTFLAGS="--cfg shmring_loom" CARGO_TARGET_DIR=target/loom cargo test -p loom-tests --release`
//! (or `.ci/loom`).
#![cfg(shmring_loom)]

use std::ptr::NonNull;
use std::sync::Arc;

use loom::thread;
use shmring::ring::{mpmc, spsc};
use shmring::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shmring::sync::wait::{block_on, Event, WaitPolicy};
use shmring::{Error, Result, Wait};

const W: Wait = Wait::Futex;

fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    b.check(f);
}

/// `block_on` with no deadline (loom has no time) and a peer that never dies.
fn wait_for<T>(event: &Event, attempt: impl FnMut() -> Result<T>) -> Result<T> {
    block_on(W, event, &WaitPolicy::default(), None, attempt, || Ok(()))
}

// ---------------------------------------------------------------------------------------------
// SPSC

/// An SPSC ring of 64 bytes (the minimum) on the heap, with its two events.
struct Spsc {
    ctrl: Box<spsc::SpscControl>,
    data: Box<[u64; 8]>,
    readable: Event,
    writable: Event,
}

// SAFETY: the data bytes are reached only through the ring's protocol (raw pointers, handed
// from producer to consumer by the loom-tracked header words); everything else is atomic.
unsafe impl Sync for Spsc {}
// SAFETY: as above.
unsafe impl Send for Spsc {}

impl Spsc {
    fn new() -> Arc<Spsc> {
        Arc::new(Spsc {
            ctrl: Box::new(spsc::SpscControl::new()),
            data: Box::new([0; 8]),
            readable: Event::new(),
            writable: Event::new(),
        })
    }
    fn parts(&self) -> (NonNull<spsc::SpscControl>, NonNull<u8>) {
        (
            NonNull::from(&*self.ctrl),
            NonNull::new(self.data.as_ptr() as *mut u8).unwrap(),
        )
    }
    fn producer(&self) -> spsc::Producer {
        let (c, d) = self.parts();
        // SAFETY: the Arc keeps the ring alive as long as every thread that uses it.
        unsafe { spsc::Producer::attach(c, d, 64) }.unwrap()
    }
    fn consumer(&self) -> spsc::Consumer {
        let (c, d) = self.parts();
        // SAFETY: as in `producer`.
        unsafe { spsc::Consumer::attach(c, d, 64) }.unwrap()
    }

    /// `shm::spsc::Sender::reserve_until`: a Full attempt wakes the consumer (wrap marker).
    fn reserve(&self, p: &mut spsc::Producer, len: usize) -> Result<spsc::Grant> {
        wait_for(&self.writable, || {
            let r = p.try_reserve(len);
            if matches!(r, Err(Error::Full)) {
                self.readable.notify_one(W);
            }
            r
        })
    }

    fn send(&self, p: &mut spsc::Producer, msg: &[u8]) -> Result<()> {
        let g = self.reserve(p, msg.len())?;
        // SAFETY: the grant is ours until commit; `msg` is our own memory.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p.payload(&g), msg.len()) };
        p.commit(g, msg.len());
        self.readable.notify_one(W);
        Ok(())
    }

    fn recv(&self, c: &mut spsc::Consumer) -> Result<Vec<u8>> {
        let f = wait_for(&self.readable, || {
            let r = c.try_peek();
            if matches!(r, Err(Error::Empty)) {
                self.writable.notify_one(W);
            }
            r
        })?;
        // SAFETY: the frame was validated and is ours until release.
        let v = unsafe { std::slice::from_raw_parts(c.payload(&f), f.len) }.to_vec();
        c.release(f);
        self.writable.notify_one(W);
        Ok(v)
    }
}

/// Three 16-byte messages (24-byte frames) through a 64-byte ring: the third needs a wrap
/// marker, and the ring is full on the way.
#[test]
fn spsc_three_messages_wrap_around() {
    model(3, || {
        let r = Spsc::new();
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut p = r2.producer();
            for i in 0..3u8 {
                r2.send(&mut p, &[i; 16]).unwrap();
            }
        });
        let mut c = r.consumer();
        for i in 0..3u8 {
            assert_eq!(r.recv(&mut c).unwrap(), [i; 16]);
        }
        t.join().unwrap();
    });
}

/// Five messages of mixed sizes through the 64-byte ring: more than two laps, so the consumer
/// reads header words that held payload or older headers in the lap before. It must only ever
/// see the zero the producer left there or the new header (the invariant of `ring/spsc.rs`).
#[test]
fn spsc_two_laps_never_read_a_stale_header() {
    // Bound 2: 2 s here; bound 3 also passes but takes 2 minutes.
    model(2, || {
        let r = Spsc::new();
        let r2 = r.clone();
        let sizes = [24usize, 8, 40, 16, 0];
        let t = thread::spawn(move || {
            let mut p = r2.producer();
            for (i, &n) in sizes.iter().enumerate() {
                r2.send(&mut p, &vec![i as u8 + 1; n]).unwrap();
            }
        });
        let mut c = r.consumer();
        for (i, &n) in sizes.iter().enumerate() {
            assert_eq!(r.recv(&mut c).unwrap(), vec![i as u8 + 1; n]);
        }
        t.join().unwrap();
    });
}

/// A reservation dropped without commit sends nothing, even when it published a wrap marker.
#[test]
fn spsc_reserve_without_commit() {
    model(3, || {
        let r = Spsc::new();
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut p = r2.producer();
            r2.send(&mut p, &[1; 16]).unwrap();
            // 40 bytes do not fit before the end (offset 24): wrap marker, then room at 0.
            let _abandoned = r2.reserve(&mut p, 40).unwrap();
            r2.send(&mut p, &[2; 8]).unwrap();
        });
        let mut c = r.consumer();
        assert_eq!(r.recv(&mut c).unwrap(), [1; 16]);
        assert_eq!(r.recv(&mut c).unwrap(), [2; 8]);
        t.join().unwrap();
    });
}

/// The consumer sleeps on an empty ring; the producer sends one message and closes: the
/// consumer gets the message, then `Disconnected`, and never sleeps for ever.
#[test]
fn spsc_sender_closes_while_receiver_waits() {
    model(3, || {
        let r = Spsc::new();
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut p = r2.producer();
            r2.send(&mut p, &[7; 8]).unwrap();
            p.close();
            r2.readable.notify_all(W);
        });
        let mut c = r.consumer();
        assert_eq!(r.recv(&mut c).unwrap(), [7; 8]);
        assert!(matches!(r.recv(&mut c), Err(Error::Disconnected)));
        t.join().unwrap();
    });
}

/// The producer sleeps on a full ring; the consumer closes: the producer gets `Disconnected`.
#[test]
fn spsc_receiver_closes_while_sender_waits() {
    model(3, || {
        let r = Spsc::new();
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let c = r2.consumer();
            c.close();
            r2.writable.notify_all(W);
        });
        let mut p = r.producer();
        // 48 bytes (the largest message) fill the ring; the next send waits for the close.
        let first = r.send(&mut p, &[0; 48]);
        assert!(matches!(first, Ok(()) | Err(Error::Disconnected)));
        assert!(matches!(r.send(&mut p, &[0; 48]), Err(Error::Disconnected)));
        t.join().unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// MPMC

/// An MPMC ring of two 16-byte slots on the heap, with its two events.
struct Mpmc {
    ctrl: Box<mpmc::MpmcControl>,
    stamps: Box<[AtomicU64]>,
    data: Box<[u64]>,
    readable: Event,
    writable: Event,
}

const SLOTS: u64 = 2;
const SLOT: u64 = 16;

// SAFETY: as for `Spsc`: slot bytes are handed over by the loom-tracked stamps.
unsafe impl Sync for Mpmc {}
// SAFETY: as above.
unsafe impl Send for Mpmc {}

impl Mpmc {
    fn new() -> Arc<Mpmc> {
        let stamps: Box<[AtomicU64]> = (0..SLOTS).map(|_| AtomicU64::new(0)).collect();
        // SAFETY: fresh, not shared yet.
        unsafe {
            mpmc::init_stamps(
                NonNull::new(stamps.as_ptr() as *mut AtomicU64).unwrap(),
                SLOTS,
            )
        };
        Arc::new(Mpmc {
            ctrl: Box::new(mpmc::MpmcControl::new()),
            stamps,
            data: vec![0; (mpmc::data_len(SLOTS, SLOT) / 8) as usize].into_boxed_slice(),
            readable: Event::new(),
            writable: Event::new(),
        })
    }
    fn parts(&self) -> (NonNull<mpmc::MpmcControl>, NonNull<AtomicU64>, NonNull<u8>) {
        (
            NonNull::from(&*self.ctrl),
            NonNull::new(self.stamps.as_ptr() as *mut AtomicU64).unwrap(),
            NonNull::new(self.data.as_ptr() as *mut u8).unwrap(),
        )
    }
    fn producer(&self) -> mpmc::Producer {
        let (c, s, d) = self.parts();
        // SAFETY: the Arc keeps the ring alive as long as every thread that uses it.
        let p = unsafe { mpmc::Producer::attach(c, s, d, SLOTS, SLOT) }.unwrap();
        p.control().join_sender();
        p
    }
    fn consumer(&self) -> mpmc::Consumer {
        let (c, s, d) = self.parts();
        // SAFETY: as in `producer`.
        let c = unsafe { mpmc::Consumer::attach(c, s, d, SLOTS, SLOT) }.unwrap();
        c.control().join_receiver();
        c
    }

    /// `shm::mpmc::Sender::send`: claim (passing a wake on), write, commit, wake one receiver.
    fn send(&self, p: &mut mpmc::Producer, msg: &[u8]) -> Result<()> {
        let g = wait_for(&self.writable, || {
            let g = p.try_reserve(msg.len())?;
            self.writable.notify_one_if(W, || p.room());
            Ok(g)
        })?;
        // SAFETY: the slot is ours until commit; `msg` is our own memory.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p.payload(&g), msg.len()) };
        p.commit(g, msg.len());
        self.readable.notify_one(W);
        Ok(())
    }

    /// `Drop for shm::mpmc::Sender`.
    fn close_sender(&self, p: mpmc::Producer) {
        p.control().leave_sender();
        self.readable.notify_all(W);
    }

    /// `shm::mpmc::Receiver::recv_into`.
    fn recv(&self, c: &mut mpmc::Consumer) -> Result<Vec<u8>> {
        let f = wait_for(&self.readable, || {
            let f = c.try_peek()?;
            self.readable.notify_one_if(W, || c.more());
            Ok(f)
        })?;
        // SAFETY: the frame was validated and is ours until release.
        let v = unsafe { std::slice::from_raw_parts(c.payload(&f), f.len) }.to_vec();
        c.release(f);
        self.writable.notify_one(W);
        Ok(v)
    }
}

/// Two producers, one consumer, two slots: one message is already in the ring, each producer
/// sends one more, so one of them finds the ring full and sleeps until the consumer frees a
/// slot. The consumer gets all three, the prefilled one first.
#[test]
fn mpmc_two_producers_one_consumer_full() {
    model(2, || {
        let r = Mpmc::new();
        let mut p = r.producer();
        r.send(&mut p, &[9]).unwrap();
        let producers: Vec<_> = (0..2u8)
            .map(|id| {
                let r = r.clone();
                let mut p = r.producer();
                thread::spawn(move || r.send(&mut p, &[id]).unwrap())
            })
            .collect();
        let mut c = r.consumer();
        assert_eq!(r.recv(&mut c).unwrap(), [9]);
        let mut got = [r.recv(&mut c).unwrap()[0], r.recv(&mut c).unwrap()[0]];
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
        let r = Mpmc::new();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                let mut c = r.consumer();
                thread::spawn(move || r.recv(&mut c).unwrap()[0])
            })
            .collect();
        let mut p = r.producer();
        r.send(&mut p, &[0]).unwrap();
        r.send(&mut p, &[1]).unwrap();
        let mut got: Vec<u8> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
    });
}

/// The last producer leaves while a consumer sleeps: it drains, then sees `Disconnected`.
#[test]
fn mpmc_last_sender_closes_while_receiver_waits() {
    model(3, || {
        let r = Mpmc::new();
        let r2 = r.clone();
        let mut p = r.producer();
        let t = thread::spawn(move || {
            r2.send(&mut p, &[5]).unwrap();
            r2.close_sender(p);
        });
        let mut c = r.consumer();
        assert_eq!(r.recv(&mut c).unwrap(), [5]);
        assert!(matches!(r.recv(&mut c), Err(Error::Disconnected)));
        t.join().unwrap();
    });
}

/// Two producers, two sleeping consumers, one message each. The second slot may be committed
/// first, and its wake reach a consumer that then finds the first slot unwritten and sleeps
/// again: the wake passing in `recv` (`notify_one_if(more)`) must make sure nobody sleeps on a
/// ready message. Four threads: bound 1 keeps it fast.
#[test]
fn mpmc_out_of_order_commit_wakes_pass_on() {
    model(1, || {
        let r = Mpmc::new();
        // The main thread is one consumer: it blocks at once, so the other threads run without
        // spending the preemption bound, which goes to "a producer stops between claim and
        // commit".
        let r1 = r.clone();
        let mut c1 = r.consumer();
        let other = thread::spawn(move || r1.recv(&mut c1).unwrap()[0]);
        let producers: Vec<_> = (0..2u8)
            .map(|id| {
                let r = r.clone();
                let mut p = r.producer();
                thread::spawn(move || r.send(&mut p, &[id]).unwrap())
            })
            .collect();
        let mut c0 = r.consumer();
        let mine = r.recv(&mut c0).unwrap()[0];
        for p in producers {
            p.join().unwrap();
        }
        let mut got = [mine, other.join().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
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
            ev2.0.notify_one(W);
        });
        wait_for(&ev.0, || {
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
                    wait_for(&ev.0, || {
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
            ev.0.notify_one(W);
        }
        for s in sleepers {
            s.join().unwrap();
        }
    });
}
