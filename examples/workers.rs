//! A job queue over the MPMC channel: one process feeds jobs, N worker processes drain them.
//!
//! ```text
//! cargo run --release --example workers            # 4 workers, 10 000 jobs
//! cargo run --release --example workers -- 8 100000
//! ```
//!
//! The feeder re-executes this same program as each worker (`WORKERS_ROLE=worker`), creates
//! the queue, sends the jobs and drops its sender: the workers drain what is left and see
//! `Disconnected`. Each worker prints how many jobs it did and the sum of their results; the
//! feeder checks that every job was done exactly once. Results come back over a second MPMC
//! channel (every worker sends, the feeder receives).

use std::process::{Command, Stdio};
use std::time::Instant;

use shmring::{mpmc, Config, Error};

/// A job: square `n`, pretending it is work.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Job {
    id: u64,
    n: u64,
}

/// A worker's report: which worker, how many jobs, the sum of `n * n` over them.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Report {
    worker: u64,
    jobs: u64,
    sum: u64,
}

fn main() -> shmring::Result<()> {
    if std::env::var("WORKERS_ROLE").as_deref() == Ok("worker") {
        return worker();
    }
    let mut args = std::env::args().skip(1);
    let workers: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let jobs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let queue = format!("workers-jobs-{}", std::process::id());
    let results = format!("workers-results-{}", std::process::id());

    let cfg = Config::default()
        .capacity(256)
        .slot_size(std::mem::size_of::<Job>() as u64)
        .max_receivers(workers as u32);
    let mut tx = mpmc::Sender::create(&queue, cfg)?;
    let mut reports = mpmc::Receiver::create(
        &results,
        Config::default()
            .capacity(64)
            .slot_size(std::mem::size_of::<Report>() as u64)
            .max_senders(workers as u32),
    )?;

    let exe = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
    let mut children = Vec::new();
    for w in 0..workers {
        let child = Command::new(&exe)
            .env("WORKERS_ROLE", "worker")
            .env("WORKERS_ID", w.to_string())
            .env("WORKERS_QUEUE", &queue)
            .env("WORKERS_RESULTS", &results)
            .stdout(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::io("spawning a worker", e))?;
        children.push(child);
    }

    let start = Instant::now();
    for id in 0..jobs {
        tx.send_pod(&Job { id, n: id % 1000 })?;
    }
    // Closing the queue: workers drain it, then see Disconnected and report. Wait until every
    // worker has attached first: the creator's drop removes the name, and a worker that had not
    // opened it yet could not.
    while tx.peers().1 < workers as u32 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drop(tx);

    let (mut done, mut sum) = (0u64, 0u64);
    for _ in 0..workers {
        let r: Report = reports.recv_pod()?;
        println!("worker {} did {} jobs", r.worker, r.jobs);
        done += r.jobs;
        sum = sum.wrapping_add(r.sum);
    }
    for mut c in children {
        let _ = c.wait();
    }
    let want: u64 = (0..jobs).map(|id| (id % 1000) * (id % 1000)).sum();
    println!(
        "{done} of {jobs} jobs done by {workers} workers in {:.2?}; results {}",
        start.elapsed(),
        if done == jobs && sum == want {
            "check out"
        } else {
            "WRONG"
        }
    );
    if done != jobs || sum != want {
        std::process::exit(1);
    }
    Ok(())
}

fn worker() -> shmring::Result<()> {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let id: u64 = var("WORKERS_ID").parse().unwrap_or(0);
    // The feeder may still be creating the queue: `open` waits for it a bounded time.
    let mut rx = mpmc::Receiver::open(&var("WORKERS_QUEUE"))?;
    let mut out = mpmc::Sender::open(&var("WORKERS_RESULTS"))?;
    let (mut jobs, mut sum) = (0u64, 0u64);
    loop {
        match rx.recv_pod::<Job>() {
            Ok(job) => {
                jobs += 1;
                sum = sum.wrapping_add(job.n * job.n);
            }
            Err(Error::Disconnected) => break,
            Err(e) => return Err(e),
        }
    }
    out.send_pod(&Report {
        worker: id,
        jobs,
        sum,
    })
}
