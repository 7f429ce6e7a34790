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
    fn word_access_on_heap_memory() {
        let mut words = vec![0u64; 3];
        let p = words.as_mut_ptr();
        // SAFETY: `p.add(1)` is an aligned word of the live vector, used only here.
        unsafe {
            store_word(p.add(1), 0x5348_4D46_0000_0005);
            assert_eq!(load_word(p.add(1)), 0x5348_4D46_0000_0005);
            assert!(
                !cas_word(p.add(1), 7, 9),
                "a CAS from a value not held fails"
            );
            assert!(cas_word(p.add(1), 0x5348_4D46_0000_0005, 9));
            assert_eq!(load_word(p.add(1)), 9);
        }
        assert_eq!(words, [0, 9, 0], "only the addressed word changed");
    }
}
