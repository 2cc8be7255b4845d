//! Servers: what the live feed costs per order when one server has a browser
//! following it and when four have. Each server follows the changes for its
//! own browsers (on one Redis from the scripts' pushes, else by reading the
//! streams), so this is what a server more costs Redis. Orders at 200 and at
//! 2,000 a second (open loop) over 50 products for 10 s each, with one feed
//! client on the measured server, then one on each of four servers of the
//! same Redis (`scripts/bench` starts three more with `--extra-server-url`).
//! Per order: Redis CPU, the servers' CPU together, the live feed's reads
//! (`XREAD`) and the Redis time of the pushes (`SPUBLISH`, which hands each
//! change to every server subscribed).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};

use super::{bar, products, Better, Ctx, Report};
use crate::feed::Feed;
use crate::load::{open_loop_counted, Plan, Schedule};
use crate::observe::{command_delta, cpu_seconds};

const PRODUCTS: usize = 50;
const MAX_IN_FLIGHT: usize = 1024;

pub async fn run(ctx: &Ctx) -> Result<Report> {
    let Some(redis) = ctx.redis.as_ref() else {
        return Ok(Report::skipped("servers", "needs --redis-url (the Redis the app uses)"));
    };
    if ctx.extra_servers.is_empty() {
        return Ok(Report::skipped("servers", "needs --extra-server-url (servers of the same Redis)"));
    }
    let mut report = Report::new("servers");
    let (rates, time): (&[f64], Duration) =
        if ctx.sizes.smoke { (&[50.0], Duration::from_secs(1)) } else { (&[200.0, 2000.0], Duration::from_secs(10)) };
    let layout = super::steady::layout_of(ctx).await?;
    let products = products(ctx, "servers", PRODUCTS, domain::quantity::MAX_STOCK).await?;
    let count = products.len();
    let plan: Plan = Arc::new(move |i| (i % count, 1));
    let every_server: Vec<_> = std::iter::once(&ctx.target).chain(&ctx.extra_servers).collect();
    let server_pids: Vec<u32> = ctx.server_pid.into_iter().chain(ctx.extra_server_pids.iter().copied()).collect();
    for watched in [1, every_server.len()] {
        let mut feeds = Vec::with_capacity(watched);
        for target in &every_server[..watched] {
            feeds.push(Feed::connect(target).await?);
        }
        // Let every feed's reader start before the orders do.
        tokio::time::sleep(Duration::from_secs(1)).await;
        for &rate in rates {
            for feed in &mut feeds {
                feed.discard();
            }
            let bar = bar("servers");
            bar.set_message(format!("{watched} server(s) watched, {rate} orders/s"));
            let servers_cpu_before = total_cpu(&server_pids);
            let redis_cpu_before = redis.cpu_seconds().await?;
            let stats_before = redis.command_stats().await?;
            let schedule = Schedule { rate, duration: time, max_in_flight: MAX_IN_FLIGHT };
            let (sent, accepted) = open_loop_counted(&ctx.target, &products, schedule, plan.clone(), &bar).await?;
            super::steady::until_final(redis, &layout, ctx.sizes.drain).await?;
            // The last changes reach the feeds a moment after the orders are final.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let redis_cpu = redis.cpu_seconds().await? - redis_cpu_before;
            let servers_cpu = total_cpu(&server_pids).zip(servers_cpu_before).map(|(after, before)| after - before);
            let delta = command_delta(&stats_before, &redis.command_stats().await?);
            bar.finish_and_clear();
            report.failures.extend(sent.failures("servers"));
            ensure!(accepted > 0, "no order was accepted at {rate} orders/s");

            let orders = accepted as f64;
            let prefix = format!("w{watched}.r{rate}");
            let name = |what: &str| format!("{watched} server(s) watched, {rate}/s: {what}");
            report.figure(
                &format!("{prefix}.redis_cpu_us"),
                &name("Redis CPU per order"),
                Some(redis_cpu * 1e6 / orders),
                "µs",
                Better::Lower,
            );
            report.figure(
                &format!("{prefix}.servers_cpu_us"),
                &name("servers' CPU per order, together"),
                servers_cpu.map(|s| s * 1e6 / orders),
                "µs",
                Better::Lower,
            );
            let feed_reads = delta.get("xread").map_or(0, |stat| stat.calls);
            report.figure(
                &format!("{prefix}.feed_reads"),
                &name("live-feed reads (XREAD) per order"),
                Some(feed_reads as f64 / orders),
                "",
                Better::Lower,
            );
            let feed_read_us = delta.get("xread").map_or(0.0, |stat| stat.usec as f64);
            report.figure(
                &format!("{prefix}.feed_read_us"),
                &name("Redis time in live-feed reads per order"),
                Some(feed_read_us / orders),
                "µs",
                Better::Lower,
            );
            let push_us = delta.get("spublish").map_or(0.0, |stat| stat.usec as f64);
            report.figure(
                &format!("{prefix}.feed_push_us"),
                &name("Redis time in live-feed pushes (SPUBLISH) per order"),
                Some(push_us / orders),
                "µs",
                Better::Lower,
            );
        }
    }
    Ok(report)
}

/// CPU seconds of all these processes so far, when every one is visible.
fn total_cpu(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|pid| cpu_seconds(*pid)).sum()
}
