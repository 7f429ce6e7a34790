//! Entry points shared by the cargo-fuzz targets (fuzz/) and the corpus replay test, so the
//! code that is fuzzed and the code that CI replays on stable Rust are one. Each takes arbitrary
//! bytes and panics only if the library misbehaves (an out-of-bounds frame, an unexpected
//! error kind); a crash or a hang is a finding.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use crate::channel::Receiver as _;
use crate::transport::framing::{FramedReceiver, StreamKind};
use crate::{spsc, Config};

use crate::error::Error;
use crate::ring::broadcast::{self, BroadcastControl, Overflow};
use crate::ring::mpmc;
use crate::ring::spsc::{Consumer, Producer, SpscControl};
use crate::sync::atomic::AtomicU64;

/// Builds an SPSC ring from `data` (the first bytes pick the capacity and the positions, the
/// rest fill the ring's data area) and drives the consumer and producer over it. Panics only
/// if the ring returns out-of-bounds data or an error other than the expected ones.
pub fn spsc_read(data: &[u8]) {
    if data.len() < 17 {
        return;
    }
    let cap = 64u64 << (data[0] % 5); // 64 B ..= 1 KiB
    let head = u64::from_le_bytes(data[1..9].try_into().unwrap_or_default());
    let tail = u64::from_le_bytes(data[9..17].try_into().unwrap_or_default());
    let mut words = vec![0u64; cap as usize / 8];
    for (i, chunk) in data[17..].chunks(8).take(words.len()).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        words[i] = u64::from_le_bytes(w);
    }
    let ctrl = SpscControl::with_positions(head, tail);
    let ctrl_ptr = NonNull::from(&ctrl);
    let data_ptr = NonNull::new(words.as_mut_ptr().cast::<u8>()).expect("vec pointer");
    // SAFETY: `ctrl` and `words` (cap bytes, 8-aligned) outlive both ends, which are dropped at
    // the end of this function; there is one producer and one consumer.
    let ends = unsafe {
        (
            Consumer::attach(ctrl_ptr, data_ptr, cap),
            Producer::attach(ctrl_ptr, data_ptr, cap),
        )
    };
    let (Ok(mut consumer), producer) = ends else {
        return; // positions rejected: fine
    };
    if data[0] & 0x80 != 0 {
        // The batch read path (`recv_batch`): the same bytes through `take_ready`, which
        // handles plain frames itself and hands every other word to `try_peek`.
        let base = data_ptr.as_ptr() as usize;
        let (_, stop) = consumer.take_ready(64, |ptr, len| {
            let off = (ptr as usize).wrapping_sub(base);
            assert!(
                off <= cap as usize && len <= cap as usize - off,
                "batch frame out of bounds"
            );
        });
        match stop {
            None | Some(Error::Corrupted(_) | Error::Empty | Error::Disconnected) => {}
            Some(e) => panic!("unexpected error from the batch read path: {e}"),
        }
        consumer.flush_taken();
    }
    for _ in 0..64 {
        match consumer.try_peek() {
            Ok(frame) => {
                assert!(
                    frame.offset() + frame.len() as u64 <= cap,
                    "frame out of bounds"
                );
                consumer.release(frame);
            }
            Err(Error::Corrupted(_) | Error::Empty | Error::Disconnected) => break,
            Err(e) => panic!("unexpected error from the read path: {e}"),
        }
    }
    if let Ok(mut producer) = producer {
        for len in [0usize, 1, 40, 200] {
            match producer.try_reserve(len) {
                Ok(g) => producer.commit(g, len),
                Err(Error::Full | Error::Corrupted(_) | Error::TooLarge { .. }) => {}
                Err(e) => panic!("unexpected error from the write path: {e}"),
            }
        }
    }
}

/// A whole segment image: `data` is written to a fresh file in /dev/shm (the first bytes are
/// used as the header) and opened as an SPSC receiver; what opens is then read from.
pub fn segment_open(data: &[u8]) {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "shmring-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let path = format!("/dev/shm/{name}");
    let mut image = data.to_vec();
    // Let inputs that start with the magic and a plausible size reach past the size check.
    if image.len() >= 48 {
        let claimed = u64::from_le_bytes(image[40..48].try_into().unwrap_or_default());
        if claimed <= 1 << 20 && claimed as usize > image.len() {
            image.resize(claimed as usize, 0);
        }
    }
    let Ok(mut f) = std::fs::File::create(&path) else {
        return;
    };
    let written = f.write_all(&image).is_ok();
    drop(f);
    if written {
        let cfg = Config::default().open_timeout(Duration::ZERO);
        if let Ok(mut rx) = spsc::Receiver::open_with(&name, cfg) {
            let mut buf = Vec::new();
            for _ in 0..16 {
                match rx.try_recv_into(&mut buf) {
                    Ok(n) => assert!(n <= rx.max_message_size(), "message larger than the ring"),
                    Err(Error::Corrupted(_) | Error::Empty | Error::Disconnected) => break,
                    Err(e) => panic!("unexpected error from a fuzzed segment: {e}"),
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// A byte stream as a framed transport receives it: `data` goes through a pipe into a
/// [`FramedReceiver`] with a 64 KiB limit, which is drained until the end of the stream.
pub fn frame_decode(data: &[u8]) {
    let Ok((r, w)) = nix::unistd::pipe() else {
        return;
    };
    // A pipe holds 64 KiB; longer inputs are cut there (the decoder's logic is the same).
    let data = &data[..data.len().min(60_000)];
    if !nix::unistd::write(&w, data).is_ok_and(|n| n == data.len()) {
        return;
    }
    drop::<OwnedFd>(w);
    let Ok(mut rx) = FramedReceiver::new(r, StreamKind::Pipe, 1 << 16, "fuzz pipe") else {
        return;
    };
    let mut buf = Vec::new();
    for _ in 0..data.len() + 2 {
        match rx.try_recv_into(&mut buf) {
            Ok(n) => assert!(n <= 1 << 16 && buf.len() == n, "frame over the limit"),
            Err(Error::Corrupted(_) | Error::Disconnected | Error::Empty) => return,
            Err(e) => panic!("unexpected error from the frame decoder: {e}"),
        }
    }
}

/// An MPMC ring built from `data`: the first bytes pick the geometry (2..=16 slots of 1..=64
/// bytes) and the positions, then come the slot stamps and the slot bytes. A consumer and a
/// producer are driven over it.
pub fn mpmc_read(data: &[u8]) {
    if data.len() < 18 {
        return;
    }
    let slots = 2u64 << (data[0] % 4);
    let slot_size = 1 + u64::from(data[1] % 64);
    let head = u64::from_le_bytes(data[2..10].try_into().unwrap_or_default());
    let tail = u64::from_le_bytes(data[10..18].try_into().unwrap_or_default());
    let mut words = data[18..].chunks(8).map(|c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(w)
    });
    let stamps: Box<[AtomicU64]> = (0..slots)
        .map(|i| AtomicU64::new(words.next().unwrap_or(i)))
        .collect();
    let mut slot_words = vec![0u64; (mpmc::data_len(slots, slot_size) / 8) as usize];
    for (w, v) in slot_words.iter_mut().zip(words) {
        *w = v;
    }
    let ctrl = mpmc::MpmcControl::with_positions(head, tail);
    let parts = (
        NonNull::from(&ctrl),
        NonNull::new(stamps.as_ptr().cast_mut()).expect("boxed slice pointer"),
        NonNull::new(slot_words.as_mut_ptr().cast::<u8>()).expect("vec pointer"),
    );
    // SAFETY: the control block, the stamps and the slot words (data_len bytes, 8-aligned)
    // outlive both ends, which are dropped at the end of this function.
    let ends = unsafe {
        (
            mpmc::Consumer::attach(parts.0, parts.1, parts.2, slots, slot_size),
            mpmc::Producer::attach(parts.0, parts.1, parts.2, slots, slot_size),
        )
    };
    if let Ok(mut consumer) = ends.0 {
        for _ in 0..(2 * slots) {
            match consumer.try_peek() {
                Ok(frame) => {
                    assert!(
                        frame.len() as u64 <= slot_size,
                        "frame larger than its slot"
                    );
                    consumer.release(frame);
                }
                Err(Error::Corrupted(_) | Error::Empty | Error::Disconnected) => break,
                Err(e) => panic!("unexpected error from the MPMC read path: {e}"),
            }
        }
    }
    if let Ok(mut producer) = ends.1 {
        for len in [0usize, 1, slot_size as usize] {
            match producer.try_reserve(len) {
                Ok(g) => producer.commit(g, len),
                Err(Error::Full | Error::Corrupted(_) | Error::Disconnected) => {}
                Err(e) => panic!("unexpected error from the MPMC write path: {e}"),
            }
        }
    }
}

/// A broadcast ring built from `data`, everything a hostile peer shares written by the input:
/// the first bytes pick the geometry (2..=16 slots of 1..=64 bytes), the policy, the history
/// and the reader place; then come the shared words of the control block (`tail`,
/// `writer_min`, `joins`, the peer counts, `hi`, the places' cursors and states: see
/// `BroadcastControl::overwrite_shared`), then the slot area (stamps, lengths, payloads). A
/// reader joins and reads, the writer's liveness check looks for dead readers, then a writer
/// attaches and sends (in `Block` mode its rescan reads the hostile cursors). Panics only if a
/// frame lies outside its slot, an unexpected error kind comes back, or a message of the
/// wrong length is handed out.
pub fn broadcast_read(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let slots = 2u64 << (data[0] % 4);
    let slot_size = 1 + u64::from(data[1] % 64);
    let policy = if data[2] & 1 == 0 {
        Overflow::Block
    } else {
        Overflow::Overwrite
    };
    let history = u64::from(data[2] >> 1) % slots;
    let place = usize::from(data[3] % 4);
    let mut words = data[4..].chunks(8).map(|c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(w)
    });
    // The shared control words: 5 fixed, then 4 places of 2 (the rest stay zero: unused).
    let shared: Vec<u64> = words.by_ref().take(5 + 2 * 4).collect();
    let ctrl = BroadcastControl::new(policy, history);
    ctrl.overwrite_shared(&shared);
    let mut slot_words = vec![0u64; (broadcast::data_len(slots, slot_size) / 8) as usize];
    for (w, v) in slot_words.iter_mut().zip(words) {
        *w = v;
    }
    let ctrl_ptr = NonNull::from(&ctrl);
    let data_ptr = NonNull::new(slot_words.as_mut_ptr().cast::<u8>()).expect("vec pointer");
    // SAFETY: the control block and the slot words (data_len bytes, 8-aligned) outlive every
    // end made here, which are dropped at the end of this function; one thread uses them.
    let consumer =
        unsafe { broadcast::Consumer::attach(ctrl_ptr, data_ptr, slots, slot_size, place) };
    if let Ok(mut consumer) = consumer {
        if consumer.activate().is_ok() {
            for _ in 0..(3 * slots) {
                match consumer.try_peek() {
                    Ok(frame) => {
                        assert!(
                            frame.len() as u64 <= slot_size,
                            "frame larger than its slot"
                        );
                        let p = consumer.payload(&frame);
                        // SAFETY: the ring validated `len` against the slot size; the bytes are
                        // in the slot (Block) or in the consumer's own copy (Overwrite).
                        let bytes = unsafe { std::slice::from_raw_parts(p, frame.len()) };
                        std::hint::black_box(bytes.iter().fold(0u8, |a, b| a ^ b));
                        consumer.release(frame);
                    }
                    Err(Error::Lagged { missed }) => {
                        assert!(
                            missed > 0 && policy == Overflow::Overwrite,
                            "lag of {missed}"
                        );
                    }
                    Err(Error::Corrupted(_) | Error::Empty | Error::Disconnected) => break,
                    Err(e) => panic!("unexpected error from the broadcast read path: {e}"),
                }
            }
            consumer.close();
        }
    }
    // SAFETY: as above.
    let producer = unsafe { broadcast::Producer::attach(ctrl_ptr, data_ptr, slots, slot_size) };
    if let Ok(mut producer) = producer {
        let _ = producer.watcher().detach_dead(&mut |_| Ok(false));
        for len in [0usize, 1, slot_size as usize] {
            match producer.try_reserve(len) {
                Ok(g) => producer.commit(g, len),
                Err(Error::Full | Error::Corrupted(_) | Error::Disconnected) => {}
                Err(e) => panic!("unexpected error from the broadcast write path: {e}"),
            }
        }
    }
}
