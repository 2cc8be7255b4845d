//! Latency samples and their percentiles.

use std::time::Duration;

use serde::Serialize;

/// Latencies in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: Vec<u64>,
    sorted: bool,
}

/// Percentiles of a set of latencies, in milliseconds (nearest rank: the
/// p99 of 200 samples is the 198th smallest).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub count: usize,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Samples {
    pub fn with_capacity(capacity: usize) -> Samples {
        Samples { values: Vec::with_capacity(capacity), sorted: true }
    }

    pub fn push(&mut self, latency: Duration) {
        self.push_us(latency.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    pub fn push_us(&mut self, micros: u64) {
        self.values.push(micros);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The samples, smallest first.
    pub fn sorted(&mut self) -> &[u64] {
        if !self.sorted {
            self.values.sort_unstable();
            self.sorted = true;
        }
        &self.values
    }

    /// The `q`-quantile (0 < q ≤ 1) by nearest rank, in microseconds.
    pub fn quantile_us(&mut self, q: f64) -> Option<u64> {
        let values = self.sorted();
        if values.is_empty() {
            return None;
        }
        let rank = (q * values.len() as f64).ceil().max(1.0) as usize;
        Some(values[rank.min(values.len()) - 1])
    }

    pub fn summary(&mut self) -> Option<Summary> {
        if self.values.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let mean = self.values.iter().map(|&v| v as f64).sum::<f64>() / self.values.len() as f64;
        let values = self.sorted();
        let (count, min, max) = (values.len(), values[0], values[values.len() - 1]);
        Some(Summary {
            count,
            min_ms: ms(min),
            mean_ms: mean / 1000.0,
            p50_ms: ms(self.quantile_us(0.50)?),
            p90_ms: ms(self.quantile_us(0.90)?),
            p99_ms: ms(self.quantile_us(0.99)?),
            max_ms: ms(max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for us in (1..=200).rev() {
            samples.push_us(us * 1000);
        }
        let summary = samples.summary().unwrap();
        assert_eq!(summary.count, 200);
        assert_eq!(summary.min_ms, 1.0);
        assert_eq!(summary.p50_ms, 100.0);
        assert_eq!(summary.p90_ms, 180.0);
        assert_eq!(summary.p99_ms, 198.0);
        assert_eq!(summary.max_ms, 200.0);
        assert_eq!(summary.mean_ms, 100.5);
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_is_none() {
        let mut samples = Samples::default();
        assert!(samples.summary().is_none());
        samples.push(Duration::from_micros(1500));
        let summary = samples.summary().unwrap();
        assert_eq!((summary.p50_ms, summary.p99_ms, summary.max_ms), (1.5, 1.5, 1.5));
    }
}
