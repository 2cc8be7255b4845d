//! The REST API and the live feed, over real HTTP against a private
//! redis-server, with the real consumer loops running.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

use common::{start_on, Feed};
use testkit::{on_every_backend, Backend};

on_every_backend!(
    products_and_orders_keep_the_original_contract,
    bad_requests_get_clear_4xx_errors,
    the_live_feed_relays_every_change_and_replays_after_last_event_id,
    the_live_feed_relays_product_changes_as_product_events,
    a_long_replay_keeps_each_orders_changes_in_order,
    concurrent_retries_with_one_idempotency_key_create_one_order,
    metrics_report_orders_streams_groups_and_latencies,
);

async fn products_and_orders_keep_the_original_contract(backend: Backend) {
    let app = start_on(backend, |_| {}).await;

    let (status, product) = app.post("/product", json!({"name": "Chair", "price": 19.99, "quantity": 3})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(product["name"], "Chair");
    assert_eq!(product["price"], json!(19.99));
    assert_eq!(product["quantity"], 3);
    let product_id = product["id"].as_str().unwrap().to_string();
    assert_eq!(product["pk"], product_id, "the original's name for the id");
    assert_eq!(app.get(&format!("/product/{product_id}")).await, (StatusCode::OK, product.clone()));
    // The original listed products by `id` only.
    assert_eq!(app.get("/products").await, (StatusCode::OK, json!([without_pk(&product)])));

    let (status, order) = app.post("/orders", json!({"product_id": product_id, "quantity": 2})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(order["pk"], order["id"]);
    assert_eq!(order["status"], "pending");
    assert_eq!(order["price"], json!(19.99));
    assert_eq!(order["fee"], json!(8.0));
    assert_eq!(order["total"], json!(47.98));
    let order_id = order["id"].as_str().unwrap();
    let fulfilled = app.wait_for_status(order_id, "fulfilled").await;
    assert_eq!(fulfilled["quantity"], 2);
    assert_eq!(app.get(&format!("/product/{product_id}")).await.1["quantity"], 1);
    let (status, orders) = app.get("/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orders.as_array().unwrap().len(), 1);
    // ULIDs are case-insensitive: an id in lower case names the same order
    // and product (it answered 404 before).
    let (status, lower) = app.get(&format!("/orders/{}", order_id.to_ascii_lowercase())).await;
    assert_eq!((status, &lower["id"]), (StatusCode::OK, &fulfilled["id"]));
    let (status, lower) = app.get(&format!("/product/{}", product_id.to_ascii_lowercase())).await;
    assert_eq!((status, &lower["id"]), (StatusCode::OK, &json!(product_id)));

    // An order for the product named in lower case is the product's, its id upper case.
    let lower_id = product_id.to_ascii_lowercase();
    let (status, refunded) = app.post("/orders", json!({"product_id": lower_id, "quantity": 2})).await;
    assert_eq!((status, &refunded["product_id"]), (StatusCode::CREATED, &json!(product_id)));
    let refunded = app.wait_for_status(refunded["id"].as_str().unwrap(), "refunded").await;
    assert_eq!(refunded["refund_reason"], "insufficient stock");

    let response = app.http.delete(format!("{}/product/{product_id}", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, error) = app.get(&format!("/product/{product_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error["error"].as_str().unwrap().contains("not found"));
}

async fn bad_requests_get_clear_4xx_errors(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Lamp", "price": "7.50", "quantity": 1})).await;
    let product_id = product["id"].as_str().unwrap();

    let cases = [
        ("/orders", json!({"product_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "quantity": 1}), StatusCode::NOT_FOUND),
        ("/orders", json!({"product_id": "not-an-id", "quantity": 1}), StatusCode::NOT_FOUND),
        ("/orders", json!({"product_id": product_id, "quantity": 0}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/orders", json!({"product_id": product_id, "quantity": 10_001}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/orders", json!({"product_id": product_id, "quantity": 1.5}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/orders", json!({"product_id": product_id}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/product", json!({"name": " ", "price": 1, "quantity": 1}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/product", json!({"name": "X", "price": 1.234, "quantity": 1}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/product", json!({"name": "X", "price": -1, "quantity": 1}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/product", json!({"name": "X", "price": 2_000_000, "quantity": 1}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/product", json!({"name": "X", "price": 1, "quantity": -3}), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (path, body, expected) in cases {
        let (status, error) = app.post(path, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}");
        assert!(error["error"].is_string(), "{path} {body}: {error}");
    }
    let url = |path: &str| format!("{}{path}", app.base);
    let malformed = app
        .http
        .post(url("/orders"))
        .header("content-type", "application/json")
        .body("{\"product_id\":")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let untyped = app.http.post(url("/orders")).body("{}").send().await.unwrap();
    assert_eq!(untyped.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Its own client: the server answers 413 without reading the rest and
    // closes the connection, which a pooled client might otherwise reuse.
    let huge = reqwest::Client::new()
        .post(url("/product"))
        .header("content-type", "application/json")
        .body(vec![b' '; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.get("/orders/01ARZ3NDEKTSV4RRFFQ69G5FAV").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(app.get("/readyz").await, (StatusCode::OK, json!({"ready": true})));
}

async fn read_events(response: reqwest::Response, count: usize) -> Vec<(String, Value)> {
    Feed::new(response).events(count).await
}

async fn the_live_feed_relays_every_change_and_replays_after_last_event_id(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Desk", "price": 100, "quantity": 5})).await;
    let live = app.http.get(format!("{}/api/events", app.base)).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let mut live = Feed::new(live).subscribed().await;
    let (_, order) = app.post("/orders", json!({"product_id": product["id"], "quantity": 2})).await;

    let events = live.events(3).await;
    let statuses: Vec<&str> = events.iter().map(|(_, e)| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["pending", "completed", "fulfilled"]);
    assert!(events.iter().all(|(_, e)| e["order_id"] == order["id"]));
    assert_eq!(events[2].1["stock"], 3);

    // A browser that saw only the first event gets the other two again.
    let resumed =
        app.http.get(format!("{}/api/events", app.base)).header("Last-Event-ID", &events[0].0).send().await.unwrap();
    let replayed = read_events(resumed, 2).await;
    assert_eq!(replayed, events[1..].to_vec());
}

/// The next `count` `product` events of `feed`: (id, data).
async fn product_events(feed: &mut Feed, count: usize) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    while events.len() < count {
        let block = feed.next_block().await;
        if !block.lines().any(|line| line == "event: product") {
            continue;
        }
        let field = |name: &str| block.lines().find_map(|line| line.strip_prefix(name)).unwrap().to_string();
        events.push((field("id: "), serde_json::from_str(&field("data: ")).unwrap()));
    }
    events
}

/// Products created, restocked and deleted (here over REST) reach every
/// browser as `product` events, and a browser that resumes gets those it
/// missed, as it gets orders' changes.
async fn the_live_feed_relays_product_changes_as_product_events(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let mut live = Feed::new(app.http.get(app.url("/api/events")).send().await.unwrap()).subscribed().await;
    let (_, product) = app.post("/product", json!({"name": "Lantern", "price": 9, "quantity": 4})).await;
    let id = product["id"].as_str().unwrap();
    let (status, _) = app.post(&format!("/product/{id}/restock"), json!({"quantity": 6})).await;
    assert_eq!(status, StatusCode::OK);
    let response = app.http.delete(app.url(&format!("/product/{id}"))).send().await.unwrap();
    assert!(response.status().is_success());

    let events = product_events(&mut live, 3).await;
    let seen: Vec<(&str, &str, &Value)> = events
        .iter()
        .map(|(_, e)| (e["product_id"].as_str().unwrap(), e["event"].as_str().unwrap(), &e["stock"]))
        .collect();
    assert_eq!(seen, [(id, "created", &json!(4)), (id, "restocked", &json!(10)), (id, "deleted", &Value::Null)]);

    let resumed = app.http.get(app.url("/api/events")).header("Last-Event-ID", &events[0].0).send().await.unwrap();
    let mut resumed = Feed::new(resumed);
    assert_eq!(product_events(&mut resumed, 2).await, events[1..].to_vec());
}

/// A replay longer than one page of each of a partition's three live streams
/// (`order-placed`, `order-completed`, `order-status`) still gives every
/// change once and each order's changes in order.
async fn a_long_replay_keeps_each_orders_changes_in_order(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Nail", "price": 0.1, "quantity": 100000})).await;
    let mut live = Feed::new(app.http.get(format!("{}/api/events", app.base)).send().await.unwrap()).subscribed().await;
    let orders = 700;
    let placing = (0..orders).map(|_| app.post("/orders", json!({"product_id": product["id"], "quantity": 1})));
    for (status, _) in futures::future::join_all(placing).await {
        assert_eq!(status, StatusCode::CREATED);
    }
    let seen = live.events(3 * orders).await;

    let resumed =
        app.http.get(format!("{}/api/events", app.base)).header("Last-Event-ID", &seen[0].0).send().await.unwrap();
    let replayed = read_events(resumed, 3 * orders - 1).await;
    let steps = |events: &[(String, Value)]| {
        let mut steps: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (_, event) in events {
            let order = event["order_id"].as_str().unwrap().to_string();
            steps.entry(order).or_default().push(event["status"].as_str().unwrap().to_string());
        }
        steps
    };
    let (live_steps, replayed_steps) = (steps(&seen), steps(&replayed));
    assert_eq!(live_steps.len(), orders);
    for (order, statuses) in &live_steps {
        assert_eq!(statuses, &["pending", "completed", "fulfilled"], "{order} live");
        let expected: &[String] = if *order == seen[0].1["order_id"] { &statuses[1..] } else { statuses };
        assert_eq!(replayed_steps[order], expected, "{order} replayed");
    }

    // A browser whose order-placed position is at the start but whose other
    // two are past the 300th order's fulfilment: more than a page of pending
    // changes to replay, less than one of the others, yet each order's
    // changes come in order (an order's pending one first).
    let slots = seen[0].0.split(':').nth(1).unwrap().split(',').count();
    let fulfilled: Vec<&(String, Value)> = seen.iter().filter(|(_, e)| e["status"] == "fulfilled").collect();
    let mut behind = server::feed::cursor::Cursor::decode(&fulfilled[299].0, slots).unwrap();
    let partition = store::Partitions::new(u16::try_from(slots / 3).unwrap())
        .unwrap()
        .of_id(&product["id"].as_str().unwrap().parse().unwrap());
    behind.0[usize::from(partition.index()) * 3] = store::streams::EntryId::START;
    let resumed =
        app.http.get(format!("{}/api/events", app.base)).header("Last-Event-ID", behind.encode()).send().await.unwrap();
    let later = seen.iter().skip_while(|(id, _)| *id != fulfilled[299].0).count() - 1;
    let replayed = read_events(resumed, orders + later).await;
    let rank = |status: &str| ["pending", "completed", "fulfilled"].iter().position(|s| *s == status).unwrap();
    for (order, statuses) in steps(&replayed) {
        let ranks: Vec<usize> = statuses.iter().map(|s| rank(s)).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]) && ranks[0] == 0, "{order}: {statuses:?}");
    }
    assert_eq!(steps(&replayed).len(), orders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_requests_get_503_and_service_resumes_after() {
    let mut app = start_on(Backend::Single, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Kettle", "price": 25, "quantity": 4})).await;

    app.redis.single().stop();
    let (status, ready) = app.get("/readyz").await;
    assert_eq!((status, ready["ready"].clone()), (StatusCode::SERVICE_UNAVAILABLE, json!(false)));
    assert_eq!(app.get("/healthz").await.0, StatusCode::OK, "alive all the same");
    let (status, error) = app.post("/orders", json!({"product_id": product["id"], "quantity": 1})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error["error"], "service unavailable", "nothing internal leaks");
    assert_eq!(app.get("/products").await.0, StatusCode::SERVICE_UNAVAILABLE);

    app.redis.single().start_again();
    let mut ready = false;
    for _ in 0..100 {
        if app.get("/readyz").await.0 == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "ready again once redis is back");
    let (status, order) = app.post("/orders", json!({"product_id": product["id"], "quantity": 1})).await;
    assert_eq!(status, StatusCode::CREATED);
    app.wait_for_status(order["id"].as_str().unwrap(), "fulfilled").await;
}

async fn concurrent_retries_with_one_idempotency_key_create_one_order(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Globe", "price": 12, "quantity": 50})).await;
    let body = json!({"product_id": product["id"], "quantity": 2});
    let answers = app.post_concurrently("/orders", "order-7f3a", &body, 20).await;
    assert!(answers.iter().all(|(status, _, _)| *status == StatusCode::CREATED));
    let first_id = &answers[0].2["id"];
    assert!(answers.iter().all(|(_, _, order)| &order["id"] == first_id), "one order for one key");
    assert_eq!(answers.iter().filter(|(_, replayed, _)| replayed == "false").count(), 1, "created once");
    assert_eq!(app.get("/orders").await.1.as_array().unwrap().len(), 1);

    // The same key for a different order is refused; a bad key too.
    let (status, error) = app
        .http
        .post(format!("{}/orders", app.base))
        .header("Idempotency-Key", "order-7f3a")
        .json(&json!({"product_id": product["id"], "quantity": 3}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error.json::<Value>().await.unwrap()["error"].as_str().unwrap().starts_with("Idempotency-Key"));
    let spaced = app
        .http
        .post(format!("{}/orders", app.base))
        .header("Idempotency-Key", "has spaces")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(spaced.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn metrics_report_orders_streams_groups_and_latencies(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Clock", "price": 40, "quantity": 1})).await;
    let live = app.http.get(format!("{}/api/events", app.base)).send().await.unwrap();
    let mut live = Feed::new(live).subscribed().await;
    let (_, first) = app.post("/orders", json!({"product_id": product["id"], "quantity": 1})).await;
    let (_, second) = app.post("/orders", json!({"product_id": product["id"], "quantity": 1})).await;
    app.wait_for_status(first["id"].as_str().unwrap(), "fulfilled").await;
    app.wait_for_status(second["id"].as_str().unwrap(), "refunded").await;
    live.events(6).await; // the feed reader has seen both orders finish

    let response = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for line in [
        "stockflow_redis_up 1",
        "stockflow_orders{status=\"pending\"} 0",
        "stockflow_orders{status=\"fulfilled\"} 1",
        "stockflow_orders{status=\"refunded\"} 1",
        "stockflow_stream_length{stream=\"order-placed\"} 2",
        "stockflow_dead_letters{stream=\"order-completed\"} 0",
        "stockflow_dead_letters_dropped_total{stream=\"order-completed\"} 0",
        "stockflow_group_lag{stream=\"order-completed\",group=\"warehouse\"} 0",
        "stockflow_group_pending{stream=\"order-placed\",group=\"payment\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("stockflow_http_request_duration_seconds_bucket{"), "{text}");
    assert!(text.contains("route=\"/orders\""), "{text}");
}

/// XREAD calls Redis has served since its statistics were last reset.
async fn xread_calls(conn: &store::Redis) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn.clone()).await.unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_xread:"))
        .and_then(|stats| stats.split("calls=").nth(1)?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// While no browser follows the live feed, the server reads nothing from
/// the live streams, however many orders move; a browser that comes then
/// gets every change from its arrival on, as always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_reads_nothing_while_no_browser_follows_it() {
    let app = start_on(Backend::Single, |_| {}).await;
    let conn = store::Shop::new(&app.config).unwrap().connection();
    let (_, product) = app.post("/product", json!({"name": "Lamp", "price": 3, "quantity": 100})).await;
    let order = |app: &common::Running| {
        let body = json!({"product_id": product["id"], "quantity": 1});
        let app_url = app.url("/orders");
        let http = app.http.clone();
        async move { http.post(app_url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // A browser comes and goes: the reader follows, then parks once its
    // read in progress ends.
    {
        let mut live = Feed::new(app.http.get(app.url("/api/events")).send().await.unwrap()).subscribed().await;
        let placed = order(&app).await;
        let events = live.events(3).await;
        assert!(events.iter().all(|(_, e)| e["order_id"] == placed["id"]));
    }
    tokio::time::sleep(app.config.read_block * 2 + Duration::from_millis(300)).await;

    let () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn.clone()).await.unwrap();
    for _ in 0..5 {
        let placed = order(&app).await;
        app.wait_for_status(placed["id"].as_str().unwrap(), "fulfilled").await;
    }
    tokio::time::sleep(app.config.read_block).await;
    assert_eq!(xread_calls(&conn).await, 0, "the live streams were read while nobody watched");

    // A browser again: the reader starts at the newest entries and the
    // browser gets every change of an order placed after it subscribed.
    let mut live = Feed::new(app.http.get(app.url("/api/events")).send().await.unwrap()).subscribed().await;
    let placed = order(&app).await;
    let events = live.events(3).await;
    let statuses: Vec<&str> = events.iter().map(|(_, e)| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["pending", "completed", "fulfilled"]);
    assert!(events.iter().all(|(_, e)| e["order_id"] == placed["id"]));
    assert!(xread_calls(&conn).await > 0);

    // Resuming from the first of them replays the other two, once.
    let resumed = app.http.get(app.url("/api/events")).header("Last-Event-ID", &events[0].0).send().await.unwrap();
    assert_eq!(read_events(resumed, 2).await, events[1..].to_vec());
}

/// On one Redis the live feed follows what the scripts push: orders move
/// without the feed reading the live streams, and an entry added without a
/// push (as a script of an older version would add it) is still relayed,
/// in its place, by the read that fills the gap it leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_redis_the_feed_follows_pushes_and_reads_only_to_fill_a_gap() {
    let app = start_on(Backend::Single, |_| {}).await;
    let mut conn = store::Shop::new(&app.config).unwrap().connection();
    let (_, product) = app.post("/product", json!({"name": "Lamp", "price": 3, "quantity": 100})).await;
    let mut live = Feed::new(app.http.get(app.url("/api/events")).send().await.unwrap()).subscribed().await;
    // Past the one read that catches up after subscribing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
    let started = std::time::Instant::now();
    let mut placed = Vec::new();
    for _ in 0..5 {
        placed.push(app.post("/orders", json!({"product_id": product["id"], "quantity": 1})).await.1);
    }
    let events = live.events(15).await;
    // One read a READ_BLOCK_MS at most (for entries added without a push), none per change.
    let sweeps = (started.elapsed().as_millis() / app.config.read_block.as_millis()) as u64 + 1;
    for order in &placed {
        let statuses: Vec<&str> = events
            .iter()
            .filter(|(_, e)| e["order_id"] == order["id"])
            .map(|(_, e)| e["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["pending", "completed", "fulfilled"]);
    }
    let reads = xread_calls(&conn).await;
    assert!(reads <= sweeps, "{reads} reads of the live streams for 15 pushed changes ({sweeps} periods)");

    let id: domain::Id = product["id"].as_str().unwrap().parse().unwrap();
    let stream = app.config.layout.keys_of_id(&id).stream(store::Stream::OrderStatus);
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg(&["product", "restocked", "product_id", id.as_str(), "stock", "77", "at", "1"])
        .query_async(&mut conn)
        .await
        .unwrap();
    let (status, _) = app.post(&format!("/product/{id}/restock"), json!({"quantity": 1})).await;
    assert_eq!(status, StatusCode::OK);
    let stocks: Vec<Value> = product_events(&mut live, 2).await.into_iter().map(|(_, e)| e["stock"].clone()).collect();
    assert_eq!(stocks, [json!(77), json!(96)], "the entry without a push first, then the pushed one");
    assert!(xread_calls(&conn).await > 0, "the gap was filled by reading");
}

/// A page's first connection to the live feed starts from when the page
/// was rendered (`?since=`): the server replays every change after that
/// time (less a small margin for clocks), none from well before, and no
/// `reload`: the page need not fetch its lists again once hydrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pages_first_feed_replays_what_changed_since_it_was_rendered() {
    let app = start_on(Backend::Single, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Lamp", "price": 3, "quantity": 100})).await;
    let order = || app.post("/orders", json!({"product_id": product["id"], "quantity": 1}));
    let mut live = Feed::new(app.http.get(app.url("/api/events")).send().await.unwrap()).subscribed().await;
    let before = order().await.1;
    live.events(3).await;
    // Well before the render (the margin is 250 ms), then after it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rendered_at = store::now_ms();
    let after = order().await.1;
    live.events(3).await;

    let response = app.http.get(app.url(&format!("/api/events?since={rendered_at}"))).send().await.unwrap();
    let mut first = Feed::new(response);
    let mut replayed = Vec::new();
    loop {
        let block = first.next_block().await;
        assert!(!block.contains("event: reload"), "a page's first connection is replayed to, not reloaded: {block}");
        if block.contains("event: subscribed") {
            break;
        }
        if let Some(data) = block.lines().find_map(|line| line.strip_prefix("data:")) {
            let change: Value = serde_json::from_str(data.trim()).unwrap();
            replayed.push((change["order_id"].clone(), change["status"].clone()));
        }
    }
    assert_eq!(
        replayed,
        [
            (after["id"].clone(), json!("pending")),
            (after["id"].clone(), json!("completed")),
            (after["id"].clone(), json!("fulfilled"))
        ],
        "only the order placed after the render ({}), not the one before ({})",
        after["id"],
        before["id"]
    );
    // Then live, as any connection.
    let next = order().await.1;
    let live_after: Vec<Value> = first.events(3).await.into_iter().map(|(_, e)| e["order_id"].clone()).collect();
    assert_eq!(live_after, [next["id"].clone(), next["id"].clone(), next["id"].clone()]);
}

/// The order form's server function names a bad field once (the page
/// showed "quantity: quantity must be ...").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_forms_errors_name_the_field_once() {
    let app = start_on(Backend::Single, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Lamp", "price": 3, "quantity": 3})).await;
    let form = [("product_id", product["id"].as_str().unwrap()), ("quantity", "0")];
    let response = app.http.post(app.url("/api/place_order")).form(&form).send().await.unwrap();
    let message = response.text().await.unwrap();
    assert!(message.contains("quantity: must be a whole number from 1 to 10000"), "{message}");
    assert!(!message.contains("quantity: quantity"), "{message}");
    let (status, error) = app.post("/orders", json!({"product_id": product["id"], "quantity": 0})).await;
    assert_eq!(
        (status, error),
        (StatusCode::UNPROCESSABLE_ENTITY, json!({"error": "quantity: must be a whole number from 1 to 10000"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_documents_itself() {
    let app = start_on(Backend::Single, |_| {}).await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/product", "post"),
        ("/product/{id}", "get"),
        ("/product/{id}", "delete"),
        ("/products", "get"),
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders/{id}", "get"),
        ("/product/{id}/restock", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is documented");
    }
    assert_eq!(doc["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
    for (path, method) in [("/product", "post"), ("/product/{id}", "delete"), ("/product/{id}/restock", "post")] {
        assert!(doc["paths"][path][method]["responses"]["401"].is_object(), "{method} {path} documents 401");
    }
    let list_params = doc["paths"]["/orders"]["get"]["parameters"].to_string();
    assert!(list_params.contains("\"limit\"") && list_params.contains("\"cursor\""), "{list_params}");
    let order = &doc["components"]["schemas"]["Order"]["properties"];
    for field in ["id", "product_id", "price", "fee", "total", "quantity", "status", "timeline"] {
        assert!(order[field].is_object(), "Order.{field}");
    }
    assert_eq!(order["price"]["type"], "number");
    assert!(doc["components"]["schemas"]["Step"]["properties"]["at"].is_object(), "the timeline's steps are described");
    for (path, method) in [("/product", "post"), ("/product/{id}", "delete"), ("/product/{id}/restock", "post")] {
        let throttled = &doc["paths"][path][method]["responses"]["429"];
        assert!(throttled["headers"]["Retry-After"].is_object(), "{method} {path} documents 429 with Retry-After");
    }

    // What the original's clients send and get: numbers or strings holding one, and `pk`.
    let schemas = &doc["components"]["schemas"];
    for (body, field) in [("NewProductBody", "price"), ("NewProductBody", "quantity"), ("NewOrderBody", "quantity")] {
        let forms: Vec<&Value> = schemas[body]["properties"][field]["oneOf"].as_array().unwrap().iter().collect();
        let types: Vec<&str> = forms.iter().map(|form| form["type"].as_str().unwrap()).collect();
        assert_eq!(types, [if field == "price" { "number" } else { "integer" }, "string"], "{body}.{field}");
        assert!(forms[1]["pattern"].is_string(), "{body}.{field}: which strings");
    }
    for (path, method, status, schema) in [
        ("/product", "post", "201", "ProductWithPk"),
        ("/product/{id}", "get", "200", "ProductWithPk"),
        ("/orders", "post", "201", "OrderWithPk"),
    ] {
        let answer = &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
        assert_eq!(answer["$ref"], format!("#/components/schemas/{schema}"), "{method} {path}");
        let parts = schemas[schema]["allOf"].to_string();
        assert!(parts.contains("\"pk\"") && parts.contains("\"required\":[\"pk\"]"), "{schema}: {parts}");
    }

    // Swagger UI, served by this server: the page and every file it loads.
    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert_eq!(docs.url().path(), "/docs", "no redirect");
    assert!(docs.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = docs.text().await.unwrap();
    assert!(html.contains("<div id=\"swagger-ui\">"), "{html}");
    assert!(!html.contains("://") && !html.contains("\"//"), "nothing from another host: {html}");
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/docs/") && (part.ends_with(".js") || part.ends_with(".css")))
        .collect();
    for asset in ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/swagger-initializer.js"] {
        assert!(assets.contains(&asset), "{asset} in {assets:?}");
    }
    for asset in assets {
        let response = app.http.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let kind = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.contains(if asset.ends_with(".js") { "javascript" } else { "css" }), "{asset}: {kind}");
        assert!(response.bytes().await.unwrap().len() > 100, "{asset}");
    }
    let init = app.http.get(app.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("\"/openapi.json\""), "the page reads this server's document: {init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "no validator badge from another host: {init}");
    assert!(!init.contains("://"), "{init}");
    assert_eq!(app.get("/docs/nope.js").await.0, StatusCode::NOT_FOUND);
}

/// An answer of the original's with `pk` as it appears where the original had none (lists).
fn without_pk(object: &Value) -> Value {
    let mut object = object.clone();
    object.as_object_mut().unwrap().remove("pk");
    object
}

/// The original Python app's React UI, unchanged: numbers sent as JSON
/// strings, from its own origin, reading `pk`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_apps_clients_work_unchanged() {
    const ORIGIN: &str = "http://localhost:3000";
    let app = common::start_with(|config| config.cors_origins = vec![ORIGIN.into()]).await;
    let send = |path: &str, body: Value| app.http.post(app.url(path)).header("origin", ORIGIN).json(&body).send();

    // A JSON POST from another origin is preflighted by the browser.
    for path in ["/product", "/orders"] {
        let preflight = app
            .http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success(), "{path}: {}", preflight.status());
        let allowed = |name: &str| preflight.headers()[name].to_str().unwrap().to_ascii_lowercase();
        assert_eq!(allowed("access-control-allow-origin"), ORIGIN);
        assert!(allowed("access-control-allow-methods").contains("post"), "{path}");
        assert!(allowed("access-control-allow-headers").contains("content-type"), "{path}");
    }

    let response = send("/product", json!({"name": "Chair", "price": "19.99", "quantity": "5"})).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    let product: Value = response.json().await.unwrap();
    assert_eq!(
        (&product["name"], &product["price"], &product["quantity"]),
        (&json!("Chair"), &json!(19.99), &json!(5))
    );
    let id = product["id"].as_str().unwrap();
    assert_eq!(product["pk"], id, "the original answered with pk");
    assert_eq!(app.get(&format!("/product/{id}")).await, (StatusCode::OK, product.clone()));
    assert_eq!(app.get("/products").await, (StatusCode::OK, json!([without_pk(&product)])));

    let response = send("/orders", json!({"product_id": id, "quantity": "2"})).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    let order: Value = response.json().await.unwrap();
    assert_eq!((&order["quantity"], &order["total"], &order["status"]), (&json!(2), &json!(47.98), &json!("pending")));
    assert_eq!(order["pk"], order["id"]);
    app.wait_for_status(order["id"].as_str().unwrap(), "fulfilled").await;
}

/// A string stands for a number only when it holds exactly one; anything
/// else is a 422 naming the field, as a bad number is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_fields_take_strings_holding_exactly_a_number_and_nothing_else() {
    let app = common::start().await;
    let (status, product) = app.post("/product", json!({"name": "Desk", "price": "120", "quantity": "0"})).await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    assert_eq!((&product["price"], &product["quantity"]), (&json!(120.0), &json!(0)));
    let id = product["id"].as_str().unwrap();

    let new_product = |price: Value, quantity: Value| json!({"name": "X", "price": price, "quantity": quantity});
    let mut cases = Vec::new();
    for bad in
        ["1e3", " 5", "5 ", "", "abc", "+5", "5.", ".5", "05", "-1", "1.234", "1000000.01", "99999999999999999999999"]
    {
        cases.push(("/product", new_product(json!(bad), json!(1)), "price"));
    }
    for bad in ["2.5", "2.0", "1e3", " 5", "", "abc", "-1", "1000001", "99999999999999999999999"] {
        cases.push(("/product", new_product(json!(1), json!(bad)), "quantity"));
    }
    for bad in ["2.5", "1e3", " 5", "", "abc", "0", "-1", "10001", "99999999999999999999999"] {
        cases.push(("/orders", json!({"product_id": id, "quantity": bad}), "quantity"));
    }
    // Other JSON values, and the rules of numbers, stay as they were.
    for (price, quantity, field) in [
        (json!(true), json!(1), "price"),
        (json!(null), json!(1), "price"),
        (json!(1), json!([1]), "quantity"),
        (json!(1.234), json!(1), "price"),
        (json!(1), json!(2.5), "quantity"),
        (json!(1), json!(1e3), "quantity"),
    ] {
        cases.push(("/product", new_product(price, quantity), field));
    }
    cases.push(("/orders", json!({"product_id": id, "quantity": 2.0}), "quantity"));
    cases.push(("/orders", json!({"product_id": id, "quantity": null}), "quantity"));
    for (path, body, field) in cases {
        let (status, error) = app.post(path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {error}");
        let message = error["error"].as_str().unwrap();
        assert!(message.contains(field), "{path} {body}: {message:?} names {field}");
    }
    assert_eq!(app.get("/products").await.1.as_array().unwrap().len(), 1, "nothing else was created");
    assert!(app.get("/orders").await.1.as_array().unwrap().is_empty(), "no order was placed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_gzipped_for_clients_that_accept_it_but_never_the_live_feed() {
    let app = start_on(Backend::Single, |_| {}).await;
    let gzip = |path: &str| app.http.get(app.url(path)).header("accept-encoding", "gzip").send();

    let zipped = gzip("/openapi.json").await.unwrap();
    assert_eq!(zipped.status(), StatusCode::OK);
    assert_eq!(zipped.headers().get("content-encoding").map(|v| v.to_str().unwrap()), Some("gzip"));
    let zipped = zipped.bytes().await.unwrap();
    assert_eq!(&zipped[..2], &[0x1f, 0x8b], "a gzip stream");

    let plain = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none(), "only when asked for");
    let plain = plain.bytes().await.unwrap();
    assert!(zipped.len() * 3 < plain.len(), "{} bytes gzipped, {} plain", zipped.len(), plain.len());

    // Compressing the event stream would hold events back in the encoder's buffer.
    let feed = gzip("/api/events").await.unwrap();
    assert_eq!(feed.headers().get("content-type").map(|v| v.to_str().unwrap()), Some("text/event-stream"));
    assert!(feed.headers().get("content-encoding").is_none());
}
