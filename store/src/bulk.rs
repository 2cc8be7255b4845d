//! Many products and orders written at once, for load tests and benchmarks:
//! orders straight into the key layout with pipelines, as the shop itself
//! would have stored them (each in its product's partition, in every index an
//! order is in: the partition's orders, its status's, its status's by
//! product, its product's), and products through their own script, many to
//! a round trip. Placing a million orders one by one would take minutes.

use domain::{Cents, Id, NewProduct, Order, OrderStatus, Product, Quantity, Step};
use futures::{StreamExt, TryStreamExt};

use crate::connection::Redis;
use crate::error::{StoreError, StoreResult};
use crate::keys::Layout;
use crate::partition::Partition;
use crate::{records, scripts};

/// Orders per pipeline.
const CHUNK: usize = 1000;
/// Pipelines in flight while loading.
const LOADERS: usize = 4;

/// The orders one pipeline wrote, all in one partition: `(id, product id, status)`.
pub struct Chunk {
    partition: Partition,
    pub orders: Vec<(Id, Id, OrderStatus)>,
}

/// Creates `products` (each through the product script, so indexed for
/// search as any product), the partitions in turn, a pipeline per partition
/// and step; returns them in the order given.
pub async fn create_products(conn: &Redis, layout: &Layout, products: Vec<NewProduct>) -> StoreResult<Vec<Product>> {
    let partitions = layout.partitions();
    let made: Vec<Product> = products
        .into_iter()
        .enumerate()
        .map(|(n, new)| {
            let partition = partitions.nth(n as u64);
            Product { id: crate::ids::new_id(partition), name: new.name, price: new.price, quantity: new.quantity }
        })
        .collect();
    let mut by_partition: Vec<(Partition, Vec<&Product>)> = Vec::new();
    for product in &made {
        let partition = partitions.of_id(&product.id);
        match by_partition.iter_mut().find(|(p, _)| *p == partition) {
            Some((_, of)) => of.push(product),
            None => by_partition.push((partition, vec![product])),
        }
    }
    futures::stream::iter(
        by_partition.iter().flat_map(|(partition, of)| of.chunks(CHUNK).map(move |c| (*partition, c))),
    )
    .map(|(partition, chunk)| {
        let keys = layout.keys(partition);
        let calls = chunk.iter().map(|product| scripts::create_product(keys, product, "", None, None)).collect();
        let mut conn = conn.clone();
        async move { scripts::run_all::<_, scripts::Creation>(&mut conn, calls).await.map_err(StoreError::from) }
    })
    .buffer_unordered(LOADERS)
    .try_collect::<Vec<_>>()
    .await?;
    Ok(made)
}

/// An order as the bulk loader writes it: one unit at 1.00 (fee 0.20), made
/// at `now`, with the timeline of the usual way to `status`, all at `now`.
fn seeded_order(id: &Id, product_id: &Id, status: OrderStatus, now: u64) -> Order {
    Order {
        id: id.clone(),
        product_id: product_id.clone(),
        price: Cents(100),
        fee: Cents(20),
        total: Cents(120),
        quantity: Quantity::new(1).expect("1 is a quantity"),
        status,
        refund_reason: (status == OrderStatus::Refunded)
            .then(|| domain::events::refund_reason::INSUFFICIENT_STOCK.to_string()),
        created_at: now,
        updated_at: now,
        timeline: records::usual_steps(status).iter().map(|step| Step { step: step.to_string(), at: now }).collect(),
    }
}

/// Writes `count` orders of `products` (each order in its product's
/// partition, the products taken in turn), the `n`th in `status_of(n)`,
/// calling `written(n)` after each pipeline of `n`. Every pipeline writes one
/// partition; the partitions take turns. Each order is of one unit at 1.00.
pub async fn write_orders(
    conn: &Redis,
    layout: &Layout,
    products: &[Id],
    count: usize,
    status_of: fn(usize) -> OrderStatus,
    written: impl Fn(usize),
) -> StoreResult<Vec<Chunk>> {
    let partitions = layout.partitions();
    let mut groups: Vec<(Partition, Vec<Id>)> = Vec::new();
    for id in products {
        let partition = partitions.of_id(id);
        match groups.iter_mut().find(|(p, _)| *p == partition) {
            Some((_, ids)) => ids.push(id.clone()),
            None => groups.push((partition, vec![id.clone()])),
        }
    }
    if groups.is_empty() {
        return Err(StoreError::invalid("products", "no products to write orders of"));
    }
    let now = crate::now_ms();
    let written = &written;
    futures::stream::iter(0..count.div_ceil(CHUNK))
        .map(|chunk| {
            let (partition, ids) = &groups[chunk % groups.len()];
            let turn = chunk / groups.len() * CHUNK;
            let keys = layout.keys(*partition).clone();
            let size = CHUNK.min(count - chunk * CHUNK);
            let orders: Vec<(Id, Id, OrderStatus)> = (0..size)
                .map(|k| {
                    let product = ids[(turn + k) % ids.len()].clone();
                    (crate::ids::new_id(*partition), product, status_of(chunk * CHUNK + k))
                })
                .collect();
            let (mut conn, partition) = (conn.clone(), *partition);
            async move {
                let mut pipe = redis::pipe();
                for (id, product, status) in &orders {
                    let fields = records::order_fields(&seeded_order(id, product, *status, now));
                    pipe.hset_multiple(keys.order(id), &fields)
                        .ignore()
                        .zadd(keys.orders(), id.as_str(), 0)
                        .ignore()
                        // Keep the status indexes (and so the counts by status) true.
                        .zadd(keys.orders_in(*status), id.as_str(), 0)
                        .ignore()
                        .zadd(keys.orders_by_product(*status), format!("{product}:{id}"), 0)
                        .ignore()
                        .zadd(keys.product_orders(product), id.as_str(), 0)
                        .ignore();
                }
                let () = pipe.query_async(&mut conn).await?;
                written(orders.len());
                StoreResult::Ok(Chunk { partition, orders })
            }
        })
        .buffer_unordered(LOADERS)
        .try_collect()
        .await
}

/// Removes orders [`write_orders`] wrote, from every index too.
pub async fn remove_orders(conn: &Redis, layout: &Layout, written: Vec<Chunk>) -> StoreResult<()> {
    futures::stream::iter(written)
        .map(|chunk| {
            let keys = layout.keys(chunk.partition).clone();
            let mut conn = conn.clone();
            async move {
                let mut pipe = redis::pipe();
                for (id, product, status) in &chunk.orders {
                    pipe.del(keys.order(id))
                        .ignore()
                        .zrem(keys.orders_in(*status), id.as_str())
                        .ignore()
                        .zrem(keys.orders_by_product(*status), format!("{product}:{id}"))
                        .ignore()
                        .zrem(keys.product_orders(product), id.as_str())
                        .ignore();
                }
                let ids: Vec<&str> = chunk.orders.iter().map(|(id, _, _)| id.as_str()).collect();
                pipe.zrem(keys.orders(), &ids).ignore();
                let () = pipe.query_async(&mut conn).await?;
                StoreResult::Ok(())
            }
        })
        .buffer_unordered(LOADERS)
        .try_collect::<()>()
        .await
}
