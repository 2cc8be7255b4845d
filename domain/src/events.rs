//! Events that cross process boundaries and reach the browser.

use serde::{Deserialize, Serialize};

use crate::order::OrderStatus;

/// One change of an order's status, as published on the `order-status`
/// stream and relayed to browsers over server-sent events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub order_id: String,
    pub product_id: String,
    /// The status the order has now.
    pub status: OrderStatus,
    /// The product's stock after the change, when the change moved stock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<u32>,
    /// Why, for a refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When, in milliseconds since the Unix epoch.
    pub at: u64,
}

/// Why the warehouse could not fulfil an order; the text goes into the order's
/// `refund_reason` and the refund event.
pub mod refund_reason {
    pub const INSUFFICIENT_STOCK: &str = "insufficient stock";
    pub const PRODUCT_GONE: &str = "product no longer exists";
}
