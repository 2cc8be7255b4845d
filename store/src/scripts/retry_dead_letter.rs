//! Retrying a dead letter: `retry_dead_letter.lua` and its call.

use std::sync::LazyLock;

use redis::{FromRedisValue, ParsingError, Script, Value};

use super::{number, unexpected, words, Call};
use crate::keys::{PartitionKeys, Stream};

/// The script as Redis runs it.
pub(super) const SOURCE: &str = include_str!("retry_dead_letter.lua");
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));

/// What [`retry_dead_letter`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Back on its stream as this new entry.
    Retried { entry_id: String },
    /// No such dead letter (retried or discarded already).
    Gone,
}

impl FromRedisValue for Retry {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("retried") => Ok(Retry::Retried { entry_id: number(RETRY, &reply, 1)? }),
            Some("gone") => Ok(Retry::Gone),
            _ => Err(unexpected(RETRY, &reply)),
        }
    }
}

const RETRY: &str = "retry_dead_letter.lua";

/// Puts a dead letter of `stream` back on `stream`, once (see `retry_dead_letter.lua`).
pub fn retry_dead_letter(keys: &PartitionKeys, stream: Stream, entry_id: &str) -> Call<Retry> {
    Call::new(&SCRIPT, &[keys.dead_letters(stream), keys.stream(stream)]).arg(entry_id)
}
