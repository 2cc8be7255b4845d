//! Many orders written straight into the key layout with pipelines, as the
//! shop itself would have stored them: each in its product's partition, in
//! every index an order is in (the partition's orders, its status's, its
//! product's). Placing a million one by one would take minutes. The `lists`
//! scenario loads its orders this way, and `bench seed` loads a whole shop
//! for the UI's speed check (`scripts/ui-speed`).

use anyhow::{Context, Result};
use domain::OrderStatus;
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use store::{Layout, Partition, Partitions};

use crate::http::Conn;

/// Orders per pipeline.
const CHUNK: usize = 1000;
/// Pipelines in flight while loading.
const LOADERS: usize = 4;

/// The orders one pipeline wrote, all in one partition: `(id, product id, status)`.
pub struct Chunk {
    partition: Partition,
    orders: Vec<(String, String, OrderStatus)>,
}

/// The deployment's layout: its namespace, and the partition count it recorded.
pub async fn layout(namespace: &str, conn: &mut MultiplexedConnection) -> Result<Layout> {
    let probe = Layout::new(namespace, Partitions::default())?;
    let recorded: Option<String> = conn.get(probe.partition_count()).await?;
    let recorded = recorded.with_context(|| {
        format!("{} is not set: is --namespace {namespace} the app's REDIS_NAMESPACE?", probe.partition_count())
    })?;
    Ok(Layout::new(namespace, Partitions::parse(&recorded)?)?)
}

/// Writes `count` orders of `products` (each order in its product's
/// partition, the products taken in turn), the `n`th in `status_of(n)`.
/// Every pipeline writes one partition; the partitions take turns.
pub async fn write_orders(
    conn: &MultiplexedConnection,
    layout: &Layout,
    products: &[String],
    count: usize,
    status_of: fn(usize) -> OrderStatus,
    bar: &ProgressBar,
) -> Result<Vec<Chunk>> {
    let partitions = layout.partitions();
    let mut groups: Vec<(Partition, Vec<String>)> = Vec::new();
    for id in products {
        let partition = partitions.of_id(id).context("product id")?;
        match groups.iter_mut().find(|(p, _)| *p == partition) {
            Some((_, ids)) => ids.push(id.clone()),
            None => groups.push((partition, vec![id.clone()])),
        }
    }
    anyhow::ensure!(!groups.is_empty(), "no products to write orders of");
    let now = store::now_ms().to_string();
    futures::stream::iter(0..count.div_ceil(CHUNK))
        .map(|chunk| {
            let (partition, ids) = &groups[chunk % groups.len()];
            let turn = chunk / groups.len() * CHUNK;
            let keys = layout.keys(*partition).clone();
            let size = CHUNK.min(count - chunk * CHUNK);
            let orders: Vec<(String, String, OrderStatus)> = (0..size)
                .map(|k| {
                    let product = ids[(turn + k) % ids.len()].clone();
                    (store::ids::new_id(*partition), product, status_of(chunk * CHUNK + k))
                })
                .collect();
            let (mut conn, now, bar, partition) = (conn.clone(), now.clone(), bar.clone(), *partition);
            async move {
                let mut pipe = redis::pipe();
                for (id, product, status) in &orders {
                    let mut fields = vec![
                        ("id", id.as_str()),
                        ("product_id", product.as_str()),
                        ("price", "100"),
                        ("quantity", "1"),
                        ("fee", "20"),
                        ("total", "120"),
                        ("status", status.as_str()),
                        ("created_at", now.as_str()),
                        ("updated_at", now.as_str()),
                    ];
                    if *status == OrderStatus::Refunded {
                        fields.push(("refund_reason", domain::events::refund_reason::INSUFFICIENT_STOCK));
                    }
                    pipe.hset_multiple(keys.order(id), &fields)
                        .ignore()
                        .zadd(keys.orders(), id, 0)
                        .ignore()
                        // Keep the status index (and so the counts by status) true.
                        .zadd(keys.orders_in(*status), id, 0)
                        .ignore()
                        .zadd(keys.product_orders(product), id, 0)
                        .ignore();
                }
                let () = pipe.query_async(&mut conn).await?;
                bar.inc(orders.len() as u64);
                anyhow::Ok(Chunk { partition, orders })
            }
        })
        .buffer_unordered(LOADERS)
        .try_collect()
        .await
}

/// Removes orders [`write_orders`] wrote, from every index too.
pub async fn remove_orders(conn: &MultiplexedConnection, layout: &Layout, written: Vec<Chunk>) -> Result<()> {
    futures::stream::iter(written)
        .map(|chunk| {
            let keys = layout.keys(chunk.partition).clone();
            let mut conn = conn.clone();
            async move {
                let mut pipe = redis::pipe();
                for (id, product, status) in &chunk.orders {
                    pipe.del(keys.order(id))
                        .ignore()
                        .zrem(keys.orders_in(*status), id)
                        .ignore()
                        .zrem(keys.product_orders(product), id)
                        .ignore();
                }
                let ids: Vec<&String> = chunk.orders.iter().map(|(id, _, _)| id).collect();
                pipe.zrem(keys.orders(), &ids).ignore();
                let () = pipe.query_async(&mut conn).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(LOADERS)
        .try_collect::<()>()
        .await
}

/// What `bench seed` loads.
pub struct SeedArgs {
    pub url: String,
    pub redis_url: String,
    pub namespace: String,
    pub products: usize,
    pub orders: usize,
}

/// Words product names are made of, so that a search finds some of them.
const ADJECTIVES: [&str; 8] = ["Oak", "Walnut", "Teak", "Birch", "Cedar", "Pine", "Maple", "Ash"];
const NOUNS: [&str; 8] = ["chair", "table", "desk", "stool", "bench", "shelf", "lamp", "cabinet"];

/// `bench seed`: a shop of `products` products (made the ordinary way,
/// over HTTP) and `orders` orders written straight into Redis: nine in ten
/// fulfilled, the rest refunded. For a private app only: nothing is removed.
pub async fn seed(args: SeedArgs) -> Result<()> {
    let admin_token = std::env::var("ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
    let target = std::sync::Arc::new(crate::http::Target::resolve(&args.url, admin_token.as_deref()).await?);
    crate::ensure_loopback_redis(&args.redis_url).await?;
    let redis = crate::observe::RedisProbe::connect(&args.redis_url).await?;
    let mut conn = redis.connection();
    let layout = layout(&args.namespace, &mut conn).await?;

    let bar = crate::scenarios::bar("seed");
    bar.set_length(args.products as u64);
    bar.set_message(format!("adding {} products", args.products));
    let mut http = Conn::open(&target).await?;
    let mut products = Vec::with_capacity(args.products);
    for n in 0..args.products {
        let name = format!("{} {} {n}", ADJECTIVES[n % ADJECTIVES.len()], NOUNS[n / ADJECTIVES.len() % NOUNS.len()]);
        products.push(http.create_product(&name, "1.00", 1_000_000).await?.id);
        bar.inc(1);
    }
    bar.set_position(0);
    bar.set_length(args.orders as u64);
    bar.set_message(format!("writing {} orders", args.orders));
    let status_of = |n: usize| if n % 10 == 9 { OrderStatus::Refunded } else { OrderStatus::Fulfilled };
    write_orders(&conn, &layout, &products, args.orders, status_of, &bar).await?;
    bar.finish_and_clear();
    println!("seeded {} products and {} orders", args.products, args.orders);
    Ok(())
}
