//! `bench seed`: a whole shop for the UI's speed check (`scripts/ui-speed`),
//! its orders written straight into the key layout (`store::bulk`); and the
//! deployment's layout, which the scenarios that write into Redis read.

use anyhow::{Context, Result};
use domain::OrderStatus;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use store::{Layout, Partitions};

use crate::http::Conn;

/// The deployment's layout: its namespace, and the partition count it recorded.
pub async fn layout(namespace: &str, conn: &mut MultiplexedConnection) -> Result<Layout> {
    let probe = Layout::new(namespace, Partitions::default())?;
    let recorded: Option<String> = conn.get(probe.partition_count()).await?;
    let recorded = recorded.with_context(|| {
        format!("{} is not set: is --namespace {namespace} the app's REDIS_NAMESPACE?", probe.partition_count())
    })?;
    Ok(Layout::new(namespace, Partitions::parse(&recorded)?)?)
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
    store::bulk::write_orders(redis.store(), &layout, &products, args.orders, status_of, |n| bar.inc(n as u64)).await?;
    bar.finish_and_clear();
    println!("seeded {} products and {} orders", args.products, args.orders);
    Ok(())
}
