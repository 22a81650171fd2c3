//! The client's address, for per-address rate limits.
//!
//! It is the TCP peer's, unless the peer is one of `QUOTA_TRUSTED_PROXIES`:
//! then the proxy chain in `X-Forwarded-For` (or, without that header,
//! `Forwarded`) is read from the right, and the first address that is not
//! itself a trusted proxy is the client. Anything left of it was written by
//! the client and could say anything, so a client cannot choose its bucket by
//! sending `X-Forwarded-For`; and behind the proxy each client gets its own
//! bucket instead of all sharing the proxy's.
//!
//! `X-Forwarded-For` is preferred because it is what the documented nginx
//! setup appends to; `Forwarded` is read only when no `X-Forwarded-For` came,
//! so a proxy that sends only `Forwarded` must drop a client's
//! `X-Forwarded-For` (docs/DEPLOYMENT.md).

use axum::http::{header, HeaderMap};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};

/// The client address of a request from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_chain(headers).into_iter().rev() {
        match hop {
            Some(address) => {
                client = address.to_canonical();
                if !is_trusted(client, trusted) {
                    return client;
                }
            }
            // An entry that is no address (`unknown`, an obfuscated name,
            // junk): nothing left of it can be placed, so the request counts
            // against the last trusted hop.
            None => return client,
        }
    }
    client
}

/// The key of an address's rate-limit bucket: IPv4 addresses as they are,
/// IPv6 by /64, the block one subscriber usually gets (otherwise one host
/// would have 2^64 fresh buckets).
pub fn bucket(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

fn is_trusted(address: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&address))
}

/// The hops a request passed, oldest first; `None` for an unreadable entry.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff = headers.get_all("x-forwarded-for");
    if xff.iter().next().is_some() {
        // Several headers are one list, in order (RFC 9110 §5.3).
        return xff
            .iter()
            .flat_map(|value| match value.to_str() {
                Ok(text) => text.split(',').map(parse_node).collect(),
                Err(_) => vec![None],
            })
            .collect();
    }
    headers
        .get_all(header::FORWARDED)
        .iter()
        .flat_map(|value| match value.to_str() {
            // `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`
            Ok(text) => text
                .split(',')
                .map(|element| {
                    element
                        .split(';')
                        .filter_map(|pair| pair.trim().split_once('='))
                        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                        .and_then(|(_, node)| parse_node(node))
                })
                .collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// One hop: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`, `[2001:db8::1]:80`,
/// optionally quoted (as `Forwarded` writes IPv6 nodes).
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn with(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let spoofed = with(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &spoofed, &[]),
            ip("198.51.100.7")
        );
        let trusted = nets(&["127.0.0.1/32"]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &spoofed, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        // nginx appended the address it saw; the client wrote the rest.
        let chain = with(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9")]);
        assert_eq!(client_ip(peer, &chain, &trusted), ip("203.0.113.9"));
        // Two proxies: the inner one is skipped, being trusted.
        let chain = with(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(client_ip(peer, &chain, &trusted), ip("203.0.113.9"));
        // Split over several headers, in order.
        let chain = with(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(client_ip(peer, &chain, &trusted), ip("203.0.113.9"));
        // No header: the proxy itself (e.g. a health check on loopback).
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
        // Junk where the client should be: counted against the proxy.
        let chain = with(&[("x-forwarded-for", "6.6.6.6, unknown")]);
        assert_eq!(client_ip(peer, &chain, &trusted), peer);
        // IPv4-mapped peers are the same address.
        assert_eq!(
            client_ip(
                ip("::ffff:127.0.0.1"),
                &with(&[("x-forwarded-for", "203.0.113.9")]),
                &trusted
            ),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_is_read_only_without_x_forwarded_for() {
        let trusted = nets(&["127.0.0.1/32"]);
        let peer = ip("127.0.0.1");
        let forwarded = with(&[(
            "forwarded",
            r#"for=6.6.6.6;proto=https, for="[2001:db8::1]:4711";by=127.0.0.1"#,
        )]);
        assert_eq!(client_ip(peer, &forwarded, &trusted), ip("2001:db8::1"));
        let v4_port = with(&[("forwarded", "For=192.0.2.60:8080")]);
        assert_eq!(client_ip(peer, &v4_port, &trusted), ip("192.0.2.60"));
        let both = with(&[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(client_ip(peer, &both, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        assert_eq!(
            bucket(ip("2001:db8:1:2:aaaa::1")),
            bucket(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(bucket(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
