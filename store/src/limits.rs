//! Per-client limits: who a client is (its address) and how often it may do
//! something (a rate), kept in process.
//!
//! Every limit of the server counts by [`ClientAddr`]: the connection's peer,
//! or, behind a trusted reverse proxy, the address the proxy says it
//! forwarded for. IPv6 clients count per /64 (one subscriber's usual share),
//! so that walking the addresses of one network does not reset a count.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The address a request came from, as the server puts it in the request's
/// extensions for every per-client limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The address to use when the client is not known: every such request
    /// shares one allowance.
    pub const UNKNOWN: ClientAddr = ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED));

    /// The key the client is counted under: its IPv4 address, or its IPv6 /64.
    pub fn counted_as(self) -> IpAddr {
        match self.0 {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
            },
        }
    }
}

/// How often a client may do something: `burst` times in a row, then once
/// more every `interval` (a token bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub interval: Duration,
}

impl Rate {
    /// `per_second` a second on average, `burst` in a row; `None` for 0
    /// (no limit).
    pub fn per_second(per_second: u32, burst: u32) -> Option<Rate> {
        (per_second > 0).then(|| Rate { burst: burst.max(1), interval: Duration::from_secs(1) / per_second })
    }

    /// `per_minute` a minute on average, `burst` in a row; `None` for 0
    /// (no limit).
    pub fn per_minute(per_minute: u32, burst: u32) -> Option<Rate> {
        (per_minute > 0).then(|| Rate { burst: burst.max(1), interval: Duration::from_secs(60) / per_minute })
    }
}

/// Counts what each client did and refuses it once it used up its [`Rate`],
/// until it has waited.
///
/// GCRA: each client has a "theoretical arrival time" `tat`; every counted
/// act pushes it `interval` further, and an act is allowed while `tat` is at
/// most `(burst - 1) × interval` ahead of now. A client that has waited long
/// enough is forgotten, so the map holds only clients that are being limited.
#[derive(Clone)]
pub struct RateLimiter {
    rate: Rate,
    clients: Arc<Mutex<Clients>>,
}

struct Clients {
    tat: HashMap<IpAddr, Instant>,
    /// Forget clients whose count ran out once the map is this large.
    prune_at: usize,
}

const PRUNE_AT_LEAST: usize = 1024;

impl RateLimiter {
    pub fn new(rate: Rate) -> RateLimiter {
        let rate = Rate { burst: rate.burst.max(1), interval: rate.interval.max(Duration::from_micros(1)) };
        RateLimiter { rate, clients: Arc::new(Mutex::new(Clients { tat: HashMap::new(), prune_at: PRUNE_AT_LEAST })) }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Counts one act of `client` now, or says how long it must wait first
    /// (nothing is counted then).
    pub fn check(&self, client: ClientAddr) -> Result<(), Duration> {
        self.start(client.counted_as(), Instant::now())
    }

    /// Tries an act whose cost is known only afterwards: `act` runs when the
    /// client may act, and an act that returns `true` is given back (a right
    /// admin token costs nothing). `Err(wait)` when the client must wait that
    /// long first, without running `act`. Acts are counted as they start, so
    /// that concurrent ones cannot slip past the limit.
    pub fn attempt(&self, client: ClientAddr, act: impl FnOnce() -> bool) -> Result<bool, Duration> {
        let key = client.counted_as();
        self.start(key, Instant::now())?;
        let free = act();
        if free {
            self.refund(key);
        }
        Ok(free)
    }

    /// Counts an act by `key` at `now`, or says how long it must wait.
    fn start(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let Rate { burst, interval } = self.rate;
        let mut clients = self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tat = clients.tat.get(&key).copied().filter(|tat| *tat > now).unwrap_or(now);
        let allowed_until = now + interval * (burst - 1);
        if tat > allowed_until {
            return Err(tat - allowed_until);
        }
        clients.tat.insert(key, tat + interval);
        if clients.tat.len() >= clients.prune_at {
            clients.tat.retain(|_, tat| *tat > now);
            clients.prune_at = (clients.tat.len() * 2).max(PRUNE_AT_LEAST);
        }
        Ok(())
    }

    /// Gives back an act that turned out free.
    fn refund(&self, key: IpAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tat) = clients.tat.get_mut(&key) {
            *tat = tat.checked_sub(self.rate.interval).unwrap_or(*tat);
        }
    }
}

/// Every per-client limit of the server, handed to the REST handlers and the
/// UI's server functions alike.
#[derive(Clone)]
pub struct ClientLimits {
    /// Wrong admin tokens (`ADMIN_GUESS_BURST`, `ADMIN_GUESS_INTERVAL_SECS`),
    /// over REST and the UI's sign-in together.
    pub admin_guesses: RateLimiter,
    /// Orders placed (`ORDER_RATE_PER_CLIENT`); `None`: no limit.
    pub orders: Option<RateLimiter>,
    /// Page renders and searches (`SEARCH_RATE_PER_CLIENT`); `None`: no limit.
    pub searches: Option<RateLimiter>,
}

impl ClientLimits {
    /// Counts an order of `client`, or says how long it must wait first.
    pub fn order(&self, client: ClientAddr) -> Result<(), Duration> {
        self.orders.as_ref().map_or(Ok(()), |limit| limit.check(client))
    }

    /// Counts a page render or search of `client`, or says how long it must wait first.
    pub fn search(&self, client: ClientAddr) -> Result<(), Duration> {
        self.searches.as_ref().map_or(Ok(()), |limit| limit.check(client))
    }
}

/// The whole seconds to send in `Retry-After` for a wait (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(text: &str) -> ClientAddr {
        ClientAddr(text.parse().unwrap())
    }

    #[test]
    fn acts_are_limited_per_client_and_free_ones_cost_nothing() {
        let limiter = RateLimiter::new(Rate { burst: 3, interval: Duration::from_secs(60) });
        let (guesser, admin) = (client("192.0.2.7"), client("192.0.2.8"));
        for _ in 0..20 {
            assert_eq!(limiter.attempt(admin, || true), Ok(true), "free acts are never counted");
        }
        for _ in 0..3 {
            assert_eq!(limiter.attempt(guesser, || false), Ok(false));
        }
        let wait = limiter.attempt(guesser, || false).unwrap_err();
        assert!(wait > Duration::from_secs(59) && wait <= Duration::from_secs(60), "{wait:?}");
        let mut ran = false;
        assert!(limiter.attempt(guesser, || std::mem::replace(&mut ran, true)).is_err());
        assert!(!ran, "a throttled client's act does not even run");
        assert_eq!(limiter.attempt(admin, || true), Ok(true), "another client is not slowed");
        assert!(limiter.check(admin).is_ok(), "and has its own count");
    }

    #[test]
    fn the_count_drains_at_one_per_interval() {
        let limiter = RateLimiter::new(Rate { burst: 2, interval: Duration::from_secs(10) });
        let key = client("198.51.100.1").counted_as();
        let start = Instant::now();
        assert!(limiter.start(key, start).is_ok());
        assert!(limiter.start(key, start).is_ok());
        assert_eq!(limiter.start(key, start), Err(Duration::from_secs(10)));
        assert_eq!(limiter.start(key, start + Duration::from_secs(4)), Err(Duration::from_secs(6)));
        assert!(limiter.start(key, start + Duration::from_secs(10)).is_ok(), "one more after one interval");
        assert!(limiter.start(key, start + Duration::from_secs(10)).is_err());
        assert!(limiter.start(key, start + Duration::from_secs(40)).is_ok(), "all back after burst × interval");
        assert!(limiter.start(key, start + Duration::from_secs(40)).is_ok());
    }

    #[test]
    fn a_rate_per_second_spreads_its_acts() {
        assert_eq!(Rate::per_second(0, 10), None, "0 is no limit");
        assert_eq!(Rate::per_second(4, 0), Some(Rate { burst: 1, interval: Duration::from_millis(250) }));
        assert_eq!(Rate::per_minute(2, 5), Some(Rate { burst: 5, interval: Duration::from_secs(30) }));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a = client("2001:db8:1:2:aaaa::1").counted_as();
        assert_eq!(a, client("2001:db8:1:2:ffff:ffff:ffff:ffff").counted_as());
        assert_ne!(a, client("2001:db8:1:3::1").counted_as());
        assert_eq!(client("::ffff:192.0.2.1").counted_as(), client("192.0.2.1").counted_as());
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn forgotten_clients_are_pruned() {
        let limiter = RateLimiter::new(Rate { burst: 1, interval: Duration::from_millis(1) });
        let start = Instant::now();
        for i in 0..(PRUNE_AT_LEAST as u32 * 3) {
            let key = IpAddr::V4(Ipv4Addr::from(i));
            limiter.start(key, start + Duration::from_millis(u64::from(i))).unwrap();
        }
        assert!(limiter.clients.lock().unwrap().tat.len() < PRUNE_AT_LEAST * 2);
    }
}
