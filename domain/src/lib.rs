//! The pure domain of Stockflow: everything that is a rule rather than IO.
//!
//! Compiled into the server, the workers and the WASM UI, so the price a
//! shopper previews in the browser is computed by the very function the
//! server charges with.
//!
//! # Layout
//! - [`money`]: integer cents, decimal parsing and formatting.
//! - [`number`]: number fields of JSON bodies (a number, or a string holding one).
//! - [`pricing`]: subtotal, the 20% fee and the total of an order.
//! - [`order`]: order status, its state machine and the order record.
//! - [`product`]: the product record and validation of new products.
//! - [`events`]: the status changes relayed live to browsers.
//! - [`page`]: pagination of lists (`limit`, `cursor`).
//! - [`search`]: product search by name: indexed prefixes and queries.

pub mod events;
pub mod id;
pub mod money;
pub mod number;
pub mod order;
pub mod page;
pub mod pricing;
pub mod product;
pub mod search;

pub use events::{ProductChange, ProductEvent, StatusChange};
pub use money::{Cents, MoneyError};
pub use number::NumberInput;
pub use order::{Order, OrderEvent, OrderStatus, Quantity, Step, TransitionError};
pub use page::{Page, PageRequest};
pub use pricing::{quote, Quote};
pub use product::{NewProduct, Product, ProductError, Restock};
