//! Indexing orders older than their indexes: `index_orders.lua` and its call.

use std::sync::LazyLock;

use domain::OrderStatus;
use redis::Script;

use super::{ArgLayout, Call};
use crate::keys::PartitionKeys;

/// The script as Redis runs it: the shared batch helpers, then its own code.
pub(super) const SOURCE: &str = concat!(include_str!("batch_prelude.lua"), "\n", include_str!("index_orders.lua"));
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));
/// Its arguments: 1 first, then 1 per order; `index_orders.lua` declares the same.
pub(super) const ARGS: ArgLayout = ArgLayout { head: 1, each: 1 };

/// Indexes orders saved before the index of orders by status and product
/// existed (see `index_orders.lua`). Replies how many of them exist.
pub fn index_orders(keys: &PartitionKeys, ids: &[String]) -> Call<u64> {
    let indexes: Vec<String> = OrderStatus::ALL.iter().map(|status| keys.orders_by_product(*status)).collect();
    let count = indexes.len();
    let mut touched = indexes;
    touched.extend(ids.iter().map(|id| keys.order(id)));
    let mut call = Call::new(&SCRIPT, &touched).arg(count);
    for id in ids {
        call = call.arg(id);
    }
    call.laid_out(ARGS, ids.len())
}
