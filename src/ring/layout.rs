//! Sizes, alignment and word access shared by the rings.

/// Bytes of a frame header (`tag << 32 | len`).
pub const FRAME_HEADER: u64 = 8;

/// `n` rounded up to a multiple of 8 (frames are 8-aligned so their headers are atomic words).
#[inline]
pub const fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

/// Copies `len` bytes from `src` to `dst`, inline up to 64 bytes (a few overlapping unaligned
/// word moves, all loads before the stores), through `memcpy` above. A 64-byte message paid
/// a call into libc's `memcpy` and its size dispatch on each side, a sixth of the instructions
/// of a send+recv pair.
///
/// # Safety
/// As `std::ptr::copy_nonoverlapping`: `src` valid for reads and `dst` for writes of `len`
/// bytes, and the two ranges do not overlap.
#[inline(always)]
pub unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    use std::ptr::{read_unaligned as rd, write_unaligned as wr};
    // SAFETY: every access below lies in `0..len` of its range (each branch's offsets are
    // bounded by its length test), which the caller's contract makes valid.
    unsafe {
        if len > 64 {
            std::ptr::copy_nonoverlapping(src, dst, len);
        } else if len > 32 {
            let (a, b) = (rd(src.cast::<u128>()), rd(src.add(16).cast::<u128>()));
            let (c, d) = (
                rd(src.add(len - 32).cast::<u128>()),
                rd(src.add(len - 16).cast::<u128>()),
            );
            wr(dst.cast::<u128>(), a);
            wr(dst.add(16).cast::<u128>(), b);
            wr(dst.add(len - 32).cast::<u128>(), c);
            wr(dst.add(len - 16).cast::<u128>(), d);
        } else if len > 16 {
            let (a, b) = (rd(src.cast::<u128>()), rd(src.add(len - 16).cast::<u128>()));
            wr(dst.cast::<u128>(), a);
            wr(dst.add(len - 16).cast::<u128>(), b);
        } else if len >= 8 {
            let (a, b) = (rd(src.cast::<u64>()), rd(src.add(len - 8).cast::<u64>()));
            wr(dst.cast::<u64>(), a);
            wr(dst.add(len - 8).cast::<u64>(), b);
        } else if len >= 4 {
            let (a, b) = (rd(src.cast::<u32>()), rd(src.add(len - 4).cast::<u32>()));
            wr(dst.cast::<u32>(), a);
            wr(dst.add(len - 4).cast::<u32>(), b);
        } else {
            for i in 0..len {
                *dst.add(i) = *src.add(i);
            }
        }
    }
}

/// `n` rounded up to a multiple of `align` (a power of two).
#[inline]
pub const fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

/// What an observer reads of a ring's control block without attaching to it: each ring
/// decodes its own block (`spsc::observe`, `mpmc::observe`), so a monitor never needs to know
/// the field order. Positions count bytes (SPSC) or messages (MPMC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(shmring_loom, allow(dead_code))]
pub struct RingView {
    /// Where consumers read next.
    pub head: u64,
    /// Where producers write next.
    pub tail: u64,
    /// `tail - head`: bytes (SPSC) or messages (MPMC) written and not yet taken.
    pub used: u64,
    /// Data bytes (SPSC) or slots (MPMC), as the caller read it from the segment header.
    pub capacity: u64,
    /// SPSC: the sender closed its end. MPMC: senders joined and every one has left.
    pub senders_closed: bool,
    /// SPSC: the receiver closed its end. MPMC: receivers joined and every one has left.
    pub receivers_closed: bool,
    /// MPMC: senders counted in the control block now (`None` for SPSC).
    pub senders: Option<u32>,
    /// MPMC: receivers counted in the control block now (`None` for SPSC).
    pub receivers: Option<u32>,
}

#[cfg_attr(shmring_loom, allow(dead_code))]
impl RingView {
    /// True if the positions are consistent with the capacity (`head <= tail <= head + cap`).
    pub fn consistent(&self) -> bool {
        self.used <= self.capacity
    }
}

/// Loads the `u64` at `base + off` once, Relaxed (display only: no ordering is needed, and a
/// Relaxed load of a word is sound even on a read-only mapping).
///
/// # Safety
/// `base + off` is 8-aligned and valid for reads of 8 bytes; every concurrent write to it is
/// atomic.
#[cfg(not(shmring_loom))]
pub(crate) unsafe fn peek_u64(base: std::ptr::NonNull<u8>, off: usize) -> u64 {
    // SAFETY: per the contract; the word is only read.
    unsafe { std::sync::atomic::AtomicU64::from_ptr(base.as_ptr().add(off).cast()) }
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Loads the `u32` at `base + off` once, Relaxed (see [`peek_u64`]).
///
/// # Safety
/// `base + off` is 4-aligned and valid for reads of 4 bytes; every concurrent write to it is
/// atomic.
#[cfg(not(shmring_loom))]
pub(crate) unsafe fn peek_u32(base: std::ptr::NonNull<u8>, off: usize) -> u32 {
    // SAFETY: per the contract; the word is only read.
    unsafe { std::sync::atomic::AtomicU32::from_ptr(base.as_ptr().add(off).cast()) }
        .load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;

    #[test]
    fn alignment_helpers_round_up() {
        assert_eq!([0, 1, 7, 8, 9, 16].map(align8), [0, 8, 8, 8, 16, 16]);
        assert_eq!(align_up(0, 64), 0);
        assert_eq!(align_up(1, 64), 64);
        assert_eq!(align_up(64, 64), 64);
        assert_eq!(align_up(65, 4096), 4096);
    }

    #[test]
    fn copy_bytes_copies_exactly_len_bytes_at_every_length() {
        let src: Vec<u8> = (0..200u8).collect();
        // Odd offsets too: the copies are unaligned moves.
        for (off, len) in (0..3).flat_map(|off| (0..=150).map(move |len| (off, len))) {
            let mut dst = vec![0xEEu8; 200];
            // SAFETY: both buffers hold 200 >= off + len bytes and are distinct allocations.
            unsafe { copy_bytes(src.as_ptr().add(off), dst.as_mut_ptr().add(off), len) };
            assert_eq!(dst[off..off + len], src[off..off + len], "len {len}");
            assert!(
                dst[..off]
                    .iter()
                    .chain(&dst[off + len..])
                    .all(|&b| b == 0xEE),
                "len {len} at {off} wrote outside its range"
            );
        }
    }
}
