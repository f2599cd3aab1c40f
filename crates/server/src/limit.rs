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
            map.retain(|_, (w, _)| *w == window);
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

pub(crate) async fn per_ip(
    axum::extract::State(limiter): axum::extract::State<RouteLimiter>,
    req: Request,
    next: Next,
) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
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
}
