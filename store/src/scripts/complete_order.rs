//! Payment done: `complete_order.lua` and its calls.

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
    include_str!("complete_order.lua")
);
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));
/// Its arguments: 5 first, then 2 per order; `complete_order.lua` declares the same.
pub(super) const ARGS: ArgLayout = ArgLayout { head: 5, each: 2 };

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
    let mut call =
        Call::new(&SCRIPT, &touched).guard(OrderEvent::PaymentCompleted).arg(now).arg(group).arg(index_count);
    for order in orders {
        call = call.arg(order.order_id).arg(order.entry_id.unwrap_or(""));
    }
    call.laid_out(ARGS, orders.len())
}

/// [`complete_orders`] for one order.
pub fn complete_order(keys: &PartitionKeys, order_id: &str, now: u64, ack: Option<Ack>) -> Call<Change> {
    let order = Applying { order_id, entry_id: ack.map(|ack| ack.entry_id) };
    complete_orders(keys, ack.map_or("", |ack| ack.group), &[order], now).single()
}
