//! Where a half's segment lives: a mapped [`Segment`] in production; under `shmring_loom`
//! also heap memory, so that the loom models drive the production halves, not a copy.
//!
//! A heap site has the segment's layout (header, control block, events, body) in one zeroed,
//! page-aligned allocation shared by the model's threads, and liveness "locks" that are flags:
//! a model kills a participant by releasing its flag without closing its half. The flags are
//! loom atomics used with `SeqCst`: the kernel's lock table synchronises a process that
//! releases a lock (by closing or dying) with one that then finds it free, and a model must
//! see the same order, or it reports deaths that cannot happen.

#[cfg(not(shmring_loom))]
pub(crate) use crate::segment::Segment as Site;

#[cfg(shmring_loom)]
pub(crate) use heap::Site;

#[cfg(shmring_loom)]
pub(crate) use heap::HeapSite;

#[cfg(shmring_loom)]
mod heap {
    use std::alloc::Layout;
    use std::ptr::NonNull;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use crate::sync::atomic::{AtomicU32, Ordering};

    use crate::error::{Error, Result};
    use crate::segment::{Header, Identity, Segment};

    /// A segment or, in the models, heap memory.
    #[derive(Debug)]
    pub(crate) enum Site {
        Segment(Segment),
        Heap(HeapSite),
    }

    impl From<Segment> for Site {
        fn from(seg: Segment) -> Site {
            Site::Segment(seg)
        }
    }

    #[derive(Debug)]
    struct Memory {
        ptr: NonNull<u8>,
        layout: Layout,
        locks: Vec<AtomicU32>,
    }

    // SAFETY: the memory is reached through atomics and the rings' protocols only, as a
    // shared-memory segment is.
    unsafe impl Send for Memory {}
    // SAFETY: as above.
    unsafe impl Sync for Memory {}

    impl Drop for Memory {
        fn drop(&mut self) {
            // SAFETY: allocated in `HeapSite::create` with this layout, freed once (last Arc).
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
        }
    }

    /// One handle's view of a heap "segment" (see the module docs).
    #[derive(Debug)]
    pub(crate) struct HeapSite {
        mem: Arc<Memory>,
        /// The lock index this handle holds, `usize::MAX` for none.
        held: AtomicUsize,
    }

    impl HeapSite {
        /// A zeroed heap segment with room for `id.total_len` bytes and `places` liveness flags.
        pub(crate) fn create(id: &Identity, places: usize) -> Result<HeapSite> {
            let layout = Layout::from_size_align(id.total_len as usize, 4096)
                .map_err(|_| Error::Corrupted("heap segment layout"))?;
            // SAFETY: the layout has a non-zero size (it holds at least a header).
            let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
                .ok_or(Error::Corrupted("heap segment allocation failed"))?;
            let site = HeapSite {
                mem: Arc::new(Memory {
                    ptr,
                    layout,
                    locks: (0..places).map(|_| AtomicU32::new(0)).collect(),
                }),
                held: AtomicUsize::new(usize::MAX),
            };
            Segment::write_identity_to(site.header(), id);
            Ok(site)
        }

        /// Another handle on the same memory, holding no lock.
        pub(crate) fn share(&self) -> HeapSite {
            HeapSite {
                mem: Arc::clone(&self.mem),
                held: AtomicUsize::new(usize::MAX),
            }
        }

        /// Releases this handle's lock as a dying process would, without closing anything.
        pub(crate) fn kill(&self) {
            let i = self
                .held
                .swap(usize::MAX, std::sync::atomic::Ordering::Relaxed);
            if let Some(lock) = self.mem.locks.get(i) {
                lock.store(0, Ordering::SeqCst);
            }
        }

        fn header(&self) -> &Header {
            // SAFETY: the allocation is page aligned and holds at least a header (its length
            // is the segment's total), zeroed or written as atomics only.
            unsafe { self.mem.ptr.cast::<Header>().as_ref() }
        }
    }

    impl Drop for HeapSite {
        fn drop(&mut self) {
            self.kill();
        }
    }

    impl Site {
        pub(crate) fn header(&self) -> &Header {
            match self {
                Site::Segment(s) => s.header(),
                Site::Heap(h) => h.header(),
            }
        }

        pub(crate) fn at(&self, offset: u64, len: u64) -> Result<NonNull<u8>> {
            match self {
                Site::Segment(s) => s.at(offset, len),
                Site::Heap(h) => {
                    let end = offset.checked_add(len).ok_or(Error::Corrupted("offset"))?;
                    if end > h.mem.layout.size() as u64 {
                        return Err(Error::Corrupted("region runs past the end of the heap"));
                    }
                    // SAFETY: inside the allocation (checked above).
                    Ok(unsafe { h.mem.ptr.add(offset as usize) })
                }
            }
        }

        pub(crate) fn publish(&self) {
            match self {
                Site::Segment(s) => s.publish(),
                Site::Heap(h) => h.header().init.store(
                    crate::segment::INIT_DONE,
                    std::sync::atomic::Ordering::Release,
                ),
            }
        }

        pub(crate) fn name(&self) -> &str {
            match self {
                Site::Segment(s) => s.name(),
                Site::Heap(_) => "(heap)",
            }
        }

        pub(crate) fn lock_side(&self, i: usize) -> Result<bool> {
            match self {
                Site::Segment(s) => s.lock_side(i),
                Site::Heap(h) => {
                    let Some(lock) = h.mem.locks.get(i) else {
                        return Ok(false);
                    };
                    let won = lock
                        .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
                    if won {
                        h.held.store(i, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(won)
                }
            }
        }

        pub(crate) fn unlock_side(&self, i: usize) -> Result<()> {
            match self {
                Site::Segment(s) => s.unlock_side(i),
                Site::Heap(h) => {
                    if let Some(lock) = h.mem.locks.get(i) {
                        lock.store(0, Ordering::SeqCst);
                    }
                    Ok(())
                }
            }
        }

        pub(crate) fn side_alive(&self, i: usize) -> Result<bool> {
            match self {
                Site::Segment(s) => s.side_alive(i),
                Site::Heap(h) => Ok(h
                    .mem
                    .locks
                    .get(i)
                    .is_some_and(|l| l.load(Ordering::SeqCst) != 0)),
            }
        }

        pub(crate) fn record_side(&self, side: usize) {
            match self {
                Site::Segment(s) => s.record_side(side),
                Site::Heap(h) => h.header().record_side(side),
            }
        }

        pub(crate) fn side_ever_attached(&self, side: usize) -> bool {
            match self {
                Site::Segment(s) => s.side_ever_attached(side),
                Site::Heap(h) => h.header().side_ever_attached(side),
            }
        }

        pub(crate) fn set_unlink_on_drop(&mut self, unlink: bool) {
            if let Site::Segment(s) = self {
                s.set_unlink_on_drop(unlink)
            }
        }

        pub(crate) fn segment(&self) -> &Segment {
            match self {
                Site::Segment(s) => s,
                Site::Heap(_) => panic!("a heap site (loom models only) has no segment"),
            }
        }
    }
}
