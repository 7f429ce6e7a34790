//! Replays the committed fuzz corpus on stable Rust, plus a burst of random inputs, through the
//! same entry points the cargo-fuzz targets call (`shmring::ring::fuzzing`).

mod common;

use common::Rng;

#[test]
fn spsc_read_corpus_replays_cleanly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/spsc_read");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("the corpus directory is committed") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        shmring::ring::fuzzing::spsc_read(&bytes);
        n += 1;
    }
    assert!(n >= 5, "corpus has only {n} inputs");
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
        shmring::ring::fuzzing::spsc_read(&input);
    }
}
