//! Shared by the workers' integration tests: the real workers binary as a
//! separate process.

use testkit::{Process, RedisServer};

pub const WORKERS_BIN: &str = env!("CARGO_BIN_EXE_workers");

/// Starts `workers` against `redis` with quick reclaim and shutdown, plus `extra` settings.
pub fn spawn_workers(redis: &RedisServer, name: &str, extra: &[(&str, &str)]) -> Process {
    let mut env = vec![
        ("REDIS_URL", redis.url()),
        ("CONSUMER_NAME", name.to_string()),
        ("PAYMENT_DELAY_MS", "0".to_string()),
        ("CLAIM_IDLE_MS", "500".to_string()),
        ("READ_BLOCK_MS", "200".to_string()),
        ("RUST_LOG", "workers=warn,store=warn".to_string()),
    ];
    for (key, value) in extra {
        env.retain(|(k, _)| k != key);
        env.push((key, value.to_string()));
    }
    Process::spawn(name, WORKERS_BIN, &[], &env)
}
