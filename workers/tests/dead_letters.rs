//! Poison entries go to the dead-letter stream with their error, are
//! acknowledged, and never stop the loop: the good entries around them are
//! processed normally.

use std::collections::HashMap;
use std::time::Duration;

use domain::{NewProduct, OrderStatus, Quantity};
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;
use store::keys::stream;
use store::{Config, Shop};
use testkit::RedisServer;

mod common;
use common::spawn_workers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_entries_are_dead_lettered_while_the_rest_flows() {
    let redis = RedisServer::start();
    let shop = Shop::new(&Config::for_redis(redis.url())).unwrap();
    let mut conn = shop.connection();
    let product = shop.create_product(NewProduct::parse("Mug", "4", "10").unwrap()).await.unwrap();

    // Poison written before the workers start, between good orders.
    let first = shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    let poison: [&[(&str, &str)]; 4] = [
        &[("unexpected", "field")],
        &[("order_id", "not-an-id"), ("product_id", "also-not")],
        &[("order_id", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), ("product_id", product.id.as_str())],
        &[("order_id", ""), ("product_id", product.id.as_str())],
    ];
    for fields in poison {
        let _: String = conn.xadd(stream::ORDER_COMPLETED, "*", fields).await.unwrap();
    }
    let _: String = conn.xadd(stream::ORDER_PLACED, "*", &[("order_id", "garbage")]).await.unwrap();
    let second = shop.place_order(&product.id, Quantity::new(2).unwrap()).await.unwrap();

    let mut workers = spawn_workers(&redis, "poison-test", &[]);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let statuses: Vec<OrderStatus> = shop.orders().await.unwrap().iter().map(|o| o.status).collect();
        let dead: u64 = conn.xlen(stream::dead_letters(stream::ORDER_COMPLETED)).await.unwrap();
        if statuses.iter().all(|s| *s == OrderStatus::Fulfilled) && dead == 4 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "statuses {statuses:?}, dead letters {dead}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shop.product(&product.id).await.unwrap().quantity, 7);
    for order in [&first, &second] {
        assert_eq!(shop.order(&order.id).await.unwrap().status, OrderStatus::Fulfilled);
    }

    // Each dead letter keeps the original fields and says what was wrong.
    let dead: StreamRangeReply = conn.xrange_all(stream::dead_letters(stream::ORDER_COMPLETED)).await.unwrap();
    let errors: Vec<String> = dead.ids.iter().map(|e| e.get::<String>("error").unwrap()).collect();
    assert!(errors[0].contains("missing field \"order_id\""), "{errors:?}");
    assert!(errors[1].contains("is not an id"), "{errors:?}");
    assert!(errors[2].contains("does not exist"), "{errors:?}");
    assert_eq!(dead.ids[0].get::<String>("field:unexpected").as_deref(), Some("field"));
    assert!(dead.ids.iter().all(|e| e.get::<String>("source_id").is_some()));
    let placed_dead: u64 = conn.xlen(stream::dead_letters(stream::ORDER_PLACED)).await.unwrap();
    assert_eq!(placed_dead, 1);

    // Everything acknowledged: nothing left pending in any group.
    for (name, group) in [(stream::ORDER_PLACED, "payment"), (stream::ORDER_COMPLETED, "warehouse")] {
        let info: Vec<HashMap<String, redis::Value>> =
            redis::cmd("XINFO").arg("GROUPS").arg(name).query_async(&mut conn).await.unwrap();
        let group = info.iter().find(|g| redis::from_redis_value_ref::<String>(&g["name"]).unwrap() == group).unwrap();
        assert_eq!(redis::from_redis_value_ref::<u64>(&group["pending"]).unwrap(), 0, "{name}");
    }

    assert_eq!(workers.terminate(Duration::from_secs(5)), Some(0));
}

/// Entries a dead consumer left pending are claimed after `CLAIM_IDLE_MS`
/// and processed; one delivered more than `MAX_DELIVERIES` times is
/// dead-lettered and its order refunded rather than left pending forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_dead_consumer_are_reclaimed_and_over_delivered_ones_refunded() {
    let redis = RedisServer::start();
    let shop = Shop::new(&Config::for_redis(redis.url())).unwrap();
    let mut conn = shop.connection();
    let product = shop.create_product(NewProduct::parse("Vase", "30", "5").unwrap()).await.unwrap();
    store::streams::ensure_group(&mut conn, stream::ORDER_PLACED, "payment").await.unwrap();

    // A consumer takes both orders' entries and dies; the second entry was
    // claimed twice more (delivered 3 times, the reclaim makes it 4 > 2).
    let reclaimed = shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    let doomed = shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    let ids = take_as_ghost(&mut conn, 10).await;
    assert_eq!(ids.len(), 2);
    for _ in 0..2 {
        let _: redis::Value = redis::cmd("XCLAIM")
            .arg(stream::ORDER_PLACED)
            .arg("payment")
            .arg("ghost")
            .arg(0)
            .arg(&ids[1])
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    let mut workers = spawn_workers(&redis, "survivor", &[("CLAIM_IDLE_MS", "300"), ("MAX_DELIVERIES", "2")]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let first = shop.order(&reclaimed.id).await.unwrap().status;
        let second = shop.order(&doomed.id).await.unwrap().status;
        if first.is_terminal() && second.is_terminal() {
            assert_eq!(first, OrderStatus::Fulfilled);
            assert_eq!(second, OrderStatus::Refunded);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{first} / {second}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refunded = shop.order(&doomed.id).await.unwrap();
    assert!(refunded.refund_reason.unwrap().starts_with("processing failed: delivered 4 times"));
    let dead: StreamRangeReply = conn.xrange_all(stream::dead_letters(stream::ORDER_PLACED)).await.unwrap();
    assert_eq!(dead.ids.len(), 1);
    assert_eq!(dead.ids[0].get::<String>("field:order_id"), Some(doomed.id.clone()));
    assert_eq!(shop.product(&product.id).await.unwrap().quantity, 4, "only the reclaimed order took stock");

    assert_eq!(workers.terminate(Duration::from_secs(5)), Some(0));
}

/// Under sustained load the work streams stay near `STREAM_MAXLEN`, yet an
/// entry a group has not processed is never trimmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_bounds_the_streams_but_never_drops_unprocessed_entries() {
    let redis = RedisServer::start();
    let shop = Shop::new(&Config::for_redis(redis.url())).unwrap();
    let mut conn = shop.connection();
    let product = shop.create_product(NewProduct::parse("Nail", "0.05", "100000").unwrap()).await.unwrap();
    let maxlen = 100;

    // No consumer has read anything yet: nothing may go, however long the stream.
    store::streams::ensure_group(&mut conn, stream::ORDER_PLACED, "payment").await.unwrap();
    for _ in 0..600 {
        shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    }
    assert_eq!(workers::trimmer::trim_all(&mut conn, maxlen).await.unwrap(), 0);
    assert_eq!(conn.xlen::<_, u64>(stream::ORDER_PLACED).await.unwrap(), 600);

    // Once processed, the streams are trimmed down to about STREAM_MAXLEN.
    let mut workers = spawn_workers(&redis, "trim-test", &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !shop.newest_orders(600).await.unwrap().iter().all(|o| o.status.is_terminal()) {
        assert!(tokio::time::Instant::now() < deadline, "orders did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(workers.terminate(Duration::from_secs(5)), Some(0));
    // Stand in for a consumer that died holding entries: they must survive trimming.
    assert!(take_as_ghost(&mut conn, 5).await.is_empty(), "everything was already processed");
    for _ in 0..300 {
        shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    }
    let held_ids = take_as_ghost(&mut conn, 5).await;

    let removed = workers::trimmer::trim_all(&mut conn, maxlen).await.unwrap();
    assert!(removed >= 500, "processed entries were trimmed ({removed})");
    for name in [stream::ORDER_PLACED, stream::ORDER_COMPLETED] {
        let len: u64 = conn.xlen(name).await.unwrap();
        assert!(len <= 300 + maxlen, "{name} has {len} entries");
    }
    // The held entries and everything after them are still there.
    let kept: StreamRangeReply = conn.xrange(stream::ORDER_PLACED, &held_ids[0], "+").await.unwrap();
    assert_eq!(kept.ids.len(), 300, "nothing from the oldest pending entry on was dropped");
}

/// Reads up to `count` new `order-placed` entries as a consumer "ghost" of the
/// payment group that then never acknowledges them, like a crashed process.
async fn take_as_ghost(conn: &mut redis::aio::ConnectionManager, count: usize) -> Vec<String> {
    let read: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("payment")
        .arg("ghost")
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(stream::ORDER_PLACED)
        .arg(">")
        .query_async(conn)
        .await
        .unwrap();
    read.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).map(|e| e.id).collect()
}
