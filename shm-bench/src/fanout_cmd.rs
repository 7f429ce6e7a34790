//! The `fanout` command: every source × reader count × size, throughput and round trip, runs
//! interleaved (every case once, then every case again…), medians, the ratios the broadcast
//! issue's targets name, and a note on the 2-core oversubscription.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::fanout::{self, Setup, Source, Spread};
use crate::fanout_shm::ShmSpsc;
use crate::report::human_size;
use crate::stats::{median_f64, median_summary, Summary};

/// A source the command can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Kind {
    Spsc,
    Broadcast,
    Iceoryx2,
    Shaq,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, String> {
        Ok(match s {
            "spsc" => Kind::Spsc,
            "broadcast" => Kind::Broadcast,
            "iceoryx2" => Kind::Iceoryx2,
            "shaq" => Kind::Shaq,
            _ => {
                return Err(format!(
                    "--ring {s}: expected spsc, broadcast, iceoryx2 or shaq"
                ))
            }
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Spsc => "shmring spsc",
            Kind::Broadcast => "shmring broadcast",
            Kind::Iceoryx2 => "iceoryx2 pub/sub",
            Kind::Shaq => "shaq broadcast",
        }
    }
}

/// What a run does with a source.
#[derive(Debug, Clone, Copy)]
enum What {
    Throughput(Duration),
    RoundTrip(Duration),
}

enum Outcome {
    Rate(Spread),
    Rtt(Summary),
}

/// Runs `S` once, or `None` if it cannot take `s.readers`.
fn one<S: Source>(what: What, s: &Setup, cpus: &[usize]) -> Option<Result<Outcome, String>> {
    if s.readers > S::MAX_READERS {
        return None;
    }
    Some(match what {
        What::Throughput(b) => fanout::throughput::<S>(s, b, cpus).map(Outcome::Rate),
        What::RoundTrip(b) => fanout::round_trip::<S>(s, b, cpus).map(Outcome::Rtt),
    })
}

/// Runs `kind` once, or `None` where it does not apply (SPSC beyond one reader, a peer not in
/// this build, a size shaq's items are not instantiated for).
fn run_kind(kind: Kind, what: What, s: &Setup, cpus: &[usize]) -> Option<Result<Outcome, String>> {
    match kind {
        Kind::Spsc => one::<ShmSpsc>(what, s, cpus),
        Kind::Broadcast => broadcast(what, s, cpus),
        Kind::Iceoryx2 => iceoryx2(what, s, cpus),
        Kind::Shaq => shaq(what, s, cpus),
    }
}

fn broadcast(what: What, s: &Setup, cpus: &[usize]) -> Option<Result<Outcome, String>> {
    one::<crate::fanout_shm::ShmBroadcast>(what, s, cpus)
}

#[cfg(feature = "peers")]
fn iceoryx2(what: What, s: &Setup, cpus: &[usize]) -> Option<Result<Outcome, String>> {
    one::<crate::fanout_peers::Iceoryx2>(what, s, cpus)
}

#[cfg(not(feature = "peers"))]
fn iceoryx2(_: What, _: &Setup, _: &[usize]) -> Option<Result<Outcome, String>> {
    None
}

#[cfg(feature = "peers")]
fn shaq(what: What, s: &Setup, cpus: &[usize]) -> Option<Result<Outcome, String>> {
    use crate::fanout_peers::ShaqBroadcast as Q;
    match s.size {
        64 => one::<Q<64>>(what, s, cpus),
        256 => one::<Q<256>>(what, s, cpus),
        1024 => one::<Q<1024>>(what, s, cpus),
        4096 => one::<Q<4096>>(what, s, cpus),
        _ => None,
    }
}

#[cfg(not(feature = "peers"))]
fn shaq(_: What, _: &Setup, _: &[usize]) -> Option<Result<Outcome, String>> {
    None
}

pub struct Options {
    pub kinds: Vec<Kind>,
    pub readers: Vec<usize>,
    pub sizes: Vec<usize>,
    pub runs: usize,
    pub budget: Duration,
    pub rtt_budget: Duration,
    pub ring_bytes: usize,
    pub cpus: Vec<usize>,
    pub spins: u64,
    pub json: bool,
}

/// One row of the table: medians over the runs of one (size, readers, source).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub size: usize,
    pub readers: usize,
    pub source: &'static str,
    pub runs_ok: usize,
    pub runs_failed: usize,
    pub aggregate_msgs_per_s: Option<f64>,
    pub per_reader_msgs_per_s: Option<f64>,
    pub slowest_reader_msgs_per_s: Option<f64>,
    pub rtt: Option<Summary>,
    pub failures: Vec<String>,
    /// Every run's figures, by round: the ratios between sources are medians of per-round
    /// ratios (this VM's rates shift between modes from run to run, 2-3x apart).
    pub rounds: Vec<RoundPoint>,
}

/// One run of a row: its round, aggregate throughput and round-trip p50 (either may be
/// missing when that run failed).
#[derive(Debug, Clone, Serialize)]
pub struct RoundPoint {
    pub round: usize,
    pub aggregate_msgs_per_s: Option<f64>,
    pub rtt_p50_ns: Option<u64>,
}

type Key = (usize, usize, Kind);

pub fn command(o: &Options) {
    fanout::set_spins(o.spins);
    let mut rates: BTreeMap<Key, Vec<Spread>> = BTreeMap::new();
    let mut rtts: BTreeMap<Key, Vec<Summary>> = BTreeMap::new();
    let mut rounds: BTreeMap<Key, BTreeMap<usize, RoundPoint>> = BTreeMap::new();
    let mut failures: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    let mut n = 0u64;
    for run in 0..o.runs.max(1) {
        for &size in &o.sizes {
            for &readers in &o.readers {
                // The sources of one case run back to back, starting one further along each
                // round, so that no source always runs first (or right after another).
                for k in 0..o.kinds.len() {
                    let kind = o.kinds[(run + k) % o.kinds.len()];
                    for what in [What::Throughput(o.budget), What::RoundTrip(o.rtt_budget)] {
                        n += 1;
                        let s = Setup {
                            tag: format!("{}-{n}", std::process::id()),
                            size,
                            readers,
                            ring_bytes: o.ring_bytes,
                        };
                        let key = (size, readers, kind);
                        match run_kind(kind, what, &s, &o.cpus) {
                            None => {}
                            Some(Ok(Outcome::Rate(r))) => {
                                rounds
                                    .entry(key)
                                    .or_default()
                                    .entry(run)
                                    .or_insert_with(|| RoundPoint::new(run))
                                    .aggregate_msgs_per_s = Some(r.aggregate_per_s);
                                rates.entry(key).or_default().push(r)
                            }
                            Some(Ok(Outcome::Rtt(r))) => {
                                rounds
                                    .entry(key)
                                    .or_default()
                                    .entry(run)
                                    .or_insert_with(|| RoundPoint::new(run))
                                    .rtt_p50_ns = Some(r.p50_ns);
                                rtts.entry(key).or_default().push(r)
                            }
                            Some(Err(e)) => {
                                eprintln!(
                                    "run {run}: {} {} x{readers}: {e}",
                                    kind.label(),
                                    human_size(size)
                                );
                                failures.entry(key).or_default().push(e);
                            }
                        }
                    }
                }
            }
        }
        eprintln!("round {} of {} done", run + 1, o.runs.max(1));
    }
    let mut rows = Vec::new();
    for &size in &o.sizes {
        for &readers in &o.readers {
            for &kind in &o.kinds {
                let key = (size, readers, kind);
                let rs = rates.get(&key).cloned().unwrap_or_default();
                let ts = rtts.get(&key).cloned().unwrap_or_default();
                let fails = failures.get(&key).cloned().unwrap_or_default();
                if rs.is_empty() && ts.is_empty() && fails.is_empty() {
                    continue;
                }
                let med = |f: fn(&Spread) -> f64| {
                    (!rs.is_empty()).then(|| median_f64(rs.iter().map(f).collect()))
                };
                rows.push(Row {
                    size,
                    readers,
                    source: kind.label(),
                    runs_ok: rs.len(),
                    runs_failed: fails.len(),
                    aggregate_msgs_per_s: med(|r| r.aggregate_per_s),
                    per_reader_msgs_per_s: med(|r| r.per_reader_per_s),
                    slowest_reader_msgs_per_s: med(|r| r.slowest_reader_per_s),
                    rtt: (!ts.is_empty()).then(|| median_summary(&ts)),
                    failures: fails,
                    rounds: rounds
                        .get(&key)
                        .map(|r| r.values().cloned().collect())
                        .unwrap_or_default(),
                });
            }
        }
    }
    if o.json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return;
    }
    print!("{}", render(o, &rows));
}

fn find(rows: &[Row], size: usize, readers: usize, kind: Kind) -> Option<&Row> {
    rows.iter()
        .find(|r| r.size == size && r.readers == readers && r.source == kind.label())
}

fn m(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.2}", v / 1e6))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

impl RoundPoint {
    fn new(round: usize) -> Self {
        RoundPoint {
            round,
            aggregate_msgs_per_s: None,
            rtt_p50_ns: None,
        }
    }
}

/// The median over the rounds in which both rows have a figure of `a`'s over `b`'s.
fn round_ratio(a: &Row, b: &Row, f: fn(&RoundPoint) -> Option<f64>) -> Option<f64> {
    let xs: Vec<f64> = a
        .rounds
        .iter()
        .filter_map(|p| {
            let q = b.rounds.iter().find(|q| q.round == p.round)?;
            Some(f(p)? / f(q)?)
        })
        .collect();
    (!xs.is_empty()).then(|| median_f64(xs))
}

fn fmt_ratio(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.2}x"))
}

pub fn render(o: &Options, rows: &[Row]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fanout: 1 writer, N reader processes, every reader checks every message (lossless); \
         medians of {} interleaved runs, {} ms throughput / {} ms round trip each, ring {}, \
         CPUs {:?} (writer on the first, readers round robin from the second)",
        o.runs.max(1),
        o.budget.as_millis(),
        o.rtt_budget.as_millis(),
        human_size(o.ring_bytes),
        o.cpus
    );
    let _ = writeln!(
        out,
        "{:<7} {:>3} {:<18} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>5}",
        "size",
        "N",
        "source",
        "aggr M/s",
        "each M/s",
        "slowest",
        "each/N=1",
        "rtt p50",
        "rtt p99",
        "fail"
    );
    for r in rows {
        let kind = o
            .kinds
            .iter()
            .copied()
            .find(|k| k.label() == r.source)
            .expect("a kind of the run");
        let one = find(rows, r.size, 1, kind).and_then(|x| x.per_reader_msgs_per_s);
        let _ = writeln!(
            out,
            "{:<7} {:>3} {:<18} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>5}",
            human_size(r.size),
            r.readers,
            r.source,
            m(r.aggregate_msgs_per_s),
            m(r.per_reader_msgs_per_s),
            m(r.slowest_reader_msgs_per_s),
            fmt_ratio(ratio(r.per_reader_msgs_per_s, one)),
            r.rtt.map_or("-".into(), |s| format!("{} ns", s.p50_ns)),
            r.rtt.map_or("-".into(), |s| format!("{} ns", s.p99_ns)),
            r.runs_failed
        );
    }
    let _ = writeln!(
        out,
        "\nratios (medians of the per-round ratios of the same run):"
    );
    for &size in &o.sizes {
        for &readers in &o.readers {
            let b = find(rows, size, readers, Kind::Broadcast);
            let line = |label: &str, other: Option<&Row>| -> Option<String> {
                let (b, x) = (b?, other?);
                Some(format!(
                    "  {} x{readers}: broadcast / {label}: throughput {} (aggregate), round trip p50 {}",
                    human_size(size),
                    fmt_ratio(round_ratio(b, x, |p| p.aggregate_msgs_per_s)),
                    fmt_ratio(round_ratio(b, x, |p| p.rtt_p50_ns.map(|n| n as f64))),
                ))
            };
            for (label, k) in [
                ("spsc", Kind::Spsc),
                ("iceoryx2", Kind::Iceoryx2),
                ("shaq", Kind::Shaq),
            ] {
                if let Some(l) = line(label, find(rows, size, readers, k)) {
                    let _ = writeln!(out, "{l}");
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "targets: 1 reader throughput >= 0.8x spsc, round trip <= 1.2x spsc's, ahead of \
         iceoryx2 and shaq in both (ratios > 1.00x in throughput, < 1.00x in round trip)"
    );
    if o.cpus.len() < 4 && o.readers.iter().any(|&n| n + 1 > o.cpus.len().max(1)) {
        let _ = writeln!(
            out,
            "note: {} CPUs for 1 writer + N readers: from N = {} on, processes share cores; a \
             reader with nothing to read yields its core (spin {} polls, then sched_yield), so \
             per-reader rates there measure the scheduler's hand-offs as much as the ring; the \
             'each/N=1' column shows it",
            o.cpus.len(),
            o.cpus.len().max(1),
            o.spins
        );
    }
    out
}
