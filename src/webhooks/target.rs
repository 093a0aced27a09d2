//! Where a webhook may be sent: an http(s) URL whose host is a public address. A URL is
//! checked when its endpoint is registered ([`check_url`], then [`check_resolved`]) and
//! again at every delivery by the HTTP client's resolver ([`GuardedResolver`]), which
//! resolves the name itself and hands the client only addresses it checked, so a name
//! that resolved to a public address at registration and to an internal one later (DNS
//! rebinding) is refused then too.
//!
//! Refused, unless `webhooks.allow_private_targets`: loopback, private (RFC 1918, IPv6
//! unique local), link-local, shared (CGNAT, 100.64.0.0/10), unspecified, multicast,
//! broadcast and the other special-purpose ranges that are no host on the internet, and
//! IPv6 addresses that embed one of those IPv4 addresses (IPv4-mapped, IPv4-compatible,
//! NAT64). Plain `http://` needs `webhooks.allow_http_targets`.

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2000;

/// What targets the operator allows beyond public https URLs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    pub allow_private: bool,
    pub allow_http: bool,
}

impl Policy {
    pub fn from_config(config: &crate::config::WebhooksConfig) -> Policy {
        Policy {
            allow_private: config.allow_private_targets,
            allow_http: config.allow_http_targets,
        }
    }
}

/// Why `ip` is no public internet host (the class it is in), or `None` if it is one.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        (0, _, _) => "\"this network\" (0.0.0.0/8)",
        (127, _, _) => "loopback",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private (RFC 1918)",
        (100, 64..=127, _) => "shared (CGNAT, 100.64.0.0/10)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignment (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (240..=255, _, _) => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // An IPv4 address in the last 32 bits: mapped (::ffff:a.b.c.d), compatible
    // (::a.b.c.d), or behind the well-known NAT64 prefix (64:ff9b::/96). Each reaches the
    // IPv4 address it embeds, so it is judged as that address.
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    Some(match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0, 0, _, _]
        | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            return refused_v4(embedded);
        }
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x100, 0, 0, 0, ..] => "discard (100::/64)",
        _ => return None,
    })
}

/// Checks what can be checked of `raw` without the network: an http(s) URL (https only
/// unless the policy allows http) whose host, if it is an address, is not refused.
/// Returns the parsed URL, or why it is refused.
pub fn check_url(raw: &str, policy: Policy) -> Result<Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("url must have at most {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(raw).map_err(|e| format!("url is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => {
            return Err(
                "url must be https (the server's webhooks.allow_http_targets is off)".into(),
            );
        }
        other => return Err(format!("url must be https, not {other}")),
    }
    let host = match url.host() {
        Some(host) => host,
        None => return Err("url has no host".into()),
    };
    if policy.allow_private {
        return Ok(url);
    }
    // A name is judged by what it resolves to: at registration by check_resolved, at
    // each delivery by the resolver. (`localhost` resolves to loopback like any other.)
    let ip = match host {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    };
    if let Some(class) = ip.and_then(refused) {
        return Err(refusal(&url, ip.unwrap(), class));
    }
    Ok(url)
}

fn refusal(url: &Url, ip: IpAddr, class: &str) -> String {
    let host = url.host_str().unwrap_or_default();
    format!(
        "url's host {host} is a {class} address ({ip}): webhooks go to public addresses only \
         (the server's webhooks.allow_private_targets is off)"
    )
}

/// Resolves `url`'s host name (within `timeout`) and refuses it if any of its addresses is
/// refused. A name that does not resolve now passes: deliveries check again, and one
/// that still does not resolve then is retried like any other failure.
pub async fn check_resolved(url: &Url, policy: Policy, timeout: Duration) -> Result<(), String> {
    let Some(url::Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    if policy.allow_private {
        return Ok(());
    }
    let lookup = tokio::net::lookup_host((name, 0));
    let Ok(Ok(addrs)) = tokio::time::timeout(timeout, lookup).await else {
        return Ok(());
    };
    for addr in addrs {
        if let Some(class) = refused(addr.ip()) {
            return Err(refusal(url, addr.ip(), class));
        }
    }
    Ok(())
}

/// The delivery client's resolver: resolves with the system's resolver and refuses a name
/// any of whose addresses is refused, so the client connects only to addresses checked
/// here. (An IP-literal URL never reaches a resolver: [`check_url`] judges it.)
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub policy: Policy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !policy.allow_private {
                for addr in &addrs {
                    if let Some(class) = refused(addr.ip()) {
                        return Err(format!(
                            "{name} resolves to a {class} address ({}): webhooks go to public \
                             addresses only (webhooks.allow_private_targets is off)",
                            addr.ip()
                        )
                        .into());
                    }
                }
            }
            if addrs.is_empty() {
                return Err(format!("{name} resolves to no address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_internal_address_class_is_refused() {
        for (addr, class) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("169.254.169.254", "link-local"),
            ("192.0.0.8", "IETF"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:100.64.0.1", "CGNAT"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::c0a8:101", "private"),
        ] {
            let got = refused(ip(addr));
            assert!(
                got.is_some_and(|c| c.contains(class)),
                "{addr}: {got:?}, expected {class}"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(refused(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn urls_must_be_https_to_a_public_host_unless_allowed() {
        let strict = Policy::default();
        assert!(check_url("https://hooks.example.com/octavia?x=1", strict).is_ok());
        assert!(check_url("https://8.8.8.8:8443/", strict).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://",
            "not a url",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:7f00:1]/",
            "https://10.0.0.8/",
            "https://169.254.169.254/latest/meta-data/",
            "https://0x7f000001/",
            "https://2130706433/",
            "https://0177.0.0.1/",
        ] {
            assert!(check_url(bad, strict).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url(&long, strict).is_err());
        let open = Policy {
            allow_private: true,
            allow_http: true,
        };
        assert!(check_url("http://127.0.0.1:9000/hook", open).is_ok());
        assert!(check_url("http://localhost/hook", open).is_ok());
        assert!(check_url("ftp://127.0.0.1/", open).is_err());
        let http_only = Policy {
            allow_private: false,
            allow_http: true,
        };
        assert!(check_url("http://hooks.example.com/", http_only).is_ok());
        assert!(check_url("http://127.0.0.1/", http_only).is_err());
    }

    #[tokio::test]
    async fn registration_refuses_names_that_resolve_to_internal_addresses() {
        let strict = Policy::default();
        let second = Duration::from_secs(1);
        for name in ["https://localhost:8080/", "https://LocalHost/hook"] {
            let url = check_url(name, strict).unwrap();
            let refused = check_resolved(&url, strict, second).await.unwrap_err();
            assert!(refused.contains("loopback"), "{name}: {refused}");
        }
        let open = Policy {
            allow_private: true,
            allow_http: false,
        };
        let url = check_url("https://localhost/", open).unwrap();
        assert!(check_resolved(&url, open, second).await.is_ok());
        // A name that does not resolve now is checked again at each delivery.
        let url = check_url("https://does-not-exist.invalid/", strict).unwrap();
        assert!(check_resolved(&url, strict, second).await.is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses_unless_allowed() {
        let strict = GuardedResolver {
            policy: Policy::default(),
        };
        let refused = strict.resolve("localhost".parse().unwrap()).await;
        let message = refused.err().expect("localhost is refused").to_string();
        assert!(message.contains("loopback"), "{message}");
        let open = GuardedResolver {
            policy: Policy {
                allow_private: true,
                allow_http: true,
            },
        };
        let addrs: Vec<SocketAddr> = open
            .resolve("localhost".parse().unwrap())
            .await
            .expect("allowed")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
