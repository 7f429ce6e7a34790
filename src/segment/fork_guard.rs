//! The liveness lock descriptors of this process, given up by a child after `fork`.
//!
//! See the module docs of [`super`], "Across `fork`". A process-wide list of the descriptors
//! that carry liveness locks, guarded by a spin flag rather than a `Mutex` because a
//! `pthread_atfork` child handler must release it without a guard object: the prepare handler
//! takes the flag (so no thread is halfway through changing the list when the process forks),
//! the parent handler gives it back, and the child handler first replaces every listed
//! descriptor with `/dev/null`, then gives it back. The child handler runs in the single
//! thread of a child of a possibly multi-threaded parent, so it only makes async-signal-safe
//! calls (`open`, `dup3`, `close`) and touches no allocator.

use std::cell::UnsafeCell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

struct Registry {
    busy: AtomicBool,
    fds: UnsafeCell<Vec<RawFd>>,
}

// SAFETY: `fds` is only touched while `busy` is held (by `with`, or between the atfork prepare
// handler and the parent/child handler), which makes the accesses exclusive.
unsafe impl Sync for Registry {}

static REGISTRY: Registry = Registry {
    busy: AtomicBool::new(false),
    fds: UnsafeCell::new(Vec::new()),
};

fn acquire() {
    while REGISTRY
        .busy
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
}

fn release() {
    REGISTRY.busy.store(false, Ordering::Release);
}

fn with<T>(f: impl FnOnce(&mut Vec<RawFd>) -> T) -> T {
    acquire();
    // SAFETY: `busy` is held (see `Registry`); the reference does not outlive this call.
    let out = f(unsafe { &mut *REGISTRY.fds.get() });
    release();
    out
}

extern "C" fn prepare() {
    acquire();
}

extern "C" fn parent() {
    release();
}

extern "C" fn child() {
    // SAFETY: a NUL-terminated path; `open` is async-signal-safe.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if null >= 0 {
        // SAFETY: `busy` is held since `prepare` ran in the forking thread, which is the one
        // thread of this child; iterating does not allocate.
        let fds = unsafe { &*REGISTRY.fds.get() };
        for &fd in fds {
            // SAFETY: `dup3` only swaps what descriptor number `fd` refers to: the child's
            // reference to the lock's open file description goes, the number stays valid for
            // the handle that owns it. Async-signal-safe.
            unsafe { libc::dup3(null, fd, libc::O_CLOEXEC) };
        }
        // SAFETY: `null` is ours, opened above.
        unsafe { libc::close(null) };
    }
    release();
}

/// Adds a lock descriptor (installing the atfork handlers the first time).
pub(crate) fn register(fd: RawFd) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: the three handlers are `extern "C"` functions that live for the program.
        // A failure (ENOMEM) leaves fork children keeping locks, as before this module.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
    with(|fds| fds.push(fd));
}

/// Removes a lock descriptor before it is closed.
pub(crate) fn unregister(fd: RawFd) {
    with(|fds| {
        if let Some(i) = fds.iter().position(|&f| f == fd) {
            fds.swap_remove(i);
        }
    });
}
