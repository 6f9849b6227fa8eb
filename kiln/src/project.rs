//! `Project`: mounts apps under URL prefixes, builds the router and runs it.
//!
//! The project binary is its own `manage.py`: `main` hands the project to
//! [`cli::main`](crate::cli::main), which offers `runserver`, `routes` and
//! `check`.
//!
//! # Examples
//!
//! ```no_run
//! use kiln::prelude::*;
//!
//! async fn index() -> &'static str { "Hello from the polls app" }
//!
//! fn main() -> std::process::ExitCode {
//!     let polls = App::new("polls").route("/", "index", get(index));
//!     kiln::project!().mount("/polls", polls).main()
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::{App, RouterLayer, UrlEntry};
use crate::http::SiteService;
use crate::settings::{Settings, SettingsError};
use crate::templates::{SourceDir, TemplateDir, Templates};
use crate::urls::{Endpoint, Pattern, RouteInfo, UrlError, UrlRegistry};

/// A project: its name, its folder, the apps it mounts and project-wide layers.
pub struct Project {
    name: String,
    root: PathBuf,
    mounts: Vec<Mount>,
    layers: Vec<RouterLayer>,
    router: Arc<dyn crate::db::DatabaseRouter>,
    templates: Option<TemplateDir>,
    channel_layer: Option<Arc<dyn crate::realtime::ChannelLayer>>,
    /// How Socket.IO servers reach the other nodes (this one alone unless
    /// `connect_channel_layer` connected Redis).
    #[cfg(feature = "socketio")]
    socketio_bus: Option<crate::realtime::socketio::Bus>,
}

/// An app mounted under a URL prefix.
#[derive(Debug)]
pub struct Mount {
    /// The prefix, such as `/polls` (`/` for the site root).
    pub prefix: String,
    /// The app.
    pub app: App,
}

/// The label of Kiln's built-in app (health checks); always mounted.
pub const BUILTIN_APP: &str = "kiln";

impl Project {
    /// A project named `name` whose folder is the current directory.
    /// Use [`project!`](crate::project!) in a project crate to point at the crate's folder.
    #[must_use]
    pub fn new(name: &str) -> Self {
        let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self {
            name: name.to_owned(),
            root,
            mounts: vec![Mount {
                prefix: "/".to_owned(),
                app: builtin_app(),
            }],
            layers: Vec::new(),
            router: Arc::new(crate::db::DefaultRouter),
            templates: None,
            channel_layer: None,
            #[cfg(feature = "socketio")]
            socketio_bus: None,
        }
    }

    /// Sets the channel layer that carries room messages, presence and
    /// history between the project's nodes (default: an
    /// [`InProcessLayer`](crate::realtime::InProcessLayer), for one process).
    #[must_use]
    pub fn channel_layer(mut self, layer: Arc<dyn crate::realtime::ChannelLayer>) -> Self {
        self.channel_layer = Some(layer);
        self
    }

    /// Opens the layer the `channel_layer` setting names, unless one was
    /// given with [`channel_layer`](Self::channel_layer) or the setting is
    /// the in-process default (which [`build`](Self::build) creates itself).
    ///
    /// With the `socketio` and `redis` features, a project that serves
    /// Socket.IO and whose setting is a `redis://` URL also connects
    /// socketioxide's Redis adapter there (even when a layer was given).
    ///
    /// # Errors
    ///
    /// [`BootError::ChannelLayer`] when the server cannot be reached.
    #[cfg_attr(
        not(all(feature = "socketio", feature = "redis")),
        expect(unused_mut, reason = "set only with the socketio and redis features")
    )]
    pub async fn connect_channel_layer(mut self, settings: &Settings) -> Result<Self, BootError> {
        #[cfg(all(feature = "socketio", feature = "redis"))]
        if self.socketio_bus.is_none()
            && settings.channel_layer.starts_with("redis")
            && self
                .mounts
                .iter()
                .any(|mount| !mount.app.socketio.is_empty())
        {
            let bus = crate::realtime::socketio::connect_redis(&settings.channel_layer).await?;
            self.socketio_bus = Some(bus);
        }
        #[cfg(feature = "socketio")]
        if settings.channel_layer.starts_with("nats")
            && self
                .mounts
                .iter()
                .any(|mount| !mount.app.socketio.is_empty())
        {
            tracing::warn!(
                target: "kiln::realtime",
                "Socket.IO has no NATS adapter: its broadcasts reach the sockets of this process only; \
                 use a redis:// channel_layer to serve Socket.IO from several processes"
            );
        }
        if self.channel_layer.is_some() || settings.channel_layer.starts_with("memory://") {
            return Ok(self);
        }
        let layer = crate::realtime::connect(&settings.channel_layer).await?;
        Ok(self.channel_layer(layer))
    }

    /// Sets the database router, which picks the database for each model's
    /// reads and writes (e.g. [`ReadReplicas`](crate::db::ReadReplicas)).
    #[must_use]
    pub fn database_router(mut self, router: impl crate::db::DatabaseRouter) -> Self {
        self.router = Arc::new(router);
        self
    }

    /// The database router.
    #[must_use]
    pub fn router(&self) -> &dyn crate::db::DatabaseRouter {
        &*self.router
    }

    /// Sets the project's own templates folder, searched before every app's
    /// so that it can override them (`templates/polls/detail.html` wins over
    /// the polls app's): `.templates(kiln::templates_dir!("templates"))`.
    #[must_use]
    pub fn templates(mut self, dir: TemplateDir) -> Self {
        self.templates = Some(dir);
        self
    }

    /// The templates folders in lookup order: the project's, then each
    /// app's in mount order, each read from disk or from the binary as
    /// `settings` say.
    fn template_dirs(&self, settings: &Settings) -> Vec<SourceDir> {
        let project = self.templates.map(|dir| ("the project".to_owned(), dir));
        let apps = self.mounts.iter().filter_map(|mount| {
            mount
                .app
                .templates
                .map(|dir| (format!("app `{}`", mount.app.label), dir))
        });
        project
            .into_iter()
            .chain(apps)
            .map(|(owner, dir)| SourceDir {
                owner,
                relative: dir.relative().to_owned(),
                source: dir.resolve(&self.root, settings.templates_from_disk),
            })
            .collect()
    }

    /// The project's templates engine for `settings`, with `urls` for `url()`.
    fn template_engine(&self, settings: &Settings, urls: Arc<UrlRegistry>) -> Templates {
        // Processors apply to every template, whichever app registered them.
        let processors = self
            .mounts
            .iter()
            .flat_map(|m| m.app.context_processors.iter().cloned())
            .collect();
        Templates::new(
            self.template_dirs(settings),
            processors,
            urls,
            settings.debug,
            settings.debug,
        )
    }

    /// The templates engine as `check` uses it: errors carry the file and line.
    pub(crate) fn templates_for_check(&self, settings: &Settings) -> Templates {
        let urls = self.url_registry().unwrap_or_default();
        let mut settings = settings.clone();
        settings.debug = true;
        self.template_engine(&settings, urls)
    }

    /// Sets the project folder (where `kiln.toml` lives).
    #[must_use]
    pub fn root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.root = dir.into();
        self
    }

    /// Mounts `app` under `prefix` (`"/polls"`, or `"/"` for the site root).
    #[must_use]
    pub fn mount(mut self, prefix: &str, app: App) -> Self {
        self.mounts.push(Mount {
            prefix: prefix.to_owned(),
            app,
        });
        self
    }

    /// Adds a route to the project's own, unnamespaced app (named `name`, not `app:name`):
    /// the quickest way to a single-file app.
    #[must_use]
    pub fn route(mut self, path: &str, name: &str, endpoint: impl Into<Endpoint>) -> Self {
        let project_app = match self.mounts.iter_mut().find(|m| m.app.label.is_empty()) {
            Some(mount) => mount,
            None => {
                self.mounts.push(Mount {
                    prefix: "/".to_owned(),
                    app: App::new(""),
                });
                self.mounts.last_mut().expect("just pushed")
            }
        };
        let app = std::mem::replace(&mut project_app.app, App::new(""));
        project_app.app = app.route(path, name, endpoint);
        self
    }

    /// Applies a tower layer to every route of the project. Any tower or
    /// tower-http layer works unchanged; it runs inside Kiln's own stack, so
    /// it sees the request id.
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<Request, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as tower::Service<Request>>::Future: Send + 'static,
    {
        self.layers
            .push(Box::new(move |router: Router| router.layer(layer)));
        self
    }

    /// Runs the management command line (`runserver`, `routes`, `check`) and
    /// returns the exit code; see [`cli::main`](crate::cli::main).
    pub fn main(self) -> std::process::ExitCode {
        crate::cli::main(self)
    }

    /// The project's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The project folder.
    #[must_use]
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// The mounted apps, in order (Kiln's built-in app first).
    #[must_use]
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// Keeps only the app labelled `label` (and Kiln's built-in routes), for
    /// serving one app alone as a microservice. Its URLs keep their prefix, so
    /// a load balancer can route that prefix to it and `reverse` still agrees.
    ///
    /// # Errors
    ///
    /// [`BootError::UnknownApp`] when no app has that label.
    pub fn only_app(mut self, label: &str) -> Result<Self, BootError> {
        if !self.mounts.iter().any(|m| m.app.label == label) {
            return Err(BootError::UnknownApp {
                label: label.to_owned(),
                available: self.app_labels(),
            });
        }
        self.mounts
            .retain(|m| m.app.label == label || m.app.label == BUILTIN_APP);
        Ok(self)
    }

    pub(crate) fn app_labels(&self) -> Vec<String> {
        self.mounts
            .iter()
            .map(|m| m.app.label.clone())
            .filter(|label| !label.is_empty() && label != BUILTIN_APP)
            .collect()
    }

    /// Every app's migrations as one checked dependency graph.
    ///
    /// # Errors
    ///
    /// [`GraphError`](crate::db::migrations::GraphError) for missing
    /// dependencies, cycles or conflicting leaves.
    pub fn migration_graph(
        &self,
    ) -> Result<crate::db::migrations::Graph, crate::db::migrations::GraphError> {
        crate::db::migrations::Graph::new(
            self.mounts
                .iter()
                .filter(|mount| !mount.app.migrations.is_empty())
                .map(|mount| (mount.app.label.clone(), mount.app.migrations.clone()))
                .collect(),
        )
    }

    /// What the registered models declare: every app's tables, with the
    /// renames the models declare (`renamed_from`).
    ///
    /// # Errors
    ///
    /// [`BootError::Model`] for a model the migrations cannot represent.
    pub fn models_state(
        &self,
    ) -> Result<
        (
            crate::db::migrations::ProjectState,
            crate::db::migrations::autodetect::RenameHints,
        ),
        BootError,
    > {
        let mut state = crate::db::migrations::ProjectState::default();
        let mut hints = crate::db::migrations::autodetect::RenameHints::new();
        for (app, info, _) in self.read_models()? {
            hints = hints.renamed_from(app, &info);
            state
                .models
                .insert((app.to_owned(), info.state.table.clone()), info.state);
        }
        Ok((state, hints))
    }

    /// Every registered model with its options, in mount order: what forms
    /// and the admin read.
    ///
    /// # Errors
    ///
    /// [`BootError::Model`] for a model the migrations cannot represent.
    pub fn model_entries(&self) -> Result<Vec<crate::db::ModelEntry>, BootError> {
        Ok(self
            .read_models()?
            .into_iter()
            .map(|(app, info, options)| crate::db::ModelEntry {
                app: app.to_owned(),
                table: info.state.table.clone(),
                columns: info.state.fields.iter().map(|f| f.name.clone()).collect(),
                options: options.clone(),
            })
            .collect())
    }

    /// Every registered model read from its entity, with its app and
    /// options, in mount order.
    fn read_models(
        &self,
    ) -> Result<Vec<(&str, crate::db::models::ModelInfo, &crate::db::ModelOptions)>, BootError>
    {
        let mut models = Vec::new();
        for mount in &self.mounts {
            let app = mount.app.label.as_str();
            for (read, options) in &mount.app.models {
                let info =
                    read().map_err(|error| BootError::Model(format!("app `{app}`: {error}")))?;
                models.push((app, info, options));
            }
        }
        Ok(models)
    }

    /// What `graph`'s migrations build for the apps that register models:
    /// the state their models are compared with. An app without registered
    /// models is left out rather than read as "every table dropped".
    ///
    /// # Errors
    ///
    /// [`GraphError`](crate::db::migrations::GraphError) when a migration
    /// does not replay.
    pub fn recorded_state(
        &self,
        graph: &crate::db::migrations::Graph,
    ) -> Result<crate::db::migrations::ProjectState, crate::db::migrations::GraphError> {
        let mut state = graph.final_state()?;
        let with_models: Vec<&str> = self
            .mounts
            .iter()
            .filter(|mount| !mount.app.models.is_empty())
            .map(|mount| mount.app.label.as_str())
            .collect();
        state
            .models
            .retain(|(app, _), _| with_models.contains(&app.as_str()));
        Ok(state)
    }

    /// The table of every route, checked: what `routes` prints and `reverse` uses.
    ///
    /// # Errors
    ///
    /// [`BootError`] for bad app labels or prefixes, malformed patterns, duplicate names.
    pub fn url_registry(&self) -> Result<Arc<UrlRegistry>, BootError> {
        let (infos, _) = self.resolve_routes()?;
        Ok(Arc::new(UrlRegistry::new(infos)?))
    }

    /// Checks every app and route and lists them, without consuming the endpoints.
    fn resolve_routes(&self) -> Result<(Vec<RouteInfo>, Vec<Pattern>), BootError> {
        let mut labels = BTreeMap::new();
        let mut claimed = BTreeMap::new();
        let mut infos = Vec::new();
        let mut patterns = Vec::new();
        for mount in &self.mounts {
            let app = &mount.app;
            if !app.label.is_empty() {
                app.check_label().map_err(BootError::BadApp)?;
                if let Some(previous) = labels.insert(app.label.clone(), mount.prefix.clone()) {
                    if app.label == BUILTIN_APP {
                        return Err(BootError::BadApp(format!(
                            "the app label `{BUILTIN_APP}` is reserved for Kiln's built-in app (/healthz, /readyz)\n  fix: give your app another label"
                        )));
                    }
                    return Err(BootError::DuplicateApp {
                        label: app.label.clone(),
                        first: previous,
                        second: mount.prefix.clone(),
                    });
                }
            }
            if !mount.prefix.starts_with('/') {
                return Err(BootError::BadApp(format!(
                    "mount prefix `{}` of app `{}` must start with `/`, e.g. \"/{}\"",
                    mount.prefix, app.label, mount.prefix
                )));
            }
            for UrlEntry {
                path,
                name,
                endpoint,
            } in &app.urls.routes
            {
                let pattern =
                    Pattern::join(&mount.prefix, path).map_err(|error| BootError::Route {
                        app: app.label.clone(),
                        route: name.clone().unwrap_or_else(|| path.clone()),
                        error: Box::new(error.into()),
                    })?;
                let full_name = name.as_ref().map(|name| {
                    if app.label.is_empty() {
                        name.clone()
                    } else {
                        format!("{}:{name}", app.label)
                    }
                });
                let shown = full_name.clone().unwrap_or_else(|| pattern.to_string());
                claim(&mut claimed, &pattern, &endpoint.methods(), &shown)?;
                infos.push(RouteInfo {
                    name: full_name,
                    methods: endpoint.methods(),
                    pattern: pattern.clone(),
                    handler: endpoint
                        .handlers
                        .iter()
                        .map(|(_, handler)| *handler)
                        .collect::<Vec<_>>()
                        .join(", "),
                    app: app.label.clone(),
                    csrf_exempt: endpoint.csrf_exempt,
                });
                patterns.push(pattern);
            }
        }
        Ok((infos, patterns))
    }

    /// The project's static files for `settings`: the project's `static/`
    /// folder first, so that it can override an app's file, then each app's.
    #[must_use]
    pub fn static_files(&self, settings: &Settings) -> crate::staticfiles::StaticFiles {
        let sources =
            std::iter::once(self.root.join("static"))
                .chain(self.mounts.iter().map(|mount| {
                    mount.app.static_dir.clone().unwrap_or_else(|| {
                        self.root.join("src").join(&mount.app.label).join("static")
                    })
                }))
                .collect();
        crate::staticfiles::StaticFiles::new(
            sources,
            self.root.join(&settings.static_root),
            settings.static_url.clone(),
            settings.debug,
        )
    }

    /// Checks everything and builds the site's service: the project's router
    /// inside Kiln's middleware stack, for `settings`.
    ///
    /// # Errors
    ///
    /// [`BootError`] for any mistake in apps or routes.
    pub fn build(self, settings: Settings) -> Result<(Site, SiteService), BootError> {
        crate::security::boot_check(&settings)?;
        let models = self.model_entries()?;
        crate::auth::configure(&settings).map_err(BootError::Usage)?;
        let (infos, patterns) = self.resolve_routes()?;
        let urls = Arc::new(UrlRegistry::new(infos)?);
        let static_files = self.static_files(&settings);
        let templates = self.template_engine(&settings, Arc::clone(&urls));
        let mut router = Router::new();
        if static_files.prefix().starts_with('/') {
            let path = format!("{}{{*name}}", static_files.prefix());
            router = router.route(&path, axum::routing::any(crate::staticfiles::serve));
        }
        if settings.media_url.starts_with('/') {
            let path = format!("{}{{*name}}", settings.media_url);
            router = router.route(&path, axum::routing::any(crate::storage::serve_media));
        }
        let mut patterns = patterns.into_iter();
        let has_sessions = self
            .mounts
            .iter()
            .any(|mount| mount.app.label == crate::sessions::LABEL);
        #[cfg(feature = "socketio")]
        let bus = self
            .socketio_bus
            .clone()
            .unwrap_or_else(crate::realtime::socketio::local_bus);
        #[cfg(feature = "socketio")]
        let mut socketio = Vec::new();
        for mount in self.mounts {
            #[cfg(feature = "socketio")]
            for mut pending in mount.app.socketio {
                pending.path = Pattern::join(&mount.prefix, &pending.path)
                    .map(|pattern| pattern.axum_path())
                    .unwrap_or(pending.path);
                socketio.push(
                    crate::realtime::socketio::build(pending, &settings, &bus)
                        .map_err(BootError::Usage)?,
                );
            }
            let mut app_router = Router::new();
            for entry in mount.app.urls.routes {
                let pattern = patterns.next().expect("resolve_routes lists every route");
                let path = pattern.axum_path();
                let mut method_router = entry.endpoint.router;
                if pattern.needs_converter_check() {
                    method_router = method_router.route_layer(axum::middleware::from_fn(
                        move |request: Request, next: Next| {
                            let fits = pattern.matches(request.uri().path());
                            async move {
                                if fits {
                                    next.run(request).await
                                } else {
                                    crate::http::not_found_response()
                                }
                            }
                        },
                    ));
                }
                app_router = app_router.route(&path, method_router);
            }
            for layer in mount.app.layers {
                app_router = layer(app_router);
            }
            router = router.merge(app_router);
        }
        for layer in self.layers {
            router = layer(router);
        }
        let databases = crate::db::Databases::new(
            crate::db::DatabaseConfig::all(&settings, &self.root),
            self.router,
        );
        let sessions = if has_sessions {
            let engine = crate::sessions::Engine::new(&settings, &databases)?;
            Some(Arc::new(engine))
        } else {
            None
        };
        let layer = self
            .channel_layer
            .unwrap_or_else(|| crate::realtime::InProcessLayer::new());
        let channels = crate::realtime::Channels::new(layer, &settings);
        let cache = crate::cache::Cache::from_settings(&settings)?;
        let site = Site(Arc::new(SiteInner {
            channels,
            #[cfg(feature = "socketio")]
            socketio,
            cache,
            name: self.name,
            root: self.root,
            urls,
            databases,
            static_files,
            messages_signer: Arc::new(crate::security::Signer::from_settings(
                &settings,
                crate::messages::SALT,
            )),
            settings,
            sessions,
            templates,
            models,
            ready: AtomicBool::new(true),
        }));
        let service = SiteService::new(router, &site);
        Ok((site, service))
    }
}

/// Records that `pattern` serves `methods`, refusing what axum's router could
/// not hold: the same method twice on one path, or two paths that differ only
/// in parameter names.
fn claim(
    claimed: &mut BTreeMap<String, Vec<(String, &'static str, String)>>,
    pattern: &Pattern,
    methods: &[&'static str],
    shown: &str,
) -> Result<(), BootError> {
    let path = pattern.axum_path();
    let entries = claimed.entry(pattern.shape()).or_default();
    for (other_path, other_method, other_shown) in entries.iter() {
        let conflict = other_path != &path
            || methods
                .iter()
                .any(|m| *m == "*" || *other_method == "*" || m == other_method);
        if conflict {
            return Err(UrlError::Conflict {
                method: if other_path == &path {
                    (*other_method).to_owned()
                } else {
                    "ANY".to_owned()
                },
                path,
                first: other_shown.clone(),
                second: shown.to_owned(),
            }
            .into());
        }
    }
    entries.extend(methods.iter().map(|m| (path.clone(), *m, shown.to_owned())));
    Ok(())
}

/// Kiln's built-in app: liveness and readiness probes for load balancers and orchestrators.
fn builtin_app() -> App {
    App::new(BUILTIN_APP)
        .route("/healthz", "healthz", crate::urls::get(healthz))
        .route("/readyz", "readyz", crate::urls::get(readyz))
}

/// Liveness: the process is up and serving.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: 200 while the site accepts traffic, 503 once it is shutting down,
/// so a load balancer stops sending new requests before the process exits.
async fn readyz(site: Site) -> Response {
    if site.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

impl fmt::Debug for Project {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Project")
            .field("name", &self.name)
            .field("root", &self.root)
            .field("mounts", &self.mounts)
            .field("layers", &self.layers.len())
            .field("templates", &self.templates)
            .finish()
    }
}

/// A built project as handlers see it: settings, routes and state.
/// Cheap to clone; it is also an extractor.
#[derive(Clone)]
pub struct Site(Arc<SiteInner>);

struct SiteInner {
    name: String,
    root: PathBuf,
    settings: Settings,
    urls: Arc<UrlRegistry>,
    databases: crate::db::Databases,
    static_files: crate::staticfiles::StaticFiles,
    /// `Some` when the project mounts the sessions app.
    sessions: Option<Arc<crate::sessions::Engine>>,
    /// Derived once at boot: key derivation per request would be wasted.
    messages_signer: Arc<crate::security::Signer>,
    templates: Templates,
    models: Vec<crate::db::ModelEntry>,
    ready: AtomicBool,
    channels: crate::realtime::Channels,
    /// The Socket.IO servers, closed on shutdown.
    #[cfg(feature = "socketio")]
    socketio: Vec<crate::realtime::socketio::SocketIo>,
    cache: crate::cache::Cache,
}

impl Site {
    /// The registered model of `table`, with its options (for forms and the
    /// admin).
    #[must_use]
    pub fn model(&self, table: &str) -> Option<&crate::db::ModelEntry> {
        self.0.models.iter().find(|model| model.table == table)
    }

    /// Every registered model with its options, in mount order.
    #[must_use]
    pub fn models(&self) -> &[crate::db::ModelEntry] {
        &self.0.models
    }

    /// The project's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The project folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.0.root
    }

    /// The settings the site was built with.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The route table.
    #[must_use]
    pub fn urls(&self) -> &Arc<UrlRegistry> {
        &self.0.urls
    }

    /// The cache the `cache` setting names (the [`Cache`](crate::cache::Cache)
    /// extractor gives the same one).
    #[must_use]
    pub fn cache(&self) -> &crate::cache::Cache {
        &self.0.cache
    }

    /// The project's databases, connected on first use.
    #[must_use]
    pub fn databases(&self) -> &crate::db::Databases {
        &self.0.databases
    }

    /// Where the static files are and how their URLs are built.
    #[must_use]
    pub fn static_files(&self) -> &crate::staticfiles::StaticFiles {
        &self.0.static_files
    }

    /// The signer of the messages cookie.
    pub(crate) fn messages_signer(&self) -> &Arc<crate::security::Signer> {
        &self.0.messages_signer
    }

    /// The site's sessions, when the project mounts the sessions app.
    pub(crate) fn sessions(&self) -> Option<&Arc<crate::sessions::Engine>> {
        self.0.sessions.as_ref()
    }

    /// The project's templates: render outside a request with
    /// [`Templates::render_to_string`].
    #[must_use]
    pub fn templates(&self) -> &Templates {
        &self.0.templates
    }

    /// The project's realtime channels: send to rooms and connections from
    /// outside a request (a background task, a command).
    #[must_use]
    pub fn channels(&self) -> &crate::realtime::Channels {
        &self.0.channels
    }

    /// Whether the site accepts traffic (false once shutdown has begun).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Relaxed)
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::Relaxed);
    }

    /// Tells the realtime clients that the server is going away, so that
    /// they reconnect (to another node) rather than see the socket drop:
    /// Kiln's WebSockets get a close frame 1001, now or as soon as they
    /// open; Socket.IO clients get engine.io's close packet. The server
    /// then waits for their sockets to close like any connection's.
    pub(crate) fn close_realtime(&self) {
        self.0
            .channels
            .0
            .close_all(crate::realtime::close::GOING_AWAY, "server shutting down");
        #[cfg(feature = "socketio")]
        for io in &self.0.socketio {
            let io = io.clone();
            // Resolves once every transport has closed, which `serve`
            // already waits for through the connections' slots.
            tokio::spawn(async move { io.close().await });
        }
    }
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("name", &self.0.name)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Site {
    type Rejection = crate::Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<crate::http::RequestContext>();
        context.map(|context| context.site.clone()).ok_or_else(|| {
            crate::Error::internal(std::io::Error::other(
                "the Site extractor needs Kiln's middleware stack (serve the router built by Project::build)",
            ))
        })
    }
}

/// Why a project cannot boot. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// Settings could not be loaded.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A route table problem.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A malformed route pattern, with the app and route it belongs to.
    #[error("app `{app}`, route `{route}`: {error}")]
    Route {
        /// The app.
        app: String,
        /// The route name or path.
        route: String,
        /// What is wrong (boxed: it is large and boot errors are rare).
        error: Box<UrlError>,
    },
    /// A bad app label or mount prefix.
    #[error("{0}")]
    BadApp(String),
    /// Two apps share a label.
    #[error(
        "app `{label}` is mounted twice (at {first} and {second})\n  fix: mount each app once, or give the second a different label"
    )]
    DuplicateApp {
        /// The label.
        label: String,
        /// First prefix.
        first: String,
        /// Second prefix.
        second: String,
    },
    /// `--app` names no app.
    #[error("no app is labelled `{label}`; this project has: {}", available.join(", "))]
    UnknownApp {
        /// The label asked for.
        label: String,
        /// The labels that exist.
        available: Vec<String>,
    },
    /// A database could not be reached.
    #[error(transparent)]
    Database(#[from] crate::db::ConnectError),
    /// Migrations could not be read, planned or run (boxed: it is large and
    /// boot errors are rare).
    #[error(transparent)]
    Migrate(Box<crate::db::migrations::MigrateError>),
    /// A registered model that migrations cannot represent.
    #[error("{0}")]
    Model(String),
    /// A command was given arguments that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// The channel layer that the `channel_layer` setting names could not be
    /// opened.
    #[error(transparent)]
    ChannelLayer(#[from] crate::realtime::LayerError),
    /// The cache server that the `cache` setting names does not answer.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// The server could not start listening.
    #[error("cannot listen on {addr}: {source}\n  fix: {fix}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
        /// What to do.
        fix: String,
    },
}

impl From<crate::db::migrations::MigrateError> for BootError {
    fn from(error: crate::db::migrations::MigrateError) -> Self {
        Self::Migrate(Box::new(error))
    }
}

impl From<crate::db::migrations::GraphError> for BootError {
    fn from(error: crate::db::migrations::GraphError) -> Self {
        Self::Migrate(Box::new(error.into()))
    }
}

/// A [`Project`] named after the calling crate, rooted in the crate's folder
/// (or in `KILN_ROOT`, or the current directory when the binary runs where the
/// crate folder does not exist, as on a deploy target).
#[macro_export]
macro_rules! project {
    () => {
        $crate::Project::new(env!("CARGO_PKG_NAME"))
            .root($crate::project::locate_root(env!("CARGO_MANIFEST_DIR")))
    };
}

/// Where a project's folder is at run time: `KILN_ROOT`, else the crate folder
/// if it exists, else the current directory.
#[doc(hidden)]
#[must_use]
pub fn locate_root(manifest_dir: &str) -> PathBuf {
    if let Some(root) = std::env::var_os("KILN_ROOT") {
        return PathBuf::from(root);
    }
    let manifest_dir = PathBuf::from(manifest_dir);
    if manifest_dir.is_dir() {
        manifest_dir
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    }
}

#[cfg(test)]
mod tests {
    use crate::test::TestClient;

    #[tokio::test]
    async fn readyz_answers_503_once_the_site_is_not_ready() {
        let client = TestClient::with_settings(
            super::Project::new("t"),
            crate::Settings::from_toml("").unwrap(),
        );
        assert_eq!(client.get("/readyz").send().await.status(), 200);
        client.site().set_ready(false);
        assert_eq!(client.get("/readyz").send().await.status(), 503);
        assert_eq!(client.get("/healthz").send().await.status(), 200);
    }
}
