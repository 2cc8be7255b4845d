//! Stockflow's workers: the consumer loops that move orders through their life.
//!
//! # Layout
//! - [`consumer`]: the one generic loop (read group → apply → ack, reclaim,
//!   dead letters, shutdown), parameterised by a handler per stream.
//! - [`doorbell`]: which partitions' streams have new entries, from the scripts' pushes.
//! - [`payment`]: `order-placed` → completes orders after the payment delay.
//! - [`warehouse`]: `order-completed` → takes stock or initiates a refund.
//! - [`refunds`]: `refund-initiated` → marks orders refunded.
//! - [`trimmer`]: keeps the work streams bounded without dropping unprocessed entries.
//! - [`metrics`]: the order processing time, served at `WORKERS_METRICS_ADDR`.
//! - [`settings`]: the settings only the workers read.
//! - [`error`]: what stops a loop or fails a batch.
//!
//! Every loop is stateless apart from Redis: any number of workers processes
//! (each with its own `CONSUMER_NAME`) share the work of every group.

pub mod consumer;
pub mod doorbell;
pub mod error;
pub mod metrics;
pub mod payment;
pub mod refunds;
pub mod settings;
pub mod trimmer;
pub mod warehouse;

use std::str::FromStr;
use std::sync::Arc;

use store::{Config, Partition, PartitionKeys};

use crate::error::{WorkerError, WorkerResult};
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

/// Runs the given loops on every partition until `shutdown` is cancelled and
/// all of them have finished their work in flight.
pub async fn run(config: Config, roles: &[Role], shutdown: CancellationToken) -> WorkerResult<()> {
    let partitions: Vec<Partition> = config.layout.partitions().all().collect();
    run_partitions(config, roles, &partitions, shutdown).await
}

/// Runs the given loops on the given partitions: per role, one consumer loop
/// per set of partitions one blocking read can follow (all of them on a
/// single Redis, each alone on a cluster), each with its own blocking
/// reader, sharing one connection for everything else.
pub async fn run_partitions(
    config: Config,
    roles: &[Role],
    partitions: &[Partition],
    shutdown: CancellationToken,
) -> WorkerResult<()> {
    let maxlen = config.stream_maxlen;
    let writer = store::connection::connect(&config.redis)?;
    let payment = Arc::new(payment::Payment { delay: config.payment_delay });
    let warehouse = Arc::new(warehouse::Warehouse { status_maxlen: maxlen });
    let refunds = Arc::new(refunds::Refunds { status_maxlen: maxlen });
    let mut loops = tokio::task::JoinSet::new();
    let keys: Vec<PartitionKeys> = partitions.iter().map(|&p| config.layout.keys(p).clone()).collect();
    for set in config.redis.read_sets(keys.clone()) {
        for role in roles {
            let (set, writer, config, shutdown) = (set.clone(), writer.clone(), config.clone(), shutdown.clone());
            match role {
                Role::Payment => loops.spawn(consumer::run(payment.clone(), set, writer, config, shutdown)),
                Role::Warehouse => loops.spawn(consumer::run(warehouse.clone(), set, writer, config, shutdown)),
                Role::Refunds => loops.spawn(consumer::run(refunds.clone(), set, writer, config, shutdown)),
            };
        }
    }
    loops.spawn(trimmer::run(writer, keys, config.clone(), shutdown.clone()));
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
                result = Err(WorkerError::Panicked(panic.to_string()));
            }
        }
    }
    result
}
