//! The Lua scripts that make each status change atomic, with one typed call
//! per script.
//!
//! Each script checks the order's current status and applies its change only
//! from the statuses the domain's rules allow ([`domain::OrderEvent`]: the
//! call passes them in, so the rules are stated once), writing the order, the
//! stock and the events it emits in one step (invariant: a status change, its
//! stock effect and its `order-status` event are one atomic step; redelivery
//! is harmless).
//!
//! Each call builder returns a [`Call`] that knows its reply type; every
//! reply is parsed here, into an enum, and nowhere else. Scripts are called
//! by hash (EVALSHA) so they can be pipelined; when Redis has forgotten them
//! (a restart, a failover, SCRIPT FLUSH) [`Call::run`] and [`run_all`] load
//! them and try once more.

use std::marker::PhantomData;
use std::sync::LazyLock;

use domain::{OrderEvent, OrderStatus};
use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Pipeline, RedisResult, Script, Value};

use crate::keys::{PartitionKeys, Stream};

/// Why the warehouse refunds an order, as shown to the customer.
pub use domain::events::refund_reason as reason;

struct Scripts {
    place_order: Script,
    complete_order: Script,
    fulfil_order: Script,
    refund_order: Script,
    dead_letter: Script,
    create_product: Script,
    delete_product: Script,
    restock: Script,
    index_orders: Script,
    migrate_entry: Script,
    remove_consumer: Script,
    retry_dead_letter: Script,
    /// Every script's source as Redis runs it, for [`load_all`].
    sources: Vec<String>,
}

/// The helpers the scripts that move orders share, put in front of their own
/// code (Lua scripts cannot import).
const BATCH_PRELUDE: &str = include_str!("../lua/batch_prelude.lua");
const PLACE_ORDER: &str = include_str!("../lua/place_order.lua");
const COMPLETE_ORDER: &str = include_str!("../lua/complete_order.lua");
const FULFIL_ORDER: &str = include_str!("../lua/fulfil_order.lua");
const REFUND_ORDER: &str = include_str!("../lua/refund_order.lua");
const DEAD_LETTER: &str = include_str!("../lua/dead_letter.lua");
const CREATE_PRODUCT: &str = include_str!("../lua/create_product.lua");
const DELETE_PRODUCT: &str = include_str!("../lua/delete_product.lua");
const INDEX_ORDERS: &str = include_str!("../lua/index_orders.lua");
const RESTOCK: &str = include_str!("../lua/restock.lua");
const MIGRATE_ENTRY: &str = include_str!("../lua/migrate_entry.lua");
const REMOVE_CONSUMER: &str = include_str!("../lua/remove_consumer.lua");
const RETRY_DEAD_LETTER: &str = include_str!("../lua/retry_dead_letter.lua");

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let mut sources = Vec::new();
    let mut script = |code: String| {
        let script = Script::new(&code);
        sources.push(code);
        script
    };
    let moving = |code: &str| format!("{BATCH_PRELUDE}\n{code}");
    let place_order = script(moving(PLACE_ORDER));
    let complete_order = script(moving(COMPLETE_ORDER));
    let fulfil_order = script(moving(FULFIL_ORDER));
    let refund_order = script(moving(REFUND_ORDER));
    let dead_letter = script(moving(DEAD_LETTER));
    let create_product = script(CREATE_PRODUCT.into());
    let delete_product = script(DELETE_PRODUCT.into());
    let restock = script(RESTOCK.into());
    let index_orders = script(moving(INDEX_ORDERS));
    let migrate_entry = script(MIGRATE_ENTRY.into());
    let remove_consumer = script(REMOVE_CONSUMER.into());
    let retry_dead_letter = script(RETRY_DEAD_LETTER.into());
    Scripts {
        place_order,
        complete_order,
        fulfil_order,
        refund_order,
        dead_letter,
        create_product,
        delete_product,
        restock,
        index_orders,
        migrate_entry,
        remove_consumer,
        retry_dead_letter,
        sources,
    }
});

/// One script call, and the type its reply parses into.
#[derive(Debug, Clone)]
#[must_use]
pub struct Call<R> {
    cmd: Cmd,
    reply: PhantomData<fn() -> R>,
}

impl<R: FromRedisValue> Call<R> {
    fn new(script: &Script, keys: &[String]) -> Call<R> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(keys.len());
        for key in keys {
            cmd.arg(key);
        }
        Call { cmd, reply: PhantomData }
    }

    fn arg(mut self, arg: impl redis::ToRedisArgs) -> Call<R> {
        self.cmd.arg(arg);
        self
    }

    /// The guard of `event`: the statuses it applies from, as the scripts
    /// read them (`,pending,completed,`), and the status it leads to.
    fn guard(self, event: OrderEvent) -> Call<R> {
        let from: String = event.applies_from().iter().map(|s| format!(",{s}")).collect::<String>() + ",";
        self.arg(from).arg(event.leads_to().as_str())
    }

    /// The call of a batch script for a batch of one: its reply is the one
    /// element of the batch's (see [`words`]).
    fn single<T>(self) -> Call<T> {
        Call { cmd: self.cmd, reply: PhantomData }
    }

    /// Runs the call alone.
    pub async fn run<C: ConnectionLike>(&self, conn: &mut C) -> RedisResult<R> {
        match self.cmd.query_async(conn).await {
            Err(error) if is_noscript(&error) => {
                load_all(conn).await?;
                self.cmd.query_async(conn).await
            }
            other => other,
        }
    }

    /// Adds the call to a pipeline of calls to one partition.
    pub fn add_to(self, pipe: &mut Pipeline) {
        pipe.add_command(self.cmd);
    }
}

/// Runs calls of one kind to one partition in one round trip, replies in order.
pub async fn run_all<C: ConnectionLike, R: FromRedisValue>(conn: &mut C, calls: Vec<Call<R>>) -> RedisResult<Vec<R>> {
    let mut pipe = redis::pipe();
    for call in calls {
        call.add_to(&mut pipe);
    }
    query(conn, &pipe).await
}

/// The stream entry that asked for a change, acknowledged by the script in
/// the same atomic step as the change (so it is acked exactly when the
/// effect commits). `None` applies the change without acknowledging anything.
#[derive(Debug, Clone, Copy)]
pub struct Ack<'a> {
    pub group: &'a str,
    pub entry_id: &'a str,
}

/// Reads a reply of the form `{word, ...}` or `word`, or the batch of one
/// holding it (`{{word, ...}}`), as a batch script answers a single call.
fn words(value: Value) -> Result<Vec<String>, ParsingError> {
    match value {
        Value::Array(mut items) if items.len() == 1 && matches!(items[0], Value::Array(_)) => words(items.remove(0)),
        Value::Array(items) => items.into_iter().map(String::from_redis_value).collect(),
        other => Ok(vec![String::from_redis_value(other)?]),
    }
}

fn unexpected(script: &str, reply: &[String]) -> ParsingError {
    ParsingError::from(format!("unexpected reply {reply:?} from {script}"))
}

fn number<T: std::str::FromStr>(script: &str, reply: &[String], at: usize) -> Result<T, ParsingError> {
    reply.get(at).and_then(|n| n.parse().ok()).ok_or_else(|| unexpected(script, reply))
}

/// What [`place_order`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Placed,
    /// An earlier request with the same idempotency key created this order.
    Replayed {
        order_id: String,
    },
    NoProduct,
    /// The product's price changed since the order was priced.
    PriceChanged,
    /// Fewer replicas than required are online: nothing was written.
    NotReplicated {
        online: u32,
    },
}

impl FromRedisValue for Placement {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("placed") => Ok(Placement::Placed),
            Some("replayed") => Ok(Placement::Replayed { order_id: number(PLACE, &reply, 1)? }),
            Some("no_product") => Ok(Placement::NoProduct),
            Some("price_changed") => Ok(Placement::PriceChanged),
            Some("not_replicated") => Ok(Placement::NotReplicated { online: number(PLACE, &reply, 1)? }),
            _ => Err(unexpected(PLACE, &reply)),
        }
    }
}

/// What a status change ([`complete_order`], [`refund_order`]) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Applied and the entry acknowledged.
    Applied,
    /// Applied before (or the order moved on): nothing changed, the entry acknowledged.
    Skipped,
    /// No such order: not acknowledged, the entry is poison.
    Missing,
    /// Neither the order nor its entry is on the node that ran it: a stale
    /// master answered (it is about to learn of its failover): not acknowledged, tried again.
    Stray,
    /// A refund for an order the warehouse did not decide to refund: not
    /// acknowledged, the entry is poison.
    NotInitiated,
}

impl FromRedisValue for Change {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("applied") => Ok(Change::Applied),
            Some("skipped") => Ok(Change::Skipped),
            Some("missing") => Ok(Change::Missing),
            Some("stray") => Ok(Change::Stray),
            Some("not_initiated") => Ok(Change::NotInitiated),
            _ => Err(unexpected("a status change", &reply)),
        }
    }
}

/// The warehouse's verdict ([`fulfil_order`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fulfilment {
    Fulfilled {
        stock_left: u32,
    },
    RefundInitiated {
        reason: String,
    },
    Skipped,
    Missing,
    /// As [`Change::Stray`].
    Stray,
    /// The entry names another product than the order: poison.
    Mismatch,
}

impl FromRedisValue for Fulfilment {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("fulfilled") => Ok(Fulfilment::Fulfilled { stock_left: number(FULFIL, &reply, 1)? }),
            Some("refund_initiated") => Ok(Fulfilment::RefundInitiated { reason: number(FULFIL, &reply, 1)? }),
            Some("skipped") => Ok(Fulfilment::Skipped),
            Some("missing") => Ok(Fulfilment::Missing),
            Some("stray") => Ok(Fulfilment::Stray),
            Some("mismatch") => Ok(Fulfilment::Mismatch),
            _ => Err(unexpected(FULFIL, &reply)),
        }
    }
}

/// What [`dead_letter`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLettered {
    /// Copied to the dead letters and acknowledged; `dropped` old dead
    /// letters fell off the cap.
    Dead { dropped: u64 },
    /// As `Dead`, and its unfinished order was refunded.
    Refunded { dropped: u64 },
    /// No longer pending (another consumer committed it): left alone.
    NotPending,
}

impl FromRedisValue for DeadLettered {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("dead") => Ok(DeadLettered::Dead { dropped: number(DEAD, &reply, 1)? }),
            Some("refunded") => Ok(DeadLettered::Refunded { dropped: number(DEAD, &reply, 1)? }),
            Some("not_pending") => Ok(DeadLettered::NotPending),
            _ => Err(unexpected(DEAD, &reply)),
        }
    }
}

/// What [`create_product`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    Created,
    /// An earlier request with the same key created this product (as JSON).
    Replayed {
        product_json: String,
    },
}

impl FromRedisValue for Creation {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("created") => Ok(Creation::Created),
            Some("replayed") => Ok(Creation::Replayed { product_json: number(CREATE, &reply, 1)? }),
            _ => Err(unexpected(CREATE, &reply)),
        }
    }
}

/// What [`restock`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restocking {
    Restocked {
        stock: u32,
    },
    Missing,
    /// It would pass the ceiling; the stock as it is.
    Ceiling {
        stock: u32,
    },
}

impl FromRedisValue for Restocking {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("restocked") => Ok(Restocking::Restocked { stock: number(RESTOCK_NAME, &reply, 1)? }),
            Some("missing") => Ok(Restocking::Missing),
            Some("ceiling") => Ok(Restocking::Ceiling { stock: number(RESTOCK_NAME, &reply, 1)? }),
            _ => Err(unexpected(RESTOCK_NAME, &reply)),
        }
    }
}

const PLACE: &str = "place_order.lua";
const FULFIL: &str = "fulfil_order.lua";
const DEAD: &str = "dead_letter.lua";
const CREATE: &str = "create_product.lua";
const RESTOCK_NAME: &str = "restock.lua";

/// A priced order for [`place_orders`] to save.
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub order_id: String,
    pub product_id: String,
    pub unit_price: u64,
    pub quantity: u32,
    pub fee: u64,
    pub total: u64,
    pub now: u64,
    /// The client's idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// The W3C trace context of its placing, when traces are exported.
    pub traceparent: Option<String>,
}

/// The most seconds a replica's last acknowledgement may lag for it to count
/// as online (Redis's own `min-replicas-max-lag` default).
pub const REPLICA_MAX_LAG_SECS: u32 = 10;

/// Saves a batch of priced orders of one partition, each in its first status
/// with its outbox entry, or finds the order an earlier attempt with the same
/// idempotency key created, in one atomic step (see `place_order.lua`). An
/// idempotency key is remembered for `window` seconds. With `min_replicas`
/// above 0, nothing is written while fewer replicas are online. One reply
/// per order, in order.
pub fn place_orders(
    keys: &PartitionKeys,
    orders: &[PlacedOrder],
    window: u64,
    min_replicas: u32,
) -> Call<Vec<Placement>> {
    let mut touched = vec![
        keys.orders(),
        keys.stream(Stream::OrderPlaced),
        keys.orders_in(OrderStatus::INITIAL),
        keys.orders_by_product(OrderStatus::INITIAL),
    ];
    for order in orders {
        touched.push(keys.product(&order.product_id));
        touched.push(keys.order(&order.order_id));
        touched.push(keys.product_orders(&order.product_id));
        touched.extend(order.idempotency_key.as_deref().map(|key| keys.order_idempotency(key)));
    }
    let mut call = Call::new(&SCRIPTS.place_order, &touched)
        .arg(window)
        .arg(OrderStatus::INITIAL.as_str())
        .arg(min_replicas)
        .arg(REPLICA_MAX_LAG_SECS);
    for order in orders {
        call = call
            .arg(&order.order_id)
            .arg(&order.product_id)
            .arg(order.unit_price)
            .arg(order.quantity)
            .arg(order.fee)
            .arg(order.total)
            .arg(order.now)
            .arg(if order.idempotency_key.is_some() { "1" } else { "0" })
            .arg(order.traceparent.as_deref().unwrap_or(""));
    }
    call
}

/// One entry of a batch a consumer applies: the order it names and the
/// entry's id, acknowledged in the same atomic step as its change (`None`
/// applies the change without acknowledging anything).
#[derive(Debug, Clone, Copy)]
pub struct Applying<'a> {
    pub order_id: &'a str,
    pub entry_id: Option<&'a str>,
}

/// Payment done ([`OrderEvent::PaymentCompleted`]) for a batch of orders, in
/// one atomic step: each emits `order-completed` (also its live event), and
/// every `order-placed` entry is acked in `group` (see `complete_order.lua`).
/// One reply per order, in order.
pub fn complete_orders(keys: &PartitionKeys, group: &str, orders: &[Applying], now: u64) -> Call<Vec<Change>> {
    let mut touched = vec![keys.stream(Stream::OrderPlaced), keys.stream(Stream::OrderCompleted)];
    let indexes = keys.status_indexes();
    let index_count = indexes.len();
    touched.extend(indexes);
    touched.extend(orders.iter().map(|order| keys.order(order.order_id)));
    let mut call = Call::new(&SCRIPTS.complete_order, &touched)
        .guard(OrderEvent::PaymentCompleted)
        .arg(now)
        .arg(group)
        .arg(index_count);
    for order in orders {
        call = call.arg(order.order_id).arg(order.entry_id.unwrap_or(""));
    }
    call
}

/// [`complete_orders`] for one order.
pub fn complete_order(keys: &PartitionKeys, order_id: &str, now: u64, ack: Option<Ack>) -> Call<Change> {
    let order = Applying { order_id, entry_id: ack.map(|ack| ack.entry_id) };
    complete_orders(keys, ack.map_or("", |ack| ack.group), &[order], now).single()
}

/// One entry of a batch the warehouse applies: [`Applying`], with the
/// product the entry names.
#[derive(Debug, Clone, Copy)]
pub struct Taking<'a> {
    pub order_id: &'a str,
    pub product_id: &'a str,
    pub entry_id: Option<&'a str>,
}

/// The warehouse takes the stock ([`OrderEvent::StockTaken`]) of a batch of
/// orders, first come, first served, or initiates their refunds, in one
/// atomic step, acking every `order-completed` entry in `group` (see
/// `fulfil_order.lua`). One reply per order, in order.
pub fn fulfil_orders(
    keys: &PartitionKeys,
    group: &str,
    orders: &[Taking],
    now: u64,
    status_maxlen: u64,
) -> Call<Vec<Fulfilment>> {
    let mut touched = vec![
        keys.stream(Stream::OrderCompleted),
        keys.stream(Stream::RefundInitiated),
        keys.stream(Stream::OrderStatus),
    ];
    let indexes = keys.status_indexes();
    let index_count = indexes.len();
    touched.extend(indexes);
    touched.extend(orders.iter().map(|order| keys.order(order.order_id)));
    // Each product once; each order names its product by position.
    let mut products: Vec<&str> = Vec::new();
    let positions: Vec<usize> = orders
        .iter()
        .map(|order| match products.iter().position(|p| *p == order.product_id) {
            Some(at) => at + 1,
            None => {
                products.push(order.product_id);
                products.len()
            }
        })
        .collect();
    touched.extend(products.iter().map(|product| keys.product(product)));
    let mut call = Call::new(&SCRIPTS.fulfil_order, &touched)
        .guard(OrderEvent::StockTaken)
        .arg(now)
        .arg(status_maxlen)
        .arg(group)
        .arg(index_count)
        .arg(reason::INSUFFICIENT_STOCK)
        .arg(reason::PRODUCT_GONE)
        .arg(orders.len());
    for (order, position) in orders.iter().zip(positions) {
        call = call.arg(order.order_id).arg(order.product_id).arg(position).arg(order.entry_id.unwrap_or(""));
    }
    call
}

/// [`fulfil_orders`] for one order.
pub fn fulfil_order(
    keys: &PartitionKeys,
    order_id: &str,
    product_id: &str,
    now: u64,
    status_maxlen: u64,
    ack: Option<Ack>,
) -> Call<Fulfilment> {
    let order = Taking { order_id, product_id, entry_id: ack.map(|ack| ack.entry_id) };
    fulfil_orders(keys, ack.map_or("", |ack| ack.group), &[order], now, status_maxlen).single()
}

/// Applies the refunds the warehouse initiated ([`OrderEvent::RefundApplied`])
/// for a batch of orders, in one atomic step, acking the `refund-initiated`
/// entries in `group` (see `refund_order.lua`). One reply per order, in order.
pub fn refund_orders(
    keys: &PartitionKeys,
    group: &str,
    orders: &[Applying],
    now: u64,
    status_maxlen: u64,
) -> Call<Vec<Change>> {
    let mut touched = vec![keys.stream(Stream::RefundInitiated), keys.stream(Stream::OrderStatus)];
    let indexes = keys.status_indexes();
    let index_count = indexes.len();
    touched.extend(indexes);
    touched.extend(orders.iter().map(|order| keys.order(order.order_id)));
    let mut call = Call::new(&SCRIPTS.refund_order, &touched)
        .guard(OrderEvent::RefundApplied)
        .arg(now)
        .arg(status_maxlen)
        .arg(group)
        .arg(index_count);
    for order in orders {
        call = call.arg(order.order_id).arg(order.entry_id.unwrap_or(""));
    }
    call
}

/// [`refund_orders`] for one order.
pub fn refund_order(
    keys: &PartitionKeys,
    order_id: &str,
    now: u64,
    status_maxlen: u64,
    ack: Option<Ack>,
) -> Call<Change> {
    let order = Applying { order_id, entry_id: ack.map(|ack| ack.entry_id) };
    refund_orders(keys, ack.map_or("", |ack| ack.group), &[order], now, status_maxlen).single()
}

/// An entry given up on (see `dead_letter.lua`).
pub struct DeadLetter<'a> {
    pub stream: Stream,
    pub group: &'a str,
    pub entry_id: &'a str,
    pub error: &'a str,
    pub consumer: &'a str,
    /// The entry's fields, kept in the dead letter.
    pub fields: &'a [(String, String)],
    /// The unfinished order to refund ([`OrderEvent::GivenUp`]), if the entry concerns one.
    pub refund_order_id: Option<&'a str>,
}

/// Dead-letters an entry that is still pending, acks it and refunds its
/// unfinished order, atomically. `status_maxlen` bounds `order-status`,
/// `dead_maxlen` the dead letters.
pub fn dead_letter(
    keys: &PartitionKeys,
    letter: &DeadLetter,
    now: u64,
    status_maxlen: u64,
    dead_maxlen: u64,
) -> Call<DeadLettered> {
    let mut touched = vec![
        keys.stream(letter.stream),
        keys.dead_letters(letter.stream),
        keys.stream(Stream::OrderStatus),
        keys.dead_letters_dropped(),
    ];
    let indexes = keys.status_indexes();
    let index_count = indexes.len();
    touched.extend(indexes);
    touched.extend(letter.refund_order_id.map(|id| keys.order(id)));
    let mut call = Call::new(&SCRIPTS.dead_letter, &touched)
        .guard(OrderEvent::GivenUp)
        .arg(letter.group)
        .arg(letter.entry_id)
        .arg(letter.error)
        .arg(letter.consumer)
        .arg(status_maxlen)
        .arg(dead_maxlen)
        .arg(now)
        .arg(index_count)
        .arg(domain::events::refund_reason::processing_failed(letter.error));
    for (field, value) in letter.fields {
        call = call.arg(field).arg(value);
    }
    call
}

/// How a product change is announced to the live feed: an entry of the
/// partition's `order-status` stream (trimmed to about `maxlen` entries),
/// stamped `now` (ms).
#[derive(Debug, Clone, Copy)]
pub struct Announce {
    pub maxlen: u64,
    pub now: u64,
}

/// Saves a new product, and indexes it under the prefixes of its name, or
/// finds the one an earlier attempt with the same idempotency key created
/// (see `create_product.lua`). `snapshot` is the product as JSON, kept with
/// the key for replays. Announced to the live feed unless `announce` is
/// `None` (a bulk load).
pub fn create_product(
    keys: &PartitionKeys,
    product: &domain::Product,
    snapshot: &str,
    idempotency: Option<(&str, u64)>,
    announce: Option<Announce>,
) -> Call<Creation> {
    let mut touched = vec![keys.product(&product.id), keys.products(), keys.stream(Stream::OrderStatus)];
    let window = match idempotency {
        Some((client_key, window)) => {
            touched.push(keys.product_idempotency(client_key));
            window
        }
        None => 0,
    };
    let prefixes = domain::search::index_prefixes(&product.name);
    touched.extend(prefixes.iter().map(|prefix| keys.product_prefix(prefix)));
    Call::new(&SCRIPTS.create_product, &touched)
        .arg(&product.id)
        .arg(&product.name)
        .arg(product.price.0)
        .arg(product.quantity)
        .arg(snapshot)
        .arg(window)
        .arg(prefixes.len())
        .arg(announce.map_or(0, |a| a.maxlen))
        .arg(announce.map_or(0, |a| a.now))
}

/// Removes the product `id` named `name`, from the products index and the
/// search index too, and announces it to the live feed (see
/// `delete_product.lua`). Replies whether it was there.
pub fn delete_product(keys: &PartitionKeys, id: &str, name: &str, announce: Announce) -> Call<bool> {
    let mut touched = vec![keys.product(id), keys.products(), keys.stream(Stream::OrderStatus)];
    touched.extend(domain::search::index_prefixes(name).iter().map(|prefix| keys.product_prefix(prefix)));
    Call::new(&SCRIPTS.delete_product, &touched).arg(id).arg(announce.maxlen).arg(announce.now)
}

/// Indexes orders saved before the index of orders by status and product
/// existed (see `index_orders.lua`). Replies how many of them exist.
pub fn index_orders(keys: &PartitionKeys, ids: &[String]) -> Call<u64> {
    let indexes: Vec<String> = OrderStatus::ALL.iter().map(|status| keys.orders_by_product(*status)).collect();
    let count = indexes.len();
    let mut touched = indexes;
    touched.extend(ids.iter().map(|id| keys.order(id)));
    let mut call = Call::new(&SCRIPTS.index_orders, &touched).arg(count);
    for id in ids {
        call = call.arg(id);
    }
    call
}

/// Adds units to a product's stock, up to `ceiling`, and announces the new
/// stock to the live feed (see `restock.lua`).
pub fn restock(
    keys: &PartitionKeys,
    product_id: &str,
    units: u32,
    ceiling: u32,
    announce: Announce,
) -> Call<Restocking> {
    Call::new(&SCRIPTS.restock, &[keys.product(product_id), keys.stream(Stream::OrderStatus)])
        .arg(units)
        .arg(ceiling)
        .arg(product_id)
        .arg(announce.maxlen)
        .arg(announce.now)
}

/// Copies one stream entry of the layout before partitions into `stream`
/// (a partition's stream, or its dead letters), once (see `migrate_entry.lua`).
/// Replies whether it was copied now.
pub fn migrate_entry(keys: &PartitionKeys, stream: &str, legacy_id: &str, fields: &[(String, String)]) -> Call<bool> {
    let mut call = Call::new(&SCRIPTS.migrate_entry, &[stream.to_string(), keys.migrated_entries()]).arg(legacy_id);
    for (field, value) in fields {
        call = call.arg(field).arg(value);
    }
    call
}

/// Removes `consumer` from `group` of `stream` if it holds no pending entry
/// (see `remove_consumer.lua`). Replies whether it was removed.
pub fn remove_consumer(stream: &str, group: &str, consumer: &str) -> Call<bool> {
    Call::new(&SCRIPTS.remove_consumer, &[stream.to_string()]).arg(group).arg(consumer)
}

/// What [`retry_dead_letter`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Back on its stream as this new entry.
    Retried { entry_id: String },
    /// No such dead letter (retried or discarded already).
    Gone,
}

impl FromRedisValue for Retry {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("retried") => Ok(Retry::Retried { entry_id: number(RETRY, &reply, 1)? }),
            Some("gone") => Ok(Retry::Gone),
            _ => Err(unexpected(RETRY, &reply)),
        }
    }
}

const RETRY: &str = "retry_dead_letter.lua";

/// Puts a dead letter of `stream` back on `stream`, once (see `retry_dead_letter.lua`).
pub fn retry_dead_letter(keys: &PartitionKeys, stream: Stream, entry_id: &str) -> Call<Retry> {
    Call::new(&SCRIPTS.retry_dead_letter, &[keys.dead_letters(stream), keys.stream(stream)]).arg(entry_id)
}

/// Loads every script into Redis's script cache (on a cluster, every master's).
pub async fn load_all<C: ConnectionLike>(conn: &mut C) -> RedisResult<()> {
    // One command each, not a pipeline: a cluster client sends each to every
    // master, but a pipeline without keys to just one node.
    for code in &SCRIPTS.sources {
        let _: Value = redis::cmd("SCRIPT").arg("LOAD").arg(code).query_async(conn).await?;
    }
    Ok(())
}

fn is_noscript(error: &redis::RedisError) -> bool {
    error.code() == Some("NOSCRIPT")
}

/// Runs a pipeline that calls scripts, loading them first if Redis lacks them.
///
/// A NOSCRIPT reply means no script in the pipeline ran, so running it again is safe.
pub async fn query<C: ConnectionLike, T: FromRedisValue>(conn: &mut C, pipe: &Pipeline) -> RedisResult<T> {
    match pipe.query_async(conn).await {
        Err(error) if is_noscript(&error) => {
            load_all(conn).await?;
            pipe.query_async(conn).await
        }
        other => other,
    }
}
