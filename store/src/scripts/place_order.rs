//! Saving new orders: `place_order.lua` and its call.

use std::sync::LazyLock;

use domain::{Id, OrderStatus};
use redis::{FromRedisValue, ParsingError, Script, Value};

use super::{number, unexpected, words, ArgLayout, Call};
use crate::keys::{PartitionKeys, Stream};

/// The script as Redis runs it: the shared batch and live-stream helpers, then its own code.
pub(super) const SOURCE: &str = concat!(
    include_str!("batch_prelude.lua"),
    "\n",
    include_str!("live_prelude.lua"),
    "\n",
    include_str!("place_order.lua")
);
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));
/// Its arguments: 4 first, then 9 per order; `place_order.lua` declares the same.
pub(super) const ARGS: ArgLayout = ArgLayout { head: 4, each: 9 };

/// What [`place_orders`] did for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Placed,
    /// An earlier request with the same idempotency key created this order.
    Replayed {
        order_id: Id,
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

const PLACE: &str = "place_order.lua";

/// A priced order for [`place_orders`] to save.
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub order_id: Id,
    pub product_id: Id,
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
    let mut call = Call::new(&SCRIPT, &touched)
        .arg(window)
        .arg(OrderStatus::INITIAL.as_str())
        .arg(min_replicas)
        .arg(REPLICA_MAX_LAG_SECS);
    for order in orders {
        call = call
            .arg(order.order_id.as_str())
            .arg(order.product_id.as_str())
            .arg(order.unit_price)
            .arg(order.quantity)
            .arg(order.fee)
            .arg(order.total)
            .arg(order.now)
            .arg(if order.idempotency_key.is_some() { "1" } else { "0" })
            .arg(order.traceparent.as_deref().unwrap_or(""));
    }
    call.laid_out(ARGS, orders.len())
}
