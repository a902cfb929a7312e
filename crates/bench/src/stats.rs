//! Sample statistics: nearest-rank percentiles and the summary every latency figure is reported
//! as (milliseconds, `n`, min, mean, p50, p95, p99, max).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The nearest-rank percentile `p` (0 < p ≤ 100) of `sorted` (ascending): the smallest sample
/// such that at least `p` % of the samples are at or below it. No interpolation, so every figure
/// is a latency that was actually observed. `None` for no samples or a `p` outside (0, 100].
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let n = sorted.len();
    // rank = ceil(p/100 · n), 1-based; the float is small and positive, so the cast is exact.
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarises durations; `None` when there are none.
    pub fn of_durations(samples: &[Duration]) -> Option<Self> {
        let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        Self::of_millis(&ms)
    }

    /// Summarises samples in milliseconds; `None` when there are none (or one is not finite).
    pub fn of_millis(samples: &[f64]) -> Option<Self> {
        if samples.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        Some(Self {
            n,
            min: *sorted.first()?,
            mean: sorted.iter().sum::<f64>() / n as f64,
            p50: percentile(&sorted, 50.0)?,
            p95: percentile(&sorted, 95.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: *sorted.last()?,
        })
    }
}

/// The arithmetic mean of counts (0 for none).
pub fn mean_u64(values: &[u64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<u64>() as f64 / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_match_the_textbook_example() {
        // The classic example: 15, 20, 35, 40, 50.
        let v = [15.0, 20.0, 35.0, 40.0, 50.0];
        assert_eq!(percentile(&v, 5.0), Some(15.0));
        assert_eq!(percentile(&v, 30.0), Some(20.0));
        assert_eq!(percentile(&v, 40.0), Some(20.0));
        assert_eq!(percentile(&v, 50.0), Some(35.0));
        assert_eq!(percentile(&v, 100.0), Some(50.0));
    }

    #[test]
    fn p99_of_a_hundred_samples_is_the_second_largest() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 50.0), Some(50.0));
    }

    #[test]
    fn percentiles_of_nothing_or_out_of_range_are_none() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0], 0.0), None);
        assert_eq!(percentile(&[1.0], 100.5), None);
        assert_eq!(percentile(&[1.0], f64::NAN), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
    }

    #[test]
    fn summaries_sort_their_input_and_convert_durations_to_milliseconds() {
        let s = Summary::of_durations(&[
            Duration::from_millis(30),
            Duration::from_millis(10),
            Duration::from_millis(20),
        ])
        .expect("summary");
        assert_eq!((s.n, s.min, s.p50, s.max), (3, 10.0, 20.0, 30.0));
        assert!((s.mean - 20.0).abs() < 1e-9);
        assert_eq!(s.p99, 30.0);
        assert!(Summary::of_millis(&[]).is_none());
        assert!(Summary::of_millis(&[1.0, f64::INFINITY]).is_none());
    }

    #[test]
    fn means_of_counts() {
        assert_eq!(mean_u64(&[]), 0.0);
        assert_eq!(mean_u64(&[12, 13]), 12.5);
    }
}
