//! Poison entries go to the dead-letter stream with their error, are
//! acknowledged, and never stop the loop: the good entries around them are
//! processed normally. Every test runs on one redis-server and on a cluster.
//!
//! An order and every stream entry about it live in its product's partition,
//! so entries written or claimed by hand here go to that partition's streams.

use std::collections::HashMap;
use std::time::Duration;

use domain::{NewProduct, OrderStatus, Quantity};
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;
use store::keys::group;
use store::{Layout, PartitionKeys, Redis, Shop, Stream};
use testkit::{on_every_backend, Backend, TestRedis};

mod common;
use common::{config_for, spawn_workers, summed_len, wait_until_final};

on_every_backend!(
    poison_entries_are_dead_lettered_while_the_rest_flows,
    entries_of_a_dead_consumer_are_reclaimed_and_over_delivered_ones_refunded,
    trimming_bounds_the_streams_but_never_drops_unprocessed_entries,
    a_payment_held_longer_than_the_claim_time_is_never_counted_as_failed,
    consumers_that_are_gone_are_removed_but_never_one_holding_entries,
);

/// The keys of the partition `id` (a product's) lives in: its orders' too.
fn keys_of(shop: &Shop, id: &str) -> PartitionKeys {
    shop.layout().keys_of_id(&domain::Id::parse(id).unwrap()).clone()
}

async fn poison_entries_are_dead_lettered_while_the_rest_flows(backend: Backend) {
    let redis = TestRedis::start(backend);
    let shop = Shop::new(&config_for(&redis)).unwrap();
    let mut conn = shop.connection();
    let layout = shop.layout().clone();
    let product = shop.create_product(NewProduct::parse("Mug", "4", "10").unwrap()).await.unwrap();
    let keys = keys_of(&shop, &product.id);

    // Poison written before the workers start, between good orders, in the
    // partition the good orders' entries go to.
    let first = shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    let poison: [&[(&str, &str)]; 4] = [
        &[("unexpected", "field")],
        &[("order_id", "not-an-id"), ("product_id", "also-not")],
        &[("order_id", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), ("product_id", product.id.as_str())],
        &[("order_id", ""), ("product_id", product.id.as_str())],
    ];
    for fields in poison {
        let _: String = conn.xadd(keys.stream(Stream::OrderCompleted), "*", fields).await.unwrap();
    }
    let _: String = conn.xadd(keys.stream(Stream::OrderPlaced), "*", &[("order_id", "garbage")]).await.unwrap();
    let second = shop.place_order(&product.id, Quantity::new(2).unwrap()).await.unwrap();
    assert_eq!(keys_of(&shop, &second.id).partition(), keys.partition(), "an order lives in its product's partition");

    let mut workers = spawn_workers(&redis, "poison-test", &[]);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let statuses: Vec<OrderStatus> = shop.orders().await.unwrap().iter().map(|o| o.status).collect();
        let completed_dead: u64 = conn.xlen(keys.dead_letters(Stream::OrderCompleted)).await.unwrap();
        let placed_dead: u64 = conn.xlen(keys.dead_letters(Stream::OrderPlaced)).await.unwrap();
        if statuses.iter().all(|s| *s == OrderStatus::Fulfilled) && (completed_dead, placed_dead) == (4, 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 20 s for both orders to be fulfilled and 4 + 1 dead letters: \
             statuses {statuses:?}, order-completed dead letters {completed_dead}, order-placed dead letters {placed_dead}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shop.product(&product.id).await.unwrap().quantity, 7);
    for order in [&first, &second] {
        assert_eq!(shop.order(&order.id).await.unwrap().status, OrderStatus::Fulfilled);
    }
    // No other partition saw any of it.
    assert_eq!(summed_len(&mut conn, &layout, |keys| keys.dead_letters(Stream::OrderCompleted)).await, 4);
    assert_eq!(summed_len(&mut conn, &layout, |keys| keys.dead_letters(Stream::OrderPlaced)).await, 1);

    // Each dead letter keeps the original fields and says what was wrong.
    let dead: StreamRangeReply = conn.xrange_all(keys.dead_letters(Stream::OrderCompleted)).await.unwrap();
    let errors: Vec<String> = dead.ids.iter().map(|e| e.get::<String>("error").unwrap()).collect();
    assert!(errors[0].contains("missing field \"order_id\""), "{errors:?}");
    assert!(errors[1].contains("is not an id"), "{errors:?}");
    assert!(errors[2].contains("does not exist"), "{errors:?}");
    assert_eq!(dead.ids[0].get::<String>("field:unexpected").as_deref(), Some("field"));
    assert!(dead.ids.iter().all(|e| e.get::<String>("source_id").is_some()));

    // Everything acknowledged: nothing left pending in any group of any partition.
    for keys in layout.all() {
        for stream in [Stream::OrderPlaced, Stream::OrderCompleted, Stream::RefundInitiated] {
            let name = keys.stream(stream);
            let info = store::streams::groups(&mut conn, &name).await.unwrap();
            let wanted = stream.group().unwrap();
            let group =
                info.iter().find(|g| g.name == wanted).unwrap_or_else(|| panic!("{name} has no group {wanted}"));
            assert_eq!(group.pending, 0, "{name}");
        }
    }

    assert_eq!(workers.terminate(Duration::from_secs(5)), Some(0));
}

/// Entries a dead consumer left pending are claimed after `CLAIM_IDLE_MS`
/// and processed; one delivered more than `MAX_DELIVERIES` times is
/// dead-lettered and its order refunded rather than left pending forever.
async fn entries_of_a_dead_consumer_are_reclaimed_and_over_delivered_ones_refunded(backend: Backend) {
    let redis = TestRedis::start(backend);
    let shop = Shop::new(&config_for(&redis)).unwrap();
    let mut conn = shop.connection();
    let product = shop.create_product(NewProduct::parse("Vase", "30", "5").unwrap()).await.unwrap();
    let keys = keys_of(&shop, &product.id);
    store::streams::ensure_group(&mut conn, &keys.stream(Stream::OrderPlaced), group::PAYMENT).await.unwrap();

    // A consumer takes both orders' entries and dies; the second entry was
    // claimed twice more (delivered 3 times, the reclaim makes it 4 > 2).
    let reclaimed = shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    let doomed = shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    let ids = take_as_ghost(&mut conn, &keys, 10).await;
    assert_eq!(ids.len(), 2);
    for _ in 0..2 {
        let _: redis::Value = redis::cmd("XCLAIM")
            .arg(keys.stream(Stream::OrderPlaced))
            .arg(group::PAYMENT)
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
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 20 s for the ghost's two orders to be reclaimed and finish: {first} / {second}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refunded = shop.order(&doomed.id).await.unwrap();
    let reason = refunded.refund_reason.unwrap();
    assert!(reason.starts_with("processing failed: delivered 4 times"), "{reason}");
    let dead: StreamRangeReply = conn.xrange_all(keys.dead_letters(Stream::OrderPlaced)).await.unwrap();
    assert_eq!(dead.ids.len(), 1);
    assert_eq!(dead.ids[0].get::<String>("field:order_id"), Some(doomed.id.to_string()));
    assert_eq!(summed_len(&mut conn, shop.layout(), |keys| keys.dead_letters(Stream::OrderPlaced)).await, 1);
    assert_eq!(shop.product(&product.id).await.unwrap().quantity, 4, "only the reclaimed order took stock");

    assert_eq!(workers.terminate(Duration::from_secs(5)), Some(0));
}

/// Under sustained load the work streams stay near `STREAM_MAXLEN`, yet an
/// entry a group has not processed is never trimmed.
async fn trimming_bounds_the_streams_but_never_drops_unprocessed_entries(backend: Backend) {
    let redis = TestRedis::start(backend);
    let shop = Shop::new(&config_for(&redis)).unwrap();
    let mut conn = shop.connection();
    let layout = shop.layout().clone();
    let product = shop.create_product(NewProduct::parse("Nail", "0.05", "100000").unwrap()).await.unwrap();
    // Every order, and so every entry, goes to the product's partition.
    let keys = keys_of(&shop, &product.id);
    let maxlen = 100;

    // No consumer has read anything yet: nothing may go, however long the stream.
    store::streams::ensure_group(&mut conn, &keys.stream(Stream::OrderPlaced), group::PAYMENT).await.unwrap();
    for _ in 0..600 {
        shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    }
    assert_eq!(trim_every_partition(&mut conn, &layout, maxlen).await, 0);
    assert_eq!(conn.xlen::<_, u64>(keys.stream(Stream::OrderPlaced)).await.unwrap(), 600);

    // Once processed, the streams are trimmed down to about STREAM_MAXLEN.
    let mut workers = spawn_workers(&redis, "trim-test", &[]);
    wait_until_final(&shop, Some(600), Duration::from_secs(20)).await;
    assert_eq!(workers.terminate(Duration::from_secs(5)), Some(0));
    // Stand in for a consumer that died holding entries: they must survive trimming.
    assert!(take_as_ghost(&mut conn, &keys, 5).await.is_empty(), "everything was already processed");
    for _ in 0..300 {
        shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    }
    let held_ids = take_as_ghost(&mut conn, &keys, 5).await;
    assert_eq!(held_ids.len(), 5);

    let removed = trim_every_partition(&mut conn, &layout, maxlen).await;
    assert!(removed >= 500, "processed entries were trimmed ({removed})");
    for stream in [Stream::OrderPlaced, Stream::OrderCompleted] {
        let name = keys.stream(stream);
        let len: u64 = conn.xlen(&name).await.unwrap();
        assert!(len <= 300 + maxlen, "{name} has {len} entries");
    }
    // The held entries and everything after them are still there.
    let kept: StreamRangeReply = conn.xrange(keys.stream(Stream::OrderPlaced), &held_ids[0], "+").await.unwrap();
    assert_eq!(kept.ids.len(), 300, "nothing from the oldest pending entry on was dropped");
}

/// One trimming pass over every partition, as the workers' trimmer makes;
/// returns how many entries were removed.
async fn trim_every_partition(conn: &mut Redis, layout: &Layout, maxlen: u64) -> u64 {
    let mut removed = 0;
    for keys in layout.all() {
        removed += workers::trimmer::trim_all(conn, keys, maxlen).await.unwrap();
    }
    removed
}

/// Reads up to `count` new `order-placed` entries of one partition as a
/// consumer "ghost" of the payment group that then never acknowledges them,
/// like a crashed process.
async fn take_as_ghost(conn: &mut Redis, keys: &PartitionKeys, count: usize) -> Vec<String> {
    let read: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group::PAYMENT)
        .arg("ghost")
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(keys.stream(Stream::OrderPlaced))
        .arg(store::streams::NEW_ENTRIES)
        .query_async(conn)
        .await
        .unwrap();
    read.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).map(|e| e.id).collect()
}

/// A payment holds its entries for `PAYMENT_DELAY_MS`; with that longer than
/// `CLAIM_IDLE_MS`, the held entries must not be claimed (by another process
/// or by this one) nor count as failed deliveries: every order is fulfilled,
/// none dead-lettered.
async fn a_payment_held_longer_than_the_claim_time_is_never_counted_as_failed(backend: Backend) {
    let redis = TestRedis::start(backend);
    let shop = Shop::new(&config_for(&redis)).unwrap();
    let product = shop.create_product(NewProduct::parse("Slow", "1", "1000").unwrap()).await.unwrap();
    let extra = [("PAYMENT_DELAY_MS", "1500"), ("CLAIM_IDLE_MS", "300"), ("MAX_DELIVERIES", "1")];
    let mut first = spawn_workers(&redis, "holder-a", &extra);
    let mut second = spawn_workers(&redis, "holder-b", &extra);
    let mut placed = Vec::new();
    for _ in 0..40 {
        placed.push(shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap().id);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let statuses: Vec<OrderStatus> = shop.newest_orders(100).await.unwrap().iter().map(|o| o.status).collect();
        if statuses.iter().all(|s| s.is_terminal()) {
            assert!(statuses.iter().all(|s| *s == OrderStatus::Fulfilled), "{statuses:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "orders did not finish: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut conn = shop.connection();
    assert_eq!(summed_len(&mut conn, shop.layout(), |keys| keys.dead_letters(Stream::OrderPlaced)).await, 0);
    assert_eq!(first.terminate(Duration::from_secs(5)), Some(0));
    assert_eq!(second.terminate(Duration::from_secs(5)), Some(0));
}

/// Each restart leaves a `<host>-<pid>` consumer name behind; the trimmer
/// removes names idle past `CONSUMER_EXPIRY_MS` that hold nothing, never one
/// that holds entries, and never its own.
async fn consumers_that_are_gone_are_removed_but_never_one_holding_entries(backend: Backend) {
    let redis = TestRedis::start(backend);
    let mut config = config_for(&redis);
    config.consumer_name = "alive".into();
    config.claim_idle = Duration::from_millis(100);
    config.consumer_expiry = Duration::from_millis(300);
    let shop = Shop::new(&config).unwrap();
    let product = shop.create_product(NewProduct::parse("Names", "1", "10").unwrap()).await.unwrap();
    let keys = keys_of(&shop, &product.id);
    let stream = keys.stream(Stream::OrderPlaced);
    let mut conn = shop.connection();
    store::streams::ensure_group(&mut conn, &stream, group::PAYMENT).await.unwrap();
    shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    // "gone-holding" takes the entry and dies; "gone-empty" and "alive" hold nothing.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group::PAYMENT)
        .arg("gone-holding")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    for consumer in ["gone-empty", "alive"] {
        let _: u32 = redis::cmd("XGROUP")
            .arg("CREATECONSUMER")
            .arg(&stream)
            .arg(group::PAYMENT)
            .arg(consumer)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let names = |consumers: Vec<HashMap<String, redis::Value>>| -> Vec<String> {
        consumers.iter().map(|c| redis::from_redis_value_ref::<String>(&c["name"]).unwrap()).collect()
    };
    assert!(
        workers::trimmer::remove_gone_consumers(&mut conn, &keys, &config).await.unwrap().is_empty(),
        "none idle yet"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let removed = workers::trimmer::remove_gone_consumers(&mut conn, &keys, &config).await.unwrap();
    assert_eq!(removed, vec!["gone-empty".to_string()]);
    let left: Vec<HashMap<String, redis::Value>> =
        redis::cmd("XINFO").arg("CONSUMERS").arg(&stream).arg(group::PAYMENT).query_async(&mut conn).await.unwrap();
    let mut left = names(left);
    left.sort();
    assert_eq!(left, vec!["alive".to_string(), "gone-holding".to_string()]);
}
