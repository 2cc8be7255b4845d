//! The warehouse's verdict: `fulfil_order.lua` and its calls.

use std::sync::LazyLock;

use domain::OrderEvent;
use redis::{FromRedisValue, ParsingError, Script, Value};

use super::{number, reason, unexpected, words, Ack, ArgLayout, Call};
use crate::keys::{PartitionKeys, Stream};

/// The script as Redis runs it: the shared batch and live-stream helpers, then its own code.
pub(super) const SOURCE: &str = concat!(
    include_str!("batch_prelude.lua"),
    "\n",
    include_str!("live_prelude.lua"),
    "\n",
    include_str!("fulfil_order.lua")
);
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));
/// Its arguments: 9 first, then 4 per order; `fulfil_order.lua` declares the same.
pub(super) const ARGS: ArgLayout = ArgLayout { head: 9, each: 4 };

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
    /// As [`super::Change::Stray`].
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

const FULFIL: &str = "fulfil_order.lua";

/// One entry of a batch the warehouse applies: [`super::Applying`], with the
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
    let mut call = Call::new(&SCRIPT, &touched)
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
    call.laid_out(ARGS, orders.len())
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
