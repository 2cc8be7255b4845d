//! Steady: what an order costs at ordinary load, and what partitions add to
//! it. Orders at 200 and at 2,000 a second (open loop) over 50 products for
//! 10 s each, with no browser following the feed; then until every order is
//! final. Per order: the CPU of each process, Redis's commands, and its
//! wake-ups: the blocking reads (`XREAD`, `XREADGROUP`) Redis served, which
//! cost it most at low load. Run against the app measured and, when
//! `scripts/bench` started a second one on `PARTITIONS=1` (`--one-partition-url`),
//! against that one too, so the report shows what partitions cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use redis::AsyncCommands;

use super::{bar, products, Better, Ctx, Report};
use crate::load::{open_loop_counted, Plan, Schedule};
use crate::observe::{command_delta, RedisProbe};

const PRODUCTS: usize = 50;
const MAX_IN_FLIGHT: usize = 1024;
/// Commands of the bench's own, left out of the counts: `INFO` (the probe's)
/// and `ZCARD` (waiting for the orders to be final).
const OWN_COMMANDS: [&str; 2] = ["info", "zcard"];

pub async fn run(ctx: &Ctx) -> Result<Report> {
    let mut report = Report::new("steady");
    if ctx.redis.is_none() {
        return Ok(Report::skipped("steady", "needs --redis-url (the Redis the app uses)"));
    }
    let (rates, time): (&[f64], Duration) = if ctx.sizes.smoke {
        (&[50.0, 200.0], Duration::from_secs(1))
    } else {
        (&[200.0, 2000.0], Duration::from_secs(10))
    };
    for app in std::iter::once(ctx).chain(ctx.one_partition.as_deref()) {
        measure(app, &mut report, rates, time).await?;
    }
    Ok(report)
}

/// Every rate against one app; its figures are keyed by its partition count.
async fn measure(ctx: &Ctx, report: &mut Report, rates: &[f64], time: Duration) -> Result<()> {
    let redis = ctx.redis.as_ref().context("the app's Redis")?;
    let layout = layout_of(ctx).await?;
    let partitions = layout.partitions().count();
    let products = products(ctx, "steady", PRODUCTS, domain::quantity::MAX_STOCK).await?;
    let count = products.len();
    let plan: Plan = Arc::new(move |i| (i % count, 1));
    for &rate in rates {
        // Let the app fall idle: the figures are the orders' cost, not the last scenario's.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let bar = bar("steady");
        bar.set_message(format!("PARTITIONS={partitions}, {rate} orders/s"));
        let cpu_before = ctx.observer.cpu().await;
        let stats_before = redis.command_stats().await?;
        let schedule = Schedule { rate, duration: time, max_in_flight: MAX_IN_FLIGHT };
        let (sent, accepted) = open_loop_counted(&ctx.target, &products, schedule, plan.clone(), &bar).await?;
        let drained = until_final(redis, &layout, ctx.sizes.drain).await?;
        let cpu = cpu_before.until(&ctx.observer.cpu().await);
        let mut delta = command_delta(&stats_before, &redis.command_stats().await?);
        bar.finish_and_clear();
        for own in OWN_COMMANDS {
            delta.remove(own);
        }
        report.failures.extend(sent.failures("steady"));
        ensure!(accepted > 0, "no order was accepted at {rate} orders/s");

        let orders = accepted as f64;
        let prefix = format!("p{partitions}.r{rate}");
        let name = |what: &str| format!("{partitions} partition(s) at {rate}/s: {what}");
        let mut total = Some(0.0);
        for process in ["server", "workers", "redis"] {
            let per = cpu.cpu_s.get(process).copied().flatten().map(|s| s * 1e6 / orders);
            total = total.zip(per).map(|(a, b)| a + b);
            report.figure(
                &format!("{prefix}.cpu_us.{process}"),
                &name(&format!("{process} CPU per order")),
                per,
                "µs",
                Better::Lower,
            );
        }
        report.figure(&format!("{prefix}.cpu_us.total"), &name("CPU per order, all three"), total, "µs", Better::Lower);
        let calls: u64 = delta.values().map(|stat| stat.calls).sum();
        report.figure(
            &format!("{prefix}.commands"),
            &name("Redis commands per order"),
            Some(calls as f64 / orders),
            "",
            Better::Lower,
        );
        let reads = ["xread", "xreadgroup"].iter().filter_map(|c| delta.get(*c));
        let (wakeups, read_us) = reads.fold((0, 0), |(calls, usec), stat| (calls + stat.calls, usec + stat.usec));
        report.figure(
            &format!("{prefix}.wakeups"),
            &name("stream reads served per order"),
            Some(wakeups as f64 / orders),
            "",
            Better::Lower,
        );
        report.figure(
            &format!("{prefix}.read_us"),
            &name("Redis time in stream reads per order"),
            Some(read_us as f64 / orders),
            "µs",
            Better::Lower,
        );
        report.detail(&format!("{prefix}.drain_s"), drained.as_secs_f64());
        report.detail(
            &format!("{prefix}.commands"),
            delta
                .iter()
                .map(|(c, s)| (c.clone(), s.calls as f64 / orders))
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
        report.cpu_window(&cpu);
    }
    Ok(())
}

/// The app's key layout, as its Redis records it.
pub(super) async fn layout_of(ctx: &Ctx) -> Result<store::Layout> {
    let redis = ctx.redis.as_ref().context("the app's Redis")?;
    let partitions: u16 = redis
        .connection()
        .get::<_, Option<u16>>(format!("{}:partitions", ctx.namespace))
        .await?
        .context("the app's partition count")?;
    Ok(store::Layout::new(&ctx.namespace, store::Partitions::new(partitions)?)?)
}

/// Waits until no order is pending or completed (every order final), at
/// most `within`; how long it took.
pub(super) async fn until_final(redis: &RedisProbe, layout: &store::Layout, within: Duration) -> Result<Duration> {
    let started = Instant::now();
    let mut conn = redis.connection();
    loop {
        let mut pipe = redis::pipe();
        for keys in layout.all() {
            pipe.zcard(keys.orders_in(domain::OrderStatus::Pending));
            pipe.zcard(keys.orders_in(domain::OrderStatus::Completed));
        }
        let open: Vec<u64> = pipe.query_async(&mut conn).await?;
        if open.iter().sum::<u64>() == 0 {
            return Ok(started.elapsed());
        }
        ensure!(started.elapsed() < within, "orders were still open {within:?} after the load");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
