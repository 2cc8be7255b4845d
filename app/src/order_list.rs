//! The live order list: newest first, a page at a time ("Load more
//! orders"), filtered by status (links that show how many orders each status
//! holds, counted live) and searched by order id or product name; the
//! filter and the search are in the page's address (`?status=&q=`), so they
//! work before the page is hydrated and a link shares them.
//!
//! The feed keeps it current without ever fetching a whole list again. A
//! change of an order on screen updates it in place and is announced. Any
//! change moves the counts (the status it left told by the feed's earlier
//! changes, else by the change itself: [`came_from`]). An order that joins
//! what the list shows (a new order, or one entering the filtered status,
//! that the search admits and that is newer than the oldest row loaded) is
//! fetched by id, a batch at a time, and put in its place. Past
//! [`MAX_LIVE_ROWS`] such rows the list stops growing and offers to show the
//! newer orders instead.

use std::collections::{HashMap, HashSet};

use domain::{Id, OrderStatus, StatusChange};
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::announce::Announcer;
use crate::api::{
    orders_page, orders_with_ids, status_counts, OrderCounts, OrderDetail, OrderPage, PlaceOrder, ShopError,
    MAX_ORDERS_BY_ID,
};
use crate::counts::{index, CountLog, Move};
use crate::live::{came_from, Heard, LiveFeed, Origin};
use crate::paging::{merged, LoadMore, More};
use crate::util::{grouped, query_string, short_id};

/// New rows the feed may add to one listing before the list offers a reload instead.
pub const MAX_LIVE_ROWS: usize = 100;

/// What the order list shows, from the page's address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderQuery {
    /// `?status=`: only orders in this status.
    pub status: Option<OrderStatus>,
    /// `?q=`: an order id, or part of a product's name.
    pub search: String,
}

impl OrderQuery {
    /// Whether `change` makes its order join what this query shows: a new
    /// order, or, with a status filter, an order entering that status.
    fn joins(&self, change: &StatusChange) -> bool {
        change.status == self.status.unwrap_or(OrderStatus::INITIAL)
    }
}

/// One listing: what it shows, as of which "Show newer orders". The pages
/// loaded and the rows the feed added stay with it when its first page is
/// fetched again (the feed reconnected): they are still in the list.
type Listing = (OrderQuery, u64);

type Loaded = (Listing, Result<OrderPage, ShopError>);

/// An order to fetch: to show it, and/or to learn the status it left.
#[derive(Debug, Clone)]
struct Wanted {
    id: Id,
    /// The listing to show it in.
    show: Option<Listing>,
    /// The change whose previous status only the order can tell.
    count: Option<StatusChange>,
}

/// What the parts of the list share; all of it is `Copy`.
#[derive(Clone, Copy)]
struct Orders {
    feed: LiveFeed,
    announcer: Announcer,
    listing: Resource<Loaded>,
    /// Rows beyond the first page: pages loaded, and orders the feed brought.
    more: RwSignal<More<Listing, OrderDetail>>,
    /// Orders the feed brought to a listing, and newer ones it did not add.
    arrivals: RwSignal<Arrivals>,
    /// The orders on screen, with their status as listed.
    shown: StoredValue<HashMap<Id, OrderStatus>>,
    counts: Resource<Result<OrderCounts, ShopError>>,
    log: RwSignal<CountLog>,
    queue: StoredValue<Vec<Wanted>>,
    fetching: StoredValue<bool>,
    /// Bumped by "Show newer orders".
    reload: RwSignal<u64>,
}

#[derive(Debug, Clone, Default)]
struct Arrivals {
    of: Option<Listing>,
    /// The orders the feed brought (or is bringing), at most [`MAX_LIVE_ROWS`].
    added: HashSet<Id>,
    /// Newer orders left out.
    waiting: usize,
}

impl Arrivals {
    fn of(&mut self, listing: &Listing) -> &mut Arrivals {
        if self.of.as_ref() != Some(listing) {
            *self = Arrivals { of: Some(listing.clone()), ..Arrivals::default() };
        }
        self
    }
}

impl Orders {
    /// One change from the feed.
    fn hear(self, Heard { change, before }: Heard) {
        // The counts: from the status the feed saw before, else the change's own word.
        let origin = before.map(Origin::From).unwrap_or_else(|| came_from(&change));
        let mut wanted = Wanted { id: change.order_id.clone(), show: None, count: None };
        match origin {
            Origin::From(from) if change.status.progress() <= from.progress() => {} // heard before
            Origin::From(from) => self.count(change.at, Some(from), change.status),
            Origin::New => self.count(change.at, None, change.status),
            Origin::Unknown => wanted.count = Some(change.clone()),
        }

        let listed = self.shown.with_value(|shown| shown.get(&change.order_id).copied());
        if let Some(listed) = listed {
            let was = before.filter(|b| b.progress() > listed.progress()).unwrap_or(listed);
            if change.status.progress() > was.progress() {
                self.announce(&change);
            }
        } else if let Some(listing) = self.belongs(&change) {
            wanted.show = self.make_room(&listing, &change.order_id).then_some(listing);
        }
        if wanted.show.is_some() || wanted.count.is_some() {
            self.fetch(wanted);
        }
    }

    /// Whether to fetch an order that joins `listing`: not when it is on its
    /// way already, nor past [`MAX_LIVE_ROWS`] (it then counts as waiting).
    /// Counted when asked for, so that orders on their way count too.
    fn make_room(self, listing: &Listing, order_id: &Id) -> bool {
        let mut fetch = false;
        self.arrivals.update(|a| {
            let arrivals = a.of(listing);
            if arrivals.added.contains(order_id) {
                return;
            }
            if arrivals.added.len() < MAX_LIVE_ROWS {
                arrivals.added.insert(order_id.clone());
                fetch = true;
            } else {
                arrivals.waiting += 1;
            }
        });
        fetch
    }

    fn count(self, at: u64, from: Option<OrderStatus>, to: OrderStatus) {
        let snapshot_at = self.counts.with_untracked(|c| c.as_ref().and_then(|r| r.as_ref().ok()).map(|s| s.at));
        self.log.update(|log| log.record(snapshot_at, Move { at, from, to }));
    }

    fn announce(self, change: &StatusChange) {
        let short = short_id(&change.order_id);
        let text = match (&change.status, &change.reason) {
            (OrderStatus::Refunded, Some(reason)) => format!("Order {short} refunded: {reason}."),
            (status, _) => format!("Order {short} {status}."),
        };
        self.announcer.say(text);
    }

    /// The listing an order not on screen joins with `change`, if any: the
    /// change brings it into the listing's status (or it is new), the search
    /// admits it, and it is newer than the oldest row loaded.
    fn belongs(self, change: &StatusChange) -> Option<Listing> {
        self.listing.with_untracked(|loaded| {
            let (listing, Ok(page)) = loaded.as_ref()? else { return None };
            let within = self
                .more
                .with_untracked(|m| m.next_cursor(listing, page.next_cursor.as_ref()))
                .is_none_or(|oldest| change.order_id.as_str() > oldest.as_str());
            (listing.0.joins(change) && page.matched.admits(&change.order_id, &change.product_id) && within)
                .then(|| listing.clone())
        })
    }

    /// Fetches orders, a batch at a time, one batch in flight.
    fn fetch(self, wanted: Wanted) {
        self.queue.update_value(|queue| match queue.iter_mut().find(|w| w.id == wanted.id) {
            Some(queued) => {
                queued.show = queued.show.take().or(wanted.show);
                queued.count = queued.count.take().or(wanted.count);
            }
            None => queue.push(wanted),
        });
        self.fetch_next();
    }

    fn fetch_next(self) {
        if self.fetching.get_value() {
            return;
        }
        let batch: Vec<Wanted> = self
            .queue
            .try_update_value(|queue| {
                let take = queue.len().min(MAX_ORDERS_BY_ID);
                queue.drain(..take).collect()
            })
            .unwrap_or_default();
        if batch.is_empty() {
            return;
        }
        self.fetching.set_value(true);
        leptos::task::spawn_local(async move {
            let ids = batch.iter().map(|w| w.id.clone()).collect();
            match orders_with_ids(ids).await {
                Ok(found) => self.arrived(batch, found),
                Err(error) => self.feed.note(&error),
            }
            self.fetching.set_value(false);
            self.fetch_next();
        });
    }

    /// Orders fetched for `batch`: counted, and shown where they belong.
    fn arrived(self, batch: Vec<Wanted>, found: Vec<OrderDetail>) {
        for wanted in batch {
            let Some(row) = found.iter().find(|r| r.order.id == wanted.id) else { continue };
            if let Some(change) = &wanted.count {
                let completed = row.order.timeline.iter().any(|s| s.step == OrderStatus::Completed.as_str());
                let from = if completed { OrderStatus::Completed } else { OrderStatus::Pending };
                self.count(change.at, Some(from), change.status);
            }
            let current = self.listing.with_untracked(|l| l.as_ref().map(|(listing, _)| listing.clone()));
            let Some(listing) = wanted.show.filter(|l| Some(l) == current.as_ref()) else { continue };
            if self.shown.with_value(|shown| shown.contains_key(&row.order.id)) {
                continue;
            }
            self.more.update(|m| m.add_rows(&listing, vec![row.clone()]));
        }
    }
}

/// The order list with its status filter, its counts and its search.
#[component]
pub fn OrderList(place_order: ServerAction<PlaceOrder>) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let announcer = expect_context::<Announcer>();
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| OrderQuery {
            status: p.get("status").and_then(|s| s.parse().ok()),
            search: p.get("q").unwrap_or_default().trim().to_string(),
        })
    });
    let reload = RwSignal::new(0u64);
    let listing = Resource::new(
        move || ((query.get(), reload.get()), feed.refresh.get()),
        |(listing, _): (Listing, u64)| async move {
            let (status, search) = (listing.0.status.map(|s| s.to_string()), Some(listing.0.search.clone()));
            let page = orders_page(status, search, None).await;
            (listing, page)
        },
    );
    let orders = Orders {
        feed,
        announcer,
        listing,
        more: RwSignal::new(More::default()),
        arrivals: RwSignal::new(Arrivals::default()),
        shown: StoredValue::new(HashMap::new()),
        counts: Resource::new(move || feed.refresh.get(), |_| status_counts()),
        log: RwSignal::new(CountLog::default()),
        queue: StoredValue::new(Vec::new()),
        fetching: StoredValue::new(false),
        reload,
    };
    feed.listener.set_value(Some(Callback::new(move |heard| orders.hear(heard))));
    on_cleanup(move || feed.listener.set_value(None));
    Effect::new(move |_| {
        if let Some((_, Err(error))) = listing.get() {
            feed.note(&error);
        }
    });
    Effect::new(move |_| {
        if let Some(Err(error)) = orders.counts.get() {
            feed.note(&error);
        }
    });
    // An order placed here joins the list at once, before the feed reports it.
    Effect::new(move |_| {
        if let Some(Ok(order)) = place_order.value().get() {
            let change = StatusChange {
                order_id: order.id.clone(),
                product_id: order.product_id.clone(),
                status: order.status,
                stock: None,
                reason: None,
                at: order.created_at,
            };
            let shown = orders.shown.with_value(|s| s.contains_key(&order.id));
            if let Some(listing) = orders.belongs(&change).filter(|l| !shown && orders.make_room(l, &order.id)) {
                orders.fetch(Wanted { id: order.id, show: Some(listing), count: None });
            }
        }
    });

    view! {
        <section class="panel wide" id="orders" tabindex="-1" aria-labelledby="orders-title" data-testid="orders-panel">
            <h2 id="orders-title">"Orders"</h2>
            <StatusFilter orders query/>
            <OrderSearch query/>
            <Transition fallback=|| view! { <p class="muted">"Loading orders…"</p> }>
                {move || Suspend::new(async move {
                    let (shown, page) = listing.await;
                    match page {
                        Err(error) => {
                            orders.shown.set_value(HashMap::new());
                            view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any()
                        }
                        Ok(page) => view! { <OrderTable orders listing=shown page/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// "All", "Pending", ... with their live counts: links that filter the list.
#[component]
fn StatusFilter(orders: Orders, query: Memo<OrderQuery>) -> impl IntoView {
    let params = use_query_map();
    let href = move |status: Option<OrderStatus>| {
        let (search, product) = params.with(|p| (p.get("q").unwrap_or_default(), p.get("product").unwrap_or_default()));
        let status = status.map(|s| s.as_str()).unwrap_or_default();
        format!("/{}", query_string(&[("status", status), ("q", &search), ("product", &product)]))
    };
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let snapshot = StoredValue::new(orders.counts.await.ok());
                let count = move |status: Option<OrderStatus>| {
                    snapshot.with_value(|snapshot| {
                        let snapshot = snapshot.as_ref()?;
                        let counts = orders.log.with(|log| log.counts(snapshot));
                        Some(grouped(status.map_or(counts.iter().sum(), |s| counts[index(s)])))
                    })
                };
                let choices = std::iter::once(None).chain(OrderStatus::ALL.into_iter().map(Some));
                view! {
                    <nav class="filters" aria-label="Orders by status" data-testid="status-filter">
                        {choices.map(|status| {
                            let label = status.map_or("All".to_string(), |s| capitalized(s.as_str()));
                            let testid = format!("filter-{}", status.map_or("all", |s| s.as_str()));
                            let current = move || query.with(|q| q.status == status);
                            view! {
                                <a href=move || href(status) data-noscroll="true" data-testid=testid
                                    class:current=current aria-current=move || current().then_some("true")>
                                    {label} " " <span class="count">{move || count(status)}</span>
                                </a>
                            }
                        }).collect_view()}
                    </nav>
                }
            })}
        </Transition>
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The search box: an order id, or part of a product's name.
#[component]
fn OrderSearch(query: Memo<OrderQuery>) -> impl IntoView {
    let params = use_query_map();
    let kept = move |name: &'static str| move || params.with(|p| p.get(name).unwrap_or_default());
    view! {
        <Form method="GET" action="/" noscroll=true attr:class="search" attr:role="search" attr:aria-label="Orders">
            <input type="hidden" name="status" prop:value=kept("status")/>
            <input type="hidden" name="product" prop:value=kept("product")/>
            <label>"Find orders"
                <input type="search" name="q" placeholder="Order id (8+ characters) or product name"
                    prop:value=move || query.with(|q| q.search.clone())/>
            </label>
            <button type="submit" class="secondary" aria-label="Search orders">"Search"</button>
            {move || (!query.with(|q| q.search.is_empty())).then(|| {
                let href = format!("/{}", query_string(&[("status", &kept("status")()), ("product", &kept("product")())]));
                view! { <a href=href data-noscroll="true" class="clear">"Show every order"</a> }
            })}
        </Form>
    }
}

/// The rows of one listing: its first page, the pages loaded after it and
/// the orders the feed brought; "Load more orders" at the end.
#[component]
fn OrderTable(orders: Orders, listing: Listing, page: OrderPage) -> AnyView {
    let OrderPage { rows: first, next_cursor, narrowed, .. } = page;
    let load_more = Action::new(move |(listing, cursor): &(Listing, String)| {
        let (listing, cursor) = (listing.clone(), cursor.clone());
        async move {
            let (status, search) = (listing.0.status.map(|s| s.to_string()), Some(listing.0.search.clone()));
            let page = orders_page(status, search, Some(cursor)).await;
            (listing, page)
        }
    });
    Effect::new(move |_| match load_more.value().get() {
        Some((listing, Ok(page))) => orders.more.update(|m| m.add_page(&listing, page.rows, page.next_cursor)),
        Some((_, Err(error))) => orders.feed.note(&error),
        None => {}
    });
    let more_error =
        move || load_more.value().get().and_then(|(_, r)| r.err()).and_then(|e| orders.feed.error_to_show(&e));
    let none_first = first.is_empty();
    let rows = {
        let listing = listing.clone();
        move || {
            let rows = orders.more.with(|m| merged(&first, m.rows(&listing), |r: &OrderDetail| &r.order.id));
            orders.shown.set_value(rows.iter().map(|r| (r.order.id.clone(), r.order.status)).collect());
            rows
        }
    };
    let next = {
        let listing = listing.clone();
        Memo::new(move |_| orders.more.with(|m| m.next_cursor(&listing, next_cursor.as_ref())))
    };
    let waiting = {
        let listing = listing.clone();
        move || orders.arrivals.with(|a| if a.of.as_ref() == Some(&listing) { a.waiting } else { 0 })
    };
    let everything = listing.0 == OrderQuery::default();
    let empty = {
        let listing = listing.clone();
        Memo::new(move |_| none_first && orders.more.with(|m| m.len(&listing) == 0))
    };
    view! {
        {narrowed.then(|| view! {
            <p class="muted" data-testid="search-narrowed">
                {format!(
                    "Showing the orders of the {} newest products whose names match; add words to narrow the search.",
                    domain::search::MAX_MATCHED_PRODUCTS
                )}
            </p>
        })}
        {move || (waiting() > 0).then(|| view! {
            <p class="more">
                <button type="button" class="secondary" data-testid="show-newer"
                    on:click=move |_| orders.reload.update(|n| *n += 1)>
                    {format!("Show {} newer orders", grouped(waiting() as u64))}
                </button>
            </p>
        })}
        {move || empty.get().then(|| if everything {
            view! { <p class="muted" data-testid="no-orders">"No orders yet."</p> }
        } else {
            view! { <p class="muted" data-testid="no-orders">"No orders match."</p> }
        })}
        <table class="orders" data-testid="orders" class:hidden=empty>
            <thead><tr>
                <th>"Order"</th><th>"Product"</th><th class="num">"Qty"</th>
                <th class="num">"Price"</th><th class="num">"Fee"</th><th class="num">"Total"</th><th>"Status"</th>
            </tr></thead>
            <tbody>
                <For each=rows key=|row| row.order.id.clone() let:row>
                    <OrderRow row/>
                </For>
            </tbody>
        </table>
        <LoadMore label="Load more orders" next pending=load_more.pending()
            load=move |cursor| { load_more.dispatch((listing.clone(), cursor)); }/>
        {move || more_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
    }
    .into_any()
}

#[component]
fn OrderRow(row: OrderDetail) -> impl IntoView {
    let feed = expect_context::<LiveFeed>();
    let OrderDetail { order, product_name } = row;
    let name = product_name.unwrap_or_else(|| format!("deleted product {}", short_id(&order.product_id)));
    let (id, listed) = (order.id.clone(), order.status);
    let (reason_id, listed_reason) = (order.id.clone(), order.refund_reason.clone());
    let status = Signal::derive(move || feed.status_of(&id, listed));
    let (href, link_label, short) =
        (format!("/order/{}", order.id), format!("Order {}", order.id), short_id(&order.id));
    let refund_reason = move || {
        (status.get() == OrderStatus::Refunded)
            .then(|| feed.refund_reason_of(&reason_id, listed_reason.as_deref()))
            .flatten()
    };
    view! {
        <tr data-order-id=order.id.to_string()>
            <td><a href=href title=order.id.to_string() aria-label=link_label><code>{short}</code></a></td>
            <td>{name}</td>
            <td class="num">{order.quantity.get()}</td>
            <td class="num">{order.price.to_string()}</td>
            <td class="num">{order.fee.to_string()}</td>
            <td class="num">{order.total.to_string()}</td>
            <td>
                <span class=move || format!("status {}", status.get()) data-testid="order-status">
                    {move || status.get().to_string()}
                </span>
                {move || refund_reason().map(|r| view! { <small class="reason" data-testid="refund-reason">{r}</small> })}
            </td>
        </tr>
    }
}
