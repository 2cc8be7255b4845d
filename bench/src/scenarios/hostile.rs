//! Hostile: orders at the latency scenario's rate, first alone, then while
//! 16 clients, each from a loopback address of its own (127.0.0.2, ...),
//! send the worst searches they can think of, back to back: searches that
//! match nothing, one letter, the commonest word, a common word with an
//! absent one, every status with a search, as page renders and as the
//! page's own calls. A client refused with 429 waits its `Retry-After`, as a
//! bot that wants its answers does. The shop holds a catalogue of 20,000
//! products to search (written in bulk when the bench has Redis).
//!
//! What it reports: the searches' latency (answered ones) and how many were
//! refused, and the orders' POST → final p99 with the hostile clients beside
//! the same load without them.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use domain::NewProduct;
use tokio::sync::mpsc;

use super::{bar, products, Better, Ctx, Report};
use crate::feed::{collect, Feed, Outcome};
use crate::http::{Conn, Product};
use crate::load::{open_loop, Plan, Schedule, Sent};
use crate::stats::Samples;

/// Hostile clients, each from an address of its own.
const CLIENTS: usize = 16;
const ORDER_PRODUCTS: usize = 16;
const MAX_IN_FLIGHT: usize = 1024;

/// The searches: a page render (`GET`) or a server function's form.
const SEARCHES: [(&str, Option<&str>); 10] = [
    ("/?q=zzqqxx", None),
    ("/?q=e", None),
    ("/?q=hostile", None),
    ("/?q=hostile+zzqq", None),
    ("/?status=pending&q=hostile", None),
    ("/?status=fulfilled&q=walnut+desk", None),
    ("/?status=refunded&q=zzqqxx&product=ho", None),
    ("/api/products_page", Some("search=hostile+zzqq")),
    ("/api/orders_page", Some("status=pending&search=walnut+desk")),
    ("/api/products_page", Some("search=ch")),
];

const ADJECTIVES: [&str; 8] = ["Oak", "Walnut", "Teak", "Birch", "Cedar", "Pine", "Maple", "Ash"];
const NOUNS: [&str; 8] = ["chair", "table", "desk", "stool", "bench", "shelf", "lamp", "cabinet"];

/// What the hostile clients got.
#[derive(Default)]
struct Searched {
    answered: Mutex<Samples>,
    refused: AtomicU64,
    failed: Mutex<Vec<String>>,
}

pub async fn run(ctx: &Ctx, feed: &mut Feed) -> Result<Report> {
    let sizes = &ctx.sizes;
    let mut report = Report::new("hostile");
    let bar = bar("hostile");
    let catalogue = if sizes.smoke { 1_000 } else { 20_000 };
    bar.set_message(format!("a catalogue of {catalogue} products to search"));
    let seeded = seed_catalogue(ctx, catalogue).await?;
    let products = products(ctx, "hostile orders", ORDER_PRODUCTS, domain::quantity::MAX_STOCK).await?;

    bar.set_message("orders alone");
    let (quiet_sent, quiet) = orders(ctx, feed, &products, &bar).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    bar.set_message("orders with 16 hostile clients");
    let searched = Arc::new(Searched::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::with_capacity(CLIENTS);
    for n in 0..CLIENTS {
        let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + n as u8));
        let (target, searched, stop) = (ctx.target.clone(), searched.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut conn = Conn::open_from(&target, Some(local)).await?;
            let mut next = n;
            while !stop.load(Ordering::Relaxed) {
                let (path, form) = SEARCHES[next % SEARCHES.len()];
                next += 1;
                let started = Instant::now();
                let reply = match form {
                    Some(form) => conn.post_form(path, form).await,
                    None => conn.request(hyper::Method::GET, path, None).await,
                };
                let reply = match reply {
                    Ok(reply) => reply,
                    Err(_) => {
                        // The server closed the connection (its idle timeout): open another.
                        conn = Conn::open_from(&target, Some(local)).await?;
                        continue;
                    }
                };
                let took = started.elapsed();
                match reply.status.as_u16() {
                    200 | 422 => searched.answered.lock().unwrap_or_else(|p| p.into_inner()).push(took),
                    429 => {
                        searched.refused.fetch_add(1, Ordering::Relaxed);
                        let wait = reply.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
                        let wait = Duration::from_secs(wait.unwrap_or(1));
                        let until = Instant::now() + wait;
                        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    _ => {
                        let mut failed = searched.failed.lock().unwrap_or_else(|p| p.into_inner());
                        if failed.len() < 5 {
                            failed.push(format!("{path}: {} {}", reply.status, reply.text()));
                        }
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    let searching = Instant::now();
    let cpu_before = ctx.observer.cpu().await;
    let (loud_sent, loud) = orders(ctx, feed, &products, &bar).await?;
    let cpu = cpu_before.until(&ctx.observer.cpu().await);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await??;
    }
    let searching_s = searching.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let mut answered = std::mem::take(&mut *searched.answered.lock().unwrap_or_else(|p| p.into_inner()));
    let refused = searched.refused.load(Ordering::Relaxed);
    let search = answered.summary();
    let (quiet_final, loud_final) = (final_latency(&quiet), final_latency(&loud));
    report.figure("search_p50_ms", "search p50 (answered)", search.map(|s| s.p50_ms), "ms", Better::Lower);
    report.figure("search_p99_ms", "search p99 (answered)", search.map(|s| s.p99_ms), "ms", Better::Lower);
    report.figure(
        "searches_answered_per_s",
        "searches answered",
        Some(answered.len() as f64 / searching_s),
        "/s",
        Better::Neither,
    );
    report.figure(
        "searches_refused_per_s",
        "searches refused (429)",
        Some(refused as f64 / searching_s),
        "/s",
        Better::Neither,
    );
    report.figure("quiet_final_p99_ms", "POST → final p99, alone", quiet_final.map(|s| s.p99_ms), "ms", Better::Lower);
    report.figure(
        "final_p99_ms",
        "POST → final p99, with hostile clients",
        loud_final.map(|s| s.p99_ms),
        "ms",
        Better::Lower,
    );
    let ratio = quiet_final.zip(loud_final).map(|(quiet, loud)| loud.p99_ms / quiet.p99_ms.max(1e-9));
    report.figure("final_p99_ratio", "POST → final p99, hostile ÷ alone", ratio, "×", Better::Lower);
    report.cpu_figures(&cpu, loud.terminal.len());
    report.detail("catalogue_products", seeded);
    report.detail("hostile_clients", CLIENTS);
    report.detail(
        "searches",
        SEARCHES.iter().map(|(path, form)| format!("{path} {}", form.unwrap_or(""))).collect::<Vec<_>>(),
    );
    report.detail("search_latency", search);
    report.detail("searches_refused", refused);
    report.detail("post_to_final_alone", quiet_final);
    report.detail("post_to_final_hostile", loud_final);
    report.failures.extend(
        searched
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|f| format!("hostile: a search failed: {f}")),
    );
    for (sent, outcome) in [(&quiet_sent, &quiet), (&loud_sent, &loud)] {
        report.failures.extend(sent.failures("hostile"));
        report.failures.extend(outcome.failures("hostile"));
    }
    Ok(report)
}

/// Orders at the latency scenario's rate for its time, until each is final.
async fn orders(
    ctx: &Ctx,
    feed: &mut Feed,
    products: &[Product],
    bar: &indicatif::ProgressBar,
) -> Result<(Sent, Outcome)> {
    let sizes = &ctx.sizes;
    let count = products.len();
    let plan: Plan = Arc::new(move |i| (i % count, 1));
    feed.discard();
    let schedule = Schedule { rate: sizes.latency_rate, duration: sizes.latency_time, max_in_flight: MAX_IN_FLIGHT };
    let (tx, rx) = mpsc::unbounded_channel();
    let (sent, outcome) =
        tokio::join!(open_loop(&ctx.target, products, schedule, plan, tx, bar), collect(feed, rx, sizes.drain, bar));
    Ok((sent?, outcome?))
}

/// POST → final of every order that got there, timed from when it was due.
fn final_latency(outcome: &Outcome) -> Option<crate::stats::Summary> {
    let mut samples = Samples::with_capacity(outcome.accepted.len());
    for order in &outcome.accepted {
        if let Some((_, at)) = outcome.terminal.get(&order.order) {
            samples.push(at.saturating_duration_since(order.sent));
        }
    }
    samples.summary()
}

/// Products named like a shop's ("Hostile walnut desk 123"), to search: in
/// bulk through Redis when the bench has it, else a few hundred over HTTP.
async fn seed_catalogue(ctx: &Ctx, count: usize) -> Result<usize> {
    let name = |n: usize| format!("Hostile {} {} {n}", ADJECTIVES[n % 8], NOUNS[n / 8 % 8]);
    match &ctx.redis {
        Some(redis) => {
            let layout = crate::seed::layout(&ctx.namespace, &mut redis.connection()).await?;
            let new: Vec<NewProduct> =
                (0..count).map(|n| NewProduct::parse(&name(n), "1", "1000")).collect::<Result<_, _>>()?;
            store::bulk::create_products(redis.store(), &layout, new).await?;
            Ok(count)
        }
        None => {
            let mut conn = Conn::open(&ctx.target).await?;
            let count = count.min(300);
            for n in 0..count {
                conn.create_product(&name(n), "1.00", 1000).await?;
            }
            Ok(count)
        }
    }
}
