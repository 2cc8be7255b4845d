//! `workers migrate`: moves a Redis written by the versions before
//! partitions (keys without namespace or hash tag) into the partitioned
//! layout, keeping every product, order, idempotency record, admin session,
//! dead letter and every stream entry a consumer group has not finished.
//!
//! Safe to run again, and after a crash at any moment:
//! - products and orders are copied with HSET/ZADD, which a second run
//!   repeats harmlessly; the status and product indexes are built from the
//!   copied orders;
//! - each unfinished stream entry is copied by one script that also records
//!   it in the partition's set of migrated entries, so it is copied once;
//! - the old keys are deleted only after everything is copied, and the two
//!   keys that mark a database as unmigrated go last, so an interrupted run
//!   leaves a database that is still refused at start and migrated again.
//!
//! Where things go: a product into the partition its id names; an order into
//! its product's partition (the warehouse needs both in one script). An old
//! order id does not name that partition, so such orders are listed in
//! `<ns>:legacy-orders`, which `Shop::order` reads for an id it did not find
//! where the id points. A stream entry goes to its order's partition.

use std::collections::HashMap;

use redis::streams::{StreamPendingCountReply, StreamRangeReply};
use redis::AsyncCommands;

use crate::connection::Redis;
use crate::error::StoreResult;
use domain::{Id, OrderStatus};

use crate::keys::{Layout, PartitionKeys, Stream};
use crate::partition::Partition;
use crate::records::order;
use crate::scripts;

/// Key names of the layout before partitions.
pub mod legacy {
    /// Hash of order counts by status; its presence marks an unmigrated database.
    pub const ORDER_COUNTS: &str = "stats:orders-by-status";
    pub const PRODUCTS: &str = "products";
    pub const ORDERS: &str = "orders";

    pub fn product(id: &str) -> String {
        format!("product:{id}")
    }

    pub fn order(id: &str) -> String {
        format!("order:{id}")
    }

    /// The streams, with the group that works through each (`order-status` has none).
    pub const STREAMS: [(super::Stream, Option<&str>); 4] = [
        (super::Stream::OrderPlaced, Some("payment")),
        (super::Stream::OrderCompleted, Some("warehouse")),
        (super::Stream::RefundInitiated, Some("refund")),
        (super::Stream::OrderStatus, None),
    ];

    pub fn dead_letters(stream: super::Stream) -> String {
        format!("{}-dead", stream.name())
    }
}

/// What a migration moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub products: usize,
    pub orders: usize,
    /// Orders whose id does not name their partition, listed in `<ns>:legacy-orders`.
    pub relocated_orders: usize,
    /// Unfinished stream entries and dead letters copied now (not by an earlier run).
    pub entries: usize,
    pub idempotency_keys: usize,
    pub admin_sessions: usize,
    /// Old keys deleted at the end.
    pub removed_keys: usize,
}

/// Ids fetched, and keys copied, per round trip.
const CHUNK: usize = 500;

/// Moves everything of the old layout into `layout`'s partitions.
pub async fn migrate(conn: &Redis, layout: &Layout) -> StoreResult<Report> {
    let mut conn = conn.clone();
    let mut report = Report::default();
    let products = copy_products(&mut conn, layout, &mut report).await?;
    let orders = copy_orders(&mut conn, layout, &products, &mut report).await?;
    index_orders(&mut conn, layout).await?;
    copy_idempotency_keys(&mut conn, layout, &orders, &mut report).await?;
    copy_admin_sessions(&mut conn, layout, &mut report).await?;
    copy_stream_entries(&mut conn, layout, &orders, &mut report).await?;
    remove_legacy_keys(&mut conn, layout, products.keys().chain(orders.keys()), &mut report).await?;
    Ok(report)
}

async fn all_ids(conn: &mut Redis, index: &str) -> StoreResult<Vec<String>> {
    Ok(conn.zrange(index, 0, -1).await?)
}

/// HGETALL of many old keys, one command each (old keys may sit in any slot).
async fn hashes(conn: &Redis, keys: &[String]) -> StoreResult<Vec<HashMap<String, String>>> {
    let reads = keys.iter().map(|key| {
        let mut conn = conn.clone();
        async move { conn.hgetall::<_, HashMap<String, String>>(key).await }
    });
    Ok(futures::future::try_join_all(reads).await?)
}

/// Copies every product into the partition its id names; returns id → partition.
async fn copy_products(conn: &mut Redis, layout: &Layout, report: &mut Report) -> StoreResult<HashMap<Id, Partition>> {
    let mut placed = HashMap::new();
    for chunk in all_ids(conn, legacy::PRODUCTS).await?.chunks(CHUNK) {
        let old: Vec<String> = chunk.iter().map(|id| legacy::product(id)).collect();
        for (id, fields) in chunk.iter().zip(hashes(conn, &old).await?) {
            let Ok(id) = Id::parse(id) else { continue };
            let keys = layout.keys_of_id(&id);
            placed.insert(id.clone(), keys.partition());
            if fields.is_empty() {
                continue; // copied by an earlier run, whose clean-up was cut short
            }
            let fields: Vec<(String, String)> = fields.into_iter().collect();
            let () = redis::pipe()
                .atomic()
                .hset_multiple(keys.product(&id), &fields)
                .ignore()
                .zadd(keys.products(), id.as_str(), 0)
                .ignore()
                .query_async(conn)
                .await?;
            report.products += 1;
        }
    }
    Ok(placed)
}

/// Copies every order into its product's partition; returns id → partition.
async fn copy_orders(
    conn: &mut Redis,
    layout: &Layout,
    products: &HashMap<Id, Partition>,
    report: &mut Report,
) -> StoreResult<HashMap<Id, Partition>> {
    let mut placed = HashMap::new();
    let relocated_key = layout.legacy_orders();
    let earlier: HashMap<String, u16> = conn.hgetall(&relocated_key).await?;
    for chunk in all_ids(conn, legacy::ORDERS).await?.chunks(CHUNK) {
        let old: Vec<String> = chunk.iter().map(|id| legacy::order(id)).collect();
        for (id, fields) in chunk.iter().zip(hashes(conn, &old).await?) {
            let Ok(id) = Id::parse(id) else { continue };
            let named = layout.partitions().of_id(&id);
            if fields.is_empty() {
                // Copied by an earlier run: it is where that run put it.
                let partition = earlier.get(id.as_str()).map(|&p| layout.partitions().nth(p.into())).unwrap_or(named);
                placed.insert(id, partition);
                continue;
            }
            // With its product; a product deleted meanwhile left no partition, so the id decides.
            let product_id = fields.get(order::PRODUCT_ID).and_then(|text| Id::parse(text).ok());
            let partition = product_id
                .map(|product_id| products.get(&product_id).copied().unwrap_or(layout.partitions().of_id(&product_id)))
                .unwrap_or(named);
            let keys = layout.keys(partition);
            let pairs: Vec<(String, String)> = fields.into_iter().collect();
            let () = redis::pipe()
                .atomic()
                .hset_multiple(keys.order(&id), &pairs)
                .ignore()
                .zadd(keys.orders(), id.as_str(), 0)
                .ignore()
                .query_async(conn)
                .await?;
            if partition != named {
                let () = conn.hset(&relocated_key, id.as_str(), partition.index()).await?;
                report.relocated_orders += 1;
            }
            placed.insert(id, partition);
            report.orders += 1;
        }
    }
    Ok(placed)
}

/// Indexes each partition's orders by status and by product, and gives each
/// a timeline (its first status when it was created, its status now when it
/// last changed): all idempotent, unlike counting as we copy.
async fn index_orders(conn: &mut Redis, layout: &Layout) -> StoreResult<()> {
    for keys in layout.all() {
        let ids: Vec<String> = conn.zrange(keys.orders(), 0, -1).await?;
        for chunk in ids.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HMGET").arg(keys.order(id)).arg(&[
                    order::STATUS,
                    order::PRODUCT_ID,
                    order::CREATED_AT,
                    order::UPDATED_AT,
                ]);
            }
            let fields: Vec<[Option<String>; 4]> = pipe.query_async(conn).await?;
            let mut pipe = redis::pipe();
            for (id, [status, product_id, created, updated]) in chunk.iter().zip(fields) {
                let (Some(status), Some(product_id)) = (status, product_id) else { continue };
                let Ok(status) = status.parse::<OrderStatus>() else { continue };
                pipe.zadd(keys.orders_in(status), id, 0).ignore();
                pipe.zadd(keys.orders_by_product(status), format!("{product_id}:{id}"), 0).ignore();
                pipe.zadd(keys.product_orders(&product_id), id, 0).ignore();
                if let Some(created) = created {
                    pipe.hset_nx(keys.order(id), order::step(OrderStatus::INITIAL.as_str()), created).ignore();
                }
                if let (Some(updated), true) = (updated, status != OrderStatus::INITIAL) {
                    pipe.hset_nx(keys.order(id), order::step(status.as_str()), updated).ignore();
                }
            }
            let () = pipe.query_async(conn).await?;
        }
    }
    Ok(())
}

/// Every key matching `pattern`.
async fn scan(conn: &mut Redis, pattern: &str) -> StoreResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000).query_async(conn).await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// Copies a string key with its remaining time to live.
async fn copy_string(conn: &mut Redis, from: &str, to: &str) -> StoreResult<bool> {
    let (value, ttl_ms): (Option<String>, i64) = redis::pipe().get(from).pttl(from).query_async(conn).await?;
    let Some(value) = value else { return Ok(false) };
    if ttl_ms > 0 {
        let () = conn.pset_ex(to, value, ttl_ms as u64).await?;
    } else {
        let () = conn.set(to, value).await?;
    }
    Ok(true)
}

async fn copy_idempotency_keys(
    conn: &mut Redis,
    layout: &Layout,
    orders: &HashMap<Id, Partition>,
    report: &mut Report,
) -> StoreResult<()> {
    for old in scan(conn, "idempotency:order:*").await? {
        let client_key = &old["idempotency:order:".len()..];
        let order_id: Option<String> = conn.get(&old).await?;
        let order_id = order_id.and_then(|text| Id::parse(&text).ok());
        let Some(partition) = order_id.and_then(|id| orders.get(&id).copied()) else { continue };
        if copy_string(conn, &old, &layout.keys(partition).order_idempotency(client_key)).await? {
            report.idempotency_keys += 1;
        }
    }
    for old in scan(conn, "idempotency:product:*").await? {
        let client_key = &old["idempotency:product:".len()..];
        let keys = layout.keys(layout.partitions().of_text(client_key));
        if copy_string(conn, &old, &keys.product_idempotency(client_key)).await? {
            report.idempotency_keys += 1;
        }
    }
    Ok(())
}

async fn copy_admin_sessions(conn: &mut Redis, layout: &Layout, report: &mut Report) -> StoreResult<()> {
    for old in scan(conn, "admin-session:*").await? {
        if copy_string(conn, &old, &layout.admin_session(&old["admin-session:".len()..])).await? {
            report.admin_sessions += 1;
        }
    }
    Ok(())
}

/// The entries of an old stream that its group has not finished: pending
/// (delivered, not acknowledged) and never delivered. All of them when the
/// group does not exist, none for a stream without a group.
async fn unfinished(conn: &mut Redis, stream: &str, group: &str) -> StoreResult<Vec<redis::streams::StreamId>> {
    let groups = crate::streams::groups(conn, stream).await.unwrap_or_default();
    let Some(info) = groups.iter().find(|g| g.name == group) else {
        let all: StreamRangeReply = conn.xrange_all(stream).await?;
        return Ok(all.ids);
    };
    let last_delivered = info.last_delivered.unwrap_or_default();
    let pending: StreamPendingCountReply =
        redis::cmd("XPENDING").arg(stream).arg(group).arg("-").arg("+").arg(usize::MAX / 2).query_async(conn).await?;
    let mut entries = Vec::new();
    for pending in pending.ids {
        let one: StreamRangeReply = conn.xrange(stream, &pending.id, &pending.id).await?;
        entries.extend(one.ids);
    }
    let after: StreamRangeReply = conn.xrange(stream, format!("({last_delivered}"), "+").await?;
    entries.extend(after.ids);
    Ok(entries)
}

fn text_fields(entry: &redis::streams::StreamId) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = entry
        .map
        .iter()
        .map(|(k, v)| (k.clone(), redis::from_redis_value_ref::<String>(v).unwrap_or_else(|_| format!("{v:?}"))))
        .collect();
    fields.sort();
    fields
}

/// The partition of the order an entry names; an entry naming no known order
/// goes to the first partition (where its consumer dead-letters it).
fn partition_of_entry(entry: &redis::streams::StreamId, layout: &Layout, orders: &HashMap<Id, Partition>) -> Partition {
    let order_id = entry.get::<String>("order_id").or_else(|| entry.get::<String>("field:order_id"));
    order_id
        .and_then(|text| Id::parse(&text).ok())
        .map(|id| orders.get(&id).copied().unwrap_or(layout.partitions().of_id(&id)))
        .unwrap_or_else(|| layout.partitions().nth(0))
}

async fn copy_entry(
    conn: &mut Redis,
    keys: &PartitionKeys,
    to: &str,
    legacy_id: String,
    fields: &[(String, String)],
) -> StoreResult<bool> {
    Ok(scripts::migrate_entry(keys, to, &legacy_id, fields).run(conn).await?)
}

async fn copy_stream_entries(
    conn: &mut Redis,
    layout: &Layout,
    orders: &HashMap<Id, Partition>,
    report: &mut Report,
) -> StoreResult<()> {
    for (stream, group) in legacy::STREAMS {
        if let Some(group) = group {
            for entry in unfinished(conn, stream.name(), group).await? {
                let keys = layout.keys(partition_of_entry(&entry, layout, orders));
                let legacy_id = format!("{}/{}", stream.name(), entry.id);
                if copy_entry(conn, keys, &keys.stream(stream), legacy_id, &text_fields(&entry)).await? {
                    report.entries += 1;
                }
            }
        }
        let dead = legacy::dead_letters(stream);
        let letters: StreamRangeReply = conn.xrange_all(&dead).await?;
        for entry in letters.ids {
            let keys = layout.keys(partition_of_entry(&entry, layout, orders));
            let legacy_id = format!("{dead}/{}", entry.id);
            if copy_entry(conn, keys, &keys.dead_letters(stream), legacy_id, &text_fields(&entry)).await? {
                report.entries += 1;
            }
        }
    }
    Ok(())
}

/// Deletes the old keys, the ones that mark a database as unmigrated last.
/// Only keys this layout owned are touched: products and orders by the ids
/// their indexes listed, never by a pattern another application's keys might match.
async fn remove_legacy_keys(
    conn: &mut Redis,
    layout: &Layout,
    ids: impl Iterator<Item = &Id>,
    report: &mut Report,
) -> StoreResult<()> {
    let mut doomed = Vec::new();
    for pattern in ["idempotency:order:*", "idempotency:product:*", "admin-session:*"] {
        doomed.extend(scan(conn, pattern).await?);
    }
    for id in ids {
        doomed.extend([legacy::product(id), legacy::order(id)]);
    }
    doomed.extend([legacy::PRODUCTS.to_string(), legacy::ORDERS.to_string()]);
    for (stream, _) in legacy::STREAMS.iter().rev() {
        doomed.push(legacy::dead_letters(*stream));
        doomed.push(stream.name().to_string());
    }
    // Last of all: the markers (order-placed is last of the streams above).
    doomed.push(legacy::ORDER_COUNTS.to_string());
    for key in doomed {
        let removed: u32 = conn.del(&key).await?;
        report.removed_keys += removed as usize;
    }
    for keys in layout.all() {
        let () = conn.del(keys.migrated_entries()).await?;
    }
    Ok(())
}
