//! Refunds: marks orders refunded once the warehouse has initiated it.
//!
//! Reads `refund-initiated`; each order moves completed → refunded with its
//! status event in one script (see `refund_order.lua`).

use redis::streams::StreamId;
use redis::RedisResult;
use store::scripts::{self, Change};
use store::streams::RefundInitiated;
use store::{keys, now_ms, Redis, Stream};

use crate::consumer::{apply_each, Handler, Outcome, Scope};

pub struct Refunds {
    pub status_maxlen: u64,
}

impl Handler for Refunds {
    const STREAM: Stream = Stream::RefundInitiated;
    const GROUP: &'static str = keys::group::REFUND;

    async fn handle(&self, conn: &mut Redis, scope: &Scope, batch: &[StreamId]) -> RedisResult<Vec<Outcome>> {
        let now = now_ms();
        apply_each(
            conn,
            scope,
            batch,
            Self::GROUP,
            RefundInitiated::parse,
            |refund, ack| scripts::refund_order(&scope.keys, &refund.order_id, now, self.status_maxlen, Some(ack)),
            |refund, change| match change {
                Change::Applied => {
                    tracing::info!(order_id = %refund.order_id, reason = %refund.reason, "order refunded");
                    Outcome::Acked
                }
                Change::Skipped => Outcome::Acked,
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
