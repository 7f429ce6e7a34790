//! Two processes for a benchmark: fork, CPU pinning, and shared anonymous memory.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
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

/// How long a process waits for its peer to get ready before it gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A page shared by the two processes of a run: flags for the start barrier and the stop
/// signal, and the address the child's listener got (a TCP port chosen by the kernel, say).
pub struct Rendezvous {
    mem: SharedAnon,
}

const READY: usize = 0;
const GO: usize = 64;
const STOP: usize = 128;
const URL_LEN: usize = 192;
const URL: usize = 256;
const URL_MAX: usize = 4096 - URL;

impl Default for Rendezvous {
    fn default() -> Self {
        Rendezvous::new()
    }
}

impl Rendezvous {
    pub fn new() -> Rendezvous {
        Rendezvous {
            mem: SharedAnon::new(4096),
        }
    }

    fn flag(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset % 64 == 0 && offset < URL);
        // SAFETY: the page is 4096 bytes, page aligned and zeroed; `offset` is a multiple of 64
        // below `URL`, so the u32 is aligned and inside the page, and this memory is only ever
        // accessed through atomics. It lives as long as `self`, which the borrow ties it to.
        unsafe { AtomicU32::from_ptr(self.mem.as_ptr().add(offset).cast()) }
    }

    /// The child says: my listener exists (at `url`) and my sender is connected.
    pub fn set_ready(&self, url: Option<&str>) {
        if let Some(url) = url {
            let bytes = url.as_bytes();
            assert!(bytes.len() <= URL_MAX, "listener URL too long");
            // SAFETY: `URL + bytes.len()` is within the 4096-byte page; nobody reads these bytes
            // before the Release store of READY below publishes them, and they are written once.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    self.mem.as_ptr().add(URL),
                    bytes.len(),
                )
            };
            self.flag(URL_LEN)
                .store(bytes.len() as u32, Ordering::Relaxed);
        }
        self.flag(READY).store(1, Ordering::Release);
    }

    /// The parent waits for [`set_ready`](Self::set_ready) (panics if `child` dies first or
    /// takes too long) and returns the URL the child published, if any.
    pub fn wait_ready(&self, child: Pid) -> Option<String> {
        let t0 = Instant::now();
        let mut spins = 0u32;
        while self.flag(READY).load(Ordering::Acquire) == 0 {
            spins += 1;
            if spins % 1024 == 0 {
                if let Ok(status) = waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                    if status != WaitStatus::StillAlive {
                        panic!("benchmark peer process ended before it was ready: {status:?}");
                    }
                }
                assert!(
                    t0.elapsed() < READY_TIMEOUT,
                    "benchmark peer process not ready after {READY_TIMEOUT:?}"
                );
                std::thread::yield_now();
            }
            std::hint::spin_loop();
        }
        let len = self.flag(URL_LEN).load(Ordering::Relaxed) as usize;
        (len > 0).then(|| {
            // SAFETY: the child wrote `len` bytes at `URL` before its Release store of READY,
            // which the Acquire load above observed; nobody writes them again.
            let bytes = unsafe { std::slice::from_raw_parts(self.mem.as_ptr().add(URL), len) };
            String::from_utf8_lossy(bytes).into_owned()
        })
    }

    /// The parent starts the clock: the child may go.
    pub fn go(&self) {
        self.flag(GO).store(1, Ordering::Release);
    }

    /// The child waits for [`go`](Self::go).
    pub fn wait_go(&self) {
        let t0 = Instant::now();
        let mut spins = 0u32;
        while self.flag(GO).load(Ordering::Acquire) == 0 {
            spins += 1;
            if spins % 1024 == 0 {
                assert!(t0.elapsed() < READY_TIMEOUT, "parent never said go");
                std::thread::yield_now();
            }
            std::hint::spin_loop();
        }
    }

    /// The parent asks the child to stop.
    pub fn stop(&self) {
        self.flag(STOP).store(1, Ordering::Release);
    }

    pub fn stopped(&self) -> bool {
        self.flag(STOP).load(Ordering::Relaxed) != 0
    }
}
