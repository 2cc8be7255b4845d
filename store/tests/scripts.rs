//! The Lua scripts and the service layer against a private redis-server:
//! each status change applies once, only from its expected previous status,
//! with its events in the same step.

use domain::{NewProduct, OrderStatus, Quantity};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use store::keys::stream;
use store::{now_ms, scripts, Config, Shop, StoreError};
use testkit::RedisServer;

async fn shop_on(redis: &RedisServer) -> (Shop, ConnectionManager) {
    let shop = Shop::new(&Config::for_redis(redis.url())).unwrap();
    let conn = shop.connection();
    (shop, conn)
}

async fn run<T: redis::FromRedisValue>(conn: &mut ConnectionManager, cmd: redis::Cmd) -> T {
    scripts::invoke(conn, &cmd).await.unwrap()
}

async fn len(conn: &mut ConnectionManager, name: &str) -> u64 {
    conn.xlen(name).await.unwrap()
}

fn qty(n: u32) -> Quantity {
    Quantity::new(n).unwrap()
}

#[tokio::test]
async fn an_order_moves_forward_once_per_step_with_one_event_each() {
    let redis = RedisServer::start();
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Chair", "10", "2").unwrap()).await.unwrap();
    let order = shop.place_order(&product.id, qty(2)).await.unwrap();
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!((len(&mut conn, stream::ORDER_PLACED).await, len(&mut conn, stream::ORDER_STATUS).await), (1, 1));

    // Payment twice: applied, then skipped; one order-completed entry.
    let complete = || scripts::complete_order(&order.id, now_ms(), 1000, None);
    assert_eq!(run::<String>(&mut conn, complete()).await, "applied");
    assert_eq!(run::<String>(&mut conn, complete()).await, "skipped");
    assert_eq!(len(&mut conn, stream::ORDER_COMPLETED).await, 1);

    // Warehouse twice: the exact stock is taken once, leaving zero.
    let fulfil = || scripts::fulfil_order(&order.id, &product.id, now_ms(), 1000, None);
    assert_eq!(run::<Vec<String>>(&mut conn, fulfil()).await, vec!["fulfilled", "0"]);
    assert_eq!(run::<Vec<String>>(&mut conn, fulfil()).await, vec!["skipped"]);
    assert_eq!(shop.product(&product.id).await.unwrap().quantity, 0);
    assert_eq!(shop.order(&order.id).await.unwrap().status, OrderStatus::Fulfilled);

    // A refund of a fulfilled order changes nothing.
    assert_eq!(run::<String>(&mut conn, scripts::refund_order(&order.id, "x", now_ms(), 1000, None)).await, "skipped");
    assert_eq!(len(&mut conn, stream::ORDER_STATUS).await, 3, "pending, completed, fulfilled");
}

#[tokio::test]
async fn short_stock_initiates_one_refund_and_the_refund_applies_once() {
    let redis = RedisServer::start();
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Lamp", "5", "1").unwrap()).await.unwrap();
    let order = shop.place_order(&product.id, qty(2)).await.unwrap();
    let _: String = run(&mut conn, scripts::complete_order(&order.id, now_ms(), 1000, None)).await;

    let fulfil = || scripts::fulfil_order(&order.id, &product.id, now_ms(), 1000, None);
    assert_eq!(
        run::<Vec<String>>(&mut conn, fulfil()).await,
        vec!["refund_initiated", scripts::reason::INSUFFICIENT_STOCK]
    );
    assert_eq!(run::<Vec<String>>(&mut conn, fulfil()).await, vec!["skipped"], "no second refund");
    assert_eq!(len(&mut conn, stream::REFUND_INITIATED).await, 1);
    assert_eq!(shop.product(&product.id).await.unwrap().quantity, 1, "stock untouched");

    let refund = || scripts::refund_order(&order.id, scripts::reason::INSUFFICIENT_STOCK, now_ms(), 1000, None);
    assert_eq!(run::<String>(&mut conn, refund()).await, "applied");
    assert_eq!(run::<String>(&mut conn, refund()).await, "skipped");
    let refunded = shop.order(&order.id).await.unwrap();
    assert_eq!(refunded.status, OrderStatus::Refunded);
    assert_eq!(refunded.refund_reason.as_deref(), Some(scripts::reason::INSUFFICIENT_STOCK));
}

#[tokio::test]
async fn a_deleted_product_refunds_orders_in_flight_and_refuses_new_ones() {
    let redis = RedisServer::start();
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Desk", "99.99", "9").unwrap()).await.unwrap();
    let order = shop.place_order(&product.id, qty(1)).await.unwrap();
    let _: String = run(&mut conn, scripts::complete_order(&order.id, now_ms(), 1000, None)).await;
    shop.delete_product(&product.id).await.unwrap();
    assert!(matches!(shop.delete_product(&product.id).await, Err(StoreError::NotFound { .. })));

    let reply: Vec<String> = run(&mut conn, scripts::fulfil_order(&order.id, &product.id, now_ms(), 1000, None)).await;
    assert_eq!(reply, vec!["refund_initiated", scripts::reason::PRODUCT_GONE]);

    let placed_before = len(&mut conn, stream::ORDER_PLACED).await;
    assert!(matches!(shop.place_order(&product.id, qty(1)).await, Err(StoreError::NotFound { kind: "product", .. })));
    assert_eq!(len(&mut conn, stream::ORDER_PLACED).await, placed_before, "nothing saved for a refused order");
    assert_eq!(shop.orders().await.unwrap().len(), 1);
}

#[tokio::test]
async fn events_that_do_not_match_an_order_are_reported_not_applied() {
    let redis = RedisServer::start();
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Pen", "1", "9").unwrap()).await.unwrap();
    let other = shop.create_product(NewProduct::parse("Ink", "1", "9").unwrap()).await.unwrap();
    let order = shop.place_order(&product.id, qty(1)).await.unwrap();
    let _: String = run(&mut conn, scripts::complete_order(&order.id, now_ms(), 1000, None)).await;

    let unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    assert_eq!(run::<String>(&mut conn, scripts::complete_order(unknown, now_ms(), 1000, None)).await, "missing");
    let reply: Vec<String> = run(&mut conn, scripts::fulfil_order(&order.id, &other.id, now_ms(), 1000, None)).await;
    assert_eq!(reply, vec!["mismatch"]);
    assert_eq!(shop.product(&other.id).await.unwrap().quantity, 9);
    assert_eq!(shop.order(&order.id).await.unwrap().status, OrderStatus::Completed);
}

#[tokio::test]
async fn scripts_are_reloaded_when_redis_forgot_them() {
    let redis = RedisServer::start();
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Cup", "2.50", "3").unwrap()).await.unwrap();
    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
    let order = shop.place_order(&product.id, qty(1)).await.unwrap();
    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
    let mut pipe = redis::pipe();
    pipe.add_command(scripts::complete_order(&order.id, now_ms(), 1000, None));
    let replies: Vec<String> = scripts::query(&mut conn, &pipe).await.unwrap();
    assert_eq!(replies, vec!["applied"]);
}

#[tokio::test]
async fn lists_and_lookups_survive_odd_ids() {
    let redis = RedisServer::start();
    let (shop, _) = shop_on(&redis).await;
    for id in ["", "../etc", "product:1", "01ARZ3NDEKTSV4RRFFQ69G5FAV", &"x".repeat(1000)] {
        assert!(matches!(shop.product(id).await, Err(StoreError::NotFound { .. })), "{id}");
        assert!(matches!(shop.order(id).await, Err(StoreError::NotFound { .. })), "{id}");
    }
    assert!(shop.products().await.unwrap().is_empty());
    assert!(shop.orders().await.unwrap().is_empty());
}
