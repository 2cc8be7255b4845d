//! Sending orders: a closed loop (a fixed number of requests in flight, each
//! lane sending its next order when the last one is answered) and an open
//! loop (orders sent on a fixed schedule whatever the answers, timed from
//! when they were due, so a slow server cannot hide its queue: no
//! coordinated omission).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::ProgressBar;
use tokio::sync::{mpsc, Semaphore};

use ulid::Ulid;

use crate::feed::Accepted;
use crate::http::{Conn, Placed, Pool, Product, Target};

/// What to order: the `i`-th order's product (index) and quantity.
pub type Plan = Arc<dyn Fn(usize) -> (usize, u32) + Send + Sync>;

/// Counters the progress bar shows while a load runs.
#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
}

/// How a load went, apart from the orders themselves.
#[derive(Debug)]
pub struct Sent {
    pub started: Instant,
    pub finished: Instant,
    pub sent: u64,
    pub refused: u64,
    /// The first few refusals and transport errors, verbatim.
    pub problems: Vec<String>,
    /// Open loop only: how late the generator sent its latest order.
    pub max_lag: Duration,
}

impl Sent {
    pub fn failures(&self, scenario: &str) -> Vec<String> {
        if self.refused == 0 {
            return Vec::new();
        }
        vec![format!(
            "{scenario}: {} of {} orders were not accepted; first: {}",
            self.refused,
            self.sent,
            self.problems.first().map(String::as_str).unwrap_or("?")
        )]
    }
}

/// When a closed loop stops.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    Elapsed(Duration),
    Orders(usize),
}

fn note(problems: &Mutex<Vec<String>>, problem: String) {
    let mut problems = problems.lock().unwrap_or_else(|p| p.into_inner());
    if problems.len() < 5 {
        problems.push(problem);
    }
}

/// Counts one answer to `POST /orders`, passing an accepted order on
/// (`accepted` is how to make it from the order).
fn record(
    placed: Result<Placed>,
    accepted: impl FnOnce(Ulid) -> Accepted,
    counters: &Counters,
    problems: &Mutex<Vec<String>>,
    to: &mpsc::UnboundedSender<Accepted>,
) {
    match placed {
        Ok(Placed::Accepted(order)) => {
            counters.accepted.fetch_add(1, Ordering::Relaxed);
            let _ = to.send(accepted(order));
        }
        Ok(Placed::Refused(why)) => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            note(problems, why);
        }
        Err(error) => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            note(problems, format!("POST /orders: {error:#}"));
        }
    }
}

/// `lanes` connections, each sending one order after another.
pub async fn closed_loop(
    target: &Arc<Target>,
    products: &[Product],
    lanes: usize,
    until: Until,
    plan: Plan,
    accepted: mpsc::UnboundedSender<Accepted>,
    bar: &ProgressBar,
) -> Result<Sent> {
    let ids: Arc<Vec<String>> = Arc::new(products.iter().map(|p| p.id.to_string()).collect());
    let conns = futures::future::try_join_all((0..lanes).map(|_| Conn::open(target))).await?;
    let counters = Arc::new(Counters::default());
    let problems = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let ticker = progress(bar, started, until, counters.clone());
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (ids, plan, accepted, counters, problems, next, target) = (
                ids.clone(),
                plan.clone(),
                accepted.clone(),
                counters.clone(),
                problems.clone(),
                next.clone(),
                target.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    match until {
                        Until::Orders(n) if i >= n => break,
                        Until::Elapsed(limit) if started.elapsed() >= limit => break,
                        _ => {}
                    }
                    let (product, quantity) = plan(i);
                    let sent = Instant::now();
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    let placed = conn.place_order(&ids[product], quantity).await;
                    let answered = Instant::now();
                    let failed = placed.is_err();
                    record(placed, Accepted::of(product, quantity, sent, answered), &counters, &problems, &accepted);
                    if failed {
                        match Conn::open(&target).await {
                            Ok(fresh) => conn = fresh,
                            Err(error) => {
                                note(&problems, format!("reconnecting: {error:#}"));
                                break;
                            }
                        }
                    }
                }
                Instant::now()
            })
        })
        .collect();
    drop(accepted);
    finish(tasks, ticker, started, &counters, &problems, Duration::ZERO).await
}

/// An open loop's schedule: `rate` orders a second for `duration`, at most
/// `max_in_flight` unanswered at once (past that the generator falls behind,
/// which the latencies, timed from when each order was due, include).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub rate: f64,
    pub duration: Duration,
    pub max_in_flight: usize,
}

/// Orders on `schedule`, each sent when due on a connection of a pool
/// (opening another when all are busy).
/// [`open_loop`], counting the orders the API accepted rather than keeping
/// them: what a scenario that measures cost per order needs.
pub async fn open_loop_counted(
    target: &Arc<Target>,
    products: &[Product],
    schedule: Schedule,
    plan: Plan,
    bar: &ProgressBar,
) -> Result<(Sent, usize)> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let counting = tokio::spawn(async move {
        let mut accepted = 0usize;
        while rx.recv().await.is_some() {
            accepted += 1;
        }
        accepted
    });
    let sent = open_loop(target, products, schedule, plan, tx, bar).await?;
    Ok((sent, counting.await?))
}

pub async fn open_loop(
    target: &Arc<Target>,
    products: &[Product],
    schedule: Schedule,
    plan: Plan,
    accepted: mpsc::UnboundedSender<Accepted>,
    bar: &ProgressBar,
) -> Result<Sent> {
    let Schedule { rate, duration, max_in_flight } = schedule;
    let ids: Arc<Vec<String>> = Arc::new(products.iter().map(|p| p.id.to_string()).collect());
    let total = (rate * duration.as_secs_f64()).round() as usize;
    let period = Duration::from_secs_f64(1.0 / rate);
    let pool = Pool::new(target);
    // Enough warm connections for the expected concurrency at a few ms per order.
    pool.warm(((rate / 200.0).ceil() as usize).clamp(4, 64)).await?;
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let counters = Arc::new(Counters::default());
    let problems = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now() + Duration::from_millis(20);
    let ticker = progress(bar, started, Until::Elapsed(duration), counters.clone());
    let mut max_lag = Duration::ZERO;
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + period.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = permits.clone().acquire_owned().await?;
        max_lag = max_lag.max(Instant::now().saturating_duration_since(due));
        let (product, quantity) = plan(i);
        let (ids, pool, accepted, counters, problems) =
            (ids.clone(), pool.clone(), accepted.clone(), counters.clone(), problems.clone());
        tasks.push(tokio::spawn(async move {
            counters.sent.fetch_add(1, Ordering::Relaxed);
            let placed = match pool.take().await {
                Ok(mut conn) => {
                    let placed = conn.place_order(&ids[product], quantity).await;
                    if placed.is_ok() {
                        pool.put(conn);
                    }
                    placed
                }
                Err(error) => Err(error),
            };
            let answered = Instant::now();
            drop(permit);
            record(placed, Accepted::of(product, quantity, due, answered), &counters, &problems, &accepted);
            answered
        }));
    }
    drop(accepted);
    finish(tasks, ticker, started, &counters, &problems, max_lag).await
}

/// Waits for every sending task (each returns when it last heard back),
/// stops the progress bar and sums the load up.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<Instant>>,
    ticker: tokio::task::JoinHandle<()>,
    started: Instant,
    counters: &Counters,
    problems: &Mutex<Vec<String>>,
    max_lag: Duration,
) -> Result<Sent> {
    let mut finished = started;
    for task in tasks {
        finished = finished.max(task.await?);
    }
    ticker.abort();
    let problems = std::mem::take(&mut *problems.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Sent {
        started,
        finished,
        sent: counters.sent.load(Ordering::Relaxed),
        refused: counters.refused.load(Ordering::Relaxed),
        problems,
        max_lag,
    })
}

/// Updates the bar from the counters five times a second while a load runs.
fn progress(bar: &ProgressBar, started: Instant, until: Until, counters: Arc<Counters>) -> tokio::task::JoinHandle<()> {
    let bar = bar.clone();
    match until {
        Until::Elapsed(limit) => bar.set_length(limit.as_millis() as u64),
        Until::Orders(n) => bar.set_length(n as u64),
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let sent = counters.sent.load(Ordering::Relaxed);
            match until {
                Until::Elapsed(_) => bar.set_position(started.elapsed().as_millis() as u64),
                Until::Orders(_) => bar.set_position(sent),
            }
            bar.set_message(format!(
                "{sent} sent, {} accepted, {} refused",
                counters.accepted.load(Ordering::Relaxed),
                counters.refused.load(Ordering::Relaxed)
            ));
        }
    })
}
