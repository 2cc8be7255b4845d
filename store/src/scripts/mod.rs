//! The Lua scripts that make each status change atomic: one module per
//! script, beside its source, with its typed arguments, its reply and its call.
//!
//! Each script checks the order's current status and applies its change only
//! from the statuses the domain's rules allow ([`domain::OrderEvent`]: the
//! call passes them in, so the rules are stated once), writing the order, the
//! stock and the events it emits in one step (invariant: a status change, its
//! stock effect and its `order-status` event are one atomic step; redelivery
//! is harmless).
//!
//! Each call builder returns a [`Call`] that knows its reply type; every
//! reply is parsed here, into an enum, and nowhere else. Scripts are called
//! by hash (EVALSHA) so they can be pipelined; when Redis has forgotten them
//! (a restart, a failover, SCRIPT FLUSH) [`Call::run`] and [`run_all`] load
//! them and try once more.

//!
//! A batch script's arguments are positional: a head, then a fixed number per
//! item. Its module states the numbers once (`ArgLayout`), its Lua source
//! declares the same (`local HEAD, EACH = 4, 9`), a test checks the two agree
//! and every call checks its count.

mod complete_order;
mod create_product;
mod dead_letter;
mod delete_product;
mod fulfil_order;
mod index_orders;
mod migrate_entry;
mod place_order;
mod refund_order;
mod remove_consumer;
mod restock;
mod retry_dead_letter;

use std::marker::PhantomData;

use domain::OrderEvent;
use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Pipeline, RedisResult, Script, Value};

pub use complete_order::{complete_order, complete_orders};
pub use create_product::{create_product, Creation};
pub use dead_letter::{dead_letter, DeadLetter, DeadLettered};
pub use delete_product::delete_product;
pub use fulfil_order::{fulfil_order, fulfil_orders, Fulfilment, Taking};
pub use index_orders::index_orders;
pub use migrate_entry::migrate_entry;
pub use place_order::{place_orders, PlacedOrder, Placement, REPLICA_MAX_LAG_SECS};
pub use refund_order::{refund_order, refund_orders};
pub use remove_consumer::remove_consumer;
pub use restock::{restock, Restocking};
pub use retry_dead_letter::{retry_dead_letter, Retry};

/// Why the warehouse refunds an order, as shown to the customer.
pub use domain::events::refund_reason as reason;

/// Every script's source as Redis runs it, for [`load_all`].
const SOURCES: [&str; 12] = [
    complete_order::SOURCE,
    create_product::SOURCE,
    dead_letter::SOURCE,
    delete_product::SOURCE,
    fulfil_order::SOURCE,
    index_orders::SOURCE,
    migrate_entry::SOURCE,
    place_order::SOURCE,
    refund_order::SOURCE,
    remove_consumer::SOURCE,
    restock::SOURCE,
    retry_dead_letter::SOURCE,
];

/// The positional layout of a batch script's arguments: `head` of them,
/// then `each` per item (an order, a field). The script's Lua source
/// declares the same numbers, as `local HEAD, EACH = <head>, <each>`.
#[derive(Debug, Clone, Copy)]
struct ArgLayout {
    head: usize,
    each: usize,
}

impl ArgLayout {
    /// Whether `source` declares this layout.
    #[cfg(test)]
    fn declared_in(self, source: &str) -> bool {
        source.contains(&format!("\nlocal HEAD, EACH = {}, {}\n", self.head, self.each))
    }
}

/// One script call, and the type its reply parses into.
#[derive(Debug, Clone)]
#[must_use]
pub struct Call<R> {
    cmd: Cmd,
    /// Arguments after the keys, to check against the script's [`ArgLayout`].
    args: usize,
    reply: PhantomData<fn() -> R>,
}

impl<R: FromRedisValue> Call<R> {
    fn new(script: &Script, keys: &[String]) -> Call<R> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(keys.len());
        for key in keys {
            cmd.arg(key);
        }
        Call { cmd, args: 0, reply: PhantomData }
    }

    /// Adds one argument (one Redis argument: a number or a string).
    fn arg(mut self, arg: impl redis::ToRedisArgs) -> Call<R> {
        self.cmd.arg(arg);
        self.args += 1;
        self
    }

    /// Checks the call has the arguments of `layout` for `items` items.
    fn laid_out(self, layout: ArgLayout, items: usize) -> Call<R> {
        debug_assert_eq!(self.args, layout.head + layout.each * items, "arguments of a batch script");
        self
    }

    /// The guard of `event`: the statuses it applies from, as the scripts
    /// read them (`,pending,completed,`), and the status it leads to.
    fn guard(self, event: OrderEvent) -> Call<R> {
        let from: String = event.applies_from().iter().map(|s| format!(",{s}")).collect::<String>() + ",";
        self.arg(from).arg(event.leads_to().as_str())
    }

    /// The call of a batch script for a batch of one: its reply is the one
    /// element of the batch's (see [`words`]).
    fn single<T>(self) -> Call<T> {
        Call { cmd: self.cmd, args: self.args, reply: PhantomData }
    }

    /// Runs the call alone.
    pub async fn run<C: ConnectionLike>(&self, conn: &mut C) -> RedisResult<R> {
        match self.cmd.query_async(conn).await {
            Err(error) if is_noscript(&error) => {
                load_all(conn).await?;
                self.cmd.query_async(conn).await
            }
            other => other,
        }
    }

    /// Adds the call to a pipeline of calls to one partition.
    pub fn add_to(self, pipe: &mut Pipeline) {
        pipe.add_command(self.cmd);
    }
}

/// Runs calls of one kind to one partition in one round trip, replies in order.
pub async fn run_all<C: ConnectionLike, R: FromRedisValue>(conn: &mut C, calls: Vec<Call<R>>) -> RedisResult<Vec<R>> {
    let mut pipe = redis::pipe();
    for call in calls {
        call.add_to(&mut pipe);
    }
    query(conn, &pipe).await
}

/// The stream entry that asked for a change, acknowledged by the script in
/// the same atomic step as the change (so it is acked exactly when the
/// effect commits). `None` applies the change without acknowledging anything.
#[derive(Debug, Clone, Copy)]
pub struct Ack<'a> {
    pub group: &'a str,
    pub entry_id: &'a str,
}

/// Reads a reply of the form `{word, ...}` or `word`, or the batch of one
/// holding it (`{{word, ...}}`), as a batch script answers a single call.
fn words(value: Value) -> Result<Vec<String>, ParsingError> {
    match value {
        Value::Array(mut items) if items.len() == 1 && matches!(items[0], Value::Array(_)) => words(items.remove(0)),
        Value::Array(items) => items.into_iter().map(String::from_redis_value).collect(),
        other => Ok(vec![String::from_redis_value(other)?]),
    }
}

fn unexpected(script: &str, reply: &[String]) -> ParsingError {
    ParsingError::from(format!("unexpected reply {reply:?} from {script}"))
}

fn number<T: std::str::FromStr>(script: &str, reply: &[String], at: usize) -> Result<T, ParsingError> {
    reply.get(at).and_then(|n| n.parse().ok()).ok_or_else(|| unexpected(script, reply))
}

/// What a status change ([`complete_order`], [`refund_order`]) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Applied and the entry acknowledged.
    Applied,
    /// Applied before (or the order moved on): nothing changed, the entry acknowledged.
    Skipped,
    /// No such order: not acknowledged, the entry is poison.
    Missing,
    /// Neither the order nor its entry is on the node that ran it: a stale
    /// master answered (it is about to learn of its failover): not acknowledged, tried again.
    Stray,
    /// A refund for an order the warehouse did not decide to refund: not
    /// acknowledged, the entry is poison.
    NotInitiated,
}

impl FromRedisValue for Change {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let reply = words(value)?;
        match reply.first().map(String::as_str) {
            Some("applied") => Ok(Change::Applied),
            Some("skipped") => Ok(Change::Skipped),
            Some("missing") => Ok(Change::Missing),
            Some("stray") => Ok(Change::Stray),
            Some("not_initiated") => Ok(Change::NotInitiated),
            _ => Err(unexpected("a status change", &reply)),
        }
    }
}

/// One entry of a batch a consumer applies: the order it names and the
/// entry's id, acknowledged in the same atomic step as its change (`None`
/// applies the change without acknowledging anything).
#[derive(Debug, Clone, Copy)]
pub struct Applying<'a> {
    pub order_id: &'a str,
    pub entry_id: Option<&'a str>,
}

/// How a product change is announced to the live feed: an entry of the
/// partition's `order-status` stream (trimmed to about `maxlen` entries),
/// stamped `now` (ms).
#[derive(Debug, Clone, Copy)]
pub struct Announce {
    pub maxlen: u64,
    pub now: u64,
}

/// Loads every script into Redis's script cache (on a cluster, every master's).
pub async fn load_all<C: ConnectionLike>(conn: &mut C) -> RedisResult<()> {
    // One command each, not a pipeline: a cluster client sends each to every
    // master, but a pipeline without keys to just one node.
    for code in SOURCES {
        let _: Value = redis::cmd("SCRIPT").arg("LOAD").arg(code).query_async(conn).await?;
    }
    Ok(())
}

fn is_noscript(error: &redis::RedisError) -> bool {
    error.code() == Some("NOSCRIPT")
}

/// Runs a pipeline that calls scripts, loading them first if Redis lacks them.
///
/// A NOSCRIPT reply means no script in the pipeline ran, so running it again is safe.
pub async fn query<C: ConnectionLike, T: FromRedisValue>(conn: &mut C, pipe: &Pipeline) -> RedisResult<T> {
    match pipe.query_async(conn).await {
        Err(error) if is_noscript(&error) => {
            load_all(conn).await?;
            pipe.query_async(conn).await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_batch_script_declares_the_layout_its_call_uses() {
        for (name, source, layout) in [
            ("complete_order", complete_order::SOURCE, complete_order::ARGS),
            ("dead_letter", dead_letter::SOURCE, dead_letter::ARGS),
            ("fulfil_order", fulfil_order::SOURCE, fulfil_order::ARGS),
            ("index_orders", index_orders::SOURCE, index_orders::ARGS),
            ("migrate_entry", migrate_entry::SOURCE, migrate_entry::ARGS),
            ("place_order", place_order::SOURCE, place_order::ARGS),
            ("refund_order", refund_order::SOURCE, refund_order::ARGS),
        ] {
            assert!(layout.declared_in(source), "{name}.lua does not declare {layout:?}");
        }
    }

    #[test]
    fn replies_of_a_batch_of_one_read_as_the_one_reply() {
        let one = Value::Array(vec![Value::Array(vec![Value::SimpleString("placed".into())])]);
        assert_eq!(words(one).unwrap(), ["placed"]);
        assert_eq!(words(Value::SimpleString("gone".into())).unwrap(), ["gone"]);
    }
}
