//! Warehouse: takes the stock of completed orders, or initiates their refund.
//!
//! Reads `order-completed` one batch at a time, in stream order, so stock goes
//! to orders first come, first served. Check and decrement are one Lua script
//! per order (see `fulfil_order.lua`), pipelined per batch: stock can never go
//! below zero, however many workers processes run.

use redis::streams::StreamId;
use redis::{RedisResult, Value};
use store::streams::OrderCompleted;
use store::{keys, now_ms, scripts, Redis, Stream};

use crate::consumer::{apply_each, Handler, Outcome, Scope};

pub struct Warehouse {
    pub status_maxlen: u64,
}

impl Handler for Warehouse {
    const STREAM: Stream = Stream::OrderCompleted;
    const GROUP: &'static str = keys::group::WAREHOUSE;

    async fn handle(&self, conn: &mut Redis, scope: &Scope, batch: &[StreamId]) -> RedisResult<Vec<Outcome>> {
        let now = now_ms();
        apply_each(
            conn,
            scope,
            batch,
            Self::GROUP,
            OrderCompleted::parse,
            |completed, ack| {
                scripts::fulfil_order(
                    &scope.keys,
                    &completed.order_id,
                    &completed.product_id,
                    now,
                    self.status_maxlen,
                    Some(ack),
                )
            },
            judge,
        )
        .await
    }
}

fn judge(completed: &OrderCompleted, reply: Value) -> Outcome {
    let reply: Vec<String> = redis::from_redis_value(reply).unwrap_or_default();
    match reply.first().map(String::as_str) {
        Some("fulfilled") => {
            let stock_left = reply.get(1).map(String::as_str).unwrap_or("?");
            tracing::info!(order_id = %completed.order_id, product_id = %completed.product_id, stock_left, "order fulfilled");
            Outcome::Acked
        }
        Some("refund_initiated") => {
            let reason = reply.get(1).map(String::as_str).unwrap_or("?");
            tracing::info!(order_id = %completed.order_id, product_id = %completed.product_id, reason, "refund initiated");
            Outcome::Acked
        }
        Some("skipped") => Outcome::Acked,
        Some("missing") => Outcome::poison(format!("order {} does not exist", completed.order_id)),
        Some("mismatch") => {
            Outcome::poison(format!("order {} is not for product {}", completed.order_id, completed.product_id))
        }
        other => Outcome::poison(format!("unexpected reply {other:?}")),
    }
}
