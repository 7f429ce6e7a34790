//! Latency summaries from an HDR histogram.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles of round-trip times, in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize)]
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
