//! The migrations of every app as one dependency graph: which migration
//! runs after which, what state a point in history has, what to apply or
//! roll back to reach a target.

use std::collections::{BTreeMap, BTreeSet};

use super::state::ProjectState;
use super::{Migration, StateError};

/// `(app label, migration name)`.
pub type Key = (String, String);

/// Every app's migrations, checked: dependencies exist, no cycles, one leaf
/// per app.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Apps in the order the project mounts them, each with its migrations
    /// in file order.
    apps: Vec<(String, Vec<Migration>)>,
    /// For each migration, what it depends on.
    parents: BTreeMap<Key, Vec<Key>>,
}

/// A migration history that cannot be used, named precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error(
        "migration {app}.{name} depends on {dep_app}.{dep_name}, which does not exist\n  fix: restore the missing migration, or correct the dependency in src/{app}/migrations/m{name}.rs"
    )]
    MissingDependency {
        app: String,
        name: String,
        dep_app: String,
        dep_name: String,
    },
    #[error(
        "app `{app}` has two migrations named {name}\n  fix: rename one of them in src/{app}/migrations.rs"
    )]
    DuplicateName { app: String, name: String },
    #[error(
        "migrations depend on each other in a circle: {0}\n  fix: remove one of those dependencies"
    )]
    Cycle(String),
    #[error(
        "app `{app}` has conflicting migrations: {} are all latest (none depends on the others)\n  fix: run `makemigrations --merge` to add a migration that depends on all of them",
        leaves.join(" and ")
    )]
    Conflict { app: String, leaves: Vec<String> },
    #[error(
        "migration {app}.{name} does not replay: {source}\n  fix: correct the operation in src/{app}/migrations/m{name}.rs (was it edited by hand?)"
    )]
    Replay {
        app: String,
        name: String,
        source: StateError,
    },
    #[error("app `{app}` has no migration matching `{name}`{}", if candidates.is_empty() { String::new() } else { format!("; did you mean {}?", candidates.join(" or ")) })]
    UnknownMigration {
        app: String,
        name: String,
        candidates: Vec<String>,
    },
    #[error("no app is labelled `{0}`, or it has no migrations")]
    UnknownApp(String),
}

impl Graph {
    /// Builds and checks the graph.
    ///
    /// # Errors
    ///
    /// [`GraphError`] for a missing dependency, a duplicate name, a cycle or
    /// two leaves in one app.
    pub fn new(apps: Vec<(String, Vec<Migration>)>) -> Result<Self, GraphError> {
        let graph = Self::with_conflicts(apps)?;
        if let Some((app, leaves)) = graph.conflicts().into_iter().next() {
            return Err(GraphError::Conflict {
                app,
                leaves: leaves.into_iter().map(|(_, name)| name).collect(),
            });
        }
        Ok(graph)
    }

    /// As [`new`](Self::new), but accepting apps with several leaves: what
    /// `makemigrations --merge` starts from.
    ///
    /// # Errors
    ///
    /// [`GraphError`] for a missing dependency, a duplicate name or a cycle.
    pub fn with_conflicts(apps: Vec<(String, Vec<Migration>)>) -> Result<Self, GraphError> {
        let mut parents = BTreeMap::new();
        for (app, migrations) in &apps {
            for migration in migrations {
                let key = (app.clone(), migration.name.clone());
                if parents.contains_key(&key) {
                    return Err(GraphError::DuplicateName {
                        app: app.clone(),
                        name: migration.name.clone(),
                    });
                }
                parents.insert(key, migration.dependencies.clone());
            }
        }
        for ((app, name), deps) in &parents {
            for (dep_app, dep_name) in deps {
                if !parents.contains_key(&(dep_app.clone(), dep_name.clone())) {
                    return Err(GraphError::MissingDependency {
                        app: app.clone(),
                        name: name.clone(),
                        dep_app: dep_app.clone(),
                        dep_name: dep_name.clone(),
                    });
                }
            }
        }
        let graph = Self { apps, parents };
        graph.order_of(graph.parents.keys().cloned())?;
        Ok(graph)
    }

    /// Apps with more than one latest migration, and those migrations.
    #[must_use]
    pub fn conflicts(&self) -> Vec<(String, Vec<Key>)> {
        self.apps
            .iter()
            .map(|(app, _)| (app.clone(), self.leaves(app)))
            .filter(|(_, leaves)| leaves.len() > 1)
            .collect()
    }

    /// The apps that have migrations, in mount order.
    pub fn apps(&self) -> impl Iterator<Item = &str> {
        self.apps.iter().map(|(app, _)| app.as_str())
    }

    /// The migration with this key.
    #[must_use]
    pub fn migration(&self, key: &Key) -> Option<&Migration> {
        self.apps
            .iter()
            .find(|(app, _)| *app == key.0)
            .and_then(|(_, migrations)| migrations.iter().find(|m| m.name == key.1))
    }

    /// An app's migrations, in file order.
    #[must_use]
    pub fn app_migrations(&self, app: &str) -> &[Migration] {
        self.apps
            .iter()
            .find(|(label, _)| label == app)
            .map_or(&[], |(_, migrations)| migrations.as_slice())
    }

    /// Whether `key` is a known migration.
    #[must_use]
    pub fn contains(&self, key: &Key) -> bool {
        self.parents.contains_key(key)
    }

    /// The latest migrations of `app`: those no other migration of the app
    /// depends on. More than one is a conflict.
    #[must_use]
    pub fn leaves(&self, app: &str) -> Vec<Key> {
        // Only the app's own migrations count: a migration of another app
        // that depends on this app's latest does not make it any less latest.
        let depended: BTreeSet<&Key> = self
            .parents
            .iter()
            .filter(|((child_app, _), _)| child_app == app)
            .flat_map(|(_, dependencies)| dependencies)
            .filter(|(dep_app, _)| dep_app == app)
            .collect();
        self.app_migrations(app)
            .iter()
            .map(|m| (app.to_owned(), m.name.clone()))
            .filter(|key| !depended.contains(key))
            .collect()
    }

    /// Finds `app`'s migration by full name or by unique prefix (`0002`), as
    /// Django's `migrate polls 0002` does.
    ///
    /// # Errors
    ///
    /// [`GraphError::UnknownMigration`] when none or several match.
    pub fn find(&self, app: &str, name: &str) -> Result<Key, GraphError> {
        if !self.apps.iter().any(|(label, _)| label == app) {
            return Err(GraphError::UnknownApp(app.to_owned()));
        }
        let names: Vec<&str> = self
            .app_migrations(app)
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        if names.contains(&name) {
            return Ok((app.to_owned(), name.to_owned()));
        }
        let matches: Vec<&str> = names
            .iter()
            .copied()
            .filter(|candidate| candidate.starts_with(name))
            .collect();
        match matches.as_slice() {
            [only] => Ok((app.to_owned(), (*only).to_owned())),
            _ => Err(GraphError::UnknownMigration {
                app: app.to_owned(),
                name: name.to_owned(),
                candidates: matches.iter().map(|&m| m.to_owned()).collect(),
            }),
        }
    }

    /// `targets` and everything they depend on, dependencies first.
    ///
    /// # Errors
    ///
    /// [`GraphError::Cycle`] when dependencies go round.
    pub fn forwards_plan(
        &self,
        targets: impl IntoIterator<Item = Key>,
    ) -> Result<Vec<Key>, GraphError> {
        self.order_of(targets)
    }

    /// Every migration, in an order that respects dependencies (apps in
    /// mount order where they are independent).
    #[must_use]
    pub fn full_plan(&self) -> Vec<Key> {
        let all = self
            .apps
            .iter()
            .flat_map(|(app, ms)| ms.iter().map(move |m| (app.clone(), m.name.clone())));
        // `new` checked there is no cycle.
        self.order_of(all).unwrap_or_default()
    }

    /// `target` and every migration that depends on it, directly or not, in
    /// the order to roll them back (dependents first).
    #[must_use]
    pub fn dependents_of(&self, target: &Key) -> Vec<Key> {
        let mut found: BTreeSet<Key> = BTreeSet::from([target.clone()]);
        let full = self.full_plan();
        for key in &full {
            if self.parents[key].iter().any(|dep| found.contains(dep)) {
                found.insert(key.clone());
            }
        }
        full.into_iter()
            .rev()
            .filter(|key| found.contains(key))
            .collect()
    }

    /// The state that applying `plan` in order builds from nothing.
    ///
    /// # Errors
    ///
    /// [`GraphError::Replay`] naming the migration whose operation does not fit.
    pub fn state_after(&self, plan: &[Key]) -> Result<ProjectState, GraphError> {
        let mut state = ProjectState::default();
        for key in plan {
            self.replay(key, &mut state)?;
        }
        Ok(state)
    }

    /// The state just before `key` runs: everything it depends on, replayed.
    ///
    /// # Errors
    ///
    /// As [`state_after`](Self::state_after).
    pub fn state_before(&self, key: &Key) -> Result<ProjectState, GraphError> {
        let mut plan = self.forwards_plan([key.clone()])?;
        plan.retain(|k| k != key);
        self.state_after(&plan)
    }

    /// The state of every app with all its migrations applied.
    ///
    /// # Errors
    ///
    /// As [`state_after`](Self::state_after).
    pub fn final_state(&self) -> Result<ProjectState, GraphError> {
        self.state_after(&self.full_plan())
    }

    /// Applies `key`'s operations to `state`.
    ///
    /// # Errors
    ///
    /// As [`state_after`](Self::state_after).
    pub fn replay(&self, key: &Key, state: &mut ProjectState) -> Result<(), GraphError> {
        let Some(migration) = self.migration(key) else {
            return Ok(());
        };
        for operation in &migration.operations {
            operation
                .apply(&key.0, state)
                .map_err(|source| GraphError::Replay {
                    app: key.0.clone(),
                    name: key.1.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Depth-first post-order from `targets`: each migration after all it
    /// depends on; deterministic because targets and parents are ordered.
    fn order_of(&self, targets: impl IntoIterator<Item = Key>) -> Result<Vec<Key>, GraphError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        let mut marks: BTreeMap<Key, Mark> = BTreeMap::new();
        let mut order = Vec::new();
        for target in targets {
            // An explicit stack: long histories would overflow recursion.
            let mut stack: Vec<(Key, usize)> = vec![(target, 0)];
            while let Some((key, next)) = stack.pop() {
                if next == 0 {
                    match marks.get(&key) {
                        Some(Mark::Done) => continue,
                        Some(Mark::Visiting) => {
                            let path: Vec<String> = stack
                                .iter()
                                .map(|((app, name), _)| format!("{app}.{name}"))
                                .chain([format!("{}.{}", key.0, key.1)])
                                .collect();
                            return Err(GraphError::Cycle(path.join(" -> ")));
                        }
                        None => {
                            marks.insert(key.clone(), Mark::Visiting);
                        }
                    }
                }
                let parents = self.parents.get(&key).map_or(&[][..], Vec::as_slice);
                if let Some(parent) = parents.get(next) {
                    stack.push((key, next + 1));
                    match marks.get(parent) {
                        Some(Mark::Done) => {}
                        Some(Mark::Visiting) => {
                            let path: Vec<String> = stack
                                .iter()
                                .map(|((app, name), _)| format!("{app}.{name}"))
                                .chain([format!("{}.{}", parent.0, parent.1)])
                                .collect();
                            return Err(GraphError::Cycle(path.join(" -> ")));
                        }
                        None => stack.push((parent.clone(), 0)),
                    }
                } else {
                    marks.insert(key.clone(), Mark::Done);
                    order.push(key);
                }
            }
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrations::{Field, ModelState, Type};

    fn key(app: &str, name: &str) -> Key {
        (app.to_owned(), name.to_owned())
    }

    fn polls() -> Vec<Migration> {
        vec![
            Migration::new("0001_initial").create_model(
                ModelState::new("polls_question")
                    .field(Field::new("id", Type::Integer).auto_increment())
                    .primary_key(&["id"]),
            ),
            Migration::new("0002_text")
                .depends_on("polls", "0001_initial")
                .add_field("polls_question", Field::new("text", Type::Text)),
        ]
    }

    #[test]
    fn plans_put_dependencies_first_across_apps() {
        let chat = vec![
            Migration::new("0001_initial")
                .depends_on("polls", "0002_text")
                .create_model(ModelState::new("chat_room")),
        ];
        let graph = Graph::new(vec![("chat".into(), chat), ("polls".into(), polls())]).unwrap();
        assert_eq!(
            graph.full_plan(),
            vec![
                key("polls", "0001_initial"),
                key("polls", "0002_text"),
                key("chat", "0001_initial")
            ]
        );
        assert_eq!(
            graph.dependents_of(&key("polls", "0002_text")),
            vec![key("chat", "0001_initial"), key("polls", "0002_text")]
        );
        let state = graph.final_state().unwrap();
        assert!(
            state
                .model("polls", "polls_question")
                .unwrap()
                .get_field("text")
                .is_some()
        );
        let before = graph.state_before(&key("polls", "0002_text")).unwrap();
        assert!(
            before
                .model("polls", "polls_question")
                .unwrap()
                .get_field("text")
                .is_none()
        );
    }

    #[test]
    fn a_missing_dependency_names_both_migrations() {
        let broken = vec![Migration::new("0002_x").depends_on("polls", "0001_gone")];
        let error = Graph::new(vec![("polls".into(), broken)]).unwrap_err();
        assert_eq!(
            error,
            GraphError::MissingDependency {
                app: "polls".into(),
                name: "0002_x".into(),
                dep_app: "polls".into(),
                dep_name: "0001_gone".into()
            }
        );
        assert!(error.to_string().contains("fix:"));
    }

    #[test]
    fn two_leaves_in_an_app_are_a_conflict_that_points_to_merge() {
        let mut migrations = polls();
        migrations.push(Migration::new("0002_other").depends_on("polls", "0001_initial"));
        let error = Graph::new(vec![("polls".into(), migrations)]).unwrap_err();
        assert!(
            matches!(error, GraphError::Conflict { ref leaves, .. } if leaves == &["0002_text", "0002_other"])
        );
        assert!(error.to_string().contains("makemigrations --merge"));
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let migrations = vec![
            Migration::new("0001_a").depends_on("polls", "0002_b"),
            Migration::new("0002_b").depends_on("polls", "0001_a"),
        ];
        let error = Graph::new(vec![("polls".into(), migrations)]).unwrap_err();
        assert!(
            matches!(error, GraphError::Cycle(ref path) if path.contains("polls.0001_a")),
            "{error}"
        );
    }

    #[test]
    fn hand_edited_migrations_that_do_not_replay_name_the_file() {
        let mut migrations = polls();
        migrations.push(
            Migration::new("0003_oops")
                .depends_on("polls", "0002_text")
                .remove_field("polls_question", "title"),
        );
        let graph = Graph::new(vec![("polls".into(), migrations)]).unwrap();
        let error = graph.final_state().unwrap_err().to_string();
        assert!(error.contains("polls.0003_oops"), "{error}");
        assert!(error.contains("no field `title`"), "{error}");
        assert!(
            error.contains("src/polls/migrations/m0003_oops.rs"),
            "{error}"
        );
    }

    #[test]
    fn migrations_are_found_by_unique_prefix() {
        let graph = Graph::new(vec![("polls".into(), polls())]).unwrap();
        assert_eq!(
            graph.find("polls", "0002").unwrap(),
            key("polls", "0002_text")
        );
        assert!(matches!(
            graph.find("polls", "00"),
            Err(GraphError::UnknownMigration { candidates, .. }) if candidates.len() == 2
        ));
        assert!(matches!(
            graph.find("chat", "0001"),
            Err(GraphError::UnknownApp(_))
        ));
    }
}
