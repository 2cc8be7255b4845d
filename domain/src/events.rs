//! Events that cross process boundaries and reach the browser.

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::order::OrderStatus;

/// One change of an order's status, as published on the `order-status`
/// stream and relayed to browsers over server-sent events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub order_id: Id,
    pub product_id: Id,
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

/// What happened to a product, as a [`ProductChange`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductEvent {
    Created,
    Restocked,
    Deleted,
}

impl ProductEvent {
    pub const ALL: [ProductEvent; 3] = [ProductEvent::Created, ProductEvent::Restocked, ProductEvent::Deleted];

    /// The name on the stream and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ProductEvent::Created => "created",
            ProductEvent::Restocked => "restocked",
            ProductEvent::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<ProductEvent> {
        ProductEvent::ALL.into_iter().find(|event| event.as_str() == text)
    }

    /// Whether it changes which products a list shows (a restock only
    /// changes a stock).
    pub fn changes_the_catalogue(self) -> bool {
        self != ProductEvent::Restocked
    }
}

/// A change of the catalogue, written by the same step as the change itself
/// on the `order-status` stream of the product's partition, and relayed to
/// browsers as a `product` event of the live feed: every open page follows
/// products as it follows orders, with the same resume guarantees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductChange {
    pub product_id: Id,
    pub event: ProductEvent,
    /// The stock after it (created, restocked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<u32>,
    /// When, in milliseconds since the Unix epoch.
    pub at: u64,
}

/// Why the warehouse could not fulfil an order; the text goes into the order's
/// `refund_reason` and the refund event.
pub mod refund_reason {
    pub const INSUFFICIENT_STOCK: &str = "insufficient stock";
    pub const PRODUCT_GONE: &str = "product no longer exists";
    /// How the reason of a refund after the order's processing failed for
    /// good (its entry was dead-lettered) starts; the error follows.
    pub const PROCESSING_FAILED: &str = "processing failed: ";

    /// The reason of a refund after processing failed for good with `error`.
    pub fn processing_failed(error: &str) -> String {
        format!("{PROCESSING_FAILED}{error}")
    }

    /// Why an order was refunded, as its reason tells.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RefundCause {
        /// The warehouse had too little stock.
        InsufficientStock,
        /// The product was deleted while the order was in flight.
        ProductGone,
        /// The order's processing failed for good (dead-lettered).
        ProcessingFailed,
    }

    impl RefundCause {
        /// The cause a refund reason names, `None` for a reason of no
        /// known kind (an older version's, say).
        pub fn of(reason: &str) -> Option<RefundCause> {
            match reason {
                INSUFFICIENT_STOCK => Some(RefundCause::InsufficientStock),
                PRODUCT_GONE => Some(RefundCause::ProductGone),
                _ if reason.starts_with(PROCESSING_FAILED) => Some(RefundCause::ProcessingFailed),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_event_reads_back_from_its_name_and_says_what_it_changes() {
        for event in ProductEvent::ALL {
            assert_eq!(ProductEvent::parse(event.as_str()), Some(event));
        }
        assert_eq!(ProductEvent::parse("renamed"), None);
        assert!(ProductEvent::Created.changes_the_catalogue() && ProductEvent::Deleted.changes_the_catalogue());
        assert!(!ProductEvent::Restocked.changes_the_catalogue());
    }

    #[test]
    fn a_refund_reason_tells_its_cause() {
        use refund_reason::{processing_failed, RefundCause};
        assert_eq!(RefundCause::of(refund_reason::INSUFFICIENT_STOCK), Some(RefundCause::InsufficientStock));
        assert_eq!(RefundCause::of(refund_reason::PRODUCT_GONE), Some(RefundCause::ProductGone));
        let failed = processing_failed("delivered 6 times");
        assert_eq!(failed, "processing failed: delivered 6 times");
        assert_eq!(RefundCause::of(&failed), Some(RefundCause::ProcessingFailed));
        assert_eq!(RefundCause::of("customer changed their mind"), None);
    }

    #[test]
    fn a_product_change_in_json_names_its_event() {
        let product_id = Id::parse("01JD3V6Q8ZK0M9X4W2T7Y5B1CE").unwrap();
        let change = ProductChange { product_id, event: ProductEvent::Restocked, stock: Some(7), at: 5 };
        let json = serde_json::to_string(&change).unwrap();
        assert_eq!(json, r#"{"product_id":"01JD3V6Q8ZK0M9X4W2T7Y5B1CE","event":"restocked","stock":7,"at":5}"#);
        assert_eq!(serde_json::from_str::<ProductChange>(&json).unwrap(), change);
    }
}
