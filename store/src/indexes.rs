//! Building the search indexes for data older than them.
//!
//! The index of products by the prefixes of their names and the index of
//! orders by status and product are kept by the scripts that create,
//! delete and move products and orders. Data written by a version before
//! them is not in them yet: the server builds them once, at start, for
//! every partition not marked built (`<ns>:{pNN}:search-indexes`), a page of
//! products or orders at a time. It is safe to run again, and beside
//! running workers: each order is indexed under the status it has in the
//! same atomic step that reads it.

use std::time::Instant;

use redis::AsyncCommands;

use crate::connection::Redis;
use crate::keys::{Layout, PartitionKeys};
use crate::scripts;

/// Products or orders read per step.
const PAGE: usize = 500;

/// Builds the search indexes of every partition not marked built, then marks it.
pub async fn build_missing(conn: &Redis, layout: &Layout) -> redis::RedisResult<()> {
    for keys in layout.all() {
        let built: Option<String> = conn.clone().get(keys.search_indexes_built()).await?;
        if built.is_none() {
            let started = Instant::now();
            let (products, orders) = build(conn, keys).await?;
            let () = conn.clone().set(keys.search_indexes_built(), 1).await?;
            if products + orders > 0 {
                tracing::info!(
                    partition = %keys.partition(),
                    products,
                    orders,
                    took_ms = started.elapsed().as_millis() as u64,
                    "built the search indexes of data older than them"
                );
            }
        }
    }
    Ok(())
}

/// Indexes every product and order of one partition; returns how many.
async fn build(conn: &Redis, keys: &PartitionKeys) -> redis::RedisResult<(usize, usize)> {
    let mut conn = conn.clone();
    let mut products = 0;
    let mut after: Option<String> = None;
    while let Some(ids) = next_page(&mut conn, &keys.products(), after.as_deref()).await? {
        let mut names = redis::pipe();
        for id in &ids {
            names.hget(keys.product(id), crate::records::product::NAME);
        }
        let names: Vec<Option<String>> = names.query_async(&mut conn).await?;
        let mut index = redis::pipe();
        for (id, name) in ids.iter().zip(names) {
            // A product deleted meanwhile is not indexed again.
            for prefix in name.iter().flat_map(|name| domain::search::index_prefixes(name)) {
                index.zadd(keys.product_prefix(&prefix), id, 0).ignore();
            }
        }
        let () = index.query_async(&mut conn).await?;
        products += ids.len();
        after = ids.last().cloned();
    }
    let mut orders = 0;
    let mut after: Option<String> = None;
    while let Some(ids) = next_page(&mut conn, &keys.orders(), after.as_deref()).await? {
        let _: u64 = scripts::index_orders(keys, &ids).run(&mut conn).await?;
        orders += ids.len();
        after = ids.last().cloned();
    }
    Ok((products, orders))
}

/// The next page of ids of an index (sorted by id) after `after`, or `None` at its end.
async fn next_page(conn: &mut Redis, index: &str, after: Option<&str>) -> redis::RedisResult<Option<Vec<String>>> {
    let start = after.map_or_else(|| "-".to_string(), |id| format!("({id}"));
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(index)
        .arg(start)
        .arg("+")
        .arg("BYLEX")
        .arg("LIMIT")
        .arg(0)
        .arg(PAGE)
        .query_async(conn)
        .await?;
    Ok((!ids.is_empty()).then_some(ids))
}
