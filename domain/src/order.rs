//! Orders and their life: `pending → completed → fulfilled | refunded`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::money::Cents;
use crate::quantity::Quantity;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Priced and saved; waiting for payment.
    Pending,
    /// Paid; the warehouse has yet to take the stock.
    Completed,
    /// The warehouse took the stock. Terminal.
    Fulfilled,
    /// Money returned: the warehouse could not fulfil the order (not enough
    /// stock, product gone), or its processing failed for good. Terminal.
    Refunded,
}

/// A status change that the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct TransitionError {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] =
        [OrderStatus::Pending, OrderStatus::Completed, OrderStatus::Fulfilled, OrderStatus::Refunded];

    /// The status an order is saved with.
    pub const INITIAL: OrderStatus = OrderStatus::Pending;

    /// Checks the move `self → next`: allowed when some [`OrderEvent`] makes it.
    ///
    /// The store's scripts apply each change only from its allowed previous
    /// status, which makes redelivered events harmless:
    /// - pending → completed (payment done);
    /// - completed → fulfilled | refunded (the warehouse's verdict);
    /// - pending → refunded (the order's processing failed for good and it
    ///   was dead-lettered: refunded rather than left hanging).
    pub fn transition(self, next: OrderStatus) -> Result<OrderStatus, TransitionError> {
        let allowed = OrderEvent::ALL.iter().any(|event| event.apply(self) == Some(next));
        if allowed {
            Ok(next)
        } else {
            Err(TransitionError { from: self, to: next })
        }
    }

    /// Whether the order has reached the end of its life.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Fulfilled | OrderStatus::Refunded)
    }

    /// How far along its life an order in this status is (0, 1, then 2 for
    /// either final status): statuses only move forward, so a change to a
    /// status no further along is old news.
    pub fn progress(self) -> u8 {
        match self {
            OrderStatus::Pending => 0,
            OrderStatus::Completed => 1,
            OrderStatus::Fulfilled | OrderStatus::Refunded => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Completed => "completed",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Refunded => "refunded",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to an order, each applied by one script of the store.
///
/// This is the one statement of the order rules: the scripts are given, for
/// their event, the statuses it applies from ([`OrderEvent::applies_from`]) and
/// the status it leads to, and a test walks every (status, event) pair
/// through the real scripts against this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    /// Payment went through: pending → completed.
    PaymentCompleted,
    /// The warehouse took the stock: completed → fulfilled.
    StockTaken,
    /// The refund the warehouse initiated was applied: completed → refunded.
    RefundApplied,
    /// Processing failed for good (the entry was dead-lettered): an order
    /// that has not finished is refunded rather than left hanging.
    GivenUp,
}

impl OrderEvent {
    pub const ALL: [OrderEvent; 4] =
        [OrderEvent::PaymentCompleted, OrderEvent::StockTaken, OrderEvent::RefundApplied, OrderEvent::GivenUp];

    /// The statuses the event applies from; from any other it changes
    /// nothing (a redelivered or late event is harmless).
    pub fn applies_from(self) -> &'static [OrderStatus] {
        use OrderStatus::*;
        match self {
            OrderEvent::PaymentCompleted => &[Pending],
            OrderEvent::StockTaken | OrderEvent::RefundApplied => &[Completed],
            OrderEvent::GivenUp => &[Pending, Completed],
        }
    }

    /// The status the event leads to.
    pub fn leads_to(self) -> OrderStatus {
        match self {
            OrderEvent::PaymentCompleted => OrderStatus::Completed,
            OrderEvent::StockTaken => OrderStatus::Fulfilled,
            OrderEvent::RefundApplied | OrderEvent::GivenUp => OrderStatus::Refunded,
        }
    }

    /// The status after the event, or `None` when it does not apply from `from`.
    pub fn apply(self, from: OrderStatus) -> Option<OrderStatus> {
        self.applies_from().contains(&from).then(|| self.leads_to())
    }
}

/// A status name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for OrderStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// An order as stored and as the REST API shows it (the original's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    /// A ULID: unique and sortable by creation time.
    pub id: Id,
    pub product_id: Id,
    /// Unit price at the time of the order.
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 19.99))]
    pub price: Cents,
    /// The fee: 20% of `price × quantity`, rounded half up to the cent.
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 8.0))]
    pub fee: Cents,
    /// What the customer pays: `price × quantity + fee`.
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 47.98))]
    pub total: Cents,
    #[cfg_attr(feature = "openapi", schema(value_type = u32, minimum = 1, maximum = 10000))]
    pub quantity: Quantity,
    pub status: OrderStatus,
    /// Why the order was refunded, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Time of the last status change, milliseconds since the Unix epoch.
    pub updated_at: u64,
    /// Every step of the order's life so far, oldest first: its statuses, and
    /// `refund_initiated` when the warehouse decided to refund it.
    #[serde(default)]
    pub timeline: Vec<Step>,
}

/// One step of an order's life and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Step {
    /// `pending`, `completed`, `refund_initiated`, `fulfilled` or `refunded`.
    #[cfg_attr(feature = "openapi", schema(example = "completed"))]
    pub step: String,
    /// When, in milliseconds since the Unix epoch.
    pub at: u64,
}

/// The step the warehouse takes when it decides to refund: not a status of
/// its own, but a moment in the order's life.
pub const REFUND_INITIATED: &str = "refund_initiated";

/// Every step of an order's timeline, in the order they happen.
pub const STEPS: [&str; 5] = ["pending", "completed", REFUND_INITIATED, "fulfilled", "refunded"];

/// Where a timeline step comes among [`STEPS`] (unknown steps last): the
/// order of steps that happened in the same millisecond.
pub fn step_rank(step: &str) -> usize {
    STEPS.iter().position(|s| *s == step).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod steps {
    use super::*;

    #[test]
    fn steps_and_statuses_come_in_the_order_of_an_orders_life() {
        for status in OrderStatus::ALL {
            assert!(step_rank(status.as_str()) < STEPS.len(), "{status:?} is a step");
        }
        assert!(
            step_rank("completed") < step_rank(REFUND_INITIATED) && step_rank(REFUND_INITIATED) < step_rank("refunded")
        );
        assert_eq!(step_rank("something else"), usize::MAX);
        let progress: Vec<u8> = OrderStatus::ALL.iter().map(|s| s.progress()).collect();
        assert_eq!(progress, [0, 1, 2, 2]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn the_life_of_an_order_goes_forward_only() {
        assert_eq!(Pending.transition(Completed), Ok(Completed));
        assert_eq!(Completed.transition(Fulfilled), Ok(Fulfilled));
        assert_eq!(Completed.transition(Refunded), Ok(Refunded));
        assert_eq!(Pending.transition(Refunded), Ok(Refunded), "abandoned after failing for good");
        assert!(Pending.transition(Fulfilled).is_err(), "stock is only taken from paid orders");
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let allowed = matches!(
                    (from, to),
                    (Pending, Completed) | (Completed, Fulfilled) | (Completed, Refunded) | (Pending, Refunded)
                );
                assert_eq!(from.transition(to).is_ok(), allowed, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn each_event_applies_from_its_statuses_only() {
        assert_eq!(OrderEvent::PaymentCompleted.apply(Pending), Some(Completed));
        assert_eq!(OrderEvent::PaymentCompleted.apply(Completed), None, "a second payment changes nothing");
        assert_eq!(OrderEvent::StockTaken.apply(Completed), Some(Fulfilled));
        assert_eq!(OrderEvent::StockTaken.apply(Pending), None, "stock is only taken from paid orders");
        assert_eq!(OrderEvent::RefundApplied.apply(Completed), Some(Refunded));
        assert_eq!(OrderEvent::GivenUp.apply(Pending), Some(Refunded));
        assert_eq!(OrderEvent::GivenUp.apply(Completed), Some(Refunded));
        for event in OrderEvent::ALL {
            assert_eq!(event.apply(Fulfilled), None, "{event:?} after the end");
            assert_eq!(event.apply(Refunded), None, "{event:?} after the end");
        }
    }

    #[test]
    fn terminal_states_allow_no_further_change() {
        for terminal in [Fulfilled, Refunded] {
            assert!(terminal.is_terminal());
            assert!(OrderStatus::ALL.iter().all(|&to| terminal.transition(to).is_err()));
        }
        assert!(!Pending.is_terminal() && !Completed.is_terminal());
    }

    #[test]
    fn status_names_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>(), Ok(status));
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{status}\""));
        }
        assert!("shipped".parse::<OrderStatus>().is_err());
    }
}
