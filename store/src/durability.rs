//! "Acknowledged means durable": with `REDIS_MIN_REPLICAS` ≥ 1, a write
//! counts as done only once that many replicas have it.
//!
//! Redis replicates asynchronously: a master that dies right after answering
//! can take its last writes with it when a replica takes over. `WAIT n
//! timeout`, sent right after the write in the same pipeline (so a cluster
//! client sends it to the same master), blocks until `n` replicas have
//! acknowledged everything written before it on that connection. When they
//! do not answer in time the caller learns it ([`StoreError::NotReplicated`]):
//! the write itself is whole (each script is atomic and is replicated whole,
//! or not at all), so a retry with the same idempotency key is always safe.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{FromRedisValue, Pipeline, Value};

use crate::config::Config;
use crate::error::{StoreError, StoreResult};
use crate::scripts::{self, Call};

/// How many replicas a write must reach, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    pub min_replicas: u32,
    pub timeout: Duration,
}

impl Durability {
    pub fn of(config: &Config) -> Durability {
        Durability { min_replicas: config.min_replicas, timeout: config.replica_timeout }
    }

    /// Whether writes wait for replicas at all.
    pub fn waits(&self) -> bool {
        self.min_replicas > 0
    }

    /// Runs a script call and, when replicas are required, waits for them.
    pub async fn run<C: ConnectionLike, T: FromRedisValue>(&self, conn: &mut C, call: Call<T>) -> StoreResult<T> {
        self.run_if_written(conn, call, |_| true).await
    }

    /// [`Durability::run`] for a call that may refuse to write anything
    /// (`wrote` tells from its reply): then how many replicas the `WAIT`
    /// reached does not matter, and the reply says why it refused.
    pub async fn run_if_written<C: ConnectionLike, T: FromRedisValue>(
        &self,
        conn: &mut C,
        call: Call<T>,
        wrote: impl Fn(&T) -> bool,
    ) -> StoreResult<T> {
        if !self.waits() {
            return Ok(call.run(conn).await?);
        }
        let mut pipe = redis::pipe();
        call.add_to(&mut pipe);
        pipe.cmd("WAIT").arg(self.min_replicas).arg(self.timeout.as_millis() as u64);
        let mut replies: Vec<Value> = scripts::query(conn, &pipe).await?;
        let reached = replies.pop().and_then(|v| redis::from_redis_value(v).ok()).unwrap_or(0);
        let reply = T::from_redis_value(replies.pop().unwrap_or(Value::Nil)).map_err(redis::RedisError::from)?;
        if wrote(&reply) {
            self.check(reached)?;
        }
        Ok(reply)
    }

    /// Runs a pipeline of script calls to one partition and, when replicas
    /// are required, waits for them (a `WAIT` sent last, on the same
    /// connection, so to the same master); the calls' replies, in order.
    pub async fn run_all<C: ConnectionLike>(&self, conn: &mut C, mut pipe: Pipeline) -> StoreResult<Vec<Value>> {
        let calls = pipe.len();
        if self.waits() {
            pipe.cmd("WAIT").arg(self.min_replicas).arg(self.timeout.as_millis() as u64);
        }
        let mut replies: Vec<Value> = scripts::query(conn, &pipe).await?;
        if replies.len() > calls {
            let reached = replies.pop().and_then(|v| redis::from_redis_value(v).ok()).unwrap_or(0);
            self.check(reached)?;
        }
        Ok(replies)
    }

    /// Whether `reached` replicas are enough.
    fn check(&self, reached: u32) -> StoreResult<()> {
        if reached >= self.min_replicas {
            Ok(())
        } else {
            Err(StoreError::NotReplicated { wanted: self.min_replicas, reached })
        }
    }
}
