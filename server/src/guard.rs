//! Which requests the shop answers at all: those for its own host names,
//! and, when they change something, those from its own pages (or from an
//! origin in `CORS_ORIGINS`).
//!
//! - **Host.** With `PUBLIC_ORIGIN` set, a request for another `Host` is
//!   refused (421): a DNS name an attacker points at the shop (DNS
//!   rebinding) cannot read it through a victim's browser. Without it, a
//!   shop listening on loopback answers loopback names only (`localhost`,
//!   `127.0.0.1`, `[::1]`); one on a public address answers any name.
//!   `/healthz` and `/readyz` answer any name, for load balancers and probes.
//! - **Cross-site.** A request that is not `GET`, `HEAD` or `OPTIONS`, and
//!   whose `Origin` is not the shop's own nor listed in `CORS_ORIGINS`, is
//!   refused (403) before it changes anything; so is one without `Origin` that
//!   a browser marks `Sec-Fetch-Site: cross-site` or `same-site`. Clients
//!   that are not browsers send neither header and pass.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use store::admin::Https;

use crate::config::{host_of, Origin};
use crate::error::ErrorBody;

/// What the guard lets through.
#[derive(Debug, Clone, Default)]
pub struct SiteGuard {
    /// `PUBLIC_ORIGIN`: the shop's own origins (empty when unset).
    pub public: Arc<[Origin]>,
    /// Whether, without `PUBLIC_ORIGIN`, only loopback host names are
    /// answered (the shop listens on a loopback address).
    pub loopback_only: bool,
    /// `CORS_ORIGINS`: other origins whose pages may change things.
    pub cors: Arc<[String]>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownHost(String),
    CrossSite(String),
}

impl SiteGuard {
    /// Judges a request; `https` says how it reached the shop.
    pub fn judge(&self, method: &Method, path: &str, headers: &HeaderMap, https: bool) -> Result<(), Refusal> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").trim().to_ascii_lowercase();
        if !matches!(path, "/healthz" | "/readyz") && !self.host_allowed(&host) {
            return Err(Refusal::UnknownHost(host));
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        match headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("null").trim().to_ascii_lowercase()) {
            Some(origin) if self.origin_allowed(&origin, &host, https) => Ok(()),
            Some(origin) => Err(Refusal::CrossSite(origin)),
            None => {
                let site = headers.get("sec-fetch-site").and_then(|s| s.to_str().ok()).unwrap_or("");
                if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
                    Err(Refusal::CrossSite(format!("a {site} page")))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn host_allowed(&self, authority: &str) -> bool {
        let Some(host) = host_of(authority) else { return false };
        if !self.public.is_empty() {
            return self.public.iter().any(|origin| origin.host == host);
        }
        !self.loopback_only || is_loopback_name(host)
    }

    fn origin_allowed(&self, origin: &str, host: &str, https: bool) -> bool {
        let own = if self.public.is_empty() {
            let scheme = if https { "https" } else { "http" };
            origin == format!("{scheme}://{host}")
        } else {
            self.public.iter().any(|public| public.origin == origin)
        };
        own || self.cors.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

/// `localhost`, a name under `.localhost`, an IPv4 loopback address or `[::1]`.
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Middleware: answers a refused request with 421 or 403 and `{"error": ...}`.
pub async fn guard(State(guard): State<SiteGuard>, request: Request, next: Next) -> Response {
    let https = request.extensions().get::<Https>().is_some();
    match guard.judge(request.method(), request.uri().path(), request.headers(), https) {
        Ok(()) => next.run(request).await,
        Err(Refusal::UnknownHost(host)) => {
            tracing::debug!(%host, "refused a request for an unknown host");
            let error = format!("this server does not answer for the host {host:?}");
            (StatusCode::MISDIRECTED_REQUEST, Json(ErrorBody { error })).into_response()
        }
        Err(Refusal::CrossSite(origin)) => {
            tracing::warn!(%origin, path = request.uri().path(), "refused a cross-site request");
            let error = format!(
                "cross-site request refused: {origin} may not change this shop (list it in CORS_ORIGINS to allow it)"
            );
            (StatusCode::FORBIDDEN, Json(ErrorBody { error })).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (header::HeaderName::from_static(name), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    fn loopback() -> SiteGuard {
        SiteGuard { loopback_only: true, ..SiteGuard::default() }
    }

    #[test]
    fn a_loopback_shop_answers_loopback_names_only() {
        let guard = loopback();
        for host in ["127.0.0.1:3000", "localhost:3000", "app.localhost", "[::1]:3000", "127.8.9.1"] {
            assert_eq!(guard.judge(&Method::GET, "/", &headers(&[("host", host)]), false), Ok(()), "{host}");
        }
        for host in ["evil.example:3000", "10.0.0.1", ""] {
            assert!(
                matches!(
                    guard.judge(&Method::GET, "/", &headers(&[("host", host)]), false),
                    Err(Refusal::UnknownHost(_))
                ),
                "{host}"
            );
        }
        assert_eq!(guard.judge(&Method::GET, "/readyz", &headers(&[("host", "evil.example")]), false), Ok(()));
        let open = SiteGuard::default();
        assert_eq!(open.judge(&Method::GET, "/", &headers(&[("host", "shop.example")]), false), Ok(()));
    }

    #[test]
    fn with_a_public_origin_only_its_host_is_answered() {
        let guard = SiteGuard { public: vec![Origin::parse("https://shop.example").unwrap()].into(), ..loopback() };
        assert_eq!(guard.judge(&Method::GET, "/", &headers(&[("host", "Shop.Example")]), true), Ok(()));
        assert_eq!(guard.judge(&Method::GET, "/", &headers(&[("host", "shop.example:443")]), true), Ok(()));
        assert!(guard.judge(&Method::GET, "/", &headers(&[("host", "127.0.0.1")]), true).is_err());
        let post = |origin: &str| {
            guard.judge(&Method::POST, "/orders", &headers(&[("host", "shop.example"), ("origin", origin)]), true)
        };
        assert_eq!(post("https://shop.example"), Ok(()));
        assert!(post("http://shop.example").is_err(), "another scheme is another origin");
        assert!(post("https://evil.shop.example").is_err(), "a sibling is another origin");
    }

    #[test]
    fn changes_from_other_sites_are_refused_unless_listed_in_cors_origins() {
        let guard = SiteGuard { cors: vec!["https://partner.example".to_string()].into(), ..loopback() };
        let post = |pairs: &[(&'static str, &str)]| {
            let mut all = vec![("host", "127.0.0.1:3000")];
            all.extend_from_slice(pairs);
            guard.judge(&Method::POST, "/api/add_product", &headers(&all), false)
        };
        assert_eq!(post(&[("origin", "http://127.0.0.1:3000")]), Ok(()), "the shop's own page");
        assert_eq!(post(&[]), Ok(()), "no browser: curl, scripts");
        assert_eq!(post(&[("origin", "https://partner.example")]), Ok(()));
        assert!(matches!(post(&[("origin", "http://evil.example")]), Err(Refusal::CrossSite(_))));
        assert!(post(&[("origin", "null")]).is_err(), "a sandboxed page");
        assert!(post(&[("sec-fetch-site", "cross-site")]).is_err());
        assert!(post(&[("sec-fetch-site", "same-site")]).is_err());
        assert_eq!(post(&[("sec-fetch-site", "same-origin")]), Ok(()));
        let read = guard.judge(
            &Method::GET,
            "/orders",
            &headers(&[("host", "127.0.0.1"), ("origin", "http://evil.example")]),
            false,
        );
        assert_eq!(read, Ok(()), "reads are CORS's business: the browser hides the answer");
    }
}
