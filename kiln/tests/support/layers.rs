//! The channel layer servers the tests share: Redis (127.0.0.1:6379 or
//! `KILN_TEST_REDIS_URL`) and NATS with JetStream (127.0.0.1:4222 or
//! `KILN_TEST_NATS_URL`), each under a fresh prefix that [`Server::finish`]
//! removes again.
//!
//! A test file includes it with
//! `#[path = "support/layers.rs"] pub mod layers;`. A server that does not
//! answer is skipped with a `SKIPPED:` line on stderr, or fails the test
//! under `KILN_REQUIRE_BACKENDS=1`.

use std::time::Duration;

use futures_util::StreamExt;

/// One layer server, under a prefix of the test's own.
#[derive(Debug)]
pub struct Server {
    /// `redis` or `nats`, for assertion messages.
    pub name: &'static str,
    /// The server's URL without a prefix.
    pub base: String,
    /// The prefix the test's keys, channels, subjects and streams live under.
    pub prefix: String,
}

/// A short random name.
pub fn fresh() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// The servers that answer, each with a fresh prefix.
pub async fn servers() -> Vec<Server> {
    let mut all = Vec::new();
    let redis = std::env::var("KILN_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    if reachable("Redis", &redis).await {
        all.push(Server::new("redis", redis));
    }
    let nats =
        std::env::var("KILN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    if reachable("NATS", &nats).await {
        all.push(Server::new("nats", nats));
    }
    all
}

impl Server {
    /// `base` (a Redis or NATS URL) under a fresh prefix.
    pub fn new(name: &'static str, base: String) -> Self {
        let prefix = if name == "redis" {
            format!("kiln-test-{}:", fresh())
        } else {
            // NATS names take no `:`.
            format!("kt{}", fresh())
        };
        Self { name, base, prefix }
    }

    /// The same server under another fresh prefix (another project).
    pub fn other_project(&self) -> Self {
        Self::new(self.name, self.base.clone())
    }

    /// The URL a node connects to: the server with the test's prefix.
    pub fn url(&self) -> String {
        format!("{}?prefix={}", self.base, self.prefix)
    }

    /// Removes the keys, streams and bucket made under the prefix.
    ///
    /// # Panics
    ///
    /// When the server stops answering.
    pub async fn finish(self) {
        self.wipe().await;
    }

    /// Removes what the prefix holds on the server, as a server restarted
    /// without persistence would have lost it.
    ///
    /// # Panics
    ///
    /// When the server stops answering.
    pub async fn wipe(&self) {
        if self.name == "redis" {
            let client = redis::Client::open(self.base.as_str()).expect("a Redis URL");
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .expect("Redis answers");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query_async(&mut connection)
                .await
                .expect("KEYS");
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL")
                    .arg(keys)
                    .query_async(&mut connection)
                    .await
                    .expect("DEL");
            }
        } else {
            let client = async_nats::connect(self.base.as_str())
                .await
                .expect("NATS answers");
            let jetstream = async_nats::jetstream::new(client);
            let names: Vec<String> = jetstream
                .stream_names()
                .filter_map(|name| std::future::ready(name.ok()))
                .collect()
                .await;
            for name in names {
                if name.starts_with(&format!("{}_", self.prefix))
                    || name == format!("KV_{}_presence", self.prefix)
                {
                    let _ = jetstream.delete_stream(&name).await;
                }
            }
        }
    }
}

/// The server at `url` answers TCP, or it is skipped loudly.
async fn reachable(name: &str, url: &str) -> bool {
    let address = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("")
        .to_owned();
    let reached = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(&address),
    )
    .await;
    if matches!(reached, Ok(Ok(_))) {
        return true;
    }
    let message = format!("{name} at {address} unreachable");
    assert!(
        std::env::var("KILN_REQUIRE_BACKENDS").as_deref() != Ok("1"),
        "{message}; KILN_REQUIRE_BACKENDS=1 requires every backend"
    );
    eprintln!(
        "SKIPPED: the tests on the {name} channel layer: {message}; set KILN_REQUIRE_BACKENDS=1 to make this fail"
    );
    false
}
