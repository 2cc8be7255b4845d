//! Latency: an open loop at 2,000 orders/s for 10 s. Each order is sent when
//! it is due, whatever became of the earlier ones, and timed from when it
//! was due (so time spent queued behind a slow server counts, as it would for
//! a customer) until its final status arrives on the live feed.

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::mpsc;

use super::{bar, ms, products, Better, Ctx, Report};
use crate::feed::{collect, Feed};
use crate::load::{open_loop, Plan, Schedule};
use crate::stats::Samples;

const PRODUCTS: usize = 16;
/// Orders in flight at most; past that the generator falls behind its
/// schedule (which the latencies, taken from the schedule, include).
const MAX_IN_FLIGHT: usize = 1024;

pub async fn run(ctx: &Ctx, feed: &mut Feed) -> Result<Report> {
    let sizes = &ctx.sizes;
    let mut report = Report::new("latency");
    let products = products(ctx, "latency", PRODUCTS, domain::quantity::MAX_STOCK).await?;
    let count = products.len();
    let plan: Plan = Arc::new(move |i| (i % count, 1));
    feed.discard();

    let schedule = Schedule { rate: sizes.latency_rate, duration: sizes.latency_time, max_in_flight: MAX_IN_FLIGHT };
    let bar = bar("latency");
    let cpu_before = ctx.observer.cpu().await;
    let (tx, rx) = mpsc::unbounded_channel();
    let (sent, outcome) =
        tokio::join!(open_loop(&ctx.target, &products, schedule, plan, tx, &bar), collect(feed, rx, sizes.drain, &bar));
    let (sent, outcome) = (sent?, outcome?);
    let cpu = cpu_before.until(&ctx.observer.cpu().await);
    bar.finish_and_clear();

    let mut post = Samples::with_capacity(outcome.accepted.len());
    let mut end_to_end = Samples::with_capacity(outcome.accepted.len());
    for order in &outcome.accepted {
        post.push(order.answered.saturating_duration_since(order.sent));
        if let Some((_, at)) = outcome.terminal.get(&order.order) {
            end_to_end.push(at.saturating_duration_since(order.sent));
        }
    }
    let (post, total) = (post.summary(), end_to_end.summary());
    let sending = sent.finished.duration_since(sent.started).as_secs_f64();
    report.figure("final_p50_ms", "POST → final p50", total.map(|s| s.p50_ms), "ms", Better::Lower);
    report.figure("final_p99_ms", "POST → final p99", total.map(|s| s.p99_ms), "ms", Better::Lower);
    report.figure("final_max_ms", "POST → final max", total.map(|s| s.max_ms), "ms", Better::Lower);
    report.figure("post_p50_ms", "POST p50", post.map(|s| s.p50_ms), "ms", Better::Lower);
    report.figure("post_p99_ms", "POST p99", post.map(|s| s.p99_ms), "ms", Better::Lower);
    report.figure(
        "achieved_per_s",
        "orders sent",
        Some(sent.sent as f64 / sizes.latency_time.as_secs_f64()),
        "orders/s",
        Better::Neither,
    );
    report.figure("generator_lag_ms", "generator's worst lag", Some(ms(sent.max_lag)), "ms", Better::Lower);
    report.cpu_figures(&cpu, outcome.terminal.len());
    report.detail("rate_per_s", sizes.latency_rate);
    report.detail("orders_scheduled", sent.sent);
    report.detail("orders_accepted", outcome.accepted.len());
    report.detail("orders_final", outcome.terminal.len());
    report.detail("last_answer_after_s", sending);
    report.detail("post_to_final", total);
    report.detail("post_latency", post);
    report.failures.extend(sent.failures("latency"));
    report.failures.extend(outcome.failures("latency"));
    let title = format!(
        "POST → final status, open loop at {} orders/s for {} s ({} orders)",
        sizes.latency_rate,
        sizes.latency_time.as_secs_f64(),
        end_to_end.len()
    );
    report.histogram = Some((title, end_to_end));
    Ok(report)
}
