//! Every Redis key, stream and consumer-group name in one place.
//!
//! A key is `<namespace>:{pNN}:<name>`: the namespace (`REDIS_NAMESPACE`) lets
//! Stockflow share a Redis with other applications, and the hash tag `{pNN}`
//! puts every key of one partition into one hash slot of a cluster, so a Lua
//! script that touches several of them never spans two slots. The few keys
//! that belong to no partition (the recorded partition count, admin sessions)
//! are read and written one at a time.
//!
//! | key | type | what |
//! |---|---|---|
//! | `<ns>:{pNN}:product:<id>` | hash | `id, name, price` (cents), `quantity` (stock) |
//! | `<ns>:{pNN}:order:<id>` | hash | ids, prices in cents, `status`, timestamps, `refund_reason`, and `at:<step>` for each step of its timeline |
//! | `<ns>:{pNN}:products`, `<ns>:{pNN}:orders` | sorted set | ids, score 0: sorted by id, so by creation time |
//! | `<ns>:{pNN}:orders:<status>` | sorted set | the partition's order ids in one status, moved by the scripts |
//! | `<ns>:{pNN}:orders:<status>:by-product` | sorted set | `<product id>:<order id>` of the partition's orders in one status, moved by the scripts |
//! | `<ns>:{pNN}:product-orders:<product id>` | sorted set | one product's order ids |
//! | `<ns>:{pNN}:product-prefix:<prefix>` | sorted set | ids of the products a word of whose name starts with `<prefix>` (2 to 10 characters, lower case) |
//! | `<ns>:{pNN}:search-indexes` | string | `1` once the two indexes above hold every product and order of the partition |
//! | `<ns>:{pNN}:idempotency:order:<key>` | string | the order id an `Idempotency-Key` created |
//! | `<ns>:{pNN}:idempotency:product:<key>` | string | the product (JSON) an `Idempotency-Key` created |
//! | `<ns>:{pNN}:<stream>`, `<ns>:{pNN}:<stream>-dead` | stream | the partition's events and dead letters |
//! | `<ns>:{pNN}:dead-letters-dropped` | hash | dead letters that fell off the cap, by stream |
//! | `<ns>:{pNN}:migrated-entries` | set | the stream entries `workers migrate` copied into the partition |
//! | `<ns>:partitions` | string | the partition count, recorded on first start |
//! | `<ns>:admin-session:<id>` | string | a signed-in admin session |
//! | `<ns>:legacy-orders` | hash | order id → partition, for orders migrated from before partitions whose id does not name their partition |

use std::sync::Arc;

use domain::{Id, OrderStatus};

use crate::partition::{Partition, Partitions};

/// Namespace of a deployment that does not say.
pub const DEFAULT_NAMESPACE: &str = "stockflow";

/// The streams every partition has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Outbox of new orders, written with the order itself.
    OrderPlaced,
    /// Paid orders, for the warehouse.
    OrderCompleted,
    /// Orders the warehouse could not fulfil.
    RefundInitiated,
    /// The status changes no work stream records (fulfilled, refunded), for the live feed.
    OrderStatus,
}

impl Stream {
    pub const ALL: [Stream; 4] =
        [Stream::OrderPlaced, Stream::OrderCompleted, Stream::RefundInitiated, Stream::OrderStatus];

    /// The work streams: each has a consumer group that works through it
    /// (and a trimmer that keeps it bounded without dropping unprocessed entries).
    pub const WORK: [Stream; 3] = [Stream::OrderPlaced, Stream::OrderCompleted, Stream::RefundInitiated];

    /// The streams the live feed relays: each entry of these is one status
    /// change (`order-placed` is `pending`, `order-completed` is `completed`,
    /// `order-status` the rest). In the order of the steps they record: an
    /// order's earlier change is always in an earlier stream of this list.
    pub const LIVE: [Stream; 3] = [Stream::OrderPlaced, Stream::OrderCompleted, Stream::OrderStatus];

    /// The stream's name within a partition (and in metrics labels).
    pub fn name(self) -> &'static str {
        match self {
            Stream::OrderPlaced => stream::ORDER_PLACED,
            Stream::OrderCompleted => stream::ORDER_COMPLETED,
            Stream::RefundInitiated => stream::REFUND_INITIATED,
            Stream::OrderStatus => stream::ORDER_STATUS,
        }
    }

    /// The consumer group that works through the stream (`order-status` has
    /// none: servers follow it with plain XREAD).
    pub fn group(self) -> Option<&'static str> {
        match self {
            Stream::OrderPlaced => Some(group::PAYMENT),
            Stream::OrderCompleted => Some(group::WAREHOUSE),
            Stream::RefundInitiated => Some(group::REFUND),
            Stream::OrderStatus => None,
        }
    }
}

/// Stream base names.
pub mod stream {
    pub const ORDER_PLACED: &str = "order-placed";
    pub const ORDER_COMPLETED: &str = "order-completed";
    pub const REFUND_INITIATED: &str = "refund-initiated";
    pub const ORDER_STATUS: &str = "order-status";
}

/// Consumer-group names.
pub mod group {
    pub const PAYMENT: &str = "payment";
    pub const WAREHOUSE: &str = "warehouse";
    pub const REFUND: &str = "refund";
}

/// The key layout of one deployment: its namespace and partitions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Layout {
    namespace: Arc<str>,
    partitions: Partitions,
    keys: Arc<[PartitionKeys]>,
}

/// A namespace that cannot be used, with a message saying why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("REDIS_NAMESPACE must be 1 to 64 letters, digits, '-', '_' or '.', got {0:?}")]
pub struct BadNamespace(pub String);

impl Layout {
    pub fn new(namespace: &str, partitions: Partitions) -> Result<Layout, BadNamespace> {
        let valid = (1..=64).contains(&namespace.len())
            && namespace.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(BadNamespace(namespace.to_string()));
        }
        let keys = partitions
            .all()
            .map(|partition| PartitionKeys { partition, prefix: format!("{namespace}:{{{partition}}}:").into() })
            .collect();
        Ok(Layout { namespace: namespace.into(), partitions, keys })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn partitions(&self) -> Partitions {
        self.partitions
    }

    /// The keys of one partition.
    pub fn keys(&self, partition: Partition) -> &PartitionKeys {
        &self.keys[partition.index() as usize]
    }

    /// The keys of every partition, in order.
    pub fn all(&self) -> impl Iterator<Item = &PartitionKeys> {
        self.keys.iter()
    }

    /// The keys of the partition `id` lives in.
    pub fn keys_of_id(&self, id: &Id) -> &PartitionKeys {
        self.keys(self.partitions.of_id(id))
    }

    /// String holding the partition count, recorded on first start.
    pub fn partition_count(&self) -> String {
        format!("{}:partitions", self.namespace)
    }

    /// String marking a signed-in admin session (value `1`), until it expires.
    pub fn admin_session(&self, session_id: &str) -> String {
        format!("{}:admin-session:{session_id}", self.namespace)
    }

    /// Hash of order id → partition, for the orders `workers migrate` moved
    /// from the layout before partitions into a partition their id does not
    /// name (the partition of their product). Orders made since name theirs.
    pub fn legacy_orders(&self) -> String {
        format!("{}:legacy-orders", self.namespace)
    }
}

/// The keys of one partition; every one carries the partition's hash tag.
#[derive(Debug, Clone)]
pub struct PartitionKeys {
    partition: Partition,
    /// `<namespace>:{pNN}:`
    prefix: Arc<str>,
}

impl PartitionKeys {
    pub fn partition(&self) -> Partition {
        self.partition
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Hash of one product.
    pub fn product(&self, id: &str) -> String {
        self.key(&format!("product:{id}"))
    }

    /// Hash of one order.
    pub fn order(&self, id: &str) -> String {
        self.key(&format!("order:{id}"))
    }

    /// Sorted set of the partition's product ids.
    pub fn products(&self) -> String {
        self.key("products")
    }

    /// Sorted set of the partition's order ids.
    pub fn orders(&self) -> String {
        self.key("orders")
    }

    /// Sorted set of the partition's order ids in one status (score 0):
    /// filters lists by status, and counts orders by status.
    pub fn orders_in(&self, status: OrderStatus) -> String {
        self.key(&format!("orders:{status}"))
    }

    /// Sorted set of the partition's orders in one status by product: members
    /// `<product id>:<order id>` (score 0), so one product's orders in that
    /// status are one range of it, newest last. Moved by the scripts in the
    /// same step as the status.
    pub fn orders_by_product(&self, status: OrderStatus) -> String {
        self.key(&format!("orders:{status}:by-product"))
    }

    /// The indexes of every status, in [`OrderStatus::ALL`] order, then those
    /// of every status by product: the keys a status change may move an
    /// order between.
    pub fn status_indexes(&self) -> Vec<String> {
        let plain = OrderStatus::ALL.iter().map(|status| self.orders_in(*status));
        plain.chain(OrderStatus::ALL.iter().map(|status| self.orders_by_product(*status))).collect()
    }

    /// Sorted set of the ids of the partition's products (score 0) one of
    /// whose name's words starts with `prefix` (see [`domain::search`]).
    pub fn product_prefix(&self, prefix: &str) -> String {
        self.key(&format!("product-prefix:{prefix}"))
    }

    /// String marking that the partition's search indexes hold every product
    /// and order (written after they were built for data older than them).
    pub fn search_indexes_built(&self) -> String {
        self.key("search-indexes")
    }

    /// Sorted set of the ids of one product's orders (score 0), in the
    /// product's partition.
    pub fn product_orders(&self, product_id: &str) -> String {
        self.key(&format!("product-orders:{product_id}"))
    }

    /// The order id created for a client's idempotency key.
    pub fn order_idempotency(&self, key: &str) -> String {
        self.key(&format!("idempotency:order:{key}"))
    }

    /// The product (as JSON) created for a client's idempotency key.
    pub fn product_idempotency(&self, key: &str) -> String {
        self.key(&format!("idempotency:product:{key}"))
    }

    /// One of the partition's streams.
    pub fn stream(&self, stream: Stream) -> String {
        self.key(stream.name())
    }

    /// Where entries of `stream` go when they cannot be processed.
    pub fn dead_letters(&self, stream: Stream) -> String {
        self.key(&format!("{}-dead", stream.name()))
    }

    /// Hash of how many dead letters of each stream fell off the cap
    /// (`DEAD_LETTER_MAXLEN`), by stream key, for metrics.
    pub fn dead_letters_dropped(&self) -> String {
        self.key("dead-letters-dropped")
    }

    /// Set of the stream entries `workers migrate` copied into this
    /// partition (removed when the migration finishes).
    pub fn migrated_entries(&self) -> String {
        self.key("migrated-entries")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_key_carries_the_namespace_and_the_hash_tag() {
        let layout = Layout::new("shop-1", Partitions::new(16).unwrap()).unwrap();
        let keys = layout.keys(Partitions::new(16).unwrap().nth(7));
        assert_eq!(keys.product("X"), "shop-1:{p07}:product:X");
        assert_eq!(keys.order("Y"), "shop-1:{p07}:order:Y");
        assert_eq!(keys.orders(), "shop-1:{p07}:orders");
        assert_eq!(keys.orders_in(OrderStatus::Fulfilled), "shop-1:{p07}:orders:fulfilled");
        assert_eq!(keys.product_orders("P"), "shop-1:{p07}:product-orders:P");
        assert_eq!(keys.stream(Stream::OrderPlaced), "shop-1:{p07}:order-placed");
        assert_eq!(keys.dead_letters(Stream::OrderCompleted), "shop-1:{p07}:order-completed-dead");
        assert_eq!(keys.order_idempotency("k"), "shop-1:{p07}:idempotency:order:k");
        assert_eq!(layout.partition_count(), "shop-1:partitions");
        assert_eq!(layout.all().count(), 16);
    }

    /// The README's key table (under "Data layout") names every key as
    /// this module makes it, so the two cannot drift apart.
    #[test]
    fn the_readmes_key_table_names_every_key_as_it_is_made() {
        let readme = include_str!("../../README.md");
        let table = readme.split("### Data layout").nth(1).and_then(|rest| rest.split("**Which partition.**").next());
        let table = table.expect("README.md has a Data layout section");
        let layout = Layout::new("stockflow", Partitions::new(16).unwrap()).unwrap();
        let keys = layout.keys(Partitions::new(16).unwrap().nth(7));
        let status = |key: String| key.replace(OrderStatus::Pending.as_str(), "<status>");
        let stream = |key: String| key.replace(Stream::OrderPlaced.name(), "<stream>");
        let made = [
            keys.product("<id>"),
            keys.order("<id>"),
            keys.products(),
            keys.orders(),
            status(keys.orders_in(OrderStatus::Pending)),
            status(keys.orders_by_product(OrderStatus::Pending)),
            keys.product_orders("<product id>"),
            keys.product_prefix("<prefix>"),
            keys.search_indexes_built(),
            keys.dead_letters_dropped(),
            keys.order_idempotency("<key>"),
            keys.product_idempotency("<key>"),
            stream(keys.stream(Stream::OrderPlaced)),
            stream(keys.dead_letters(Stream::OrderPlaced)),
            keys.migrated_entries(),
            layout.partition_count(),
            layout.admin_session("<id>"),
            layout.legacy_orders(),
        ];
        let missing: Vec<&String> = made.iter().filter(|key| !table.contains(&format!("`{key}`"))).collect();
        assert!(missing.is_empty(), "keys the README's Data layout table does not name: {missing:?}");
    }

    #[test]
    fn a_namespace_is_a_plain_word() {
        let partitions = Partitions::default();
        assert!(Layout::new("stockflow", partitions).is_ok());
        for bad in ["", "a b", "{x}", "a:b", &"n".repeat(65)] {
            assert!(Layout::new(bad, partitions).is_err(), "{bad}");
        }
    }
}
