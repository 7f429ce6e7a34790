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
