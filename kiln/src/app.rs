//! `App`: a reusable piece of a project (Django's AppConfig).
//!
//! An app bundles its named routes and the layers that apply to them; later
//! capabilities add its models, migrations, templates, static files, admin
//! registrations and real-time endpoints. A [`Project`](crate::Project)
//! mounts apps under URL prefixes. An app keeps Django's fixed file names:
//! `src/<app>.rs` defines it, `src/<app>/views.rs` holds the handlers and
//! `src/<app>/urls.rs` the routes.
//!
//! # Examples
//!
//! ```
//! use kiln::prelude::*;
//!
//! async fn index() -> &'static str { "polls" }
//!
//! pub fn app() -> App {
//!     App::new("polls").urls(Urls::new().route("/", "index", get(index)))
//! }
//! ```

use std::fmt;

use axum::Router;

use crate::db::ModelOptions;
use crate::db::migrations::Migration;
use crate::db::models::{ModelError, ModelInfo, model_info};
use crate::templates::{ContextProcessor, ContextValues, RequestView, TemplateDir};
use crate::urls::Endpoint;

/// A deferred `Router::layer` call, applied when the project is built.
pub(crate) type RouterLayer = Box<dyn FnOnce(Router) -> Router + Send>;

/// An ordered list of routes, as an app's `urls.rs` returns it.
#[derive(Default)]
pub struct Urls {
    pub(crate) routes: Vec<UrlEntry>,
}

/// A route before the project has checked and mounted it.
pub(crate) struct UrlEntry {
    pub(crate) path: String,
    pub(crate) name: Option<String>,
    pub(crate) endpoint: Endpoint,
}

impl Urls {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route named `name` (unique within the app) at `path`.
    ///
    /// `path` uses axum's syntax with optional converters: `/{id:int}/`.
    /// It is checked when the project boots, which reports a bad pattern
    /// with the app and route it belongs to.
    #[must_use]
    pub fn route(mut self, path: &str, name: &str, endpoint: impl Into<Endpoint>) -> Self {
        self.routes.push(UrlEntry {
            path: path.to_owned(),
            name: Some(name.to_owned()),
            endpoint: endpoint.into(),
        });
        self
    }

    /// Adds a route without a name: it is served but cannot be reversed.
    #[must_use]
    pub fn unnamed(mut self, path: &str, endpoint: impl Into<Endpoint>) -> Self {
        self.routes.push(UrlEntry {
            path: path.to_owned(),
            name: None,
            endpoint: endpoint.into(),
        });
        self
    }

    /// Appends the routes of `other`.
    #[must_use]
    pub fn extend(mut self, other: Urls) -> Self {
        self.routes.extend(other.routes);
        self
    }
}

impl fmt::Debug for Urls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|route| (&route.path, &route.name)))
            .finish()
    }
}

/// A Kiln app: a label, its routes and layers, its models and migrations.
pub struct App {
    pub(crate) label: String,
    pub(crate) urls: Urls,
    pub(crate) layers: Vec<RouterLayer>,
    pub(crate) migrations: Vec<Migration>,
    pub(crate) models: Vec<(ModelReader, ModelOptions)>,
    pub(crate) static_dir: Option<std::path::PathBuf>,
    pub(crate) templates: Option<TemplateDir>,
    pub(crate) context_processors: Vec<ContextProcessor>,
    #[cfg(feature = "socketio")]
    pub(crate) socketio: Vec<crate::realtime::socketio::Pending>,
}

/// Reads one registered model's state, when `makemigrations` asks.
pub(crate) type ModelReader = fn() -> Result<ModelInfo, ModelError>;

impl App {
    /// A new app. The label names it in route names (`label:route`), in the
    /// CLI (`runserver --app label`) and, later, in its tables and templates.
    /// It must be a lowercase identifier (`polls`, `chat_rooms`).
    #[must_use]
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            urls: Urls::new(),
            layers: Vec::new(),
            migrations: Vec::new(),
            models: Vec::new(),
            static_dir: None,
            templates: None,
            context_processors: Vec::new(),
            #[cfg(feature = "socketio")]
            socketio: Vec::new(),
        }
    }

    /// The app's label.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Adds a named route; see [`Urls::route`].
    #[must_use]
    pub fn route(mut self, path: &str, name: &str, endpoint: impl Into<Endpoint>) -> Self {
        self.urls = self.urls.route(path, name, endpoint);
        self
    }

    /// Adds the routes of an app's `urls.rs`.
    #[must_use]
    pub fn urls(mut self, urls: Urls) -> Self {
        self.urls = self.urls.extend(urls);
        self
    }

    /// Registers a model (a SeaORM entity) of the app: `makemigrations`
    /// compares it with what the app's migrations build.
    ///
    /// ```
    /// # mod question {
    /// #     use kiln::db::prelude::*;
    /// #     #[sea_orm::model]
    /// #     #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    /// #     #[sea_orm(table_name = "polls_question")]
    /// #     pub struct Model {
    /// #         #[sea_orm(primary_key)]
    /// #         pub id: i64,
    /// #         pub question_text: String,
    /// #     }
    /// #     impl ActiveModelBehavior for ActiveModel {}
    /// # }
    /// let polls = kiln::App::new("polls").model::<question::Entity>();
    /// # let _ = polls;
    /// ```
    #[must_use]
    pub fn model<E: sea_orm::EntityTrait + Default>(self) -> Self {
        self.model_with::<E>(ModelOptions::new())
    }

    /// Registers a model with its options for people: names, help texts,
    /// choices, ordering, display (see [`ModelOptions`]).
    #[must_use]
    pub fn model_with<E: sea_orm::EntityTrait + Default>(mut self, options: ModelOptions) -> Self {
        self.models
            .push((model_info::<E>, options.label_rows_of::<E>()));
        self
    }

    /// Sets the app's migrations, as `src/<app>/migrations.rs` lists them
    /// (`makemigrations` writes both the files and that list).
    #[must_use]
    pub fn migrations(mut self, migrations: Vec<Migration>) -> Self {
        self.migrations = migrations;
        self
    }

    /// Sets the folder of the app's static files. By default it is
    /// `src/<label>/static` in the project folder, where `kiln startapp`
    /// puts an app; an app from another crate names its own, e.g.
    /// `concat!(env!("CARGO_MANIFEST_DIR"), "/static")`.
    /// See [`staticfiles`](crate::staticfiles).
    #[must_use]
    pub fn static_dir(mut self, folder: impl Into<std::path::PathBuf>) -> Self {
        self.static_dir = Some(folder.into());
        self
    }

    /// Sets the app's templates folder, Django's `<app>/templates/`:
    /// `.templates(kiln::templates_dir!("src/polls/templates"))`. Keep the
    /// app's templates in a subfolder named after it
    /// (`src/polls/templates/polls/detail.html`, rendered as
    /// `polls/detail.html`) so that apps do not shadow each other.
    #[must_use]
    pub fn templates(mut self, dir: TemplateDir) -> Self {
        self.templates = Some(dir);
        self
    }

    /// Adds a context processor: a function that adds values to the
    /// context of every template rendered for a request, whichever app
    /// renders it (see [`crate::templates::processors`]). Processors run in
    /// mount order, after Kiln's own.
    ///
    /// ```
    /// let app = kiln::App::new("shop").context_processor(|_request, context| {
    ///     context.insert("currency", "EUR");
    /// });
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn context_processor<F>(mut self, processor: F) -> Self
    where
        F: Fn(RequestView<'_>, &mut ContextValues) + Send + Sync + 'static,
    {
        self.context_processors.push(std::sync::Arc::new(processor));
        self
    }

    /// Serves the Socket.IO protocol (what the `socket.io-client` npm
    /// package speaks) at `path`, as the route `name`; `setup` registers its
    /// namespaces when the project is built. Cargo feature `socketio`; see
    /// [`realtime::socketio`](crate::realtime::socketio).
    ///
    /// ```
    /// use kiln::realtime::socketio::{Data, SocketRef};
    ///
    /// let chat = kiln::App::new("chat").socketio("/socket.io/", "socketio", |io| {
    ///     io.ns("/", async |socket: SocketRef| {
    ///         socket.on("ping", async |socket: SocketRef, Data::<String>(text)| {
    ///             let _ = socket.emit("pong", &text);
    ///         });
    ///     });
    /// });
    /// # let _ = chat;
    /// ```
    #[cfg(feature = "socketio")]
    #[must_use]
    pub fn socketio<F>(mut self, path: &str, name: &str, setup: F) -> Self
    where
        F: FnOnce(&mut crate::realtime::socketio::SocketIoSetup) + Send + 'static,
    {
        let slot = std::sync::Arc::new(std::sync::OnceLock::new());
        let endpoint = crate::realtime::socketio::endpoint(std::sync::Arc::clone(&slot));
        self.urls = self.urls.route(path, name, endpoint);
        self.socketio.push(crate::realtime::socketio::Pending {
            path: path.to_owned(),
            slot,
            setup: Box::new(setup),
        });
        self
    }

    /// Applies a tower layer to this app's routes only (authentication for an
    /// API app, a CORS policy, ...). Any tower or tower-http layer works.
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response:
            axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.layers
            .push(Box::new(move |router: Router| router.layer(layer)));
        self
    }

    pub(crate) fn check_label(&self) -> Result<(), String> {
        let valid = !self.label.is_empty()
            && self
                .label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !self.label.starts_with(|c: char| c.is_ascii_digit());
        if valid {
            Ok(())
        } else {
            Err(format!(
                "app label `{}` must be a lowercase identifier such as `polls` or `chat_rooms`",
                self.label
            ))
        }
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("label", &self.label)
            .field("urls", &self.urls)
            .field("layers", &self.layers.len())
            .field("models", &self.models.len())
            .field("templates", &self.templates)
            .field(
                "migrations",
                &self.migrations.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}
