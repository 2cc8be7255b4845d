//! Redis cost: what one order costs Redis, over its whole life (placed,
//! paid, fulfilled, relayed to the live feed). A batch of orders (closed
//! loop, 64 in flight) is placed and drained; Redis's `INFO cpu`
//! (`used_cpu_sys + used_cpu_user`) and `INFO commandstats` are read before
//! and after, and the differences divided by the orders. Commands that Lua
//! scripts run count too (Redis counts them), so `evalsha` and the commands
//! inside it both appear. The bench's own `INFO` calls are left out; the
//! consumers' and the feed's blocking reads while idle are not (their idle
//! rate is given for scale).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tokio::sync::mpsc;

use super::{bar, products, Better, Ctx, Report};
use crate::feed::{collect, Feed};
use crate::load::{closed_loop, Plan, Until};
use crate::observe::command_delta;

const PRODUCTS: usize = 16;
const LANES: usize = 64;

#[derive(Serialize)]
struct PerOrder {
    calls: f64,
    usec: f64,
}

pub async fn run(ctx: &Ctx, feed: &mut Feed) -> Result<Report> {
    let Some(redis) = &ctx.redis else {
        return Ok(Report::skipped("redis", "needs --redis-url (the Redis the app uses)"));
    };
    let sizes = &ctx.sizes;
    let mut report = Report::new("redis");
    let products = products(ctx, "redis", PRODUCTS, domain::quantity::MAX_STOCK).await?;
    let count = products.len();
    let plan: Plan = Arc::new(move |i| (i % count, 1));
    feed.discard();

    // The idle rate, for scale: blocking reads time out and come back.
    let bar = bar("redis cost");
    bar.set_message("measuring Redis at rest");
    let idle_started = Instant::now();
    let (idle_cpu, idle_stats) = (redis.cpu_seconds().await?, redis.command_stats().await?);
    tokio::time::sleep(sizes.redis_idle).await;
    let (idle_cpu_after, idle_stats_after) = (redis.cpu_seconds().await?, redis.command_stats().await?);
    let idle_s = idle_started.elapsed().as_secs_f64();
    let mut idle = command_delta(&idle_stats, &idle_stats_after);
    idle.remove("info");
    let idle_calls: u64 = idle.values().map(|s| s.calls).sum();

    let window = ctx.observer.cpu().await;
    let (cpu_before, stats_before) = (redis.cpu_seconds().await?, redis.command_stats().await?);
    let (tx, rx) = mpsc::unbounded_channel();
    let (sent, outcome) = tokio::join!(
        closed_loop(&ctx.target, &products, LANES, Until::Orders(sizes.redis_orders), plan, tx, &bar),
        collect(feed, rx, sizes.drain, &bar)
    );
    let (sent, outcome) = (sent?, outcome?);
    let (cpu_after, stats_after) = (redis.cpu_seconds().await?, redis.command_stats().await?);
    report.cpu_window(&window.until(&ctx.observer.cpu().await));
    bar.finish_and_clear();

    let orders = outcome.terminal.len().max(1) as f64;
    let mut delta = command_delta(&stats_before, &stats_after);
    delta.remove("info");
    let calls: u64 = delta.values().map(|s| s.calls).sum();
    let per_command: BTreeMap<String, PerOrder> = delta
        .iter()
        .map(|(name, stat)| {
            (name.clone(), PerOrder { calls: stat.calls as f64 / orders, usec: stat.usec as f64 / orders })
        })
        .collect();

    report.figure(
        "cpu_us_per_order",
        "Redis CPU per order",
        Some((cpu_after - cpu_before) * 1e6 / orders),
        "µs",
        Better::Lower,
    );
    report.figure("commands_per_order", "commands per order", Some(calls as f64 / orders), "", Better::Lower);
    let mut by_calls: Vec<_> = per_command.iter().collect();
    by_calls.sort_by(|a, b| b.1.calls.total_cmp(&a.1.calls).then(a.0.cmp(b.0)));
    for (name, per) in &by_calls {
        report.figure(
            &format!("calls_per_order.{name}"),
            &format!("{name} per order"),
            Some(per.calls),
            "",
            Better::Lower,
        );
    }
    report.detail("orders", outcome.terminal.len());
    report.detail("per_command", &per_command);
    report.detail("command_order", by_calls.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>());
    report.detail("idle_commands_per_s", idle_calls as f64 / idle_s);
    report.detail("idle_cpu_us_per_s", (idle_cpu_after - idle_cpu) * 1e6 / idle_s);
    report.detail("idle_commands", &idle);
    report.failures.extend(sent.failures("redis"));
    report.failures.extend(outcome.failures("redis"));
    Ok(report)
}
