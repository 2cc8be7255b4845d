//! Payment: completes placed orders after the (simulated) payment delay.
//!
//! Reads the `order-placed` outbox. Each batch waits until its newest entry
//! is `PAYMENT_DELAY_MS` old, measured from the entry id's timestamp (when the
//! order was saved), so many batches wait concurrently and a redelivered entry
//! does not wait again. Then every order of the batch moves pending →
//! completed in one pipelined round trip (see `complete_order.lua`).

use std::time::Duration;

use redis::streams::StreamId;
use store::scripts::{self, Applying, Change};
use store::streams::{EntryId, OrderPlaced};
use store::{keys, now_ms, Redis, Stream};

use crate::consumer::{apply_batch, Handler, Outcome, Scope};
use crate::error::WorkerResult;

pub struct Payment {
    pub delay: Duration,
}

impl Handler for Payment {
    const STREAM: Stream = Stream::OrderPlaced;
    const GROUP: &'static str = keys::group::PAYMENT;

    /// Payments are independent and mostly waiting: let many batches wait at once.
    fn max_in_flight(&self) -> usize {
        1024
    }

    async fn handle(&self, conn: &mut Redis, scope: &Scope, batch: &[StreamId]) -> WorkerResult<Vec<Outcome>> {
        let placed_at = batch.iter().filter_map(|entry| EntryId::parse(&entry.id)).map(|id| id.ms).max().unwrap_or(0);
        let due = placed_at + self.delay.as_millis() as u64;
        let now = now_ms();
        if due > now {
            tokio::time::sleep(Duration::from_millis(due - now)).await;
        }
        let now = now_ms();
        apply_batch(
            conn,
            scope,
            batch,
            OrderPlaced::parse,
            |placed| {
                let orders: Vec<Applying> = placed
                    .iter()
                    .map(|(placed, entry_id)| Applying { order_id: &placed.order_id, entry_id: Some(entry_id) })
                    .collect();
                scripts::complete_orders(&scope.keys, Self::GROUP, &orders, now)
            },
            |placed, change| match change {
                Change::Applied => {
                    tracing::debug!(order_id = %placed.order_id, "order completed");
                    Outcome::Acked
                }
                Change::Skipped => Outcome::Acked,
                Change::Stray => Outcome::Stray,
                Change::Missing | Change::NotInitiated => {
                    Outcome::poison(format!("order {} does not exist", placed.order_id))
                }
            },
        )
        .await
    }
}
