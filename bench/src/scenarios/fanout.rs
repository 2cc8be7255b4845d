//! Live fan-out: 10,000 browsers on `GET /api/events` while orders move.
//!
//! The clients are raw sockets with a minimal HTTP/1.1 and SSE parser (see
//! `sse.rs`), connected 256 at a time. Once every client has received an
//! event (probe orders on a product of their own prove each subscription
//! live), orders for the measured product are placed at a steady 2 a second
//! for 10 s; each makes three changes (pending, completed, fulfilled), which
//! every client must receive exactly once.
//!
//! - change → client: when a client read the event, minus the change's `at`
//!   (the product's clock, in whole milliseconds, so up to 1 ms is added);
//! - spread: for each change, first client → last client;
//! - events lost: changes a client never received (and duplicates);
//! - server RSS (`VmRSS`) before the clients, with them all connected, and per
//!   client; only when the bench started the server (it needs its pid).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use domain::OrderStatus;
use serde::Deserialize;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

use super::{bar, ms, products, Better, Ctx, Report};
use crate::feed::{collect, Feed};
use crate::http::{Conn, Placed, Target};
use crate::load::{open_loop, Plan, Schedule};
use crate::observe::{command_delta, rss_kib};
use crate::sse::SseClient;
use crate::stats::Samples;

/// Connections being opened at once (the server's accept backlog is finite).
const CONNECTING: usize = 256;
/// The changes each measured order makes.
const CHANGES: [OrderStatus; 3] = [OrderStatus::Pending, OrderStatus::Completed, OrderStatus::Fulfilled];
/// How long the clients may go without receiving anything before the rest counts as lost.
const STALL: Duration = Duration::from_secs(10);

/// What the clients share with the scenario.
#[derive(Default)]
struct Shared {
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Clients that received at least one event: their subscription is live.
    ready: AtomicUsize,
    /// Clients whose stream ended before they were told to stop.
    ended: AtomicUsize,
    /// Events of the measured product received, over all clients.
    delivered: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// One event of the measured product as one client received it.
struct Delivery {
    order: u128,
    status: OrderStatus,
    at_ms: u64,
    received_us: u64,
}

#[derive(Deserialize)]
struct Lean<'a> {
    order_id: &'a str,
    product_id: &'a str,
    status: OrderStatus,
    at: u64,
}

fn epoch_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

async fn client(
    target: Arc<Target>,
    measured: Arc<str>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    stop: CancellationToken,
) -> Vec<Delivery> {
    let permit = gate.acquire().await;
    let mut sse = match SseClient::connect(target.addr, target.host(), true).await {
        Ok(sse) => sse,
        Err(error) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            shared.first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(format!("{error:#}"));
            return Vec::new();
        }
    };
    drop(permit);
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let mut deliveries = Vec::new();
    let mut ready = false;
    // One wait for the stop, kept across events: a new one per event would
    // register and drop a waiter each time (5% of the clients' CPU).
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let next = tokio::select! {
            () = &mut stopped => break,
            next = sse.next() => next,
        };
        if !matches!(next, Ok(true)) {
            shared.ended.fetch_add(1, Ordering::Relaxed);
            break;
        }
        let received_us = epoch_us();
        if !ready {
            ready = true;
            shared.ready.fetch_add(1, Ordering::Relaxed);
        }
        let Ok(event) = serde_json::from_slice::<Lean>(sse.data()) else { continue };
        if event.product_id == &*measured {
            if let Ok(order) = Ulid::from_string(event.order_id) {
                deliveries.push(Delivery { order: order.0, status: event.status, at_ms: event.at, received_us });
                shared.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    deliveries
}

pub async fn run(ctx: &Ctx, feed: &mut Feed) -> Result<Report> {
    let sizes = &ctx.sizes;
    let clients = sizes.fanout_clients;
    let mut report = Report::new("fanout");
    // One product for the probes, one for the measured orders.
    let products = products(ctx, "fanout", 2, domain::quantity::MAX_STOCK).await?;
    let measured: Arc<str> = products[1].id.as_str().into();
    let rss_before = ctx.server_pid.and_then(rss_kib);
    let commands_before = match &ctx.redis {
        Some(redis) => Some(redis.command_stats().await?),
        None => None,
    };

    let bar = bar("fan-out");
    bar.set_length(clients as u64);
    bar.set_message(format!("connecting {clients} clients"));
    let shared = Arc::new(Shared::default());
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let stop = CancellationToken::new();
    // However this scenario ends, its clients hang up.
    let _hang_up = stop.clone().drop_guard();
    let connect_started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(client(ctx.target.clone(), measured.clone(), shared.clone(), gate.clone(), stop.clone())))
        .collect();
    let connect_deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let done = shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        bar.set_position(done as u64);
        if done >= clients || Instant::now() > connect_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::Relaxed);

    // Probe orders until every connected client has had an event.
    bar.set_message("probing until every client's subscription is live");
    let mut conn = Conn::open(&ctx.target).await?;
    let probe_deadline = Instant::now() + Duration::from_secs(120);
    while shared.ready.load(Ordering::Relaxed) < connected && Instant::now() < probe_deadline {
        if let Placed::Refused(why) = conn.place_order(&products[0].id, 1).await? {
            anyhow::bail!("probe order: {why}");
        }
        bar.set_position(shared.ready.load(Ordering::Relaxed) as u64);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ready = shared.ready.load(Ordering::Relaxed);
    let rss_connected = ctx.server_pid.and_then(rss_kib);
    // What subscribing cost Redis: the stream reads a new client causes (its
    // replay from where it starts), now that every client is live and so done
    // with it. The probe orders read streams with XREAD only, never XRANGE.
    let reads_per_connect = match (&ctx.redis, &commands_before) {
        (Some(redis), Some(before)) => {
            let delta = command_delta(before, &redis.command_stats().await?);
            let reads: u64 = ["xrange", "xrevrange"].iter().filter_map(|c| delta.get(*c)).map(|s| s.calls).sum();
            Some(reads as f64 / connected.max(1) as f64)
        }
        _ => None,
    };

    // The measured changes.
    feed.discard();
    let cpu_before = ctx.observer.cpu().await;
    let (tx, rx) = mpsc::unbounded_channel();
    let plan: Plan = Arc::new(|_| (0, 1));
    let schedule = Schedule { rate: sizes.fanout_rate, duration: sizes.fanout_time, max_in_flight: 64 };
    bar.set_message("orders moving");
    let (sent, outcome) = tokio::join!(
        open_loop(&ctx.target, &products[1..], schedule, plan, tx, &bar),
        collect(feed, rx, sizes.drain, &bar)
    );
    let (sent, outcome) = (sent?, outcome?);
    let expected_per_client = CHANGES.len() * outcome.accepted.len();
    let expected = (ready * expected_per_client) as u64;
    bar.set_length(expected);
    bar.set_message("waiting for every client to receive every change");
    let mut last = (shared.delivered.load(Ordering::Relaxed), Instant::now());
    loop {
        let delivered = shared.delivered.load(Ordering::Relaxed);
        bar.set_position(delivered);
        if delivered >= expected {
            break;
        }
        if delivered != last.0 {
            last = (delivered, Instant::now());
        } else if last.1.elapsed() > STALL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = cpu_before.until(&ctx.observer.cpu().await);
    let rss_after = ctx.server_pid.and_then(rss_kib);
    stop.cancel();
    // Every client counts, those that never connected or never went live included.
    let mut per_client = Vec::with_capacity(clients);
    for task in tasks {
        per_client.push(task.await.context("a fan-out client panicked")?);
    }
    bar.finish_and_clear();

    // What the bench's own feed saw is the reference: three changes per order.
    let measured_orders: HashSet<u128> = outcome.accepted.iter().map(|a| a.order.0).collect();
    let mut reference: HashMap<u128, Vec<OrderStatus>> = HashMap::new();
    for change in &outcome.changes {
        reference.entry(change.order.0).or_default().push(change.status);
    }
    let odd = reference.values().filter(|s| s.as_slice() != CHANGES).count();

    let mut latency = Samples::with_capacity(expected as usize);
    let mut first_last: HashMap<(u128, OrderStatus), (u64, u64)> = HashMap::new();
    let (mut lost, mut duplicates) = (0usize, 0usize);
    for deliveries in &per_client {
        let mut seen = HashSet::with_capacity(deliveries.len());
        for d in deliveries {
            if !measured_orders.contains(&d.order) {
                continue;
            }
            if !seen.insert((d.order, d.status)) {
                duplicates += 1;
                continue;
            }
            latency.push_us(d.received_us.saturating_sub(d.at_ms * 1000));
            let span = first_last.entry((d.order, d.status)).or_insert((d.received_us, d.received_us));
            span.0 = span.0.min(d.received_us);
            span.1 = span.1.max(d.received_us);
        }
        lost += expected_per_client.saturating_sub(seen.len());
    }
    let mut spread = Samples::with_capacity(first_last.len());
    for (first, last) in first_last.values() {
        spread.push_us(last - first);
    }
    let (latency, spread) = (latency.summary(), spread.summary());

    let mib = |kib: Option<u64>| kib.map(|k| k as f64 / 1024.0);
    report.figure("delivery_p50_ms", "change → client p50", latency.map(|s| s.p50_ms), "ms", Better::Lower);
    report.figure("delivery_p99_ms", "change → client p99", latency.map(|s| s.p99_ms), "ms", Better::Lower);
    report.figure("delivery_max_ms", "change → client max", latency.map(|s| s.max_ms), "ms", Better::Lower);
    report.figure("spread_p99_ms", "first → last client p99", spread.map(|s| s.p99_ms), "ms", Better::Lower);
    report.figure("events_lost", "events lost", Some(lost as f64), "", Better::Lower);
    report.figure("server_rss_mib", "server RSS with the clients", mib(rss_connected), "MiB", Better::Lower);
    report.figure(
        "server_rss_per_client_kib",
        "server RSS per client",
        rss_connected.zip(rss_before).map(|(with, without)| (with as f64 - without as f64) / connected.max(1) as f64),
        "KiB",
        Better::Lower,
    );
    report.figure("connect_s", "time to connect every client", Some(connect_s), "s", Better::Lower);
    report.figure(
        "redis_reads_per_connect",
        "Redis XRANGE/XREVRANGE per new client",
        reads_per_connect,
        "",
        Better::Lower,
    );
    report.cpu_figures_per(&cpu, shared.delivered.load(Ordering::Relaxed) as usize, "delivery");
    report.detail("clients", clients);
    report.detail("connected", connected);
    report.detail("live", ready);
    report.detail("orders", outcome.accepted.len());
    report.detail("changes_per_client", expected_per_client);
    report.detail("deliveries", shared.delivered.load(Ordering::Relaxed));
    report.detail("duplicates", duplicates);
    report.detail("change_to_client", latency);
    report.detail("spread", spread);
    report.detail("server_rss_kib_before", rss_before);
    report.detail("server_rss_kib_connected", rss_connected);
    report.detail("server_rss_kib_after_changes", rss_after);
    report.detail("generator_lag_ms", ms(sent.max_lag));

    let failed = shared.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = shared.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
        report.failures.push(format!("fanout: {failed} of {clients} clients could not connect: {first}"));
    }
    if ready < connected {
        report.failures.push(format!("fanout: {} clients never received an event", connected - ready));
    }
    let ended = shared.ended.load(Ordering::Relaxed);
    if ended > 0 {
        report.failures.push(format!("fanout: the server ended {ended} clients' streams"));
    }
    if lost > 0 {
        report.failures.push(format!("fanout: {lost} events lost over {clients} clients"));
    }
    if duplicates > 0 {
        report.failures.push(format!("fanout: {duplicates} events delivered twice"));
    }
    if odd > 0 {
        report.failures.push(format!("fanout: {odd} orders did not go pending → completed → fulfilled on the feed"));
    }
    report.failures.extend(sent.failures("fanout"));
    report.failures.extend(outcome.failures("fanout"));
    Ok(report)
}
