//! Host header validation, as Django's `ALLOWED_HOSTS`: a request for a
//! host the site does not serve is refused with 400 before any handler
//! runs, so a forged `Host` can never reach a password-reset email, a
//! cache key or an absolute URL.
//!
//! Entries of the `allowed_hosts` setting are exact host names
//! (`www.example.com`), a domain and all its subdomains (`.example.com`),
//! or `*` for any host (only behind a proxy that validates the host
//! itself). The port is ignored. In debug mode an empty list allows
//! `localhost` (and its subdomains), `127.0.0.1` and `[::1]`; production
//! refuses to start with an empty list.

use std::borrow::Cow;

use axum::http::{HeaderValue, Uri};

/// The hosts debug mode allows when `allowed_hosts` is empty (Django's).
pub const DEBUG_DEFAULTS: [&str; 3] = [".localhost", "127.0.0.1", "[::1]"];

/// The host the test client sends, allowed by [`TestClient`](crate::test::TestClient).
pub const TEST_HOST: &str = "testserver";

/// The `allowed_hosts` of a site, lower-cased and checked once at boot.
#[derive(Clone, Debug)]
pub(crate) struct AllowedHosts {
    any: bool,
    exact: Vec<String>,
    /// Suffixes with their leading dot: `.example.com`.
    domains: Vec<String>,
}

impl AllowedHosts {
    /// The policy for `entries` (debug mode's defaults when empty and `debug`).
    pub(crate) fn new(entries: &[String], debug: bool) -> Self {
        let entries: Vec<String> = if entries.is_empty() && debug {
            DEBUG_DEFAULTS
                .iter()
                .map(|&entry| entry.to_owned())
                .collect()
        } else {
            entries
                .iter()
                .map(|entry| entry.to_ascii_lowercase())
                .collect()
        };
        let mut hosts = Self {
            any: false,
            exact: Vec::new(),
            domains: Vec::new(),
        };
        for entry in entries {
            if entry == "*" {
                hosts.any = true;
            } else if entry.starts_with('.') {
                hosts.domains.push(entry);
            } else {
                hosts.exact.push(entry);
            }
        }
        hosts
    }

    /// Whether `host` (a name without its port, lower case) is allowed.
    pub(crate) fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        // A fully qualified name ends with a dot, which names the same host.
        let host = host.strip_suffix('.').unwrap_or(host);
        self.exact.iter().any(|exact| exact == host)
            || self
                .domains
                .iter()
                .any(|domain| host.ends_with(domain.as_str()) || host == &domain[1..])
    }
}

/// Why a request's host was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HostProblem {
    /// No `Host` header and no authority in the URI (HTTP/1.0).
    Missing,
    /// Not the syntax of a host name or address.
    Invalid(String),
    /// Well formed, not in `allowed_hosts`.
    NotAllowed(String),
}

/// The host a request is for, from its URI's authority (HTTP/2, absolute
/// URIs) or its `Host` header (`host_header`, found by the caller's walk
/// over the headers), without the port, lower case; checked against
/// `allowed`.
pub(crate) fn check(
    uri: &Uri,
    host_header: Option<&HeaderValue>,
    allowed: &AllowedHosts,
) -> Result<(), HostProblem> {
    let raw = match (uri.authority(), host_header) {
        (Some(authority), _) => authority.as_str().as_bytes(),
        (None, Some(value)) => value.as_bytes(),
        (None, None) => return Err(HostProblem::Missing),
    };
    let invalid = || HostProblem::Invalid(String::from_utf8_lossy(raw).into_owned());
    let host = host_of(raw).ok_or_else(invalid)?;
    if allowed.allows(&host) {
        Ok(())
    } else {
        Err(HostProblem::NotAllowed(host.into_owned()))
    }
}

/// What [`split_host`] and lower-casing give, in one pass over the bytes
/// for the usual `name[:port]` (every request goes through it); bracketed
/// IPv6 addresses take `split_host`'s path.
fn host_of(raw: &[u8]) -> Option<Cow<'_, str>> {
    /// Per byte: 0 not allowed, 1 a lower-case name byte, 2 an upper-case
    /// letter, 3 the colon before the port.
    const CLASS: [u8; 256] = {
        let mut table = [0u8; 256];
        let mut byte = 0;
        while byte < 256 {
            let b = byte as u8;
            table[byte] = match b {
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' => 1,
                b'A'..=b'Z' => 2,
                b':' => 3,
                _ => 0,
            };
            byte += 1;
        }
        table
    };
    if raw.first() == Some(&b'[') {
        let raw = std::str::from_utf8(raw).ok()?;
        return split_host(raw).map(|host| Cow::Owned(host.to_ascii_lowercase()));
    }
    let mut colon = None;
    let mut upper = false;
    for (at, &byte) in raw.iter().enumerate() {
        match CLASS[usize::from(byte)] {
            1 => {}
            2 => upper = true,
            3 if colon.is_none() => colon = Some(at),
            _ => return None,
        }
    }
    let host_len = colon.unwrap_or(raw.len());
    let (host, port) = raw.split_at(host_len);
    let port_ok = port.is_empty()
        || (port.len() >= 2 && port.len() <= 6 && port[1..].iter().all(u8::is_ascii_digit));
    if host.is_empty() || host.len() > 253 || !port_ok {
        return None;
    }
    // Every byte was checked to be ASCII above.
    let host = std::str::from_utf8(host).ok()?;
    Some(if upper {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

/// The host part of `host[:port]`, when both parts are well formed:
/// letters, digits, `-` and `.` for names, a bracketed IPv6 address, digits
/// for the port. Anything else (`evil.com@x`, spaces, a path) is `None`.
pub(crate) fn split_host(raw: &str) -> Option<&str> {
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let end = rest.find(']')?;
        let address = &rest[..end];
        address.parse::<std::net::Ipv6Addr>().ok()?;
        (&raw[..end + 2], &rest[end + 1..])
    } else {
        match raw.rsplit_once(':') {
            Some((host, _)) => (host, &raw[host.len()..]),
            None => (raw, ""),
        }
    };
    let port_ok = match port.strip_prefix(':') {
        Some(digits) => {
            !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => port.is_empty(),
    };
    let name_ok = host.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    (port_ok && name_ok).then_some(host)
}

/// Whether `entry` is a well-formed `allowed_hosts` entry.
pub(crate) fn valid_entry(entry: &str) -> bool {
    entry == "*"
        || split_host(entry.strip_prefix('.').unwrap_or(entry))
            .is_some_and(|host| host.len() == entry.trim_start_matches('.').len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|&e| e.to_owned()).collect();
        AllowedHosts::new(&entries, false)
    }

    #[test]
    fn exact_domain_and_wildcard_entries() {
        let hosts = allowed(&["www.example.com", ".example.org"]);
        assert!(hosts.allows("www.example.com"));
        assert!(hosts.allows("www.example.com."));
        assert!(!hosts.allows("example.com"));
        assert!(hosts.allows("example.org"));
        assert!(hosts.allows("a.b.example.org"));
        assert!(!hosts.allows("evilexample.org"));
        assert!(allowed(&["*"]).allows("anything.test"));
        let debug = AllowedHosts::new(&[], true);
        assert!(debug.allows("localhost") && debug.allows("127.0.0.1") && debug.allows("[::1]"));
        assert!(!debug.allows("example.com"));
    }

    #[test]
    fn junk_hosts_are_not_split() {
        assert_eq!(split_host("example.com:8000"), Some("example.com"));
        assert_eq!(split_host("[::1]:8000"), Some("[::1]"));
        assert_eq!(split_host("[::1]"), Some("[::1]"));
        for junk in [
            "evil.com@x",
            "a b",
            "a/b",
            "",
            "x:",
            "x:port",
            "[zz]",
            "a:1:2",
        ] {
            assert_eq!(split_host(junk), None, "{junk}");
        }
        assert!(valid_entry(".example.com") && valid_entry("*") && valid_entry("[::1]"));
        assert!(!valid_entry("http://example.com") && !valid_entry("a b"));
    }

    #[test]
    fn the_one_pass_reading_agrees_with_split_host() {
        for raw in [
            "example.com",
            "example.com:8000",
            "Example.COM:80",
            "127.0.0.1:8080",
            "[::1]:8000",
            "[::1]",
            "[zz]",
            "[::1]:x",
            "evil.com@x",
            "a b",
            "a/b",
            "",
            ":80",
            "x:",
            "x:port",
            "x:123456",
            "x:65535",
            "a:1:2",
            "caf\u{e9}.example",
            "a.b.",
        ] {
            let expected = split_host(raw).map(str::to_ascii_lowercase);
            let got = host_of(raw.as_bytes()).map(Cow::into_owned);
            assert_eq!(got, expected, "{raw:?}");
        }
        assert_eq!(host_of(b"ex\xffample.com"), None);
    }
}
