//! Dead letters as an operator handles them, on one server and on a cluster:
//! listed newest first across partitions, counted, retried once (back on
//! their stream with their fields), discarded.

use domain::{NewProduct, Quantity};
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;
use store::dead_letters::{self, DeadLetterId};
use store::{now_ms, scripts, Config, PartitionKeys, Redis, Shop, StoreError, Stream};
use testkit::{on_every_backend, Backend, TestRedis};

on_every_backend!(dead_letters_are_listed_retried_once_and_discarded);

/// Gives up on a fresh entry of `stream` naming `order_id`, as a consumer would.
async fn give_up(conn: &mut Redis, keys: &PartitionKeys, stream: Stream, order_id: &str, error: &str) {
    let group = stream.group().unwrap();
    store::streams::ensure_group(conn, &keys.stream(stream), group).await.unwrap();
    let entry: String = conn.xadd(keys.stream(stream), "*", &[("order_id", order_id)]).await.unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg("w")
        .arg("STREAMS")
        .arg(keys.stream(stream))
        .arg(">")
        .query_async(conn)
        .await
        .unwrap();
    let fields = [("order_id".to_string(), order_id.to_string())];
    let letter = scripts::DeadLetter {
        stream,
        group,
        entry_id: &entry,
        error,
        consumer: "w",
        fields: &fields,
        refund_order_id: None,
    };
    scripts::dead_letter(keys, &letter, now_ms(), 1000, 1000).run(conn).await.unwrap();
}

async fn dead_letters_are_listed_retried_once_and_discarded(backend: Backend) {
    let redis = TestRedis::start(backend);
    let shop = Shop::new(&Config::for_variable(redis.env())).unwrap();
    let layout = shop.layout().clone();
    let mut conn = shop.connection();
    // Seven dead letters spread over partitions and streams.
    let mut orders = Vec::new();
    for i in 0..7 {
        let product = shop.create_product(NewProduct::parse(&format!("P{i}"), "1", "5").unwrap()).await.unwrap();
        let order = shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
        let keys = layout.keys_of_id(&product.id).clone();
        let stream = [Stream::OrderCompleted, Stream::RefundInitiated][i % 2];
        give_up(&mut conn, &keys, stream, &order.id, &format!("error {i}")).await;
        orders.push(order.id);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(dead_letters::count(&conn, &layout).await.unwrap(), 7);

    // Newest first, three at a time, each once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = dead_letters::page(&conn, &layout, 3, after).await.unwrap();
        seen.extend(page.items.iter().map(|l| (l.order_id.clone().unwrap(), l.error.clone(), l.deliveries)));
        match page.next_cursor {
            Some(cursor) => after = Some(DeadLetterId::parse(&cursor, &layout).unwrap()),
            None => break,
        }
        assert!(seen.len() <= 7, "the cursor never ends");
    }
    let expected: Vec<(String, String, u64)> =
        orders.iter().enumerate().rev().map(|(i, id)| (id.to_string(), format!("error {i}"), 1)).collect();
    assert_eq!(seen, expected);

    // Retried: back on its stream with its fields, once.
    let newest = dead_letters::page(&conn, &layout, 1, None).await.unwrap().items.remove(0);
    let id = DeadLetterId::parse(&newest.id, &layout).unwrap();
    let keys = layout.keys(id.partition);
    let before: u64 = conn.xlen(keys.stream(id.stream)).await.unwrap();
    let entry_id = dead_letters::retry(&conn, &layout, id).await.unwrap();
    assert!(matches!(dead_letters::retry(&conn, &layout, id).await, Err(StoreError::NotFound { .. })));
    assert_eq!(conn.xlen::<_, u64>(keys.stream(id.stream)).await.unwrap(), before + 1, "back once");
    let back: StreamRangeReply = conn.xrange(keys.stream(id.stream), &entry_id, &entry_id).await.unwrap();
    assert_eq!(back.ids[0].get::<String>("order_id"), newest.order_id);
    assert_eq!(dead_letters::count(&conn, &layout).await.unwrap(), 6);

    // Discarded: gone, once.
    let oldest = dead_letters::page(&conn, &layout, 10, None).await.unwrap().items.pop().unwrap();
    let id = DeadLetterId::parse(&oldest.id, &layout).unwrap();
    dead_letters::discard(&conn, &layout, id).await.unwrap();
    assert!(matches!(dead_letters::discard(&conn, &layout, id).await, Err(StoreError::NotFound { .. })));
    assert_eq!(dead_letters::count(&conn, &layout).await.unwrap(), 5);
}
