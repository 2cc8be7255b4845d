//! The order and product records as Redis hashes: their field names, and
//! the one conversion between a hash and the domain's [`Order`] and
//! [`Product`].
//!
//! The shop reads through here, and the bulk loader (the bench's seed)
//! writes orders through here (products only ever come from their script).
//! The Lua scripts, which write the live records, cannot import these
//! names; a test (`store/tests/scripts.rs`) checks that what they write is a
//! record of this shape, the same as the bulk loader's.

use std::collections::HashMap;

use domain::order::{step_rank, UnknownStatus, REFUND_INITIATED};
use domain::{Cents, Id, Order, OrderStatus, Product, Quantity, Step};

use crate::error::{StoreError, StoreResult};

/// A hash as `HGETALL` returns it.
pub type Fields = HashMap<String, String>;

/// The fields of an order's hash.
pub mod order {
    pub const ID: &str = "id";
    pub const PRODUCT_ID: &str = "product_id";
    /// The unit price, in cents, as priced.
    pub const PRICE: &str = "price";
    pub const QUANTITY: &str = "quantity";
    /// In cents.
    pub const FEE: &str = "fee";
    /// In cents.
    pub const TOTAL: &str = "total";
    pub const STATUS: &str = "status";
    /// Milliseconds since the Unix epoch.
    pub const CREATED_AT: &str = "created_at";
    /// Milliseconds since the Unix epoch, of the last status change.
    pub const UPDATED_AT: &str = "updated_at";
    /// Why the warehouse or the dead-letter script refunds it, once one did.
    pub const REFUND_REASON: &str = "refund_reason";
    /// The W3C trace context of the request that placed it, when traces are on.
    pub const TRACEPARENT: &str = "traceparent";
    /// Every order has these.
    pub const REQUIRED: [&str; 9] = [ID, PRODUCT_ID, PRICE, QUANTITY, FEE, TOTAL, STATUS, CREATED_AT, UPDATED_AT];
    /// An order may have these too, besides its timeline's `at:<step>`.
    pub const OPTIONAL: [&str; 2] = [REFUND_REASON, TRACEPARENT];
    /// The start of a timeline field: `at:<step>` holds when the step happened.
    pub const STEP_PREFIX: &str = "at:";

    /// The field of the timeline step `step` (`at:completed`).
    pub fn step(step: &str) -> String {
        format!("{STEP_PREFIX}{step}")
    }
}

/// The fields of a product's hash.
pub mod product {
    pub const ID: &str = "id";
    pub const NAME: &str = "name";
    /// In cents.
    pub const PRICE: &str = "price";
    /// Units in stock.
    pub const QUANTITY: &str = "quantity";
    /// Every product has exactly these.
    pub const ALL: [&str; 4] = [ID, NAME, PRICE, QUANTITY];
}

/// An order as its hash's fields: every field it has, its timeline included.
pub fn order_fields(order: &Order) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = [
        (order::ID, order.id.to_string()),
        (order::PRODUCT_ID, order.product_id.to_string()),
        (order::PRICE, order.price.0.to_string()),
        (order::QUANTITY, order.quantity.get().to_string()),
        (order::FEE, order.fee.0.to_string()),
        (order::TOTAL, order.total.0.to_string()),
        (order::STATUS, order.status.to_string()),
        (order::CREATED_AT, order.created_at.to_string()),
        (order::UPDATED_AT, order.updated_at.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    if let Some(reason) = &order.refund_reason {
        fields.push((order::REFUND_REASON.to_string(), reason.clone()));
    }
    fields.extend(order.timeline.iter().map(|step| (order::step(&step.step), step.at.to_string())));
    fields
}

/// The order in the hash at `key`; a hash this code did not write is
/// [`StoreError::Corrupt`].
pub fn parse_order(key: &str, fields: &Fields) -> StoreResult<Order> {
    let corrupt = |detail: String| StoreError::Corrupt { key: key.to_string(), detail };
    let status: OrderStatus =
        get(key, fields, order::STATUS)?.parse().map_err(|e: UnknownStatus| corrupt(e.to_string()))?;
    Ok(Order {
        id: id(key, fields, order::ID)?,
        product_id: id(key, fields, order::PRODUCT_ID)?,
        price: Cents(number(key, fields, order::PRICE)?),
        fee: Cents(number(key, fields, order::FEE)?),
        total: Cents(number(key, fields, order::TOTAL)?),
        quantity: Quantity::new(number(key, fields, order::QUANTITY)?).map_err(|e| corrupt(e.to_string()))?,
        status,
        // Set when the warehouse decides to refund; shown once the refund is applied.
        refund_reason: fields.get(order::REFUND_REASON).filter(|_| status == OrderStatus::Refunded).cloned(),
        created_at: number(key, fields, order::CREATED_AT)?,
        updated_at: number(key, fields, order::UPDATED_AT)?,
        timeline: timeline(fields),
    })
}

/// The product in the hash at `key`.
pub fn parse_product(key: &str, fields: &Fields) -> StoreResult<Product> {
    Ok(Product {
        id: id(key, fields, product::ID)?,
        name: get(key, fields, product::NAME)?.to_string(),
        price: Cents(number(key, fields, product::PRICE)?),
        quantity: number(key, fields, product::QUANTITY)?,
    })
}

/// The `at:<step>` fields of an order, oldest first.
fn timeline(fields: &Fields) -> Vec<Step> {
    let mut steps: Vec<Step> = fields
        .iter()
        .filter_map(|(name, at)| {
            Some(Step { step: name.strip_prefix(order::STEP_PREFIX)?.to_string(), at: at.parse().ok()? })
        })
        .collect();
    steps.sort_by_key(|step| (step.at, step_rank(&step.step)));
    steps
}

/// The steps an order in `status` went through on the usual way there (a
/// refund through the warehouse): what a record made in bulk has as timeline.
pub fn usual_steps(status: OrderStatus) -> &'static [&'static str] {
    match status {
        OrderStatus::Pending => &["pending"],
        OrderStatus::Completed => &["pending", "completed"],
        OrderStatus::Fulfilled => &["pending", "completed", "fulfilled"],
        OrderStatus::Refunded => &["pending", "completed", REFUND_INITIATED, "refunded"],
    }
}

fn get<'a>(key: &str, fields: &'a Fields, name: &str) -> StoreResult<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt { key: key.to_string(), detail: format!("no field {name}") })
}

fn id(key: &str, fields: &Fields, name: &str) -> StoreResult<Id> {
    Id::parse(get(key, fields, name)?)
        .map_err(|e| StoreError::Corrupt { key: key.to_string(), detail: format!("{name}: {e}") })
}

fn number<T: std::str::FromStr>(key: &str, fields: &Fields, name: &str) -> StoreResult<T> {
    let text = get(key, fields, name)?;
    text.parse().map_err(|_| StoreError::Corrupt { key: key.to_string(), detail: format!("{name} = {text:?}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refunded() -> Order {
        Order {
            id: "01JD3V6Q8ZK0M9X4W2T7Y5B1CA".parse().unwrap(),
            product_id: "01JD3V6Q8ZK0M9X4W2T7Y5B1CE".parse().unwrap(),
            price: Cents(1999),
            fee: Cents(400),
            total: Cents(2399),
            quantity: Quantity::new(1).unwrap(),
            status: OrderStatus::Refunded,
            refund_reason: Some("insufficient stock".into()),
            created_at: 10,
            updated_at: 13,
            timeline: usual_steps(OrderStatus::Refunded)
                .iter()
                .zip(10..)
                .map(|(step, at)| Step { step: step.to_string(), at })
                .collect(),
        }
    }

    #[test]
    fn an_order_reads_back_as_it_was_written() {
        let order = refunded();
        let fields: Fields = order_fields(&order).into_iter().collect();
        assert_eq!(parse_order("order:x", &fields).unwrap(), order);
        for name in order::REQUIRED {
            assert!(fields.contains_key(name), "{name}");
        }
    }

    #[test]
    fn a_product_reads_as_create_product_lua_writes_it() {
        let product = Product {
            id: "01JD3V6Q8ZK0M9X4W2T7Y5B1CE".parse().unwrap(),
            name: "Chair".into(),
            price: Cents(1999),
            quantity: 5,
        };
        let fields: Fields = product::ALL
            .iter()
            .zip(["01JD3V6Q8ZK0M9X4W2T7Y5B1CE", "Chair", "1999", "5"])
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        assert_eq!(parse_product("product:x", &fields).unwrap(), product);
    }

    #[test]
    fn a_missing_or_strange_field_is_corrupt_data_naming_its_key() {
        let mut fields: Fields = order_fields(&refunded()).into_iter().collect();
        fields.insert(order::FEE.into(), "lots".into());
        let error = parse_order("order:x", &fields).unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { key, detail } if key == "order:x" && detail.contains("fee")),
            "{error}"
        );
        fields.remove(order::STATUS);
        assert!(matches!(parse_order("order:x", &fields), Err(StoreError::Corrupt { .. })));
        let mut fields: Fields = order_fields(&refunded()).into_iter().collect();
        fields.insert(order::PRODUCT_ID.into(), "../etc".into());
        let error = parse_order("order:x", &fields).unwrap_err();
        assert!(matches!(&error, StoreError::Corrupt { detail, .. } if detail.contains("product_id")), "{error}");
    }

    #[test]
    fn a_refund_reason_shows_once_the_order_is_refunded() {
        let mut fields: Fields = order_fields(&refunded()).into_iter().collect();
        fields.insert(order::STATUS.into(), "completed".into());
        assert_eq!(parse_order("order:x", &fields).unwrap().refund_reason, None);
    }

    #[test]
    fn the_usual_steps_end_in_their_status_in_the_order_of_a_life() {
        for status in OrderStatus::ALL {
            let steps = usual_steps(status);
            assert_eq!(steps.last(), Some(&status.as_str()));
            assert!(steps.windows(2).all(|pair| step_rank(pair[0]) < step_rank(pair[1])), "{steps:?}");
        }
    }
}
