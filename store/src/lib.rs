//! Everything Stockflow keeps in Redis, and the settings and shutdown signal
//! both binaries share.
//!
//! Nothing outside this crate builds a key name or holds a Lua script: the
//! server and the workers ask [`Shop`] for products and orders, and use
//! [`streams`] and [`scripts`] for the event flow.
//!
//! # Layout
//! - [`admin`]: the admin gate (`ADMIN_TOKEN`, sessions) for warehouse changes.
//! - [`bulk`]: many products and orders written at once, for load tests and benchmarks.
//! - [`limits`]: per-client rate limits, and the client address they count by.
//! - [`config`]: the one `Config`, read from environment variables.
//! - [`partition`]: the partitions data is split into, and which one an id is in.
//! - [`keys`]: every key, stream and consumer-group name (the key layout).
//! - [`records`]: the order and product hashes: field names, to and from the domain's records.
//! - [`ids`]: product and order ids (ULIDs that carry their partition and
//!   increase within a process).
//! - [`deployment`]: the start-up check that Redis holds this deployment's layout.
//! - [`migrate`]: `workers migrate`, from the layout before partitions.
//! - [`durability`]: waiting for replicas (`REDIS_MIN_REPLICAS`).
//! - [`scripts`]: the Lua scripts that make each status change atomic.
//! - [`connection`]: one Redis or a cluster behind one type, with reconnection.
//! - [`shop`]: the service layer for products and orders, shared by REST and server functions.
//! - [`merge`]: one page of ids from several indexes, merged by id.
//! - [`indexes`]: the search indexes built for data older than them.
//! - [`streams`]: stream entries as typed events, and those the scripts push.
//! - [`subscription`]: a subscription to the shard channels the scripts push on.
//! - [`observe`]: orders by status, stream backlogs and Redis' health, for metrics.
//! - [`telemetry`]: logs (text or JSON) and traces over OTLP, for both binaries.
//! - [`dead_letters`]: the dead letters of every stream, listed, retried, discarded.
//! - [`error`]: the error type of this layer.
//! - [`shutdown`]: SIGTERM / ctrl-c as a cancellation token.

pub mod admin;
pub mod bulk;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod dead_letters;
pub mod deployment;
pub mod durability;
pub mod error;
pub mod ids;
pub mod indexes;
pub mod keys;
pub mod limits;
pub mod merge;
pub mod migrate;
pub mod observe;
pub mod partition;
pub mod placing;
pub mod records;
pub mod scripts;
pub mod shop;
pub mod shutdown;
pub mod streams;
pub mod subscription;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use admin::AdminGate;
pub use config::Config;
pub use connection::{Redis, RedisTarget};
pub use error::{StoreError, StoreResult};
pub use ids::parse_id;
pub use keys::{Layout, PartitionKeys, Stream};
pub use partition::{Partition, Partitions};
pub use shop::{CreatedProduct, OrderFilter, Placed, Shop};

/// Milliseconds since the Unix epoch, the unit of every timestamp we store.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
