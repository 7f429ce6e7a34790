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

/// Reads a control word (a frame header) from ring memory, once, as an atomic load.
///
/// The ordering comes from the Acquire load of the position that covers the word, so the load
/// itself is Relaxed; being atomic, it is no data race even if a hostile peer writes meanwhile.
///
/// # Safety
/// `p` is 8-aligned and valid for reads of 8 bytes.
#[inline]
pub unsafe fn load_word(p: *const u64) -> u64 {
    #[cfg(not(shmring_loom))]
    {
        // SAFETY: aligned and valid per the contract; all concurrent access to frame headers is
        // atomic, which is what `from_ptr` requires.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(p.cast_mut()) }
            .load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(shmring_loom)]
    {
        // SAFETY: aligned and valid per the contract. Under loom the ring is on the heap and
        // shared by model threads only through loom-tracked positions.
        unsafe { p.read_volatile() }
    }
}

/// Writes a control word (a frame header) into ring memory as an atomic store.
///
/// # Safety
/// `p` is 8-aligned and valid for writes of 8 bytes.
#[inline]
pub unsafe fn store_word(p: *mut u64, value: u64) {
    #[cfg(not(shmring_loom))]
    {
        // SAFETY: as in `load_word`.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(p) }
            .store(value, std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(shmring_loom)]
    {
        // SAFETY: as in `load_word`.
        unsafe { p.write_volatile(value) }
    }
}

/// Replaces the control word at `p` with `new` if it holds `current`; true if it did.
///
/// # Safety
/// `p` is 8-aligned and valid for reads and writes of 8 bytes.
#[inline]
pub unsafe fn cas_word(p: *mut u64, current: u64, new: u64) -> bool {
    #[cfg(not(shmring_loom))]
    {
        // SAFETY: as in `load_word`.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(p) }
            .compare_exchange(
                current,
                new,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_ok()
    }
    #[cfg(shmring_loom)]
    {
        // SAFETY: as in `load_word`. Under loom only the models' threads touch the ring, and no
        // model exercises this recovery path.
        unsafe {
            if p.read_volatile() == current {
                p.write_volatile(new);
                true
            } else {
                false
            }
        }
    }
}

/// What an observer reads of a ring's control block without attaching to it: each ring
/// decodes its own block (`spsc::observe`, `mpmc::observe`), so a monitor never needs to know
/// the field order. Positions count bytes (SPSC) or messages (MPMC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
