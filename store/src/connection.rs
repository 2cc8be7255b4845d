//! Connecting to Redis.
//!
//! Every connection is a lazily connecting [`ConnectionManager`]: a process
//! starts even while Redis is down, and after Redis comes back the next
//! command reconnects. Commands that fail meanwhile return errors that the
//! caller turns into a 503 or a retry with backoff.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisResult;

/// How long an ordinary command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

fn config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(1))
}

/// A shared connection for ordinary (non-blocking) commands.
pub fn connect(url: &str) -> RedisResult<ConnectionManager> {
    redis::Client::open(url)?.get_connection_manager_lazy(config(COMMAND_TIMEOUT))
}

/// A dedicated connection for a loop that blocks in XREAD/XREADGROUP for up to
/// `block`. Blocking commands hold up everything behind them on a connection,
/// so each blocking loop gets its own.
pub fn connect_blocking(url: &str, block: Duration) -> RedisResult<ConnectionManager> {
    redis::Client::open(url)?.get_connection_manager_lazy(config(block + COMMAND_TIMEOUT))
}

/// Exponential backoff for retrying while Redis is unreachable: 100 ms doubling to 5 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Duration::from_millis(100) }
    }
}

impl Backoff {
    /// The delay to wait now; each call doubles the next one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        delay
    }

    /// Back to the shortest delay after a success.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}
