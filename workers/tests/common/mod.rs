//! Shared by the workers' integration tests: the real workers binary as a
//! separate process, and reads across every partition.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::collections::HashMap;

use domain::OrderStatus;
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;
use store::{Layout, PartitionKeys, Redis, Stream};
use testkit::{Process, TestRedis};

pub const WORKERS_BIN: &str = env!("CARGO_BIN_EXE_workers");

#[allow(unused_imports)] // each test file uses its own part of the harness
pub use store::testing::{config_for, wait_until_final, wait_until_idle};

/// Starts `workers` against `redis` with quick reclaim and shutdown, plus `extra` settings.
pub fn spawn_workers(redis: &TestRedis, name: &str, extra: &[(&str, &str)]) -> Process {
    spawn_workers_with(redis, name, &[], extra)
}

/// As [`spawn_workers`], with command-line arguments (`--partitions 0-7`, ...).
pub fn spawn_workers_with(redis: &TestRedis, name: &str, args: &[&str], extra: &[(&str, &str)]) -> Process {
    let (variable, value) = redis.env();
    let mut env = vec![
        (variable, value),
        ("CONSUMER_NAME", name.to_string()),
        ("PAYMENT_DELAY_MS", "0".to_string()),
        ("CLAIM_IDLE_MS", "500".to_string()),
        ("READ_BLOCK_MS", "200".to_string()),
        ("RUST_LOG", "workers=warn,store=warn".to_string()),
    ];
    for (key, value) in extra {
        env.retain(|(k, _)| k != key);
        env.push((key, value.to_string()));
    }
    Process::spawn(name, WORKERS_BIN, args, &env)
}

/// Every order's status events, in the order they happened, from every
/// partition's live streams (`order-placed` is pending, `order-completed`
/// completed, `order-status` the rest).
pub async fn status_events(conn: &mut Redis, layout: &Layout) -> HashMap<String, Vec<OrderStatus>> {
    let mut changes = Vec::new();
    for keys in layout.all() {
        for (k, stream) in Stream::LIVE.into_iter().enumerate() {
            let entries: StreamRangeReply = conn.xrange_all(keys.stream(stream)).await.unwrap();
            let orders =
                entries.ids.iter().filter(|e| !store::streams::is_retry(e) && !store::streams::is_product_change(e));
            for entry in orders {
                let id = store::streams::EntryId::parse(&entry.id).unwrap();
                let change = store::streams::status_change(stream, entry).unwrap();
                changes.push(((id.ms, k, id.seq), change.order_id, change.status));
            }
        }
    }
    changes.sort_by_key(|(at, ..)| *at);
    let mut events: HashMap<String, Vec<OrderStatus>> = HashMap::new();
    for (_, order_id, status) in changes {
        events.entry(order_id.to_string()).or_default().push(status);
    }
    events
}

/// The length of one stream of every partition, summed: `key` names it in a
/// partition (`|keys| keys.stream(..)`, `|keys| keys.dead_letters(..)`).
pub async fn summed_len(conn: &mut Redis, layout: &Layout, key: impl Fn(&PartitionKeys) -> String) -> u64 {
    let mut total = 0;
    for keys in layout.all() {
        total += conn.xlen::<_, u64>(key(keys)).await.unwrap();
    }
    total
}
