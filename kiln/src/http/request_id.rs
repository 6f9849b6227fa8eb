//! The request id: one per request, in the `x-request-id` response header,
//! on every log line of the request and on error pages.

use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderName, HeaderValue};

use super::RequestContext;

/// A request's id. An incoming `x-request-id` from a proxy is kept when it is
/// a short token; otherwise Kiln makes a new one. It is also an extractor.
///
/// Kiln's ids are 32 lowercase hex digits: 16 drawn at random once per
/// process, then 16 from a per-process counter passed through a bijective
/// mixer. They are unique within a process (the mixer maps each count to a
/// different value) and across processes unless two draw the same 64-bit
/// prefix. The mixer only keeps ids from reading as a request count; an id
/// is not a secret and must not be used as one.
#[derive(Clone)]
pub struct RequestId(Repr);

#[derive(Clone)]
enum Repr {
    /// Made by Kiln: hex digits, so ASCII. Kept inline rather than as a
    /// `HeaderValue`, which would allocate when made and again when first
    /// cloned; the header value is made once, for the response.
    Made([u8; 32]),
    /// Given by a proxy and checked by `is_sane`.
    Given(HeaderValue),
}

/// The per-process part of made ids.
struct Generator {
    /// The first 16 hex digits of every id.
    prefix: [u8; 16],
    /// Added to the count before mixing, so that processes do not share a sequence.
    key: u64,
    /// The first count of the next block a thread takes.
    count: AtomicU64,
}

fn generator() -> &'static Generator {
    static GENERATOR: OnceLock<Generator> = OnceLock::new();
    GENERATOR.get_or_init(|| {
        // Two v4 UUIDs: 122 random bits each, from the OS-seeded generator
        // `uuid` uses. Mixing spreads them over all 64 bits.
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        let (c, d) = uuid::Uuid::new_v4().as_u64_pair();
        let mut prefix = [0u8; 16];
        write_hex(&mut prefix, mix(a) ^ b);
        Generator {
            prefix,
            key: mix(c) ^ d,
            count: AtomicU64::new(0),
        }
    })
}

/// Counts a thread hands out before taking the next block from the shared counter.
const BLOCK: u64 = 1024;

thread_local! {
    /// The next count this thread hands out, and the end of its block.
    static COUNTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A count no other call in this process gets. Each thread takes blocks of
/// counts from the shared counter, so that the workers do not all write one
/// cache line on every request (which would move it between cores); this
/// costs no more instructions than an atomic addition per request.
fn next_count(generator: &Generator) -> u64 {
    COUNTS.with(|counts| {
        let (mut next, mut end) = counts.get();
        if next == end {
            next = generator.count.fetch_add(BLOCK, Ordering::Relaxed);
            end = next.wrapping_add(BLOCK);
        }
        counts.set((next.wrapping_add(1), end));
        next
    })
}

/// SplitMix64's finaliser: a bijection on `u64`, so distinct counts give
/// distinct ids, with every input bit spread over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes `value` as 16 lowercase hex digits.
fn write_hex(out: &mut [u8; 16], value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
}

impl RequestId {
    /// The header that carries it, in requests and responses.
    pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

    /// A fresh id, unique in this process and, in practice, across processes.
    ///
    /// A random UUID per request, kept as a `HeaderValue`, cost about 160
    /// instructions more per request (callgrind): the random number, its
    /// formatting, and an allocation when the value was first cloned.
    #[must_use]
    pub fn new() -> Self {
        let generator = generator();
        let count = next_count(generator);
        let mut id = [0u8; 32];
        let (prefix, suffix) = id.split_at_mut(16);
        prefix.copy_from_slice(&generator.prefix);
        let mut digits = [0u8; 16];
        write_hex(&mut digits, mix(count.wrapping_add(generator.key)));
        suffix.copy_from_slice(&digits);
        Self(Repr::Made(id))
    }

    /// The id given by a trusted proxy if it looks sane, else a new one.
    pub(crate) fn from_header_or_new(incoming: Option<&HeaderValue>) -> Self {
        match incoming {
            Some(value) if is_sane(value.as_bytes()) => Self(Repr::Given(value.clone())),
            _ => Self::new(),
        }
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Hex digits, or a value `is_sane` accepted: ASCII either way.
        match &self.0 {
            Repr::Made(id) => std::str::from_utf8(id).unwrap_or("unknown"),
            Repr::Given(value) => value.to_str().unwrap_or("unknown"),
        }
    }

    /// The id's bytes: what `as_str` gives, without checking they are UTF-8.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Made(id) => id,
            Repr::Given(value) => value.as_bytes(),
        }
    }

    pub(crate) fn header_value(&self) -> HeaderValue {
        match &self.0 {
            Repr::Made(id) => {
                HeaderValue::from_bytes(id).unwrap_or(HeaderValue::from_static("unknown"))
            }
            Repr::Given(value) => value.clone(),
        }
    }

    /// The id of the request the current task is serving, if any: what Kiln's
    /// log lines carry as `request_id`. Tasks spawned by a view do not
    /// inherit it; pass the id along (it is `Clone`) or scope it with
    /// [`RequestId::scope`].
    #[must_use]
    pub fn current() -> Option<Self> {
        RequestContext::with_current(|context| context.id.clone())
            .or_else(|| SCOPED.try_with(Clone::clone).ok())
    }

    /// Runs `future` (a task a view spawns, say) with `self` as the
    /// [current](RequestId::current) id.
    pub async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        SCOPED.scope(self, future).await
    }
}

tokio::task_local! {
    /// Ids given to tasks outside a request with [`RequestId::scope`].
    static SCOPED: RequestId;
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// Accepts ids of up to 64 characters from `[A-Za-z0-9._-]`, so that a hostile
/// client cannot inject text into logs or pages through it.
fn is_sane(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RequestId {}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<RequestContext>();
        Ok(context
            .map(|context| context.id.clone())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    #[test]
    fn keeps_sane_incoming_ids_and_replaces_hostile_ones() {
        let mut headers = HeaderMap::new();
        headers.insert(RequestId::HEADER, HeaderValue::from_static("lb-1234.abc"));
        assert_eq!(
            RequestId::from_header_or_new(headers.get(RequestId::HEADER)).as_str(),
            "lb-1234.abc"
        );
        headers.insert(RequestId::HEADER, HeaderValue::from_static("<script>"));
        let id = RequestId::from_header_or_new(headers.get(RequestId::HEADER));
        assert_eq!(id.as_str().len(), 32);
        assert_ne!(RequestId::new(), RequestId::new());
    }

    #[test]
    fn made_ids_are_hex_share_the_process_prefix_and_do_not_repeat() {
        let ids: Vec<String> = (0..10_000)
            .map(|_| RequestId::new().as_str().to_owned())
            .collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(id[..16], ids[0][..16]);
            assert!(
                is_sane(id.as_bytes()),
                "a made id passes as an incoming one"
            );
        }
        let made = RequestId::new();
        assert_eq!(made.header_value().to_str().unwrap(), made.as_str());
        assert_eq!(
            format!("{made:?}"),
            format!("RequestId({:?})", made.as_str())
        );
    }

    #[test]
    fn ids_made_on_several_threads_do_not_repeat() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..3000)
                        .map(|_| RequestId::new().as_str().to_owned())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(all.insert(id), "an id was made twice");
            }
        }
        assert_eq!(all.len(), 4 * 3000);
    }

    #[test]
    fn the_mixer_is_a_bijection_on_nearby_counts() {
        // The counts a process reaches, and around the wrap: no collisions.
        let mixed: std::collections::HashSet<u64> = (0..100_000u64)
            .chain(u64::MAX - 1000..=u64::MAX)
            .map(mix)
            .collect();
        assert_eq!(mixed.len(), 100_000 + 1001);
    }
}
