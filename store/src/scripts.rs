//! The Lua scripts that make each status change atomic.
//!
//! Each script checks the order's current status and applies its change only
//! from the expected previous one, writing the order, the stock and the
//! events it emits in one step (invariant: a status change, its stock effect
//! and its `order-status` event are one atomic step; redelivery is harmless).
//!
//! Scripts are called by hash (EVALSHA) so they can be pipelined; when Redis
//! has forgotten them (a restart, SCRIPT FLUSH) [`query`] loads them and
//! tries once more.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult, Script};

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
    restock: Script,
    migrate_entry: Script,
}

const PLACE_ORDER: &str = include_str!("../lua/place_order.lua");
const COMPLETE_ORDER: &str = include_str!("../lua/complete_order.lua");
const FULFIL_ORDER: &str = include_str!("../lua/fulfil_order.lua");
const REFUND_ORDER: &str = include_str!("../lua/refund_order.lua");
const DEAD_LETTER: &str = include_str!("../lua/dead_letter.lua");
const CREATE_PRODUCT: &str = include_str!("../lua/create_product.lua");
const RESTOCK: &str = include_str!("../lua/restock.lua");
const MIGRATE_ENTRY: &str = include_str!("../lua/migrate_entry.lua");
const ALL: [&str; 8] =
    [PLACE_ORDER, COMPLETE_ORDER, FULFIL_ORDER, REFUND_ORDER, DEAD_LETTER, CREATE_PRODUCT, RESTOCK, MIGRATE_ENTRY];

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    place_order: Script::new(PLACE_ORDER),
    complete_order: Script::new(COMPLETE_ORDER),
    fulfil_order: Script::new(FULFIL_ORDER),
    refund_order: Script::new(REFUND_ORDER),
    dead_letter: Script::new(DEAD_LETTER),
    create_product: Script::new(CREATE_PRODUCT),
    restock: Script::new(RESTOCK),
    migrate_entry: Script::new(MIGRATE_ENTRY),
});

/// The stream entry that asked for a change, acknowledged by the script in
/// the same atomic step as the change (so it is acked exactly when the
/// effect commits). `None` applies the change without acknowledging anything.
#[derive(Debug, Clone, Copy)]
pub struct Ack<'a> {
    pub group: &'a str,
    pub entry_id: &'a str,
}

fn ack_args(cmd: &mut Cmd, ack: Option<Ack>) {
    match ack {
        Some(ack) => cmd.arg(ack.group).arg(ack.entry_id),
        None => cmd.arg("").arg(""),
    };
}

fn evalsha<K: AsRef<str>>(script: &Script, keys: &[K]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len());
    for key in keys {
        cmd.arg(key.as_ref());
    }
    cmd
}

/// The fields of a priced order that [`place_order`] saves.
pub struct PlacedOrder<'a> {
    pub order_id: &'a str,
    pub product_id: &'a str,
    pub unit_price: u64,
    pub quantity: u32,
    pub fee: u64,
    pub total: u64,
    pub now: u64,
    /// The client's idempotency key and how long it is remembered, in seconds.
    pub idempotency: Option<(&'a str, u64)>,
}

/// Saves a priced order as `pending` with its outbox entry, or finds the
/// order an earlier attempt with the same idempotency key created (see `place_order.lua`).
pub fn place_order(keys: &PartitionKeys, order: &PlacedOrder, status_maxlen: u64) -> Cmd {
    let mut touched = vec![
        keys.product(order.product_id),
        keys.order(order.order_id),
        keys.orders(),
        keys.stream(Stream::OrderPlaced),
        keys.stream(Stream::OrderStatus),
        keys.order_counts(),
    ];
    let window = match order.idempotency {
        Some((key, window)) => {
            touched.push(keys.order_idempotency(key));
            window
        }
        None => 0,
    };
    let mut cmd = evalsha(&SCRIPTS.place_order, &touched);
    cmd.arg(order.order_id)
        .arg(order.product_id)
        .arg(order.unit_price)
        .arg(order.quantity)
        .arg(order.fee)
        .arg(order.total)
        .arg(order.now)
        .arg(status_maxlen)
        .arg(window);
    cmd
}

/// Pending → completed, emitting `order-completed`, acking the
/// `order-placed` entry (see `complete_order.lua`).
pub fn complete_order(keys: &PartitionKeys, order_id: &str, now: u64, status_maxlen: u64, ack: Option<Ack>) -> Cmd {
    let mut cmd = evalsha(
        &SCRIPTS.complete_order,
        &[
            &keys.order(order_id),
            &keys.stream(Stream::OrderCompleted),
            &keys.stream(Stream::OrderStatus),
            &keys.stream(Stream::OrderPlaced),
            &keys.order_counts(),
        ],
    );
    cmd.arg(order_id).arg(now).arg(status_maxlen);
    ack_args(&mut cmd, ack);
    cmd
}

/// Completed → fulfilled taking the stock, or a refund initiated, acking the
/// `order-completed` entry (see `fulfil_order.lua`).
pub fn fulfil_order(
    keys: &PartitionKeys,
    order_id: &str,
    product_id: &str,
    now: u64,
    status_maxlen: u64,
    ack: Option<Ack>,
) -> Cmd {
    let mut cmd = evalsha(
        &SCRIPTS.fulfil_order,
        &[
            &keys.order(order_id),
            &keys.product(product_id),
            &keys.stream(Stream::RefundInitiated),
            &keys.stream(Stream::OrderStatus),
            &keys.stream(Stream::OrderCompleted),
            &keys.order_counts(),
        ],
    );
    cmd.arg(order_id)
        .arg(product_id)
        .arg(now)
        .arg(status_maxlen)
        .arg(reason::INSUFFICIENT_STOCK)
        .arg(reason::PRODUCT_GONE);
    ack_args(&mut cmd, ack);
    cmd
}

/// Completed → refunded, acking the `refund-initiated` entry (see `refund_order.lua`).
pub fn refund_order(
    keys: &PartitionKeys,
    order_id: &str,
    reason: &str,
    now: u64,
    status_maxlen: u64,
    ack: Option<Ack>,
) -> Cmd {
    let mut cmd = evalsha(
        &SCRIPTS.refund_order,
        &[
            &keys.order(order_id),
            &keys.stream(Stream::OrderStatus),
            &keys.stream(Stream::RefundInitiated),
            &keys.order_counts(),
        ],
    );
    cmd.arg(order_id).arg(now).arg(status_maxlen).arg(reason);
    ack_args(&mut cmd, ack);
    cmd
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
    /// The unfinished order to refund, if the entry concerns one.
    pub refund_order_id: Option<&'a str>,
}

/// Dead-letters an entry, acks it and refunds its unfinished order, atomically.
pub fn dead_letter(keys: &PartitionKeys, letter: &DeadLetter, now: u64, maxlen: u64) -> Cmd {
    let mut touched = vec![
        keys.stream(letter.stream),
        keys.dead_letters(letter.stream),
        keys.stream(Stream::OrderStatus),
        keys.order_counts(),
    ];
    touched.extend(letter.refund_order_id.map(|id| keys.order(id)));
    let mut cmd = evalsha(&SCRIPTS.dead_letter, &touched);
    cmd.arg(letter.group).arg(letter.entry_id).arg(letter.error).arg(letter.consumer).arg(maxlen).arg(now);
    for (field, value) in letter.fields {
        cmd.arg(field).arg(value);
    }
    cmd
}

/// Saves a new product, or finds the one an earlier attempt with the same
/// idempotency key created (see `create_product.lua`). `snapshot` is the
/// product as JSON, kept with the key for replays.
pub fn create_product(
    keys: &PartitionKeys,
    product: &domain::Product,
    snapshot: &str,
    idempotency: Option<(&str, u64)>,
) -> Cmd {
    let mut touched = vec![keys.product(&product.id), keys.products()];
    let window = match idempotency {
        Some((client_key, window)) => {
            touched.push(keys.product_idempotency(client_key));
            window
        }
        None => 0,
    };
    let mut cmd = evalsha(&SCRIPTS.create_product, &touched);
    cmd.arg(&product.id).arg(&product.name).arg(product.price.0).arg(product.quantity).arg(snapshot).arg(window);
    cmd
}

/// Adds units to a product's stock, up to `ceiling` (see `restock.lua`).
pub fn restock(keys: &PartitionKeys, product_id: &str, units: u32, ceiling: u32) -> Cmd {
    let mut cmd = evalsha(&SCRIPTS.restock, &[keys.product(product_id)]);
    cmd.arg(units).arg(ceiling);
    cmd
}

/// Copies one stream entry of the layout before partitions into `stream`
/// (a partition's stream, or its dead letters), once (see `migrate_entry.lua`).
pub fn migrate_entry(keys: &PartitionKeys, stream: &str, legacy_id: &str, fields: &[(String, String)]) -> Cmd {
    let mut cmd = evalsha(&SCRIPTS.migrate_entry, &[stream.to_string(), keys.migrated_entries()]);
    cmd.arg(legacy_id);
    for (field, value) in fields {
        cmd.arg(field).arg(value);
    }
    cmd
}

/// Loads every script into Redis's script cache (on a cluster, every master's).
pub async fn load_all<C: ConnectionLike>(conn: &mut C) -> RedisResult<()> {
    // One command each, not a pipeline: a cluster client sends each to every
    // master, but a pipeline without keys to just one node.
    for code in ALL {
        let _: redis::Value = redis::cmd("SCRIPT").arg("LOAD").arg(code).query_async(conn).await?;
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

/// Runs one script call, loading the scripts first if Redis lacks them.
pub async fn invoke<C: ConnectionLike, T: FromRedisValue>(conn: &mut C, cmd: &Cmd) -> RedisResult<T> {
    match cmd.query_async(conn).await {
        Err(error) if is_noscript(&error) => {
            load_all(conn).await?;
            cmd.query_async(conn).await
        }
        other => other,
    }
}
