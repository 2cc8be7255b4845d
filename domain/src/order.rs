//! Orders and their life: `pending → completed → fulfilled | refunded`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::money::Cents;

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

    /// Checks the move `self → next`.
    ///
    /// The store's scripts apply each change only from its allowed previous
    /// status, which makes redelivered events harmless:
    /// - pending → completed (payment done);
    /// - completed → fulfilled | refunded (the warehouse's verdict);
    /// - pending → refunded (the order's processing failed for good and it
    ///   was dead-lettered: refunded rather than left hanging).
    pub fn transition(self, next: OrderStatus) -> Result<OrderStatus, TransitionError> {
        use OrderStatus::*;
        match (self, next) {
            (Pending, Completed) | (Completed, Fulfilled) | (Completed, Refunded) | (Pending, Refunded) => Ok(next),
            _ => Err(TransitionError { from: self, to: next }),
        }
    }

    /// Whether the order has reached the end of its life.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Fulfilled | OrderStatus::Refunded)
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

/// How many units one order takes: 1 to [`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct Quantity(u32);

/// A quantity outside 1..=10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("quantity must be a whole number from 1 to 10000")]
pub struct QuantityError;

impl Quantity {
    pub const MAX: Quantity = Quantity(10_000);

    pub fn new(units: u32) -> Result<Quantity, QuantityError> {
        if (1..=Self::MAX.0).contains(&units) {
            Ok(Quantity(units))
        } else {
            Err(QuantityError)
        }
    }

    /// Parses a form field: a whole number, surrounding white space allowed.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        text.trim().parse::<u32>().map_err(|_| QuantityError).and_then(Quantity::new)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u64> for Quantity {
    type Error = QuantityError;
    fn try_from(units: u64) -> Result<Self, Self::Error> {
        u32::try_from(units).map_err(|_| QuantityError).and_then(Quantity::new)
    }
}

impl From<Quantity> for u32 {
    fn from(quantity: Quantity) -> u32 {
        quantity.0
    }
}

/// An order as stored and as the REST API shows it (the original's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    /// A ULID: unique and sortable by creation time.
    pub id: String,
    pub product_id: String,
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

    #[test]
    fn quantity_is_one_to_ten_thousand() {
        assert!(Quantity::new(0).is_err());
        assert_eq!(Quantity::new(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::new(10_000).map(Quantity::get), Ok(10_000));
        assert!(Quantity::new(10_001).is_err());
        assert_eq!(Quantity::parse(" 7 ").map(Quantity::get), Ok(7));
        assert!(Quantity::parse("2.5").is_err());
        assert!(Quantity::parse("-1").is_err());
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert!(serde_json::from_str::<Quantity>("1.5").is_err());
        assert!(serde_json::from_str::<Quantity>("99999999999").is_err());
        assert_eq!(serde_json::from_str::<Quantity>("3").unwrap().get(), 3);
    }
}
