//! Whose request it is: the peer's address, or, behind a trusted proxy, the address that
//! proxy says it forwarded for. Anyone else's `X-Forwarded-For` is ignored, so a client cannot
//! dodge its limit by writing the header itself.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address block, `10.0.0.0/8` or `::1/128` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        let (address, prefix) = raw.split_once('/').unwrap_or((raw, ""));
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{raw:?} is not an address or CIDR block"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            "" => bits,
            digits => digits
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= bits)
                .ok_or_else(|| format!("{raw:?} has a prefix length outside 0-{bits}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        let (network, address, bits) = match (self.network, canonical(address)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                (u128::from(n.to_bits()), u128::from(a.to_bits()), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => (n.to_bits(), a.to_bits(), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (network >> shift) == (address >> shift)
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, as a dual-stack socket reports it) is
/// that IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Cidr>);

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(address))
    }

    /// The client of a request from `peer`: the peer itself unless it is a trusted proxy;
    /// then the nearest address in `X-Forwarded-For` that is not one of ours (the entries a
    /// client wrote itself sit to the left of it and are never read).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for hop in forwarded.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(address) if self.trusts(canonical(address)) => continue,
                Ok(address) => return canonical(address),
                // Garbage where an address should be: nothing further left can be trusted.
                Err(_) => return peer,
            }
        }
        peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().expect("an address")
    }

    fn forwarded(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn blocks_parse_and_contain() {
        let block: Cidr = "10.0.0.0/8".parse().expect("valid");
        assert!(block.contains(ip("10.1.2.3")));
        assert!(!block.contains(ip("11.0.0.1")));
        assert!(block.contains(ip("::ffff:10.9.9.9")));
        let one: Cidr = "::1".parse().expect("valid");
        assert!(one.contains(ip("::1")));
        assert!(!one.contains(ip("::2")));
        let all: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let proxies = TrustedProxies(vec!["10.0.0.0/8".parse().expect("valid")]);
        let headers = forwarded(&["198.51.100.7"]);
        // An untrusted peer's header is ignored.
        assert_eq!(
            proxies.client(ip("203.0.113.1"), &headers),
            ip("203.0.113.1")
        );
        // A trusted one's is read, from the right, skipping our own proxies.
        assert_eq!(proxies.client(ip("10.0.0.2"), &headers), ip("198.51.100.7"));
        let chain = forwarded(&["6.6.6.6, 198.51.100.7", "10.0.0.3"]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &chain), ip("198.51.100.7"));
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &forwarded(&["junk"])),
            ip("10.0.0.2")
        );
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.2"), &headers),
            ip("10.0.0.2")
        );
    }
}
