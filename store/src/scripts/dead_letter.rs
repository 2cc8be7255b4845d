//! Giving up on an entry: `dead_letter.lua` and its call.

use std::sync::LazyLock;

use domain::OrderEvent;
use redis::{FromRedisValue, ParsingError, Script, Value};

use super::{number, unexpected, words, ArgLayout, Call};
use crate::keys::{PartitionKeys, Stream};

/// The script as Redis runs it: the shared batch and live-stream helpers, then its own code.
pub(super) const SOURCE: &str = concat!(
    include_str!("batch_prelude.lua"),
    "\n",
    include_str!("live_prelude.lua"),
    "\n",
    include_str!("dead_letter.lua")
);
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SOURCE));
/// Its arguments: 11 first, then 2 per field of the entry; `dead_letter.lua` declares the same.
pub(super) const ARGS: ArgLayout = ArgLayout { head: 11, each: 2 };

/// What [`dead_letter`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLettered {
    /// Copied to the dead letters and acknowledged; `dropped` old dead
    /// letters fell off the cap.
    Dead { dropped: u64 },
    /// As `Dead`, and its unfinished order was refunded.
    Refunded { dropped: u64 },
    /// No longer pending (another consumer committed it): left alone.
    NotPending,
}

impl FromRedisValue for DeadLettered {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("dead") => Ok(DeadLettered::Dead { dropped: number(DEAD, &reply, 1)? }),
            Some("refunded") => Ok(DeadLettered::Refunded { dropped: number(DEAD, &reply, 1)? }),
            Some("not_pending") => Ok(DeadLettered::NotPending),
            _ => Err(unexpected(DEAD, &reply)),
        }
    }
}

const DEAD: &str = "dead_letter.lua";

/// An entry given up on (see `dead_letter.lua`).
pub struct DeadLetter<'a> {
    pub stream: Stream,
    pub group: &'a str,
    pub entry_id: &'a str,
    pub error: &'a str,
    pub consumer: &'a str,
    /// The entry's fields, kept in the dead letter.
    pub fields: &'a [(String, String)],
    /// The unfinished order to refund ([`OrderEvent::GivenUp`]), if the entry concerns one.
    pub refund_order_id: Option<&'a str>,
}

/// Dead-letters an entry that is still pending, acks it and refunds its
/// unfinished order, atomically. `status_maxlen` bounds `order-status`,
/// `dead_maxlen` the dead letters.
pub fn dead_letter(
    keys: &PartitionKeys,
    letter: &DeadLetter,
    now: u64,
    status_maxlen: u64,
    dead_maxlen: u64,
) -> Call<DeadLettered> {
    let mut touched = vec![
        keys.stream(letter.stream),
        keys.dead_letters(letter.stream),
        keys.stream(Stream::OrderStatus),
        keys.dead_letters_dropped(),
    ];
    let indexes = keys.status_indexes();
    let index_count = indexes.len();
    touched.extend(indexes);
    touched.extend(letter.refund_order_id.map(|id| keys.order(id)));
    let mut call = Call::new(&SCRIPT, &touched)
        .guard(OrderEvent::GivenUp)
        .arg(letter.group)
        .arg(letter.entry_id)
        .arg(letter.error)
        .arg(letter.consumer)
        .arg(status_maxlen)
        .arg(dead_maxlen)
        .arg(now)
        .arg(index_count)
        .arg(domain::events::refund_reason::processing_failed(letter.error));
    for (field, value) in letter.fields {
        call = call.arg(field).arg(value);
    }
    call.laid_out(ARGS, letter.fields.len())
}
