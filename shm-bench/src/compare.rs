//! `shm-bench compare`: every transport, the limits and the peer, in one run.
//!
//! The headline figures (round trip at 64 B, throughput at 64 B and 64 KiB, the limits) are
//! measured `runs` times, interleaved (every candidate once, then every candidate again…) so that
//! a noisy moment of the machine hits all alike; the tables report medians. The sweep (every size
//! for the charts) runs `sweep_runs` times per point with a shorter budget.

use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{
    self, Limits, MemcpyPoint, RawRttPoint, RawStreamPoint, Report, SweepLatency, SweepThroughput,
};
use crate::stats::{median_f64, median_summary, Summary};
use crate::throughput::Rate;
use crate::urls::{self, Link};
use crate::{latency, limit, throughput};

/// Every transport of the comparison: label and endpoint URL.
pub const TRANSPORTS: &[(&str, &str)] = &[
    (
        "shm spsc spin",
        "shm://shm-bench?ring=spsc&capacity=4MiB&wait=spin",
    ),
    (
        "shm spsc futex",
        "shm://shm-bench?ring=spsc&capacity=4MiB&wait=futex",
    ),
    (
        "shm spsc futex, sleeps at once",
        "shm://shm-bench?ring=spsc&capacity=4MiB&wait=futex&spin=0",
    ),
    (
        "shm spsc semaphore, sleeps at once",
        "shm://shm-bench?ring=spsc&capacity=4MiB&wait=semaphore&spin=0",
    ),
    ("pipe", "pipe:"),
    ("fifo", "fifo:///tmp/shm-bench-fifo"),
    ("unix stream", "unix://@shm-bench"),
    ("unix seqpacket", "unix-seqpacket://@shm-bench"),
    ("unix dgram", "unix-dgram://@shm-bench"),
    ("POSIX mq", "mq://shm-bench"),
    ("SysV mq", "sysv://0x5348"),
    ("tcp loopback", "tcp://127.0.0.1:0"),
];

/// The label of the peer's row (present with `--features peers`). Its throughput rows copy
/// every sample out, as shmring's `recv_into` rows do.
pub const PEER: &str = "iceoryx2 spin";
/// Throughput rows that read each message in place (no copy out), shmring's and the peer's:
/// the same work on both sides (one copy in, stamps read where the message lies).
pub const ZERO_COPY: &str = "shm spsc spin, zero-copy read";
pub const PEER_ZERO_COPY: &str = "iceoryx2 spin, zero-copy read";

pub struct Options {
    pub runs: usize,
    pub sweep_runs: usize,
    pub cpus: [Option<usize>; 2],
    pub budget: Duration,
    pub sweep_budget: Duration,
    pub latency_size: usize,
    pub throughput_sizes: Vec<usize>,
    pub sweep_sizes: Vec<usize>,
    /// Only the transports whose label contains one of these (empty: every transport). The
    /// limits are always measured; a short run of one transport against them is quick.
    pub only: Vec<String>,
    /// Measure the peer (iceoryx2) too, when it is built in.
    pub peer: bool,
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Job {
    CacheLine,
    Futex,
    Memcpy(usize),
    RawRtt(usize),
    RawStream(usize),
    Latency { t: usize, size: usize, sweep: bool },
    Peer { size: usize, sweep: bool },
    PeerThroughput { size: usize, copy_out: bool },
    ZeroCopy { size: usize },
    Throughput { t: usize, size: usize, sweep: bool },
}

enum Outcome {
    Rtt(Option<Summary>),
    Rate(Option<Rate>),
    Bandwidth(f64),
}

pub fn peer_available() -> bool {
    cfg!(feature = "peers")
}

#[cfg(feature = "peers")]
fn peer_round_trip(p: &latency::Params) -> Option<Summary> {
    Some(crate::peers::iceoryx2_round_trip(p))
}

#[cfg(not(feature = "peers"))]
fn peer_round_trip(_: &latency::Params) -> Option<Summary> {
    None
}

#[cfg(feature = "peers")]
fn peer_throughput(p: &throughput::Params, copy_out: bool) -> Option<Rate> {
    Some(crate::peers::iceoryx2_throughput(p, copy_out))
}

#[cfg(not(feature = "peers"))]
fn peer_throughput(_: &throughput::Params, _: bool) -> Option<Rate> {
    None
}

/// Warm-up round trips: fewer for big messages, and at least one lap of a shm ring at `url`
/// (its first lap pays page faults: see `latency::MAX_WARMUP`).
fn warmup(url: &str, size: usize) -> u64 {
    let base = ((64 * 1000) / size.max(1)).clamp(10, 1000) as u64;
    base.max(urls::ring_lap(url, size) + 1)
}

fn progress(total: u64, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if quiet || !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:40}] {pos}/{len} {msg}")
            .expect("progress template")
            .progress_chars("=> "),
    );
    pb
}

/// The indices into [`TRANSPORTS`] that `o.only` picks.
fn picked(o: &Options) -> Vec<usize> {
    (0..TRANSPORTS.len())
        .filter(|&t| {
            o.only.is_empty() || o.only.iter().any(|w| TRANSPORTS[t].0.contains(w.as_str()))
        })
        .collect()
}

pub fn run(o: &Options) -> Result<Report, String> {
    let started = Instant::now();
    let picked = picked(o);
    let peer_available = || peer_available() && o.peer;
    let zero_copy = o.only.is_empty() || o.only.iter().any(|w| ZERO_COPY.contains(w.as_str()));
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());

    // The plan: headline jobs (interleaved, `runs` times), then the sweep.
    let mut headline = vec![Job::CacheLine, Job::Futex];
    let mut memcpy_sizes = o.throughput_sizes.clone();
    memcpy_sizes.extend(&o.sweep_sizes);
    memcpy_sizes.sort_unstable();
    memcpy_sizes.dedup();
    headline.extend(memcpy_sizes.iter().map(|&s| Job::Memcpy(s)));
    // The limits that do the same work as a ring, at every size measured.
    let mut raw_sizes = memcpy_sizes.clone();
    raw_sizes.push(o.latency_size);
    raw_sizes.sort_unstable();
    raw_sizes.dedup();
    headline.extend(raw_sizes.iter().map(|&s| Job::RawRtt(s)));
    headline.extend(raw_sizes.iter().map(|&s| Job::RawStream(s)));
    for &t in &picked {
        headline.push(Job::Latency {
            t,
            size: o.latency_size,
            sweep: false,
        });
    }
    if peer_available() {
        headline.push(Job::Peer {
            size: o.latency_size,
            sweep: false,
        });
    }
    for &size in &o.throughput_sizes {
        for &t in &picked {
            headline.push(Job::Throughput {
                t,
                size,
                sweep: false,
            });
        }
        if peer_available() {
            headline.push(Job::PeerThroughput {
                size,
                copy_out: true,
            });
        }
        if zero_copy {
            headline.push(Job::ZeroCopy { size });
            if peer_available() {
                headline.push(Job::PeerThroughput {
                    size,
                    copy_out: false,
                });
            }
        }
    }
    let mut sweep = Vec::new();
    for &size in &o.sweep_sizes {
        for &t in &picked {
            sweep.push(Job::Latency {
                t,
                size,
                sweep: true,
            });
        }
        if peer_available() {
            sweep.push(Job::Peer { size, sweep: true });
        }
        for &t in &picked {
            sweep.push(Job::Throughput {
                t,
                size,
                sweep: true,
            });
        }
    }
    let runs = o.runs.max(1);
    let total = headline.len() * runs + sweep.len() * o.sweep_runs;
    let pb = progress(total as u64, o.quiet);

    let mut head_out: Vec<Vec<Outcome>> = headline.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (i, job) in headline.iter().enumerate() {
            pb.set_message(describe(job));
            head_out[i].push(execute(job, o)?);
            pb.inc(1);
        }
    }
    let mut sweep_out: Vec<Vec<Outcome>> = sweep.iter().map(|_| Vec::new()).collect();
    for _ in 0..o.sweep_runs {
        for (i, job) in sweep.iter().enumerate() {
            pb.set_message(describe(job));
            sweep_out[i].push(execute(job, o)?);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();

    // Medians.
    let rtt = |outs: &[Outcome]| -> Option<Summary> {
        let xs: Vec<Summary> = outs
            .iter()
            .filter_map(|x| match x {
                Outcome::Rtt(s) => *s,
                _ => None,
            })
            .collect();
        (!xs.is_empty()).then(|| median_summary(&xs))
    };
    let rate = |outs: &[Outcome]| -> Option<Rate> {
        let mut xs: Vec<Rate> = outs
            .iter()
            .filter_map(|x| match x {
                Outcome::Rate(r) => *r,
                _ => None,
            })
            .collect();
        xs.sort_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s));
        xs.get(xs.len() / 2).copied()
    };
    let find = |j: Job| headline.iter().position(|x| *x == j).expect("planned job");

    let cache_line_rtt = rtt(&head_out[find(Job::CacheLine)]).expect("cache line measured");
    let futex_rtt = rtt(&head_out[find(Job::Futex)]).expect("futex measured");
    let memcpy: Vec<MemcpyPoint> = memcpy_sizes
        .iter()
        .map(|&size| {
            let xs = head_out[find(Job::Memcpy(size))]
                .iter()
                .filter_map(|x| match x {
                    Outcome::Bandwidth(b) => Some(*b),
                    _ => None,
                })
                .collect();
            MemcpyPoint {
                size,
                bytes_per_s: median_f64(xs),
            }
        })
        .collect();

    let mut lat_measured: Vec<(String, String, Option<Summary>)> = picked
        .iter()
        .map(|&t| {
            let (label, url) = TRANSPORTS[t];
            let j = Job::Latency {
                t,
                size: o.latency_size,
                sweep: false,
            };
            (label.to_string(), url.to_string(), rtt(&head_out[find(j)]))
        })
        .collect();
    if peer_available() {
        let j = Job::Peer {
            size: o.latency_size,
            sweep: false,
        };
        lat_measured.push((
            PEER.into(),
            "iceoryx2 ipc publish-subscribe".into(),
            rtt(&head_out[find(j)]),
        ));
    }
    let mut tput_measured = Vec::new();
    for &size in &o.throughput_sizes {
        for &t in &picked {
            let (label, url) = TRANSPORTS[t];
            let j = Job::Throughput {
                t,
                size,
                sweep: false,
            };
            tput_measured.push((
                label.to_string(),
                url.to_string(),
                size,
                rate(&head_out[find(j)]),
            ));
        }
        if peer_available() {
            tput_measured.push((
                PEER.to_string(),
                "iceoryx2 ipc publish-subscribe, payload copied out".to_string(),
                size,
                rate(
                    &head_out[find(Job::PeerThroughput {
                        size,
                        copy_out: true,
                    })],
                ),
            ));
        }
        if zero_copy {
            tput_measured.push((
                ZERO_COPY.to_string(),
                "shmring::spsc recv() guard, 4 MiB, spin".to_string(),
                size,
                rate(&head_out[find(Job::ZeroCopy { size })]),
            ));
            if peer_available() {
                tput_measured.push((
                    PEER_ZERO_COPY.to_string(),
                    "iceoryx2 ipc publish-subscribe, payload read in place".to_string(),
                    size,
                    rate(
                        &head_out[find(Job::PeerThroughput {
                            size,
                            copy_out: false,
                        })],
                    ),
                ));
            }
        }
    }
    let latency = report::latency_rows(o.latency_size, &lat_measured, &cache_line_rtt, &futex_rtt);
    let throughput = report::throughput_rows(&tput_measured, &memcpy);

    let mut sweep_latency = Vec::new();
    let mut sweep_throughput = Vec::new();
    for (job, outs) in sweep.iter().zip(&sweep_out) {
        match *job {
            Job::Latency { t, size, .. } => {
                if let Some(rtt) = rtt(outs) {
                    sweep_latency.push(SweepLatency {
                        transport: TRANSPORTS[t].0.into(),
                        size,
                        rtt,
                    });
                }
            }
            Job::Peer { size, .. } => {
                if let Some(rtt) = rtt(outs) {
                    sweep_latency.push(SweepLatency {
                        transport: PEER.into(),
                        size,
                        rtt,
                    });
                }
            }
            Job::Throughput { t, size, .. } => {
                if let Some(rate) = rate(outs) {
                    sweep_throughput.push(SweepThroughput {
                        transport: TRANSPORTS[t].0.into(),
                        size,
                        rate,
                    });
                }
            }
            _ => {}
        }
    }

    let raw_rtt = raw_sizes
        .iter()
        .filter_map(|&size| {
            rtt(&head_out[find(Job::RawRtt(size))]).map(|rtt| RawRttPoint { size, rtt })
        })
        .collect();
    let raw_stream = raw_sizes
        .iter()
        .filter_map(|&size| {
            rate(&head_out[find(Job::RawStream(size))]).map(|r| RawStreamPoint {
                size,
                msgs_per_s: r.msgs_per_s,
                bytes_per_s: r.bytes_per_s,
            })
        })
        .collect();
    let limits = Limits {
        cache_line_rtt,
        futex_rtt,
        memcpy,
        raw_rtt,
        raw_stream,
    };
    let targets = report::targets(&latency, &throughput, &sweep_latency, &limits);
    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        tool: format!("shm-bench {}", env!("CARGO_PKG_VERSION")),
        started_unix_s,
        wall_s: started.elapsed().as_secs_f64(),
        machine: report::Machine {
            cpus_online: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        },
        settings: report::Settings {
            runs,
            sweep_runs: o.sweep_runs,
            cpus: o.cpus.iter().flatten().copied().collect(),
            budget_ms: o.budget.as_millis() as u64,
            sweep_budget_ms: o.sweep_budget.as_millis() as u64,
            latency_size: o.latency_size,
            throughput_sizes: o.throughput_sizes.clone(),
            sweep_sizes: o.sweep_sizes.clone(),
        },
        limits,
        latency,
        throughput,
        sweep_latency,
        sweep_throughput,
        targets,
    })
}

fn describe(job: &Job) -> String {
    match *job {
        Job::CacheLine => "limit: cache line".into(),
        Job::Futex => "limit: raw futex".into(),
        Job::Memcpy(s) => format!("limit: memcpy {}", report::human_size(s)),
        Job::RawRtt(s) => format!("limit: raw ping-pong {}", report::human_size(s)),
        Job::RawStream(s) => format!("limit: raw stream {}", report::human_size(s)),
        Job::Latency { t, size, .. } => {
            format!(
                "round trip {} {}",
                TRANSPORTS[t].0,
                report::human_size(size)
            )
        }
        Job::Peer { size, .. } => format!("round trip {PEER} {}", report::human_size(size)),
        Job::PeerThroughput { size, copy_out } => format!(
            "throughput {} {}",
            if copy_out { PEER } else { PEER_ZERO_COPY },
            report::human_size(size)
        ),
        Job::ZeroCopy { size } => format!("throughput {ZERO_COPY} {}", report::human_size(size)),
        Job::Throughput { t, size, .. } => {
            format!(
                "throughput {} {}",
                TRANSPORTS[t].0,
                report::human_size(size)
            )
        }
    }
}

fn execute(job: &Job, o: &Options) -> Result<Outcome, String> {
    let budget = |sweep: bool| if sweep { o.sweep_budget } else { o.budget };
    let lat = |url: &str, size: usize, sweep: bool| latency::Params {
        size,
        iters: u64::MAX / 4,
        warmup: warmup(url, size),
        budget: Some(budget(sweep)),
        cpus: o.cpus,
    };
    Ok(match *job {
        // ~150-300 ns a round trip: this many take a few tens of milliseconds.
        Job::CacheLine => Outcome::Rtt(Some(limit::cache_line_round_trip(200_000, 20_000, o.cpus))),
        Job::Futex => Outcome::Rtt(Some(limit::futex_round_trip(
            u64::MAX / 4,
            1000,
            Some(o.budget),
            o.cpus,
        ))),
        Job::RawRtt(size) => Outcome::Rtt(Some(limit::raw_round_trip(
            size,
            warmup("", size),
            o.budget,
            o.cpus,
        ))),
        Job::RawStream(size) => Outcome::Rate(Some(limit::raw_stream(size, o.budget, o.cpus))),
        Job::Memcpy(size) => Outcome::Bandwidth(limit::memcpy_bandwidth(
            size,
            o.budget.min(Duration::from_millis(50)),
        )),
        Job::Latency { t, size, sweep } => {
            let url = TRANSPORTS[t].1;
            Outcome::Rtt(latency::run(&lat(url, size, sweep), &Link::parse(url))?)
        }
        Job::Peer { size, sweep } => Outcome::Rtt(peer_round_trip(&lat("", size, sweep))),
        Job::PeerThroughput { size, copy_out } => Outcome::Rate(peer_throughput(
            &throughput::Params {
                size,
                budget: budget(false),
                max_msgs: u64::MAX,
                cpus: o.cpus,
                batch: 1,
            },
            copy_out,
        )),
        Job::ZeroCopy { size } => {
            Outcome::Rate(Some(throughput::spsc_zero_copy(&throughput::Params {
                size,
                budget: budget(false),
                max_msgs: u64::MAX,
                cpus: o.cpus,
                batch: 1,
            })))
        }
        Job::Throughput { t, size, sweep } => {
            let link = Link::parse(TRANSPORTS[t].1);
            let p = throughput::Params {
                size,
                budget: budget(sweep),
                max_msgs: u64::MAX,
                cpus: o.cpus,
                batch: 1,
            };
            Outcome::Rate(throughput::run(&p, &link)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_warmups_cover_a_ring_lap() {
        for (label, url) in TRANSPORTS {
            for size in [8, 64, 2048, 65536] {
                let lap = urls::ring_lap(url, size);
                assert!(warmup(url, size) > lap, "{label} at {size} B");
            }
        }
        // 4 MiB SPSC ring at 2 KiB: 2040 frames a lap (the old warm-up was 31).
        assert_eq!(warmup(TRANSPORTS[0].1, 2048), 2041);
        assert_eq!(warmup("unix://@x", 2048), 31);
    }
}
