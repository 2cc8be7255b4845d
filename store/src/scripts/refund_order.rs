//! Refunds the warehouse initiated: `refund_order.lua` and its calls.

use std::sync::LazyLock;

use domain::OrderEvent;
use redis::Script;

use super::{Ack, Applying, ArgLayout, Call, Change};
use crate::keys::{PartitionKeys, Stream};

/// The script as Redis runs it: the shared batch and live-stream helpers, then its own code.
pub(super) const SOURCE: &str = concat!(
    include_str!("batch_prelude.lua"),
    "\n",
    include_str!("live_prelude.lua"),
    "\n",
    include_str!("refund_order.lua")
);
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));
/// Its arguments: 6 first, then 2 per order; `refund_order.lua` declares the same.
pub(super) const ARGS: ArgLayout = ArgLayout { head: 6, each: 2 };

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
    let mut call = Call::new(&SCRIPT, &touched)
        .guard(OrderEvent::RefundApplied)
        .arg(now)
        .arg(status_maxlen)
        .arg(group)
        .arg(index_count);
    for order in orders {
        call = call.arg(order.order_id).arg(order.entry_id.unwrap_or(""));
    }
    call.laid_out(ARGS, orders.len())
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
