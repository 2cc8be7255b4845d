//! Pricing of an order: subtotal, fee and total, in integer cents.
//!
//! The original charged the fee on one unit only; here the fee is 20% of the
//! whole subtotal, rounded to the cent with halves rounded up.

use serde::{Deserialize, Serialize};

use crate::money::Cents;
use crate::quantity::Quantity;

/// The shop's fee, in percent of the subtotal.
pub const FEE_PERCENT: u64 = 20;

/// The price of an order, as charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Price of one unit at the time of the order.
    pub unit_price: Cents,
    pub quantity: Quantity,
    /// `unit_price × quantity`.
    pub subtotal: Cents,
    /// [`FEE_PERCENT`] of the subtotal, rounded half up to the cent.
    pub fee: Cents,
    /// `subtotal + fee`.
    pub total: Cents,
}

/// Prices `quantity` units at `unit_price`.
///
/// Cannot overflow for valid inputs (a price is at most 1,000,000.00 and a
/// quantity at most 10,000), but stays checked so no input can wrap around.
pub fn quote(unit_price: Cents, quantity: Quantity) -> Option<Quote> {
    let subtotal = unit_price.checked_mul(u64::from(quantity.get()))?;
    let fee = percent_half_up(subtotal, FEE_PERCENT)?;
    let total = subtotal.checked_add(fee)?;
    Some(Quote { unit_price, quantity, subtotal, fee, total })
}

/// `amount × percent / 100`, rounded to the nearest cent, halves up.
fn percent_half_up(amount: Cents, percent: u64) -> Option<Cents> {
    let scaled = amount.0.checked_mul(percent)?;
    Some(Cents((scaled + 50) / 100))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: u32) -> Quantity {
        Quantity::new(n).unwrap()
    }

    #[test]
    fn fee_is_charged_on_the_whole_order() {
        let priced = quote(Cents(1000), q(3)).unwrap();
        assert_eq!(priced.subtotal, Cents(3000));
        assert_eq!(priced.fee, Cents(600));
        assert_eq!(priced.total, Cents(3600));
        assert_eq!(priced.unit_price, Cents(1000));
    }

    #[test]
    fn fee_rounds_to_the_nearest_cent_half_up() {
        // 20% of 0.01 is 0.002 → 0.00; of 0.03 is 0.006 → 0.01.
        assert_eq!(quote(Cents(1), q(1)).unwrap().fee, Cents(0));
        assert_eq!(quote(Cents(3), q(1)).unwrap().fee, Cents(1));
        // 20% of 0.99 × 3 = 2.97 is 0.594 → 0.59.
        assert_eq!(quote(Cents(99), q(3)).unwrap().fee, Cents(59));
        assert_eq!(percent_half_up(Cents(250), 1), Some(Cents(3)), "2.5 cents rounds up");
        assert_eq!(percent_half_up(Cents(249), 1), Some(Cents(2)));
    }

    #[test]
    fn total_is_subtotal_plus_fee_for_every_small_case() {
        for cents in 0..500 {
            for n in 1..12 {
                let priced = quote(Cents(cents), q(n)).unwrap();
                assert_eq!(priced.subtotal.0, cents * u64::from(n));
                assert_eq!(priced.total.0, priced.subtotal.0 + priced.fee.0);
                // Exact rounding: |fee × 100 − subtotal × 20| ≤ 50.
                let diff = (priced.fee.0 * 100).abs_diff(priced.subtotal.0 * 20);
                assert!(diff <= 50, "{priced:?}");
            }
        }
    }

    #[test]
    fn largest_valid_order_is_priced_without_overflow() {
        let largest = quote(crate::money::MAX_PRICE, Quantity::MAX).unwrap();
        assert_eq!(largest.total, Cents(100_000_000 * 10_000 * 6 / 5));
        assert_eq!(quote(Cents(u64::MAX), q(2)), None);
    }

    #[test]
    fn zero_price_orders_are_free() {
        let free = quote(Cents::ZERO, q(5)).unwrap();
        assert_eq!((free.subtotal, free.fee, free.total), (Cents::ZERO, Cents::ZERO, Cents::ZERO));
    }
}
