//! Entry points shared by the cargo-fuzz targets (fuzz/) and the corpus replay test, so the
//! code that is fuzzed and the code that CI replays on stable Rust are one.

use std::ptr::NonNull;

use crate::error::Error;
use crate::ring::spsc::{Consumer, Producer, SpscControl};

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
    for _ in 0..64 {
        match consumer.try_peek() {
            Ok(frame) => {
                assert!(
                    frame.offset + frame.len as u64 <= cap,
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
