//! `shm-bench`: shmring measured against the physical limit of the machine.
//!
//! ```text
//! shm-bench latency [--size 64] [--iters 1000000] [--cpus 0,1] [--runs 5]
//! ```

mod fanout;
mod latency;
mod limit;
mod proc;
mod stats;

use clap::{Parser, Subcommand};
use serde::Serialize;
use shmring::Wait;

use crate::stats::{median, Summary};

#[derive(Parser)]
#[command(
    name = "shm-bench",
    about = "Benchmarks of shmring against the limits of the machine"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Two-process ping-pong round trips (p50/p99/p999) beside the cache-line limit.
    Latency {
        /// Message size in bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Measured round trips per run.
        #[arg(long, default_value_t = 1_000_000)]
        iters: u64,
        /// Unmeasured round trips first.
        #[arg(long, default_value_t = 100_000)]
        warmup: u64,
        /// Runs of each measurement; the table reports the median run.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// CPUs for the two processes, e.g. `0,1`. Empty: no pinning.
        #[arg(long, default_value = "0,1", value_delimiter = ',')]
        cpus: Vec<usize>,
        /// Print the results as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// MPMC throughput between P producer and C consumer processes (beside SPSC at 1x1).
    Fanout {
        /// Producer processes.
        #[arg(long, default_value_t = 1)]
        producers: usize,
        /// Consumer processes.
        #[arg(long, default_value_t = 1)]
        consumers: usize,
        /// Messages per producer.
        #[arg(long, default_value_t = 2_000_000)]
        messages: u64,
        /// Message size in bytes (at least 8: a counter is stamped in).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// spin, futex or semaphore.
        #[arg(long, default_value = "futex")]
        wait: String,
        /// Runs; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// CPUs to pin the processes to, round robin. Empty: no pinning.
        #[arg(long, value_delimiter = ',')]
        cpus: Vec<usize>,
    },
}

#[derive(Serialize)]
struct Row {
    name: String,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    ratio_to_limit: f64,
}

fn parse_wait(s: &str) -> Wait {
    match s {
        "spin" => Wait::Spin,
        "semaphore" => Wait::Semaphore,
        _ => Wait::Futex,
    }
}

fn main() {
    match Cli::parse().cmd {
        Cmd::Fanout {
            producers,
            consumers,
            messages,
            size,
            wait,
            runs,
            cpus,
        } => {
            let wait = parse_wait(&wait);
            let (mut mpmc, mut spsc) = (Vec::new(), Vec::new());
            for _ in 0..runs.max(1) {
                let m = fanout::run(producers, consumers, messages, size, wait, &cpus);
                mpmc.push(m.per_sec() as u64);
                if producers == 1 && consumers == 1 {
                    spsc.push(fanout::run_spsc(messages, size, wait, &cpus).per_sec() as u64);
                }
            }
            let m = median(mpmc);
            println!(
                "mpmc {producers}x{consumers} ({size} B, {wait:?}): {:.2} M msg/s (median of {})",
                m as f64 / 1e6,
                runs.max(1)
            );
            if !spsc.is_empty() {
                let s = median(spsc);
                println!(
                    "spsc 1x1 ({size} B, {wait:?}), same harness: {:.2} M msg/s; mpmc/spsc = {:.2}",
                    s as f64 / 1e6,
                    m as f64 / s as f64
                );
            }
        }
        Cmd::Latency {
            size,
            iters,
            warmup,
            runs,
            cpus,
            json,
        } => {
            let cpus = [cpus.first().copied(), cpus.get(1).copied()];
            let p = latency::Params {
                size,
                iters,
                warmup,
                cpus,
            };
            // Interleave the runs so that a noisy moment hits every candidate alike.
            let mut limit = Vec::new();
            let mut spin = Vec::new();
            let mut futex = Vec::new();
            for _ in 0..runs.max(1) {
                limit.push(limit::cache_line_round_trip(iters, warmup, cpus));
                spin.push(latency::shm_spsc(&p, Wait::Spin));
                futex.push(latency::shm_spsc(&p, Wait::Futex));
            }
            let limit = median_summary(&limit);
            let rows: Vec<Row> = [
                ("cache-line limit".to_string(), limit),
                (format!("shm spsc spin ({size} B)"), median_summary(&spin)),
                (format!("shm spsc futex ({size} B)"), median_summary(&futex)),
            ]
            .into_iter()
            .map(|(name, s)| Row {
                name,
                p50_ns: s.p50_ns,
                p99_ns: s.p99_ns,
                p999_ns: s.p999_ns,
                ratio_to_limit: s.p50_ns as f64 / limit.p50_ns.max(1) as f64,
            })
            .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
            } else {
                println!(
                    "round trip, median of {} runs x {iters} iterations, CPUs {cpus:?}",
                    runs.max(1)
                );
                println!(
                    "{:<28} {:>9} {:>9} {:>9} {:>9}",
                    "", "p50 ns", "p99 ns", "p999 ns", "p50/limit"
                );
                for r in &rows {
                    println!(
                        "{:<28} {:>9} {:>9} {:>9} {:>9.2}",
                        r.name, r.p50_ns, r.p99_ns, r.p999_ns, r.ratio_to_limit
                    );
                }
            }
        }
    }
}

/// Each percentile's median across runs.
fn median_summary(runs: &[Summary]) -> Summary {
    Summary {
        samples: runs.iter().map(|s| s.samples).sum(),
        p50_ns: median(runs.iter().map(|s| s.p50_ns).collect()),
        p99_ns: median(runs.iter().map(|s| s.p99_ns).collect()),
        p999_ns: median(runs.iter().map(|s| s.p999_ns).collect()),
        max_ns: runs.iter().map(|s| s.max_ns).max().unwrap_or(0),
    }
}
