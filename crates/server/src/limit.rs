//! Per-IP, per-route request limits for the authentication routes (OWASP ASVS 6.3.1, API4): a
//! fixed one-minute window per (client address, route). The persistent per-account counter
//! (`auth::throttle`) is the real defence against guessing; this one caps how fast one address can
//! try many accounts, or make the fund send many SMS.
//!
//! The client address is the TCP peer. Behind a reverse proxy, that is the proxy: put the limit
//! there, or give each node its own public address.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Keys kept before the table starts over (a bound on memory under a spoofing flood).
const MAX_KEYS: usize = 200_000;

/// (client address, route) → (window number, requests in it).
type Windows = HashMap<(IpAddr, String), (u64, u32)>;

#[derive(Clone)]
pub struct RouteLimiter {
    per_minute: u32,
    started: Instant,
    windows: Arc<Mutex<Windows>>,
}

impl RouteLimiter {
    pub fn new(per_minute: u32) -> RouteLimiter {
        RouteLimiter {
            per_minute,
            started: Instant::now(),
            windows: Arc::default(),
        }
    }

    /// Counts one request; the seconds to wait if over the limit.
    fn hit(&self, ip: IpAddr, route: &str) -> Option<u64> {
        let elapsed = self.started.elapsed().as_secs();
        let window = elapsed / 60;
        let mut map = self.windows.lock().ok()?;
        if map.len() >= MAX_KEYS {
            // Old windows go first, then the addresses not over their limit: the ones being
            // limited keep their count.
            map.retain(|_, (w, _)| *w == window);
            if map.len() >= MAX_KEYS {
                let limit = self.per_minute;
                map.retain(|_, (_, n)| *n > limit);
            }
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let entry = map.entry((ip, route.to_string())).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 += 1;
        (entry.1 > self.per_minute).then(|| 60 - elapsed % 60)
    }
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64 (one subscriber's
/// network; counting single IPv6 addresses would let one client use billions of keys).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

pub(crate) async fn per_ip(
    axum::extract::State(limiter): axum::extract::State<RouteLimiter>,
    req: Request,
    next: Next,
) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| client_key(c.0.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match limiter.hit(ip, req.uri().path()) {
        Some(wait) => ApiError::too_many_requests(wait).into_response(),
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_route() {
        let l = RouteLimiter::new(3);
        let a = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        for _ in 0..3 {
            assert_eq!(l.hit(a, "/login"), None);
        }
        assert!(l.hit(a, "/login").is_some());
        assert_eq!(l.hit(b, "/login"), None);
        assert_eq!(l.hit(a, "/enrol"), None);
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(one), client_key(same_net));
        assert_ne!(client_key(one), client_key(other_net));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
