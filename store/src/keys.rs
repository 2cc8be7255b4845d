//! Every Redis key, stream and consumer-group name in one place.
//!
//! A move to Redis Cluster would put one hash tag into these names so that the
//! keys a script touches share a slot; that change is contained in this file.

/// Hash of one product: `id, name, price` (cents), `quantity` (stock).
pub fn product(id: &str) -> String {
    format!("product:{id}")
}

/// Hash of one order: ids, prices in cents, `status`, timestamps, `refund_reason`.
pub fn order(id: &str) -> String {
    format!("order:{id}")
}

/// String holding the order id created for a client's idempotency key, for
/// the idempotency window.
pub fn order_idempotency(key: &str) -> String {
    format!("idempotency:order:{key}")
}

/// String holding the product (as JSON) created for a client's idempotency
/// key, for the idempotency window.
pub fn product_idempotency(key: &str) -> String {
    format!("idempotency:product:{key}")
}

/// String marking a signed-in admin session (value `1`), until it expires.
pub fn admin_session(session_id: &str) -> String {
    format!("admin-session:{session_id}")
}

/// Hash of order counts by status (`pending`, `completed`, ...), kept by the
/// scripts in the same step as each change, for metrics.
pub const ORDER_COUNTS: &str = "stats:orders-by-status";

/// Sorted set of all product ids (score 0; ULIDs sort by creation time).
pub const PRODUCTS: &str = "products";
/// Sorted set of all order ids (score 0; ULIDs sort by creation time).
pub const ORDERS: &str = "orders";

/// Stream names.
pub mod stream {
    /// Outbox of new orders, written with the order itself.
    pub const ORDER_PLACED: &str = "order-placed";
    /// Paid orders, for the warehouse.
    pub const ORDER_COMPLETED: &str = "order-completed";
    /// Orders the warehouse could not fulfil.
    pub const REFUND_INITIATED: &str = "refund-initiated";
    /// Every status change, for the live feed.
    pub const ORDER_STATUS: &str = "order-status";

    /// Where entries of `stream` go when they cannot be processed.
    pub fn dead_letters(stream: &str) -> String {
        format!("{stream}-dead")
    }
}

/// Consumer-group names.
pub mod group {
    pub const PAYMENT: &str = "payment";
    pub const WAREHOUSE: &str = "warehouse";
    pub const REFUND: &str = "refund";
}
