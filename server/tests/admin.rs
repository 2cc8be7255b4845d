//! Admin auth (`ADMIN_TOKEN`) over REST and through the UI's server
//! functions and sign-in, and CORS, over real HTTP.

mod common;

use std::time::Duration;

use common::{start, start_tuned, start_with, Running};
use reqwest::header::{AUTHORIZATION, COOKIE, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use store::admin::Secret;
use store::limits::{Rate, RateLimiter};
use testkit::Backend;

const TOKEN: &str = "s3cret-admin-token";

async fn with_admin_token() -> Running {
    start_with(|config| config.admin_token = Some(Secret::new(TOKEN))).await
}

/// A REST call with an optional `Authorization` header; returns status and body.
async fn call(
    app: &Running,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = app.http.request(method, app.url(path)).json(&body);
    if let Some(auth) = auth {
        request = request.header(AUTHORIZATION, auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouse_changes_over_rest_need_the_bearer_token() {
    let app = with_admin_token().await;
    let new = json!({"name": "Safe", "price": 99, "quantity": 2});
    let right = format!("Bearer {TOKEN}");
    for auth in [None, Some("Bearer wrong"), Some("Basic czNjcmV0"), Some(&*format!("Bearer {TOKEN}x"))] {
        let (status, error) = call(&app, reqwest::Method::POST, "/product", auth, new.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(error["error"].is_string());
    }
    assert!(app.get("/products").await.1.as_array().unwrap().is_empty(), "nothing created without the token");

    let (status, product) = call(&app, reqwest::Method::POST, "/product", Some(&right), new.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = product["id"].as_str().unwrap();
    let restock = format!("/product/{id}/restock");
    let delete = format!("/product/{id}");

    assert_eq!(
        call(&app, reqwest::Method::POST, &restock, None, json!({"quantity": 1})).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, reqwest::Method::POST, &restock, Some("Bearer nope"), json!({"quantity": 1})).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, restocked) = call(&app, reqwest::Method::POST, &restock, Some(&right), json!({"quantity": 1})).await;
    assert_eq!((status, restocked["quantity"].clone()), (StatusCode::OK, json!(3)));

    assert_eq!(call(&app, reqwest::Method::DELETE, &delete, None, Value::Null).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&app, reqwest::Method::DELETE, &delete, Some("Bearer no"), Value::Null).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get(&delete).await.0, StatusCode::OK, "still there");

    // Shoppers need no token: reading and ordering stay open.
    let (status, _) = app.post("/orders", json!({"product_id": id, "quantity": 1})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(app.get("/orders").await.0, StatusCode::OK);

    assert_eq!(call(&app, reqwest::Method::DELETE, &delete, Some(&right), Value::Null).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_the_warehouse_is_open_as_in_the_original() {
    let app = start().await;
    let (status, product) = app.post("/product", json!({"name": "Open", "price": 1, "quantity": 1})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, access) = server_fn(&app, "admin_status", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(access, json!({"required": false, "signed_in": false}));
    let id = product["id"].as_str().unwrap();
    let (status, _) = server_fn(&app, "restock_product", &[("id", id), ("quantity", "2")], None).await;
    assert_eq!(status, StatusCode::OK);
}

/// Calls a server function as the hydrated UI does (a URL-encoded form POST),
/// with an optional cookie; returns status and the JSON answer (or error text).
async fn server_fn(app: &Running, name: &str, form: &[(&str, &str)], cookie: Option<&str>) -> (StatusCode, Value) {
    let (status, _, body) = server_fn_raw(app, name, form, cookie).await;
    (status, body)
}

async fn server_fn_raw(
    app: &Running,
    name: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = app.http.post(app.url(&format!("/api/{name}"))).form(form);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let set_cookie = response.headers().get(SET_COOKIE).map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    (status, set_cookie, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_signs_in_with_the_token_into_an_http_only_same_site_session() {
    let app = with_admin_token().await;
    let product = [("name", "Vault"), ("price", "10"), ("quantity", "1")];

    // No session: refused, and nothing is created.
    let (status, error) = server_fn(&app, "add_product", &product, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error.to_string().contains("Sign in as admin"), "{error}");
    let (_, access) = server_fn(&app, "admin_status", &[], None).await;
    assert_eq!(access, json!({"required": true, "signed_in": false}));

    // A wrong token: refused, no cookie.
    let (status, cookie, error) = server_fn_raw(&app, "sign_in", &[("token", "guess")], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    assert!(error.to_string().contains("wrong"), "{error}");
    let forged = "stockflow_admin=0000000000000000000000000000000000000000000000000000000000000000";
    assert_eq!(server_fn(&app, "add_product", &product, Some(forged)).await.0, StatusCode::UNAUTHORIZED);

    // The right token: a session cookie no script can read and no other site can send.
    let (status, cookie, _) = server_fn_raw(&app, "sign_in", &[("token", TOKEN)], None).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie.expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains(TOKEN), "the cookie holds a session id, not the token");
    let session = cookie.split(';').next().unwrap().to_string();
    let (_, access) = server_fn(&app, "admin_status", &[], Some(&session)).await;
    assert_eq!(access, json!({"required": true, "signed_in": true}));

    let (status, created) = server_fn(&app, "add_product", &product, Some(&session)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        server_fn(&app, "restock_product", &[("id", id), ("quantity", "4")], None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, restocked) =
        server_fn(&app, "restock_product", &[("id", id), ("quantity", "4")], Some(&session)).await;
    assert_eq!((status, restocked["quantity"].clone()), (StatusCode::OK, json!(5)));
    assert_eq!(server_fn(&app, "delete_product", &[("id", id)], None).await.0, StatusCode::UNAUTHORIZED);

    // Signing out closes the session on the server, not only in the browser.
    let (status, cleared, _) = server_fn_raw(&app, "sign_out", &[], Some(&session)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(cleared.unwrap().contains("Max-Age=0"));
    assert_eq!(server_fn(&app, "delete_product", &[("id", id)], Some(&session)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&format!("/product/{id}")).await.0, StatusCode::OK);
}

async fn preflight(app: &Running, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/orders"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,idempotency-key")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_calls_are_allowed_only_from_configured_origins() {
    let closed = start().await;
    let response = preflight(&closed, "https://shop.example").await;
    assert!(response.headers().get("access-control-allow-origin").is_none(), "no origin allowed by default");
    let simple =
        closed.http.get(closed.url("/products")).header("origin", "https://shop.example").send().await.unwrap();
    assert!(simple.headers().get("access-control-allow-origin").is_none());

    let open = start_with(|config| config.cors_origins = vec!["https://shop.example".into()]).await;
    let allowed = preflight(&open, "https://shop.example").await;
    assert!(allowed.status().is_success());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://shop.example");
    let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap().to_string();
    assert!(methods.contains("POST"), "{methods}");
    let headers = allowed.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(headers.contains("idempotency-key"), "{headers}");
    let other = preflight(&open, "https://evil.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let simple = open.http.get(open.url("/products")).header("origin", "https://shop.example").send().await.unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://shop.example");
    let exposed = simple.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(exposed.contains("next-cursor"), "{exposed}");
}

/// A client of `app` connecting from `address` (any 127.x.y.z is this machine).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(address.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
}

/// Sends `token` as a bearer token to create a product; status, `Retry-After` and body.
async fn create_with(app: &Running, client: &reqwest::Client, token: &str) -> (StatusCode, Option<u64>, Value) {
    let body = json!({"name": "Guarded", "price": 1, "quantity": 1});
    let request = client.post(app.url("/product")).header(AUTHORIZATION, format!("Bearer {token}")).json(&body);
    answer(request.send().await.unwrap()).await
}

/// The UI's sign-in with `token`; status, `Retry-After` and body.
async fn sign_in_with(app: &Running, client: &reqwest::Client, token: &str) -> (StatusCode, Option<u64>, Value) {
    answer(client.post(app.url("/api/sign_in")).form(&[("token", token)]).send().await.unwrap()).await
}

async fn answer(response: reqwest::Response) -> (StatusCode, Option<u64>, Value) {
    let status = response.status();
    let retry_after = response.headers().get(RETRY_AFTER).map(|v| v.to_str().unwrap().parse().unwrap());
    let text = response.text().await.unwrap();
    (status, retry_after, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_the_admin_token_is_throttled_per_client_address() {
    // A short interval, so the test can wait it out: 3 wrong tokens, then one per 2 s.
    let limit = Rate { burst: 3, interval: Duration::from_secs(2) };
    let app = start_tuned(
        Backend::Single,
        |config| config.admin_token = Some(Secret::new(TOKEN)),
        |state| state.limits.admin_guesses = RateLimiter::new(limit),
    )
    .await;
    let (guesser, admin) = (client_from("127.0.0.2"), client_from("127.0.0.3"));

    // A guessing loop over REST: 401 while under the limit, then 429.
    let mut answers = Vec::new();
    for guess in 0..6 {
        answers.push(create_with(&app, &guesser, &format!("guess-{guess}")).await);
    }
    let statuses: Vec<StatusCode> = answers.iter().map(|(status, ..)| *status).collect();
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[3..], [StatusCode::TOO_MANY_REQUESTS; 3]);
    let (_, retry_after, error) = &answers[3];
    assert!(matches!(retry_after, Some(1..=2)), "{retry_after:?}");
    assert!(error["error"].as_str().unwrap().contains("too many wrong admin tokens"), "{error}");

    // Throttled means throttled: even the right token is not tried, over REST or the sign-in,
    // and the sign-in form gets a message a person can read.
    assert_eq!(create_with(&app, &guesser, TOKEN).await.0, StatusCode::TOO_MANY_REQUESTS);
    let (status, retry_after, message) = sign_in_with(&app, &guesser, TOKEN).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(matches!(retry_after, Some(1..=2)), "{retry_after:?}");
    assert!(message.to_string().contains("Too many wrong admin tokens from this address. Try again in"), "{message}");

    // A client that did not fail is not slowed.
    assert_eq!(create_with(&app, &admin, TOKEN).await.0, StatusCode::CREATED);
    assert_eq!(sign_in_with(&app, &admin, TOKEN).await.0, StatusCode::OK);

    // Wrong tokens at the sign-in count the same way.
    for _ in 0..3 {
        assert_eq!(sign_in_with(&app, &admin, "guess").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(sign_in_with(&app, &admin, "guess").await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(create_with(&app, &admin, TOKEN).await.0, StatusCode::TOO_MANY_REQUESTS);

    // Server functions take a bearer token too (for scripts): no way around the limit.
    let script = client_from("127.0.0.4");
    let restock = || {
        let request = script.post(app.url("/api/restock_product")).header(AUTHORIZATION, "Bearer guess");
        request.form(&[("id", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), ("quantity", "1")]).send()
    };
    for _ in 0..3 {
        assert_eq!(restock().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = restock().await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key(RETRY_AFTER));
    assert_eq!(create_with(&app, &script, TOKEN).await.0, StatusCode::TOO_MANY_REQUESTS);

    // After the wait, the right token works again for the throttled client.
    tokio::time::sleep(Duration::from_secs(retry_after.unwrap())).await;
    assert_eq!(create_with(&app, &guesser, TOKEN).await.0, StatusCode::CREATED);
    assert_eq!(sign_in_with(&app, &guesser, TOKEN).await.0, StatusCode::OK, "a right token costs nothing");
    assert_eq!(create_with(&app, &guesser, "guess").await.0, StatusCode::UNAUTHORIZED, "one more try per interval");
    assert_eq!(create_with(&app, &guesser, "guess").await.0, StatusCode::TOO_MANY_REQUESTS);
}
