//! Two processes for a benchmark: fork, CPU pinning, and shared anonymous memory.

use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// Pins the calling process to `cpu` (no-op for `None`).
pub fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let mut set = CpuSet::new();
        if set.set(cpu).is_ok() {
            if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
                eprintln!("warning: could not pin to CPU {cpu}: {e}");
            }
        }
    }
}

/// Runs `child` in a forked process pinned to `cpu` and returns its pid. The child exits with
/// status 0 when `child` returns, 1 if it panics. Call only while this process has one thread.
pub fn spawn(cpu: Option<usize>, child: impl FnOnce()) -> Pid {
    // SAFETY: the benchmark forks before it starts any thread, so the child inherits no lock
    // held by another thread; it runs `child` and leaves with `_exit`, never returning into the
    // parent's stack frames.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Parent { child } => child,
        ForkResult::Child => {
            pin(cpu);
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).is_ok();
            // SAFETY: `_exit` ends the process at once, without running the parent's atexit
            // handlers or destructors a second time.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
    }
}

/// Waits for a child from [`spawn`]; panics if it failed.
pub fn join(pid: Pid) {
    match waitpid(pid, None).expect("waitpid") {
        WaitStatus::Exited(_, 0) => {}
        other => panic!("benchmark peer process failed: {other:?}"),
    }
}

/// Memory shared with forked children (MAP_SHARED | MAP_ANONYMOUS), zeroed.
pub struct SharedAnon {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedAnon {
    pub fn new(len: usize) -> SharedAnon {
        let nz = NonZeroUsize::new(len).expect("non-empty mapping");
        // SAFETY: a fresh anonymous mapping aliases no Rust object; it is unmapped in Drop.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .expect("mmap shared anonymous memory");
        SharedAnon {
            ptr: ptr.cast(),
            len,
        }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for SharedAnon {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, unmapped only here.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}
