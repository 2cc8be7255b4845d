//! Lists: `GET /orders` (the first page, newest first, 100 orders) with
//! 1,000,000 orders in the store. The orders are written straight into the
//! key layout with pipelines ([`store::bulk::write_orders`]), each in the partition
//! of a product of its own partition, as the shop would have put it; then
//! the first page is read 1,000 times, one request at a time, after Redis
//! has finished any append-only-file rewrite.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use domain::OrderStatus;
use redis::AsyncCommands;
use serde::Deserialize;

use super::{bar, Better, Ctx, Report};
use crate::feed::Feed;
use crate::http::Conn;
use crate::seed;
use crate::stats::Samples;
/// Unmeasured requests first.
const WARM_UP: usize = 5;

#[derive(Deserialize)]
struct Listed {
    id: String,
}

pub async fn run(ctx: &Ctx, _feed: &mut Feed) -> Result<Report> {
    let Some(redis) = &ctx.redis else {
        return Ok(Report::skipped("lists", "needs --redis-url (orders are written straight into Redis)"));
    };
    let sizes = &ctx.sizes;
    let mut report = Report::new("lists");
    let mut conn = redis.connection();
    let layout = seed::layout(&ctx.namespace, &mut conn).await?;
    let partitions = layout.partitions();

    // One product in every partition, made the ordinary way.
    let mut http = Conn::open(&ctx.target).await?;
    let mut product_of: Vec<Option<domain::Id>> = vec![None; usize::from(partitions.count())];
    for attempt in 0..4 * usize::from(partitions.count()) {
        if product_of.iter().all(Option::is_some) {
            break;
        }
        let product = http.create_product(&format!("bench lists {attempt}"), "1.00", 1000).await?;
        let partition = partitions.of_id(&product.id);
        product_of[usize::from(partition.index())].get_or_insert(product.id);
    }
    let Some(product_of) = product_of.into_iter().collect::<Option<Vec<domain::Id>>>() else {
        bail!("could not get a product into every one of the {} partitions", partitions.count());
    };

    let bar = bar("lists");
    bar.set_length(sizes.list_orders as u64);
    bar.set_message(format!("writing {} orders", sizes.list_orders));
    let load_started = Instant::now();
    let fulfilled = |_| OrderStatus::Fulfilled;
    let written = store::bulk::write_orders(redis.store(), &layout, &product_of, sizes.list_orders, fulfilled, |n| {
        bar.inc(n as u64)
    })
    .await?;
    let load_s = load_started.elapsed().as_secs_f64();
    bar.set_message("letting Redis persistence settle");
    redis.wait_for_quiet_persistence(Duration::from_secs(300)).await?;
    let mut total = 0u64;
    for keys in layout.all() {
        let n: u64 = conn.zcard(keys.orders()).await?;
        total += n;
    }

    bar.set_length((WARM_UP + sizes.list_requests) as u64);
    bar.set_position(0);
    bar.set_message("GET /orders");
    let mut samples = Samples::with_capacity(sizes.list_requests);
    let mut bytes = 0;
    let cpu_before = ctx.observer.cpu().await;
    for i in 0..WARM_UP + sizes.list_requests {
        let started = Instant::now();
        let reply = http.request(hyper::Method::GET, "/orders", None).await?;
        let elapsed = started.elapsed();
        ensure!(reply.status == hyper::StatusCode::OK, "GET /orders: {} {}", reply.status, reply.text());
        let page: Vec<Listed> = reply.json()?;
        ensure!(page.len() as u64 == total.min(100), "GET /orders gave {} orders of {total}", page.len());
        ensure!(page.windows(2).all(|w| w[0].id > w[1].id), "GET /orders is not newest first");
        if i >= WARM_UP {
            samples.push(elapsed);
            bytes = reply.body.len();
        }
        bar.inc(1);
    }
    report.cpu_window(&cpu_before.until(&ctx.observer.cpu().await));
    let summary = samples.summary();
    report.figure("first_page_p50_ms", "GET /orders p50", summary.map(|s| s.p50_ms), "ms", Better::Lower);
    report.figure("first_page_p99_ms", "GET /orders p99", summary.map(|s| s.p99_ms), "ms", Better::Lower);
    report.figure("first_page_max_ms", "GET /orders max", summary.map(|s| s.max_ms), "ms", Better::Lower);
    report.detail("orders_in_store", total);
    report.detail("orders_written", sizes.list_orders);
    report.detail("partitions", partitions.count());
    report.detail("write_s", load_s);
    report.detail("written_per_s", sizes.list_orders as f64 / load_s);
    report.detail("redis_used_memory_bytes", redis.used_memory().await);
    report.detail("page_bytes", bytes);
    report.detail("first_page", summary);

    // A shared Redis gets its million orders back out; a private one is thrown away.
    if !ctx.private {
        bar.set_message("removing the orders it wrote");
        store::bulk::remove_orders(redis.store(), &layout, written).await?;
    }
    bar.finish_and_clear();
    Ok(report)
}
