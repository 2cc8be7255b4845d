//! Removing a product: `delete_product.lua` and its call.

use std::sync::LazyLock;

use redis::Script;

use super::{Announce, Call};
use crate::keys::{PartitionKeys, Stream};

/// The script as Redis runs it: the live-stream helpers, then its own code.
pub(super) const SOURCE: &str = concat!(include_str!("live_prelude.lua"), "\n", include_str!("delete_product.lua"));
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));

/// Removes the product `id` named `name`, from the products index and the
/// search index too, and announces it to the live feed (see
/// `delete_product.lua`). Replies whether it was there.
pub fn delete_product(keys: &PartitionKeys, id: &str, name: &str, announce: Announce) -> Call<bool> {
    let mut touched = vec![keys.product(id), keys.products(), keys.stream(Stream::OrderStatus)];
    touched.extend(domain::search::index_prefixes(name).iter().map(|prefix| keys.product_prefix(prefix)));
    Call::new(&SCRIPT, &touched).arg(id).arg(announce.maxlen).arg(announce.now)
}
