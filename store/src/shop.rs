//! The shop's service layer: products and orders.
//!
//! The REST API and the Leptos server functions both call these methods, so
//! validation, pricing and storage rules exist once.

use std::collections::HashMap;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use domain::page::MAX_LIMIT;
use domain::quantity::MAX_STOCK;
use domain::search::Query;
use domain::{quote, Cents, Id, NewProduct, Order, OrderStatus, Page, PageRequest, Product, Quantity, Restock};
use redis::AsyncCommands;
use tracing::Instrument;

use crate::admin::AdminGate;
use crate::config::Config;
use crate::connection::Redis;
use crate::durability::Durability;
use crate::error::{StoreError, StoreResult};
use crate::ids::new_id;
use crate::keys::{Layout, PartitionKeys};
use crate::merge::{self, Source};
use crate::partition::Partition;
use crate::placing::Placements;
use crate::records::{self, parse_order, parse_product, Fields};
use crate::telemetry;
use crate::{connection, now_ms, scripts};

/// Handle to the shop's state in Redis; cheap to clone.
///
/// Products are spread over the partitions; an order lives in its product's
/// partition. Reads by id go straight to the id's partition; lists merge
/// every partition's index by id.
#[derive(Clone)]
pub struct Shop {
    conn: Redis,
    layout: Layout,
    /// Spreads new products without an idempotency key over the partitions.
    next_partition: Arc<AtomicU64>,
    /// Prices of the products this process has seen, so that placing an
    /// order needs no read before its script (see [`Shop::price_of`]).
    prices: Arc<RwLock<HashMap<Id, Cents>>>,
    /// How long an idempotency key is remembered, in seconds.
    idempotency_window_secs: u64,
    admin: AdminGate,
    /// Saves new orders, those placed at the same time in a partition together.
    placements: Placements,
    /// The replicas a product's creation, restock or deletion must reach
    /// before it is acknowledged (`REDIS_MIN_REPLICAS`), as an order's must.
    durability: Durability,
    /// How long the `order-status` streams are kept, which carry the product
    /// changes the live feed relays (`STREAM_MAXLEN`).
    stream_maxlen: u64,
}

/// Names a product search checks at most in one call.
pub const SEARCH_SCAN_BUDGET: usize = 500;

/// Names a product search that must check them reads at a time.
const SEARCH_BATCH: usize = 100;

/// Product prices a process remembers at most (then it starts afresh).
const MAX_REMEMBERED_PRICES: usize = 100_000;

/// Which orders a list shows; the default shows all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only orders of these products.
    pub products: Option<Vec<Id>>,
    /// Only orders whose id starts with this (upper case; see [`domain::id::is_id_prefix`]).
    pub id_start: Option<String>,
}

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// An order placed, or found again by its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub order: Order,
    /// Whether an earlier request with the same idempotency key created it.
    pub replayed: bool,
}

/// A product created, or found again by its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedProduct {
    pub product: Product,
    /// Whether an earlier request with the same idempotency key created it.
    pub replayed: bool,
}

impl Shop {
    /// A shop on the Redis of `config`; connects lazily, so Redis may still be down.
    pub fn new(config: &Config) -> StoreResult<Shop> {
        let conn = connection::connect(&config.redis)?;
        Ok(Shop {
            admin: AdminGate::new(
                config.admin_token.as_ref(),
                config.admin_session_idle,
                conn.clone(),
                config.layout.clone(),
            ),
            conn: conn.clone(),
            layout: config.layout.clone(),
            next_partition: Arc::new(AtomicU64::new(u64::from(crate::now_ms() as u16))),
            prices: Arc::default(),
            idempotency_window_secs: config.idempotency_window.as_secs(),
            placements: Placements::new(
                conn.clone(),
                config.redis.clone(),
                config.layout.clone(),
                Durability::of(config),
                config.idempotency_window.as_secs(),
            ),
            durability: Durability::of(config),
            stream_maxlen: config.stream_maxlen,
        })
    }

    /// How a product change made now is announced to the live feed.
    fn announce(&self) -> scripts::Announce {
        scripts::Announce { maxlen: self.stream_maxlen, now: crate::now_ms() }
    }

    /// The shared connection, for callers that need raw access (health checks, feeds).
    pub fn connection(&self) -> Redis {
        self.conn.clone()
    }

    /// The key layout (namespace and partitions).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The check warehouse changes pass; the edges (REST, server functions) ask it.
    pub fn admin(&self) -> &AdminGate {
        &self.admin
    }

    /// Whether Redis answers for every partition (on a cluster: every
    /// partition's master).
    pub async fn ping(&self) -> StoreResult<()> {
        Ok(ping_partitions(&self.conn, &self.layout).await?)
    }

    /// Adds a product to the warehouse.
    pub async fn create_product(&self, new: NewProduct) -> StoreResult<Product> {
        Ok(self.create_product_once(new, None).await?.product)
    }

    /// [`Shop::create_product`] that creates at most one product per
    /// idempotency key within the idempotency window: a retry (even one
    /// racing the first attempt) gets the product the first attempt created,
    /// as it was then.
    pub async fn create_product_once(
        &self,
        new: NewProduct,
        idempotency_key: Option<&str>,
    ) -> StoreResult<CreatedProduct> {
        if let Some(key) = idempotency_key {
            validate_idempotency_key(key)?;
        }
        // A retry must find the first attempt's record: the key picks the partition.
        let partition = match idempotency_key {
            Some(key) => self.layout.partitions().of_text(key),
            None => self.layout.partitions().nth(self.next_partition.fetch_add(1, Ordering::Relaxed)),
        };
        let keys = self.layout.keys(partition);
        let product = Product { id: new_id(partition), name: new.name, price: new.price, quantity: new.quantity };
        let snapshot = serde_json::to_string(&product)
            .map_err(|e| StoreError::Corrupt { key: keys.product(&product.id), detail: e.to_string() })?;
        let idempotency = idempotency_key.map(|key| (key, self.idempotency_window_secs));
        let call = scripts::create_product(keys, &product, &snapshot, idempotency, Some(self.announce()));
        let created = |creation: &scripts::Creation| matches!(creation, scripts::Creation::Created);
        let creation = self.durability.run_if_written(&mut self.conn.clone(), call, created).await?;
        if let scripts::Creation::Replayed { product_json: earlier } = creation {
            let key = keys.product_idempotency(idempotency_key.unwrap_or_default());
            let earlier: Product = serde_json::from_str(&earlier)
                .map_err(|e| StoreError::Corrupt { key: key.clone(), detail: e.to_string() })?;
            if (&earlier.name, earlier.price, earlier.quantity) != (&product.name, product.price, product.quantity) {
                return Err(StoreError::invalid(
                    "Idempotency-Key",
                    "this key was already used for a different product; use a new key for a new product",
                ));
            }
            tracing::info!(product_id = %earlier.id, "product request replayed by idempotency key");
            return Ok(CreatedProduct { product: earlier, replayed: true });
        }
        self.remember_price(&product);
        tracing::info!(product_id = %product.id, name = %product.name, "product created");
        Ok(CreatedProduct { product, replayed: false })
    }

    /// Adds units to a product's stock, atomically and never past
    /// [`domain::quantity::MAX_STOCK`]; returns the product as it is now.
    pub async fn restock(&self, id: &Id, restock: Restock) -> StoreResult<Product> {
        let not_found = || StoreError::NotFound { kind: "product", id: id.to_string() };
        let keys = self.layout.keys_of_id(id);
        let call = scripts::restock(keys, id, restock.units(), MAX_STOCK, self.announce());
        let restocked = |restocking: &scripts::Restocking| matches!(restocking, scripts::Restocking::Restocked { .. });
        match self.durability.run_if_written(&mut self.conn.clone(), call, restocked).await? {
            scripts::Restocking::Restocked { stock } => {
                tracing::info!(product_id = %id, units = restock.units(), stock, "product restocked");
                self.product(id).await
            }
            scripts::Restocking::Ceiling { stock } => Err(restock
                .apply(stock)
                .err()
                .map(StoreError::from)
                .unwrap_or_else(|| StoreError::invalid("quantity", format!("stock would pass {MAX_STOCK}")))),
            scripts::Restocking::Missing => Err(not_found()),
        }
    }

    /// One product, or [`StoreError::NotFound`].
    pub async fn product(&self, id: &Id) -> StoreResult<Product> {
        let (key, fields) = self.hash("product", id, PartitionKeys::product).await?;
        parse_product(&key, &fields)
    }

    /// All products, oldest first (at most [`MAX_LIMIT`]).
    pub async fn products(&self) -> StoreResult<Vec<Product>> {
        Ok(self.products_page(&PageRequest::first(MAX_LIMIT)).await?.items)
    }

    /// One page of products, oldest first.
    pub async fn products_page(&self, request: &PageRequest) -> StoreResult<Page<Product>> {
        self.search_products("", request, false).await
    }

    /// Removes a product, from the search index too. Orders for it still in
    /// flight are refunded by the warehouse.
    pub async fn delete_product(&self, id: &Id) -> StoreResult<()> {
        let not_found = || StoreError::NotFound { kind: "product", id: id.to_string() };
        let keys = self.layout.keys_of_id(id);
        // A name never changes, so the prefixes read here are those it was indexed under.
        let name: Option<String> = self.conn.clone().hget(keys.product(id), records::product::NAME).await?;
        let name = name.ok_or_else(not_found)?;
        let call = scripts::delete_product(keys, id, &name, self.announce());
        if !self.durability.run_if_written(&mut self.conn.clone(), call, |deleted| *deleted).await? {
            return Err(not_found());
        }
        tracing::info!(product_id = %id, "product deleted");
        Ok(())
    }

    /// Prices and saves an order as `pending`, with its outbox entry, in one
    /// atomic step; the workers take it from there.
    pub async fn place_order(&self, product_id: &Id, quantity: Quantity) -> StoreResult<Order> {
        Ok(self.place_order_once(product_id, quantity, None).await?.order)
    }

    /// [`Shop::place_order`] that creates at most one order per idempotency
    /// key within the idempotency window: a retry (even one racing the first
    /// attempt) gets the order the first attempt created.
    pub async fn place_order_once(
        &self,
        product_id: &Id,
        quantity: Quantity,
        idempotency_key: Option<&str>,
    ) -> StoreResult<Placed> {
        if let Some(key) = idempotency_key {
            validate_idempotency_key(key)?;
        }
        // The order lives in its product's partition, so that the warehouse
        // sees both in one atomic step.
        let keys = self.layout.keys_of_id(product_id);
        // The price may change between reading and saving (a product deleted
        // and re-created never reuses an id, but prices may become editable);
        // the script refuses a stale price and we price again.
        for _ in 0..3 {
            let price = match self.price_of(product_id).await {
                Ok(price) => price,
                // The product may be gone while the order made for this key lives on.
                Err(StoreError::NotFound { .. }) if idempotency_key.is_some() => {
                    return match self.earlier_order(keys, idempotency_key.unwrap_or_default()).await? {
                        Some(order) => self.replayed(order, product_id, quantity),
                        None => Err(StoreError::NotFound { kind: "product", id: product_id.to_string() }),
                    };
                }
                Err(error) => return Err(error),
            };
            let quote = quote(price, quantity)
                .ok_or_else(|| StoreError::invalid("quantity", "the order's total is too large"))?;
            let now = now_ms();
            let order = Order {
                id: new_id(keys.partition()),
                product_id: product_id.clone(),
                price: quote.unit_price,
                fee: quote.fee,
                total: quote.total,
                quantity,
                status: OrderStatus::Pending,
                refund_reason: None,
                created_at: now,
                updated_at: now,
                timeline: vec![domain::Step { step: OrderStatus::INITIAL.to_string(), at: now }],
            };
            // The order's trace starts here (under the request's span, if
            // any); its context goes with the order to every later step.
            let span = telemetry::order_span("place order", None, &order.id, keys.partition());
            let placed = scripts::PlacedOrder {
                order_id: order.id.clone(),
                product_id: order.product_id.clone(),
                unit_price: order.price.0,
                quantity: quantity.get(),
                fee: order.fee.0,
                total: order.total.0,
                now,
                idempotency_key: idempotency_key.map(str::to_string),
                traceparent: span.in_scope(telemetry::traceparent),
            };
            let placement = self.placements.place(keys.partition(), placed).instrument(span.clone()).await?;
            match placement {
                scripts::Placement::Placed => {
                    let _placing = span.enter();
                    tracing::debug!(order_id = %order.id, product_id = %order.product_id, quantity = quantity.get(), total = %order.total, "order placed");
                    return Ok(Placed { order, replayed: false });
                }
                scripts::Placement::Replayed { order_id } => {
                    let earlier = self.order(&order_id).await?;
                    return self.replayed(earlier, product_id, quantity);
                }
                scripts::Placement::NoProduct => {
                    self.forget_price(product_id);
                    return Err(StoreError::NotFound { kind: "product", id: product_id.to_string() });
                }
                scripts::Placement::PriceChanged => self.forget_price(product_id),
                scripts::Placement::NotReplicated { online } => {
                    return Err(StoreError::TooFewReplicas { wanted: self.placements.min_replicas(), online });
                }
            }
        }
        Err(StoreError::invalid("product_id", "the product's price keeps changing; try again"))
    }

    /// A product's price, from this process's memory when it has seen it:
    /// the script that saves an order checks it against the product, so a
    /// price remembered wrongly costs a retry, never a wrong order.
    async fn price_of(&self, product_id: &Id) -> StoreResult<Cents> {
        if let Some(price) = self.prices.read().unwrap_or_else(|p| p.into_inner()).get(product_id) {
            return Ok(*price);
        }
        let product = self.product(product_id).await?;
        self.remember_price(&product);
        Ok(product.price)
    }

    fn remember_price(&self, product: &Product) {
        let mut prices = self.prices.write().unwrap_or_else(|p| p.into_inner());
        if prices.len() >= MAX_REMEMBERED_PRICES {
            prices.clear();
        }
        prices.insert(product.id.clone(), product.price);
    }

    fn forget_price(&self, product_id: &Id) {
        self.prices.write().unwrap_or_else(|p| p.into_inner()).remove(product_id);
    }

    async fn earlier_order(&self, keys: &PartitionKeys, idempotency_key: &str) -> StoreResult<Option<Order>> {
        let key = keys.order_idempotency(idempotency_key);
        let earlier: Option<String> = self.conn.clone().get(&key).await?;
        match earlier {
            Some(id) => {
                let id = Id::parse(&id).map_err(|e| StoreError::Corrupt { key, detail: e.to_string() })?;
                Ok(Some(self.order(&id).await?))
            }
            None => Ok(None),
        }
    }

    /// The earlier order for a key, provided the retry asks for the same thing.
    fn replayed(&self, order: Order, product_id: &Id, quantity: Quantity) -> StoreResult<Placed> {
        if order.product_id != *product_id || order.quantity != quantity {
            return Err(StoreError::invalid(
                "Idempotency-Key",
                "this key was already used for a different order; use a new key for a new order",
            ));
        }
        tracing::info!(order_id = %order.id, "order request replayed by idempotency key");
        Ok(Placed { order, replayed: true })
    }

    /// One order, or [`StoreError::NotFound`].
    pub async fn order(&self, id: &Id) -> StoreResult<Order> {
        match self.hash("order", id, PartitionKeys::order).await {
            Ok((key, fields)) => parse_order(&key, &fields),
            // An order migrated from before partitions may live where its id does not point.
            Err(StoreError::NotFound { .. }) => {
                let moved: Option<u16> = self.conn.clone().hget(self.layout.legacy_orders(), id.as_str()).await?;
                let not_found = StoreError::NotFound { kind: "order", id: id.to_string() };
                let Some(partition) = moved else { return Err(not_found) };
                let key = self.layout.keys(self.layout.partitions().nth(partition.into())).order(id);
                let fields = self.fields_at(&key).await?.ok_or(not_found)?;
                parse_order(&key, &fields)
            }
            Err(error) => Err(error),
        }
    }

    /// The hash of the `kind` with `id`, or [`StoreError::NotFound`].
    async fn hash(
        &self,
        kind: &'static str,
        id: &Id,
        key_of: fn(&PartitionKeys, &str) -> String,
    ) -> StoreResult<(String, Fields)> {
        let not_found = || StoreError::NotFound { kind, id: id.to_string() };
        let key = key_of(self.layout.keys_of_id(id), id);
        let fields = self.fields_at(&key).await?.ok_or_else(not_found)?;
        Ok((key, fields))
    }

    /// The fields of the hash at `key`, or `None` when there is none.
    async fn fields_at(&self, key: &str) -> StoreResult<Option<Fields>> {
        let fields: Fields = self.conn.clone().hgetall(key).await?;
        Ok((!fields.is_empty()).then_some(fields))
    }

    /// All orders, newest first (at most [`MAX_LIMIT`]).
    pub async fn orders(&self) -> StoreResult<Vec<Order>> {
        self.newest_orders(MAX_LIMIT).await
    }

    /// The newest `limit` orders, newest first.
    pub async fn newest_orders(&self, limit: usize) -> StoreResult<Vec<Order>> {
        let mut orders = Vec::new();
        let mut request = PageRequest::first(limit);
        while orders.len() < limit {
            request.limit = (limit - orders.len()).min(MAX_LIMIT);
            let page = self.orders_page(&request).await?;
            orders.extend(page.items);
            if page.next_cursor.is_none() {
                break;
            }
            // The cursor is the last order's id.
            request.after = orders.last().map(|order| order.id.clone());
        }
        Ok(orders)
    }

    /// One page of orders, newest first.
    pub async fn orders_page(&self, request: &PageRequest) -> StoreResult<Page<Order>> {
        self.orders_page_where(request, &OrderFilter::default()).await
    }

    /// One page of the orders that pass `filter`, newest first, each read
    /// from an index that holds exactly them: every partition's index of all
    /// orders or of one status, or the products' indexes (of all their
    /// orders, or of those in one status). At most
    /// [`domain::search::MAX_MATCHED_PRODUCTS`] products count. With an id
    /// start, each index is read from that start only: one range per index.
    pub async fn orders_page_where(&self, request: &PageRequest, filter: &OrderFilter) -> StoreResult<Page<Order>> {
        let sources: Vec<Source> = match (&filter.products, filter.status) {
            (None, None) => self.everywhere(PartitionKeys::orders),
            (None, Some(status)) => self.everywhere(|keys| keys.orders_in(status)),
            (Some(products), status) => products
                .iter()
                .take(domain::search::MAX_MATCHED_PRODUCTS)
                .map(|id| {
                    let keys = self.layout.keys_of_id(id);
                    match status {
                        None => Source::index(keys.partition(), keys.product_orders(id)),
                        Some(status) => {
                            Source::range(keys.partition(), keys.orders_by_product(status), format!("{id}:"))
                        }
                    }
                })
                .collect(),
        };
        if sources.is_empty() {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let sources: Vec<Source> = match filter.id_start.as_deref() {
            Some(start) => sources.into_iter().map(|source| source.starting_with(start)).collect(),
            None => sources,
        };
        let ids = merge::page_of_ids(&self.conn, &sources, request, true).await?;
        let more = ids.len() > request.limit;
        let page = &ids[..request.limit.min(ids.len())];
        let orders = self
            .hashes(page, PartitionKeys::order)
            .await?
            .iter()
            .map(|(key, fields)| parse_order(key, fields))
            .collect::<StoreResult<Vec<Order>>>()?;
        let next_cursor = if more { page.last().map(|(id, _)| id.to_string()) } else { None };
        Ok(Page { items: orders, next_cursor })
    }

    /// How many orders are in each status, across every partition.
    pub async fn status_counts(&self) -> StoreResult<Vec<(OrderStatus, u64)>> {
        let counts = self.layout.all().map(|keys| {
            let mut pipe = redis::pipe();
            for status in OrderStatus::ALL {
                pipe.zcard(keys.orders_in(status));
            }
            let mut conn = self.conn.clone();
            async move { pipe.query_async::<Vec<u64>>(&mut conn).await }
        });
        let mut totals = [0u64; 4];
        for partition in futures::future::try_join_all(counts).await? {
            for (total, count) in totals.iter_mut().zip(partition) {
                *total += count;
            }
        }
        Ok(OrderStatus::ALL.into_iter().zip(totals).collect())
    }

    /// The ids of the newest products (at most `limit`) whose name matches
    /// `text` (see [`domain::search`]), and whether more match: the order
    /// search's products.
    pub async fn matching_products(&self, text: &str, limit: usize) -> StoreResult<(Vec<Id>, bool)> {
        let page = self.search_products(text, &PageRequest::first(limit), true).await?;
        Ok((page.items.into_iter().map(|p| p.id).collect(), page.next_cursor.is_some()))
    }

    /// One page of the products whose name matches `text` (see
    /// [`domain::search`]; every product when it is blank), oldest or newest
    /// first: the warehouse's search box and its "Load more".
    ///
    /// The products come from the index of the prefix of the query's word
    /// that is rarest among names, so a search reads no more than it shows,
    /// give or take the names it checks for the query's other words: at most
    /// [`SEARCH_SCAN_BUDGET`] a call, after which the page may be short and
    /// its cursor goes on from the last name checked. A query too short to
    /// be useful is refused, naming the `search` field.
    pub async fn search_products(
        &self,
        text: &str,
        request: &PageRequest,
        newest_first: bool,
    ) -> StoreResult<Page<Product>> {
        let query = Query::parse(text).map_err(|error| StoreError::invalid("search", error.to_string()))?;
        let sources = match &query {
            None => self.everywhere(PartitionKeys::products),
            Some(query) => {
                let lookup = self.rarest(&query.lookups()).await?;
                self.everywhere(|keys| keys.product_prefix(&lookup))
            }
        };
        let exact = query.as_ref().is_none_or(Query::is_lookup_exact);
        // A lookup that holds exactly the matches needs one page; one whose
        // names need checking reads a larger batch at a time.
        let batch = if exact { request.limit } else { SEARCH_BATCH.max(request.limit) };
        let mut scan = PageRequest { limit: batch, after: request.after.clone() };
        let (mut found, mut checked) = (Vec::new(), 0);
        loop {
            let ids = merge::page_of_ids(&self.conn, &sources, &scan, newest_first).await?;
            let more = ids.len() > batch;
            let read = &ids[..batch.min(ids.len())];
            for (key, fields) in self.hashes(read, PartitionKeys::product).await? {
                let product = parse_product(&key, &fields)?;
                if query.as_ref().is_none_or(|query| query.matches(&product.name)) {
                    found.push(product);
                }
            }
            checked += read.len();
            let last = read.last().map(|(id, _)| id.clone());
            if found.len() > request.limit || !more {
                break;
            }
            if checked >= SEARCH_SCAN_BUDGET {
                // Enough read for one call: the page goes on from the last name checked.
                found.truncate(request.limit);
                return Ok(Page { items: found, next_cursor: last.map(String::from) });
            }
            scan.after = last;
        }
        // One product more than the page says there is a next page.
        Ok(Page::from_fetched(found, request.limit, |p: &Product| &p.id))
    }

    /// The products with these ids that exist, in the order asked.
    pub async fn products_with_ids(&self, ids: &[Id]) -> StoreResult<Vec<Product>> {
        let hashes = self.hashes(&self.listed(ids), PartitionKeys::product).await?;
        hashes.iter().map(|(key, fields)| parse_product(key, fields)).collect()
    }

    /// The orders with these ids that exist, in the order asked (one round
    /// trip per partition: the live list fetches the orders it learns of).
    pub async fn orders_with_ids(&self, ids: &[Id]) -> StoreResult<Vec<Order>> {
        let hashes = self.hashes(&self.listed(ids), PartitionKeys::order).await?;
        hashes.iter().map(|(key, fields)| parse_order(key, fields)).collect()
    }

    /// The ids, each with the partition it names, as an index lists them.
    fn listed(&self, ids: &[Id]) -> Vec<merge::Listed> {
        ids.iter().map(|id| (id.clone(), self.layout.partitions().of_id(id))).collect()
    }

    /// Of several indexed prefixes, the one that holds the fewest products
    /// (one `ZCARD` each per partition, all at once).
    async fn rarest(&self, lookups: &[&str]) -> StoreResult<String> {
        if lookups.len() < 2 {
            return Ok(lookups.first().map(|l| l.to_string()).unwrap_or_default());
        }
        let counts = self.layout.all().map(|keys| {
            let mut pipe = redis::pipe();
            for lookup in lookups {
                pipe.zcard(keys.product_prefix(lookup));
            }
            let mut conn = self.conn.clone();
            async move { pipe.query_async::<Vec<u64>>(&mut conn).await }
        });
        let mut totals = vec![0u64; lookups.len()];
        for partition in futures::future::try_join_all(counts).await? {
            for (total, count) in totals.iter_mut().zip(partition) {
                *total += count;
            }
        }
        let rarest = totals.iter().enumerate().min_by_key(|(_, total)| **total).map_or(0, |(n, _)| n);
        Ok(lookups[rarest].to_string())
    }

    /// One index of every partition, as sources of a merged page.
    fn everywhere(&self, index: impl Fn(&PartitionKeys) -> String) -> Vec<Source> {
        self.layout.all().map(|keys| Source::index(keys.partition(), index(keys))).collect()
    }

    /// HGETALL of the hashes of many ids, each in the partition whose index
    /// listed it: one round trip per partition, all partitions at once; in the
    /// order of `ids`, leaving out those that vanished.
    async fn hashes(
        &self,
        ids: &[merge::Listed],
        key_of: fn(&PartitionKeys, &str) -> String,
    ) -> StoreResult<Vec<(String, Fields)>> {
        let mut by_partition: HashMap<Partition, Vec<String>> = HashMap::new();
        for (id, partition) in ids {
            by_partition.entry(*partition).or_default().push(key_of(self.layout.keys(*partition), id));
        }
        let reads = by_partition.into_values().map(|keys| {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.hgetall(key);
            }
            let mut conn = self.conn.clone();
            async move {
                let hashes: Vec<Fields> = pipe.query_async(&mut conn).await?;
                Ok::<_, redis::RedisError>(keys.into_iter().zip(hashes))
            }
        });
        let mut found: HashMap<String, Fields> =
            futures::future::try_join_all(reads).await?.into_iter().flatten().filter(|(_, f)| !f.is_empty()).collect();
        Ok(ids
            .iter()
            .map(|(id, partition)| key_of(self.layout.keys(*partition), id))
            .filter_map(|key| found.remove(&key).map(|fields| (key, fields)))
            .collect())
    }
}

/// Asks each partition's master (a read of a key of the partition) whether it
/// answers: a cluster missing the master of one partition is not ready.
pub async fn ping_partitions(conn: &Redis, layout: &Layout) -> redis::RedisResult<()> {
    futures::future::try_join_all(layout.all().map(|keys| ping_partition(conn, keys))).await?;
    Ok(())
}

/// Whether the master of one partition answers (a cheap read of one of its keys).
pub async fn ping_partition(conn: &Redis, keys: &PartitionKeys) -> redis::RedisResult<()> {
    redis::cmd("EXISTS").arg(keys.orders()).query_async::<u32>(&mut conn.clone()).await.map(drop)
}

/// Idempotency keys: 1 to 200 visible ASCII characters (a UUID, a ULID, ...).
fn validate_idempotency_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters"),
        ));
    }
    Ok(())
}
