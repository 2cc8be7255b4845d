//! The pure domain of Stockflow: everything that is a rule rather than IO.
//!
//! Compiled into the server, the workers and the WASM UI, so the price a
//! shopper previews in the browser is computed by the very function the
//! server charges with.
//!
//! # Layout
//! - [`money`]: integer cents, decimal parsing and formatting.
//! - [`number`]: number fields of JSON bodies (a number, or a string holding one);
//!   a leaf that knows only text.
//! - [`quantity`]: the units of one order and the limits of a product's stock.
//! - [`pricing`]: subtotal, the 20% fee and the total of an order.
//! - [`order`]: order status, its state machine and the order record.
//! - [`product`]: the product record and validation of new products.
//! - [`events`]: the status changes relayed live to browsers.
//! - [`page`]: pagination of lists (`limit`, `cursor`).
//! - [`search`]: product search by name: indexed prefixes and queries.
//! - [`id`]: product and order ids ([`Id`]): parsed once where text comes in,
//!   upper case from then on, carrying the bits that name their partition.
//!
//! The modules form a tree: `number` and `id` know nothing else of the
//! domain; `money` and `quantity` read numbers; `order`, `product` and
//! `pricing` build on those; `events` on `order`.

pub mod events;
pub mod id;
pub mod money;
pub mod number;
pub mod order;
pub mod page;
pub mod pricing;
pub mod product;
pub mod quantity;
pub mod search;

pub use events::{ProductChange, ProductEvent, StatusChange};
pub use id::Id;
pub use money::{Cents, MoneyError};
pub use number::NumberInput;
pub use order::{Order, OrderEvent, OrderStatus, Step, TransitionError};
pub use page::{Page, PageRequest};
pub use pricing::{quote, Quote};
pub use product::{NewProduct, Product, ProductError, Restock};
pub use quantity::Quantity;

#[cfg(test)]
mod tests {
    /// Every module with its source, to read what it uses of the others.
    const MODULES: [(&str, &str); 10] = [
        ("events", include_str!("events.rs")),
        ("id", include_str!("id.rs")),
        ("money", include_str!("money.rs")),
        ("number", include_str!("number.rs")),
        ("order", include_str!("order.rs")),
        ("page", include_str!("page.rs")),
        ("pricing", include_str!("pricing.rs")),
        ("product", include_str!("product.rs")),
        ("quantity", include_str!("quantity.rs")),
        ("search", include_str!("search.rs")),
    ];

    /// The modules `source` names as `crate::<module>`, doc comments aside.
    fn uses(source: &str) -> Vec<&'static str> {
        let code: String =
            source.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        MODULES.iter().map(|(name, _)| *name).filter(|name| code.contains(&format!("crate::{name}"))).collect()
    }

    #[test]
    fn the_modules_form_a_tree_not_a_circle() {
        assert!(uses(MODULES[3].1).is_empty(), "number knows only text");
        assert!(uses(MODULES[1].1).is_empty(), "id knows only text");
        // Depth-first search for a cycle.
        fn visit(name: &str, path: &mut Vec<String>) {
            assert!(!path.iter().any(|seen| seen == name), "a circle: {path:?} -> {name}");
            path.push(name.to_string());
            let source = MODULES.iter().find(|(module, _)| *module == name).map_or("", |(_, source)| *source);
            for used in uses(source) {
                visit(used, path);
            }
            path.pop();
        }
        for (name, _) in MODULES {
            visit(name, &mut Vec::new());
        }
    }
}
