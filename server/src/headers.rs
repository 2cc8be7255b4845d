//! The security headers of every answer.
//!
//! Pages get a `Content-Security-Policy` that runs only the shop's own
//! scripts and Leptos' inline ones, which carry a nonce made for that one
//! answer (the middleware makes it and hands it to the renderer, see
//! [`CspNonce`]); they may not be framed by any site. Swagger UI at `/docs`
//! gets a policy of its own (its inline styles). Every answer says
//! `nosniff` and keeps the address of the page from other sites; over
//! HTTPS, `Strict-Transport-Security` keeps browsers on HTTPS.

use axum::extract::Request;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use store::admin::Https;

/// The nonce of one answer's inline scripts, in the request's extensions:
/// the renderer puts it on every inline script it writes, and the policy
/// names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspNonce(pub String);

impl CspNonce {
    /// 128 random bits, base64url without padding (22 characters).
    pub fn new() -> CspNonce {
        let mut bytes = [0u8; 16];
        // The OS's random source failing is not something to serve pages through.
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        CspNonce(base64url(&bytes))
    }
}

impl Default for CspNonce {
    fn default() -> Self {
        CspNonce::new()
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            text.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    text
}

/// The policy of a page whose inline scripts carry `nonce` (none: no
/// inline script runs). WebAssembly needs `'wasm-unsafe-eval'`; during
/// `cargo leptos watch` the reload script also opens a WebSocket.
pub fn page_policy(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(nonce) => format!("'self' 'nonce-{nonce}' 'wasm-unsafe-eval'"),
        None => "'self' 'wasm-unsafe-eval'".to_string(),
    };
    let connect = if std::env::var_os("LEPTOS_WATCH").is_some() { "'self' ws: wss:" } else { "'self'" };
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self'; img-src 'self' data:; connect-src {connect}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Swagger UI's policy: its own files, and the inline styles it sets.
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Middleware: makes the nonce of a page about to be rendered, then sets
/// the security headers on the answer.
pub async fn security_headers(mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let docs = path == "/docs" || path.starts_with("/docs/");
    let may_render = matches!(*request.method(), Method::GET | Method::HEAD) && !path.starts_with("/pkg/") && !docs;
    let nonce = may_render.then(CspNonce::new);
    if let Some(nonce) = &nonce {
        request.extensions_mut().insert(nonce.clone());
    }
    let https = request.extensions().get::<Https>().is_some();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if https {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    let html = headers.get(CONTENT_TYPE).and_then(|t| t.to_str().ok()).is_some_and(|t| t.starts_with("text/html"));
    if html {
        let policy = if docs { DOCS_POLICY.to_string() } else { page_policy(nonce.as_ref().map(|n| n.0.as_str())) };
        if let Ok(policy) = HeaderValue::from_str(&policy) {
            headers.insert(CONTENT_SECURITY_POLICY, policy);
        }
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_22_url_safe_characters_and_differ() {
        let (a, b) = (CspNonce::new(), CspNonce::new());
        assert_eq!(a.0.len(), 22);
        assert!(a.0.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{}", a.0);
        assert_ne!(a, b);
        assert_eq!(base64url(b"\xfb\xff\x00"), "-_8A");
        assert_eq!(base64url(b"Ma"), "TWE");
    }

    #[test]
    fn a_pages_policy_runs_its_own_and_nonced_scripts_and_forbids_framing() {
        let policy = page_policy(Some("abc"));
        assert!(policy.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'") && !policy.contains("unsafe-inline"), "{policy}");
        assert!(!page_policy(None).contains("nonce"));
    }
}
