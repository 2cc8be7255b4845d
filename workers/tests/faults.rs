//! Faults, with the real workers binary as separate processes: a worker
//! SIGKILLed mid-flow, Redis restarted mid-flow, a graceful stop, and every
//! event delivered again. After each, the invariants: every order ends in
//! exactly one terminal state; for every product, initial stock − fulfilled
//! quantity = final stock, never below zero; the `order-status` feed (every
//! partition's) holds exactly one event per transition.
//!
//! The worker faults run on one redis-server and on a cluster; the tests that
//! restart Redis, or read its command statistics, on one redis-server.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::events::refund_reason::RefundCause;
use domain::{NewProduct, Order, OrderStatus, Product, Quantity};
use redis::streams::{StreamPendingCountReply, StreamRangeReply};
use redis::AsyncCommands;
use store::{Layout, Redis, Shop, Stream};
use testkit::{on_every_backend, Backend, TestRedis};

mod common;
use common::{config_for, spawn_workers, spawn_workers_with, status_events};

on_every_backend!(
    a_worker_killed_mid_flow_loses_nothing_and_redelivery_changes_nothing,
    sigterm_finishes_the_work_in_flight_and_exits_cleanly,
    workers_that_split_the_partitions_between_them_finish_every_order,
);

/// A number that differs from run to run, within `range`; printed so a
/// failing run can be told apart.
fn some_number(range: std::ops::Range<usize>) -> usize {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as usize;
    range.start + nanos % (range.end - range.start)
}

struct Shop20 {
    shop: Shop,
    conn: Redis,
    layout: Layout,
    products: Vec<Product>,
}

impl Shop20 {
    /// 20 products with `stock` units each, spread over the partitions.
    async fn open(redis: &TestRedis, stock: u32) -> Shop20 {
        let shop = Shop::new(&config_for(redis)).unwrap();
        let mut products = Vec::new();
        for i in 0..20 {
            let new = NewProduct::parse(&format!("Product {i}"), &format!("{}.{:02}", 1 + i, i), &stock.to_string());
            products.push(shop.create_product(new.unwrap()).await.unwrap());
        }
        let conn = shop.connection();
        let layout = shop.layout().clone();
        Shop20 { shop, conn, layout, products }
    }

    /// Places `count` orders from 16 concurrent clients, 1 to 3 units each,
    /// retrying while Redis is unreachable. Returns the accepted orders.
    async fn place(&self, count: usize) -> Vec<Order> {
        self.place_counting(count, Arc::default()).await
    }

    /// [`Shop20::place`], adding 1 to `placed` for every accepted order.
    async fn place_counting(&self, count: usize, placed: Arc<AtomicUsize>) -> Vec<Order> {
        let mut clients = tokio::task::JoinSet::new();
        for client in 0..16 {
            let (shop, products, placed) = (self.shop.clone(), self.products.clone(), placed.clone());
            clients.spawn(async move {
                let mut accepted = Vec::new();
                for i in (client..count).step_by(16) {
                    let product = &products[i % products.len()];
                    let quantity = Quantity::new(1 + (i % 3) as u32).unwrap();
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        match shop.place_order(&product.id, quantity).await {
                            Ok(order) => break accepted.push(order),
                            Err(store::StoreError::Redis(_)) if Instant::now() < deadline => {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            Err(error) => panic!("placing an order failed: {error}"),
                        }
                    }
                    placed.fetch_add(1, Ordering::Relaxed);
                }
                accepted
            });
        }
        clients.join_all().await.into_iter().flatten().collect()
    }

    /// Waits until every order is terminal and every group of every partition is idle.
    async fn wait_until_settled(&mut self, within: Duration) -> Vec<Order> {
        let deadline = Instant::now() + within;
        loop {
            let listed = self.shop.newest_orders(usize::MAX).await;
            if let Ok(orders) = &listed {
                if orders.iter().all(|o| o.status.is_terminal()) && groups_idle(&mut self.conn, &self.layout).await {
                    return listed.unwrap();
                }
            }
            let unfinished = listed.map(|orders| orders.iter().filter(|o| !o.status.is_terminal()).count());
            assert!(
                Instant::now() < deadline,
                "waited {within:?} for every order to finish and every consumer group to go idle: \
                 unfinished orders {unfinished:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts the three invariants; returns (fulfilled, refunded) counts.
    async fn check_invariants(&mut self, orders: &[Order]) -> (usize, usize) {
        let mut sold: HashMap<&str, u32> = HashMap::new();
        for order in orders {
            assert!(order.status.is_terminal(), "{order:?}");
            if order.status == OrderStatus::Fulfilled {
                *sold.entry(order.product_id.as_str()).or_default() += order.quantity.get();
            }
        }
        let now: HashMap<String, u32> =
            self.shop.products().await.unwrap().into_iter().map(|p| (p.id.to_string(), p.quantity)).collect();
        for product in &self.products {
            let sold = sold.get(product.id.as_str()).copied().unwrap_or(0);
            assert!(sold <= product.quantity, "oversold {}", product.name);
            assert_eq!(now[product.id.as_str()], product.quantity - sold, "stock arithmetic of {}", product.name);
        }

        let events = status_events(&mut self.conn, &self.layout).await;
        assert_eq!(events.len(), orders.len(), "one history per order");
        use OrderStatus::*;
        for order in orders {
            let expected = match order.status {
                Fulfilled => vec![Pending, Completed, Fulfilled],
                Refunded
                    if order.refund_reason.as_deref().and_then(RefundCause::of)
                        == Some(RefundCause::ProcessingFailed) =>
                {
                    vec![Pending, Refunded]
                }
                _ => vec![Pending, Completed, Refunded],
            };
            assert_eq!(events[order.id.as_str()], expected, "status events of {}", order.id);
        }
        let fulfilled = orders.iter().filter(|o| o.status == Fulfilled).count();
        (fulfilled, orders.len() - fulfilled)
    }

    /// Delivers every entry of every partition's work streams again and
    /// checks that nothing changes.
    async fn redeliver_everything(&mut self) {
        let orders_before = self.shop.newest_orders(usize::MAX).await.unwrap();
        let products_before = self.shop.products().await.unwrap();
        let feed_before = self.feed_len().await;
        let mut copied = 0;
        for keys in self.layout.all() {
            for stream in Stream::WORK {
                let name = keys.stream(stream);
                let entries: StreamRangeReply = self.conn.xrange_all(&name).await.unwrap();
                for entry in entries.ids {
                    let fields: Vec<(String, String)> =
                        entry.map.iter().map(|(k, v)| (k.clone(), redis::from_redis_value_ref(v).unwrap())).collect();
                    let _: String = self.conn.xadd(&name, "*", &fields).await.unwrap();
                    copied += 1;
                }
            }
        }
        assert!(copied > 0);
        let after = self.wait_until_settled(Duration::from_secs(30)).await;
        assert_eq!(after, orders_before, "redelivery changed an order");
        assert_eq!(self.shop.products().await.unwrap(), products_before, "redelivery changed stock");
        assert_eq!(self.feed_len().await, feed_before, "no new events");
    }

    /// Entries of the `order-status` feed, summed over every partition.
    async fn feed_len(&mut self) -> u64 {
        let mut total = 0;
        for keys in self.layout.all() {
            total += self.conn.xlen::<_, u64>(keys.stream(Stream::OrderStatus)).await.unwrap();
        }
        total
    }
}

/// Every group of every partition has read its whole stream and
/// acknowledged everything; `false` while Redis does not answer.
async fn groups_idle(conn: &mut Redis, layout: &Layout) -> bool {
    for keys in layout.all() {
        for stream in Stream::WORK {
            match store::streams::groups(conn, &keys.stream(stream)).await {
                Ok(groups) if groups.iter().all(|group| group.is_idle()) => {}
                _ => return false,
            }
        }
    }
    true
}

/// Entries of `stream` its group has not read yet (XINFO GROUPS `lag`), in
/// every partition; a partition whose group does not exist yet counts as one.
async fn unread_entries(conn: &mut Redis, layout: &Layout, stream: Stream) -> u64 {
    let mut unread = 0;
    for keys in layout.all() {
        let groups = store::streams::groups(conn, &keys.stream(stream)).await.unwrap_or_default();
        unread += groups.first().map_or(1, |group| group.lag.unwrap_or(1));
    }
    unread
}

/// The entries `consumer` has been delivered and not acknowledged, in every
/// group of every partition: (stream key, entry id). Asked of every stream
/// at once: a scan one stream after another (48 round trips on a cluster)
/// could miss a worker that holds entries for moments at a time.
async fn held_by(conn: &mut Redis, layout: &Layout, consumer: &str) -> Vec<(String, String)> {
    let asks =
        layout.all().flat_map(|keys| Stream::WORK.map(|stream| (keys.stream(stream), stream))).map(|(name, stream)| {
            let mut conn = conn.clone();
            async move {
                let pending: redis::RedisResult<StreamPendingCountReply> = redis::cmd("XPENDING")
                    .arg(&name)
                    .arg(stream.group().unwrap())
                    .arg("-")
                    .arg("+")
                    .arg(100_000)
                    .arg(consumer)
                    .query_async(&mut conn)
                    .await;
                match pending {
                    Ok(pending) => pending.ids.into_iter().map(|entry| (name.clone(), entry.id)).collect(),
                    // No group yet: the workers have not started on this stream.
                    Err(error) if error.code() == Some("NOGROUP") => Vec::new(),
                    Err(error) => panic!("XPENDING {name}: {error}"),
                }
            }
        });
    futures::future::join_all(asks).await.into_iter().flatten().collect()
}

async fn a_worker_killed_mid_flow_loses_nothing_and_redelivery_changes_nothing(backend: Backend) {
    let started = Instant::now();
    let redis = TestRedis::start(backend);
    let mut shop = Shop20::open(&redis, 100).await;
    // A short payment delay: every entry is held a moment by the worker that
    // read it, so the one killed surely dies holding some.
    let settings = [("PAYMENT_DELAY_MS", "100")];
    let mut a = spawn_workers(&redis, "workers-a", &settings);
    let _b = spawn_workers(&redis, "workers-b", &settings);
    let mut conn = shop.conn.clone();
    let layout = shop.layout.clone();

    let kill_after = some_number(100..1900);
    let placed = Arc::new(AtomicUsize::new(0));
    let placing = shop.place_counting(2_000, placed.clone());
    let killing = async {
        // Once `kill_after` orders are placed, kill it as soon as it holds entries.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let placed = placed.load(Ordering::Relaxed);
            let holds = if placed >= kill_after { held_by(&mut conn, &layout, "workers-a").await.len() } else { 0 };
            if holds > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {kill_after} orders to be placed and workers-a to hold entries: \
                 {placed} placed, it holds {holds}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        a.kill();
        // What it died holding stays pending until a survivor reclaims it.
        let held = held_by(&mut conn, &layout, "workers-a").await.len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        (spawn_workers(&redis, "workers-a", &settings), held)
    };
    let (accepted, (_a_again, held)) = tokio::join!(placing, killing);
    assert_eq!(accepted.len(), 2_000);
    assert!(held > 0, "workers-a was killed mid-flow, holding entries (killed after {kill_after} orders)");

    let orders = shop.wait_until_settled(Duration::from_secs(40)).await;
    assert_eq!(orders.len(), 2_000);
    let (fulfilled, refunded) = shop.check_invariants(&orders).await;
    assert!(fulfilled > 0 && refunded > 0, "stock was contested: {fulfilled} fulfilled, {refunded} refunded");
    shop.redeliver_everything().await;
    println!(
        "{backend:?}: worker SIGKILLed after {kill_after} of 2000 orders were placed, holding {held} entries: \
         {fulfilled} fulfilled, {refunded} refunded, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_flow_loses_no_accepted_order() {
    let started = Instant::now();
    let mut redis = TestRedis::start(Backend::Single);
    let mut shop = Shop20::open(&redis, 100).await;
    let mut a = spawn_workers(&redis, "workers-a", &[]);
    let mut b = spawn_workers(&redis, "workers-b", &[]);

    let restart_after = some_number(100..1900);
    let placed = Arc::new(AtomicUsize::new(0));
    let redis_url = redis.single().url();
    let placing = shop.place_counting(2_000, placed.clone());
    let restarting = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while placed.load(Ordering::Relaxed) < restart_after {
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {restart_after} orders to be placed before the restart: {} placed",
                placed.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        redis.single().stop();
        tokio::time::sleep(Duration::from_millis(700)).await;
        redis.single().start_again();
    };
    let (accepted, ()) = tokio::join!(placing, restarting);
    assert_eq!(accepted.len(), 2_000);

    let orders = shop.wait_until_settled(Duration::from_secs(40)).await;
    // A request whose reply was lost in the restart may have been retried: at
    // least every accepted order exists, and every existing one is accounted for.
    let existing: HashSet<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    assert!(accepted.iter().all(|o| existing.contains(o.id.as_str())), "an accepted order was lost");
    let (fulfilled, refunded) = shop.check_invariants(&orders).await;
    assert!(a.is_running() && b.is_running(), "workers survived the outage");
    println!(
        "redis ({redis_url}) restarted after {restart_after} of 2000 orders were placed: \
         {} orders, {fulfilled} fulfilled, {refunded} refunded, in {:.1} s",
        orders.len(),
        started.elapsed().as_secs_f64()
    );
}

async fn sigterm_finishes_the_work_in_flight_and_exits_cleanly(backend: Backend) {
    let redis = TestRedis::start(backend);
    let mut shop = Shop20::open(&redis, 1_000).await;
    // A payment delay holds every batch the worker reads until well after the
    // signal arrives: the entries are in flight, not yet acknowledged.
    let mut a = spawn_workers(&redis, "workers-a", &[("PAYMENT_DELAY_MS", "1500")]);
    let accepted = shop.place(300).await;
    let mut conn = shop.conn.clone();
    let layout = shop.layout.clone();

    // Wait until it has read every order's entry: all of them are held.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let unread = unread_entries(&mut conn, &layout, Stream::OrderPlaced).await;
        if unread == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "waited 10 s for workers-a to read every order: {unread} unread");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = held_by(&mut conn, &layout, "workers-a").await;
    let held_orders = order_ids_of(&mut conn, &held).await;
    assert!(!held_orders.is_empty(), "workers-a holds entries when SIGTERM arrives");

    let stopping = Instant::now();
    let code = a.terminate(Duration::from_secs(5));
    let took = stopping.elapsed();
    assert_eq!(code, Some(0), "exit 0 within 5 s of SIGTERM");

    // Nothing it had taken is left pending: the batches in flight were finished...
    for keys in layout.all() {
        for stream in Stream::WORK {
            let name = keys.stream(stream);
            let pending: StreamPendingSummary =
                redis::cmd("XPENDING").arg(&name).arg(stream.group().unwrap()).query_async(&mut conn).await.unwrap();
            assert_eq!(pending.0, 0, "{name} has entries pending after a graceful stop");
        }
    }
    // ...and their orders completed after the signal, not abandoned.
    for id in &held_orders {
        let status = shop.shop.order(id).await.unwrap().status;
        assert_ne!(status, OrderStatus::Pending, "order {id}, in flight at SIGTERM, was not completed");
    }

    let _b = spawn_workers(&redis, "workers-b", &[]);
    let orders = shop.wait_until_settled(Duration::from_secs(30)).await;
    assert_eq!(orders.len(), accepted.len());
    shop.check_invariants(&orders).await;
    println!(
        "{backend:?}: graceful stop with {} entries in flight took {:.2} s",
        held_orders.len(),
        took.as_secs_f64()
    );
}

async fn workers_that_split_the_partitions_between_them_finish_every_order(backend: Backend) {
    let redis = TestRedis::start(backend);
    let mut shop = Shop20::open(&redis, 100).await;
    let count = shop.layout.partitions().count();
    let half = count / 2;
    let (low, high) = (format!("0-{}", half - 1), format!("{half}-{}", count - 1));
    let _a = spawn_workers_with(&redis, "workers-low", &["--partitions", &low], &[]);
    let _b = spawn_workers_with(&redis, "workers-high", &["--partitions", &high], &[]);
    let accepted = shop.place(1_000).await;
    let orders = shop.wait_until_settled(Duration::from_secs(30)).await;
    assert_eq!(orders.len(), accepted.len());
    let (fulfilled, refunded) = shop.check_invariants(&orders).await;
    assert!(fulfilled > 0 && refunded > 0, "stock was contested: {fulfilled} fulfilled, {refunded} refunded");

    // Each process read its own partitions' streams, and only those.
    let mut conn = shop.conn.clone();
    for keys in shop.layout.all() {
        let owner = if keys.partition().index() < half { "workers-low" } else { "workers-high" };
        for stream in Stream::WORK {
            let name = keys.stream(stream);
            let consumers: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&name)
                .arg(stream.group().unwrap())
                .query_async(&mut conn)
                .await
                .unwrap();
            let names: Vec<String> =
                consumers.iter().map(|c| redis::from_redis_value_ref::<String>(&c["name"]).unwrap()).collect();
            assert!(names.iter().all(|n| n == owner), "{name} was read by {names:?}, not only {owner}");
            let len: u64 = conn.xlen(&name).await.unwrap();
            if stream == Stream::OrderPlaced && len > 0 {
                assert_eq!(names, [owner], "{name} holds orders, so {owner} read it");
            }
        }
    }
    println!(
        "{backend:?}: two workers processes, partitions {low} and {high}: {fulfilled} fulfilled, {refunded} refunded"
    );
}

type StreamPendingSummary = (u64, Option<String>, Option<String>, redis::Value);

/// The order ids of stream entries (stream key, entry id).
async fn order_ids_of(conn: &mut Redis, entries: &[(String, String)]) -> Vec<domain::Id> {
    let mut ids = Vec::new();
    for (name, id) in entries {
        let found: StreamRangeReply = conn.xrange(name, id, id).await.unwrap();
        let entry = found.ids.first().unwrap_or_else(|| panic!("{name} {id} is gone"));
        ids.push(store::streams::order_id_of(entry).unwrap());
    }
    ids
}

/// Not a benchmark of speed: counts the Redis commands the whole flow costs
/// per order (placing included), from INFO commandstats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_commands_per_order() {
    let redis = TestRedis::start(Backend::Single);
    let shop = Shop20::open(&redis, 100).await;
    // The production defaults for reclaiming and blocking reads, so that idle
    // polling (a few commands per loop per second, 48 loops) does not count
    // for more here than in a deployment.
    let _workers = spawn_workers(&redis, "workers-a", &[("CLAIM_IDLE_MS", "30000"), ("READ_BLOCK_MS", "1000")]);
    let mut conn = shop.conn.clone();
    let layout = shop.layout.clone();
    // Let the workers create their groups and go idle before counting.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !groups_exist(&mut conn, &layout).await {
        assert!(Instant::now() < deadline, "waited 10 s for the workers to create every partition's groups");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
    let orders = 1_000;
    shop.place(orders).await;

    // Every order ends with one terminal status event (fulfilled or
    // refunded): wait for all of them, reading each partition's new events.
    let mut last_seen: Vec<String> = layout.all().map(|_| "0-0".to_string()).collect();
    let mut finished: HashSet<domain::Id> = HashSet::new();
    let mut terminal_events = 0;
    let mut refunded = 0;
    let mut xranges = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while finished.len() < orders {
        for (keys, last) in layout.all().zip(&mut last_seen) {
            let new: StreamRangeReply =
                conn.xrange(keys.stream(Stream::OrderStatus), format!("({last}"), "+").await.unwrap();
            xranges += 1;
            for entry in new.ids.iter().filter(|entry| !store::streams::is_product_change(entry)) {
                let change = store::streams::status_change(Stream::OrderStatus, entry).unwrap();
                if change.status.is_terminal() {
                    terminal_events += 1;
                    refunded += u64::from(change.status == OrderStatus::Refunded);
                    finished.insert(change.order_id);
                }
            }
            if let Some(entry) = new.ids.last() {
                *last = entry.id.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "waited 30 s for the terminal status events of {orders} orders: {} seen",
            finished.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(terminal_events, orders, "one terminal event per order");

    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    let mut by_command: Vec<(String, u64)> = stats
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect();
    by_command.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    // What clients send, one round trip each, and what the Lua scripts call
    // inside their one atomic step. Anything else is unexpected: classify it.
    const SENT: [&str; 10] = [
        "evalsha",
        "hgetall",
        "xreadgroup",
        "xautoclaim",
        "xpending",
        "script|load",
        "xlen",
        "xinfo|groups",
        "xtrim",
        "info",
    ];
    // (`xrevrange` and `spublish`: each live entry's push, with the entry before it.)
    const IN_SCRIPTS: [&str; 11] =
        ["hget", "hmget", "hset", "zadd", "zrem", "xadd", "xack", "hincrby", "xpending", "xrevrange", "spublish"];
    // This test's own: its reads of the feed (XRANGE) and the INFO.
    let own: HashMap<&str, u64> = HashMap::from([("xrange", xranges), ("info", 1)]);
    let mut sent = 0;
    let mut in_scripts = 0;
    for (name, calls) in &by_command {
        let calls = calls.checked_sub(own.get(name.as_str()).copied().unwrap_or(0)).unwrap();
        if SENT.contains(&name.as_str()) {
            sent += calls;
        } else if IN_SCRIPTS.contains(&name.as_str()) {
            in_scripts += calls;
        } else {
            assert!(name == "config|resetstat" || (name == "xrange" && calls == 0), "unclassified command {name}");
        }
    }
    let per_order = sent as f64 / orders as f64;
    let calls = |name: &str| by_command.iter().find(|(n, _)| n == name).map_or(0, |(_, calls)| *calls);
    // The work itself: placing runs its script (the price is remembered, so
    // at most one HGETALL per product); payment and the warehouse run one
    // script each, a refund one more; each of these scripts takes every
    // order that is ready at once, so there are at most that many calls.
    let work = calls("hgetall") + calls("evalsha");
    // The consumer loops' reads: one per batch, and batches form as entries arrive.
    let reads = calls("xreadgroup") + calls("xautoclaim") + calls("xpending");
    println!(
        "redis commands per order, whole flow ({orders} orders, placing included, {} partitions): \
         {per_order:.2} sent by clients",
        layout.partitions().count()
    );
    println!(
        "  of which {:.2} work (EVALSHA, and HGETALL of unseen products; {refunded} refunded), {:.2} consumer reads, {:.2} other",
        work as f64 / orders as f64,
        reads as f64 / orders as f64,
        (sent - work - reads) as f64 / orders as f64
    );
    println!("  plus {:.2} executed inside the Lua scripts' atomic steps", in_scripts as f64 / orders as f64);
    println!("  by command: {by_command:?} (including {} of the test's own)", xranges + 1);
    assert!(calls("evalsha") <= 3 * orders as u64 + refunded, "at most 3 EVALSHA per order, 1 more per refund");
    assert!(calls("hgetall") <= 20, "at most one product read per product: {}", calls("hgetall"));
    // Measured 3.8 to 4.8: work 3.0, reads 0.7 to 1.8 by how entries batch
    // (16 partitions split the traffic, so most batches hold one entry; with
    // one stream the same flow took 4.2, reads 0.17). At worst each entry (2
    // per order) is read alone: beyond that, or beyond the work, something
    // sends more than it should.
    assert!(reads <= 2 * orders as u64 + 50, "{reads} consumer reads for {orders} orders");
    assert!(per_order <= 5.2, "{per_order:.2} commands per order (work {work}, reads {reads})");
}

/// Whether the workers have created the group of every work stream of every partition.
async fn groups_exist(conn: &mut Redis, layout: &Layout) -> bool {
    for keys in layout.all() {
        for stream in Stream::WORK {
            if !store::streams::groups(conn, &keys.stream(stream)).await.is_ok_and(|g| !g.is_empty()) {
                return false;
            }
        }
    }
    true
}
