//! Throughput: a closed loop of 64 orders in flight for 10 s, then the drain
//! until every accepted order is final.
//!
//! - accepted/s: 201 answers per second of sending;
//! - end-to-end orders/s: orders that reached a final status per second,
//!   from the first POST to the last final change on the live feed;
//! - POST latency p50/p99 (send → 201);
//! - CPU per order of each process, over the whole window (load and drain).

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::mpsc;

use super::{bar, products, Better, Ctx, Report};
use crate::feed::{collect, Feed};
use crate::load::{closed_loop, Plan, Until};
use crate::stats::Samples;

/// Units of stock per product: the most the warehouse keeps, so nothing runs out.
const STOCK: u32 = domain::quantity::MAX_STOCK;
/// One product per partition (of the default 16), so load spreads.
const PRODUCTS: usize = 16;

pub async fn run(ctx: &Ctx, feed: &mut Feed) -> Result<Report> {
    let sizes = &ctx.sizes;
    let mut report = Report::new("throughput");
    let products = products(ctx, "throughput", PRODUCTS, STOCK).await?;
    let count = products.len();
    let plan: Plan = Arc::new(move |i| (i % count, 1));

    // Warm-up, not measured: connections, caches, the consumers' first batches.
    let warm = bar("warm-up");
    let (_, warm_outcome) =
        load_and_drain(ctx, feed, &products, Until::Elapsed(sizes.warmup), plan.clone(), &warm).await?;
    warm.finish_and_clear();
    report.failures.extend(warm_outcome.failures("throughput warm-up"));
    feed.discard();

    let bar = bar("throughput");
    let cpu_before = ctx.observer.cpu().await;
    let (sent, outcome) =
        load_and_drain(ctx, feed, &products, Until::Elapsed(sizes.throughput_time), plan, &bar).await?;
    let cpu = cpu_before.until(&ctx.observer.cpu().await);
    bar.finish_and_clear();

    let accepted = outcome.accepted.len();
    let finished = outcome.terminal.len();
    let sending = sent.finished.duration_since(sent.started).as_secs_f64();
    let end_to_end = outcome.last_terminal.map(|last| last.duration_since(sent.started).as_secs_f64());
    let mut post = Samples::with_capacity(accepted);
    for order in &outcome.accepted {
        post.push(order.answered.duration_since(order.sent));
    }
    let post = post.summary();
    report.figure("accepted_per_s", "accepted", Some(accepted as f64 / sending), "orders/s", Better::Higher);
    report.figure(
        "end_to_end_per_s",
        "end to end",
        end_to_end.map(|secs| finished as f64 / secs),
        "orders/s",
        Better::Higher,
    );
    report.figure("post_p50_ms", "POST p50", post.map(|s| s.p50_ms), "ms", Better::Lower);
    report.figure("post_p99_ms", "POST p99", post.map(|s| s.p99_ms), "ms", Better::Lower);
    report.figure(
        "drain_s",
        "drain after the last POST",
        outcome.last_terminal.map(|last| last.saturating_duration_since(sent.finished).as_secs_f64()),
        "s",
        Better::Lower,
    );
    report.cpu_figures(&cpu, finished);
    report.detail("lanes", sizes.throughput_lanes);
    report.detail("sending_s", sending);
    report.detail("orders_accepted", accepted);
    report.detail("orders_final", finished);
    report.detail("post_latency", post);
    report.detail("first_post_to_last_final_s", end_to_end);
    report.detail("warmup_orders", warm_outcome.accepted.len());
    report.failures.extend(sent.failures("throughput"));
    report.failures.extend(outcome.failures("throughput"));
    Ok(report)
}

/// The closed loop of `lanes` connections until `until`, and the drain of
/// the live feed until every accepted order is final.
async fn load_and_drain(
    ctx: &Ctx,
    feed: &mut Feed,
    products: &[crate::http::Product],
    until: Until,
    plan: Plan,
    bar: &indicatif::ProgressBar,
) -> Result<(crate::load::Sent, crate::feed::Outcome)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (sent, outcome) = tokio::join!(
        closed_loop(&ctx.target, products, ctx.sizes.throughput_lanes, until, plan, tx, bar),
        collect(feed, rx, ctx.sizes.drain, bar)
    );
    Ok((sent?, outcome?))
}
