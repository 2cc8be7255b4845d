//! The whole order flow against a private redis-server with the real
//! consumer loops running: contested stock, exact stock arithmetic, one
//! terminal state per order, one status event per transition, and harmless
//! redelivery.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{config_for, status_events, summed_len, wait_until_final, wait_until_idle};
use domain::{NewProduct, OrderStatus, Quantity};
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;
use store::{Shop, Stream};
use testkit::{on_every_backend, Backend, TestRedis};
use tokio_util::sync::CancellationToken;
use workers::Role;

on_every_backend!(contested_stock_is_allocated_exactly_and_redelivery_changes_nothing, payment_delays_run_concurrently);

async fn contested_stock_is_allocated_exactly_and_redelivery_changes_nothing(backend: Backend) {
    let redis = TestRedis::start(backend);
    let mut config = config_for(&redis);
    config.consumer_name = "test-worker".into();
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(workers::run(config.clone(), &Role::ALL, shutdown.clone()));

    let shop = Shop::new(&config).unwrap();
    let mut products = Vec::new();
    for (name, price, stock) in [("Chair", "19.99", 5u64), ("Table", "120", 3), ("Lamp", "7.5", 8)] {
        let new = NewProduct::parse(name, price, &stock.to_string()).unwrap();
        products.push(shop.create_product(new).await.unwrap());
    }
    let initial: HashMap<String, u32> = products.iter().map(|p| (p.id.to_string(), p.quantity)).collect();

    // 50 concurrent orders asking for 100 units against 16 in stock.
    let mut placing = tokio::task::JoinSet::new();
    for i in 0..50u32 {
        let (shop, product_id) = (shop.clone(), products[i as usize % 3].id.clone());
        let quantity = Quantity::new(1 + i % 3).unwrap();
        placing.spawn(async move { shop.place_order(&product_id, quantity).await.unwrap() });
    }
    let placed = placing.join_all().await;
    assert_eq!(placed.len(), 50);
    for order in &placed {
        let expected = domain::quote(initial_price(&products, &order.product_id), order.quantity).unwrap();
        assert_eq!((order.fee, order.total), (expected.fee, expected.total));
    }

    let orders = wait_until_final(&shop, Some(50), Duration::from_secs(30)).await;
    let mut fulfilled_units: HashMap<&str, u32> = HashMap::new();
    for order in &orders {
        if order.status == OrderStatus::Fulfilled {
            *fulfilled_units.entry(&order.product_id).or_default() += order.quantity.get();
        }
    }
    let mut conn = shop.connection();
    for product in shop.products().await.unwrap() {
        let sold = fulfilled_units.get(product.id.as_str()).copied().unwrap_or(0);
        assert_eq!(initial[product.id.as_str()] - sold, product.quantity, "stock arithmetic of {}", product.name);
        // Refunded only when the order really did not fit: stock only shrinks,
        // so a refunded quantity is larger than what is left now.
        for order in orders.iter().filter(|o| o.product_id == product.id && o.status == OrderStatus::Refunded) {
            assert!(order.quantity.get() > product.quantity, "{order:?} refunded though {} left", product.quantity);
            assert_eq!(order.refund_reason.as_deref(), Some(store::scripts::reason::INSUFFICIENT_STOCK));
        }
    }
    assert!(orders.iter().any(|o| o.status == OrderStatus::Refunded), "demand exceeded stock");
    assert!(orders.iter().any(|o| o.status == OrderStatus::Fulfilled));

    let layout = shop.layout().clone();
    wait_until_idle(&mut conn, &layout).await;
    let events = status_events(&mut conn, &layout).await;
    assert_eq!(events.len(), 50);
    for order in &orders {
        assert_eq!(
            events[order.id.as_str()],
            vec![OrderStatus::Pending, OrderStatus::Completed, order.status],
            "{}",
            order.id
        );
    }

    // Deliver every event of the finished run again: nothing may change.
    let stock_before: Vec<_> = shop.products().await.unwrap();
    let status_len = summed_len(&mut conn, &layout, |keys| keys.stream(Stream::OrderStatus)).await;
    for stream in [Stream::OrderPlaced, Stream::OrderCompleted, Stream::RefundInitiated] {
        let mut redelivered = 0;
        for keys in layout.all() {
            let entries: StreamRangeReply = conn.xrange_all(keys.stream(stream)).await.unwrap();
            for entry in entries.ids {
                let fields: Vec<(String, String)> = entry
                    .map
                    .iter()
                    .map(|(k, v)| (k.clone(), redis::from_redis_value_ref::<String>(v).unwrap()))
                    .collect();
                let _: String = conn.xadd(keys.stream(stream), "*", &fields).await.unwrap();
                redelivered += 1;
            }
        }
        assert!(redelivered > 0, "{stream:?} had entries");
    }
    wait_until_idle(&mut conn, &layout).await;
    assert_eq!(shop.products().await.unwrap(), stock_before);
    let after = shop.orders().await.unwrap();
    assert_eq!(
        after.iter().map(|o| (&o.id, o.status)).collect::<Vec<_>>(),
        orders.iter().map(|o| (&o.id, o.status)).collect::<Vec<_>>()
    );
    assert_eq!(
        summed_len(&mut conn, &layout, |keys| keys.stream(Stream::OrderStatus)).await,
        status_len,
        "no new status events"
    );
    let mut dead = 0;
    for keys in layout.all() {
        dead += conn.xlen::<_, u64>(keys.dead_letters(Stream::OrderCompleted)).await.unwrap();
    }
    assert_eq!(dead, 0);

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(5), workers).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "workers stop cleanly: {stopped:?}");
}

fn initial_price(products: &[domain::Product], id: &str) -> domain::Cents {
    products.iter().find(|p| p.id == id).unwrap().price
}

/// Payment delays run concurrently: 1,000 orders with a one-second payment
/// all complete in about one second, not a thousand.
async fn payment_delays_run_concurrently(backend: Backend) {
    let redis = TestRedis::start(backend);
    let mut config = config_for(&redis);
    config.consumer_name = "delay-test".into();
    config.payment_delay = Duration::from_secs(1);
    let shop = Shop::new(&config).unwrap();
    let product = shop.create_product(NewProduct::parse("Sticker", "0.50", "1000000").unwrap()).await.unwrap();
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(workers::run(config.clone(), &Role::ALL, shutdown.clone()));

    let started = tokio::time::Instant::now();
    let mut placing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (shop, id) = (shop.clone(), product.id.clone());
        placing.spawn(async move {
            for _ in 0..125 {
                shop.place_order(&id, Quantity::new(1).unwrap()).await.unwrap();
            }
        });
    }
    placing.join_all().await;
    let placed_in = started.elapsed();
    let orders = wait_until_final(&shop, Some(1000), Duration::from_secs(30)).await;
    let took = started.elapsed();
    assert!(orders.iter().all(|o| o.status == OrderStatus::Fulfilled));
    assert!(took >= Duration::from_secs(1), "the delay is honoured");
    assert!(took < placed_in + Duration::from_millis(2500), "1000 delays overlapped: took {took:?}");
    println!("1000 orders with a 1 s payment delay: placed in {placed_in:?}, all fulfilled after {took:?}");

    shutdown.cancel();
    workers.await.unwrap().unwrap();
}

/// Redis's count of clients blocked on a command (`INFO clients`).
async fn blocked_clients(conn: &mut store::Redis) -> u64 {
    let info: String = redis::cmd("INFO").arg("clients").query_async(conn).await.unwrap();
    info.lines().find_map(|line| line.strip_prefix("blocked_clients:")?.trim().parse().ok()).unwrap()
}

/// On one Redis the payment and warehouse consumers wait for the scripts'
/// pushes and read only the stream that rang, never blocking in Redis (only
/// the refunds' consumer, whose stream is not pushed, blocks); with
/// `WAKE_ON_PUSH=false` all three block. Orders move the same either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_redis_the_live_streams_consumers_wake_on_pushes_not_blocking_reads() {
    for wake_on_push in [true, false] {
        let redis = TestRedis::start(Backend::Single);
        let mut config = config_for(&redis);
        config.consumer_name = "test-worker".into();
        config.wake_on_push = wake_on_push;
        let shutdown = CancellationToken::new();
        let workers = tokio::spawn(workers::run(config.clone(), &Role::ALL, shutdown.clone()));
        let shop = Shop::new(&config).unwrap();
        let product = shop.create_product(NewProduct::parse("Cup", "2", "100").unwrap()).await.unwrap();
        let mut conn = shop.connection();
        let () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
        for _ in 0..10 {
            shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
        }
        let orders = wait_until_final(&shop, Some(10), Duration::from_secs(10)).await;
        assert!(orders.iter().all(|order| order.status == OrderStatus::Fulfilled), "{wake_on_push}");
        let blocked = blocked_clients(&mut conn).await;
        assert_eq!(blocked, if wake_on_push { 1 } else { 3 }, "clients blocked with WAKE_ON_PUSH={wake_on_push}");
        shutdown.cancel();
        workers.await.unwrap().unwrap();
    }
}
