//! Round trips, same run: async halves (tokio current-thread on both sides) vs blocking futex
//! halves (zero spin budget: both sleep at once, like the async side; and the default adaptive
//! budget) vs tokio `UnixStream`, and a WaitSet of 1000 idle channels + 1 busy vs one channel.
//! Two threads of one process; median of `RUNS` (default 5) interleaved runs of `N` round trips
//! (env `N`, default 20000). Then the doorbell mechanisms' cost per ring (ring + drain in one
//! thread): an eventfd, an abstract Unix datagram socket (the one chosen), a FIFO.
//!
//! `cargo run --release --example async_bench --features tokio`

use std::time::{Duration, Instant};

use shmring::{spsc, Config, WaitSet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn names(tag: &str) -> (String, String) {
    let p = std::process::id();
    (format!("ab-{tag}-ping-{p}"), format!("ab-{tag}-pong-{p}"))
}

fn blocking(n: u32) -> Duration {
    blocking_with(n, Config::default().capacity(4096))
}

fn blocking_zero_spin(n: u32) -> Duration {
    blocking_with(
        n,
        Config::default().capacity(4096).spin_budget(Duration::ZERO),
    )
}

fn blocking_with(n: u32, cfg: Config) -> Duration {
    let (a, b) = names("blk");
    let mut tx = spsc::Sender::create(&a, cfg.clone()).unwrap();
    let mut rx = spsc::Receiver::create(&b, cfg).unwrap();
    let echo = std::thread::spawn({
        let (a, b) = (a.clone(), b.clone());
        move || {
            let mut rx = spsc::Receiver::open(&a).unwrap();
            let mut tx = spsc::Sender::open(&b).unwrap();
            let mut buf = Vec::new();
            while rx.recv_into(&mut buf).is_ok() {
                tx.send(&buf).unwrap();
            }
        }
    });
    let mut buf = Vec::new();
    let t = Instant::now();
    for i in 0..n {
        tx.send(&u64::from(i).to_le_bytes()).unwrap();
        rx.recv_into(&mut buf).unwrap();
    }
    let d = t.elapsed() / n;
    drop(tx);
    echo.join().unwrap();
    d
}

fn asynch(n: u32) -> Duration {
    let (a, b) = names("async");
    let cfg = Config::default().capacity(4096);
    let tx = spsc::Sender::create(&a, cfg.clone()).unwrap();
    let rx = spsc::Receiver::create(&b, cfg).unwrap();
    let echo = std::thread::spawn({
        let (a, b) = (a.clone(), b.clone());
        move || {
            rt().block_on(async {
                let mut rx = spsc::Receiver::open(&a).unwrap().into_async().unwrap();
                let mut tx = spsc::Sender::open(&b).unwrap().into_async().unwrap();
                let mut buf = Vec::new();
                while rx.recv_into(&mut buf).await.is_ok() {
                    tx.send(&buf).await.unwrap();
                }
            })
        }
    });
    let d = rt().block_on(async move {
        let mut tx = tx.into_async().unwrap();
        let mut rx = rx.into_async().unwrap();
        let mut buf = Vec::new();
        let t = Instant::now();
        for i in 0..n {
            tx.send(&u64::from(i).to_le_bytes()).await.unwrap();
            rx.recv_into(&mut buf).await.unwrap();
        }
        t.elapsed() / n
    });
    echo.join().unwrap();
    d
}

fn unix(n: u32) -> Duration {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        rt().block_on(async move {
            b.set_nonblocking(true).unwrap();
            let mut b = tokio::net::UnixStream::from_std(b).unwrap();
            let mut m = [0u8; 8];
            while b.read_exact(&mut m).await.is_ok() {
                b.write_all(&m).await.unwrap();
            }
        })
    });
    let d = rt().block_on(async move {
        a.set_nonblocking(true).unwrap();
        let mut a = tokio::net::UnixStream::from_std(a).unwrap();
        let mut m = [0u8; 8];
        let t = Instant::now();
        for i in 0..n {
            a.write_all(&u64::from(i).to_le_bytes()).await.unwrap();
            a.read_exact(&mut m).await.unwrap();
        }
        t.elapsed() / n
    });
    echo.join().unwrap();
    d
}

/// The echo side serves 1000 idle channels + 1 busy one through a WaitSet.
fn waitset(n: u32) -> Duration {
    // Zero spin, like the baseline it is compared with: the WaitSet side never spins.
    let cfg = Config::default().capacity(4096).spin_budget(Duration::ZERO);
    let (a, b) = names("ws");
    let mut idle = Vec::new();
    let mut set = WaitSet::new().unwrap();
    for i in 0..1000 {
        let name = format!("ab-ws-idle-{i}-{}", std::process::id());
        idle.push(spsc::Sender::create(&name, cfg.clone()).unwrap());
        set.insert(spsc::Receiver::open(&name).unwrap()).unwrap();
    }
    let mut tx = spsc::Sender::create(&a, cfg.clone()).unwrap();
    let mut rx = spsc::Receiver::create(&b, cfg).unwrap();
    let echo = std::thread::spawn({
        let (a, b) = (a.clone(), b.clone());
        move || {
            let busy = set.insert(spsc::Receiver::open(&a).unwrap()).unwrap();
            let mut out = spsc::Sender::open(&b).unwrap();
            let mut ready = Vec::new();
            let mut buf = Vec::new();
            loop {
                set.wait(None, &mut ready).unwrap();
                for r in &ready {
                    if r.key != busy {
                        continue;
                    }
                    loop {
                        match set.get_mut(busy).unwrap().try_recv_into(&mut buf) {
                            Ok(_) => out.send(&buf).unwrap(),
                            Err(shmring::Error::Empty) => break,
                            Err(_) => return set,
                        }
                    }
                }
            }
        }
    });
    let mut buf = Vec::new();
    let t = Instant::now();
    for i in 0..n {
        tx.send(&u64::from(i).to_le_bytes()).unwrap();
        rx.recv_into(&mut buf).unwrap();
    }
    let d = t.elapsed() / n;
    drop(tx);
    drop(echo.join().unwrap());
    drop(idle);
    d
}

/// Nanoseconds per ring + drain of each doorbell mechanism (one thread, no waiting).
fn doorbells(n: u32) -> Vec<(&'static str, f64)> {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let mut out = Vec::new();
    // eventfd: write 8 bytes, read 8 bytes.
    // SAFETY: plain syscall; the result is checked and owned at once.
    let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(raw >= 0);
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let mut ev = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    let t = Instant::now();
    let mut b8 = [0u8; 8];
    for _ in 0..n {
        ev.write_all(&1u64.to_ne_bytes()).unwrap();
        ev.read_exact(&mut b8).unwrap();
    }
    out.push((
        "eventfd write+read",
        t.elapsed().as_nanos() as f64 / f64::from(n),
    ));
    // Abstract datagram socket: sendto from an unbound socket, recv on the bound one.
    let addr = SocketAddr::from_abstract_name(format!("ab-bell-{}", std::process::id())).unwrap();
    let bell = UnixDatagram::bind_addr(&addr).unwrap();
    bell.set_nonblocking(true).unwrap();
    let ringer = UnixDatagram::unbound().unwrap();
    let t = Instant::now();
    let mut b1 = [0u8; 16];
    for _ in 0..n {
        ringer.send_to_addr(&[1], &addr).unwrap();
        bell.recv(&mut b1).unwrap();
    }
    out.push((
        "abstract dgram sendto+recv",
        t.elapsed().as_nanos() as f64 / f64::from(n),
    ));
    // The same, the ringer connected once (what `Ringer` does: no address lookup per ring).
    let connected = UnixDatagram::unbound().unwrap();
    connected.connect_addr(&addr).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        connected.send(&[1]).unwrap();
        bell.recv(&mut b1).unwrap();
    }
    out.push((
        "abstract dgram connected send+recv",
        t.elapsed().as_nanos() as f64 / f64::from(n),
    ));
    // FIFO: write 1 byte, read 1 byte (opened read-write, non-blocking).
    let path = std::env::temp_dir().join(format!("ab-bell-{}", std::process::id()));
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let t = Instant::now();
    for _ in 0..n {
        fifo.write_all(&[1]).unwrap();
        fifo.read_exact(&mut b1[..1]).unwrap();
    }
    out.push((
        "FIFO write+read",
        t.elapsed().as_nanos() as f64 / f64::from(n),
    ));
    let _ = std::fs::remove_file(&path);
    out
}

fn main() {
    let n: u32 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    type Bench = fn(u32) -> Duration;
    let benches: [(&str, Bench); 5] = [
        ("blocking futex spsc, zero spin", blocking_zero_spin),
        ("blocking futex spsc, adaptive spin", blocking),
        ("async spsc (tokio current-thread)", asynch),
        ("tokio UnixStream", unix),
        ("WaitSet 1000 idle + 1 busy", waitset),
    ];
    // Interleaved: run r of every bench, then run r + 1.
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); benches.len()];
    for _ in 0..runs {
        for (i, (_, f)) in benches.iter().enumerate() {
            samples[i].push(f(n));
        }
    }
    let medians: Vec<Duration> = samples.into_iter().map(median).collect();
    let base = medians[0].as_secs_f64();
    for ((label, _), m) in benches.iter().zip(&medians) {
        println!(
            "{label:38} median RTT {:>9.2?}  x{:.2} of blocking zero-spin",
            m,
            m.as_secs_f64() / base
        );
    }
    println!(
        "async / blocking zero-spin: x{:.2}; async / tokio UnixStream: x{:.2}; WaitSet / blocking zero-spin: x{:.2}; WaitSet / blocking adaptive: x{:.2}",
        medians[2].as_secs_f64() / base,
        medians[2].as_secs_f64() / medians[3].as_secs_f64(),
        medians[4].as_secs_f64() / base,
        medians[4].as_secs_f64() / medians[1].as_secs_f64(),
    );
    let mut bells: Vec<Vec<(&str, f64)>> = (0..runs).map(|_| doorbells(100_000)).collect();
    for i in 0..bells[0].len() {
        let mut v: Vec<f64> = bells.iter_mut().map(|r| r[i].1).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "doorbell {:36} median {:>7.0} ns per ring+drain",
            bells[0][i].0,
            v[v.len() / 2]
        );
    }
}
