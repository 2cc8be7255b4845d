//! Who may change the warehouse: with `ADMIN_TOKEN` set, creating, deleting
//! and restocking products needs that token (REST: `Authorization: Bearer`)
//! or an admin session opened with it (the UI's sign-in, kept in an HttpOnly
//! cookie). Without `ADMIN_TOKEN` the shop is open, as the original was.

use std::fmt;
use std::time::Duration;

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

    #[test]
    fn the_session_cookie_is_http_only_and_same_site_strict() {
        let cookie = session_cookie("abc");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"));
        assert!(expired_session_cookie().contains("Max-Age=0"));
    }
}
