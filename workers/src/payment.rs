//! Payment: completes placed orders after the (simulated) payment delay.
//!
//! Reads the `order-placed` outbox. Each batch waits until its newest entry
//! is `PAYMENT_DELAY_MS` old, measured from the entry id's timestamp (when the
//! order was saved), so many batches wait concurrently and a redelivered entry
//! does not wait again. Then every order of the batch moves pending →
//! completed in one pipelined round trip (see `complete_order.lua`).

use std::time::Duration;

use redis::streams::StreamId;
use redis::RedisResult;
use store::streams::OrderPlaced;
use store::{keys, now_ms, scripts, Redis, Stream};

use crate::consumer::{apply_each, Handler, Outcome, Scope};

pub struct Payment {
    pub delay: Duration,
    pub status_maxlen: u64,
}

impl Handler for Payment {
    const STREAM: Stream = Stream::OrderPlaced;
    const GROUP: &'static str = keys::group::PAYMENT;

    /// Payments are independent and mostly waiting: let many batches wait at once.
    fn max_in_flight(&self) -> usize {
        1024
    }

    async fn handle(&self, conn: &mut Redis, scope: &Scope, batch: &[StreamId]) -> RedisResult<Vec<Outcome>> {
        let placed_at = batch.iter().filter_map(|entry| entry_ms(&entry.id)).max().unwrap_or(0);
        let due = placed_at + self.delay.as_millis() as u64;
        let now = now_ms();
        if due > now {
            tokio::time::sleep(Duration::from_millis(due - now)).await;
        }
        let now = now_ms();
        apply_each(
            conn,
            scope,
            batch,
            Self::GROUP,
            OrderPlaced::parse,
            |placed, ack| scripts::complete_order(&scope.keys, &placed.order_id, now, self.status_maxlen, Some(ack)),
            |placed, reply| match redis::from_redis_value::<String>(reply).as_deref() {
                Ok("applied") => {
                    tracing::info!(order_id = %placed.order_id, "order completed");
                    Outcome::Acked
                }
                Ok("skipped") => Outcome::Acked,
                Ok("missing") => Outcome::poison(format!("order {} does not exist", placed.order_id)),
                other => Outcome::poison(format!("unexpected reply {other:?}")),
            },
        )
        .await
    }
}

/// The millisecond timestamp of a stream entry id (`<ms>-<seq>`).
pub fn entry_ms(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_time_of_an_entry_id() {
        assert_eq!(super::entry_ms("1700000000123-4"), Some(1_700_000_000_123));
        assert_eq!(super::entry_ms("nonsense"), None);
    }
}
