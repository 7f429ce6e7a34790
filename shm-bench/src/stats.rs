//! Latency summaries from an HDR histogram.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Percentiles of round-trip times, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub samples: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// A histogram for 1 ns .. 10 s with 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds")
}

pub fn summarize(h: &Histogram<u64>) -> Summary {
    Summary {
        samples: h.len(),
        p50_ns: h.value_at_quantile(0.50),
        p99_ns: h.value_at_quantile(0.99),
        p999_ns: h.value_at_quantile(0.999),
        max_ns: h.max(),
    }
}

/// The median of a few numbers (each run's p50, say): the machine is noisy.
pub fn median(mut xs: Vec<u64>) -> u64 {
    xs.sort_unstable();
    xs[xs.len() / 2]
}

/// Each percentile's median across runs.
pub fn median_summary(runs: &[Summary]) -> Summary {
    Summary {
        samples: runs.iter().map(|s| s.samples).sum(),
        p50_ns: median(runs.iter().map(|s| s.p50_ns).collect()),
        p99_ns: median(runs.iter().map(|s| s.p99_ns).collect()),
        p999_ns: median(runs.iter().map(|s| s.p999_ns).collect()),
        max_ns: runs.iter().map(|s| s.max_ns).max().unwrap_or(0),
    }
}

/// The median of a few floats (NaN-free).
pub fn median_f64(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
