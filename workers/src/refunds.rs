//! Refunds: marks orders refunded once the warehouse has initiated it.
//!
//! Reads `refund-initiated`; each order of a batch moves completed → refunded
//! with its status event, the whole batch in one script (see `refund_order.lua`).

use redis::streams::StreamId;
use store::scripts::{self, Applying, Change};
use store::streams::RefundInitiated;
use store::{keys, now_ms, Redis, Stream};

use crate::consumer::{apply_batch, Handler, Outcome, Scope};
use crate::error::WorkerResult;

pub struct Refunds {
    pub status_maxlen: u64,
}

impl Handler for Refunds {
    const STREAM: Stream = Stream::RefundInitiated;
    const GROUP: &'static str = keys::group::REFUND;

    async fn handle(&self, conn: &mut Redis, scope: &Scope, batch: &[StreamId]) -> WorkerResult<Vec<Outcome>> {
        let now = now_ms();
        apply_batch(
            conn,
            scope,
            batch,
            RefundInitiated::parse,
            |refunds| {
                let orders: Vec<Applying> = refunds
                    .iter()
                    .map(|(refund, entry_id)| Applying { order_id: &refund.order_id, entry_id: Some(entry_id) })
                    .collect();
                scripts::refund_orders(&scope.keys, Self::GROUP, &orders, now, self.status_maxlen)
            },
            |refund, change| match change {
                Change::Applied => {
                    crate::metrics::record_final(&refund.order_id, "refunded", now);
                    tracing::info!(order_id = %refund.order_id, reason = %refund.reason, "order refunded");
                    Outcome::Acked
                }
                Change::Skipped => Outcome::Acked,
                Change::Stray => Outcome::Stray,
                Change::Missing => Outcome::poison(format!("order {} does not exist", refund.order_id)),
                // The order is fine: whoever wrote this entry was not the warehouse.
                Change::NotInitiated => Outcome::poison(format!(
                    "order {} has no refund initiated by the warehouse; refused",
                    refund.order_id
                )),
            },
        )
        .await
    }
}
