//! The workers binary serves the order processing time at
//! `WORKERS_METRICS_ADDR`: one observation per order, by its outcome.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{config_for, spawn_workers};
use domain::{NewProduct, Quantity};
use store::Shop;
use testkit::{free_port, Backend, TestRedis};

/// `GET /metrics` over plain HTTP/1.0: the body, once the listener answers.
fn scrape(addr: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: workers\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_serve_each_orders_processing_time_by_outcome() {
    let redis = TestRedis::start(Backend::Single);
    let shop = Shop::new(&config_for(&redis)).unwrap();
    let product = shop.create_product(NewProduct::parse("Gauge", "2", "1").unwrap()).await.unwrap();
    for _ in 0..2 {
        shop.place_order(&product.id, Quantity::new(1).unwrap()).await.unwrap();
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let mut workers = spawn_workers(&redis, "metrics-workers", &[("WORKERS_METRICS_ADDR", &addr)]);

    // One order gets the only unit, the other is refunded.
    let wanted = [
        r#"stockflow_order_processing_seconds_count{outcome="fulfilled"} 1"#,
        r#"stockflow_order_processing_seconds_count{outcome="refunded"} 1"#,
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = scrape(&addr).unwrap_or_default();
        if wanted.iter().all(|line| text.lines().any(|l| l == *line)) {
            break text;
        }
        assert!(Instant::now() < deadline, "not served at {addr} within 30 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains(r#"stockflow_order_processing_seconds_bucket{outcome="fulfilled",le="30"} 1"#), "{text}");
    assert!(text.contains(&format!("# TYPE {} histogram", workers::metrics::PROCESSING)), "{text}");

    // A second process cannot take the same address: it says so and exits 2.
    let mut second = spawn_workers(&redis, "metrics-workers-2", &[("WORKERS_METRICS_ADDR", &addr)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while second.is_running() {
        assert!(Instant::now() < deadline, "a second workers process on a taken metrics address kept running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(second.terminate(Duration::from_secs(1)), Some(2));
    assert_eq!(workers.terminate(Duration::from_secs(10)), Some(0));
}
