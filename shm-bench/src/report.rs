//! The results of `shm-bench compare`: the JSON schema, the ratios, the targets and the tables.
//!
//! The JSON written to `<out>/compare.json` is a [`Report`]; `shm-bench/SCHEMA.md` documents
//! every field. [`SCHEMA_VERSION`] changes whenever a field changes meaning or goes away
//! (adding a field does not change it).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::stats::Summary;
use crate::throughput::Rate;

/// The version of the JSON layout below.
pub const SCHEMA_VERSION: u32 = 1;

/// The transport every figure is also compared with.
pub const BASELINE: &str = "unix stream";

/// Everything one `shm-bench compare` run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// `shm-bench <version>`.
    pub tool: String,
    /// When the run started, seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// How long the whole run took, seconds.
    pub wall_s: f64,
    pub machine: Machine,
    pub settings: Settings,
    pub limits: Limits,
    /// Round trips at `settings.latency_size`, one row per transport (medians of the runs).
    pub latency: Vec<LatencyRow>,
    /// One-way throughput at each of `settings.throughput_sizes`, one row per transport and size.
    pub throughput: Vec<ThroughputRow>,
    /// Round-trip p50 against message size (the latency chart).
    pub sweep_latency: Vec<SweepLatency>,
    /// Throughput against message size (the throughput chart).
    pub sweep_throughput: Vec<SweepThroughput>,
    /// The targets, each with its value and whether it is met.
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Online CPUs.
    pub cpus_online: usize,
    /// `uname -r`.
    pub kernel: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Interleaved runs of each headline figure; tables report the median.
    pub runs: usize,
    /// Runs of each sweep point.
    pub sweep_runs: usize,
    /// CPUs of the two processes (parent, child); empty: not pinned.
    pub cpus: Vec<usize>,
    /// Time budget of one headline latency / throughput measurement, milliseconds.
    pub budget_ms: u64,
    /// Time budget of one sweep point, milliseconds.
    pub sweep_budget_ms: u64,
    /// Message size of the latency table.
    pub latency_size: usize,
    /// Message sizes of the throughput table.
    pub throughput_sizes: Vec<usize>,
    /// Message sizes of the sweep.
    pub sweep_sizes: Vec<usize>,
}

/// The machine's limits, measured in the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// One cache line bounced between the two processes (spin on both sides).
    pub cache_line_rtt: Summary,
    /// A raw futex ping-pong between the two processes (sleep in the kernel on both sides).
    pub futex_rtt: Summary,
    /// Single-process memcpy bandwidth by copy size.
    pub memcpy: Vec<MemcpyPoint>,
    /// The round-trip limit by message size: a raw two-process ping-pong of an N-byte buffer
    /// plus a flag in shared memory (no ring), with the same copies a ring's round trip makes.
    #[serde(default)]
    pub raw_rtt: Vec<RawRttPoint>,
    /// The throughput limit by message size: a raw two-process stream of N-byte records
    /// through a fixed-record ring (cross-core copy bandwidth).
    #[serde(default)]
    pub raw_stream: Vec<RawStreamPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RawRttPoint {
    pub size: usize,
    pub rtt: Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RawStreamPoint {
    pub size: usize,
    pub msgs_per_s: f64,
    pub bytes_per_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemcpyPoint {
    pub size: usize,
    pub bytes_per_s: f64,
}

/// Which limit a round trip is held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyLimit {
    /// Busy-polling transports: the cache-line round trip.
    CacheLine,
    /// Transports whose receiver sleeps: the raw futex round trip.
    Futex,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyRow {
    /// `shm spsc spin`, `unix stream`, `iceoryx2 spin`…
    pub transport: String,
    /// The endpoint URL given (made unique per run by the benchmark).
    pub url: String,
    pub size: usize,
    /// Medians across runs of each percentile, nanoseconds. `None`: the transport does not
    /// carry messages of this size.
    pub rtt: Option<Summary>,
    pub limit: LatencyLimit,
    /// p50 / the limit's p50 (1.0 = at the limit; lower is impossible in principle).
    pub ratio_to_limit: Option<f64>,
    /// p50 / the Unix stream socket's p50 (below 1: faster).
    pub ratio_to_unix: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputRow {
    pub transport: String,
    pub url: String,
    pub size: usize,
    /// The median run (by messages per second). `None`: size not carried.
    pub rate: Option<Rate>,
    /// bytes/s / memcpy bytes/s at the same size.
    pub ratio_to_memcpy: Option<f64>,
    /// messages/s / the Unix stream socket's messages/s at the same size (above 1: faster).
    pub ratio_to_unix: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepLatency {
    pub transport: String,
    pub size: usize,
    pub rtt: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepThroughput {
    pub transport: String,
    pub size: usize,
    pub rate: Rate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// What is asked, in words.
    pub name: String,
    /// The measured ratio.
    pub value: Option<f64>,
    /// `<=` or `>=`.
    pub op: String,
    pub threshold: f64,
    /// `None`: not measured in this run (a transport or peer missing).
    pub met: Option<bool>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

/// Is this transport busy-polling (held against the cache-line limit)?
pub fn busy_polls(transport: &str) -> bool {
    transport.contains("spin")
}

/// Latency rows with their ratios, from (transport, url, median summary) triples.
pub fn latency_rows(
    size: usize,
    measured: &[(String, String, Option<Summary>)],
    cache_line: &Summary,
    futex: &Summary,
) -> Vec<LatencyRow> {
    let unix = measured
        .iter()
        .find(|(t, _, _)| t == BASELINE)
        .and_then(|(_, _, s)| *s);
    measured
        .iter()
        .map(|(transport, url, rtt)| {
            let limit = if busy_polls(transport) {
                LatencyLimit::CacheLine
            } else {
                LatencyLimit::Futex
            };
            let lim = match limit {
                LatencyLimit::CacheLine => cache_line,
                LatencyLimit::Futex => futex,
            };
            LatencyRow {
                transport: transport.clone(),
                url: url.clone(),
                size,
                rtt: *rtt,
                limit,
                ratio_to_limit: rtt.and_then(|s| ratio(s.p50_ns as f64, lim.p50_ns as f64)),
                ratio_to_unix: rtt
                    .zip(unix)
                    .and_then(|(s, u)| ratio(s.p50_ns as f64, u.p50_ns as f64)),
            }
        })
        .collect()
}

/// Throughput rows with their ratios, from (transport, url, size, median rate).
pub fn throughput_rows(
    measured: &[(String, String, usize, Option<Rate>)],
    memcpy: &[MemcpyPoint],
) -> Vec<ThroughputRow> {
    measured
        .iter()
        .map(|(transport, url, size, rate)| {
            let unix = measured
                .iter()
                .find(|(t, _, s, _)| t == BASELINE && s == size)
                .and_then(|(_, _, _, r)| *r);
            let mc = memcpy
                .iter()
                .find(|m| m.size == *size)
                .map(|m| m.bytes_per_s);
            ThroughputRow {
                transport: transport.clone(),
                url: url.clone(),
                size: *size,
                rate: *rate,
                ratio_to_memcpy: rate.zip(mc).and_then(|(r, m)| ratio(r.bytes_per_s, m)),
                ratio_to_unix: rate
                    .zip(unix)
                    .and_then(|(r, u)| ratio(r.msgs_per_s, u.msgs_per_s)),
            }
        })
        .collect()
}

fn target(name: &str, value: Option<f64>, op: &str, threshold: f64) -> Target {
    let met = value.map(|v| {
        if op == "<=" {
            v <= threshold
        } else {
            v >= threshold
        }
    });
    Target {
        name: name.to_owned(),
        value,
        op: op.to_owned(),
        threshold,
        met,
    }
}

/// The targets, evaluated on the rows.
pub fn targets(
    latency: &[LatencyRow],
    throughput: &[ThroughputRow],
    sweep_latency: &[SweepLatency],
    limits: &Limits,
) -> Vec<Target> {
    let lat = |t: &str| {
        latency
            .iter()
            .find(|r| r.transport == t)
            .and_then(|r| r.rtt)
    };
    let tput = |t: &str, size: usize| {
        throughput
            .iter()
            .find(|r| r.transport == t && r.size == size)
            .and_then(|r| r.rate)
    };
    let spin = lat("shm spsc spin");
    let ice = latency
        .iter()
        .find(|r| r.transport.starts_with("iceoryx2"))
        .and_then(|r| r.rtt);
    let mc64k = limits
        .memcpy
        .iter()
        .find(|m| m.size == 64 << 10)
        .map(|m| m.bytes_per_s);
    let raw_rtt = |size: usize| {
        limits
            .raw_rtt
            .iter()
            .find(|p| p.size == size)
            .map(|p| p.rtt.p50_ns as f64)
    };
    let raw_stream = |size: usize| {
        limits
            .raw_stream
            .iter()
            .find(|p| p.size == size)
            .map(|p| p.bytes_per_s)
    };
    let spin_rtt_at = |size: usize| {
        sweep_latency
            .iter()
            .find(|p| p.transport == "shm spsc spin" && p.size == size)
            .map(|p| p.rtt.p50_ns as f64)
    };
    let mut same_work: Vec<Target> = [8, 64, 1 << 10, 64 << 10]
        .into_iter()
        .map(|size| {
            target(
                &format!(
                    "shm spsc spin p50 round trip / raw {} ping-pong",
                    human_size(size)
                ),
                spin_rtt_at(size)
                    .zip(raw_rtt(size))
                    .and_then(|(s, r)| ratio(s, r)),
                "<=",
                1.2,
            )
        })
        .collect();
    // The peer's row that does the same work: both copy each message in and out (`recv_into`
    // and iceoryx2's copy out), or both read it in place (the zero-copy rows).
    let peer_tput = |size: usize, zero_copy: bool| {
        throughput
            .iter()
            .find(|r| {
                r.transport.starts_with("iceoryx2")
                    && r.transport.ends_with("zero-copy read") == zero_copy
                    && r.size == size
            })
            .and_then(|r| r.rate)
    };
    for size in [64, 64 << 10] {
        same_work.push(target(
            &format!("shm spsc spin {} msgs/s / iceoryx2's", human_size(size)),
            tput("shm spsc spin", size)
                .zip(peer_tput(size, false))
                .and_then(|(s, i)| ratio(s.msgs_per_s, i.msgs_per_s)),
            ">",
            1.0,
        ));
    }
    same_work.push(target(
        "shm spsc spin 64 KiB zero-copy read msgs/s / iceoryx2's",
        tput("shm spsc spin, zero-copy read", 64 << 10)
            .zip(peer_tput(64 << 10, true))
            .and_then(|(s, i)| ratio(s.msgs_per_s, i.msgs_per_s)),
        ">",
        1.0,
    ));
    same_work.push(target(
        "shm spsc spin 64 KiB bytes/s / raw 64 KiB stream",
        tput("shm spsc spin", 64 << 10)
            .zip(raw_stream(64 << 10))
            .and_then(|(s, r)| ratio(s.bytes_per_s, r)),
        ">=",
        0.9,
    ));
    vec![
        target(
            "shm spsc busy-poll p50 round trip / cache-line limit",
            spin.and_then(|s| ratio(s.p50_ns as f64, limits.cache_line_rtt.p50_ns as f64)),
            "<=",
            1.3,
        ),
        target(
            "shm spsc busy-poll p50 round trip / iceoryx2's",
            spin.zip(ice)
                .and_then(|(s, i)| ratio(s.p50_ns as f64, i.p50_ns as f64)),
            "<",
            1.0,
        ),
        target(
            "shm spsc futex, zero spin budget (always sleeps) p50 / raw futex",
            lat("shm spsc futex, sleeps at once")
                .and_then(|s| ratio(s.p50_ns as f64, limits.futex_rtt.p50_ns as f64)),
            "<=",
            1.2,
        ),
        target(
            "shm spsc semaphore, zero spin budget p50 / raw futex",
            lat("shm spsc semaphore, sleeps at once")
                .and_then(|s| ratio(s.p50_ns as f64, limits.futex_rtt.p50_ns as f64)),
            "<=",
            1.2,
        ),
        target(
            "shm spsc spin 64 B msgs/s / unix stream's",
            tput("shm spsc spin", 64)
                .zip(tput(BASELINE, 64))
                .and_then(|(s, u)| ratio(s.msgs_per_s, u.msgs_per_s)),
            ">=",
            20.0,
        ),
        target(
            "shm spsc spin 64 KiB bytes/s / memcpy 64 KiB",
            tput("shm spsc spin", 64 << 10)
                .zip(mc64k)
                .and_then(|(s, m)| ratio(s.bytes_per_s, m)),
            ">=",
            0.7,
        ),
    ]
    .into_iter()
    .chain(same_work)
    .map(|mut t| {
        // "<" and ">" are strict.
        if t.op == "<" {
            t.met = t.value.map(|v| v < t.threshold);
        }
        if t.op == ">" {
            t.met = t.value.map(|v| v > t.threshold);
        }
        t
    })
    .collect()
}

/// `1.5 KiB`, `64 B`, `1 MiB`.
pub fn human_size(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// `12.3 GB/s`, `850 MB/s`.
pub fn human_rate(bytes_per_s: f64) -> String {
    if bytes_per_s >= 1e9 {
        format!("{:.2} GB/s", bytes_per_s / 1e9)
    } else if bytes_per_s >= 1e6 {
        format!("{:.1} MB/s", bytes_per_s / 1e6)
    } else {
        format!("{:.1} kB/s", bytes_per_s / 1e3)
    }
}

fn opt(x: Option<f64>, prec: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{v:.prec$}"))
}

/// The tables printed by `shm-bench compare`.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let l = &r.limits;
    let _ = writeln!(
        o,
        "limits (same run): cache line round trip p50 {} ns, raw futex round trip p50 {} ns, memcpy {}",
        l.cache_line_rtt.p50_ns,
        l.futex_rtt.p50_ns,
        l.memcpy
            .iter()
            .map(|m| format!("{} {}", human_size(m.size), human_rate(m.bytes_per_s)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        o,
        "\nround trip, {} messages, median of {} interleaved runs, CPUs {:?}",
        human_size(r.settings.latency_size),
        r.settings.runs,
        r.settings.cpus
    );
    let _ = writeln!(
        o,
        "{:<18} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "transport", "p50 ns", "p99 ns", "p999 ns", "p50/limit", "p50/unix"
    );
    for row in &r.latency {
        let lim = match row.limit {
            LatencyLimit::CacheLine => "line",
            LatencyLimit::Futex => "futex",
        };
        match row.rtt {
            Some(s) => {
                let _ = writeln!(
                    o,
                    "{:<18} {:>9} {:>9} {:>9} {:>10} {:>9}",
                    row.transport,
                    s.p50_ns,
                    s.p99_ns,
                    s.p999_ns,
                    format!("{} {lim}", opt(row.ratio_to_limit, 2)),
                    opt(row.ratio_to_unix, 2)
                );
            }
            None => {
                let _ = writeln!(o, "{:<18} {:>9}", row.transport, "n/a");
            }
        }
    }
    for &size in &r.settings.throughput_sizes {
        let _ = writeln!(
            o,
            "\none-way throughput, {} messages, median of {} interleaved runs",
            human_size(size),
            r.settings.runs
        );
        let _ = writeln!(
            o,
            "{:<18} {:>12} {:>12} {:>11} {:>10}",
            "transport", "msgs/s", "bytes/s", "/memcpy", "/unix"
        );
        for row in r.throughput.iter().filter(|t| t.size == size) {
            match row.rate {
                Some(rate) => {
                    let _ = writeln!(
                        o,
                        "{:<18} {:>12.0} {:>12} {:>11} {:>10}",
                        row.transport,
                        rate.msgs_per_s,
                        human_rate(rate.bytes_per_s),
                        opt(row.ratio_to_memcpy, 3),
                        opt(row.ratio_to_unix, 2)
                    );
                }
                None => {
                    let _ = writeln!(o, "{:<18} {:>12}", row.transport, "n/a (too large)");
                }
            }
        }
    }
    let _ = writeln!(o, "\ntargets");
    for t in &r.targets {
        let verdict = match t.met {
            Some(true) => "MET",
            Some(false) => "NOT MET",
            None => "not measured",
        };
        let _ = writeln!(
            o,
            "  {:<55} {:>8} (want {} {}) {verdict}",
            t.name,
            opt(t.value, 2),
            t.op,
            t.threshold
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(p50: u64) -> Summary {
        Summary {
            samples: 100,
            p50_ns: p50,
            p99_ns: p50 * 2,
            p999_ns: p50 * 3,
            max_ns: p50 * 10,
        }
    }

    fn sample() -> Report {
        let cache = s(100);
        let futex = s(4000);
        let lat = latency_rows(
            64,
            &[
                (
                    "shm spsc spin".into(),
                    "shm://a?wait=spin".into(),
                    Some(s(120)),
                ),
                (
                    "shm spsc futex".into(),
                    "shm://a?wait=futex".into(),
                    Some(s(6000)),
                ),
                ("unix stream".into(), "unix://@a".into(), Some(s(8000))),
                ("POSIX mq".into(), "mq://a".into(), None),
            ],
            &cache,
            &futex,
        );
        let memcpy = vec![
            MemcpyPoint {
                size: 64,
                bytes_per_s: 20e9,
            },
            MemcpyPoint {
                size: 65536,
                bytes_per_s: 10e9,
            },
        ];
        let tput = throughput_rows(
            &[
                (
                    "shm spsc spin".into(),
                    "shm://a".into(),
                    64,
                    Some(Rate::new(30_000_000, 64, 1.0)),
                ),
                (
                    "unix stream".into(),
                    "unix://@a".into(),
                    64,
                    Some(Rate::new(1_000_000, 64, 1.0)),
                ),
                (
                    "shm spsc spin".into(),
                    "shm://a".into(),
                    65536,
                    Some(Rate::new(50_000, 65536, 1.0)),
                ),
                ("unix stream".into(), "unix://@a".into(), 65536, None),
            ],
            &memcpy,
        );
        let limits = Limits {
            cache_line_rtt: cache,
            futex_rtt: futex,
            memcpy,
            raw_rtt: Vec::new(),
            raw_stream: vec![RawStreamPoint {
                size: 65536,
                msgs_per_s: 3e9 / 65536.0,
                bytes_per_s: 3e9,
            }],
        };
        let targets = targets(&lat, &tput, &[], &limits);
        Report {
            schema_version: SCHEMA_VERSION,
            tool: "shm-bench test".into(),
            started_unix_s: 1,
            wall_s: 2.5,
            machine: Machine {
                cpus_online: 2,
                kernel: "6.1".into(),
            },
            settings: Settings {
                runs: 3,
                sweep_runs: 1,
                cpus: vec![0, 1],
                budget_ms: 100,
                sweep_budget_ms: 30,
                latency_size: 64,
                throughput_sizes: vec![64, 65536],
                sweep_sizes: vec![8, 32],
            },
            limits,
            latency: lat,
            throughput: tput,
            sweep_latency: vec![SweepLatency {
                transport: "pipe".into(),
                size: 8,
                rtt: s(5000),
            }],
            sweep_throughput: vec![SweepThroughput {
                transport: "pipe".into(),
                size: 8,
                rate: Rate::new(10, 8, 1.0),
            }],
            targets,
        }
    }

    #[test]
    fn ratios_against_limit_and_unix() {
        let r = sample();
        let spin = &r.latency[0];
        assert_eq!(spin.limit, LatencyLimit::CacheLine);
        assert!((spin.ratio_to_limit.unwrap() - 1.2).abs() < 1e-9);
        assert!((spin.ratio_to_unix.unwrap() - 0.015).abs() < 1e-9);
        let fx = &r.latency[1];
        assert_eq!(fx.limit, LatencyLimit::Futex);
        assert!((fx.ratio_to_limit.unwrap() - 1.5).abs() < 1e-9);
        assert_eq!(r.latency[3].ratio_to_limit, None);
        let t64 = &r.throughput[0];
        assert!((t64.ratio_to_unix.unwrap() - 30.0).abs() < 1e-9);
        assert!((t64.ratio_to_memcpy.unwrap() - 30e6 * 64.0 / 20e9).abs() < 1e-12);
        // No unix figure at 64 KiB: no ratio to it.
        assert_eq!(r.throughput[2].ratio_to_unix, None);
    }

    #[test]
    fn targets_are_judged() {
        let r = sample();
        let met: Vec<Option<bool>> = r.targets.iter().map(|t| t.met).collect();
        // spin 1.2x line: met; no iceoryx2: not measured; no zero-budget futex or semaphore
        // rows: not measured; 30x unix: met; 64 KiB: 50_000 * 65536 / 10e9 = 0.33: not met;
        // no sweep, so no round trip against the raw ping-pongs; no iceoryx2 (nor zero-copy
        // rows): not measured; 64 KiB: 3.28 GB/s over a 3 GB/s raw stream: met.
        assert_eq!(
            met,
            [
                Some(true),
                None,
                None,
                None,
                Some(true),
                Some(false),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                Some(true)
            ]
        );
    }

    #[test]
    fn json_round_trip_keeps_everything() {
        let r = sample();
        let json = serde_json::to_string_pretty(&r).unwrap();
        assert!(json.contains("\"schema_version\": 1"));
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn tables_show_every_transport_and_target() {
        let text = render(&sample());
        for needle in [
            "shm spsc spin",
            "unix stream",
            "POSIX mq",
            "n/a",
            "NOT MET",
            "not measured",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        assert_eq!(human_size(65536), "64 KiB");
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(96), "96 B");
    }
}
