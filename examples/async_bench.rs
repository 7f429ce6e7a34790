//! Round trips, same run: async halves (tokio current-thread on both sides) vs blocking futex
//! halves vs tokio `UnixStream`, and a WaitSet of 1000 idle channels + 1 busy vs one channel.
//! Two threads of one process; median of 5 runs of `N` round trips (env `N`, default 20000).
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
    let (a, b) = names("blk");
    let cfg = Config::default().capacity(4096);
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
    let cfg = Config::default().capacity(4096);
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

fn main() {
    let n: u32 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runs = 5;
    let mut rows: Vec<(&str, Duration)> = Vec::new();
    for (label, f) in [
        ("blocking futex spsc", blocking as fn(u32) -> Duration),
        ("async spsc (tokio current-thread)", asynch),
        ("tokio UnixStream", unix),
        ("WaitSet 1000 idle + 1 busy", waitset),
    ] {
        let m = median((0..runs).map(|_| f(n)).collect());
        rows.push((label, m));
    }
    let base = rows[0].1.as_secs_f64();
    for (label, m) in &rows {
        println!(
            "{label:36} median RTT {:>9.2?}  x{:.2} of blocking",
            m,
            m.as_secs_f64() / base
        );
    }
}
