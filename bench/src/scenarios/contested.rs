//! Contested stock: 20 products, each ordered ten times over (random
//! quantities of 1 to 5 units, a fixed seed, shuffled across products, 64
//! orders in flight), then every invariant checked:
//!
//! - nothing stuck: every accepted order reached a final status, on the live
//!   feed and in `GET /orders/{id}`, and the two agree;
//! - no oversell: the units fulfilled per product never exceed its stock;
//! - stock arithmetic: initial stock − units fulfilled = the stock now, and
//!   each fulfilment's `stock` on the feed is the previous one minus its quantity;
//! - refunds exactly where stock ran out: every refunded order asked for more
//!   than its product had left (stock only falls here, so the stock as of its
//!   refund on the feed is at most what was left when it was decided), with
//!   the reason "insufficient stock";
//! - each change delivered once.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use domain::OrderStatus;
use tokio::sync::mpsc;
use ulid::Ulid;

use super::{bar, products, Better, Ctx, Report};
use crate::feed::{collect, Feed};
use crate::http::{Conn, Order, Product};
use crate::load::{closed_loop, Plan, Until};

/// Demand per product, as a multiple of its stock.
const OVERSUBSCRIBED: u32 = 10;
/// Order quantities are 1 to this.
const MAX_QUANTITY: u32 = 5;
/// Concurrent reads when checking every order.
const CHECK_LANES: usize = 16;

/// xorshift64*: a fixed, dependency-free sequence, so every run orders the same.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Per product, quantities until demand reaches `OVERSUBSCRIBED` × stock; shuffled.
fn plan_orders(products: usize, stock: u32) -> Vec<(usize, u32)> {
    let mut rng = Rng(0x5EED_0F57_0C4B);
    let mut orders = Vec::new();
    for product in 0..products {
        let mut demand = 0;
        while demand < OVERSUBSCRIBED * stock {
            let quantity = 1 + rng.below(u64::from(MAX_QUANTITY)) as u32;
            orders.push((product, quantity));
            demand += quantity;
        }
    }
    for i in (1..orders.len()).rev() {
        orders.swap(i, rng.below(i as u64 + 1) as usize);
    }
    orders
}

/// Broken invariants, by kind, with the first few examples.
#[derive(Default)]
struct Violations(Vec<(String, usize, Vec<String>)>);

impl Violations {
    fn add(&mut self, kind: &str, example: String) {
        match self.0.iter_mut().find(|(k, _, _)| k == kind) {
            Some((_, count, examples)) => {
                *count += 1;
                if examples.len() < 3 {
                    examples.push(example);
                }
            }
            None => self.0.push((kind.to_string(), 1, vec![example])),
        }
    }

    fn total(&self) -> usize {
        self.0.iter().map(|(_, count, _)| count).sum()
    }
}

pub async fn run(ctx: &Ctx, feed: &mut Feed) -> Result<Report> {
    let sizes = &ctx.sizes;
    let stock = sizes.contested_stock;
    let mut report = Report::new("contested");
    let products = products(ctx, "contested", sizes.contested_products, stock).await?;
    let orders = Arc::new(plan_orders(products.len(), stock));
    let planned = orders.len();
    let plan: Plan = {
        let orders = orders.clone();
        Arc::new(move |i| orders[i])
    };
    feed.discard();

    let bar = bar("contested");
    let (tx, rx) = mpsc::unbounded_channel();
    let (sent, outcome) = tokio::join!(
        closed_loop(&ctx.target, &products, sizes.contested_lanes, Until::Orders(planned), plan, tx, &bar),
        collect(feed, rx, sizes.drain, &bar)
    );
    let (sent, outcome) = (sent?, outcome?);
    bar.set_message("checking every order");
    let settled = outcome.last_terminal.map(|last| last.duration_since(sent.started).as_secs_f64());

    let mut violations = Violations::default();
    let ordered: HashMap<Ulid, (usize, u32)> =
        outcome.accepted.iter().map(|a| (a.order, (a.product, a.quantity))).collect();

    // What the API says now, for every order and product.
    let stored = fetch_orders(ctx, &outcome.accepted.iter().map(|a| a.order).collect::<Vec<_>>()).await?;
    let mut conn = Conn::open(&ctx.target).await?;
    let mut stock_now = Vec::with_capacity(products.len());
    for product in &products {
        let now: Product = conn.get_json(&format!("/product/{}", product.id)).await?;
        stock_now.push(now.quantity);
    }
    bar.finish_and_clear();

    for order in &stored {
        let id = Ulid::from_string(&order.id).context("order id")?;
        let feed_status = outcome.terminal.get(&id).map(|(status, _)| *status);
        if !order.status.is_terminal() {
            violations.add("order not final", format!("{} is {}", order.id, order.status));
        } else if feed_status.is_some_and(|s| s != order.status) {
            violations
                .add("feed and API disagree", format!("{}: feed {:?}, API {}", order.id, feed_status, order.status));
        }
        if order.status == OrderStatus::Refunded
            && order.refund_reason.as_deref() != Some(domain::events::refund_reason::INSUFFICIENT_STOCK)
        {
            violations.add("refund for another reason", format!("{}: {:?}", order.id, order.refund_reason));
        }
        if ordered.get(&id).map(|(_, q)| *q) != Some(order.quantity) {
            violations.add("quantity changed", format!("{}: {}", order.id, order.quantity));
        }
    }
    for id in &outcome.stuck {
        violations.add("order not final on the feed", id.to_string());
    }

    // Walk each product's changes in feed order (its partition's stream order).
    let mut running: Vec<u32> = vec![stock; products.len()];
    let mut fulfilled_units = vec![0u64; products.len()];
    let mut refunds = vec![0usize; products.len()];
    let (mut fulfilled, mut refunded) = (0usize, 0usize);
    for change in &outcome.changes {
        let Some(&(product, quantity)) = ordered.get(&change.order) else { continue };
        match change.status {
            OrderStatus::Fulfilled => {
                fulfilled += 1;
                fulfilled_units[product] += u64::from(quantity);
                let expected = running[product].checked_sub(quantity);
                match (expected, change.stock) {
                    (Some(expected), Some(left)) if expected == left => running[product] = left,
                    (expected, left) => {
                        violations.add(
                            "stock chain broken",
                            format!(
                                "{}: {} − {quantity} should leave {expected:?}, the feed says {left:?}",
                                change.order, running[product]
                            ),
                        );
                        running[product] = left.unwrap_or(running[product]);
                    }
                }
            }
            OrderStatus::Refunded => {
                refunded += 1;
                refunds[product] += 1;
                if quantity <= running[product] {
                    violations.add(
                        "refunded though stock sufficed",
                        format!("{} asked {quantity} with {} left", change.order, running[product]),
                    );
                }
                if change.reason.as_deref() != Some(domain::events::refund_reason::INSUFFICIENT_STOCK) {
                    violations.add("refund for another reason", format!("{}: {:?}", change.order, change.reason));
                }
            }
            _ => {}
        }
    }
    for (i, product) in products.iter().enumerate() {
        if fulfilled_units[i] > u64::from(stock) {
            violations.add("oversold", format!("{}: {} of {stock} units fulfilled", product.id, fulfilled_units[i]));
        }
        if u64::from(stock) != fulfilled_units[i] + u64::from(stock_now[i]) {
            violations.add(
                "stock arithmetic",
                format!("{}: {stock} − {} fulfilled ≠ {} now", product.id, fulfilled_units[i], stock_now[i]),
            );
        }
        if refunds[i] == 0 && outcome.stuck.is_empty() {
            violations
                .add("stock never ran out", format!("{} has {} left, nothing refunded", product.id, stock_now[i]));
        }
    }

    report.figure("orders", "orders", Some(outcome.accepted.len() as f64), "orders", Better::Neither);
    report.figure("fulfilled", "fulfilled", Some(fulfilled as f64), "orders", Better::Neither);
    report.figure("refunded", "refunded", Some(refunded as f64), "orders", Better::Neither);
    report.figure("violations", "invariant violations", Some(violations.total() as f64), "", Better::Lower);
    report.figure("settled_s", "first POST → last final", settled, "s", Better::Lower);
    report.detail("products", products.len());
    report.detail("stock_per_product", stock);
    report.detail("units_demanded", orders.iter().map(|(_, q)| u64::from(*q)).sum::<u64>());
    report.detail("units_fulfilled", fulfilled_units.iter().sum::<u64>());
    report.detail("stock_left", stock_now.iter().map(|&s| u64::from(s)).sum::<u64>());
    let checks = [
        "every order final on the feed and in the API, and they agree",
        "no product oversold",
        "initial stock − fulfilled = stock now, and the feed's stock after each fulfilment",
        "every refunded order asked for more than was left; reason \"insufficient stock\"",
        "every product ran out",
        "each change delivered once",
    ];
    report.detail("checks", checks);
    report.detail(
        "violations",
        violations.0.iter().map(|(kind, count, examples)| (kind.clone(), (count, examples))).collect::<HashMap<_, _>>(),
    );
    for (kind, count, examples) in &violations.0 {
        report.failures.push(format!("contested: {kind}: {count} (e.g. {})", examples.join("; ")));
    }
    report.failures.extend(sent.failures("contested"));
    report.failures.extend(outcome.failures("contested"));
    Ok(report)
}

/// `GET /orders/{id}` for every order, a few connections at a time.
async fn fetch_orders(ctx: &Ctx, ids: &[Ulid]) -> Result<Vec<Order>> {
    let chunk = ids.len().div_ceil(CHECK_LANES).max(1);
    let reads = ids.chunks(chunk).map(|ids| async move {
        let mut conn = Conn::open(&ctx.target).await?;
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            orders.push(conn.get_json::<Order>(&format!("/orders/{id}")).await?);
        }
        anyhow::Ok(orders)
    });
    Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_fixed_and_oversubscribes_every_product_tenfold() {
        let orders = plan_orders(20, 100);
        assert_eq!(orders, plan_orders(20, 100), "same seed, same orders");
        for product in 0..20 {
            let demand: u32 = orders.iter().filter(|(p, _)| *p == product).map(|(_, q)| q).sum();
            assert!((1000..1000 + MAX_QUANTITY).contains(&demand), "{product}: {demand}");
        }
        assert!(orders.iter().all(|(_, q)| (1..=MAX_QUANTITY).contains(q)));
        assert!(orders[..20].iter().any(|(p, _)| *p != orders[0].0), "shuffled across products");
    }
}
