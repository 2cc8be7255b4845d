//! Refunds: marks orders refunded once the warehouse has initiated it.
//!
//! Reads `refund-initiated`; each order moves completed → refunded with its
//! status event in one script (see `refund_order.lua`).

use redis::streams::StreamId;
use redis::RedisResult;
use store::streams::RefundInitiated;
use store::{keys, now_ms, scripts, Redis, Stream};

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
            |refund, ack| {
                scripts::refund_order(&scope.keys, &refund.order_id, &refund.reason, now, self.status_maxlen, Some(ack))
            },
            |refund, reply| match redis::from_redis_value::<String>(reply).as_deref() {
                Ok("applied") => {
                    tracing::info!(order_id = %refund.order_id, reason = %refund.reason, "order refunded");
                    Outcome::Acked
                }
                Ok("skipped") => Outcome::Acked,
                Ok("missing") => Outcome::poison(format!("order {} does not exist", refund.order_id)),
                other => Outcome::poison(format!("unexpected reply {other:?}")),
            },
        )
        .await
    }
}
