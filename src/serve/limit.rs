//! The per-client rate limit on the links' paths (the unsubscribe and resubscribe pages,
//! their logo, the export): a GCRA bucket per client address ([`governor`]), refilled at
//! `[serve] rate_limit` and holding `rate_limit_burst` requests; a client over it is answered
//! 429 with `Retry-After`.
//!
//! The client is the connection's address, or, when that is one of `[serve]
//! trusted_proxies` (loopback by default: the reverse proxy on the same machine), the
//! address the proxy put in `X-Forwarded-For` (or `Forwarded`, as `client_ip_header` says),
//! read from the right: the first hop that is not a trusted proxy. A header from anyone else
//! is ignored, or any client could pick a fresh address for every request. IPv6 clients are
//! counted by their /64, which one host usually holds whole.
//!
//! Idle clients are dropped every [`EVICT_EVERY`] (and sooner once [`MANY_CLIENTS`] are
//! held), so memory follows the clients of the last minute or so, not every one ever seen.
//! Refusals are logged in a count, never with the client's address.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;

use crate::values::Rate;

/// How often idle clients are forgotten.
pub const EVICT_EVERY: Duration = Duration::from_secs(60);

/// Past this many clients held, idle ones are forgotten at once (at most once a second).
pub const MANY_CLIENTS: usize = 100_000;

/// How often a line counts the refusals (one line, not one per refused request).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The most hops of a forwarding header read, from the right.
const MAX_HOPS: usize = 16;

/// `[serve] rate_limit`: requests per client per second, minute or hour, or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub enum RateLimit {
    Off,
    Rate(Rate),
}

/// The default: 600 a minute (10 a second), far above what one mail provider's servers send
/// for one newsletter (see the README, "Rate limit").
impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::Rate(Rate {
            messages: 600,
            per: Duration::from_secs(60),
        })
    }
}

impl TryFrom<String> for RateLimit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(RateLimit::Off);
        }
        Rate::try_from(s.clone()).map(RateLimit::Rate).map_err(|_| {
            format!(
                "\"{s}\" is not a rate limit; write requests per second, minute or hour, e.g. \"600/min\", or \"off\""
            )
        })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateLimit::Off => f.write_str("off"),
            RateLimit::Rate(rate) => {
                let unit = match rate.per.as_secs() {
                    1 => "s",
                    60 => "min",
                    _ => "h",
                };
                write!(f, "{}/{unit}", rate.messages)
            }
        }
    }
}

/// A trusted proxy: one address, or a network (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, plain(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(u32::from(net)) << 96, self.prefix)
                    == mask(u128::from(u32::from(ip)) << 96, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(net), self.prefix) == mask(u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

/// The first `prefix` bits of `bits`.
fn mask(bits: u128, prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => bits,
        p => bits & (u128::MAX << (128 - u32::from(p))),
    }
}

impl TryFrom<String> for Net {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || {
            format!(
                "\"{s}\" is not an address or a network; write e.g. \"127.0.0.1\", \"::1\" or \"10.0.0.0/8\""
            )
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let addr = plain(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Net { addr, prefix })
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// The default trusted proxies: this machine (a reverse proxy beside `serve`).
pub fn loopback() -> Vec<Net> {
    vec![
        Net {
            addr: IpAddr::from([127, 0, 0, 0]),
            prefix: 8,
        },
        Net {
            addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
            prefix: 128,
        },
    ]
}

/// `[serve] client_ip_header`: the header the trusted proxies write the client's address in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx's `$proxy_add_x_forwarded_for`, Caddy).
    #[default]
    XForwardedFor,
    /// RFC 7239's `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl TryFrom<String> for ClientIpHeader {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ClientIpHeader::XForwardedFor),
            "forwarded" => Ok(ClientIpHeader::Forwarded),
            _ => Err(format!(
                "\"{s}\" is not a header serve reads the client from; write \"X-Forwarded-For\" or \"Forwarded\""
            )),
        }
    }
}

impl ClientIpHeader {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientIpHeader::XForwardedFor => "X-Forwarded-For",
            ClientIpHeader::Forwarded => "Forwarded",
        }
    }
}

/// The rate limit's settings, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub rate: RateLimit,
    /// Requests a client may make at once before the rate applies.
    pub burst: u32,
    pub proxies: Vec<Net>,
    pub header: ClientIpHeader,
}

impl Settings {
    /// `[serve]`'s `rate_limit`, `rate_limit_burst` (by default the rate's count: a whole
    /// period's requests at once), `trusted_proxies` and `client_ip_header`.
    pub fn new(
        rate: RateLimit,
        burst: Option<u32>,
        proxies: Vec<Net>,
        header: ClientIpHeader,
    ) -> Result<Settings, String> {
        let burst = match (rate, burst) {
            (_, Some(0)) => {
                return Err(
                    "rate_limit_burst must be at least 1 (1: no request beyond the rate)".into(),
                );
            }
            (_, Some(b)) => b,
            (RateLimit::Rate(rate), None) => rate.messages,
            (RateLimit::Off, None) => 0,
        };
        Ok(Settings {
            rate,
            burst,
            proxies,
            header,
        })
    }

    /// What `serve --check` says of it.
    pub fn describe(&self) -> String {
        let proxies = if self.proxies.is_empty() {
            "from no proxy".to_string()
        } else {
            let list: Vec<String> = self.proxies.iter().map(Net::to_string).collect();
            format!("from {}", list.join(", "))
        };
        match self.rate {
            RateLimit::Off => "off".to_string(),
            RateLimit::Rate(_) => format!(
                "{} per client, {} at once; {} read {proxies}",
                self.rate,
                self.burst,
                self.header.as_str()
            ),
        }
    }
}

/// The buckets, and what is needed to find a request's client.
pub struct Limiter {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
    settings: Settings,
    /// Refusals since the last log line, and when that was.
    refused: Mutex<(u64, Option<Instant>)>,
    /// When idle clients were last forgotten because too many were held.
    evicted: Mutex<Instant>,
    log: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Limiter {
    /// A limiter for `settings`; `None` when the limit is off.
    pub fn new(settings: &Settings, log: Arc<dyn Fn(&str) + Send + Sync>) -> Option<Limiter> {
        let RateLimit::Rate(rate) = settings.rate else {
            return None;
        };
        let period = rate.per / rate.messages.max(1);
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))?
            .allow_burst(NonZeroU32::new(settings.burst.max(1))?);
        Some(Limiter {
            buckets: DefaultKeyedRateLimiter::keyed(quota),
            settings: settings.clone(),
            refused: Mutex::new((0, None)),
            evicted: Mutex::new(Instant::now()),
            log,
        })
    }

    /// Takes one request of the client of a connection from `peer` with these headers:
    /// `Err` with how long until it may ask again when it is over the limit.
    pub fn admit(&self, peer: IpAddr, headers: &HeaderMap) -> Result<(), Duration> {
        let key = bucket(self.client(peer, headers));
        if self.buckets.len() > MANY_CLIENTS {
            self.evict_now();
        }
        match self.buckets.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.buckets.clock().now());
                self.note_refusal();
                Err(wait)
            }
        }
    }

    /// The client of a connection from `peer`: `peer` itself, unless it is a trusted proxy,
    /// whose forwarding header is then read from the right, past every trusted proxy.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = plain(peer);
        if !self.trusted(peer) {
            return peer;
        }
        let hops = match self.settings.header {
            ClientIpHeader::XForwardedFor => forwarded_for(headers),
            ClientIpHeader::Forwarded => forwarded(headers),
        };
        let mut client = peer;
        for hop in hops.into_iter().rev().take(MAX_HOPS) {
            // A hop that is not an address (`unknown`, an obfuscated name, garbage) ends the
            // walk: the nearest address known stands for the client.
            let Some(ip) = hop else { break };
            client = ip;
            if !self.trusted(ip) {
                break;
            }
        }
        client
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.settings.proxies.iter().any(|net| net.contains(ip))
    }

    /// Forgets the clients whose buckets are full again (they are as if never seen).
    pub fn evict(&self) {
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
    }

    fn evict_now(&self) {
        let mut last = self.evicted.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= Duration::from_secs(1) {
            *last = Instant::now();
            drop(last);
            self.evict();
        }
    }

    /// How many clients are held.
    pub fn clients(&self) -> usize {
        self.buckets.len()
    }

    /// Counts a refusal; says how many every [`LOG_EVERY`] at most, with no address.
    fn note_refusal(&self) {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.0 += 1;
        if refused.1.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            let n = std::mem::take(&mut refused.0);
            refused.1 = Some(Instant::now());
            drop(refused);
            (self.log)(&format!(
                "rate limit: {n} request{} refused (429), from clients over {} ({} at once)",
                if n == 1 { "" } else { "s" },
                self.settings.rate,
                self.settings.burst
            ));
        }
    }

    /// Forgets idle clients every [`EVICT_EVERY`] for as long as the limiter lives.
    pub fn evict_idle(limiter: Weak<Limiter>) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(EVICT_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let Some(limiter) = limiter.upgrade() else {
                    return;
                };
                limiter.evict();
            }
        });
    }
}

/// An IPv4 address mapped into IPv6 as IPv4; any other as it is.
fn plain(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The bucket a client counts in: its IPv4 address, or its IPv6 /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match plain(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(mask(u128::from(v6), 64))),
        v4 => v4,
    }
}

/// The hops of `X-Forwarded-For` (every such header, in order), left to right.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| {
            let text = value.to_str().unwrap_or("\u{0}");
            text.split(',').map(address).collect::<Vec<_>>()
        })
        .collect()
}

/// The `for=` of each element of `Forwarded` (RFC 7239), left to right.
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|value| {
            let text = value.to_str().unwrap_or("\u{0}");
            text.split(',')
                .map(|element| {
                    element
                        .split(';')
                        .filter_map(|pair| pair.split_once('='))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                        .and_then(|(_, v)| address(v.trim().trim_matches('"')))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An address as a hop writes it: `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:4711`,
/// `203.0.113.7:80`.
fn address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
        .map(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate: &str, proxies: &[&str], header: ClientIpHeader) -> Settings {
        Settings::new(
            RateLimit::try_from(rate.to_string()).unwrap(),
            None,
            proxies
                .iter()
                .map(|p| Net::try_from(p.to_string()).unwrap())
                .collect(),
            header,
        )
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn settings_read_as_written_and_say_how_to_fix_them() {
        assert_eq!(
            RateLimit::try_from("60/min".to_string())
                .unwrap()
                .to_string(),
            "60/min"
        );
        assert_eq!(RateLimit::try_from("OFF".to_string()), Ok(RateLimit::Off));
        let err = RateLimit::try_from("fast".to_string()).unwrap_err();
        assert!(err.contains("\"600/min\", or \"off\""), "{err}");
        let err = Net::try_from("10.0.0/8".to_string()).unwrap_err();
        assert!(err.contains("\"10.0.0.0/8\""), "{err}");
        assert!(Net::try_from("10.0.0.0/33".to_string()).is_err());
        assert!(ClientIpHeader::try_from("X-Real-IP".to_string()).is_err());
        assert_eq!(
            ClientIpHeader::try_from("forwarded".to_string()),
            Ok(ClientIpHeader::Forwarded)
        );
        let s = settings("600/min", &["127.0.0.1"], ClientIpHeader::XForwardedFor);
        assert_eq!(s.burst, 600);
        assert!(Settings::new(RateLimit::default(), Some(0), vec![], Default::default()).is_err());
        let net = Net::try_from("10.1.0.0/16".to_string()).unwrap();
        assert!(net.contains(ip("10.1.200.3")) && !net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        assert!(loopback()[0].contains(ip("127.0.0.53")) && loopback()[1].contains(ip("::1")));
    }

    #[test]
    fn the_client_is_read_from_the_header_only_when_a_trusted_proxy_sends_it() {
        let log: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|_| {});
        let limiter = Limiter::new(
            &settings(
                "60/min",
                &["127.0.0.1", "10.0.0.0/8"],
                ClientIpHeader::XForwardedFor,
            ),
            log.clone(),
        )
        .unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.0.0.2")]);
        // Through two trusted proxies: the first untrusted hop from the right.
        assert_eq!(limiter.client(ip("127.0.0.1"), &xff), ip("203.0.113.7"));
        // Straight from a client: its header is its own word, ignored.
        assert_eq!(limiter.client(ip("192.0.2.1"), &xff), ip("192.0.2.1"));
        // No header, or garbage: the proxy itself, or the nearest address known.
        assert_eq!(
            limiter.client(ip("127.0.0.1"), &headers(&[])),
            ip("127.0.0.1")
        );
        let bad = headers(&[("x-forwarded-for", "203.0.113.7, unknown, 10.0.0.3")]);
        assert_eq!(limiter.client(ip("127.0.0.1"), &bad), ip("10.0.0.3"));

        let forwarded = Limiter::new(
            &settings("60/min", &["127.0.0.1"], ClientIpHeader::Forwarded),
            log,
        )
        .unwrap();
        let h = headers(&[
            (
                "forwarded",
                "for=198.51.100.9;proto=https, for=\"[2001:db8::1]:4711\"",
            ),
            ("x-forwarded-for", "192.0.2.99"),
        ]);
        assert_eq!(forwarded.client(ip("127.0.0.1"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn a_client_over_its_burst_waits_and_others_do_not() {
        let said = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = said.clone();
        let log: Arc<dyn Fn(&str) + Send + Sync> =
            Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_string()));
        let limiter =
            Limiter::new(&settings("3/min", &[], ClientIpHeader::XForwardedFor), log).unwrap();
        let none = HeaderMap::new();
        for _ in 0..3 {
            assert!(limiter.admit(ip("192.0.2.1"), &none).is_ok());
        }
        let wait = limiter.admit(ip("192.0.2.1"), &none).unwrap_err();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limiter.admit(ip("192.0.2.2"), &none).is_ok());
        // One IPv6 host's /64 is one client.
        for _ in 0..3 {
            assert!(limiter.admit(ip("2001:db8::1"), &none).is_ok());
        }
        assert!(limiter.admit(ip("2001:db8::ffff"), &none).is_err());
        assert_eq!(limiter.clients(), 3);
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(!said[0].contains("192.0.2") && !said[0].contains("2001:db8"));
    }
}
