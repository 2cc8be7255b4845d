//! What an operator wants to see of the shop's state, read in one round trip:
//! orders by status, and each stream's length with its groups' lag and
//! pending count.

use std::collections::HashMap;

use domain::OrderStatus;
use redis::aio::ConnectionLike;
use redis::Value;

use crate::error::StoreResult;
use crate::keys::{self, group, stream};

/// Every stream, with the consumer groups that read it.
pub const STREAMS: [(&str, &[&str]); 4] = [
    (stream::ORDER_PLACED, &[group::PAYMENT]),
    (stream::ORDER_COMPLETED, &[group::WAREHOUSE]),
    (stream::REFUND_INITIATED, &[group::REFUND]),
    (stream::ORDER_STATUS, &[]),
];

/// One consumer group's backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    pub group: String,
    /// Entries not yet delivered to the group.
    pub lag: u64,
    /// Entries delivered but not yet acknowledged.
    pub pending: u64,
}

/// One stream's size, its dead letters and its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    pub stream: &'static str,
    pub length: u64,
    pub dead_letters: u64,
    pub groups: Vec<GroupStats>,
}

/// A snapshot for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub orders: Vec<(OrderStatus, u64)>,
    pub streams: Vec<StreamStats>,
}

/// Reads the snapshot with one pipeline.
pub async fn observe<C: ConnectionLike>(conn: &mut C) -> StoreResult<Observed> {
    let mut pipe = redis::pipe();
    pipe.hgetall(keys::ORDER_COUNTS);
    for (name, _) in STREAMS {
        pipe.xlen(name).xlen(stream::dead_letters(name)).cmd("XINFO").arg("GROUPS").arg(name);
    }
    // XINFO GROUPS fails for a stream that does not exist yet: read replies one by one.
    let replies: Vec<Value> = pipe.ignore_errors().query_async(conn).await?;
    let mut replies = replies.into_iter();
    let counts: HashMap<String, i64> = replies.next().and_then(|v| redis::from_redis_value(v).ok()).unwrap_or_default();
    let orders = OrderStatus::ALL
        .into_iter()
        .map(|status| (status, counts.get(status.as_str()).copied().unwrap_or(0).max(0) as u64))
        .collect();
    let mut streams = Vec::new();
    for (name, _) in STREAMS {
        let mut number = || replies.next().and_then(|v| redis::from_redis_value::<u64>(v).ok()).unwrap_or(0);
        let (length, dead_letters) = (number(), number());
        let groups: Vec<HashMap<String, Value>> =
            replies.next().and_then(|v| redis::from_redis_value(v).ok()).unwrap_or_default();
        let groups = groups
            .iter()
            .map(|g| {
                let field = |name: &str| g.get(name).and_then(|v| redis::from_redis_value_ref::<u64>(v).ok());
                GroupStats {
                    group: g.get("name").and_then(|v| redis::from_redis_value_ref(v).ok()).unwrap_or_default(),
                    lag: field("lag").unwrap_or(0),
                    pending: field("pending").unwrap_or(0),
                }
            })
            .collect();
        streams.push(StreamStats { stream: name, length, dead_letters, groups });
    }
    Ok(Observed { orders, streams })
}
