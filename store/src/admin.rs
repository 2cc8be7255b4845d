//! Who may change the warehouse: with `ADMIN_TOKEN` set, creating, deleting
//! and restocking products needs that token (REST: `Authorization: Bearer`)
//! or an admin session opened with it (the UI's sign-in, kept in an HttpOnly
//! cookie). Without `ADMIN_TOKEN` the shop is open, as the original was.
//!
//! Wrong tokens are rate limited per client address ([`GuessLimiter`]), so
//! that nobody can guess the token by trying many.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::connection::Redis;
use crate::error::StoreResult;
use crate::keys::Layout;

/// The cookie holding an admin session id.
pub const SESSION_COOKIE: &str = "stockflow_admin";
/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// A secret from the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The check every warehouse change passes.
#[derive(Clone)]
pub struct AdminGate {
    /// SHA-256 of `ADMIN_TOKEN`: comparing digests in constant time reveals
    /// neither the token's content nor its length.
    token_digest: Option<[u8; 32]>,
    conn: Redis,
    layout: Layout,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl AdminGate {
    pub fn new(token: Option<&Secret>, conn: Redis, layout: Layout) -> AdminGate {
        AdminGate { token_digest: token.map(|t| digest(&t.0)), conn, layout }
    }

    /// Whether changes need an admin at all (`ADMIN_TOKEN` is set).
    pub fn required(&self) -> bool {
        self.token_digest.is_some()
    }

    /// Whether `presented` is the admin token, compared in constant time.
    pub fn token_matches(&self, presented: &str) -> bool {
        match &self.token_digest {
            Some(expected) => bool::from(digest(presented).ct_eq(expected)),
            None => false,
        }
    }

    /// Opens a session for someone who presented the token; returns its id.
    pub async fn open_session(&self) -> StoreResult<String> {
        let id = new_session_id();
        let () = self.conn.clone().set_ex(self.layout.admin_session(&id), 1, SESSION_TTL.as_secs()).await?;
        Ok(id)
    }

    /// Whether `id` names a session that is still open.
    pub async fn session_is_open(&self, id: &str) -> StoreResult<bool> {
        if !is_session_id(id) {
            return Ok(false);
        }
        Ok(self.conn.clone().exists(self.layout.admin_session(id)).await?)
    }

    /// Signs a session out.
    pub async fn close_session(&self, id: &str) -> StoreResult<()> {
        if is_session_id(id) {
            let () = self.conn.clone().del(self.layout.admin_session(id)).await?;
        }
        Ok(())
    }
}

/// The address a request came from (its TCP peer), as the server puts it in
/// the request's extensions for the admin checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The address to use when the connection's peer is not known: every
    /// such request shares one allowance.
    pub const UNKNOWN: ClientAddr = ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
}

/// How many wrong admin tokens one client may send: `burst` in a row, then
/// one more every `interval` (a token bucket of failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessLimit {
    pub burst: u32,
    pub interval: Duration,
}

impl Default for GuessLimit {
    /// 10 wrong tokens in a row, then one per 30 s: a person's typos pass,
    /// a guessing script gets about 3,000 guesses a day.
    fn default() -> Self {
        GuessLimit { burst: 10, interval: Duration::from_secs(30) }
    }
}

/// Counts wrong admin tokens per client and refuses further tries from a
/// client that has used up its [`GuessLimit`], until it has waited.
///
/// In process, GCRA: each client has a "theoretical arrival time" `tat`;
/// every wrong token pushes it `interval` further, and a try is allowed while
/// `tat` is at most `(burst - 1) × interval` ahead of now. A try with the
/// right token costs nothing, so an admin who did not fail is never slowed.
/// IPv6 clients are counted per /64 (one subscriber's usual share), so that
/// walking the addresses of one network does not reset the count.
#[derive(Clone)]
pub struct GuessLimiter {
    limit: GuessLimit,
    clients: Arc<Mutex<Clients>>,
}

struct Clients {
    tat: HashMap<IpAddr, Instant>,
    /// Forget clients whose count ran out once the map is this large.
    prune_at: usize,
}

const PRUNE_AT_LEAST: usize = 1024;

impl GuessLimiter {
    pub fn new(limit: GuessLimit) -> GuessLimiter {
        let limit = GuessLimit { burst: limit.burst.max(1), interval: limit.interval.max(Duration::from_millis(1)) };
        GuessLimiter { limit, clients: Arc::new(Mutex::new(Clients { tat: HashMap::new(), prune_at: PRUNE_AT_LEAST })) }
    }

    pub fn limit(&self) -> GuessLimit {
        self.limit
    }

    /// Tries a token from `client`: `guess` compares it (`true`: right).
    /// `Err(wait)` when the client must wait that long before trying again,
    /// without comparing; else whether the token was right. A wrong one
    /// counts against the client. A client's tries are counted as they start,
    /// so that concurrent guesses cannot slip past the limit.
    pub fn attempt(&self, client: ClientAddr, guess: impl FnOnce() -> bool) -> Result<bool, Duration> {
        let key = counted_as(client.0);
        self.start(key, Instant::now())?;
        let right = guess();
        if right {
            self.refund(key);
        }
        Ok(right)
    }

    /// Counts a try by `key` at `now`, or says how long it must wait.
    fn start(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let GuessLimit { burst, interval } = self.limit;
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

    /// Gives back a try that turned out right.
    fn refund(&self, key: IpAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tat) = clients.tat.get_mut(&key) {
            *tat = tat.checked_sub(self.limit.interval).unwrap_or(*tat);
        }
    }
}

impl Default for GuessLimiter {
    fn default() -> Self {
        GuessLimiter::new(GuessLimit::default())
    }
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64.
fn counted_as(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// The whole seconds to send in `Retry-After` for a wait (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// 256 random bits, hex-encoded: unguessable.
fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    // The OS's random source failing is not something to serve requests through.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_session_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// The admin session id in a `Cookie` header value, if any.
pub fn session_from_cookies(cookies: &str) -> Option<&str> {
    cookies
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// The `Set-Cookie` value that keeps a session: HttpOnly (no script reads
/// it), SameSite=Strict (no other site sends it), for the whole site.
pub fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", SESSION_TTL.as_secs())
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn expired_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_tokens_and_session_cookies() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
        assert_eq!(session_from_cookies("a=1; stockflow_admin=xyz; b=2"), Some("xyz"));
        assert_eq!(session_from_cookies("stockflow_admin_other=1"), None);
    }

    #[test]
    fn session_ids_are_long_random_hex() {
        let (a, b) = (new_session_id(), new_session_id());
        assert!(is_session_id(&a) && is_session_id(&b));
        assert_ne!(a, b);
        assert!(!is_session_id("../../etc"));
    }

    fn wrong(limiter: &GuessLimiter, client: ClientAddr) -> Result<bool, Duration> {
        limiter.attempt(client, || false)
    }

    #[test]
    fn wrong_tokens_are_limited_per_client_and_right_ones_cost_nothing() {
        let limiter = GuessLimiter::new(GuessLimit { burst: 3, interval: Duration::from_secs(60) });
        let guesser = ClientAddr("192.0.2.7".parse().unwrap());
        let admin = ClientAddr("192.0.2.8".parse().unwrap());
        for _ in 0..20 {
            assert_eq!(limiter.attempt(admin, || true), Ok(true), "right tokens are never counted");
        }
        for _ in 0..3 {
            assert_eq!(wrong(&limiter, guesser), Ok(false));
        }
        let wait = wrong(&limiter, guesser).unwrap_err();
        assert!(wait > Duration::from_secs(59) && wait <= Duration::from_secs(60), "{wait:?}");
        let mut compared = false;
        assert!(limiter.attempt(guesser, || std::mem::replace(&mut compared, true)).is_err());
        assert!(!compared, "a throttled client's token is not even compared");
        assert_eq!(limiter.attempt(admin, || true), Ok(true), "another client is not slowed");
        assert_eq!(wrong(&limiter, admin), Ok(false), "and has its own count");
    }

    #[test]
    fn the_count_drains_at_one_per_interval() {
        let limiter = GuessLimiter::new(GuessLimit { burst: 2, interval: Duration::from_secs(10) });
        let key = counted_as("198.51.100.1".parse().unwrap());
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
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a = counted_as("2001:db8:1:2:aaaa::1".parse().unwrap());
        assert_eq!(a, counted_as("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap()));
        assert_ne!(a, counted_as("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(counted_as("::ffff:192.0.2.1".parse().unwrap()), counted_as("192.0.2.1".parse().unwrap()));
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn forgotten_clients_are_pruned() {
        let limiter = GuessLimiter::new(GuessLimit { burst: 1, interval: Duration::from_millis(1) });
        let start = Instant::now();
        for i in 0..(PRUNE_AT_LEAST as u32 * 3) {
            let key = IpAddr::V4(Ipv4Addr::from(i));
            limiter.start(key, start + Duration::from_millis(u64::from(i))).unwrap();
        }
        assert!(limiter.clients.lock().unwrap().tat.len() < PRUNE_AT_LEAST * 2);
    }

    #[test]
    fn the_session_cookie_is_http_only_and_same_site_strict() {
        let cookie = session_cookie("abc");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"));
        assert!(expired_session_cookie().contains("Max-Age=0"));
    }
}
