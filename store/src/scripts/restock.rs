//! Adding stock: `restock.lua` and its call.

use std::sync::LazyLock;

use redis::{FromRedisValue, ParsingError, Script, Value};

use super::{number, unexpected, words, Announce, Call};
use crate::keys::{PartitionKeys, Stream};

/// The script as Redis runs it: the live-stream helpers, then its own code.
pub(super) const SOURCE: &str = concat!(include_str!("live_prelude.lua"), "\n", include_str!("restock.lua"));
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));

/// What [`restock`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restocking {
    Restocked {
        stock: u32,
    },
    Missing,
    /// It would pass the ceiling; the stock as it is.
    Ceiling {
        stock: u32,
    },
}

impl FromRedisValue for Restocking {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("restocked") => Ok(Restocking::Restocked { stock: number(RESTOCK_NAME, &reply, 1)? }),
            Some("missing") => Ok(Restocking::Missing),
            Some("ceiling") => Ok(Restocking::Ceiling { stock: number(RESTOCK_NAME, &reply, 1)? }),
            _ => Err(unexpected(RESTOCK_NAME, &reply)),
        }
    }
}

const RESTOCK_NAME: &str = "restock.lua";

/// Adds units to a product's stock, up to `ceiling`, and announces the new
/// stock to the live feed (see `restock.lua`).
pub fn restock(
    keys: &PartitionKeys,
    product_id: &str,
    units: u32,
    ceiling: u32,
    announce: Announce,
) -> Call<Restocking> {
    Call::new(&SCRIPT, &[keys.product(product_id), keys.stream(Stream::OrderStatus)])
        .arg(units)
        .arg(ceiling)
        .arg(product_id)
        .arg(announce.maxlen)
        .arg(announce.now)
}
