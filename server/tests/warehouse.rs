//! Pagination, restocking and idempotent product creation over real HTTP,
//! against a private redis-server with the real consumer loops running.

mod common;

use std::collections::HashSet;

use common::{start_on, Running};
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{on_every_backend, Backend};

on_every_backend!(
    lists_come_in_pages_that_follow_the_cursor_to_the_end,
    restocking_keeps_the_stock_arithmetic_exact_while_orders_take_stock,
    concurrent_retries_with_one_idempotency_key_create_one_product,
);

/// Every page of `path` with `limit`, following `Next-Cursor`, and checking
/// that `Link` says the same.
async fn all_pages(app: &Running, path: &str, limit: usize) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut url = format!("{path}?limit={limit}");
    loop {
        let response = app.http.get(app.url(&url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let next = response.headers().get("next-cursor").map(|v| v.to_str().unwrap().to_string());
        let link = response.headers().get("link").map(|v| v.to_str().unwrap().to_string());
        pages.push(response.json::<Vec<Value>>().await.unwrap());
        assert!(pages.len() < 10_000, "the cursor never ends");
        match next {
            None => {
                assert!(link.is_none());
                return pages;
            }
            Some(cursor) => {
                url = format!("{path}?limit={limit}&cursor={cursor}");
                assert_eq!(link.unwrap(), format!("<{url}>; rel=\"next\""));
            }
        }
    }
}

async fn lists_come_in_pages_that_follow_the_cursor_to_the_end(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let mut created = Vec::new();
    for n in 0..5 {
        let (status, product) =
            app.post("/product", json!({"name": format!("Item {n}"), "price": 1, "quantity": 100})).await;
        assert_eq!(status, StatusCode::CREATED);
        created.push(product["id"].as_str().unwrap().to_string());
    }
    let pages = all_pages(&app, "/products", 2).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1], "no empty last page");
    let listed: Vec<String> = pages.concat().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(listed, created, "oldest first, each once");

    let mut orders = Vec::new();
    for _ in 0..4 {
        let (_, order) = app.post("/orders", json!({"product_id": created[0], "quantity": 1})).await;
        orders.push(order["id"].as_str().unwrap().to_string());
    }
    let pages = all_pages(&app, "/orders", 3).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
    let listed: Vec<String> = pages.concat().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
    orders.reverse();
    assert_eq!(listed, orders, "newest first, each once");

    // Without parameters a small shop's whole list comes at once, as in the original.
    let whole = app.http.get(app.url("/products")).send().await.unwrap();
    assert!(whole.headers().get("next-cursor").is_none());
    assert_eq!(whole.json::<Vec<Value>>().await.unwrap().len(), 5);

    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?cursor=nope", "?cursor=01JD3V6Q8ZK0M9X4W2T7Y5B1C%21"] {
        let (status, error) = app.get(&format!("/orders{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let message = error["error"].as_str().unwrap();
        assert!(message.starts_with("limit") || message.starts_with("cursor"), "{bad}: {message}");
    }
}

async fn restocking_keeps_the_stock_arithmetic_exact_while_orders_take_stock(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let (_, product) = app.post("/product", json!({"name": "Kettle", "price": 25, "quantity": 0})).await;
    let id = product["id"].as_str().unwrap().to_string();

    let (status, restocked) = app.post(&format!("/product/{id}/restock"), json!({"quantity": 3})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(restocked["quantity"], 3);

    // Orders and restocks race; whatever wins, initial + restocks - fulfilled = stock.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..30 {
        let (http, base, id) = (app.http.clone(), app.base.clone(), id.clone());
        tasks.spawn(async move {
            let (path, body) = if n % 3 == 0 {
                (format!("{base}/product/{id}/restock"), json!({"quantity": 2}))
            } else {
                (format!("{base}/orders"), json!({"product_id": id, "quantity": 1}))
            };
            let response = http.post(path).json(&body).send().await.unwrap();
            (n % 3 == 0, response.status(), response.json::<Value>().await.unwrap())
        });
    }
    let mut order_ids = Vec::new();
    for (is_restock, status, body) in tasks.join_all().await {
        if is_restock {
            assert_eq!(status, StatusCode::OK);
        } else {
            assert_eq!(status, StatusCode::CREATED);
            order_ids.push(body["id"].as_str().unwrap().to_string());
        }
    }
    let mut fulfilled = 0;
    for order_id in &order_ids {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let order = loop {
            let (_, order) = app.get(&format!("/orders/{order_id}")).await;
            if order["status"] == "fulfilled" || order["status"] == "refunded" {
                break order;
            }
            assert!(tokio::time::Instant::now() < deadline, "order {order_id} did not finish within 30 s: {order}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        if order["status"] == "fulfilled" {
            fulfilled += 1;
        }
    }
    let stock = app.get(&format!("/product/{id}")).await.1["quantity"].as_i64().unwrap();
    assert_eq!(stock, 3 + 10 * 2 - fulfilled, "initial + restocks - fulfilled = stock");
    assert!(fulfilled > 0);

    let cases = [
        (format!("/product/{id}/restock"), json!({"quantity": 0}), StatusCode::UNPROCESSABLE_ENTITY),
        (format!("/product/{id}/restock"), json!({"quantity": -1}), StatusCode::UNPROCESSABLE_ENTITY),
        (format!("/product/{id}/restock"), json!({"quantity": 1_000_000}), StatusCode::UNPROCESSABLE_ENTITY),
        (format!("/product/{id}/restock"), json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/product/01ARZ3NDEKTSV4RRFFQ69G5FAV/restock".to_string(), json!({"quantity": 1}), StatusCode::NOT_FOUND),
        ("/product/nope/restock".to_string(), json!({"quantity": 1}), StatusCode::NOT_FOUND),
    ];
    for (path, body, expected) in cases {
        let (status, error) = app.post(&path, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}");
        assert!(error["error"].is_string(), "{path} {body}: {error}");
    }
    assert_eq!(app.get(&format!("/product/{id}")).await.1["quantity"], stock, "refused restocks change nothing");
}

async fn concurrent_retries_with_one_idempotency_key_create_one_product(backend: Backend) {
    let app = start_on(backend, |_| {}).await;
    let body = json!({"name": "Desk lamp", "price": 30.5, "quantity": 4});
    let answers = app.post_concurrently("/product", "lamp-1", &body, 20).await;
    assert!(answers.iter().all(|(status, _, _)| *status == StatusCode::CREATED));
    let ids: HashSet<&Value> = answers.iter().map(|(_, _, product)| &product["id"]).collect();
    assert_eq!(ids.len(), 1, "one product for one key");
    assert_eq!(answers.iter().filter(|(_, replayed, _)| replayed == "false").count(), 1, "created once");
    assert_eq!(app.get("/products").await.1.as_array().unwrap().len(), 1);
    // The replay is the original response, even after the stock moved.
    let id = answers[0].2["id"].as_str().unwrap();
    app.post(&format!("/product/{id}/restock"), json!({"quantity": 1})).await;
    let again =
        app.http.post(app.url("/product")).header("Idempotency-Key", "lamp-1").json(&body).send().await.unwrap();
    assert_eq!(again.json::<Value>().await.unwrap(), answers[0].2);

    let other = app
        .http
        .post(app.url("/product"))
        .header("Idempotency-Key", "lamp-1")
        .json(&json!({"name": "Floor lamp", "price": 30.5, "quantity": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/products").await.1.as_array().unwrap().len(), 1);
}
