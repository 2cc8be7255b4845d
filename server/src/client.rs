//! Who a request comes from: its client address, which every per-client
//! limit counts by, and whether it reached the site over HTTPS.
//!
//! The client is the connection's TCP peer, unless that peer is one of
//! `TRUSTED_PROXIES`: then the address the proxy forwarded for
//! (`Forwarded: for=`, else `X-Forwarded-For`) counts, read from the right,
//! past any further trusted proxies, so a client cannot pose as another by
//! writing the header itself. Likewise the scheme: only a trusted proxy's
//! `X-Forwarded-Proto` (or `Forwarded: proto=`) is believed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use store::admin::Https;
use store::limits::ClientAddr;

/// What the server believes about where requests come from.
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    /// `TRUSTED_PROXIES`.
    pub trusted: Arc<[IpNet]>,
    /// Whether the site is served over HTTPS whatever a request says
    /// (`PUBLIC_ORIGIN` is an https origin).
    pub https_origin: bool,
}

impl Forwarding {
    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.trusted.iter().any(|net| net.contains(&addr))
    }

    /// The client and whether it came over HTTPS, for a request from `peer`.
    pub fn resolve(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> (ClientAddr, bool) {
        let Some(peer) = peer.map(canonical) else {
            return (ClientAddr::UNKNOWN, self.https_origin);
        };
        if !self.trusts(peer) {
            return (ClientAddr(peer), self.https_origin);
        }
        let chain = forwarded_for(headers);
        // From the nearest hop back: the first address no trusted proxy holds is
        // the client; if every hop is a trusted proxy, the farthest one is.
        let client = chain.iter().rev().copied().find(|addr| !self.trusts(*addr)).or(chain.first().copied());
        let https =
            self.https_origin || forwarded_proto(headers).is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        (ClientAddr(client.unwrap_or(peer)), https)
    }
}

/// An IPv4 address mapped into IPv6 (a dual-stack socket's peer) as IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses a chain of proxies forwarded for, farthest first: from
/// `Forwarded` when present (RFC 7239), else from `X-Forwarded-For`. An
/// entry that is not an address (`unknown`, an obfuscated name) breaks the
/// chain there: nothing before it can be trusted.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let forwarded: Vec<&str> = headers.get_all("forwarded").iter().filter_map(|v| v.to_str().ok()).collect();
    let entries: Vec<String> = if !forwarded.is_empty() {
        forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(|element| parameter(element, "for").unwrap_or_default())
            .collect()
    } else {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|entry| entry.trim().to_string())
            .collect()
    };
    let mut chain = Vec::new();
    for entry in entries.iter().rev() {
        match parse_node(entry) {
            Some(addr) => chain.push(canonical(addr)),
            None => break,
        }
    }
    chain.reverse();
    chain
}

/// The value of parameter `name` of one element of `Forwarded`
/// (`for=192.0.2.60;proto=https`), unquoted.
fn parameter(element: &str, name: &str) -> Option<String> {
    element
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// The scheme the nearest proxy says the client used.
fn forwarded_proto(headers: &HeaderMap) -> Option<String> {
    let from_forwarded = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|value| value.split(','))
        .next_back()
        .and_then(|element| parameter(element, "proto"));
    from_forwarded.or_else(|| {
        let value = headers.get("x-forwarded-proto")?.to_str().ok()?;
        Some(value.split(',').next_back()?.trim().to_string())
    })
}

/// Middleware: records the request's [`ClientAddr`], and [`Https`] when it
/// came over HTTPS, in its extensions. Without connection info (a router
/// not served by [`crate::serve`]) the client is [`ClientAddr::UNKNOWN`].
pub async fn identify(State(forwarding): State<Forwarding>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
    let (client, https) = forwarding.resolve(peer, request.headers());
    request.extensions_mut().insert(client);
    if https {
        request.extensions_mut().insert(Https);
    }
    next.run(request).await
}

/// The client a request was identified as (see [`identify`]).
pub fn client_of(extensions: &axum::http::Extensions) -> ClientAddr {
    extensions.get::<ClientAddr>().copied().unwrap_or(ClientAddr::UNKNOWN)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn forwarding(trusted: &[&str], https_origin: bool) -> Forwarding {
        let parse = |net: &&str| net.parse().unwrap_or_else(|_| IpNet::from(net.parse::<IpAddr>().unwrap()));
        Forwarding { trusted: trusted.iter().map(parse).collect(), https_origin }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_it_writes() {
        let forwarding = forwarding(&[], false);
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.9"), ("x-forwarded-proto", "https")]);
        assert_eq!(
            forwarding.resolve(ip("203.0.113.5"), &spoofed),
            (ClientAddr("203.0.113.5".parse().unwrap()), false)
        );
        assert_eq!(forwarding.resolve(None, &spoofed), (ClientAddr::UNKNOWN, false));
    }

    #[test]
    fn a_trusted_proxy_is_believed_from_the_right_past_other_trusted_hops() {
        let forwarding = forwarding(&["10.0.0.0/8", "127.0.0.1"], false);
        // The client wrote a fake first entry; the edge proxy appended the real
        // address, an inner proxy its own.
        let chain =
            headers(&[("x-forwarded-for", "198.51.100.9, 203.0.113.5, 10.1.2.3"), ("x-forwarded-proto", "https")]);
        assert_eq!(forwarding.resolve(ip("127.0.0.1"), &chain), (ClientAddr("203.0.113.5".parse().unwrap()), true));
        // An untrusted peer's headers count for nothing.
        assert_eq!(forwarding.resolve(ip("192.0.2.1"), &chain), (ClientAddr("192.0.2.1".parse().unwrap()), false));
        // Dual-stack peers are IPv4 too.
        assert_eq!(forwarding.resolve(ip("::ffff:127.0.0.1"), &chain).0, ClientAddr("203.0.113.5".parse().unwrap()));
        // A proxy that sent nothing: the proxy is the client.
        assert_eq!(forwarding.resolve(ip("127.0.0.1"), &HeaderMap::new()).0, ClientAddr("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn forwarded_is_preferred_and_its_forms_are_read() {
        let forwarding = forwarding(&["127.0.0.0/8"], false);
        let standard = headers(&[
            ("forwarded", r#"for="[2001:db8::7]:4711";proto=http, for=192.0.2.60;proto=https;by=127.0.0.1"#),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(forwarding.resolve(ip("127.0.0.1"), &standard), (ClientAddr("192.0.2.60".parse().unwrap()), true));
        let unknown = headers(&[("forwarded", "for=unknown, for=127.0.0.5")]);
        assert_eq!(forwarding.resolve(ip("127.0.0.1"), &unknown).0, ClientAddr("127.0.0.5".parse().unwrap()));
    }

    #[test]
    fn an_https_public_origin_is_https_for_everyone() {
        let forwarding = forwarding(&[], true);
        assert!(forwarding.resolve(ip("192.0.2.1"), &HeaderMap::new()).1);
    }
}
