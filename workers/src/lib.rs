//! Stockflow's workers: the consumer loops that move orders through their life.
//!
//! # Layout
//! - [`consumer`]: the one generic loop (read group → apply → ack, reclaim,
//!   dead letters, shutdown), parameterised by a handler per stream.
//! - [`payment`]: `order-placed` → completes orders after the payment delay.
//! - [`warehouse`]: `order-completed` → takes stock or initiates a refund.
//! - [`refunds`]: `refund-initiated` → marks orders refunded.
//! - [`trimmer`]: keeps the work streams bounded without dropping unprocessed entries.
//!
//! Every loop is stateless apart from Redis: any number of workers processes
//! (each with its own `CONSUMER_NAME`) share the work of every group.

pub mod consumer;
pub mod payment;
pub mod refunds;
pub mod trimmer;
pub mod warehouse;

use std::str::FromStr;

use store::Config;
use tokio_util::sync::CancellationToken;

/// One of the consumer loops; a process runs all of them unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Payment,
    Warehouse,
    Refunds,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Payment, Role::Warehouse, Role::Refunds];
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s.trim() {
            "payment" => Ok(Role::Payment),
            "warehouse" => Ok(Role::Warehouse),
            "refunds" | "refund" => Ok(Role::Refunds),
            other => Err(format!("unknown role {other:?} (expected payment, warehouse or refunds)")),
        }
    }
}

/// Runs the given loops until `shutdown` is cancelled and all of them have
/// finished their work in flight.
pub async fn run(config: Config, roles: &[Role], shutdown: CancellationToken) -> redis::RedisResult<()> {
    let maxlen = config.stream_maxlen;
    let mut loops = tokio::task::JoinSet::new();
    for role in roles {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        match role {
            Role::Payment => loops.spawn(consumer::run(
                payment::Payment { delay: config.payment_delay, status_maxlen: maxlen },
                config,
                shutdown,
            )),
            Role::Warehouse => {
                loops.spawn(consumer::run(warehouse::Warehouse { status_maxlen: maxlen }, config, shutdown))
            }
            Role::Refunds => loops.spawn(consumer::run(refunds::Refunds { status_maxlen: maxlen }, config, shutdown)),
        };
    }
    loops.spawn(trimmer::run(config.clone(), shutdown.clone()));
    let mut result = Ok(());
    while let Some(finished) = loops.join_next().await {
        match finished {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                // Only a bad REDIS_URL gets here; stop the others too.
                shutdown.cancel();
                result = Err(error);
            }
            Err(panic) => {
                shutdown.cancel();
                result = Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "a consumer loop panicked",
                    panic.to_string(),
                )));
            }
        }
    }
    result
}
