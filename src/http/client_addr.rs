//! The client's address, for throttling sign-ins. Without configured proxies it is the socket's
//! peer. Behind a reverse proxy every request would otherwise come from the proxy (one lockout
//! would shut everyone out), so `LINECHAT_TRUSTED_PROXIES` names the proxies whose
//! `X-Forwarded-For` is believed: the address is the rightmost hop not in that list. Hops to
//! the left of it were written by the client itself and are never believed.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use ipnet::IpNet;

use crate::app::AppState;

/// The client's IP address as text (`unknown` when the server was not given peer addresses).
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip());
        Ok(ClientAddr(
            client_ip(peer, &parts.headers, &state.config.trusted_proxies)
                .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
        ))
    }
}

/// The rightmost address in the chain peer ← X-Forwarded-For that is not a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut ip = peer?.to_canonical();
    if !is_trusted(&ip) {
        return Some(ip);
    }
    // Several header lines count as one list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        // A hop that is not an address ends what can be believed: the proxy that passed it on
        // is the last address known.
        let Ok(hop) = hop.parse::<IpAddr>() else {
            return Some(ip);
        };
        ip = hop.to_canonical();
        if !is_trusted(&ip) {
            return Some(ip);
        }
    }
    Some(ip)
}

/// Parses one entry of `LINECHAT_TRUSTED_PROXIES`: an address or a network in CIDR notation.
pub fn parse_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an IP address or CIDR network (10.0.0.0/8)"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn xff(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let h = xff(&["1.2.3.4"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &[]), ip("10.0.0.5"));
    }

    #[test]
    fn a_trusted_proxy_passes_on_the_client() {
        let trusted = [parse_proxy("127.0.0.1").unwrap()];
        let h = xff(&["203.0.113.9"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn a_forged_left_hop_is_ignored() {
        // The client wrote "6.6.6.6" itself; the proxy appended the real address.
        let trusted = [parse_proxy("10.0.0.0/8").unwrap()];
        let h = xff(&["6.6.6.6, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_known_proxy() {
        let trusted = [parse_proxy("10.0.0.0/8").unwrap()];
        let h = xff(&["not-an-ip"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
        // No header at all: the proxy is all we know.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let trusted = [parse_proxy("127.0.0.1").unwrap()];
        let h = xff(&["2001:db8::1"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn parses_addresses_and_networks() {
        assert!(parse_proxy("192.168.0.0/16").is_ok());
        assert!(parse_proxy(" ::1 ").is_ok());
        assert!(parse_proxy("example.com").is_err());
        assert!(parse_proxy("10.0.0.0/33").is_err());
    }
}
