//! The checker: reads the history of a run and what Redis holds at its end,
//! and says what went wrong.
//!
//! Violations (each must be 0 with `REDIS_MIN_REPLICAS=1`):
//! - an order acknowledged (201) that Redis does not hold: lost;
//! - an `Idempotency-Key` whose answers named two orders, or an order saved
//!   for a key whose every answer was "503 not saved";
//! - an acknowledged order not final once the shop had time to finish;
//! - an order final twice (fulfilled and refunded), or a change after final;
//! - a product whose stock does not add up: initial + restocked − fulfilled
//!   = final (restocks whose answer was lost count as either);
//! - a refund for short stock that the stock just before it covered;
//! - a browser that missed a change it was never told to reload for, saw
//!   one twice, or saw an order's changes out of order.
//!
//! And what the clients lived through: their errors, how soon after the
//! fault an order of the faulted partition was acknowledged again, and the
//! p99 of POST → final of the orders due during the fault.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Result;
use domain::{Order, OrderStatus};
use redis::AsyncCommands;
use serde::Serialize;

use crate::workload::{History, Restocked};

/// When a fault was made and healed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Window {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The verdict on one run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Verdict {
    pub orders_sent: usize,
    pub acknowledged: usize,
    pub given_up: usize,
    pub lost: Vec<String>,
    pub duplicates: Vec<String>,
    pub saved_after_not_saved: Vec<String>,
    pub not_final: Vec<String>,
    pub final_twice: Vec<String>,
    pub stock: Vec<String>,
    pub coverable_refunds: Vec<String>,
    /// Orders that became final more than `CLAIM_IDLE_MS` after they were
    /// saved: they waited for a reclaim, where a consumer should have
    /// retried them within seconds.
    pub stalled: Vec<String>,
    pub browsers_missed: usize,
    pub browsers_twice: usize,
    pub browsers_out_of_order: usize,
    /// Orders a browser saw reach two different final statuses.
    pub browsers_final_twice: usize,
    pub browsers_reloads: usize,
    /// Orders saved whose client never got a 201 (it gave up): allowed.
    pub saved_unacknowledged: usize,
    /// Answers the clients got, by kind.
    pub errors: BTreeMap<String, usize>,
    /// Errors during the fault window, by kind.
    pub errors_during_fault: BTreeMap<String, usize>,
    /// From the fault to the first 201 of an order of the faulted partition sent after it.
    pub first_success_after_fault_ms: Option<u64>,
    /// POST (due) → final of the orders due during the fault, p99.
    pub fault_final_p99_ms: Option<u64>,
    /// The same for every order of the run.
    pub final_p99_ms: Option<u64>,
}

impl Verdict {
    /// The violations of what Stockflow promises about orders and stock:
    /// what `scripts/faults` fails on. The rest of [`Verdict::violations`]
    /// is judged from what browsers saw, which after a failover may include
    /// changes of a master that were then lost (the feed relays a change
    /// before replicas have it): reported, not failed on.
    pub fn broken_promises(&self) -> usize {
        self.lost.len()
            + self.duplicates.len()
            + self.saved_after_not_saved.len()
            + self.not_final.len()
            + self.final_twice.len()
            + self.stock.len()
            + self.stalled.len()
            + self.browsers_missed
            + self.browsers_final_twice
    }

    /// The number of violations: the broken promises and what is only reported.
    pub fn violations(&self) -> usize {
        self.broken_promises() + self.coverable_refunds.len() + self.browsers_twice + self.browsers_out_of_order
    }
}

/// How far apart the stamps of two batches of one product may be from the
/// order their scripts ran in: workers stamp a batch before running it.
const STAMP_SKEW_MS: u64 = 1000;

/// The least stock a refund stamped `at` may have met, by what is `known`
/// (stamp → stock): the last known before the window, or any stamped within
/// `STAMP_SKEW_MS` before that one (which may have run after it), and any
/// from twice `STAMP_SKEW_MS` before `at` to `STAMP_SKEW_MS` after. An
/// order's steps are stamped by the worker before its script runs, and two
/// workers' batches of one product run in either order: a refund stamped
/// before a fulfilment may have come after it, and of two fulfilments the
/// one stamped last may have run first (both seen in the lab, when both
/// workers catch up at once after a fault).
fn lowest_stock_around(known: &BTreeMap<u64, u32>, at: u64) -> Option<u32> {
    let window_start = at.saturating_sub(2 * STAMP_SKEW_MS);
    let before = known
        .range(..window_start)
        .next_back()
        .and_then(|(last, _)| known.range(last.saturating_sub(STAMP_SKEW_MS)..=*last).map(|(_, stock)| *stock).min());
    let around = known.range(window_start..=at + STAMP_SKEW_MS).map(|(_, stock)| *stock).min();
    match (before, around) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How far along its life an order is by a status the feed named (see
/// [`domain::OrderStatus::progress`]); one it does not know counts as final.
fn progress(status: &str) -> u8 {
    status.parse::<domain::OrderStatus>().map_or(2, domain::OrderStatus::progress)
}

fn p99(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    let n = values.len();
    (n > 0).then(|| values[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1])
}

/// Checks a run: `orders` and `stock` as Redis holds them at the end.
pub async fn check(
    history: &History,
    shop: &store::Shop,
    window: Window,
    faulted_partition: Option<store::Partition>,
) -> Result<Verdict> {
    let mut verdict = Verdict { orders_sent: history.orders.len(), ..Verdict::default() };
    let orders: Vec<Order> = shop.newest_orders(usize::MAX).await?;
    let by_id: HashMap<&str, &Order> = orders.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut conn = shop.connection();

    // Orders: lost, duplicated, saved though refused, unfinished.
    let mut answered: HashSet<&str> = HashSet::new();
    for record in &history.orders {
        for attempt in &record.attempts {
            if attempt.outcome != "201" {
                *verdict.errors.entry(attempt.outcome.clone()).or_default() += 1;
                if (window.start_ms..=window.end_ms).contains(&attempt.sent_ms) {
                    *verdict.errors_during_fault.entry(attempt.outcome.clone()).or_default() += 1;
                }
            }
        }
        let distinct: HashSet<&String> = record.acknowledged.iter().collect();
        if distinct.len() > 1 {
            verdict.duplicates.push(format!("{}: {distinct:?}", record.key));
        }
        match record.acknowledged.first() {
            Some(id) => {
                verdict.acknowledged += 1;
                answered.insert(id.as_str());
                match by_id.get(id.as_str()) {
                    None => verdict.lost.push(id.clone()),
                    Some(order) if !order.status.is_terminal() => verdict.not_final.push(id.clone()),
                    Some(_) => {}
                }
            }
            None => {
                verdict.given_up += 1;
                let product = &history.products[record.product].id;
                let keys = shop.layout().keys_of_id(&domain::Id::parse(product).unwrap());
                let saved: Option<String> = conn.get(keys.order_idempotency(&record.key)).await?;
                let all_not_saved =
                    !record.attempts.is_empty() && record.attempts.iter().all(|a| a.outcome == "503 not saved");
                if let Some(id) = saved.filter(|_| all_not_saved) {
                    verdict.saved_after_not_saved.push(format!("{}: {id}", record.key));
                }
            }
        }
    }

    // Final twice, or changed after final, in the order's own timeline.
    for order in &orders {
        let steps: HashSet<&str> = order.timeline.iter().map(|s| s.step.as_str()).collect();
        if steps.contains("fulfilled") && steps.contains("refunded") {
            verdict.final_twice.push(order.id.to_string());
        }
    }

    // Stock: initial + restocked − fulfilled = final.
    for (n, product) in history.products.iter().enumerate() {
        let now = match shop.product(&product.id).await {
            Ok(found) => found.quantity,
            Err(error) => {
                verdict.stock.push(format!("{}: {error}", product.id));
                continue;
            }
        };
        let fulfilled: u64 = orders
            .iter()
            .filter(|o| o.product_id == product.id && o.status == OrderStatus::Fulfilled)
            .map(|o| u64::from(o.quantity.get()))
            .sum();
        let restocks = history.restocks.iter().filter(|r| r.product == n);
        let sure: u64 = restocks
            .clone()
            .filter(|r| matches!(r.outcome, Restocked::Applied { .. }))
            .map(|r| u64::from(r.units))
            .sum();
        let maybe: u64 = restocks.filter(|r| matches!(r.outcome, Restocked::Unknown)).map(|r| u64::from(r.units)).sum();
        let low = (u64::from(product.initial) + sure).checked_sub(fulfilled);
        let high = (u64::from(product.initial) + sure + maybe).checked_sub(fulfilled);
        let fits = match (low, high) {
            (_, None) => false,
            (Some(low), Some(high)) => (low..=high).contains(&u64::from(now)),
            (None, Some(high)) => u64::from(now) <= high,
        };
        if !fits {
            verdict.stock.push(format!(
                "{}: initial {} + restocked {sure} (+ up to {maybe} unknown) − fulfilled {fulfilled} ≠ {now}",
                product.id, product.initial
            ));
        }
    }

    // Refunds for short stock that the stock just before them covered, by
    // what the browsers saw (the stock after each fulfilment) and the
    // restocks' answers.
    let mut stock_at: HashMap<&str, Vec<(u64, u32)>> = HashMap::new();
    for (n, product) in history.products.iter().enumerate() {
        let mut known = vec![(0, product.initial)];
        for restock in history.restocks.iter().filter(|r| r.product == n) {
            if let Restocked::Applied { stock } = restock.outcome {
                known.push((restock.answered_ms, stock));
            }
        }
        stock_at.insert(product.id.as_str(), known);
    }
    // When each fulfilment happened, by the order's own timeline: a browser
    // may hear of it seconds later (after a fault), when the stock has moved on.
    let fulfilled: HashMap<&str, (&str, u64)> = orders
        .iter()
        .filter_map(|o| {
            let at = o.timeline.iter().find(|s| s.step == "fulfilled")?.at;
            Some((o.id.as_str(), (o.product_id.as_str(), at)))
        })
        .collect();
    for browser in &history.browsers {
        for seen in browser.seen.iter().filter(|s| s.status == "fulfilled") {
            if let (Some(stock), Some((product, at))) = (seen.stock, fulfilled.get(seen.order_id.as_str())) {
                stock_at.entry(product).or_default().push((*at, stock));
            }
        }
    }
    // One value per millisecond: a batch fulfils several orders at one time,
    // the stock falling; what it left is the least.
    let stock_at: HashMap<&str, BTreeMap<u64, u32>> = stock_at
        .into_iter()
        .map(|(product, known)| {
            let mut by_ms: BTreeMap<u64, u32> = BTreeMap::new();
            for (at, stock) in known {
                by_ms.entry(at).and_modify(|least| *least = (*least).min(stock)).or_insert(stock);
            }
            (product, by_ms)
        })
        .collect();
    for order in orders.iter().filter(|o| o.status == OrderStatus::Refunded) {
        let short = order.refund_reason.as_deref() == Some(domain::events::refund_reason::INSUFFICIENT_STOCK);
        let Some(initiated) = order.timeline.iter().find(|s| s.step == "refund_initiated").map(|s| s.at) else {
            continue;
        };
        if !short {
            continue;
        }
        // The least stock it may have met (see `lowest_stock_around`).
        let Some(known) = stock_at.get(order.product_id.as_str()) else { continue };
        let lowest = lowest_stock_around(known, initiated);
        if let Some(stock) = lowest.filter(|stock| *stock >= order.quantity.get()) {
            verdict.coverable_refunds.push(format!(
                "{}: {} units refunded with {stock} in stock",
                order.id,
                order.quantity.get()
            ));
        }
    }

    // Browsers: every change after a browser subscribed, once, in order,
    // unless it was told to reload.
    for browser in &history.browsers {
        let Some(first) = browser.connections.iter().filter_map(|c| c.subscribed_ms).min() else { continue };
        let last = browser.connections.iter().filter_map(|c| c.closed_ms).max().unwrap_or(u64::MAX);
        let reloads: Vec<u64> = browser.connections.iter().flat_map(|c| c.reloads.iter().copied()).collect();
        verdict.browsers_reloads += reloads.len();
        let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
        let mut furthest: HashMap<&str, u8> = HashMap::new();
        let mut finals: HashMap<&str, &str> = HashMap::new();
        for change in &browser.seen {
            if progress(&change.status) == 2 {
                let first = finals.entry(change.order_id.as_str()).or_insert(change.status.as_str());
                if *first != change.status {
                    verdict.browsers_final_twice += 1;
                }
            }
            *seen.entry((change.order_id.as_str(), change.status.as_str())).or_default() += 1;
            let step = progress(&change.status);
            let before = furthest.entry(change.order_id.as_str()).or_insert(step);
            if step < *before {
                verdict.browsers_out_of_order += 1;
            }
            *before = (*before).max(step);
        }
        verdict.browsers_twice += seen.values().filter(|n| **n > 1).count();
        for order in &orders {
            for step in order.timeline.iter().filter(|s| s.step != "refund_initiated") {
                // A margin of a second at either end: the browser's clock of
                // subscribing and the change's own time are not one clock.
                let within = step.at > first + 1000 && step.at + 1000 < last;
                let forgiven = reloads.iter().any(|r| *r + 1000 >= step.at);
                if within && !forgiven && !seen.contains_key(&(order.id.as_str(), step.step.as_str())) {
                    verdict.browsers_missed += 1;
                }
            }
        }
    }

    // What the clients lived through.
    let final_at =
        |order: &Order| order.timeline.iter().find(|s| s.step == "fulfilled" || s.step == "refunded").map(|s| s.at);
    let mut all = Vec::new();
    let mut during = Vec::new();
    for record in &history.orders {
        let Some(order) = record.acknowledged.first().and_then(|id| by_id.get(id.as_str())) else { continue };
        if let Some(done) = final_at(order) {
            if done.saturating_sub(order.created_at) > crate::deployment::CLAIM_IDLE_MS {
                verdict.stalled.push(format!("{}: final {} ms after it was saved", order.id, done - order.created_at));
            }
            let took = done.saturating_sub(record.due_ms);
            all.push(took);
            if (window.start_ms..=window.end_ms).contains(&record.due_ms) {
                during.push(took);
            }
        }
    }
    verdict.final_p99_ms = p99(all);
    verdict.fault_final_p99_ms = p99(during);
    if let Some(partition) = faulted_partition {
        let partitions = shop.layout().partitions();
        verdict.first_success_after_fault_ms = history
            .orders
            .iter()
            .filter(|r| partitions.of_id(&history.products[r.product].id) == partition)
            .flat_map(|r| r.attempts.iter())
            .filter(|a| a.outcome == "201" && a.sent_ms >= window.start_ms)
            .map(|a| a.answered_ms.saturating_sub(window.start_ms))
            .min();
    }
    verdict.saved_unacknowledged = orders.iter().filter(|o| !answered.contains(o.id.as_str())).count();
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(points: &[(u64, u32)]) -> BTreeMap<u64, u32> {
        points.iter().copied().collect()
    }

    #[test]
    fn a_refund_meets_the_least_stock_of_batches_stamped_out_of_order() {
        // From a kill-master run: a batch stamped at 543 left 0 but ran after
        // the one stamped at 544, which left 2; a refund two seconds later
        // met 0, not 2.
        let stock = known(&[(0, 60), (10_543, 0), (10_544, 2)]);
        assert_eq!(lowest_stock_around(&stock, 12_710), Some(0));
        // From a pause-master run: a refund stamped just before a
        // fulfilment that left 0 ran after it.
        let stock = known(&[(0, 60), (5_000, 29), (8_513, 0)]);
        assert_eq!(lowest_stock_around(&stock, 8_505), Some(0));
    }

    #[test]
    fn a_refund_long_after_a_restock_meets_the_stock_it_left() {
        let stock = known(&[(0, 60), (1_000, 0), (9_000, 5)]);
        assert_eq!(lowest_stock_around(&stock, 20_000), Some(5));
        assert_eq!(lowest_stock_around(&stock, 500), Some(0), "the fulfilment a moment later counts");
        assert_eq!(lowest_stock_around(&BTreeMap::new(), 500), None);
    }

    #[test]
    fn p99_is_the_value_below_which_99_of_100_fall() {
        assert_eq!(p99(vec![]), None);
        assert_eq!(p99((1..=100).collect()), Some(99));
        assert_eq!(p99(vec![7]), Some(7));
    }
}
