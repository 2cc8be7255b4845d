//! A new product: `create_product.lua` and its call.

use std::sync::LazyLock;

use redis::{FromRedisValue, ParsingError, Script, Value};

use super::{number, unexpected, words, Announce, Call};
use crate::keys::{PartitionKeys, Stream};

/// The script as Redis runs it: the live-stream helpers, then its own code.
pub(super) const SOURCE: &str = concat!(include_str!("live_prelude.lua"), "\n", include_str!("create_product.lua"));
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));

/// What [`create_product`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    Created,
    /// An earlier request with the same key created this product (as JSON).
    Replayed {
        product_json: String,
    },
}

impl FromRedisValue for Creation {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("created") => Ok(Creation::Created),
            Some("replayed") => Ok(Creation::Replayed { product_json: number(CREATE, &reply, 1)? }),
            _ => Err(unexpected(CREATE, &reply)),
        }
    }
}

const CREATE: &str = "create_product.lua";

/// Saves a new product, and indexes it under the prefixes of its name, or
/// finds the one an earlier attempt with the same idempotency key created
/// (see `create_product.lua`). `snapshot` is the product as JSON, kept with
/// the key for replays. Announced to the live feed unless `announce` is
/// `None` (a bulk load).
pub fn create_product(
    keys: &PartitionKeys,
    product: &domain::Product,
    snapshot: &str,
    idempotency: Option<(&str, u64)>,
    announce: Option<Announce>,
) -> Call<Creation> {
    let mut touched = vec![keys.product(&product.id), keys.products(), keys.stream(Stream::OrderStatus)];
    let window = match idempotency {
        Some((client_key, window)) => {
            touched.push(keys.product_idempotency(client_key));
            window
        }
        None => 0,
    };
    let prefixes = domain::search::index_prefixes(&product.name);
    touched.extend(prefixes.iter().map(|prefix| keys.product_prefix(prefix)));
    Call::new(&SCRIPT, &touched)
        .arg(product.id.as_str())
        .arg(&product.name)
        .arg(product.price.0)
        .arg(product.quantity)
        .arg(snapshot)
        .arg(window)
        .arg(prefixes.len())
        .arg(announce.map_or(0, |a| a.maxlen))
        .arg(announce.map_or(0, |a| a.now))
}
