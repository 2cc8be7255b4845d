//! Helpers for tests against a private Redis (feature `testing`): the
//! server's and the workers' tests share them instead of copying them.

use std::time::Duration;

use domain::Order;
use testkit::TestRedis;

use crate::{Config, Layout, Redis, Shop, Stream};

/// The test defaults, pointed at `redis` (one server or a cluster).
pub fn config_for(redis: &TestRedis) -> Config {
    Config::for_variable(redis.env())
}

/// Waits (up to `within`) until the newest `count` orders (every order when
/// `None`) are listed and all of them are final; returns them, newest first.
/// Panics with a few of the unfinished ones when they are not.
pub async fn wait_until_final(shop: &Shop, count: Option<usize>, within: Duration) -> Vec<Order> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let orders = shop.newest_orders(count.unwrap_or(usize::MAX)).await.unwrap();
        let open: Vec<&Order> = orders.iter().filter(|o| !o.status.is_terminal()).collect();
        if open.is_empty() && count.is_none_or(|count| orders.len() == count) {
            return orders;
        }
        if tokio::time::Instant::now() >= deadline {
            let stuck: Vec<String> =
                open.iter().take(5).map(|o| format!("{} ({}, created at {})", o.id, o.status, o.created_at)).collect();
            panic!(
                "{} of {} orders listed (of {count:?} awaited) did not finish within {within:?}: {}",
                open.len(),
                orders.len(),
                stuck.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every group of every partition has read its whole stream and
/// acknowledged everything (see [`crate::streams::GroupInfo::is_idle`]).
pub async fn wait_until_idle(conn: &mut Redis, layout: &Layout) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut busy = Vec::new();
        for keys in layout.all() {
            for stream in Stream::WORK {
                let groups = crate::streams::groups(conn, &keys.stream(stream)).await.unwrap_or_default();
                if groups.iter().any(|group| !group.is_idle()) {
                    busy.push(keys.stream(stream));
                }
            }
        }
        if busy.is_empty() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "consumers did not go idle: {busy:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
