//! Kill campaigns against the MPMC ring: producers and consumers in their own processes, one of
//! them SIGKILLed at a random moment (2–20 ms apart), a replacement started after each kill.
//! After every kill both sides must make progress within a deadline (no wedge), and at the end
//! every message is accounted for as documented (`ring::mpmc` docs, "Delivery"): no message is
//! delivered twice, and at most one message is lost per kill (the one the killed process had
//! claimed or held).
//!
//! `SHMRING_KILLS` sets the kills per campaign (150 by default, which keeps each campaign well
//! under a minute); docs/RELIABILITY.md records long runs.

mod common;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::{child_param, is_child, serial, spawn_self, unique_name, ChildGuard, Rng};
use shmring::{mpmc, Config, Error};

/// Producer ids (a producer process takes a fresh one, and another when its sequence fills).
const IDS: u64 = 4096;
/// Messages per producer id.
const SEQS: u64 = 1 << 16;
/// How long one side may go without progress after a kill before the ring counts as wedged.
const DEADLINE: Duration = Duration::from_secs(5);

/// Words of the shared board (a sparse file every process maps).
const NEXT_ID: usize = 0;
const RECEIVED: usize = 1;
const SENT: usize = 2;
const STOP_PRODUCERS: usize = 3;
const STOP_CONSUMERS: usize = 4;
/// Per id: messages committed (counted after `send` returned).
const COMMITTED: usize = 64;
const COUNTS_AT: usize = (COMMITTED + IDS as usize) * 8;
const BOARD_LEN: usize = COUNTS_AT + (IDS * SEQS) as usize;

/// Shared counters: the campaign's record, which survives the processes that write it.
struct Board {
    map: memmap2::MmapRaw,
}

impl Board {
    fn create(path: &str) -> Self {
        let f = std::fs::File::create(path).unwrap();
        f.set_len(BOARD_LEN as u64).unwrap();
        Self::open(path)
    }
    fn open(path: &str) -> Self {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        Board {
            map: memmap2::MmapOptions::new()
                .len(BOARD_LEN)
                .map_raw(&f)
                .unwrap(),
        }
    }
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i * 8 < COUNTS_AT);
        // SAFETY: inside the mapping, 8-aligned (page-aligned base), accessed only atomically
        // by every process, and alive as long as `self`.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(i * 8).cast()) }
    }
    fn count(&self, id: u64, seq: u64) -> &AtomicU8 {
        assert!(id < IDS && seq < SEQS);
        // SAFETY: inside the mapping (BOARD_LEN covers IDS * SEQS counters), accessed only
        // atomically, alive as long as `self`.
        unsafe {
            AtomicU8::from_ptr(
                self.map
                    .as_mut_ptr()
                    .add(COUNTS_AT + (id * SEQS + seq) as usize),
            )
        }
    }
    fn get(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Victim {
    Producers,
    Consumers,
}

/// A producer process: sends `[id, seq]` until told to stop; busy (`try_send`, spinning) or
/// blocking (`send_timeout`).
fn producer(board: &Board, name: &str, busy: bool) {
    let mut tx = mpmc::Sender::open(name).unwrap();
    let mut id = board.word(NEXT_ID).fetch_add(1, Ordering::SeqCst);
    let mut seq = 0u64;
    while board.get(STOP_PRODUCERS) == 0 {
        if seq == SEQS {
            id = board.word(NEXT_ID).fetch_add(1, Ordering::SeqCst);
            seq = 0;
        }
        assert!(id < IDS, "out of producer ids");
        let mut msg = [0u8; 16];
        msg[..8].copy_from_slice(&id.to_le_bytes());
        msg[8..].copy_from_slice(&seq.to_le_bytes());
        let r = if busy {
            tx.try_send(&msg)
        } else {
            tx.send_timeout(&msg, Duration::from_millis(50))
        };
        match r {
            Ok(()) => {
                seq += 1;
                board
                    .word(COMMITTED + id as usize)
                    .store(seq, Ordering::SeqCst);
                board.word(SENT).fetch_add(1, Ordering::SeqCst);
            }
            Err(Error::Full) => std::hint::spin_loop(),
            Err(Error::Timeout | Error::PeerDead) => {}
            Err(e) => panic!("producer: {e}"),
        }
    }
}

/// A consumer process: receives until told to stop and the ring is drained; busy
/// (`try_recv_into`, `try_recv`) or blocking (`recv_into_timeout`, `recv_timeout`), copying
/// out and holding zero-copy guards in turn.
fn consumer(board: &Board, name: &str, busy: bool) {
    let mut rx = mpmc::Receiver::open(name).unwrap();
    let mut buf = Vec::new();
    let mut n = 0u64;
    let mut idle_since_stop = 0;
    loop {
        n += 1;
        let timeout = Duration::from_millis(20);
        let got: Result<[u8; 16], Error> = if n % 2 == 0 {
            let r = if busy {
                rx.try_recv()
            } else {
                rx.recv_timeout(timeout)
            };
            r.map(|g| g[..].try_into().unwrap())
        } else {
            let r = if busy {
                rx.try_recv_into(&mut buf)
            } else {
                rx.recv_into_timeout(&mut buf, timeout)
            };
            r.map(|_| buf[..].try_into().unwrap())
        };
        match got {
            Ok(m) => {
                let id = u64::from_le_bytes(m[..8].try_into().unwrap());
                let seq = u64::from_le_bytes(m[8..].try_into().unwrap());
                board.count(id, seq).fetch_add(1, Ordering::SeqCst);
                board.word(RECEIVED).fetch_add(1, Ordering::SeqCst);
                idle_since_stop = 0;
            }
            Err(Error::Empty | Error::Timeout | Error::PeerDead | Error::Disconnected) => {
                if board.get(STOP_CONSUMERS) != 0 {
                    idle_since_stop += 1;
                    if idle_since_stop > 50 {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                } else {
                    std::hint::spin_loop();
                }
            }
            Err(e) => panic!("consumer: {e}"),
        }
    }
}

fn kills() -> u32 {
    std::env::var("SHMRING_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150)
}

/// Waits until `board[word]` exceeds `above`; false after `DEADLINE`.
fn progresses(board: &Board, word: usize, above: u64) -> bool {
    let t0 = Instant::now();
    while board.get(word) <= above {
        if t0.elapsed() > DEADLINE {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

struct Outcome {
    kills: u32,
    sent: u64,
    received: u64,
    lost: u64,
    secs: f64,
}

fn campaign(test: &str, victim: Victim, busy: bool) -> Outcome {
    let board_path = format!("/dev/shm/{}-board", unique_name("kill"));
    let name = unique_name("kill");
    let board = Board::create(&board_path);
    let cfg = Config::default()
        .capacity(8)
        .slot_size(16)
        .max_senders(8)
        .max_receivers(8);
    // Keeps the name (and a receiver count) for the whole campaign; never receives.
    let keeper = mpmc::Receiver::create(&name, cfg).unwrap();
    let spawn = |role: &str, i: u64| -> ChildGuard {
        let mode = if busy { "busy" } else { "blocking" };
        let _ = i;
        spawn_self(
            test,
            &[
                ("ROLE", role.to_owned()),
                ("MODE", mode.to_owned()),
                ("NAME", name.clone()),
                ("BOARD", board_path.clone()),
            ],
        )
    };
    let mut producers: Vec<ChildGuard> = (0..2).map(|i| spawn("producer", i)).collect();
    let mut consumers: Vec<ChildGuard> = (0..3).map(|i| spawn("consumer", i)).collect();
    assert!(progresses(&board, RECEIVED, 0), "no message ever arrived");
    let mut rng = Rng(0x5EED ^ u64::from(std::process::id()));
    let t0 = Instant::now();
    let total = kills();
    for k in 0..total {
        std::thread::sleep(Duration::from_micros(2000 + rng.next() % 18_000));
        let pool = match victim {
            Victim::Producers => &mut producers,
            Victim::Consumers => &mut consumers,
        };
        let i = (rng.next() % pool.len() as u64) as usize;
        pool.swap_remove(i).kill();
        let role = match victim {
            Victim::Producers => "producer",
            Victim::Consumers => "consumer",
        };
        pool.push(spawn(role, u64::from(k)));
        let (sent, received) = (board.get(SENT), board.get(RECEIVED));
        assert!(
            progresses(&board, RECEIVED, received),
            "wedged after kill {k}: consumers made no progress in {DEADLINE:?}"
        );
        assert!(
            progresses(&board, SENT, sent),
            "wedged after kill {k}: producers made no progress in {DEADLINE:?}"
        );
    }
    let secs = t0.elapsed().as_secs_f64();
    board.word(STOP_PRODUCERS).store(1, Ordering::SeqCst);
    for p in producers {
        p.join(Duration::from_secs(30));
    }
    board.word(STOP_CONSUMERS).store(1, Ordering::SeqCst);
    for c in consumers {
        c.join(Duration::from_secs(30));
    }
    drop(keeper);
    // Every message counted at most once; the committed ones that never arrived are the
    // ones killed processes held, at most one per kill.
    let mut lost = 0u64;
    for id in 0..board.get(NEXT_ID).min(IDS) {
        let committed = board.get(COMMITTED + id as usize);
        for seq in 0..SEQS {
            let c = board.count(id, seq).load(Ordering::SeqCst);
            assert!(c <= 1, "message {id}/{seq} delivered {c} times");
            if seq < committed && c == 0 {
                lost += 1;
            }
        }
    }
    let out = Outcome {
        kills: total,
        sent: board.get(SENT),
        received: board.get(RECEIVED),
        lost,
        secs,
    };
    let _ = std::fs::remove_file(&board_path);
    assert!(
        out.lost <= u64::from(total),
        "{} messages lost in {} kills",
        out.lost,
        total
    );
    eprintln!(
        "campaign {victim:?} {}: {} kills, 0 wedges, {} sent, {} received, {} lost, {:.1} s",
        if busy { "busy" } else { "blocking" },
        out.kills,
        out.sent,
        out.received,
        out.lost,
        out.secs
    );
    out
}

/// In a child: play the role the parent gave. True if this process is a child.
fn child() -> bool {
    if !is_child() {
        return false;
    }
    let board = Board::open(&child_param("BOARD").unwrap());
    let name = child_param("NAME").unwrap();
    let busy = child_param("MODE").unwrap() == "busy";
    match child_param("ROLE").unwrap().as_str() {
        "producer" => producer(&board, &name, busy),
        _ => consumer(&board, &name, busy),
    }
    true
}

#[test]
fn kill_consumers_busy() {
    if child() {
        return;
    }
    let _serial = serial();
    campaign("kill_consumers_busy", Victim::Consumers, true);
}

#[test]
fn kill_consumers_blocking() {
    if child() {
        return;
    }
    let _serial = serial();
    campaign("kill_consumers_blocking", Victim::Consumers, false);
}

#[test]
fn kill_producers_busy() {
    if child() {
        return;
    }
    let _serial = serial();
    campaign("kill_producers_busy", Victim::Producers, true);
}

#[test]
fn kill_producers_blocking() {
    if child() {
        return;
    }
    let _serial = serial();
    campaign("kill_producers_blocking", Victim::Producers, false);
}
