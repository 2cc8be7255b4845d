//! The live order feed in the browser: an `EventSource` on `/api/events`.
//!
//! Status changes update the page in place: order statuses, stock levels,
//! and, through a listener, the order list and its counts (which fetch the
//! one order they need, never a whole list). Product changes (`product`
//! events) move stock and, for a product created or deleted, fetch the
//! lists of products again. The browser reconnects by
//! itself and sends `Last-Event-ID` (the page sends it as `?last_event_id=`
//! when it opens a new stream), so the server replays whatever was missed
//! (or, when that is too much, sends `reload`): a restart of the server
//! under an open page loses nothing and reloads nothing. The lists reload
//! when the feed first connects (to catch up on what changed since the page
//! was rendered), on `reload`, and once when the shop comes back after an
//! outage.

use std::collections::{HashMap, HashSet};

use domain::events::refund_reason::RefundCause;
use domain::{Id, OrderEvent, OrderStatus, ProductChange, ProductEvent, StatusChange, Step};
use leptos::prelude::*;

use crate::api::ShopError;

/// The path of the server-sent events endpoint.
pub const EVENTS_PATH: &str = "/api/events";

/// The page's link to the live feed, as the header shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not connected yet.
    Connecting,
    Live,
    /// It was live and lost the connection (the server restarts, say): the
    /// browser is connecting again, and will resume where it was.
    Reconnecting,
}

impl Link {
    pub fn label(self) -> &'static str {
        match self {
            Link::Connecting => "connecting…",
            Link::Live => "live",
            Link::Reconnecting => "reconnecting…",
        }
    }
}

/// One change from the feed, as a listener hears it.
#[derive(Debug, Clone)]
pub struct Heard {
    pub change: StatusChange,
    /// The furthest status the feed had reported for that order before, if any.
    pub before: Option<OrderStatus>,
}

/// What the feed has told us so far, shared by the page's components.
#[derive(Clone, Copy)]
pub struct LiveFeed {
    /// Latest known status of each order that changed since the page loaded.
    pub statuses: RwSignal<HashMap<Id, OrderStatus>>,
    /// Why each order refunded since the page loaded was refunded.
    pub refund_reasons: RwSignal<HashMap<Id, String>>,
    /// Latest known stock of each product that moved since the lists were
    /// loaded; a signal per product, so a change re-renders only the places
    /// that show that product (a thousand options in the order form).
    stock: StoredValue<HashMap<Id, ArcRwSignal<Option<u32>>>>,
    /// Bumped when the lists should be fetched again: the feed (re)connected,
    /// or the shop is back after an outage.
    pub refresh: RwSignal<u64>,
    /// Every step the feed reported for each order since the page loaded, oldest first.
    pub steps: RwSignal<HashMap<Id, Vec<Step>>>,
    /// Bumped when a product was created or deleted, in this page or any
    /// other: the lists of products are fetched again (at most a few times a
    /// second, however many changes come).
    pub catalogue: RwSignal<u64>,
    /// A catalogue change heard and not yet passed on to `catalogue`.
    catalogue_due: StoredValue<bool>,
    /// Products deleted since the page loaded: hidden from every list at once.
    pub deleted: RwSignal<HashSet<Id>>,
    /// Bumped when the number of dead letters may have changed.
    pub dead_letters_changed: RwSignal<u64>,
    /// Whether the event stream is connected, and was before.
    pub link: RwSignal<Link>,
    /// The id of the last event the stream brought: where it resumes.
    pub last_event_id: StoredValue<Option<String>>,
    /// Whether the shop answered "unavailable"; the page then asks every
    /// second until it is back, and reloads its lists once.
    pub outage: RwSignal<bool>,
    /// Told of every change after the maps above: the order list, while it
    /// is on the page.
    pub listener: StoredValue<Option<Callback<Heard>>>,
}

impl LiveFeed {
    pub fn new() -> LiveFeed {
        LiveFeed {
            statuses: RwSignal::new(HashMap::new()),
            refund_reasons: RwSignal::new(HashMap::new()),
            stock: StoredValue::new(HashMap::new()),
            refresh: RwSignal::new(0),
            steps: RwSignal::new(HashMap::new()),
            catalogue: RwSignal::new(0),
            catalogue_due: StoredValue::new(false),
            deleted: RwSignal::new(HashSet::new()),
            dead_letters_changed: RwSignal::new(0),
            link: RwSignal::new(Link::Connecting),
            last_event_id: StoredValue::new(None),
            outage: RwSignal::new(false),
            listener: StoredValue::new(None),
        }
    }

    /// The status to show: the further along of the listed and the live one
    /// (statuses only move forward, so the further one is the newer).
    pub fn status_of(&self, order_id: &str, listed: OrderStatus) -> OrderStatus {
        match self.statuses.with(|s| s.get(order_id).copied()) {
            Some(live) if live.progress() > listed.progress() => live,
            _ => listed,
        }
    }

    /// A product's stock: the latest the feed (or a restock) reported, else the listed one.
    pub fn stock_of(&self, product_id: &Id, listed: u32) -> u32 {
        self.stock_cell(product_id).get().unwrap_or(listed)
    }

    /// Records a product's stock as it is now.
    pub fn set_stock(&self, product_id: &Id, stock: u32) {
        self.stock_cell(product_id).set(Some(stock));
    }

    fn stock_cell(&self, product_id: &Id) -> ArcRwSignal<Option<u32>> {
        self.stock
            .try_update_value(|cells| cells.entry(product_id.clone()).or_insert_with(|| ArcRwSignal::new(None)).clone())
            .unwrap_or_else(|| ArcRwSignal::new(None))
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

    /// Applies one change from the feed, then tells the listener.
    pub fn apply(&self, change: StatusChange) {
        if let (OrderStatus::Refunded, Some(reason)) = (change.status, &change.reason) {
            if is_dead_lettered(reason) {
                self.dead_letters_changed.update(|n| *n += 1);
            }
            self.refund_reasons.update(|r| {
                r.insert(change.order_id.clone(), reason.clone());
            });
        }
        if let Some(stock) = change.stock {
            self.set_stock(&change.product_id, stock);
        }
        self.steps.update(|s| {
            let steps = s.entry(change.order_id.clone()).or_default();
            if !steps.iter().any(|step| step.step == change.status.as_str()) {
                steps.push(Step { step: change.status.as_str().to_string(), at: change.at });
            }
        });
        let mut before = None;
        self.statuses.update(|s| {
            before = s.get(&change.order_id).copied();
            let entry = s.entry(change.order_id.clone()).or_insert(change.status);
            if change.status.progress() > entry.progress() {
                *entry = change.status;
            }
        });
        if let Some(listener) = self.listener.get_value() {
            listener.run(Heard { change, before });
        }
    }

    /// Applies one product's change from the feed: its stock, and for a
    /// product created or deleted, the lists of products.
    pub fn apply_product(&self, change: ProductChange) {
        if let Some(stock) = change.stock {
            self.set_stock(&change.product_id, stock);
        }
        if change.event == ProductEvent::Deleted {
            self.deleted.update(|deleted| {
                deleted.insert(change.product_id.clone());
            });
        }
        if change.event.changes_the_catalogue() && !self.catalogue_due.get_value() {
            self.catalogue_due.set_value(true);
            let feed = *self;
            let bump = move || {
                feed.catalogue_due.set_value(false);
                feed.catalogue.update(|n| *n += 1);
            };
            #[cfg(feature = "hydrate")]
            set_timeout(bump, CATALOGUE_SETTLE);
            #[cfg(not(feature = "hydrate"))]
            bump();
        }
    }

    /// Whether the feed reported the product deleted.
    pub fn is_deleted(&self, product_id: &str) -> bool {
        self.deleted.with(|deleted| deleted.contains(product_id))
    }

    /// Fetches every list again, once: what the page knew may be stale.
    pub fn reload(&self) {
        // The lists bring the stock as it is now; a stock the feed reported
        // earlier must not hide a restock made meanwhile.
        self.stock.with_value(|cells| cells.values().for_each(|cell| cell.set(None)));
        self.refresh.update(|n| *n += 1);
    }

    /// Takes note of a failed call: when the shop is unavailable, the page
    /// says so and waits for it to come back (see [`watch_outages`]).
    pub fn note(&self, error: &ShopError) {
        if error.is_unavailable() && !self.outage.get_untracked() {
            self.outage.set(true);
        }
    }

    /// The text of an action's error to show: an "unavailable" one only
    /// while the outage lasts, so it goes away when the shop is back.
    pub fn error_to_show(&self, error: &ShopError) -> Option<String> {
        (!error.is_unavailable() || self.outage.get()).then(|| error.to_string())
    }
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed::new()
    }
}

/// Whether a refund reason says the order's entry was dead-lettered.
pub fn is_dead_lettered(reason: &str) -> bool {
    RefundCause::of(reason) == Some(RefundCause::ProcessingFailed)
}

/// Where an order came from, as far as one change of it tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A new order: it had no status before.
    New,
    /// It was in this status.
    From(OrderStatus),
    /// One of several statuses (a refund after processing failed for good
    /// comes from pending or completed): the order itself tells.
    Unknown,
}

/// The status an order left with `change`, by the domain's order rules:
/// the events that lead to the new status, and the statuses they apply from.
pub fn came_from(change: &StatusChange) -> Origin {
    if change.status == OrderStatus::INITIAL {
        return Origin::New;
    }
    let given_up = change.reason.as_deref().is_some_and(is_dead_lettered);
    let mut from: Vec<OrderStatus> = OrderEvent::ALL
        .into_iter()
        .filter(|event| event.leads_to() == change.status)
        // A refund says whether processing failed for good or the warehouse refunded.
        .filter(|event| change.status != OrderStatus::Refunded || given_up == (*event == OrderEvent::GivenUp))
        .flat_map(|event| event.applies_from().iter().copied())
        .collect();
    from.sort_by_key(|s| s.progress());
    from.dedup();
    match from.as_slice() {
        [only] => Origin::From(*only),
        _ => Origin::Unknown,
    }
}

/// Where a new event stream asks to start: after `last_event_id`, when the
/// page has one (an `EventSource` cannot set the `Last-Event-ID` header),
/// else after what changed before `since` (when the server rendered the
/// page, see [`RENDERED_AT`]), else from now.
pub fn events_url(last_event_id: Option<&str>, since: Option<u64>) -> String {
    match (last_event_id, since) {
        (None, None) => EVENTS_PATH.to_string(),
        (None, Some(ms)) => format!("{EVENTS_PATH}?since={ms}"),
        (Some(id), _) => {
            let mut url = format!("{EVENTS_PATH}?last_event_id=");
            for byte in id.bytes() {
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    url.push(char::from(byte));
                } else {
                    url.push_str(&format!("%{byte:02X}"));
                }
            }
            url
        }
    }
}

/// Opens the event stream (in the browser only) and feeds `feed`. The
/// browser reconnects by itself after a dropped connection; when the server
/// refused the stream (too many from this address, or the feed is full, or
/// a proxy's 502 while the server restarts) the browser gives up, so this
/// opens a new one after a pause, from where the last one was.
#[cfg(feature = "hydrate")]
pub fn connect(feed: LiveFeed) {
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    // Until the first stream brought an id: from when the page was rendered,
    // so the server replays what changed since its lists were read.
    let since = rendered_at();
    let url = events_url(feed.last_event_id.get_value().as_deref(), since);
    let Ok(source) = web_sys::EventSource::new(&url) else {
        leptos::logging::error!("could not open the live order feed");
        return;
    };
    // Every event with an id moves the place the stream resumes from, as
    // the browser's own `Last-Event-ID` does.
    let note_id = move |event: &web_sys::MessageEvent| {
        let id = event.last_event_id();
        if !id.is_empty() {
            feed.last_event_id.set_value(Some(id));
        }
    };
    // An event whose data is a `T` in JSON, which `apply` applies.
    fn decoded<T: serde::de::DeserializeOwned>(
        note_id: impl Fn(&web_sys::MessageEvent) + 'static,
        what: &'static str,
        apply: impl Fn(T) + 'static,
    ) -> Closure<dyn FnMut(web_sys::MessageEvent)> {
        Closure::new(move |event: web_sys::MessageEvent| {
            note_id(&event);
            let Some(data) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str::<T>(&data) {
                Ok(change) => apply(change),
                Err(error) => leptos::logging::warn!("ignoring a malformed {what}: {error}"),
            }
        })
    }
    let on_message = decoded(note_id, "live event", move |change: StatusChange| feed.apply(change));
    // The server could not replay everything this page missed: fetch the lists again.
    let on_reload = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
        note_id(&event);
        feed.reload();
    });
    let on_product = decoded(note_id, "product event", move |change: ProductChange| feed.apply_product(change));
    let on_subscribed =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| note_id(&event));
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        feed.link.set(Link::Live);
        // A stream that resumes (from an id, or from when the page was
        // rendered) gets what it missed from the server; one that starts
        // afresh catches up on what changed before it was open.
        if feed.last_event_id.get_value().is_none() && since.is_none() {
            feed.reload();
        }
        feed.dead_letters_changed.update(|n| *n += 1);
    });
    let closed = source.clone();
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        feed.link.update(|link| {
            if *link == Link::Live {
                *link = Link::Reconnecting;
            }
        });
        if closed.ready_state() == web_sys::EventSource::CLOSED {
            set_timeout(move || connect(feed), RECONNECT_AFTER);
        }
    });
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let _ = source.add_event_listener_with_callback("reload", on_reload.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("product", on_product.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("subscribed", on_subscribed.as_ref().unchecked_ref());
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The feed lives as long as the page.
    on_message.forget();
    on_reload.forget();
    on_subscribed.forget();
    on_product.forget();
    on_open.forget();
    on_error.forget();
    std::mem::forget(source);
}

/// The name of the `<meta>` whose content is when the server began to
/// render the page (milliseconds since the epoch), before it read the
/// page's lists: the page's first event stream starts there, so the server
/// replays what changed since, rather than the page fetching every list
/// again once hydrated (four round trips, as the page becomes usable).
pub const RENDERED_AT: &str = "stockflow-rendered-at";

/// When the server rendered this page (see [`RENDERED_AT`]).
#[cfg(feature = "hydrate")]
fn rendered_at() -> Option<u64> {
    let meta = leptos::prelude::document().query_selector(&format!("meta[name={RENDERED_AT}]")).ok()??;
    meta.get_attribute("content")?.parse().ok()
}

/// How long the page gathers catalogue changes before it fetches the
/// lists of products again: a burst of them costs one fetch.
#[cfg(feature = "hydrate")]
const CATALOGUE_SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

/// How long the page waits before it asks again for a live feed the server
/// refused.
#[cfg(feature = "hydrate")]
const RECONNECT_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// While the shop is unavailable, asks every second whether it is back;
/// once it is, clears the outage and reloads the lists, once.
#[cfg(feature = "hydrate")]
pub fn watch_outages(feed: LiveFeed) {
    fn ask_soon(feed: LiveFeed) {
        set_timeout(
            move || {
                leptos::task::spawn_local(async move {
                    match crate::api::shop_ready().await {
                        Ok(()) => {
                            feed.outage.set(false);
                            feed.reload();
                        }
                        Err(_) => ask_soon(feed),
                    }
                })
            },
            std::time::Duration::from_secs(1),
        );
    }
    Effect::new(move |was: Option<bool>| {
        let now = feed.outage.get();
        if now && was != Some(true) {
            ask_soon(feed);
        }
        now
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: OrderStatus, reason: Option<&str>) -> StatusChange {
        StatusChange {
            order_id: "01JD3V6Q8ZK0M9X4W2T7Y5B1CA".parse().unwrap(),
            product_id: "01JD3V6Q8ZK0M9X4W2T7Y5B1CE".parse().unwrap(),
            status,
            stock: None,
            reason: reason.map(str::to_string),
            at: 1,
        }
    }

    #[test]
    fn a_new_stream_asks_for_what_followed_the_last_event_id() {
        assert_eq!(events_url(None, None), "/api/events");
        assert_eq!(events_url(Some("k1:0,1k.2,,3"), Some(5)), "/api/events?last_event_id=k1%3A0%2C1k.2%2C%2C3");
        assert_eq!(events_url(None, Some(1_700_000_000_000)), "/api/events?since=1700000000000");
    }

    #[test]
    fn a_change_tells_where_the_order_came_from_unless_processing_failed() {
        use OrderStatus::*;
        assert_eq!(came_from(&change(Pending, None)), Origin::New);
        assert_eq!(came_from(&change(Completed, None)), Origin::From(Pending));
        assert_eq!(came_from(&change(Fulfilled, None)), Origin::From(Completed));
        assert_eq!(came_from(&change(Refunded, Some("insufficient stock"))), Origin::From(Completed));
        assert_eq!(came_from(&change(Refunded, Some("processing failed: delivered 6 times"))), Origin::Unknown);
    }
}
