//! The REST API and the live feed, over real HTTP against a private
//! redis-server, with the real consumer loops running.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

use common::start_on;
use testkit::{on_every_backend, Backend};

on_every_backend!(
    products_and_orders_keep_the_original_contract,
    bad_requests_get_clear_4xx_errors,
    the_live_feed_relays_every_change_and_replays_after_last_event_id,
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
    assert_eq!(app.get(&format!("/product/{product_id}")).await, (StatusCode::OK, product.clone()));
    assert_eq!(app.get("/products").await, (StatusCode::OK, json!([product])));

    let (status, order) = app.post("/orders", json!({"product_id": product_id, "quantity": 2})).await;
    assert_eq!(status, StatusCode::CREATED);
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

    let (status, refunded) = app.post("/orders", json!({"product_id": product_id, "quantity": 2})).await;
    assert_eq!(status, StatusCode::CREATED);
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
    let huge = app
        .http
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

/// Reads SSE events (id, data) from a response until `count` arrived.
async fn read_events(response: reqwest::Response, count: usize) -> Vec<(String, Value)> {
    let mut stream = response.bytes_stream();
    let (mut buffer, mut events) = (String::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while events.len() < count {
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("events in time").unwrap().unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut data) = (None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str(v.trim()).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                events.push((id, data));
            }
        }
    }
    events
}

async fn the_live_feed_relays_every_change_and_replays_after_last_event_id(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Desk", "price": 100, "quantity": 5})).await;
    let live = app.http.get(format!("{}/api/events", app.base)).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    // The relay subscribes as the response starts; give it a moment before ordering.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, order) = app.post("/orders", json!({"product_id": product["id"], "quantity": 2})).await;

    let events = read_events(live, 3).await;
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
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, first) = app.post("/orders", json!({"product_id": product["id"], "quantity": 1})).await;
    let (_, second) = app.post("/orders", json!({"product_id": product["id"], "quantity": 1})).await;
    app.wait_for_status(first["id"].as_str().unwrap(), "fulfilled").await;
    app.wait_for_status(second["id"].as_str().unwrap(), "refunded").await;
    read_events(live, 6).await; // the feed reader has seen both orders finish

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
        "stockflow_group_lag{stream=\"order-completed\",group=\"warehouse\"} 0",
        "stockflow_group_pending{stream=\"order-placed\",group=\"payment\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("stockflow_http_request_duration_seconds_bucket{"), "{text}");
    assert!(text.contains("route=\"/orders\""), "{text}");
    assert!(text.contains("stockflow_order_processing_seconds_count{outcome=\"fulfilled\"}"), "{text}");
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
    for field in ["id", "product_id", "price", "fee", "total", "quantity", "status"] {
        assert!(order[field].is_object(), "Order.{field}");
    }
    assert_eq!(order["price"]["type"], "number");

    let docs = app.http.get(format!("{}/docs", app.base)).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("<code>/orders/{id}</code>") && html.contains("id=\"schema-Order\""));
    assert!(!html.contains("https://"), "no assets from elsewhere");
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
