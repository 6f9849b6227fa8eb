//! The background task that samples the server every second.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kiln::db::prelude::*;
use kiln::deps::tokio;
use kiln::prelude::*;
use serde_json::json;

use super::Metrics;
use crate::chat::models::message;
use crate::polls::models::choice;

/// Samples and publishes until the process ends. A failed sample or
/// publish is logged and the next tick tries again.
pub(super) async fn run(metrics: Arc<Metrics>, site: Site) {
    let mut ticks = tokio::time::interval(super::INTERVAL);
    // After a stall (a suspended laptop), carry on rather than catch up
    // with a burst of samples.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut previous = metrics.requests();
    loop {
        ticks.tick().await;
        let requests = metrics.requests();
        let sample = json!({
            "time": ChronoUtc::now().timestamp_millis(),
            "requests_per_second": requests.saturating_sub(previous),
            "websockets": site.channels().connections(),
            "stored": stored(&site).await,
        });
        previous = requests;
        let payload = sample.to_string().into_bytes().into();
        let layer = site.channels().layer();
        match layer.publish(super::ROOM, payload, super::KEEP).await {
            Ok(id) => {
                // Only the first publish sets it.
                let _ =
                    metrics
                        .first_id
                        .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed);
                metrics.last_id.store(id, Ordering::Relaxed);
            }
            Err(error) => kiln::deps::tracing::warn!(%error, "dashboard sample not published"),
        }
    }
}

/// Chat messages and poll votes in the database, or `null` when the
/// database does not answer (the chart shows a gap).
async fn stored(site: &Site) -> serde_json::Value {
    let counts = async {
        let db = site
            .databases()
            .default_db()
            .await
            .map_err(|error| DbErr::Custom(error.to_string()))?;
        let messages = message::Entity::find().count(db).await?;
        let votes: Option<i64> = choice::Entity::find()
            .sum(choice::Column::Votes, db)
            .await?;
        Ok::<_, DbErr>(json!({ "chat_messages": messages, "votes": votes.unwrap_or(0) }))
    };
    match counts.await {
        Ok(counts) => counts,
        Err(error) => {
            kiln::deps::tracing::warn!(%error, "dashboard counts unavailable");
            serde_json::Value::Null
        }
    }
}
