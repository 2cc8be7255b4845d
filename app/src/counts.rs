//! The counts of orders per status, kept live: a snapshot from the server
//! ([`OrderCounts`], taken at a known time), plus every move the feed
//! reported after that time. A move the snapshot already holds (it happened
//! before the counting began: a replay after a reconnect, a change that
//! raced the page load) is not counted twice.

use std::collections::VecDeque;

use domain::OrderStatus;

use crate::api::OrderCounts;

/// One order moving between statuses, as the counts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// When, in milliseconds since the Unix epoch (the change's `at`).
    pub at: u64,
    /// Where it came from; `None` for a new order.
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
}

/// Moves older than this (behind the newest) are summed up rather than kept:
/// far older than any snapshot still on its way.
const KEEP_MS: u64 = 60_000;

/// The moves since the snapshot, in a bounded amount of memory.
#[derive(Debug, Clone, Default)]
pub struct CountLog {
    /// The snapshot (its time) that `folded` goes on top of.
    base_at: Option<u64>,
    /// The sum of the moves older than [`KEEP_MS`] that came after `base_at`.
    folded: [i64; 4],
    /// The newer moves, oldest first.
    recent: VecDeque<Move>,
}

impl CountLog {
    /// Records a move, with the time of the snapshot shown now (if any).
    pub fn record(&mut self, snapshot_at: Option<u64>, change: Move) {
        if self.base_at != snapshot_at {
            // A newer snapshot holds everything old enough to be folded.
            self.folded = [0; 4];
            self.base_at = snapshot_at;
        }
        self.recent.push_back(change);
        while self.recent.front().is_some_and(|oldest| oldest.at + KEEP_MS < change.at) {
            let Some(old) = self.recent.pop_front() else { break };
            if snapshot_at.is_some_and(|at| old.at > at) {
                add(&mut self.folded, &old);
            }
        }
    }

    /// The counts now: the snapshot's, plus the moves that came after it.
    pub fn counts(&self, snapshot: &OrderCounts) -> [u64; 4] {
        let mut counts = [0i64; 4];
        for (status, n) in &snapshot.counts {
            counts[index(*status)] += *n as i64;
        }
        if self.base_at == Some(snapshot.at) {
            for (count, folded) in counts.iter_mut().zip(self.folded) {
                *count += folded;
            }
        }
        for change in self.recent.iter().filter(|m| m.at > snapshot.at) {
            add(&mut counts, change);
        }
        counts.map(|n| n.max(0) as u64)
    }
}

/// Where `status` is in [`OrderStatus::ALL`].
pub fn index(status: OrderStatus) -> usize {
    OrderStatus::ALL.iter().position(|s| *s == status).unwrap_or_default()
}

fn add(counts: &mut [i64; 4], change: &Move) {
    if let Some(from) = change.from {
        counts[index(from)] -= 1;
    }
    counts[index(change.to)] += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    fn snapshot(at: u64, counts: [u64; 4]) -> OrderCounts {
        OrderCounts { at, counts: OrderStatus::ALL.into_iter().zip(counts).collect() }
    }

    fn moved(at: u64, from: Option<OrderStatus>, to: OrderStatus) -> Move {
        Move { at, from, to }
    }

    #[test]
    fn moves_after_the_snapshot_count_and_earlier_ones_are_in_it_already() {
        let shown = snapshot(1000, [2, 1, 5, 0]);
        let mut log = CountLog::default();
        log.record(Some(1000), moved(999, None, Pending)); // counted already
        log.record(Some(1000), moved(1001, None, Pending));
        log.record(Some(1000), moved(1002, Some(Pending), Completed));
        log.record(Some(1000), moved(1003, Some(Completed), Refunded));
        assert_eq!(log.counts(&shown), [2, 1, 5, 1]);
        // A newer snapshot holds them all.
        assert_eq!(log.counts(&snapshot(1003, [2, 1, 5, 1])), [2, 1, 5, 1]);
    }

    #[test]
    fn old_moves_are_summed_up_and_dropped_with_their_snapshot() {
        let shown = snapshot(0, [0, 0, 0, 0]);
        let mut log = CountLog::default();
        for n in 1..=1000 {
            log.record(Some(0), moved(n * 1000, None, Pending));
        }
        assert!(log.recent.len() <= 62, "{} moves kept", log.recent.len());
        assert_eq!(log.counts(&shown), [1000, 0, 0, 0]);
        // A new snapshot, taken at 1,000 s, counts them itself.
        let newer = snapshot(1_000_000, [1000, 0, 0, 0]);
        log.record(Some(1_000_000), moved(1_000_001, Some(Pending), Fulfilled));
        assert_eq!(log.counts(&newer), [999, 0, 1, 0]);
    }
}
