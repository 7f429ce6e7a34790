//! Sizes, alignment and word access shared by the rings.

/// Bytes of a frame header (`tag << 32 | len`).
pub const FRAME_HEADER: u64 = 8;

/// `n` rounded up to a multiple of 8 (frames are 8-aligned so their headers are atomic words).
#[inline]
pub const fn align8(n: u64) -> u64 {
    (n + 7) & !7
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
}
