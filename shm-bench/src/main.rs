//! `shm-bench`: shmring and every other transport measured against the physical limits of the
//! machine, side by side, in one run.
//!
//! ```text
//! shm-bench compare    [--runs 3] [--cpus 0,1] [--out target/shm-bench] [--quiet]
//! shm-bench latency    [--url shm://x?wait=spin] [--size 64] [--iters 1000000] [--runs 5]
//! shm-bench fanout     [--ring spsc,broadcast,iceoryx2,shaq] [--readers 1,2,4,8] [--sizes 64,4KiB]
//! shm-bench mpmc       [--producers 2] [--consumers 2]
//! shm-bench throughput [--url unix://@x] [--size 64] [--ms 500] [--runs 3]
//! shm-bench sweep      [--url tcp://127.0.0.1:0] [--sizes 8,64,...] [--ms 100]
//! ```
//!
//! Every command runs two processes (fork), pinned with `--cpus` (empty: not pinned). Endpoint
//! URLs are those of `shmring::listen` / `shmring::connect`; the benchmark makes the name, path,
//! key or port unique per run. `pipe:` uses pipes made before the fork.

mod chart;
mod compare;
mod fanout;
mod fanout_cmd;
#[cfg(feature = "peers")]
mod fanout_peers;
mod fanout_shm;
mod latency;
mod limit;
mod mpmc_procs;
#[cfg(feature = "peers")]
mod peers;
mod proc;
mod report;
#[cfg(feature = "peers")]
mod shaq_peer;
mod stats;
mod throughput;
mod urls;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::report::{human_rate, human_size};
use crate::stats::{median, median_f64, median_summary, Summary};
use crate::urls::Link;
use shmring::Wait;

#[derive(Parser)]
#[command(
    name = "shm-bench",
    about = "Benchmarks of shmring and the classic IPC transports against the limits of the machine"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Message sizes 8 B .. 1 MiB, powers of 4 (times 8) and 1 MiB, with the sizes the targets
/// name (64 B, 1 KiB, 2 KiB, 64 KiB) among them.
fn default_sizes() -> Vec<usize> {
    let mut v: Vec<usize> = (0..10)
        .map(|k| 8usize << (2 * k))
        .filter(|&s| s < 1 << 20)
        .collect();
    v.extend([64, 1 << 10, 2 << 10, 64 << 10, 1 << 20]);
    v.sort_unstable();
    v.dedup();
    v
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: usize = n.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        other => return Err(format!("unknown unit {other:?} (use KiB or MiB)")),
    };
    let size = n << shift;
    if size < latency::MIN_SIZE {
        return Err(format!(
            "messages are at least {} bytes (they carry a sequence number)",
            latency::MIN_SIZE
        ));
    }
    Ok(size)
}

#[derive(Subcommand)]
enum Cmd {
    /// Two-process ping-pong round trips (p50/p99/p999) beside the cache-line limit.
    /// Without --url: shm spsc with spin and with futex waiting, as before.
    Latency {
        /// Endpoint URL (`shm://x?wait=spin`, `unix://@x`, `pipe:`, `tcp://127.0.0.1:0`…).
        #[arg(long)]
        url: Vec<String>,
        /// Message size (bytes; KiB / MiB suffixes allowed).
        #[arg(long, default_value = "64", value_parser = parse_size)]
        size: usize,
        /// Measured round trips per run.
        #[arg(long, default_value_t = 1_000_000)]
        iters: u64,
        /// Unmeasured round trips first.
        #[arg(long, default_value_t = 100_000)]
        warmup: u64,
        /// Runs of each measurement (interleaved); the table reports the median run.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// CPUs for the two processes, e.g. `0,1`. Empty: no pinning.
        #[arg(long, default_value = "0,1", value_parser = parse_cpus)]
        cpus: Cpus,
        /// Print the results as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One writer, N reader processes, every reader sees every message: throughput (aggregate
    /// and per reader) and round trip (writer -> reader 0 -> writer) for each source
    /// (`--ring`), reader count and size, runs interleaved, medians and ratios.
    Fanout {
        /// Sources: spsc (1 reader: the baseline), broadcast, iceoryx2, shaq (the last two
        /// with --features peers).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "spsc,broadcast,iceoryx2,shaq"
        )]
        ring: Vec<String>,
        /// Reader process counts.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
        readers: Vec<usize>,
        /// Message sizes (at least 16 B: two stamps).
        #[arg(long, value_delimiter = ',', default_value = "64,4KiB", value_parser = parse_size)]
        sizes: Vec<usize>,
        /// Interleaved runs of every case; the table reports medians.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Milliseconds counted per throughput run.
        #[arg(long, default_value_t = 200)]
        ms: u64,
        /// Milliseconds of round trips per run.
        #[arg(long, default_value_t = 100)]
        rtt_ms: u64,
        /// Ring memory of every source (bytes in flight; KiB / MiB suffixes).
        #[arg(long, default_value = "1MiB", value_parser = parse_size)]
        ring_bytes: usize,
        /// CPUs: the writer on the first, readers round robin from the second. Empty: none.
        #[arg(long, default_value = "0,1", value_parser = parse_cpus)]
        cpus: Cpus,
        /// Polls (spin hints) before a process with nothing to do yields its core.
        #[arg(long, default_value_t = fanout::DEFAULT_SPINS)]
        spins: u64,
        #[arg(long)]
        json: bool,
    },
    /// MPMC throughput between P producer and C consumer processes (beside SPSC at 1x1).
    Mpmc {
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
        #[arg(long, default_value = "", value_parser = parse_cpus)]
        cpus: Cpus,
    },
    /// shaq 5.1.1 against shmring in the same run (`--ring spsc|mpmc`): one-way throughput of
    /// 64-byte messages, per message (`--batch 1`) or in batches, through each one's own API,
    /// runs interleaved, medians and the ratio.
    #[cfg(feature = "peers")]
    VersusShaq {
        /// Messages per batch on both sides (1: one per call).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=65536))]
        batch: u64,
        /// Milliseconds counted per run.
        #[arg(long, default_value_t = 500)]
        ms: u64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value = "0,1", value_parser = parse_cpus)]
        cpus: Cpus,
        /// `spsc` or `mpmc` (shaq's and shmring's of that kind).
        #[arg(long, default_value = "spsc")]
        ring: String,
    },
    /// One-way throughput between two processes (messages/s, bytes/s).
    Throughput {
        /// Endpoint URL(s); `raw` is the throughput limit (a raw two-process stream of N-byte
        /// records, no ring). The '/ first' column is each URL's rate over the first one's, the
        /// median of the per-round ratios: give `raw` first for the ratio to the limit.
        #[arg(
            long,
            default_value = "shm://shm-bench?ring=spsc&capacity=4MiB&wait=spin"
        )]
        url: Vec<String>,
        #[arg(long, default_value = "64", value_parser = parse_size)]
        size: usize,
        /// Milliseconds counted per run.
        #[arg(long, default_value_t = 500)]
        ms: u64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value = "0,1", value_parser = parse_cpus)]
        cpus: Cpus,
        /// Messages per batch: above 1 the sender uses `send_batch` and the receiver
        /// `recv_batch` with this many (1: `send` / `recv_into`, one message per call).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=65536))]
        batch: u64,
        #[arg(long)]
        json: bool,
    },
    /// Round trip and throughput at every message size from 8 B to 1 MiB.
    Sweep {
        #[arg(
            long,
            default_value = "shm://shm-bench?ring=spsc&capacity=4MiB&wait=spin"
        )]
        url: Vec<String>,
        /// Sizes (default: 8 B, 32 B, … powers of 4 … 512 KiB, 1 MiB, plus 64 B, 1 KiB, 2 KiB, 64 KiB).
        #[arg(long, value_delimiter = ',', value_parser = parse_size)]
        sizes: Vec<usize>,
        /// Milliseconds per point and mode.
        #[arg(long, default_value_t = 100)]
        ms: u64,
        #[arg(long, default_value = "0,1", value_parser = parse_cpus)]
        cpus: Cpus,
        #[arg(long)]
        json: bool,
    },
    /// Every transport, the limits (cache line, raw futex, memcpy, raw N-byte ping-pong and stream) and the peer (iceoryx2, with
    /// `--features peers`) in one run: tables, the issue's targets, JSON, SVG and PNG charts.
    Compare {
        /// Interleaved runs of each headline figure; tables report medians.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Runs of each sweep point (0: no sweep, no charts).
        #[arg(long, default_value_t = 1)]
        sweep_runs: usize,
        /// Milliseconds per headline measurement.
        #[arg(long, default_value_t = 100)]
        ms: u64,
        /// Milliseconds per sweep point.
        #[arg(long, default_value_t = 25)]
        sweep_ms: u64,
        /// Sweep sizes (default: 8 B … 1 MiB, powers of 4, plus 64 B, 1 KiB, 2 KiB, 64 KiB).
        #[arg(long, value_delimiter = ',', value_parser = parse_size)]
        sizes: Vec<usize>,
        #[arg(long, default_value = "0,1", value_parser = parse_cpus)]
        cpus: Cpus,
        /// Only the transports whose label contains one of these words (e.g. `spsc spin`,
        /// `iceoryx2`); the limits are always measured. Empty: every transport and the peer.
        #[arg(long, value_delimiter = ',')]
        transports: Vec<String>,
        /// Where compare.json and the charts go.
        #[arg(long, default_value = "target/shm-bench")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Print the JSON report to stdout instead of the tables.
        #[arg(long)]
        json: bool,
    },
}

/// A `--cpus` list: `0,1`, or empty for "not pinned".
#[derive(Debug, Clone)]
struct Cpus(Vec<usize>);

impl std::ops::Deref for Cpus {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

/// Parses `--cpus`: comma-separated CPU numbers; the empty string means no pinning.
fn parse_cpus(s: &str) -> Result<Cpus, String> {
    if s.trim().is_empty() {
        return Ok(Cpus(Vec::new()));
    }
    s.split(',')
        .map(|c| {
            c.trim().parse::<usize>().map_err(|e| {
                format!("{c:?} is not a CPU number ({e}); use e.g. 0,1, or '' for no pinning")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Cpus)
}

fn cpu_pair(cpus: &[usize]) -> [Option<usize>; 2] {
    [cpus.first().copied(), cpus.get(1).copied()]
}

#[derive(Serialize)]
struct LatencyRow {
    name: String,
    size: usize,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    /// p50 over the cache-line limit's, the median of the per-run ratios (as `ratio_to_raw`).
    ratio_to_limit: f64,
    /// p50 over the raw N-byte ping-pong's (`limit::raw_round_trip`, the same-work limit).
    ratio_to_raw: f64,
}

/// The `throughput --url` that stands for the throughput limit: the raw two-process stream of
/// N-byte records (`limit::raw_stream`), run in the same rounds as the other URLs.
const RAW_STREAM_URL: &str = "raw";

/// Milliseconds of each raw N-byte ping-pong run in `latency`.
const RAW_RTT_MS: u64 = 100;

fn parse_wait(s: &str) -> Wait {
    match s {
        "spin" => Wait::Spin,
        "semaphore" => Wait::Semaphore,
        _ => Wait::Futex,
    }
}

#[derive(Serialize)]
struct RateRow {
    url: String,
    size: usize,
    msgs_per_s: f64,
    bytes_per_s: f64,
    /// Median over the rounds of this URL's messages/s over the first URL's in that round.
    to_first: f64,
}

fn die(msg: String) -> ! {
    eprintln!("shm-bench: {msg}");
    std::process::exit(1)
}

fn main() {
    let wall = Instant::now();
    match Cli::parse().cmd {
        Cmd::Fanout {
            ring,
            readers,
            sizes,
            runs,
            ms,
            rtt_ms,
            ring_bytes,
            cpus,
            spins,
            json,
        } => {
            let kinds = ring
                .iter()
                .map(|r| fanout_cmd::Kind::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| die(e));
            if let Some(&n) = readers.iter().find(|&&n| n == 0 || n > fanout::MAX_READERS) {
                die(format!("--readers {n}: 1 to {}", fanout::MAX_READERS));
            }
            if let Some(&s) = sizes.iter().find(|&&s| s < 16) {
                die(format!("--sizes {s}: at least 16 bytes (two stamps)"));
            }
            fanout_cmd::command(&fanout_cmd::Options {
                kinds,
                readers,
                sizes,
                runs,
                budget: Duration::from_millis(ms),
                rtt_budget: Duration::from_millis(rtt_ms),
                ring_bytes,
                cpus: cpus.to_vec(),
                spins,
                json,
            });
        }
        Cmd::Mpmc {
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
                let m = mpmc_procs::run(producers, consumers, messages, size, wait, &cpus);
                mpmc.push(m.per_sec() as u64);
                if producers == 1 && consumers == 1 {
                    spsc.push(mpmc_procs::run_spsc(messages, size, wait, &cpus).per_sec() as u64);
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
            url,
            size,
            iters,
            warmup,
            runs,
            cpus,
            json,
        } => {
            let cpus = cpu_pair(&cpus);
            let p = latency::Params {
                size,
                iters,
                warmup,
                budget: None,
                cpus,
            };
            let urls: Vec<(String, String)> = if url.is_empty() {
                ["spin", "futex"]
                    .iter()
                    .map(|w| {
                        (
                            format!("shm spsc {w} ({size} B)"),
                            format!("shm://shm-bench?ring=spsc&capacity=4MiB&wait={w}"),
                        )
                    })
                    .collect()
            } else {
                url.iter()
                    .map(|u| {
                        (
                            format!("{} ({size} B)", urls::transport_label(u)),
                            u.clone(),
                        )
                    })
                    .collect()
            };
            // Interleave the runs so that a noisy moment hits every candidate alike.
            let mut limit_runs = Vec::new();
            let mut raw_runs = Vec::new();
            let mut per_url: Vec<Vec<Summary>> = vec![Vec::new(); urls.len()];
            for _ in 0..runs.max(1) {
                limit_runs.push(limit::cache_line_round_trip(iters, warmup, cpus));
                // The same-work limit of issue 10: the N-byte buffer plus a flag, no ring.
                raw_runs.push(limit::raw_round_trip(
                    size,
                    warmup,
                    Duration::from_millis(RAW_RTT_MS),
                    cpus,
                ));
                for (i, (_, u)) in urls.iter().enumerate() {
                    // At least one ring lap: its first touches are page faults.
                    let p = latency::Params {
                        warmup: p.warmup.max(urls::ring_lap(u, size) + 1),
                        ..p
                    };
                    match latency::run(&p, &Link::parse(u)) {
                        Ok(Some(s)) => per_url[i].push(s),
                        Ok(None) => die(format!("{u}: {size} B is above what it carries")),
                        Err(e) => die(e),
                    }
                }
            }
            let mut named = vec![
                ("cache-line limit".to_string(), &limit_runs),
                (format!("raw {size} B ping-pong (limit)"), &raw_runs),
            ];
            for ((name, _), s) in urls.iter().zip(&per_url) {
                named.push((name.clone(), s));
            }
            // Ratios are medians of the per-round ratios: this VM's round trips shift between
            // modes (the cache-line limit 140 or 440 ns) from one run to the next, and a ratio
            // of medians could pair a fast-mode run with a slow-mode one.
            let per_round = |xs: &[Summary], base: &[Summary]| {
                median_f64(
                    xs.iter()
                        .zip(base)
                        .map(|(x, b)| x.p50_ns as f64 / b.p50_ns.max(1) as f64)
                        .collect(),
                )
            };
            let rows: Vec<LatencyRow> = named
                .into_iter()
                .map(|(name, runs)| {
                    let s = median_summary(runs);
                    LatencyRow {
                        name,
                        size,
                        p50_ns: s.p50_ns,
                        p99_ns: s.p99_ns,
                        p999_ns: s.p999_ns,
                        ratio_to_limit: per_round(runs, &limit_runs),
                        ratio_to_raw: per_round(runs, &raw_runs),
                    }
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
            } else {
                println!(
                    "round trip, median of {} runs x {iters} iterations, CPUs {cpus:?}; ratios: \
                     medians of the per-run ratios",
                    runs.max(1)
                );
                println!(
                    "{:<34} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    "", "p50 ns", "p99 ns", "p999 ns", "p50/limit", "p50/raw"
                );
                for r in &rows {
                    println!(
                        "{:<34} {:>9} {:>9} {:>9} {:>9.2} {:>9.2}",
                        r.name, r.p50_ns, r.p99_ns, r.p999_ns, r.ratio_to_limit, r.ratio_to_raw
                    );
                }
            }
        }
        #[cfg(feature = "peers")]
        Cmd::VersusShaq {
            batch,
            ms,
            runs,
            cpus,
            ring,
        } => {
            use shaq_peer::Queue;
            let p = throughput::Params {
                size: 64,
                budget: Duration::from_millis(ms),
                max_msgs: u64::MAX,
                cpus: cpu_pair(&cpus),
                batch: batch as usize,
            };
            let pair = match ring.as_str() {
                "spsc" => [Queue::ShmringSpsc, Queue::ShaqSpsc],
                "mpmc" => [Queue::ShmringMpmc, Queue::ShaqMpmc],
                r => die(format!("--ring {r}: expected spsc or mpmc")),
            };
            // The raw batched stream runs in the same rounds: the limit of the same loop.
            let queues = [pair[0], pair[1], Queue::RawBatched];
            // This VM's one-way rates shift between modes from run to run (2-3x apart), while
            // one round of the three sits in one mode: so the ratios are medians of the
            // per-round ratios, and each round starts with a different queue.
            let mut rates = [Vec::new(), Vec::new(), Vec::new()];
            for round in 0..runs.max(1) {
                for k in 0..queues.len() {
                    let i = (round + k) % queues.len();
                    let r = shaq_peer::throughput(queues[i], &p).unwrap_or_else(|e| die(e));
                    rates[i].push(r.msgs_per_s);
                }
                eprintln!(
                    "round {round}: {:.0} / {:.0} / {:.0} msgs/s",
                    rates[0][round], rates[1][round], rates[2][round]
                );
            }
            let per_round = |a: usize, b: usize| {
                median_f64(rates[a].iter().zip(&rates[b]).map(|(x, y)| x / y).collect())
            };
            let (ours_theirs, ours_raw, theirs_raw) =
                (per_round(0, 1), per_round(0, 2), per_round(1, 2));
            let [ours, theirs, raw] = rates.map(median_f64);
            println!(
                "64 B one-way, 1 producer and 1 consumer process, batch {batch}, median of {} interleaved runs x {ms} ms",
                runs.max(1)
            );
            println!("{:<32} {ours:>14.0} msgs/s", queues[0].label());
            println!("{:<32} {theirs:>14.0} msgs/s", queues[1].label());
            println!("{:<32} {raw:>14.0} msgs/s", queues[2].label());
            println!("ratios: medians of the per-round ratios");
            println!("{:<32} {ours_theirs:>14.2}x", "shmring / shaq");
            println!("{:<32} {ours_raw:>14.2}x", "shmring / raw");
            println!("{:<32} {theirs_raw:>14.2}x", "shaq / raw");
        }
        Cmd::Throughput {
            url,
            size,
            ms,
            runs,
            cpus,
            batch,
            json,
        } => {
            let p = throughput::Params {
                size,
                budget: Duration::from_millis(ms),
                max_msgs: u64::MAX,
                cpus: cpu_pair(&cpus),
                batch: batch as usize,
            };
            // Each round runs every URL once, starting one further along each time; the ratio
            // to the first URL is the median of the per-round ratios (this VM's rates shift
            // between modes from run to run, 2-3x apart, and a round tends to sit in one).
            let mut per_url: Vec<Vec<throughput::Rate>> = vec![Vec::new(); url.len()];
            for round in 0..runs.max(1) {
                for k in 0..url.len() {
                    let (i, u) = ((round + k) % url.len(), &url[(round + k) % url.len()]);
                    let r = if u == RAW_STREAM_URL {
                        Ok(Some(limit::raw_stream(size, p.budget, p.cpus)))
                    } else {
                        throughput::run(&p, &Link::parse(u))
                    };
                    match r {
                        Ok(Some(r)) => per_url[i].push(r),
                        Ok(None) => die(format!("{u}: {size} B is above what it carries")),
                        Err(e) => die(e),
                    }
                }
            }
            let rows: Vec<RateRow> = url
                .iter()
                .zip(&per_url)
                .map(|(u, rs)| RateRow {
                    url: u.clone(),
                    size,
                    msgs_per_s: median_f64(rs.iter().map(|r| r.msgs_per_s).collect()),
                    bytes_per_s: median_f64(rs.iter().map(|r| r.bytes_per_s).collect()),
                    to_first: median_f64(
                        rs.iter()
                            .zip(&per_url[0])
                            .map(|(r, f)| r.msgs_per_s / f.msgs_per_s)
                            .collect(),
                    ),
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
            } else {
                println!(
                    "one-way throughput, {} messages, median of {} runs x {ms} ms",
                    human_size(size),
                    runs.max(1)
                );
                println!("{:<55} {:>19} {:>12} {:>9}", "", "", "", "/ first");
                for r in &rows {
                    println!(
                        "{:<55} {:>12.0} msgs/s {:>12} {:>8.2}x",
                        r.url,
                        r.msgs_per_s,
                        human_rate(r.bytes_per_s),
                        r.to_first
                    );
                }
            }
        }
        Cmd::Sweep {
            url,
            sizes,
            ms,
            cpus,
            json,
        } => {
            let sizes = if sizes.is_empty() {
                default_sizes()
            } else {
                sizes
            };
            let cpus = cpu_pair(&cpus);
            #[derive(Serialize)]
            struct Point {
                url: String,
                size: usize,
                rtt: Option<Summary>,
                rate: Option<throughput::Rate>,
            }
            let mut points = Vec::new();
            for u in &url {
                let link = Link::parse(u);
                for &size in &sizes {
                    let lp = latency::Params {
                        size,
                        iters: u64::MAX / 4,
                        // At least one ring lap: its first touches are page faults.
                        warmup: 100.max(urls::ring_lap(u, size) + 1),
                        budget: Some(Duration::from_millis(ms)),
                        cpus,
                    };
                    let tp = throughput::Params {
                        size,
                        budget: Duration::from_millis(ms),
                        max_msgs: u64::MAX,
                        cpus,
                        batch: 1,
                    };
                    let rtt = latency::run(&lp, &link).unwrap_or_else(|e| die(e));
                    let rate = throughput::run(&tp, &link).unwrap_or_else(|e| die(e));
                    points.push(Point {
                        url: u.clone(),
                        size,
                        rtt,
                        rate,
                    });
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&points).expect("json"));
            } else {
                println!(
                    "{:<50} {:>8} {:>10} {:>10} {:>12} {:>12}",
                    "url", "size", "p50 ns", "p99 ns", "msgs/s", "bytes/s"
                );
                for p in &points {
                    let (p50, p99) = p.rtt.map_or(("n/a".into(), "n/a".into()), |s| {
                        (s.p50_ns.to_string(), s.p99_ns.to_string())
                    });
                    let (mps, bps) = p.rate.map_or(("n/a".into(), "n/a".into()), |r| {
                        (format!("{:.0}", r.msgs_per_s), human_rate(r.bytes_per_s))
                    });
                    println!(
                        "{:<50} {:>8} {:>10} {:>10} {:>12} {:>12}",
                        p.url,
                        human_size(p.size),
                        p50,
                        p99,
                        mps,
                        bps
                    );
                }
            }
        }
        Cmd::Compare {
            runs,
            sweep_runs,
            ms,
            sweep_ms,
            sizes,
            cpus,
            transports,
            out,
            quiet,
            json,
        } => {
            let peer = transports.is_empty()
                || transports
                    .iter()
                    .any(|w| compare::PEER.contains(w.as_str()));
            let o = compare::Options {
                only: transports,
                peer,
                runs,
                sweep_runs,
                cpus: cpu_pair(&cpus),
                budget: Duration::from_millis(ms),
                sweep_budget: Duration::from_millis(sweep_ms),
                latency_size: 64,
                throughput_sizes: vec![64, 64 << 10],
                sweep_sizes: if sweep_runs == 0 {
                    Vec::new()
                } else if sizes.is_empty() {
                    default_sizes()
                } else {
                    sizes
                },
                quiet,
            };
            let mut rep = compare::run(&o).unwrap_or_else(|e| die(e));
            if let Err(e) = std::fs::create_dir_all(&out) {
                die(format!("{}: {e}", out.display()));
            }
            let mut written = Vec::new();
            if !o.sweep_sizes.is_empty() {
                match chart::write_all(&rep, &out) {
                    Ok(paths) => written.extend(paths),
                    Err(e) => eprintln!("shm-bench: charts not written: {e}"),
                }
            }
            rep.wall_s = wall.elapsed().as_secs_f64();
            let path = out.join("compare.json");
            let text = serde_json::to_string_pretty(&rep).expect("json");
            if let Err(e) = std::fs::write(&path, &text) {
                die(format!("{}: {e}", path.display()));
            }
            written.insert(0, path);
            if json {
                println!("{text}");
            } else {
                print!("{}", report::render(&rep));
                if !compare::peer_available() {
                    println!(
                        "  (iceoryx2 not in this build: cargo run -p shm-bench --release --features peers -- compare)"
                    );
                }
                println!(
                    "\nnote: ratios and medians come from this one run; a busy machine makes every figure noisy"
                );
                for p in &written {
                    println!("wrote {}", p.display());
                }
            }
        }
    }
    eprintln!("wall time {:.1} s", wall.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_span_8_bytes_to_1_mib() {
        let s = default_sizes();
        assert_eq!(s.first(), Some(&8));
        assert_eq!(s.last(), Some(&(1 << 20)));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert!(parse_size("4").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

#[cfg(test)]
mod cpus_tests {
    use super::parse_cpus;

    #[test]
    fn empty_means_unpinned_and_lists_parse() {
        assert!(parse_cpus("").unwrap().is_empty());
        assert_eq!(&*parse_cpus("0,1").unwrap(), &[0, 1]);
        assert_eq!(&*parse_cpus(" 3 ").unwrap(), &[3]);
        assert!(parse_cpus("0,x").unwrap_err().contains("not a CPU number"));
    }
}
