//! The bench's own subscription to the live feed (`GET /api/events`), and
//! the collector that pairs every accepted order with the changes the feed
//! reports for it: that is how the bench learns an order reached its end,
//! without ever polling.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use domain::OrderStatus;
use indicatif::ProgressBar;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use ulid::Ulid;

use crate::http::Target;
use crate::sse::SseClient;

/// One status change as the feed delivered it.
#[derive(Debug, Clone)]
pub struct Change {
    pub order: Ulid,
    pub status: OrderStatus,
    /// The product's stock after the change, when it moved stock.
    pub stock: Option<u32>,
    pub reason: Option<String>,
    /// When the change was made (ms since the epoch, the product's clock).
    #[allow(dead_code)]
    pub at_ms: u64,
    /// When the bench read it.
    pub received: Instant,
}

/// A `StatusChange` on the wire (see `domain::events`).
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow)]
    product_id: Cow<'a, str>,
    status: OrderStatus,
    #[serde(default)]
    stock: Option<u32>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
    at: u64,
}

pub fn parse(data: &[u8], received: Instant) -> Result<Change> {
    let wire: Wire = serde_json::from_slice(data)
        .with_context(|| format!("a live event that is not a StatusChange: {}", String::from_utf8_lossy(data)))?;
    let id = |text: &str| Ulid::from_string(text).map_err(|e| anyhow!("live event id {text:?}: {e}"));
    id(&wire.product_id)?;
    Ok(Change {
        order: id(&wire.order_id)?,
        status: wire.status,
        stock: wire.stock,
        reason: wire.reason.map(Cow::into_owned),
        at_ms: wire.at,
        received,
    })
}

/// The bench's subscription; changes queue up until a scenario reads them.
pub struct Feed {
    rx: mpsc::UnboundedReceiver<Change>,
    task: Option<JoinHandle<Result<()>>>,
}

impl Feed {
    pub async fn connect(target: &Target) -> Result<Feed> {
        let mut client = SseClient::connect(target.addr, target.host(), false).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while client.next().await? {
                let change = parse(client.data(), Instant::now())?;
                if tx.send(change).is_err() {
                    return Ok(());
                }
            }
            bail!("the server ended the live feed")
        });
        Ok(Feed { rx, task: Some(task) })
    }

    /// Forgets the changes received so far (those of earlier scenarios).
    pub fn discard(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    pub async fn recv(&mut self) -> Result<Change> {
        match self.rx.recv().await {
            Some(change) => Ok(change),
            None => {
                let why = match self.task.take() {
                    Some(task) => match task.await {
                        Ok(Err(error)) => error,
                        Ok(Ok(())) => anyhow!("stopped"),
                        Err(error) => anyhow!(error),
                    },
                    None => anyhow!("ended earlier"),
                };
                Err(why.context("the live feed (GET /api/events)"))
            }
        }
    }

    /// Waits until `order` reaches a terminal status on the feed.
    pub async fn wait_terminal(&mut self, order: Ulid, limit: Duration) -> Result<Change> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let change = tokio::time::timeout_at(deadline, self.recv()).await.map_err(|_| {
                anyhow!("order {order} did not reach a final status on the live feed within {limit:?}")
            })??;
            if change.order == order && change.status.is_terminal() {
                return Ok(change);
            }
        }
    }
}

/// An order the API accepted (201).
#[derive(Debug, Clone)]
pub struct Accepted {
    pub order: Ulid,
    /// Index of its product in the scenario's list.
    pub product: usize,
    pub quantity: u32,
    /// When the POST was sent, or, in an open loop, when it was due.
    pub sent: Instant,
    pub answered: Instant,
}

impl Accepted {
    /// How to make one from the order, once it is accepted.
    pub fn of(product: usize, quantity: u32, sent: Instant, answered: Instant) -> impl FnOnce(Ulid) -> Accepted {
        move |order| Accepted { order, product, quantity, sent, answered }
    }
}

/// Everything a load and its drain produced.
pub struct Outcome {
    pub accepted: Vec<Accepted>,
    /// Changes of accepted orders, in the order the feed delivered them.
    pub changes: Vec<Change>,
    /// The first terminal change of each accepted order that got one.
    pub terminal: HashMap<Ulid, (OrderStatus, Instant)>,
    /// Changes delivered more than once (same order, same status).
    pub duplicates: usize,
    /// Accepted orders without a terminal change when the drain gave up.
    pub stuck: Vec<Ulid>,
    /// When the load stopped sending.
    #[allow(dead_code)]
    pub load_done: Instant,
    /// The last terminal change of an accepted order.
    pub last_terminal: Option<Instant>,
}

/// Collects accepted orders (from the load) and changes (from the feed)
/// until the load is over and every accepted order reached a terminal
/// status, or `drain` passed after the load ended.
pub async fn collect(
    feed: &mut Feed,
    mut accepted_rx: mpsc::UnboundedReceiver<Accepted>,
    drain: Duration,
    bar: &ProgressBar,
) -> Result<Outcome> {
    let mut accepted = Vec::new();
    let mut accepted_ids = HashSet::new();
    let mut changes = Vec::new();
    let mut terminal: HashMap<Ulid, (OrderStatus, Instant)> = HashMap::new();
    let mut finished = 0usize;
    let mut load_done: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        if load_done.is_some() && finished == accepted.len() {
            break;
        }
        let deadline = load_done.map(|done| tokio::time::Instant::from_std(done + drain));
        tokio::select! {
            next = accepted_rx.recv(), if load_done.is_none() => match next {
                Some(order) => {
                    if terminal.contains_key(&order.order) {
                        finished += 1;
                    }
                    accepted_ids.insert(order.order);
                    accepted.push(order);
                }
                None => {
                    load_done = Some(Instant::now());
                    bar.set_length(accepted.len() as u64);
                }
            },
            change = feed.recv() => {
                let change = change?;
                if change.status.is_terminal() && !terminal.contains_key(&change.order) {
                    terminal.insert(change.order, (change.status, change.received));
                    if accepted_ids.contains(&change.order) {
                        finished += 1;
                    }
                }
                changes.push(change);
            }
            () = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
            _ = tick.tick() => {
                if load_done.is_some() {
                    bar.set_position(finished as u64);
                    bar.set_message(format!("draining: {} orders not final yet", accepted.len() - finished));
                }
            }
        }
    }
    let load_done = load_done.unwrap_or_else(Instant::now);
    changes.retain(|c| accepted_ids.contains(&c.order));
    let mut seen = HashSet::new();
    let duplicates = changes.iter().filter(|c| !seen.insert((c.order, c.status))).count();
    terminal.retain(|order, _| accepted_ids.contains(order));
    let stuck = accepted.iter().map(|a| a.order).filter(|o| !terminal.contains_key(o)).collect();
    let last_terminal = terminal.values().map(|(_, at)| *at).max();
    Ok(Outcome { accepted, changes, terminal, duplicates, stuck, load_done, last_terminal })
}

impl Outcome {
    /// Failures every load shares: orders never finished, changes twice.
    pub fn failures(&self, scenario: &str) -> Vec<String> {
        let mut failures = Vec::new();
        if !self.stuck.is_empty() {
            failures.push(format!(
                "{scenario}: {} of {} accepted orders never reached a final status on the live feed (e.g. {})",
                self.stuck.len(),
                self.accepted.len(),
                self.stuck[0]
            ));
        }
        if self.duplicates > 0 {
            failures.push(format!("{scenario}: the live feed delivered {} changes twice", self.duplicates));
        }
        failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_change_parses_with_and_without_its_optional_fields() {
        let now = Instant::now();
        let change = parse(
            br#"{"order_id":"01JD3V6Q8ZK0M9X4W2T7Y5B1CA","product_id":"01JD3V6Q8ZK0M9X4W2T7Y5B1CE","status":"fulfilled","stock":7,"at":1700000000000}"#,
            now,
        )
        .unwrap();
        assert_eq!(change.status, OrderStatus::Fulfilled);
        assert_eq!(change.stock, Some(7));
        let change = parse(
            br#"{"order_id":"01JD3V6Q8ZK0M9X4W2T7Y5B1CA","product_id":"01JD3V6Q8ZK0M9X4W2T7Y5B1CE","status":"refunded","reason":"insufficient \"stock\"","at":1}"#,
            now,
        )
        .unwrap();
        assert_eq!(change.reason.as_deref(), Some("insufficient \"stock\""));
        assert!(parse(b"{}", now).is_err());
    }
}
