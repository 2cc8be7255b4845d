//! The server under test: the real router on a free port, the real consumer
//! loops, and a private redis-server.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::time::Duration;

use leptos::prelude::LeptosOptions;
use reqwest::StatusCode;
use serde_json::Value;
use store::Config;
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

pub struct Running {
    pub base: String,
    pub http: reqwest::Client,
    pub redis: RedisServer,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The server with the default configuration.
pub async fn start() -> Running {
    start_with(|_| {}).await
}

/// The server with a configuration `configure` adjusts (admin token, CORS, ...).
pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Running {
    let redis = RedisServer::start();
    let mut config = Config::for_redis(redis.url());
    config.consumer_name = "api-test".into();
    configure(&mut config);
    let shutdown = CancellationToken::new();
    tokio::spawn(workers::run(config.clone(), &workers::Role::ALL, shutdown.clone()));
    let options = LeptosOptions::builder().output_name("stockflow").build();
    let state = server::state(&config, options, shutdown.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, server::app(state)).with_graceful_shutdown(stop.cancelled_owned()).await.unwrap();
    });
    Running { base, http: reqwest::Client::new(), redis, shutdown }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.http.post(self.url(path)).json(&body).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `times` concurrent POSTs of `body` to `path`, all with one
    /// `Idempotency-Key`: each answer's status, `Idempotency-Replayed` header and body.
    pub async fn post_concurrently(
        &self,
        path: &str,
        idempotency_key: &str,
        body: &Value,
        times: usize,
    ) -> Vec<(StatusCode, String, Value)> {
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..times {
            let request = self.http.post(self.url(path)).header("Idempotency-Key", idempotency_key).json(body);
            requests.spawn(async move {
                let response = request.send().await.unwrap();
                let replayed = response.headers()["idempotency-replayed"].to_str().unwrap().to_string();
                (response.status(), replayed, response.json::<Value>().await.unwrap())
            });
        }
        requests.join_all().await
    }

    pub async fn wait_for_status(&self, order_id: &str, wanted: &str) -> Value {
        for _ in 0..400 {
            let (_, order) = self.get(&format!("/orders/{order_id}")).await;
            if order["status"] == wanted {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("order {order_id} never became {wanted}");
    }
}
