//! `workers migrate` on a Redis written by the version before partitions:
//! killed mid-way once and run twice more, it moves every product, order,
//! idempotency key and unfinished stream entry exactly once, the processes
//! refuse to start before it, and processing resumes after it.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{config_for, spawn_workers, wait_until_final, WORKERS_BIN};
use domain::OrderStatus;
use redis::AsyncCommands;
use store::deployment::StartupError;
use store::{Redis, Shop, Stream};
use testkit::{Backend, Process, TestRedis};
use tokio_util::sync::CancellationToken;

const PRODUCTS: usize = 300;
const ORDERS: usize = 3000;

/// An id as the old version made them (a plain ULID: its low bits name no partition on purpose).
fn old_id(n: usize) -> String {
    ulid::Ulid::from_parts(1_700_000_000_000 + n as u64, (n as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        .to_string()
}

/// What the old layout held, as the old scripts wrote it.
struct Legacy {
    /// Stock now, per product.
    stock: HashMap<String, u32>,
    /// Orders still to finish, with their product and quantity.
    open: HashMap<String, (String, u32, OrderStatus)>,
    /// Every order and its status.
    statuses: HashMap<String, OrderStatus>,
    /// Unfinished entries per stream: pending with the dead ghost consumer, or never delivered.
    unfinished: HashMap<Stream, usize>,
}

async fn write_legacy(conn: &mut Redis) -> Legacy {
    let mut legacy =
        Legacy { stock: HashMap::new(), open: HashMap::new(), statuses: HashMap::new(), unfinished: HashMap::new() };
    let products: Vec<String> = (0..PRODUCTS).map(old_id).collect();
    for (i, id) in products.iter().enumerate() {
        let stock = 5 + (i % 7) as u32;
        let () = conn
            .hset_multiple(
                format!("product:{id}"),
                &[
                    ("id", id.as_str()),
                    ("name", &format!("Old {i}")),
                    ("price", "250"),
                    ("quantity", &stock.to_string()),
                ],
            )
            .await
            .unwrap();
        let () = conn.zadd("products", id, 0).await.unwrap();
        legacy.stock.insert(id.clone(), stock);
    }
    for group in [("order-placed", "payment"), ("order-completed", "warehouse"), ("refund-initiated", "refund")] {
        let () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(group.0)
            .arg(group.1)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await
            .unwrap();
    }
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for n in 0..ORDERS {
        let id = old_id(PRODUCTS + n);
        let product = &products[n % PRODUCTS];
        let quantity = 1 + (n % 2) as u32;
        // A mix of every state: most finished, the rest at each step.
        let status = match n % 10 {
            0 | 1 => OrderStatus::Pending,
            2 | 3 => OrderStatus::Completed,
            4 => OrderStatus::Refunded,
            _ => OrderStatus::Fulfilled,
        };
        let mut fields = vec![
            ("id", id.clone()),
            ("product_id", product.clone()),
            ("price", "250".into()),
            ("quantity", quantity.to_string()),
            ("fee", (50 * quantity).to_string()),
            ("total", (300 * quantity).to_string()),
            ("status", status.as_str().into()),
            ("created_at", "1700000000000".into()),
            ("updated_at", "1700000000000".into()),
        ];
        if status == OrderStatus::Refunded {
            fields.push(("refund_reason", "insufficient stock".into()));
        }
        let () = conn.hset_multiple(format!("order:{id}"), &fields).await.unwrap();
        let () = conn.zadd("orders", &id, 0).await.unwrap();
        *counts.entry(status.as_str()).or_default() += 1;
        legacy.statuses.insert(id.clone(), status);
        match status {
            OrderStatus::Pending => {
                let _: String = conn.xadd("order-placed", "*", &[("order_id", &id)]).await.unwrap();
                legacy.open.insert(id.clone(), (product.clone(), quantity, status));
                *legacy.unfinished.entry(Stream::OrderPlaced).or_default() += 1;
            }
            OrderStatus::Completed => {
                let _: String = conn
                    .xadd(
                        "order-completed",
                        "*",
                        &[("order_id", id.as_str()), ("product_id", product), ("quantity", &quantity.to_string())],
                    )
                    .await
                    .unwrap();
                legacy.open.insert(id.clone(), (product.clone(), quantity, status));
                *legacy.unfinished.entry(Stream::OrderCompleted).or_default() += 1;
            }
            _ => {}
        }
        if n % 40 == 0 {
            let () = conn.set_ex(format!("idempotency:order:key-{n}"), &id, 3600).await.unwrap();
        }
    }
    let counts: Vec<(&str, i64)> = counts.into_iter().collect();
    let () = conn.hset_multiple("stats:orders-by-status", &counts).await.unwrap();
    // A consumer of the old version took 100 entries of each work stream and died: they are pending.
    for (stream, group) in [("order-placed", "payment"), ("order-completed", "warehouse")] {
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg("ghost")
            .arg("COUNT")
            .arg(100)
            .arg("STREAMS")
            .arg(stream)
            .arg(">")
            .query_async(conn)
            .await
            .unwrap();
    }
    // An old dead letter, an old admin session and a product idempotency key.
    let _: String = conn
        .xadd("order-completed-dead", "*", &[("source_id", "1-0"), ("error", "old poison"), ("field:order_id", "nope")])
        .await
        .unwrap();
    let () = conn.set_ex("admin-session:00ff", 1, 3600).await.unwrap();
    let () = conn.set_ex("idempotency:product:chair-1", "{}", 3600).await.unwrap();
    legacy
}

fn migrate_process(redis: &TestRedis) -> Process {
    let (variable, value) = redis.env();
    Process::spawn("migrate", WORKERS_BIN, &["migrate"], &[(variable, value), ("RUST_LOG", "warn".to_string())])
}

/// Runs `workers migrate` to the end; returns its exit code and what it printed.
fn run_migrate(redis: &TestRedis) -> (Option<i32>, String) {
    let (variable, value) = redis.env();
    let out = std::process::Command::new(WORKERS_BIN)
        .arg("migrate")
        .env(variable, value)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// Starts `workers migrate` and SIGKILLs it as soon as the keys `key_of`
/// names hold something in some partition; returns how much they held.
async fn kill_migrate_when(
    redis: &TestRedis,
    conn: &Redis,
    what: &str,
    key_of: fn(&store::PartitionKeys) -> String,
) -> u64 {
    let layout = store::Layout::new("stockflow", store::Partitions::default()).unwrap();
    let mut conn = conn.clone();
    let mut process = migrate_process(redis);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut moved = 0;
        for keys in layout.all() {
            let key = key_of(keys);
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.unwrap();
            moved += match kind.as_str() {
                "zset" => conn.zcard::<_, u64>(&key).await.unwrap(),
                "stream" => conn.xlen::<_, u64>(&key).await.unwrap(),
                _ => 0,
            };
        }
        if moved > 0 {
            process.kill();
            return moved;
        }
        assert!(process.is_running(), "migrate ended before it could be killed while moving {what}");
        assert!(std::time::Instant::now() < deadline, "migrate moved no {what} within 20 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_the_old_layout_once_even_when_killed_and_processing_resumes() {
    let redis = TestRedis::start(Backend::Single);
    let config = config_for(&redis);
    let shop = Shop::new(&config).unwrap();
    let mut conn = shop.connection();
    let legacy = write_legacy(&mut conn).await;

    // Before the migration, neither binary will start; the message names the command.
    match store::deployment::prepare(&config, false).await {
        Err(StartupError::Unmigrated { key, .. }) => assert_eq!(key, "stats:orders-by-status"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let mut refused = spawn_workers(&redis, "too-early", &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while refused.is_running() {
        assert!(std::time::Instant::now() < deadline, "workers did not refuse to start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Killed part-way through, then run twice to the end.
    // Killed once while copying orders and once while copying stream entries.
    let orders_moved = kill_migrate_when(&redis, &conn, "orders", |keys| keys.orders()).await;
    let entries_moved =
        kill_migrate_when(&redis, &conn, "stream entries", |keys| keys.stream(Stream::OrderPlaced)).await;
    let (code, second) = tokio::task::block_in_place(|| run_migrate(&redis));
    assert_eq!(code, Some(0), "{second}");
    let (code, third) = tokio::task::block_in_place(|| run_migrate(&redis));
    assert_eq!(code, Some(0), "{third}");
    assert!(
        third.contains("0 products, 0 orders") && third.contains("0 unfinished stream entries"),
        "a third run finds nothing: {third}"
    );
    println!(
        "migrate SIGKILLed after moving {orders_moved} of {ORDERS} orders, again after {entries_moved} order-placed \
         entries; run again: {}",
        second.trim()
    );

    // Everything once, where it belongs; the old keys are gone.
    let layout = &config.layout;
    let products = shop.products().await.unwrap();
    assert_eq!(products.len(), PRODUCTS);
    for product in &products {
        assert_eq!(product.quantity, legacy.stock[product.id.as_str()]);
    }
    let orders = shop.newest_orders(usize::MAX).await.unwrap();
    assert_eq!(orders.len(), ORDERS);
    for order in &orders {
        assert_eq!(order.status, legacy.statuses[order.id.as_str()]);
        let found = shop.order(&order.id).await.unwrap();
        assert_eq!(&found, order, "found by id, wherever it lives");
        let home = layout.keys_of_id(&domain::Id::parse(&order.product_id).unwrap()).partition();
        assert!(conn.exists::<_, bool>(layout.keys(home).order(&order.id)).await.unwrap(), "with its product");
    }
    for (stream, expected) in &legacy.unfinished {
        let mut copied = 0;
        for keys in layout.all() {
            copied += conn.xlen::<_, usize>(keys.stream(*stream)).await.unwrap();
        }
        assert_eq!(copied, *expected, "{stream:?}: every unfinished entry once");
    }
    for key in ["products", "orders", "order-placed", "order-completed", "stats:orders-by-status", "admin-session:00ff"]
    {
        assert!(!conn.exists::<_, bool>(key).await.unwrap(), "{key} removed");
    }
    assert!(conn.exists::<_, bool>(layout.admin_session("00ff")).await.unwrap(), "admin session kept");
    // The first order (of the first product, quantity 1) was made with "key-0".
    let replayed = shop
        .place_order_once(&old_id(0).parse().unwrap(), domain::Quantity::new(1).unwrap(), Some("key-0"))
        .await
        .unwrap();
    assert!(replayed.replayed && replayed.order.id == old_id(PRODUCTS), "old idempotency keys still answer");
    store::deployment::prepare(&config, false).await.map(|_| ()).unwrap();

    // Processing resumes: every open order finishes, and the stock adds up.
    let shutdown = CancellationToken::new();
    let mut fast = config.clone();
    fast.claim_idle = Duration::from_millis(200); // the ghost consumer's entries
    let workers = tokio::spawn(workers::run(fast, &workers::Role::ALL, shutdown.clone()));
    let orders = wait_until_final(&shop, None, Duration::from_secs(30)).await;
    for product in shop.products().await.unwrap() {
        let sold: u32 = orders
            .iter()
            .filter(|o| {
                o.product_id == product.id
                    && o.status == OrderStatus::Fulfilled
                    && legacy.open.contains_key(o.id.as_str())
            })
            .map(|o| o.quantity.get())
            .sum();
        assert_eq!(legacy.stock[product.id.as_str()] - sold, product.quantity, "stock of {}", product.name);
    }
    shutdown.cancel();
    workers.await.unwrap().unwrap();
}

/// The workers take their own settings and the shared ones, not the server's.
#[test]
fn the_workers_take_their_settings_and_not_the_servers() {
    let out = std::process::Command::new(WORKERS_BIN).arg("--help").env_clear().output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for theirs in ["[env: PAYMENT_DELAY_MS=]", "[env: CONSUMER_NAME=]", "[env: REDIS_URL=]", "[default: 1000]"] {
        assert!(help.contains(theirs), "--help lacks {theirs}:\n{help}");
    }
    for servers in ["CORS_ORIGINS", "ADMIN_TOKEN", "LEPTOS_SITE_ADDR", "IDEMPOTENCY_TTL_SECS"] {
        assert!(!help.contains(servers), "--help offers the server's {servers}:\n{help}");
    }
    let refused =
        std::process::Command::new(WORKERS_BIN).args(["--cors-origins", "https://a.example"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--cors-origins"));
}
