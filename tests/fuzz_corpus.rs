//! Replays the committed fuzz corpus on stable Rust, plus bursts of random inputs, through the
//! same entry points the cargo-fuzz targets call (`shmring::fuzzing`).

mod common;

use common::Rng;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory is committed") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        f(&bytes);
        n += 1;
    }
    assert!(n >= 5, "{dir} has only {n} inputs");
}

#[test]
fn spsc_read_corpus_replays_cleanly() {
    replay("spsc_read", shmring::fuzzing::spsc_read);
}

#[test]
fn segment_open_corpus_replays_cleanly() {
    replay("segment_open", shmring::fuzzing::segment_open);
}

#[test]
fn frame_decode_corpus_replays_cleanly() {
    replay("frame_decode", shmring::fuzzing::frame_decode);
}

#[test]
fn mpmc_read_corpus_replays_cleanly() {
    replay("mpmc_read", shmring::fuzzing::mpmc_read);
}

#[test]
fn mpmc_read_random_inputs() {
    let mut rng = Rng(17);
    for _ in 0..20_000 {
        let len = (rng.next() % 700) as usize;
        let mut input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Plausible positions and stamps often enough to reach the slot checks.
        if len > 18 + 16 * 8 && rng.next() % 2 == 0 {
            let head = rng.next() % 64;
            let tail = head + rng.next() % 4;
            input[2..10].copy_from_slice(&head.to_le_bytes());
            input[10..18].copy_from_slice(&tail.to_le_bytes());
            for i in 0..16u64 {
                let stamp = head + i + rng.next() % 3;
                input[18 + 8 * i as usize..26 + 8 * i as usize]
                    .copy_from_slice(&stamp.to_le_bytes());
            }
        }
        shmring::fuzzing::mpmc_read(&input);
    }
}

#[test]
fn spsc_read_random_inputs() {
    let mut rng = Rng(99);
    for _ in 0..50_000 {
        let len = (rng.next() % 600) as usize;
        let mut input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make the positions valid often enough to reach the read path.
        if len > 17 && rng.next() % 2 == 0 {
            let head = (rng.next() % 4096) * 8;
            let tail = head + (rng.next() % 9) * 8;
            input[1..9].copy_from_slice(&head.to_le_bytes());
            input[9..17].copy_from_slice(&tail.to_le_bytes());
        }
        // Make headers plausible often enough to reach past the tag check.
        if len > 25 && rng.next() % 2 == 0 {
            let tag = if rng.next() % 3 == 0 {
                0x5348_4D57u64
            } else {
                0x5348_4D46
            };
            let word = (tag << 32) | (rng.next() % 1100);
            input[17..25].copy_from_slice(&word.to_le_bytes());
        }
        shmring::fuzzing::spsc_read(&input);
    }
}

/// Mutations of the valid seed header: each field in turn gets random values.
#[test]
fn segment_open_mutated_headers() {
    let seed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/segment_open/valid_empty"
    ))
    .unwrap();
    let mut rng = Rng(5);
    for _ in 0..2_000 {
        let mut image = seed.clone();
        for _ in 0..(1 + rng.next() % 3) {
            let at = (rng.next() % 16 * 8) as usize;
            let v = match rng.next() % 3 {
                0 => rng.next(),
                1 => rng.next() % 8192,
                _ => 1 << (rng.next() % 40),
            };
            image[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        shmring::fuzzing::segment_open(&image);
    }
}

#[test]
fn frame_decode_random_streams() {
    let mut rng = Rng(3);
    for _ in 0..5_000 {
        let mut stream = Vec::new();
        for _ in 0..(rng.next() % 6) {
            let len = match rng.next() % 4 {
                0 => rng.next() as u32,
                _ => (rng.next() % 300) as u32,
            };
            stream.extend_from_slice(&len.to_le_bytes());
            let body = (rng.next() % 300) as usize;
            stream.extend((0..body).map(|_| rng.next() as u8));
        }
        shmring::fuzzing::frame_decode(&stream);
    }
}

#[test]
fn broadcast_read_corpus_replays_cleanly() {
    replay("broadcast_read", shmring::fuzzing::broadcast_read);
}

#[test]
fn broadcast_read_random_inputs() {
    let mut rng = Rng(23);
    for _ in 0..20_000 {
        let len = (rng.next() % 900) as usize;
        let mut input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Plausible positions, cursors and stamps often enough to reach the slot checks: a
        // small tail, small cursors, and slots stamped done/writing for nearby positions.
        let words = 4 + 13 * 8;
        if len > words + 16 * 8 && rng.next() % 2 == 0 {
            input[0] %= 2; // 2 or 4 slots
            input[1] = 15; // 16-byte slots: 4 words each
            let tail = rng.next() % 8;
            input[4..12].copy_from_slice(&tail.to_le_bytes());
            for k in 0..8usize {
                let at = 4 + (5 + k) * 8;
                let v = if k % 2 == 0 {
                    rng.next() % 10
                } else {
                    rng.next() % 4
                };
                input[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            let slots_at = 4 + 13 * 8;
            for s in 0..4usize {
                let at = slots_at + s * 32;
                if at + 16 > len {
                    break;
                }
                let pos = tail.saturating_sub(1 + rng.next() % 3);
                let stamp = 2 * pos + 1 + rng.next() % 2;
                input[at..at + 8].copy_from_slice(&stamp.to_le_bytes());
                let l = rng.next() % 20;
                input[at + 8..at + 16].copy_from_slice(&l.to_le_bytes());
            }
        }
        shmring::fuzzing::broadcast_read(&input);
    }
}
