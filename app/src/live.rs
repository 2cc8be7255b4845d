//! The live order feed in the browser: an `EventSource` on `/api/events`.
//!
//! Status changes update the page in place: order statuses, stock levels,
//! and a refresh of the order list when an order from elsewhere appears. The
//! browser reconnects by itself and sends `Last-Event-ID`, so the server
//! replays whatever was missed.

use std::collections::{HashMap, HashSet};

use domain::{OrderStatus, StatusChange, Step};
use leptos::prelude::*;

/// The path of the server-sent events endpoint.
pub const EVENTS_PATH: &str = "/api/events";

/// What the feed has told us so far, shared by the page's components.
#[derive(Clone, Copy)]
pub struct LiveFeed {
    /// Latest known status of each order that changed since the page loaded.
    pub statuses: RwSignal<HashMap<String, OrderStatus>>,
    /// Why each order refunded since the page loaded was refunded.
    pub refund_reasons: RwSignal<HashMap<String, String>>,
    /// Latest known stock of each product that moved since the page loaded.
    pub stock: RwSignal<HashMap<String, u32>>,
    /// Bumped when the lists should be fetched again (an unknown order appeared, or the feed reconnected).
    pub refresh: RwSignal<u64>,
    /// Every step the feed reported for each order since the page loaded, oldest first.
    pub steps: RwSignal<HashMap<String, Vec<Step>>>,
    /// Bumped when the number of dead letters may have changed.
    pub dead_letters_changed: RwSignal<u64>,
    /// The orders the page lists, when it lists orders: an event for another
    /// one bumps [`LiveFeed::refresh`].
    pub listed: StoredValue<Option<HashSet<String>>>,
    /// Whether the event stream is connected.
    pub connected: RwSignal<bool>,
}

impl LiveFeed {
    pub fn new() -> LiveFeed {
        LiveFeed {
            statuses: RwSignal::new(HashMap::new()),
            refund_reasons: RwSignal::new(HashMap::new()),
            stock: RwSignal::new(HashMap::new()),
            refresh: RwSignal::new(0),
            steps: RwSignal::new(HashMap::new()),
            dead_letters_changed: RwSignal::new(0),
            listed: StoredValue::new(None),
            connected: RwSignal::new(false),
        }
    }

    /// The status to show: the further along of the listed and the live one
    /// (statuses only move forward, so the further one is the newer).
    pub fn status_of(&self, order_id: &str, listed: OrderStatus) -> OrderStatus {
        match self.statuses.with(|s| s.get(order_id).copied()) {
            Some(live) if rank(live) > rank(listed) => live,
            _ => listed,
        }
    }

    /// Why the order was refunded: the listed reason, else the one the feed brought.
    pub fn refund_reason_of(&self, order_id: &str, listed: Option<&str>) -> Option<String> {
        listed.map(str::to_string).or_else(|| self.refund_reasons.with(|r| r.get(order_id).cloned()))
    }

    /// The steps of an order's life: the listed ones, then those the feed
    /// brought that are not listed yet, oldest first.
    pub fn timeline_of(&self, order_id: &str, listed: &[Step]) -> Vec<Step> {
        let mut steps = listed.to_vec();
        self.steps.with(|live| {
            for step in live.get(order_id).into_iter().flatten() {
                if !steps.iter().any(|s| s.step == step.step) {
                    steps.push(step.clone());
                }
            }
        });
        steps.sort_by_key(|s| s.at);
        steps
    }

    /// Applies one change from the feed.
    pub fn apply(&self, change: StatusChange) {
        let known = self.listed.with_value(|listed| listed.as_ref().is_none_or(|l| l.contains(&change.order_id)));
        if let (OrderStatus::Refunded, Some(reason)) = (change.status, &change.reason) {
            if is_dead_lettered(reason) {
                self.dead_letters_changed.update(|n| *n += 1);
            }
            self.refund_reasons.update(|r| {
                r.insert(change.order_id.clone(), reason.clone());
            });
        }
        if let Some(stock) = change.stock {
            self.stock.update(|s| {
                s.insert(change.product_id.clone(), stock);
            });
        }
        self.steps.update(|s| {
            let steps = s.entry(change.order_id.clone()).or_default();
            if !steps.iter().any(|step| step.step == change.status.as_str()) {
                steps.push(Step { step: change.status.as_str().to_string(), at: change.at });
            }
        });
        self.statuses.update(|s| {
            let entry = s.entry(change.order_id).or_insert(change.status);
            if rank(change.status) > rank(*entry) {
                *entry = change.status;
            }
        });
        if !known {
            self.refresh.update(|n| *n += 1);
        }
    }
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed::new()
    }
}

/// Whether a refund reason says the order's entry was dead-lettered.
pub fn is_dead_lettered(reason: &str) -> bool {
    reason.starts_with("processing failed")
}

fn rank(status: OrderStatus) -> u8 {
    match status {
        OrderStatus::Pending => 0,
        OrderStatus::Completed => 1,
        OrderStatus::Fulfilled | OrderStatus::Refunded => 2,
    }
}

/// Opens the event stream (in the browser only) and feeds `feed`.
#[cfg(feature = "hydrate")]
pub fn connect(feed: LiveFeed) {
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    let Ok(source) = web_sys::EventSource::new(EVENTS_PATH) else {
        leptos::logging::error!("could not open the live order feed");
        return;
    };
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
        let Some(data) = event.data().as_string() else {
            return;
        };
        match serde_json::from_str::<StatusChange>(&data) {
            Ok(change) => feed.apply(change),
            Err(error) => leptos::logging::warn!("ignoring a malformed live event: {error}"),
        }
    });
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        feed.connected.set(true);
        // Catch up on whatever changed before the stream was open.
        feed.refresh.update(|n| *n += 1);
        feed.dead_letters_changed.update(|n| *n += 1);
    });
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| feed.connected.set(false));
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The feed lives as long as the page.
    on_message.forget();
    on_open.forget();
    on_error.forget();
    std::mem::forget(source);
}
