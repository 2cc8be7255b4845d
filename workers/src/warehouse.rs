//! Warehouse: takes the stock of completed orders, or initiates their refund.
//!
//! Reads `order-completed` one batch at a time, in stream order, so stock goes
//! to orders first come, first served. Check and decrement are one Lua script
//! per batch (see `fulfil_order.lua`), orders taken in stream order: stock can never go
//! below zero, however many workers processes run.

use redis::streams::StreamId;
use store::scripts::{self, Fulfilment, Taking};
use store::streams::OrderCompleted;
use store::{keys, now_ms, Redis, Stream};

use crate::consumer::{apply_batch, Handler, Outcome, Scope};
use crate::error::WorkerResult;

pub struct Warehouse {
    pub status_maxlen: u64,
}

impl Handler for Warehouse {
    const STREAM: Stream = Stream::OrderCompleted;
    const GROUP: &'static str = keys::group::WAREHOUSE;

    async fn handle(&self, conn: &mut Redis, scope: &Scope, batch: &[StreamId]) -> WorkerResult<Vec<Outcome>> {
        let now = now_ms();
        apply_batch(
            conn,
            scope,
            batch,
            OrderCompleted::parse,
            |completed| {
                let orders: Vec<Taking> = completed
                    .iter()
                    .map(|(completed, entry_id)| Taking {
                        order_id: &completed.order_id,
                        product_id: &completed.product_id,
                        entry_id: Some(entry_id),
                    })
                    .collect();
                scripts::fulfil_orders(&scope.keys, Self::GROUP, &orders, now, self.status_maxlen)
            },
            |completed, verdict| judge(completed, verdict, now),
        )
        .await
    }
}

/// What becomes of an entry given the script's verdict on its order;
/// a fulfilled order is finished, and its processing time recorded.
fn judge(completed: &OrderCompleted, verdict: Fulfilment, now: u64) -> Outcome {
    match verdict {
        Fulfilment::Fulfilled { stock_left } => {
            crate::metrics::record_final(&completed.order_id, "fulfilled", now);
            tracing::debug!(order_id = %completed.order_id, product_id = %completed.product_id, stock_left, "order fulfilled");
            Outcome::Acked
        }
        Fulfilment::RefundInitiated { reason } => {
            tracing::info!(order_id = %completed.order_id, product_id = %completed.product_id, %reason, "refund initiated");
            Outcome::Acked
        }
        Fulfilment::Skipped => Outcome::Acked,
        Fulfilment::Stray => Outcome::Stray,
        Fulfilment::Missing => Outcome::poison(format!("order {} does not exist", completed.order_id)),
        Fulfilment::Mismatch => {
            Outcome::poison(format!("order {} is not for product {}", completed.order_id, completed.product_id))
        }
    }
}
