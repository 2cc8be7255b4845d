//! Who may change the warehouse: with `ADMIN_TOKEN` set, creating, deleting
//! and restocking products needs that token (REST: `Authorization: Bearer`)
//! or an admin session opened with it (the UI's sign-in, kept in an HttpOnly
//! cookie). Without `ADMIN_TOKEN` the shop is open, as the original was.
//!
//! A session belongs to the token it was opened with: it ends when
//! `ADMIN_TOKEN` changes, after `ADMIN_SESSION_IDLE_SECS` without use, and
//! [`SESSION_TTL`] after sign-in at the latest. Wrong tokens are rate limited
//! per client address ([`crate::limits::RateLimiter`]), so that nobody can
//! guess the token by trying many.

use std::fmt;
use std::time::Duration;

use redis::AsyncCommands;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::connection::Redis;
use crate::error::StoreResult;
use crate::keys::Layout;

/// The cookie holding an admin session id, over plain HTTP.
pub const SESSION_COOKIE: &str = "stockflow_admin";
/// The cookie holding an admin session id over HTTPS: the `__Host-` prefix
/// makes browsers accept it only with `Secure`, for the whole site, from
/// this very host (no sibling domain can set or shadow it).
pub const SECURE_SESSION_COOKIE: &str = "__Host-stockflow_admin";
/// How long a sign-in lasts at most, however busy.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// The shortest `ADMIN_TOKEN` accepted: 16 characters of a password
/// generator resist guessing at the limiter's pace for longer than any
/// deployment lives.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A secret from the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Its length in characters (the only thing about it that may be told).
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Marks a request that reached the site over HTTPS (the server puts it in
/// the request's extensions): the session cookie is then `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Https;

/// The check every warehouse change passes.
#[derive(Clone)]
pub struct AdminGate {
    /// SHA-256 of `ADMIN_TOKEN`: comparing digests in constant time reveals
    /// neither the token's content nor its length.
    token_digest: Option<[u8; 32]>,
    /// What a session opened with this token records (derived from the
    /// token, never the token itself): a session of another token is not open.
    session_mark: String,
    /// `ADMIN_SESSION_IDLE_SECS`: a session unused this long ends.
    idle: Duration,
    conn: Redis,
    layout: Layout,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl AdminGate {
    pub fn new(token: Option<&Secret>, idle: Duration, conn: Redis, layout: Layout) -> AdminGate {
        let session_mark = token
            .map(|t| {
                digest(&format!("stockflow admin session\0{}", t.0))[..16].iter().map(|b| format!("{b:02x}")).collect()
            })
            .unwrap_or_default();
        AdminGate { token_digest: token.map(|t| digest(&t.0)), session_mark, idle, conn, layout }
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
        let value = format!("{}:{}", self.session_mark, crate::now_ms());
        let () = self.conn.clone().set_ex(self.layout.admin_session(&id), value, self.idle.as_secs().max(1)).await?;
        Ok(id)
    }

    /// Whether `id` names a session that is still open, and if so keeps it
    /// open for another idle period: opened with the current token, used
    /// within the idle time, and younger than [`SESSION_TTL`].
    pub async fn session_is_open(&self, id: &str) -> StoreResult<bool> {
        if !is_session_id(id) || !self.required() {
            return Ok(false);
        }
        let value: Option<String> = redis::cmd("GETEX")
            .arg(self.layout.admin_session(id))
            .arg("EX")
            .arg(self.idle.as_secs().max(1))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(value.is_some_and(|value| self.is_current(&value, crate::now_ms())))
    }

    /// Whether a session's record says it was opened with this token, less
    /// than [`SESSION_TTL`] before `now_ms`.
    fn is_current(&self, record: &str, now_ms: u64) -> bool {
        let Some((mark, opened)) = record.split_once(':') else { return false };
        let same_token = bool::from(mark.as_bytes().ct_eq(self.session_mark.as_bytes()));
        let young = opened.parse::<u64>().is_ok_and(|opened| now_ms < opened + SESSION_TTL.as_millis() as u64);
        same_token && young
    }

    /// Signs a session out.
    pub async fn close_session(&self, id: &str) -> StoreResult<()> {
        if is_session_id(id) {
            let () = self.conn.clone().del(self.layout.admin_session(id)).await?;
        }
        Ok(())
    }
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

/// The admin session id in a `Cookie` header value, if any: the
/// `__Host-` cookie when there is one (only HTTPS can have set it).
pub fn session_from_cookies(cookies: &str) -> Option<&str> {
    let named = |wanted: &str| {
        cookies
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| value.trim())
    };
    named(SECURE_SESSION_COOKIE).or_else(|| named(SESSION_COOKIE))
}

/// The `Set-Cookie` value that keeps a session: HttpOnly (no script reads
/// it), SameSite=Strict (no other site sends it), for the whole site; over
/// HTTPS `Secure` and `__Host-` prefixed.
pub fn session_cookie(id: &str, https: bool) -> String {
    cookie(id, https, SESSION_TTL.as_secs())
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn expired_session_cookie(https: bool) -> String {
    cookie("", https, 0)
}

fn cookie(value: &str, https: bool, max_age: u64) -> String {
    let (name, secure) = if https { (SECURE_SESSION_COOKIE, "; Secure") } else { (SESSION_COOKIE, "") };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
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

    #[test]
    fn the_session_cookie_is_http_only_and_same_site_strict_and_secure_over_https() {
        let plain = session_cookie("abc", false);
        assert!(plain.starts_with("stockflow_admin=abc;"), "{plain}");
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict") && plain.contains("Path=/"));
        assert!(!plain.contains("Secure"));
        let secure = session_cookie("abc", true);
        assert!(secure.starts_with("__Host-stockflow_admin=abc;") && secure.ends_with("; Secure"), "{secure}");
        assert!(!secure.contains("Domain"), "a __Host- cookie has no Domain");
        assert!(expired_session_cookie(true).contains("Max-Age=0"));
        assert_eq!(session_from_cookies("stockflow_admin=a; __Host-stockflow_admin=b"), Some("b"));
    }

    fn gate(token: &str) -> AdminGate {
        let target = crate::RedisTarget::Single("redis://127.0.0.1:1".into());
        let layout = Layout::new("test", crate::Partitions::default()).unwrap();
        let conn = crate::connection::connect(&target).unwrap();
        AdminGate::new(Some(&Secret::new(token)), Duration::from_secs(60), conn, layout)
    }

    #[tokio::test]
    async fn a_session_belongs_to_its_token_and_ends_after_its_lifetime() {
        let (gate, other) = (gate("first-token-0123456789"), gate("second-token-0123456789"));
        let opened = 1_700_000_000_000u64;
        let record = format!("{}:{opened}", gate.session_mark);
        assert!(gate.is_current(&record, opened + 1));
        assert!(!other.is_current(&record, opened + 1), "a new ADMIN_TOKEN ends the sessions of the old one");
        assert!(!gate.session_mark.is_empty() && !record.contains("first-token"), "the record never holds the token");
        let end = opened + SESSION_TTL.as_millis() as u64;
        assert!(gate.is_current(&record, end - 1));
        assert!(!gate.is_current(&record, end), "12 hours at most, however busy");
        assert!(!gate.is_current("1", opened), "a record of the old format is no session");
    }
}
