//! What an operator wants to see of the shop's state: orders by status, and
//! each stream's length with its groups' lag, pending count and oldest
//! pending entry, summed over the partitions (one round trip per partition,
//! all at once); and Redis' own health: which partitions answer, and each
//! node's memory against its `maxmemory` and eviction policy.

use std::collections::HashMap;
use std::time::Duration;

use domain::OrderStatus;
use redis::Value;

use crate::connection::Redis;
use crate::error::StoreResult;
use crate::keys::{Layout, PartitionKeys, Stream};
use crate::streams::GroupInfo;

/// One consumer group's backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    pub group: String,
    /// Entries not yet delivered to the group.
    pub lag: u64,
    /// Entries delivered but not yet acknowledged.
    pub pending: u64,
    /// When the oldest of those was written (ms since the epoch, from its
    /// entry id), if any is pending.
    pub oldest_pending_ms: Option<u64>,
}

/// One stream's size, its dead letters and its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    pub stream: &'static str,
    pub length: u64,
    pub dead_letters: u64,
    /// Dead letters that fell off the cap (`DEAD_LETTER_MAXLEN`) since the start.
    pub dead_letters_dropped: u64,
    pub groups: Vec<GroupStats>,
}

/// A snapshot for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub orders: Vec<(OrderStatus, u64)>,
    pub streams: Vec<StreamStats>,
}

/// Reads the snapshot: one pipeline per partition, all partitions at once.
pub async fn observe(conn: &Redis, layout: &Layout) -> StoreResult<Observed> {
    let reads = layout.all().map(|keys| {
        let mut conn = conn.clone();
        async move { observe_partition(&mut conn, keys).await }
    });
    let partitions = futures::future::try_join_all(reads).await?;
    let mut counts: HashMap<OrderStatus, u64> = HashMap::new();
    let mut streams: Vec<StreamStats> = Stream::ALL
        .iter()
        .map(|s| StreamStats {
            stream: s.name(),
            length: 0,
            dead_letters: 0,
            dead_letters_dropped: 0,
            groups: Vec::new(),
        })
        .collect();
    for (partition_counts, partition_streams) in partitions {
        for (status, count) in partition_counts {
            *counts.entry(status).or_default() += count;
        }
        for (total, part) in streams.iter_mut().zip(partition_streams) {
            total.length += part.length;
            total.dead_letters += part.dead_letters;
            total.dead_letters_dropped += part.dead_letters_dropped;
            for group in part.groups {
                match total.groups.iter_mut().find(|g| g.group == group.group) {
                    Some(sum) => {
                        sum.lag += group.lag;
                        sum.pending += group.pending;
                        sum.oldest_pending_ms =
                            [sum.oldest_pending_ms, group.oldest_pending_ms].into_iter().flatten().min();
                    }
                    None => total.groups.push(group),
                }
            }
        }
    }
    let orders =
        OrderStatus::ALL.into_iter().map(|status| (status, counts.get(&status).copied().unwrap_or(0))).collect();
    Ok(Observed { orders, streams })
}

type PartitionSnapshot = (Vec<(OrderStatus, u64)>, Vec<StreamStats>);

async fn observe_partition(conn: &mut Redis, keys: &PartitionKeys) -> StoreResult<PartitionSnapshot> {
    let mut pipe = redis::pipe();
    for status in OrderStatus::ALL {
        pipe.zcard(keys.orders_in(status));
    }
    pipe.hgetall(keys.dead_letters_dropped());
    for stream in Stream::ALL {
        pipe.xlen(keys.stream(stream))
            .xlen(keys.dead_letters(stream))
            .cmd("XINFO")
            .arg("GROUPS")
            .arg(keys.stream(stream));
        if let Some(group) = stream.group() {
            // The summary form: [count, oldest id, newest id, consumers].
            pipe.cmd("XPENDING").arg(keys.stream(stream)).arg(group);
        }
    }
    // XINFO GROUPS fails for a stream that does not exist yet: read replies one by one.
    let replies: Vec<Value> = pipe.ignore_errors().query_async(conn).await?;
    let mut replies = replies.into_iter();
    let orders = OrderStatus::ALL
        .into_iter()
        .map(|status| (status, replies.next().and_then(|v| redis::from_redis_value::<u64>(v).ok()).unwrap_or(0)))
        .collect();
    let dropped: HashMap<String, u64> =
        replies.next().and_then(|v| redis::from_redis_value(v).ok()).unwrap_or_default();
    let mut streams = Vec::new();
    for stream in Stream::ALL {
        let mut number = || replies.next().and_then(|v| redis::from_redis_value::<u64>(v).ok()).unwrap_or(0);
        let (length, dead_letters) = (number(), number());
        let groups: Vec<GroupInfo> = replies.next().and_then(|v| redis::from_redis_value(v).ok()).unwrap_or_default();
        let oldest_pending_ms = match stream.group() {
            Some(_) => replies.next().and_then(|summary| oldest_pending_ms(&summary)),
            None => None,
        };
        let groups = groups
            .iter()
            .map(|g| GroupStats {
                oldest_pending_ms: oldest_pending_ms.filter(|_| stream.group() == Some(g.name.as_str())),
                group: g.name.clone(),
                lag: g.lag.unwrap_or(0),
                pending: g.pending,
            })
            .collect();
        let dead_letters_dropped = dropped.get(&keys.stream(stream)).copied().unwrap_or(0);
        streams.push(StreamStats { stream: stream.name(), length, dead_letters, dead_letters_dropped, groups });
    }
    Ok((orders, streams))
}

/// The time of the oldest pending entry in the reply of `XPENDING <stream>
/// <group>`: `[count, oldest id, newest id, consumers]` (`[0, nil, nil, nil]`
/// when none is pending).
fn oldest_pending_ms(summary: &Value) -> Option<u64> {
    let Value::Array(fields) = summary else { return None };
    let oldest: String = redis::from_redis_value_ref(fields.get(1)?).ok()?;
    oldest.split_once('-')?.0.parse().ok()
}

/// Whether the master of each partition answers within `within`, in the
/// layout's order.
pub async fn partitions_ready(conn: &Redis, layout: &Layout, within: Duration) -> Vec<bool> {
    let pings = layout.all().map(|keys| async move {
        matches!(tokio::time::timeout(within, crate::shop::ping_partition(conn, keys)).await, Ok(Ok(())))
    });
    futures::future::join_all(pings).await
}

/// One Redis node's memory, from `INFO memory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMemory {
    /// `host:port` on a cluster; `redis` for the one server.
    pub node: String,
    pub used_bytes: u64,
    /// `maxmemory`: 0 for no limit.
    pub max_bytes: u64,
    pub policy: String,
}

impl NodeMemory {
    /// Whether the node, once full, would delete keys to make room: any
    /// `maxmemory-policy` but `noeviction`. Stockflow's keys have no expiry
    /// except idempotency records and sessions, but `allkeys-*` policies
    /// take any key, and `volatile-*` ones the idempotency records that stop
    /// a retry from making a second order: either silently loses data.
    pub fn may_evict(&self) -> bool {
        self.policy != "noeviction"
    }

    /// What an operator should be told, if anything.
    pub fn warning(&self) -> Option<String> {
        self.may_evict().then(|| {
            format!(
                "Redis {}: maxmemory-policy {} may evict Stockflow's keys (orders, stock, stream entries) once memory is full; set maxmemory-policy noeviction",
                self.node, self.policy
            )
        })
    }

    fn parse(node: String, info: &str) -> Option<NodeMemory> {
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(|value| value.trim().to_string())
        };
        Some(NodeMemory {
            node,
            used_bytes: field("used_memory")?.parse().ok()?,
            max_bytes: field("maxmemory")?.parse().ok()?,
            policy: field("maxmemory_policy")?,
        })
    }
}

/// The memory of every node that holds data (every master on a cluster).
pub async fn memory(conn: &Redis) -> StoreResult<Vec<NodeMemory>> {
    let reply: Value = redis::cmd("INFO").arg("memory").query_async(&mut conn.clone()).await?;
    Ok(memory_of(reply))
}

/// `INFO memory` as one server answers (text), or as the cluster client
/// gathers it from every master (a map of address → text).
fn memory_of(reply: Value) -> Vec<NodeMemory> {
    let text = |value: &Value| redis::from_redis_value_ref::<String>(value).ok();
    let mut nodes: Vec<NodeMemory> = match &reply {
        Value::Map(pairs) => {
            pairs.iter().filter_map(|(node, info)| NodeMemory::parse(text(node)?, &text(info)?)).collect()
        }
        other => text(other).and_then(|info| NodeMemory::parse("redis".to_string(), &info)).into_iter().collect(),
    };
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n";

    #[test]
    fn info_memory_is_read_from_one_server_or_every_master() {
        let one = memory_of(Value::BulkString(INFO.into()));
        assert_eq!(
            one,
            [NodeMemory { node: "redis".into(), used_bytes: 1_048_576, max_bytes: 0, policy: "noeviction".into() }]
        );
        assert!(!one[0].may_evict() && one[0].warning().is_none());
        let evicting = INFO.replace("maxmemory:0", "maxmemory:2097152").replace("noeviction", "allkeys-lru");
        let cluster = memory_of(Value::Map(vec![
            (Value::BulkString(b"10.0.0.2:6379".to_vec()), Value::BulkString(evicting.into())),
            (Value::BulkString(b"10.0.0.1:6379".to_vec()), Value::BulkString(INFO.into())),
        ]));
        assert_eq!(cluster.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(), ["10.0.0.1:6379", "10.0.0.2:6379"]);
        assert_eq!((cluster[1].max_bytes, cluster[1].may_evict()), (2_097_152, true));
        assert!(cluster[1].warning().unwrap().contains("allkeys-lru"));
        assert_eq!(memory_of(Value::Nil), []);
    }

    #[test]
    fn the_oldest_pending_entry_is_dated_by_its_id() {
        let summary = |oldest: Value| Value::Array(vec![Value::Int(2), oldest, Value::Nil, Value::Nil]);
        assert_eq!(
            oldest_pending_ms(&summary(Value::BulkString(b"1700000000123-4".to_vec()))),
            Some(1_700_000_000_123)
        );
        assert_eq!(oldest_pending_ms(&summary(Value::Nil)), None);
        assert_eq!(oldest_pending_ms(&Value::Nil), None);
    }
}
