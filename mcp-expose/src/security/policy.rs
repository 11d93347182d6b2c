//! Host and Origin validation (DNS-rebinding protection) for the MCP endpoints, what trusted
//! proxies report (`X-Forwarded-Host`, the client's address).

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    extract::Request,
    http::{HeaderMap, header},
};

use crate::web::{ClientAddr, Refusal, canonical};

/// The hosts every server accepts: loopback names.
pub(crate) const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Which `Host` and `Origin` values a request may carry.
#[derive(Debug, Clone)]
pub(crate) struct HostPolicy {
    hosts: Arc<[String]>,
    origins: Arc<[String]>,
    any_host: bool,
    /// Peers whose `X-Forwarded-Host` / `X-Forwarded-Proto` / client address are believed.
    trusted_proxies: Arc<[ipnet::IpNet]>,
    /// The tunnel's public hostname, which changes when a quick tunnel restarts.
    tunnel_host: Arc<RwLock<Option<String>>>,
    /// A tunnel is up: loopback peers are (or may be) cloudflared, whose `Cf-Connecting-IP` names
    /// the client.
    tunneled: Arc<AtomicBool>,
}

/// Where a client reached the server, as a trusted proxy says: `https://mcp.example.com`.
/// Put in the request's extensions by [`screen`].
#[derive(Debug, Clone)]
pub(crate) struct PublicOrigin(pub(crate) String);

impl HostPolicy {
    /// `extra_hosts` adds to the loopback names (`*` allows any host); `origins` are full
    /// origins (`https://app.example.com`) allowed besides those whose host is allowed (`*`:
    /// any origin).
    pub(crate) fn new(extra_hosts: &[String], origins: &[String]) -> Self {
        let any_host = extra_hosts.iter().any(|h| h == "*");
        let hosts = LOOPBACK_HOSTS
            .iter()
            .map(|h| (*h).to_owned())
            .chain(
                extra_hosts
                    .iter()
                    .filter(|h| *h != "*")
                    .map(|h| h.trim().to_ascii_lowercase()),
            )
            .collect();
        let origins = origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Self {
            hosts,
            origins,
            any_host,
            trusted_proxies: Arc::from([]),
            tunnel_host: Arc::default(),
            tunneled: Arc::default(),
        }
    }

    /// Believes `X-Forwarded-Host` from these peers only.
    pub(crate) fn with_trusted_proxies(mut self, proxies: &[ipnet::IpNet]) -> Self {
        self.trusted_proxies = proxies.iter().map(ipnet::IpNet::trunc).collect();
        self
    }

    fn trusts(&self, peer: Option<IpAddr>) -> bool {
        let Some(peer) = peer else { return false };
        let peer = canonical(peer);
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// Where a request comes from. From a trusted proxy: the client it names in
    /// `Cf-Connecting-IP`, else the last `X-Forwarded-For` entry (the one the proxy added). From
    /// a loopback peer while a tunnel is up: the `Cf-Connecting-IP` cloudflared passes on from
    /// Cloudflare's edge (which sets it itself, whatever the client sent). Otherwise the peer.
    pub(crate) fn client(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        let peer = peer.map(canonical);
        let reported = if self.trusts(peer) {
            header_addr(headers, "cf-connecting-ip")
                .or_else(|| last_value(headers, "x-forwarded-for").and_then(parse_addr))
        } else if peer.is_some_and(|p| p.is_loopback()) && self.tunneled.load(Ordering::Relaxed) {
            header_addr(headers, "cf-connecting-ip")
        } else {
            None
        };
        reported.or(peer)
    }

    /// Accepts `host` (and no longer the previous tunnel hostname); `None` when the tunnel stops.
    #[cfg_attr(not(feature = "tunnel"), allow(dead_code))]
    pub(crate) fn set_tunnel_host(&self, host: Option<String>, up: bool) {
        *self.tunnel_host.write().unwrap_or_else(|e| e.into_inner()) =
            host.map(|h| h.to_ascii_lowercase());
        self.tunneled.store(up, Ordering::Relaxed);
    }

    /// The tunnel's public hostname, while a tunnel is up.
    #[cfg_attr(not(feature = "oauth"), allow(dead_code))]
    pub(crate) fn tunnel_host(&self) -> Option<String> {
        self.tunnel_host
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn host_allowed(&self, authority: &str) -> bool {
        let authority = authority.trim().to_ascii_lowercase();
        let host = strip_port(&authority);
        self.any_host
            || self.hosts.iter().any(|h| *h == authority || h == host)
            || self
                .tunnel_host
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .as_deref()
                == Some(host)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        if self.origins.contains(&origin) || self.origins.iter().any(|o| o == "*") {
            return true;
        }
        match origin.split_once("://") {
            Some(("http" | "https", authority)) => self.host_allowed(authority),
            _ => false,
        }
    }

    /// Checks the Host (or, from a trusted proxy, the forwarded host) and the Origin; returns
    /// the public origin a trusted proxy reported.
    /// `authority` is the request URI's (HTTP/2 sends `:authority` instead of `Host`).
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        authority: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Result<Option<PublicOrigin>, Denied> {
        let forwarded = self
            .trusts(peer)
            .then(|| last_value(headers, "x-forwarded-host"))
            .flatten();
        // Two Host headers are two answers to one question (RFC 9112 §3.2: 400).
        if headers.get_all(header::HOST).iter().nth(1).is_some() {
            return Err(Denied::Malformed(
                "Bad Request: more than one Host header".to_owned(),
            ));
        }
        let host = forwarded
            .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
            .or(authority);
        match host {
            Some(host) if !valid_authority(host) => {
                return Err(Denied::Malformed(format!(
                    "Bad Request: Host `{}` is not a host[:port]",
                    host.escape_default()
                )));
            }
            Some(host) if self.host_allowed(host) => {}
            Some(host) => {
                return Err(Denied::Foreign(format!(
                    "Forbidden: Host `{host}` is not allowed (see --allowed-host)"
                )));
            }
            None => {
                return Err(Denied::Malformed(
                    "Bad Request: missing Host header".to_owned(),
                ));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin) {
                return Err(Denied::Foreign(format!(
                    "Forbidden: Origin `{origin}` is not allowed (see --allowed-origin)"
                )));
            }
        }
        Ok(forwarded.map(|host| {
            let proto = last_value(headers, "x-forwarded-proto")
                .filter(|p| matches!(*p, "http" | "https"))
                .unwrap_or("https");
            PublicOrigin(format!("{proto}://{}", host.to_ascii_lowercase()))
        }))
    }
}

/// The last of a header's values: the one the trusted proxy in front of us set (anything
/// before it came from further out, perhaps from the client).
fn last_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    let last = value.rsplit(',').next()?.trim();
    (!last.is_empty()).then_some(last)
}

/// A header holding one address (the last, if repeated).
fn header_addr(headers: &HeaderMap, name: &str) -> Option<IpAddr> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    parse_addr(value.trim())
}

/// `1.2.3.4`, `2001:db8::1`, `1.2.3.4:5678`, `[2001:db8::1]:5678`.
fn parse_addr(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(canonical)
}

/// `host:port`, `[v6]:port`, `host` -> host.
/// Why the policy refused a request.
#[derive(Debug)]
pub(crate) enum Denied {
    /// A Host that is no host (duplicated, missing, or not `host[:port]`): 400.
    Malformed(String),
    /// A foreign Host or Origin: 403.
    Foreign(String),
}

/// `host[:port]` with a DNS name or IPv4 address (letters, digits, `-`, `.`, `_`) or a
/// bracketed IPv6 address, and a port of digits: what a Host header may hold.
fn valid_authority(authority: &str) -> bool {
    let port_ok = |port: &str| {
        !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
    };
    if let Some(rest) = authority.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        return ip.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && port.is_none_or(port_ok)
}

/// Whether a host, with or without a port (`localhost:8000`, `[::1]`, `127.0.0.2`), names
/// this machine's loopback.
pub(crate) fn is_loopback_name(authority: &str) -> bool {
    let authority = authority.trim().to_ascii_lowercase();
    let host = strip_port(&authority);
    LOOPBACK_HOSTS.contains(&host) || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => authority,
    }
}

/// Refuses a foreign Host or Origin (403 with a JSON body); otherwise the client's address and
/// the public origin a trusted proxy names go into the request's extensions.
pub(crate) fn screen(policy: &HostPolicy, request: &mut Request) -> Result<(), Refusal> {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let authority = request.uri().authority().map(|a| a.as_str());
    match policy.check(request.headers(), authority, peer) {
        Ok(origin) => {
            // Kept only when a proxy named someone else: the peer is in the extensions already.
            if let Some(client) = policy.client(request.headers(), peer)
                && Some(client) != peer
            {
                request.extensions_mut().insert(ClientAddr(client));
            }
            if let Some(origin) = origin {
                request.extensions_mut().insert(origin);
            }
            Ok(())
        }
        Err(denied) => {
            crate::observe::metrics::rejected("host");
            Err(match denied {
                Denied::Malformed(message) => {
                    tracing::debug!(%message, "rejected request");
                    Refusal::Malformed(message)
                }
                Denied::Foreign(message) => {
                    tracing::warn!(%message, "rejected request");
                    Refusal::Host(message)
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    impl HostPolicy {
        fn check_plain(&self, headers: &HeaderMap) -> Result<(), Denied> {
            self.check(headers, None, None).map(drop)
        }
    }

    #[test]
    fn hosts_that_are_no_host_are_malformed() {
        for good in [
            "localhost",
            "127.0.0.1:8000",
            "[::1]",
            "[::1]:80",
            "a-b.example.com",
        ] {
            assert!(valid_authority(good), "{good}");
        }
        for bad in [
            "[::1]evil",
            "[::1",
            "a b",
            "host:",
            "host:80x",
            "a@b",
            "[nope]",
            "",
            "h:123456",
        ] {
            assert!(!valid_authority(bad), "{bad}");
        }
        let p = HostPolicy::new(&[], &[]);
        let mut h = HeaderMap::new();
        h.append(header::HOST, "localhost".parse().expect("value"));
        h.append(header::HOST, "evil.example.com".parse().expect("value"));
        assert!(matches!(p.check_plain(&h), Err(Denied::Malformed(_))));
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "[::1]evil".parse().expect("value"));
        assert!(matches!(p.check_plain(&h), Err(Denied::Malformed(_))));
    }

    #[test]
    fn forwarded_host_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let stranger: IpAddr = "192.0.2.7".parse().expect("ip");
        let p = HostPolicy::new(&["mcp.example.com".into()], &[])
            .with_trusted_proxies(&["10.0.0.0/8".parse().expect("net")]);
        let mut h = headers("backend:8000", None);
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("spoofed.example, mcp.example.com"),
        );
        let origin = p
            .check(&h, None, Some(proxy))
            .expect("allowed")
            .expect("origin");
        assert_eq!(origin.0, "https://mcp.example.com");
        // From anyone else the header is ignored and the real Host is foreign.
        assert!(p.check(&h, None, Some(stranger)).is_err());
        assert!(p.check(&h, None, None).is_err());
        // A trusted proxy cannot smuggle in a foreign host either.
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("evil.example.com"),
        );
        assert!(p.check(&h, None, Some(proxy)).is_err());
        // IPv4-mapped IPv6 peers match IPv4 networks.
        let mapped: IpAddr = "::ffff:10.9.9.9".parse().expect("ip");
        let mut h = headers("127.0.0.1", None);
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("mcp.example.com"),
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        let origin = p
            .check(&h, None, Some(mapped))
            .expect("allowed")
            .expect("origin");
        assert_eq!(origin.0, "http://mcp.example.com");
    }

    #[test]
    fn client_addresses_only_from_trusted_proxies_and_the_tunnel() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let p =
            HostPolicy::new(&[], &[]).with_trusted_proxies(&["10.0.0.0/8".parse().expect("net")]);
        let mut h = headers("127.0.0.1", None);
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("192.0.2.66, 198.51.100.2:4321"),
        );
        // A trusted proxy's last X-Forwarded-For entry, port and all; Cf-Connecting-IP first.
        assert_eq!(p.client(&h, Some(ip("10.1.2.3"))), Some(ip("198.51.100.2")));
        h.insert("cf-connecting-ip", HeaderValue::from_static("2001:db8::7"));
        assert_eq!(
            p.client(&h, Some(ip("::ffff:10.1.2.3"))),
            Some(ip("2001:db8::7"))
        );
        // Anyone else is who they are; loopback too while no tunnel runs.
        assert_eq!(p.client(&h, Some(ip("192.0.2.9"))), Some(ip("192.0.2.9")));
        assert_eq!(p.client(&h, Some(ip("127.0.0.1"))), Some(ip("127.0.0.1")));
        // While a tunnel is up, cloudflared (on loopback) passes the edge's Cf-Connecting-IP on,
        // and only that header: X-Forwarded-For is the client's to write.
        p.set_tunnel_host(Some("abc.trycloudflare.com".into()), true);
        assert_eq!(p.client(&h, Some(ip("127.0.0.1"))), Some(ip("2001:db8::7")));
        h.remove("cf-connecting-ip");
        assert_eq!(p.client(&h, Some(ip("127.0.0.1"))), Some(ip("127.0.0.1")));
        h.insert(
            "cf-connecting-ip",
            HeaderValue::from_static("not an address"),
        );
        assert_eq!(p.client(&h, Some(ip("::1"))), Some(ip("::1")));
        assert_eq!(p.client(&h, Some(ip("192.0.2.9"))), Some(ip("192.0.2.9")));
        p.set_tunnel_host(None, false);
        h.insert("cf-connecting-ip", HeaderValue::from_static("203.0.113.5"));
        assert_eq!(p.client(&h, Some(ip("127.0.0.1"))), Some(ip("127.0.0.1")));
    }

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static("x")),
        );
        if let Some(o) = origin {
            h.insert(
                header::ORIGIN,
                HeaderValue::from_str(o).unwrap_or(HeaderValue::from_static("x")),
            );
        }
        h
    }

    #[test]
    fn loopback_by_default_and_extra_hosts() {
        let p = HostPolicy::new(&["mcp.example.com".into()], &[]);
        assert!(p.check_plain(&headers("127.0.0.1:8000", None)).is_ok());
        assert!(
            p.check_plain(&headers("[::1]:8000", Some("http://[::1]:8000")))
                .is_ok()
        );
        assert!(
            p.check_plain(&headers("localhost", Some("http://localhost:3000")))
                .is_ok()
        );
        assert!(
            p.check_plain(&headers("mcp.example.com", Some("https://mcp.example.com")))
                .is_ok()
        );
        assert!(p.check_plain(&headers("evil.example.com", None)).is_err());
        assert!(
            p.check_plain(&headers("127.0.0.1:8000", Some("http://evil.example.com")))
                .is_err()
        );
        assert!(
            p.check_plain(&headers("127.0.0.1:8000", Some("null")))
                .is_err()
        );
        let any = HostPolicy::new(&["*".into()], &["https://app.example.com".into()]);
        assert!(
            any.check_plain(&headers("anything", Some("https://app.example.com")))
                .is_ok()
        );
    }
}
