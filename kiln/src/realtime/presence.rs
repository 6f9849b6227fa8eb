//! Presence: who is in a room, per connection, with the user and metadata the
//! consumer gives, kept in the channel layer so every node sees every member.
//!
//! Each node keeps a snapshot of a room's entries for its local members and
//! turns changes into diffs: at once from the nudges nodes publish when one of
//! their connections joins or leaves (on the room's `__presence.` companion),
//! and every `realtime_presence_ttl / 3` from the layer's full list, which is
//! how the members of a node that died without saying so leave when their
//! entries expire.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a consumer says about a connection in a room (see
/// [`Consumer::presence`](super::Consumer::presence)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    /// The user, as the application identifies it (a user id or name). One
    /// user with two tabs open has two entries with the same `user`.
    pub user: String,
    /// Anything the application shows next to the user (status, avatar...).
    #[serde(default)]
    pub meta: Value,
}

impl Presence {
    /// A presence for `user` without metadata.
    #[must_use]
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            meta: Value::Null,
        }
    }

    /// Sets the metadata.
    #[must_use]
    pub fn meta(mut self, meta: Value) -> Self {
        self.meta = meta;
        self
    }
}

/// One connection present in a room: its key (`"<node>/<connection>"`) and
/// what its consumer said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PresenceEntry {
    /// Identifies the connection; stable while it stays in the room.
    pub key: String,
    /// The user.
    pub user: String,
    /// The metadata.
    pub meta: Value,
}

impl PresenceEntry {
    pub(crate) fn decode(key: &str, value: &[u8]) -> Option<Self> {
        let presence: Presence = serde_json::from_slice(value).ok()?;
        Some(Self {
            key: key.to_owned(),
            user: presence.user,
            meta: presence.meta,
        })
    }
}

/// The change one node announces for a room (published on `__presence.<room>`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Nudge {
    #[serde(default)]
    pub(crate) joins: Vec<(String, Presence)>,
    #[serde(default)]
    pub(crate) leaves: Vec<String>,
}

/// A node's view of one room's presence, turned into diffs for its members.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    entries: BTreeMap<String, PresenceEntry>,
}

/// Entries that joined and left since the last look.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Diff {
    pub(crate) joins: Vec<PresenceEntry>,
    pub(crate) leaves: Vec<PresenceEntry>,
}

impl Diff {
    pub(crate) fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }
}

impl Snapshot {
    /// Applies a nudge; only what the snapshot did not know yet is a change.
    pub(crate) fn apply(&mut self, nudge: Nudge) -> Diff {
        let mut diff = Diff::default();
        for (key, presence) in nudge.joins {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.entries.entry(key) {
                let entry = PresenceEntry {
                    key: slot.key().clone(),
                    user: presence.user,
                    meta: presence.meta,
                };
                diff.joins.push(slot.insert(entry).clone());
            }
        }
        for key in nudge.leaves {
            if let Some(entry) = self.entries.remove(&key) {
                diff.leaves.push(entry);
            }
        }
        diff
    }

    /// Replaces the snapshot with the layer's full list and returns the
    /// difference (entries that expired are leaves).
    pub(crate) fn replace(&mut self, list: &[(String, Bytes)]) -> Diff {
        let mut fresh = BTreeMap::new();
        for (key, value) in list {
            if let Some(entry) = PresenceEntry::decode(key, value) {
                fresh.insert(key.clone(), entry);
            }
        }
        let mut diff = Diff::default();
        for (key, entry) in &fresh {
            if !self.entries.contains_key(key) {
                diff.joins.push(entry.clone());
            }
        }
        for (key, entry) in &self.entries {
            if !fresh.contains_key(key) {
                diff.leaves.push(entry.clone());
            }
        }
        self.entries = fresh;
        diff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(user: &str) -> Bytes {
        Bytes::from(serde_json::to_vec(&Presence::new(user)).unwrap_or_default())
    }

    #[test]
    fn nudges_and_lists_give_each_change_once() {
        let mut snapshot = Snapshot::default();
        let diff = snapshot.apply(Nudge {
            joins: vec![("n/1".to_owned(), Presence::new("alice"))],
            leaves: vec![],
        });
        assert_eq!(diff.joins.len(), 1);
        // The list that follows holds the same entry: no second join.
        let diff = snapshot.replace(&[("n/1".to_owned(), value("alice"))]);
        assert!(diff.is_empty());
        // The entry expired from the layer: a leave.
        let diff = snapshot.replace(&[("n/2".to_owned(), value("bob"))]);
        assert_eq!(diff.leaves[0].user, "alice");
        assert_eq!(diff.joins[0].user, "bob");
        let diff = snapshot.apply(Nudge {
            joins: vec![],
            leaves: vec!["n/2".to_owned(), "n/9".to_owned()],
        });
        assert_eq!(diff.leaves.len(), 1);
    }
}
