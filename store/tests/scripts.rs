//! The Lua scripts and the service layer against a private redis-server:
//! each status change applies once, only from its expected previous status,
//! with its events in the same step.

use domain::{Id, NewProduct, OrderStatus, ProductChange, ProductEvent, Quantity, Restock};
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;
use store::scripts::{Applying, Change, DeadLettered, Fulfilment, Taking};
use store::{now_ms, scripts, Config, PartitionKeys, Redis, Shop, StoreError, Stream};
use testkit::{on_every_backend, Backend, TestRedis};

on_every_backend!(
    an_order_moves_forward_once_per_step_with_one_event_each,
    short_stock_initiates_one_refund_and_the_refund_applies_once,
    a_deleted_product_refunds_orders_in_flight_and_refuses_new_ones,
    events_that_do_not_match_an_order_are_reported_not_applied,
    scripts_are_reloaded_when_redis_forgot_them,
    lists_and_lookups_survive_odd_ids,
    lists_merge_every_partition_in_id_order,
    the_scripts_follow_the_domains_order_rules,
    an_entry_committed_meanwhile_is_not_dead_lettered,
    only_refunds_the_warehouse_initiated_are_applied,
    dead_letters_have_their_own_cap_and_count_what_falls_off,
    lists_filter_by_status_and_product_and_count_by_status,
    a_batch_takes_stock_first_come_first_served_and_acks_each_entry_it_commits,
    orders_placed_at_once_are_saved_together_each_once,
    products_are_searched_a_page_at_a_time_and_rows_fetched_by_id,
    the_search_indexes_are_built_for_data_older_than_them,
    product_changes_are_announced_on_their_partitions_order_status_stream,
    the_scripts_and_the_bulk_loader_write_records_of_one_shape,
);

async fn shop_on(redis: &TestRedis) -> (Shop, Redis) {
    let shop = Shop::new(&Config::for_variable(redis.env())).unwrap();
    let conn = shop.connection();
    (shop, conn)
}

/// The keys of the partition an id lives in.
fn keys_of(shop: &Shop, id: &Id) -> PartitionKeys {
    shop.layout().keys_of_id(id).clone()
}

async fn run<T: redis::FromRedisValue>(conn: &mut Redis, call: scripts::Call<T>) -> T {
    call.run(conn).await.unwrap()
}

/// Entries of `stream` that record orders (not the products' changes that
/// `order-status` carries too).
async fn len(conn: &mut Redis, keys: &PartitionKeys, stream: Stream) -> u64 {
    let entries: StreamRangeReply = conn.xrange_all(keys.stream(stream)).await.unwrap();
    entries.ids.iter().filter(|entry| !store::streams::is_product_change(entry)).count() as u64
}

/// The products' changes on a partition's `order-status` stream, oldest first.
async fn product_changes(conn: &mut Redis, keys: &PartitionKeys) -> Vec<ProductChange> {
    let entries: StreamRangeReply = conn.xrange_all(keys.stream(Stream::OrderStatus)).await.unwrap();
    entries
        .ids
        .iter()
        .filter(|entry| store::streams::is_product_change(entry))
        .map(|entry| store::streams::product_change(entry).unwrap())
        .collect()
}

fn qty(n: u32) -> Quantity {
    Quantity::new(n).unwrap()
}

async fn an_order_moves_forward_once_per_step_with_one_event_each(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Chair", "10", "2").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    let order = shop.place_order(&product.id, qty(2)).await.unwrap();
    assert_eq!(order.status, OrderStatus::Pending);
    // The order-placed entry is the pending change's one event.
    assert_eq!((len(&mut conn, &k, Stream::OrderPlaced).await, len(&mut conn, &k, Stream::OrderStatus).await), (1, 0));

    // Payment twice: applied, then skipped; one order-completed entry.
    let complete = || scripts::complete_order(&k, &order.id, now_ms(), None);
    assert_eq!(run(&mut conn, complete()).await, Change::Applied);
    assert_eq!(run(&mut conn, complete()).await, Change::Skipped);
    assert_eq!(len(&mut conn, &k, Stream::OrderCompleted).await, 1);

    // Warehouse twice: the exact stock is taken once, leaving zero.
    let fulfil = || scripts::fulfil_order(&k, &order.id, &product.id, now_ms(), 1000, None);
    assert_eq!(run(&mut conn, fulfil()).await, Fulfilment::Fulfilled { stock_left: 0 });
    assert_eq!(run(&mut conn, fulfil()).await, Fulfilment::Skipped);
    assert_eq!(shop.product(&product.id).await.unwrap().quantity, 0);
    assert_eq!(shop.order(&order.id).await.unwrap().status, OrderStatus::Fulfilled);

    // A refund of a fulfilled order changes nothing.
    assert_eq!(run(&mut conn, scripts::refund_order(&k, &order.id, now_ms(), 1000, None)).await, Change::Skipped);
    assert_eq!(
        len(&mut conn, &k, Stream::OrderStatus).await,
        1,
        "fulfilled (pending and completed are the work entries)"
    );
    assert_eq!(len(&mut conn, &k, Stream::OrderCompleted).await, 1);
}

async fn short_stock_initiates_one_refund_and_the_refund_applies_once(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Lamp", "5", "1").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    let order = shop.place_order(&product.id, qty(2)).await.unwrap();
    let _ = run(&mut conn, scripts::complete_order(&k, &order.id, now_ms(), None)).await;

    let fulfil = || scripts::fulfil_order(&k, &order.id, &product.id, now_ms(), 1000, None);
    assert_eq!(
        run(&mut conn, fulfil()).await,
        Fulfilment::RefundInitiated { reason: scripts::reason::INSUFFICIENT_STOCK.into() }
    );
    assert_eq!(run(&mut conn, fulfil()).await, Fulfilment::Skipped, "no second refund");
    assert_eq!(len(&mut conn, &k, Stream::RefundInitiated).await, 1);
    assert_eq!(shop.product(&product.id).await.unwrap().quantity, 1, "stock untouched");

    let refund = || scripts::refund_order(&k, &order.id, now_ms(), 1000, None);
    assert_eq!(run(&mut conn, refund()).await, Change::Applied);
    assert_eq!(run(&mut conn, refund()).await, Change::Skipped);
    let refunded = shop.order(&order.id).await.unwrap();
    assert_eq!(refunded.status, OrderStatus::Refunded);
    assert_eq!(refunded.refund_reason.as_deref(), Some(scripts::reason::INSUFFICIENT_STOCK));
}

async fn a_deleted_product_refunds_orders_in_flight_and_refuses_new_ones(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Desk", "99.99", "9").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    let order = shop.place_order(&product.id, qty(1)).await.unwrap();
    let _ = run(&mut conn, scripts::complete_order(&k, &order.id, now_ms(), None)).await;
    shop.delete_product(&product.id).await.unwrap();
    assert!(matches!(shop.delete_product(&product.id).await, Err(StoreError::NotFound { .. })));

    let reply = run(&mut conn, scripts::fulfil_order(&k, &order.id, &product.id, now_ms(), 1000, None)).await;
    assert_eq!(reply, Fulfilment::RefundInitiated { reason: scripts::reason::PRODUCT_GONE.into() });

    let placed_before = len(&mut conn, &k, Stream::OrderPlaced).await;
    assert!(matches!(shop.place_order(&product.id, qty(1)).await, Err(StoreError::NotFound { kind: "product", .. })));
    assert_eq!(len(&mut conn, &k, Stream::OrderPlaced).await, placed_before, "nothing saved for a refused order");
    assert_eq!(shop.orders().await.unwrap().len(), 1);
}

async fn events_that_do_not_match_an_order_are_reported_not_applied(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Pen", "1", "9").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    let other = shop.create_product(NewProduct::parse("Ink", "1", "9").unwrap()).await.unwrap();
    let order = shop.place_order(&product.id, qty(1)).await.unwrap();
    let _ = run(&mut conn, scripts::complete_order(&k, &order.id, now_ms(), None)).await;

    let unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    assert_eq!(run(&mut conn, scripts::complete_order(&k, unknown, now_ms(), None)).await, Change::Missing);
    // Named by an entry this node does not hold either: a stale master
    // answered, and the consumer tries again rather than dead-letter it.
    let elsewhere = Some(scripts::Ack { group: "payment", entry_id: "1-1" });
    assert_eq!(run(&mut conn, scripts::complete_order(&k, unknown, now_ms(), elsewhere)).await, Change::Stray);
    let refund = scripts::refund_order(&k, unknown, now_ms(), 1000, elsewhere);
    assert_eq!(run(&mut conn, refund).await, Change::Stray);
    let reply = run(&mut conn, scripts::fulfil_order(&k, &order.id, &other.id, now_ms(), 1000, None)).await;
    assert_eq!(reply, Fulfilment::Mismatch);
    assert_eq!(shop.product(&other.id).await.unwrap().quantity, 9);
    assert_eq!(shop.order(&order.id).await.unwrap().status, OrderStatus::Completed);
}

async fn scripts_are_reloaded_when_redis_forgot_them(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Cup", "2.50", "3").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    flush_scripts(&mut conn).await;
    let order = shop.place_order(&product.id, qty(1)).await.unwrap();
    flush_scripts(&mut conn).await;
    let calls = vec![scripts::complete_order(&k, &order.id, now_ms(), None)];
    assert_eq!(scripts::run_all(&mut conn, calls).await.unwrap(), vec![Change::Applied]);
}

async fn lists_and_lookups_survive_odd_ids(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, _) = shop_on(&redis).await;
    for odd in ["", "../etc", "product:1", &"x".repeat(1000)] {
        assert!(Id::parse(odd).is_err(), "{odd} never reaches the shop");
    }
    for id in ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "01arz3ndektsv4rrffq69g5fav"] {
        let id = Id::parse(id).unwrap();
        assert!(matches!(shop.product(&id).await, Err(StoreError::NotFound { .. })), "{id}");
        assert!(matches!(shop.order(&id).await, Err(StoreError::NotFound { .. })), "{id}");
    }
    assert!(shop.products().await.unwrap().is_empty());
    assert!(shop.orders().await.unwrap().is_empty());
}

/// SCRIPT FLUSH on every master of the cluster (or the one server).
async fn flush_scripts(conn: &mut Redis) {
    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(conn).await.unwrap();
}

async fn lists_merge_every_partition_in_id_order(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, _) = shop_on(&redis).await;
    let mut created = Vec::new();
    for i in 0..40 {
        let product = shop.create_product(NewProduct::parse(&format!("P{i}"), "1", "100").unwrap()).await.unwrap();
        created.push(product.id);
    }
    let partitions: std::collections::HashSet<_> = created.iter().map(|id| keys_of(&shop, id).partition()).collect();
    assert_eq!(partitions.len(), 16, "products spread over every partition");
    let listed: Vec<Id> = shop.products().await.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(listed, created, "oldest first across partitions");

    let mut orders = Vec::new();
    for (i, product) in created.iter().enumerate().take(30) {
        orders.push(shop.place_order(product, qty(1 + i as u32 % 3)).await.unwrap().id);
    }
    orders.reverse();
    // Page through newest first, 7 at a time: every order once, in order.
    let mut seen = Vec::new();
    let mut request = domain::PageRequest::first(7);
    loop {
        let page = shop.orders_page(&request).await.unwrap();
        seen.extend(page.items.iter().map(|o| o.id.clone()));
        assert!(seen.len() <= orders.len(), "the cursor never ends");
        match page.next_cursor {
            Some(cursor) => request = domain::PageRequest::parse(Some("7"), Some(&cursor)).unwrap(),
            None => break,
        }
    }
    assert_eq!(seen, orders);
    for id in &orders {
        let order = shop.order(id).await.unwrap();
        assert_eq!(keys_of(&shop, id).partition(), keys_of(&shop, &order.product_id).partition(), "with its product");
    }
}

/// Puts a fresh order of a new product into `status` (by hand, as if it got
/// there), with the warehouse's refund reason recorded when `initiated`.
async fn order_in(
    shop: &Shop,
    conn: &mut Redis,
    status: OrderStatus,
    initiated: bool,
) -> (PartitionKeys, domain::Order) {
    let product = shop.create_product(NewProduct::parse("Rule", "3", "50").unwrap()).await.unwrap();
    let order = shop.place_order(&product.id, qty(1)).await.unwrap();
    let k = keys_of(shop, &order.id);
    let () = conn.hset(k.order(&order.id), "status", status.as_str()).await.unwrap();
    // Where the scripts would have put it.
    let member = format!("{}:{}", product.id, order.id);
    let _: (u32, u32, u32, u32) = redis::pipe()
        .zrem(k.orders_in(OrderStatus::Pending), order.id.as_str())
        .zrem(k.orders_by_product(OrderStatus::Pending), &member)
        .zadd(k.orders_in(status), order.id.as_str(), 0)
        .zadd(k.orders_by_product(status), &member, 0)
        .query_async(conn)
        .await
        .unwrap();
    if initiated {
        let () = conn.hset(k.order(&order.id), "refund_reason", scripts::reason::INSUFFICIENT_STOCK).await.unwrap();
    }
    (k, order)
}

/// A pending entry of `stream` in its group, naming `order_id`, as a consumer holds it.
async fn pending_entry(conn: &mut Redis, k: &PartitionKeys, stream: Stream, order_id: &str) -> String {
    let group = stream.group().unwrap();
    let name = k.stream(stream);
    store::streams::ensure_group(conn, &name, group).await.unwrap();
    let id: String = conn.xadd(&name, "*", &[("order_id", order_id)]).await.unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg("holder")
        .arg("COUNT")
        .arg(1000)
        .arg("STREAMS")
        .arg(&name)
        .arg(">")
        .query_async(conn)
        .await
        .unwrap();
    id
}

/// The order rules live in the domain only: every (status, event) pair,
/// walked through the real scripts, ends where `OrderEvent::apply` says.
async fn the_scripts_follow_the_domains_order_rules(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    for from in OrderStatus::ALL {
        for event in domain::OrderEvent::ALL {
            let (k, order) = order_in(&shop, &mut conn, from, event == domain::OrderEvent::RefundApplied).await;
            match event {
                domain::OrderEvent::PaymentCompleted => {
                    run(&mut conn, scripts::complete_order(&k, &order.id, now_ms(), None)).await;
                }
                domain::OrderEvent::StockTaken => {
                    run(&mut conn, scripts::fulfil_order(&k, &order.id, &order.product_id, now_ms(), 1000, None)).await;
                }
                domain::OrderEvent::RefundApplied => {
                    run(&mut conn, scripts::refund_order(&k, &order.id, now_ms(), 1000, None)).await;
                }
                domain::OrderEvent::GivenUp => {
                    let entry = pending_entry(&mut conn, &k, Stream::OrderPlaced, &order.id).await;
                    let letter = scripts::DeadLetter {
                        stream: Stream::OrderPlaced,
                        group: "payment",
                        entry_id: &entry,
                        error: "test",
                        consumer: "holder",
                        fields: &[],
                        refund_order_id: Some(&order.id),
                    };
                    run(&mut conn, scripts::dead_letter(&k, &letter, now_ms(), 1000, 1000)).await;
                }
            }
            let now = shop.order(&order.id).await.unwrap().status;
            assert_eq!(now, event.apply(from).unwrap_or(from), "{event:?} from {from}");
            assert_indexed_in(&mut conn, &k, &order, now).await;
        }
    }
}

/// The order is in the indexes of `status` (plain and by product) and in no other status's.
async fn assert_indexed_in(conn: &mut Redis, keys: &PartitionKeys, order: &domain::Order, status: OrderStatus) {
    let member = format!("{}:{}", order.product_id, order.id);
    for other in OrderStatus::ALL {
        let plain: Option<f64> = conn.zscore(keys.orders_in(other), order.id.as_str()).await.unwrap();
        let by_product: Option<f64> = conn.zscore(keys.orders_by_product(other), &member).await.unwrap();
        let expected = other == status;
        assert_eq!(
            (plain.is_some(), by_product.is_some()),
            (expected, expected),
            "{} in {other} (it is {status})",
            order.id
        );
    }
}

/// Data saved before the search indexes existed is indexed once, at start:
/// products by the prefixes of their names, orders by status and product.
async fn the_search_indexes_are_built_for_data_older_than_them(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let chair = shop.create_product(NewProduct::parse("Old oak chair", "1", "100").unwrap()).await.unwrap();
    let lamp = shop.create_product(NewProduct::parse("Old lamp", "1", "100").unwrap()).await.unwrap();
    let mut orders = Vec::new();
    for product in [&chair, &lamp, &chair] {
        orders.push(shop.place_order(&product.id, qty(1)).await.unwrap());
    }
    let k = keys_of(&shop, &orders[0].id);
    run(&mut conn, scripts::complete_order(&keys_of(&shop, &chair.id), &orders[0].id, now_ms(), None)).await;
    // As a version before the indexes left it: no index, no mark.
    for keys in shop.layout().all() {
        let mut stale: Vec<String> = conn.keys(keys.product_prefix("*")).await.unwrap();
        stale.extend(keys.status_indexes().into_iter().filter(|key| key.ends_with(":by-product")));
        for key in stale {
            let _: u32 = conn.del(&key).await.unwrap();
        }
    }
    assert!(shop.search_products("oak", &domain::PageRequest::first(5), true).await.unwrap().items.is_empty());
    store::indexes::build_missing(&conn, shop.layout()).await.unwrap();
    let found = shop.search_products("oak", &domain::PageRequest::first(5), true).await.unwrap().items;
    assert_eq!(found, vec![chair.clone()]);
    let pending_chairs = store::OrderFilter {
        status: Some(OrderStatus::Pending),
        products: Some(vec![chair.id.clone()]),
        id_start: None,
    };
    let page = shop.orders_page_where(&domain::PageRequest::first(5), &pending_chairs).await.unwrap();
    assert_eq!(page.items.iter().map(|o| o.id.clone()).collect::<Vec<_>>(), vec![orders[2].id.clone()]);
    assert_indexed_in(&mut conn, &k, &orders[0], OrderStatus::Completed).await;
    // Marked built: a second start leaves the indexes alone.
    let built: Option<String> = conn.get(k.search_indexes_built()).await.unwrap();
    assert_eq!(built.as_deref(), Some("1"));
}

/// Dead-lettering gives up on an entry only while it is still pending: when
/// the consumer that held it committed it meanwhile, its paid order is left alone.
async fn an_entry_committed_meanwhile_is_not_dead_lettered(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let (k, order) = order_in(&shop, &mut conn, OrderStatus::Completed, false).await;
    let entry = pending_entry(&mut conn, &k, Stream::OrderCompleted, &order.id).await;
    let _: u32 = conn.xack(k.stream(Stream::OrderCompleted), "warehouse", &[&entry]).await.unwrap();
    let letter = scripts::DeadLetter {
        stream: Stream::OrderCompleted,
        group: "warehouse",
        entry_id: &entry,
        error: "too slow",
        consumer: "reclaimer",
        fields: &[],
        refund_order_id: Some(&order.id),
    };
    assert_eq!(run(&mut conn, scripts::dead_letter(&k, &letter, now_ms(), 1000, 1000)).await, DeadLettered::NotPending);
    assert_eq!(shop.order(&order.id).await.unwrap().status, OrderStatus::Completed);
    assert_eq!(conn.xlen::<_, u64>(k.dead_letters(Stream::OrderCompleted)).await.unwrap(), 0);
}

/// A refund-initiated entry refunds only an order the warehouse decided to
/// refund (its reason recorded by the step that emitted the entry).
async fn only_refunds_the_warehouse_initiated_are_applied(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let (k, paid) = order_in(&shop, &mut conn, OrderStatus::Completed, false).await;
    assert_eq!(run(&mut conn, scripts::refund_order(&k, &paid.id, now_ms(), 1000, None)).await, Change::NotInitiated);
    assert_eq!(shop.order(&paid.id).await.unwrap().status, OrderStatus::Completed, "a paid order stays paid");
    let (k, short) = order_in(&shop, &mut conn, OrderStatus::Completed, true).await;
    assert_eq!(run(&mut conn, scripts::refund_order(&k, &short.id, now_ms(), 1000, None)).await, Change::Applied);
}

/// Dead letters have their own cap; what falls off it is counted.
async fn dead_letters_have_their_own_cap_and_count_what_falls_off(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Cap", "1", "1").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    for n in 0..350 {
        let entry = pending_entry(&mut conn, &k, Stream::OrderCompleted, &format!("junk-{n}")).await;
        let letter = scripts::DeadLetter {
            stream: Stream::OrderCompleted,
            group: "warehouse",
            entry_id: &entry,
            error: "junk",
            consumer: "holder",
            fields: &[],
            refund_order_id: None,
        };
        run(&mut conn, scripts::dead_letter(&k, &letter, now_ms(), 1000, 100)).await;
    }
    let kept: u64 = conn.xlen(k.dead_letters(Stream::OrderCompleted)).await.unwrap();
    let dropped: u64 = conn.hget(k.dead_letters_dropped(), k.stream(Stream::OrderCompleted)).await.unwrap();
    assert!((100..350).contains(&kept), "about 100 kept: {kept}");
    assert_eq!(kept + dropped, 350, "every dead letter is kept or counted");
    let observed = store::observe::observe(&conn, shop.layout()).await.unwrap();
    let stats = observed.streams.iter().find(|s| s.stream == "order-completed").unwrap();
    assert_eq!((stats.dead_letters, stats.dead_letters_dropped), (kept, dropped));
}

/// The lists an operator filters: by status (each partition's status index),
/// by product (its own index), both, and products by name; counts by status.
async fn lists_filter_by_status_and_product_and_count_by_status(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let mut products = Vec::new();
    for name in ["Red chair", "Blue chair", "Lamp"] {
        products.push(shop.create_product(NewProduct::parse(name, "2", "100").unwrap()).await.unwrap());
    }
    let mut placed = Vec::new();
    for i in 0..30 {
        let product = &products[i % 3];
        placed.push((product.id.clone(), shop.place_order(&product.id, qty(1)).await.unwrap().id));
    }
    // Pay every third order: completed.
    for (n, (product_id, order_id)) in placed.iter().enumerate() {
        if n % 3 == 0 {
            run(&mut conn, scripts::complete_order(&keys_of(&shop, product_id), order_id, now_ms(), None)).await;
        }
    }
    let newest_first = |wanted: &dyn Fn(usize, &Id) -> bool| -> Vec<Id> {
        placed.iter().enumerate().rev().filter(|(n, (p, _))| wanted(*n, p)).map(|(_, (_, o))| o.clone()).collect()
    };
    let all_pages = |filter: store::OrderFilter| {
        let shop = shop.clone();
        async move {
            let (mut seen, mut request) = (Vec::new(), domain::PageRequest::first(4));
            loop {
                let page = shop.orders_page_where(&request, &filter).await.unwrap();
                seen.extend(page.items.iter().map(|o| o.id.clone()));
                match page.next_cursor {
                    Some(cursor) => request.after = Some(cursor.parse().unwrap()),
                    None => return seen,
                }
                assert!(seen.len() <= 30, "the cursor never ends");
            }
        }
    };
    let completed = store::OrderFilter { status: Some(OrderStatus::Completed), ..Default::default() };
    assert_eq!(all_pages(completed).await, newest_first(&|n, _| n % 3 == 0));
    let chairs = vec![products[0].id.clone(), products[1].id.clone()];
    let of_chairs = store::OrderFilter { products: Some(chairs.clone()), ..Default::default() };
    assert_eq!(all_pages(of_chairs).await, newest_first(&|_, p| chairs.contains(p)));
    let pending_chairs =
        store::OrderFilter { status: Some(OrderStatus::Pending), products: Some(chairs.clone()), id_start: None };
    assert_eq!(all_pages(pending_chairs).await, newest_first(&|n, p| n % 3 != 0 && chairs.contains(p)));
    // By the start of the id (8 characters: about a second's orders), alone and with a status.
    let start = placed[7].1[..8].to_string();
    let by_start = |n: usize| placed[n].1.starts_with(&start);
    let starting = store::OrderFilter { id_start: Some(start.clone()), ..Default::default() };
    assert_eq!(all_pages(starting).await, newest_first(&|n, _| by_start(n)));
    let completed_starting = store::OrderFilter {
        status: Some(OrderStatus::Completed),
        id_start: Some(start.clone()),
        ..Default::default()
    };
    assert_eq!(all_pages(completed_starting).await, newest_first(&|n, _| n % 3 == 0 && by_start(n)));
    let whole_id = store::OrderFilter { id_start: Some(placed[7].1.to_string()), ..Default::default() };
    assert_eq!(all_pages(whole_id).await, vec![placed[7].1.clone()]);
    let none = store::OrderFilter { id_start: Some("00000000".into()), ..Default::default() };
    assert!(all_pages(none).await.is_empty());

    let counts = shop.status_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![
            (OrderStatus::Pending, 20),
            (OrderStatus::Completed, 10),
            (OrderStatus::Fulfilled, 0),
            (OrderStatus::Refunded, 0)
        ]
    );
    let (found, more) = shop.matching_products("CHAIR", 10).await.unwrap();
    assert_eq!(found, vec![products[1].id.clone(), products[0].id.clone()], "newest first");
    assert!(!more);
    assert_eq!(shop.matching_products("CHAIR", 1).await.unwrap(), (vec![products[1].id.clone()], true));
    assert!(shop.matching_products("sofa", 10).await.unwrap().0.is_empty());
}

/// The warehouse's batch script: stock read once and written once, yet each
/// order judged in turn, exactly as if one by one; skipped and applied
/// entries acked in the same step, missing ones not.
async fn a_batch_takes_stock_first_come_first_served_and_acks_each_entry_it_commits(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Stool", "3", "5").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    let mut orders = Vec::new();
    for units in [2, 2, 2, 1] {
        orders.push(shop.place_order(&product.id, qty(units)).await.unwrap().id);
    }
    // Completed through the stream, so each order-completed entry is pending in the group.
    let group = "warehouse-test";
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(k.stream(Stream::OrderCompleted))
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    let applying: Vec<Applying> = orders.iter().map(|id| Applying { order_id: id, entry_id: None }).collect();
    let completed = run(&mut conn, scripts::complete_orders(&k, "", &applying, now_ms())).await;
    assert_eq!(completed, vec![Change::Applied; 4]);
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg("c")
        .arg("STREAMS")
        .arg(k.stream(Stream::OrderCompleted))
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let entries: Vec<String> = read.keys[0].ids.iter().map(|entry| entry.id.clone()).collect();
    assert_eq!(entries.len(), 4);

    // The first order again (a redelivery in the same batch), one that does
    // not exist, and one that does not exist with an entry this node does
    // not hold either (a stale master answering).
    let missing = "01J00000000000000000000000";
    let mut batch: Vec<Taking> = orders
        .iter()
        .zip(&entries)
        .map(|(id, entry)| Taking { order_id: id, product_id: &product.id, entry_id: Some(entry) })
        .collect();
    batch.push(Taking { order_id: &orders[0], product_id: &product.id, entry_id: Some(&entries[0]) });
    batch.push(Taking { order_id: missing, product_id: &product.id, entry_id: Some(&entries[3]) });
    batch.push(Taking { order_id: missing, product_id: &product.id, entry_id: Some("1-1") });
    let verdicts = run(&mut conn, scripts::fulfil_orders(&k, group, &batch, now_ms(), 1000)).await;
    let short = Fulfilment::RefundInitiated { reason: scripts::reason::INSUFFICIENT_STOCK.into() };
    assert_eq!(
        verdicts,
        vec![
            Fulfilment::Fulfilled { stock_left: 3 },
            Fulfilment::Fulfilled { stock_left: 1 },
            short,
            Fulfilment::Fulfilled { stock_left: 0 },
            Fulfilment::Skipped,
            Fulfilment::Missing,
            Fulfilment::Stray,
        ]
    );
    assert_eq!(shop.product(&product.id).await.unwrap().quantity, 0);
    let pending: redis::streams::StreamPendingReply =
        conn.xpending(k.stream(Stream::OrderCompleted), group).await.unwrap();
    assert_eq!(pending.count(), 0, "every entry of an order that exists is acked");
    let (fulfilled, refunding) = (shop.order(&orders[1]).await.unwrap(), shop.order(&orders[2]).await.unwrap());
    assert_eq!((fulfilled.status, refunding.status), (OrderStatus::Fulfilled, OrderStatus::Completed));
    let counts = shop.status_counts().await.unwrap();
    assert!(
        counts.contains(&(OrderStatus::Fulfilled, 3)) && counts.contains(&(OrderStatus::Completed, 1)),
        "{counts:?}"
    );
    assert_eq!(len(&mut conn, &k, Stream::RefundInitiated).await, 1);
}

/// Orders placed at the same moment share one script call; each is saved
/// once with its entries, and two requests with one idempotency key make
/// one order even in the same call.
async fn orders_placed_at_once_are_saved_together_each_once(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Mug", "2.50", "100").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    let placing = (0..40).map(|i| {
        let (shop, product_id) = (shop.clone(), product.id.clone());
        tokio::spawn(async move {
            let key = if i % 10 == 0 { Some("same-key") } else { None };
            shop.place_order_once(&product_id, qty(1), key).await.unwrap()
        })
    });
    let placed: Vec<_> = futures::future::join_all(placing).await.into_iter().map(Result::unwrap).collect();
    let keyed: std::collections::HashSet<_> =
        placed.iter().enumerate().filter(|(i, _)| i % 10 == 0).map(|(_, p)| p.order.id.clone()).collect();
    assert_eq!(keyed.len(), 1, "one order for one idempotency key");
    assert_eq!(placed.iter().filter(|p| p.replayed).count(), 3);
    assert_eq!(shop.orders().await.unwrap().len(), 37);
    assert_eq!(len(&mut conn, &k, Stream::OrderPlaced).await, 37);
    assert_eq!(len(&mut conn, &k, Stream::OrderStatus).await, 0, "the order-placed entries are the events");
    assert!(shop.status_counts().await.unwrap().contains(&(OrderStatus::Pending, 37)));
    let of_product: u64 = conn.zcard(k.product_orders(&product.id)).await.unwrap();
    assert_eq!(of_product, 37);
    for placed in placed.iter().filter(|p| !p.replayed) {
        assert_eq!(shop.order(&placed.order.id).await.unwrap(), placed.order, "saved as answered");
    }
}

/// The warehouse's search, a page at a time, newest or oldest first; and the
/// products and orders the UI fetches by id (unknown and foreign ids left out).
async fn products_are_searched_a_page_at_a_time_and_rows_fetched_by_id(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, _) = shop_on(&redis).await;
    let mut products = Vec::new();
    for n in 0..12 {
        let name = if n % 3 == 0 { format!("Lamp {n}") } else { format!("Oak chair {n}") };
        products.push(shop.create_product(NewProduct::parse(&name, "2", "100").unwrap()).await.unwrap());
    }
    let all_pages = |text: &'static str, newest_first: bool| {
        let shop = shop.clone();
        async move {
            let (mut seen, mut request) = (Vec::new(), domain::PageRequest::first(3));
            loop {
                let page = shop.search_products(text, &request, newest_first).await.unwrap();
                assert!(page.items.len() <= 3);
                seen.extend(page.items.into_iter().map(|p| p.name));
                match page.next_cursor {
                    Some(cursor) => request.after = Some(cursor.parse().unwrap()),
                    None => return seen,
                }
                assert!(seen.len() <= 12, "the cursor never ends");
            }
        }
    };
    let names = |wanted: &dyn Fn(&str) -> bool| -> Vec<String> {
        products.iter().map(|p| p.name.clone()).filter(|n| wanted(n)).collect()
    };
    let mut chairs_newest_first = names(&|n| n.starts_with("Oak"));
    chairs_newest_first.reverse();
    assert_eq!(all_pages("CHAIR", true).await, chairs_newest_first);
    assert_eq!(all_pages("lamp", false).await, names(&|n| n.starts_with("Lamp")));
    assert_eq!(all_pages(" ", false).await, names(&|_| true));
    assert!(all_pages("sofa", true).await.is_empty());
    // Words are matched from their start, every word of the query: "ch oak"
    // finds the oak chairs, "hair" (inside a word) nothing.
    assert_eq!(all_pages("ch oak", true).await, chairs_newest_first);
    assert!(all_pages("hair", true).await.is_empty());
    let mut some_chairs = names(&|n| n.starts_with("Oak") && n.split(' ').any(|word| word.starts_with('1')));
    some_chairs.reverse();
    assert_eq!(all_pages("oak 1", true).await, some_chairs, "a one-letter word still narrows");
    let too_short = shop.search_products("e", &domain::PageRequest::first(3), true).await.unwrap_err();
    assert!(matches!(too_short, store::StoreError::Invalid { field: "search", .. }), "{too_short}");
    // Deleting a product takes it out of the search.
    shop.delete_product(&products[11].id).await.unwrap();
    assert_eq!(all_pages("chair", true).await, chairs_newest_first[1..].to_vec());

    let order = shop.place_order(&products[1].id, qty(1)).await.unwrap();
    let unknown = Id::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
    let asked = vec![products[4].id.clone(), unknown, products[0].id.clone(), order.id.clone()];
    let found: Vec<Id> = shop.products_with_ids(&asked).await.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(found, vec![products[4].id.clone(), products[0].id.clone()]);
    let found = shop.orders_with_ids(&asked).await.unwrap();
    assert_eq!(found, vec![order]);
}

/// Creating, restocking and deleting a product each write one entry for the
/// live feed in the same step, in the product's partition; a refused change
/// writes none, and a bulk load (the bench's catalogue) announces nothing.
async fn product_changes_are_announced_on_their_partitions_order_status_stream(backend: Backend) {
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Kettle", "12", "4").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    shop.restock(&product.id, Restock::new(6).unwrap()).await.unwrap();
    assert!(shop.restock(&product.id, Restock::new(u64::from(domain::quantity::MAX_STOCK)).unwrap()).await.is_err());
    shop.delete_product(&product.id).await.unwrap();
    assert!(shop.delete_product(&product.id).await.is_err());
    let changes = product_changes(&mut conn, &k).await;
    let seen: Vec<(&str, ProductEvent, Option<u32>)> =
        changes.iter().map(|c| (c.product_id.as_str(), c.event, c.stock)).collect();
    assert_eq!(
        seen,
        [
            (product.id.as_str(), ProductEvent::Created, Some(4)),
            (product.id.as_str(), ProductEvent::Restocked, Some(10)),
            (product.id.as_str(), ProductEvent::Deleted, None),
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].at <= w[1].at) && changes[0].at > 0);
    assert_eq!(len(&mut conn, &k, Stream::OrderStatus).await, 0, "no order changed");

    let bulk = (0..20).map(|n| NewProduct::parse(&format!("Bulk {n}"), "1", "1").unwrap()).collect();
    store::bulk::create_products(&conn, shop.layout(), bulk).await.unwrap();
    let mut announced = 0;
    for keys in shop.layout().all() {
        announced += product_changes(&mut conn, keys).await.len();
    }
    assert_eq!(announced, 3, "a bulk load announces nothing");
}

/// The field names of the hash at `key`, sorted.
async fn field_names(conn: &mut Redis, key: &str) -> Vec<String> {
    let fields: std::collections::HashMap<String, String> = conn.hgetall(key).await.unwrap();
    let mut names: Vec<String> = fields.into_keys().collect();
    names.sort();
    names
}

/// The Lua scripts cannot import `store::records`' names: what they write
/// must be records of its shape, and the bulk loader (the bench's seed)
/// must write the same fields as the scripts, timeline included.
async fn the_scripts_and_the_bulk_loader_write_records_of_one_shape(backend: Backend) {
    use store::records;
    let redis = TestRedis::start(backend);
    let (shop, mut conn) = shop_on(&redis).await;
    let product = shop.create_product(NewProduct::parse("Crate", "4", "1").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    let mut expected: Vec<&str> = records::product::ALL.to_vec();
    expected.sort();
    assert_eq!(field_names(&mut conn, &k.product(&product.id)).await, expected);

    // Through the scripts: one order left pending, one fulfilled, one refunded for want of stock.
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(shop.place_order(&product.id, qty(1)).await.unwrap().id);
    }
    for id in &live[1..] {
        assert_eq!(run(&mut conn, scripts::complete_order(&k, id, now_ms(), None)).await, Change::Applied);
        let _: Fulfilment = run(&mut conn, scripts::fulfil_order(&k, id, &product.id, now_ms(), 1000, None)).await;
    }
    assert_eq!(run(&mut conn, scripts::refund_order(&k, &live[2], now_ms(), 1000, None)).await, Change::Applied);
    let statuses = [OrderStatus::Pending, OrderStatus::Fulfilled, OrderStatus::Refunded];
    for (id, status) in live.iter().zip(statuses) {
        assert_eq!(shop.order(id).await.unwrap().status, status);
    }

    // In bulk, the same three statuses.
    let chunks = store::bulk::write_orders(
        &conn,
        shop.layout(),
        std::slice::from_ref(&product.id),
        3,
        |n| [OrderStatus::Pending, OrderStatus::Fulfilled, OrderStatus::Refunded][n],
        |_| {},
    )
    .await
    .unwrap();
    let bulk: Vec<Id> = chunks.into_iter().flat_map(|chunk| chunk.orders).map(|(id, _, _)| id).collect();

    let steps: Vec<String> = domain::order::STEPS.iter().map(|step| records::order::step(step)).collect();
    for ((live, bulk), status) in live.iter().zip(&bulk).zip(statuses) {
        let names = field_names(&mut conn, &k.order(live)).await;
        for name in &names {
            let known = records::order::REQUIRED.contains(&name.as_str())
                || records::order::OPTIONAL.contains(&name.as_str())
                || steps.contains(name);
            assert!(known, "{status}: the scripts wrote {name}, which records does not know");
        }
        for name in records::order::REQUIRED {
            assert!(names.iter().any(|n| n == name), "{status}: no {name}");
        }
        assert_eq!(field_names(&mut conn, &k.order(bulk)).await, names, "{status}: bulk and scripts differ");
        assert_eq!(shop.order(bulk).await.unwrap().timeline.len(), records::usual_steps(status).len());
    }
}

/// Every entry a script adds to a live stream is pushed on the shard channel
/// named like the stream as it is added, naming the entry before it: what a
/// server following the live feed gets instead of reading the streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_live_entry_is_pushed_with_the_one_before_it() {
    use std::time::Duration;
    use store::streams::{pushed, EntryId, Pushed};
    use store::subscription::{Heard, Subscription};

    let redis = TestRedis::start(Backend::Single);
    let (shop, mut conn) = shop_on(&redis).await;
    let channels: Vec<String> =
        shop.layout().all().flat_map(|keys| Stream::LIVE.map(|stream| keys.stream(stream))).collect();
    let mut subscription = Subscription::open(&redis.env().1, &channels).await.unwrap();

    let product = shop.create_product(NewProduct::parse("Lamp", "8", "3").unwrap()).await.unwrap();
    let k = keys_of(&shop, &product.id);
    let order = shop.place_order(&product.id, qty(2)).await.unwrap();
    let _ = run(&mut conn, scripts::complete_order(&k, &order.id, now_ms(), None)).await;
    let _ = run(&mut conn, scripts::fulfil_order(&k, &order.id, &product.id, now_ms(), 1000, None)).await;
    shop.restock(&product.id, Restock::new(5).unwrap()).await.unwrap();
    shop.delete_product(&product.id).await.unwrap();

    // Each stream's entries, as a read brings them.
    let mut written = std::collections::HashMap::new();
    for stream in Stream::LIVE {
        let entries: StreamRangeReply = conn.xrange_all(k.stream(stream)).await.unwrap();
        written.insert(k.stream(stream), entries.ids);
    }
    let total: usize = written.values().map(Vec::len).sum();
    assert_eq!(total, 6, "created, placed, completed, fulfilled, restocked, deleted");
    let mut heard: std::collections::HashMap<String, Vec<Pushed>> = Default::default();
    for _ in 0..total {
        let next = subscription.next_within(Duration::from_secs(5)).await.unwrap();
        let Heard::Message { channel, payload } = next else { panic!("a message, not {next:?}") };
        heard.entry(channel).or_default().push(pushed(&payload).expect("a push"));
    }
    for (stream, entries) in &written {
        let pushes = heard.remove(stream).unwrap_or_default();
        assert_eq!(pushes.len(), entries.len(), "{stream}: one push per entry");
        let mut before = EntryId::START;
        for (push, entry) in pushes.iter().zip(entries) {
            assert_eq!(push.before, before, "{stream}: names the entry before it");
            assert_eq!((&push.entry.id, &push.entry.map), (&entry.id, &entry.map), "{stream}: the entry as read");
            before = EntryId::parse(&entry.id).unwrap();
        }
    }
    assert!(heard.is_empty(), "nothing pushed on other channels: {heard:?}");
    // Quiet: it pings, and hears the pong before the next quiet spell ends.
    let quiet = Duration::from_millis(100);
    for _ in 0..3 {
        assert_eq!(subscription.next_within(quiet).await.unwrap(), Heard::Quiet);
    }
}
