//! The cache: one behaviour suite run on every backend, the in-process one
//! always, Redis (127.0.0.1:6379 or `KILN_TEST_REDIS_URL`) and Memcached
//! (127.0.0.1:11211 or `KILN_TEST_MEMCACHED_URL`) when they answer. A
//! server that does not answer is skipped with a `SKIPPED:` line on stderr,
//! or fails the test under `KILN_REQUIRE_BACKENDS=1`.
//!
//! Each test works under a fresh key prefix, so tests sharing a server do
//! not see each other's keys.

#[path = "support/backends.rs"]
pub mod backends;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kiln::cache::{Cache, CacheError};
use kiln::prelude::*;
use kiln::test::TestClient;

fn settings(url: &str, prefix: &str) -> Settings {
    Settings::from_toml(&format!(
        "cache = \"{url}\"\ncache_key_prefix = \"{prefix}\""
    ))
    .unwrap_or_else(|error| panic!("{url}: {error}"))
}

fn fresh_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn server_url(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

fn redis_url() -> String {
    server_url("KILN_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

fn memcached_url() -> String {
    server_url("KILN_TEST_MEMCACHED_URL", "memcached://127.0.0.1:11211")
}

/// A cache on `url` under `prefix`, or `None` (after a `SKIPPED:` line)
/// when its server does not answer.
async fn reach(url: &str, prefix: &str) -> Option<Cache> {
    let cache = Cache::from_settings(&settings(url, prefix)).expect("a valid cache URL");
    match cache.ping().await {
        Ok(()) => Some(cache),
        Err(error) => {
            backends::skip_unreachable(&format!(
                "the cache tests on {}: unreachable ({error})",
                cache.describe()
            ));
            None
        }
    }
}

/// `(backend, cache)` for every backend that answers, all under `prefix`.
async fn every_backend_under(prefix: &str) -> Vec<(&'static str, Cache)> {
    let mut caches = vec![(
        "memory",
        Cache::from_settings(&settings("memory", prefix)).expect("the in-process cache"),
    )];
    if let Some(cache) = reach(&redis_url(), prefix).await {
        caches.push(("redis", cache));
    }
    if let Some(cache) = reach(&memcached_url(), prefix).await {
        caches.push(("memcached", cache));
    }
    caches
}

async fn every_backend() -> Vec<(&'static str, Cache)> {
    every_backend_under(&fresh_prefix()).await
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct World {
    id: i32,
    random_number: i32,
}

#[tokio::test]
async fn values_round_trip_and_delete_on_every_backend() {
    for (backend, cache) in every_backend().await {
        assert_eq!(cache.get::<World>("w").await.unwrap(), None, "{backend}");
        let world = World {
            id: 7,
            random_number: 4242,
        };
        cache.set("w", &world, None).await.unwrap();
        assert_eq!(
            cache.get::<World>("w").await.unwrap(),
            Some(world),
            "{backend}"
        );
        cache.set("w", "replaced", None).await.unwrap();
        assert_eq!(
            cache.get::<String>("w").await.unwrap().as_deref(),
            Some("replaced"),
            "{backend}"
        );
        assert!(
            matches!(cache.get::<World>("w").await, Err(CacheError::Value { .. })),
            "{backend}: a value read as the wrong type is an error"
        );
        assert!(cache.delete("w").await.unwrap(), "{backend}");
        assert!(!cache.delete("w").await.unwrap(), "{backend}");
        assert_eq!(cache.get::<String>("w").await.unwrap(), None, "{backend}");
        cache.clear().await.unwrap();
    }
}

#[tokio::test]
async fn values_expire_after_their_ttl_and_touch_extends_it() {
    let caches = every_backend().await;
    // Memcached counts whole seconds: one second is its shortest expiry.
    let short = Some(Duration::from_secs(1));
    for (_, cache) in &caches {
        cache.set("gone", &1, short).await.unwrap();
        cache.set("kept", &2, short).await.unwrap();
        assert!(
            cache
                .touch("kept", Some(Duration::from_secs(60)))
                .await
                .unwrap()
        );
        assert!(!cache.touch("never-set", short).await.unwrap());
        cache.set("counter", &10, short).await.unwrap();
        assert_eq!(cache.incr("counter", 1).await.unwrap(), 11);
    }
    // Past the expiry with a wide margin: this waits, it does not time.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (backend, cache) in caches {
        assert_eq!(cache.get::<i32>("gone").await.unwrap(), None, "{backend}");
        assert_eq!(
            cache.get::<i32>("kept").await.unwrap(),
            Some(2),
            "{backend}"
        );
        assert_eq!(
            cache.get::<i32>("counter").await.unwrap(),
            None,
            "{backend}: an increment keeps the expiry"
        );
        cache.clear().await.unwrap();
    }
}

#[tokio::test]
async fn a_time_to_live_too_long_to_count_keeps_the_value() {
    // `Duration::MAX` used to panic in the in-process cache and in the
    // Memcached backend's expiry, and Redis refused it.
    for (backend, cache) in every_backend().await {
        let forever = Some(Duration::MAX);
        cache
            .set("forever", &1, forever)
            .await
            .unwrap_or_else(|error| panic!("{backend}: {error}"));
        assert_eq!(
            cache.get::<i32>("forever").await.unwrap(),
            Some(1),
            "{backend}"
        );
        assert!(cache.touch("forever", forever).await.unwrap(), "{backend}");
        assert!(cache.add("also", &2, forever).await.unwrap(), "{backend}");
        assert_eq!(
            cache.get::<i32>("also").await.unwrap(),
            Some(2),
            "{backend}"
        );
        cache.clear().await.unwrap();
    }
}

#[tokio::test]
async fn of_concurrent_adds_exactly_one_wins() {
    for (backend, cache) in every_backend().await {
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let cache = cache.clone();
                tokio::spawn(async move { (n, cache.add("lock", &n, None).await.unwrap()) })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (n, won) = task.await.unwrap();
            if won {
                winners.push(n);
            }
        }
        assert_eq!(winners.len(), 1, "{backend}: {winners:?}");
        assert_eq!(
            cache.get::<i32>("lock").await.unwrap(),
            Some(winners[0]),
            "{backend}"
        );
        assert!(!cache.add("lock", &99, None).await.unwrap(), "{backend}");
        cache.clear().await.unwrap();
    }
}

#[tokio::test]
async fn get_or_set_computes_once_under_concurrency() {
    for (backend, cache) in every_backend().await {
        let computed = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let cache = cache.clone();
                let computed = Arc::clone(&computed);
                tokio::spawn(async move {
                    cache
                        .get_or_set("expensive", None, || async move {
                            let n = computed.fetch_add(1, Ordering::SeqCst);
                            // Keeps the computation in flight while the
                            // other tasks miss too.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, kiln::Error>(format!("value {n}"))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), "value 0", "{backend}");
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1, "{backend}");
        let failed = cache
            .get_or_set("fails", None, || async {
                Err::<i32, _>(kiln::Error::bad_request("no value"))
            })
            .await
            .unwrap_err();
        assert_eq!(
            failed.status(),
            400,
            "{backend}: compute's error comes back"
        );
        assert_eq!(cache.get::<i32>("fails").await.unwrap(), None, "{backend}");
        cache.clear().await.unwrap();
    }
}

#[tokio::test]
async fn incr_and_decr_count_and_refuse_missing_keys_and_text() {
    for (backend, cache) in every_backend().await {
        let missing = cache.incr("hits", 1).await.unwrap_err();
        assert!(
            matches!(missing, CacheError::MissingKey { .. }),
            "{backend}: {missing}"
        );
        assert!(missing.to_string().contains("fix:"), "{missing}");
        assert_eq!(cache.get::<i64>("hits").await.unwrap(), None, "{backend}");
        cache.set("hits", &5, None).await.unwrap();
        assert_eq!(cache.incr("hits", 3).await.unwrap(), 8, "{backend}");
        assert_eq!(cache.decr("hits", 2).await.unwrap(), 6, "{backend}");
        assert_eq!(
            cache.get::<i64>("hits").await.unwrap(),
            Some(6),
            "{backend}"
        );
        cache.set("name", "five", None).await.unwrap();
        let text = cache.incr("name", 1).await.unwrap_err();
        assert!(
            matches!(text, CacheError::NotANumber { .. }),
            "{backend}: {text}"
        );
        cache.clear().await.unwrap();
    }
}

#[tokio::test]
async fn get_many_and_set_many_handle_several_keys() {
    for (backend, cache) in every_backend().await {
        cache
            .set_many(&[("a", 1), ("b", 2), ("c", 3)], None)
            .await
            .unwrap();
        let found = cache.get_many::<i32>(&["a", "c", "missing"]).await.unwrap();
        assert_eq!(
            found,
            [Some(1), Some(3), None],
            "{backend}: one answer per key, in order"
        );
        assert!(cache.get_many::<i32>(&[]).await.unwrap().is_empty());
        assert!(
            cache
                .set_many(&[("ok", 1), ("not ok", 2)], None)
                .await
                .is_err(),
            "{backend}: a bad key refuses the whole batch"
        );
        assert_eq!(cache.get::<i32>("ok").await.unwrap(), None, "{backend}");
        cache.clear().await.unwrap();
    }
}

#[tokio::test]
async fn clear_removes_only_this_sites_keys() {
    let ours = fresh_prefix();
    let theirs = fresh_prefix();
    let mine = every_backend_under(&ours).await;
    let others = every_backend_under(&theirs).await;
    for ((backend, cache), (_, other)) in mine.iter().zip(&others) {
        cache.set("k", &1, None).await.unwrap();
        cache.versioned(2).set("k", &2, None).await.unwrap();
        other.set("k", &3, None).await.unwrap();
        cache.clear().await.unwrap();
        assert_eq!(cache.get::<i32>("k").await.unwrap(), None, "{backend}");
        assert_eq!(
            cache.versioned(2).get::<i32>("k").await.unwrap(),
            None,
            "{backend}: every version goes"
        );
        assert_eq!(
            other.get::<i32>("k").await.unwrap(),
            Some(3),
            "{backend}: another prefix stays"
        );
        other.clear().await.unwrap();
    }
}

#[tokio::test]
async fn keys_memcached_cannot_store_are_refused_on_every_backend() {
    for (backend, cache) in every_backend().await {
        for bad in ["with space", "new\nline", "nul\0", "café", &"k".repeat(240)] {
            let error = cache.set(bad, &1, None).await.unwrap_err();
            assert!(
                matches!(error, CacheError::InvalidKey { .. }),
                "{backend} {bad:?}: {error}"
            );
            assert!(error.to_string().contains("fix:"), "{error}");
            assert!(cache.get::<i32>(bad).await.is_err(), "{backend}");
        }
        // Punctuation is fine: only spaces, control characters and
        // non-ASCII are refused.
        cache.set("user:42/profile?v=1", &1, None).await.unwrap();
        assert_eq!(
            cache.get::<i32>("user:42/profile?v=1").await.unwrap(),
            Some(1),
            "{backend}"
        );
        cache.clear().await.unwrap();
    }
}

#[tokio::test]
async fn bad_cache_settings_are_refused_with_the_fix() {
    for (toml, expected) in [
        ("cache = \"memcache://x:1\"", "is not a cache"),
        ("cache = \"memcached://no-port\"", "memcached://host:port"),
        ("cache_key_prefix = \"my site\"", "cache_key_prefix"),
        ("cache_key_prefix = \"a:b\"", "cache_key_prefix"),
        ("cache_timeout = \"0s\"", "cache_timeout"),
        ("cache_max_entries = -1", "cache_max_entries"),
    ] {
        let error = Settings::from_toml(toml).unwrap_err().to_string();
        assert!(
            error.contains(expected) && error.contains("fix:"),
            "{toml}: {error}"
        );
    }
    let defaults = Settings::from_toml("").unwrap();
    assert_eq!(defaults.cache, "memory");
    assert_eq!(defaults.cache_timeout.0, Duration::from_secs(300));
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_and_a_500() {
    // Port 1: nothing listens there.
    for url in ["redis://127.0.0.1:1", "memcached://127.0.0.1:1"] {
        let cache = Cache::from_settings(&settings(url, "x")).unwrap();
        let error = cache.ping().await.unwrap_err().to_string();
        assert!(
            error.contains("127.0.0.1:1") && error.contains("fix:"),
            "{url}: {error}"
        );
        let error = cache.get::<i32>("k").await.unwrap_err().to_string();
        assert!(error.contains("cannot get a value"), "{url}: {error}");

        async fn cached(cache: Cache) -> Result<String, kiln::Error> {
            Ok(format!("{:?}", cache.get::<i32>("k").await?))
        }
        let project = Project::new("t").route("/", "cached", get(cached));
        let client = TestClient::with_settings(project, settings(url, "x"));
        let response = client.get("/").send().await;
        assert_eq!(response.status(), 500, "{url}");
    }
}

#[tokio::test]
async fn handlers_share_the_sites_cache_through_the_extractor() {
    async fn count(cache: Cache) -> Result<String, kiln::Error> {
        cache.add("visits", &0, None).await?;
        Ok(cache.incr("visits", 1).await?.to_string())
    }
    let project = Project::new("t").route("/", "count", get(count));
    let client = TestClient::with_settings(project, settings("memory", "site"));
    assert_eq!(client.get("/").send().await.text(), "1");
    assert_eq!(client.get("/").send().await.text(), "2");
    assert_eq!(
        client.site().cache().get::<i64>("visits").await.unwrap(),
        Some(2)
    );
}
