//! Asymmetric fences for the wait protocol: a free fence on the notifier's hot path, paid for by
//! a system call on the sleeper's slow path.
//!
//! # Why
//! The protocol in [`super::wait`] is a Dekker pair: the notifier stores its publication and
//! then reads `waiters`; the sleeper increments `waiters` and then re-checks the ring. Each
//! side needs a full (`SeqCst`) fence between its store and its load, or the store may still
//! sit in its core's store buffer when the load runs, both sides read the old values and the
//! wakeup is lost. On x86 that fence is an `mfence`, and the notifier's store is its message's
//! publication, a line the other core is polling: the fence waits until that line has been
//! taken over, once per message on both sides. Measured on the development VM (64 B messages
//! through the traits, one-way), it halved the rate of `Wait::Futex` against `Wait::Spin`
//! (SPSC 51 against 93 M msg/s, MPMC 23 against 60 M msg/s), on channels whose receiver almost
//! never sleeps.
//!
//! # How
//! Linux's `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` runs a full memory barrier on every
//! CPU that is running a thread of a process registered with
//! `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` before it returns (a thread not running at that
//! moment has passed through a context switch, which is a full barrier too). So in a segment
//! whose every participant is registered (the header's `FLAG_MEMBARRIER`, set by the creator and
//! required of every opener), the notifier needs only a compiler fence, and the sleeper issues
//! the system call between its announcement and its re-check. Either the barrier ran on the
//! notifier's CPU before the notifier read `waiters`, and that read sees the announcement; or it
//! ran after, and the notifier's publication, which came earlier in program order, is visible
//! to the re-check. This is the pairing of folly's `asymmetric_thread_fence_light/heavy` and of
//! liburcu's membarrier flavour, across processes (`GLOBAL_EXPEDITED` rather than `PRIVATE`).
//!
//! The sleeper pays one system call per sleep, plus an inter-processor interrupt per other CPU
//! running a registered process: 0.5 us per call on the development VM with no other
//! registered process running (a C loop of 1000 calls), against a raw futex round trip of
//! 50-65 us there (`shm-bench compare`). With the peer running it costs more; not measured.
//!
//! # Where it is not used
//! * Under loom (`shmring_loom`): loom cannot model the system call, so both sides keep the
//!   `SeqCst` fence, and the models check the symmetric protocol with its mutants.
//! * When this process cannot register (a kernel before 4.16, or a seccomp filter that refuses
//!   the call): it creates segments without the flag, whose participants all fence, and it
//!   refuses to open a segment with the flag ([`crate::Error::Incompatible`], saying so), since
//!   its own notifiers would not be covered by the others' barriers.
//! * Registration is inherited across `fork` (checked with `MEMBARRIER_CMD_GET_REGISTRATIONS`
//!   on Linux 6.18) and dropped by `exec`, which also starts the program's statics afresh.

#[cfg(not(shmring_loom))]
use std::sync::atomic::{AtomicU8, Ordering};

// From `uapi/linux/membarrier.h` (the libc crate does not export them on every target).
#[cfg(not(shmring_loom))]
const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
#[cfg(not(shmring_loom))]
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
#[cfg(not(shmring_loom))]
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

/// 0: not tried yet; 1: registered; 2: unavailable.
#[cfg(not(shmring_loom))]
static REGISTERED: AtomicU8 = AtomicU8::new(0);

#[cfg(not(shmring_loom))]
fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: `membarrier(cmd, flags = 0, cpu_id = 0)` takes no pointers; every command used
    // here only registers the process or runs barriers, and an unknown one fails with EINVAL.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            cmd,
            0 as libc::c_uint,
            0 as libc::c_int,
        )
    }
}

/// Registers this process for expedited global barriers, once; true if it is registered (and
/// the kernel offers the command). Cheap after the first call.
#[cfg(not(shmring_loom))]
pub(crate) fn register() -> bool {
    match REGISTERED.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let offered = membarrier(MEMBARRIER_CMD_QUERY);
    let wanted = (MEMBARRIER_CMD_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)
        as libc::c_long;
    let ok = offered >= 0
        && offered & wanted == wanted
        && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
    // Racing first calls register twice, which the kernel allows; they store the same answer.
    REGISTERED.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
    ok
}

/// Under loom nothing registers: every segment uses the symmetric fences.
#[cfg(shmring_loom)]
pub(crate) fn register() -> bool {
    false
}

/// The sleeper's half: a full barrier on every CPU that runs a registered process. Only called
/// in a segment whose participants all registered (so this process did too, and the command
/// was offered when it did).
#[cfg(not(shmring_loom))]
pub(crate) fn heavy() {
    // Offered at registration, so this does not fail short of the kernel changing its mind;
    // if it did, a wakeup could be missed, and the waiter's slice bounds the delay (it
    // re-checks the ring after at most one slice, it never hangs).
    let _ = membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
}

#[cfg(all(test, not(shmring_loom)))]
mod tests {
    use super::*;

    #[test]
    fn registration_is_stable_and_the_barrier_runs() {
        let first = register();
        assert_eq!(register(), first, "the answer is cached");
        if first {
            heavy();
            assert_eq!(membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), 0);
        }
    }
}
