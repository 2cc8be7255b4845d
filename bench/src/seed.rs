//! `bench seed`: a whole shop for the UI's speed check (`scripts/ui-speed`),
//! its orders written straight into the key layout (`store::bulk`); and the
//! deployment's layout, which the scenarios that write into Redis read.

use anyhow::{Context, Result};
use domain::{NewProduct, OrderStatus};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use store::{Layout, Partitions};

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

/// `bench seed`: a shop of `products` products (through the product script,
/// so indexed for search as any product, in bulk: 100,000 take seconds) and
/// `orders` orders written straight into Redis: nine in ten fulfilled, the
/// rest refunded. For a private app only: nothing is removed.
pub async fn seed(args: SeedArgs) -> Result<()> {
    let admin_token = std::env::var("ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
    // The app must answer: its first start recorded the layout read below.
    crate::http::Target::resolve(&args.url, admin_token.as_deref()).await?;
    crate::ensure_loopback_redis(&args.redis_url).await?;
    let redis = crate::observe::RedisProbe::connect(&args.redis_url).await?;
    let mut conn = redis.connection();
    let layout = layout(&args.namespace, &mut conn).await?;

    let bar = crate::scenarios::bar("seed");
    bar.set_message(format!("adding {} products", args.products));
    let new = (0..args.products)
        .map(|n| {
            let name =
                format!("{} {} {n}", ADJECTIVES[n % ADJECTIVES.len()], NOUNS[n / ADJECTIVES.len() % NOUNS.len()]);
            NewProduct::parse(&name, "1.00", "1000000")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let products: Vec<domain::Id> =
        store::bulk::create_products(redis.store(), &layout, new).await?.into_iter().map(|p| p.id).collect();
    bar.set_length(args.orders as u64);
    bar.set_message(format!("writing {} orders", args.orders));
    let status_of = |n: usize| if n % 10 == 9 { OrderStatus::Refunded } else { OrderStatus::Fulfilled };
    store::bulk::write_orders(redis.store(), &layout, &products, args.orders, status_of, |n| bar.inc(n as u64)).await?;
    bar.finish_and_clear();
    println!("seeded {} products and {} orders", args.products, args.orders);
    Ok(())
}
