//! Named routes, typed path parameters and `reverse()`.
//!
//! A route has a path pattern, a name and an [`Endpoint`] (the handlers per
//! HTTP method). Names are namespaced by their app: the route `detail` of the
//! `polls` app is `polls:detail`, and [`reverse`] turns it back into a URL.
//!
//! Path patterns use axum's syntax with an optional converter, as Django's
//! `<int:id>`: `{id:int}`, `{slug:slug}`, `{key:uuid}`, `{name}` (any text
//! without `/`) and `{*rest}` (the rest of the path). A request whose segment
//! does not fit the converter gets 404, as in Django, and `reverse` refuses
//! values that do not fit.
//!
//! # Examples
//!
//! ```
//! use kiln::prelude::*;
//!
//! async fn detail(Path(id): Path<u32>) -> String {
//!     format!("question {id}")
//! }
//!
//! let app = App::new("polls").route("/{id:int}/", "detail", get(detail));
//! let project = Project::new("mysite").mount("/polls", app);
//! let urls = project.url_registry().unwrap();
//! assert_eq!(urls.reverse("polls:detail", [("id", 3)]).unwrap(), "/polls/3/");
//! assert!(urls.reverse("polls:detail", [("id", "three")]).is_err());
//! ```

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::sync::{Arc, RwLock};

use axum::handler::Handler;
use axum::routing::MethodRouter;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

mod pattern;

pub use pattern::{Converter, Pattern, PatternError};

/// The handlers of one route, by HTTP method, with their names for `routes`.
///
/// Build it with [`get`], [`post`], ... and chain more methods:
/// `get(show).post(update)`. Any axum [`MethodRouter`] converts into one too.
#[derive(Debug)]
pub struct Endpoint {
    pub(crate) router: MethodRouter,
    pub(crate) handlers: Vec<(&'static str, &'static str)>,
    pub(crate) csrf_exempt: bool,
}

impl Endpoint {
    /// Serves the route with any tower service (a `ServeDir`, another router, ...).
    pub fn service<S>(service: S) -> Self
    where
        S: tower::Service<
                axum::extract::Request,
                Error = std::convert::Infallible,
                Response: axum::response::IntoResponse + 'static,
                Future: Send + 'static,
            > + Clone
            + Send
            + Sync
            + 'static,
    {
        Self {
            router: axum::routing::any_service(service),
            handlers: vec![("*", std::any::type_name::<S>())],
            csrf_exempt: false,
        }
    }

    /// Applies a tower layer to this route's handlers only.
    #[must_use]
    pub fn layer<L>(self, layer: L) -> Self
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
        Self {
            router: self.router.layer(layer),
            handlers: self.handlers,
            csrf_exempt: self.csrf_exempt,
        }
    }

    /// Turns CSRF protection off for this route (Django's `csrf_exempt`):
    /// for endpoints that other sites or machines post to (webhooks,
    /// token-authenticated APIs), never for a form a browser submits with
    /// its cookies.
    ///
    /// ```
    /// use kiln::prelude::*;
    ///
    /// async fn webhook(body: String) -> String { body }
    /// let app = App::new("hooks").route("/github", "github", post(webhook).csrf_exempt());
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn csrf_exempt(mut self) -> Self {
        self.csrf_exempt = true;
        self
    }

    /// The methods this endpoint answers, as shown by `routes`.
    #[must_use]
    pub fn methods(&self) -> Vec<&'static str> {
        self.handlers.iter().map(|(method, _)| *method).collect()
    }
}

impl From<MethodRouter> for Endpoint {
    fn from(router: MethodRouter) -> Self {
        Self {
            router,
            handlers: vec![("*", "(axum MethodRouter)")],
            csrf_exempt: false,
        }
    }
}

/// Defines a free function and a chaining method per HTTP method.
macro_rules! method_handlers {
    ($($method:ident => $upper:literal),* $(,)?) => {
        $(
            #[doc = concat!("Routes `", $upper, "` requests to `handler`.")]
            pub fn $method<H, T>(handler: H) -> Endpoint
            where
                H: Handler<T, ()>,
                T: 'static,
            {
                Endpoint {
                    router: axum::routing::$method(handler),
                    handlers: vec![($upper, std::any::type_name::<H>())],
                    csrf_exempt: false,
                }
            }
        )*

        impl Endpoint {
            $(
                #[doc = concat!("Also routes `", $upper, "` requests to `handler`.")]
                #[must_use]
                pub fn $method<H, T>(mut self, handler: H) -> Self
                where
                    H: Handler<T, ()>,
                    T: 'static,
                {
                    self.router = self.router.$method(handler);
                    self.handlers.push(($upper, std::any::type_name::<H>()));
                    self
                }
            )*
        }
    };
}

method_handlers! {
    get => "GET",
    post => "POST",
    put => "PUT",
    patch => "PATCH",
    delete => "DELETE",
    head => "HEAD",
    options => "OPTIONS",
}

/// Routes requests of every method to `handler`.
pub fn any<H, T>(handler: H) -> Endpoint
where
    H: Handler<T, ()>,
    T: 'static,
{
    Endpoint {
        router: axum::routing::any(handler),
        handlers: vec![("*", std::any::type_name::<H>())],
        csrf_exempt: false,
    }
}

/// A resolved route as listed by `routes` and the debug 404 page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// The full name, `app:name`, if the route has one.
    pub name: Option<String>,
    /// The methods it answers (`*` for all).
    pub methods: Vec<&'static str>,
    /// The full path pattern, prefix included.
    pub pattern: Pattern,
    /// The handler function's path, e.g. `mysite::polls::views::detail`.
    pub handler: String,
    /// The app the route belongs to (empty for project-level routes).
    pub app: String,
    /// Whether the route opted out of CSRF protection
    /// ([`Endpoint::csrf_exempt`]).
    pub csrf_exempt: bool,
}

/// Every named route of a project: the table behind [`reverse`] and `routes`.
#[derive(Debug, Default)]
pub struct UrlRegistry {
    routes: Vec<RouteInfo>,
    by_name: BTreeMap<String, usize>,
}

impl UrlRegistry {
    /// Builds the registry.
    ///
    /// # Errors
    ///
    /// [`UrlError::DuplicateName`] when two routes share a full name.
    pub(crate) fn new(routes: Vec<RouteInfo>) -> Result<Self, UrlError> {
        let mut by_name = BTreeMap::new();
        for (index, route) in routes.iter().enumerate() {
            if let Some(name) = &route.name {
                if let Some(&first) = by_name.get(name) {
                    let first: &RouteInfo = &routes[first];
                    return Err(UrlError::DuplicateName {
                        name: name.clone(),
                        first: first.pattern.to_string(),
                        second: route.pattern.to_string(),
                    });
                }
                by_name.insert(name.clone(), index);
            }
        }
        Ok(Self { routes, by_name })
    }

    /// All routes, in the order they were mounted.
    #[must_use]
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// Whether a request with `method` for `path` reaches a route that
    /// wants the CSRF check: one serves it and is not
    /// [exempt](Endpoint::csrf_exempt). A request no route serves gets its
    /// 404 or 405 unchecked, as in Django, where the check runs for a
    /// resolved view only. Only unsafe requests ask, so the scan over the
    /// routes is off the fast path of reads.
    pub(crate) fn wants_csrf_check(&self, method: &axum::http::Method, path: &str) -> bool {
        self.routes
            .iter()
            .find(|route| {
                route
                    .methods
                    .iter()
                    .any(|m| *m == "*" || *m == method.as_str())
                    && route.pattern.matches(path)
            })
            .is_some_and(|route| !route.csrf_exempt)
    }

    /// The route that would serve `path`, if any (used by error pages and APPEND_SLASH).
    #[must_use]
    pub fn resolve(&self, path: &str) -> Option<&RouteInfo> {
        self.routes.iter().find(|route| route.pattern.matches(path))
    }

    /// Builds the URL of the route called `name` (`app:route`) with `params`.
    ///
    /// # Errors
    ///
    /// [`UrlError`] when the name is unknown, a parameter is missing, unexpected
    /// or does not fit its converter.
    pub fn reverse(&self, name: &str, params: impl UrlParams) -> Result<String, UrlError> {
        let Some(&index) = self.by_name.get(name) else {
            return Err(UrlError::UnknownName {
                name: name.to_owned(),
                suggestion: self.suggest(name),
            });
        };
        let route = &self.routes[index];
        let params = params.into_pairs();
        for (key, _) in &params {
            if !route.pattern.params().any(|(param, _)| param == key) {
                return Err(UrlError::UnexpectedParam {
                    name: name.to_owned(),
                    param: key.clone(),
                    expected: route.pattern.params().map(|(p, _)| p.to_owned()).collect(),
                });
            }
        }
        route
            .pattern
            .build(|param| {
                params
                    .iter()
                    .find(|(key, _)| key == param)
                    .map(|(_, value)| value.as_str())
            })
            .map_err(|error| match error {
                PatternError::Missing(param) => UrlError::MissingParam {
                    name: name.to_owned(),
                    param,
                },
                PatternError::Mismatch {
                    param,
                    value,
                    converter,
                } => UrlError::BadParam {
                    name: name.to_owned(),
                    param,
                    value,
                    expected: converter,
                },
                other => UrlError::Pattern(other),
            })
    }

    fn suggest(&self, name: &str) -> Option<String> {
        self.by_name
            .keys()
            .map(|known| (crate::settings::edit_distance(name, known), known))
            .filter(|(distance, known)| *distance <= known.len() / 3 + 1)
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, known)| known.clone())
    }
}

/// Parameters for [`reverse`]: `()`, an array (or a reference to one), a slice or `Vec` of `(name, value)` pairs, or a map.
pub trait UrlParams {
    /// The parameters as `(name, value)` strings.
    fn into_pairs(self) -> Vec<(String, String)>;
}

impl UrlParams for () {
    fn into_pairs(self) -> Vec<(String, String)> {
        Vec::new()
    }
}

impl<K: AsRef<str>, V: Display, const N: usize> UrlParams for [(K, V); N] {
    fn into_pairs(self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.to_string()))
            .collect()
    }
}

/// An array by reference: what a compiled template passes for
/// `url("polls:detail", [("id", question.id)])`.
impl<K: AsRef<str>, V: Display, const N: usize> UrlParams for &[(K, V); N] {
    fn into_pairs(self) -> Vec<(String, String)> {
        self.as_slice().into_pairs()
    }
}

impl UrlParams for &() {
    fn into_pairs(self) -> Vec<(String, String)> {
        Vec::new()
    }
}

impl<K: AsRef<str>, V: Display> UrlParams for &[(K, V)] {
    fn into_pairs(self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.to_string()))
            .collect()
    }
}

impl<K: AsRef<str>, V: Display> UrlParams for Vec<(K, V)> {
    fn into_pairs(self) -> Vec<(String, String)> {
        self.as_slice().into_pairs()
    }
}

impl<K: AsRef<str>, V: Display> UrlParams for BTreeMap<K, V> {
    fn into_pairs(self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.to_string()))
            .collect()
    }
}

/// Why a route table could not be built or a URL could not be reversed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No route has this name.
    #[error("no route is named `{name}`{}; `routes` lists the names that exist", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownName {
        /// The name asked for.
        name: String,
        /// The closest existing name.
        suggestion: Option<String>,
    },
    /// `reverse` was called where no project's routes are known: outside a
    /// request and before the server started (a test, a background job).
    #[error(
        "cannot reverse `{name}`: no project is serving here (outside a request, before `runserver`)\n  fix: in tests use `TestClient::reverse`; elsewhere `Project::url_registry()?.reverse(...)` or `UrlRegistry::install`"
    )]
    NoProject {
        /// The name asked for.
        name: String,
    },
    /// A parameter of the pattern was not given.
    #[error("reverse(\"{name}\"): missing parameter `{param}`")]
    MissingParam {
        /// The route name.
        name: String,
        /// The parameter.
        param: String,
    },
    /// A parameter was given that the pattern does not have.
    #[error("reverse(\"{name}\"): unexpected parameter `{param}`; the route takes {expected:?}")]
    UnexpectedParam {
        /// The route name.
        name: String,
        /// The parameter.
        param: String,
        /// The parameters the route takes.
        expected: Vec<String>,
    },
    /// A value does not fit the parameter's converter.
    #[error("reverse(\"{name}\"): parameter `{param}` = {value:?} is not a valid {expected}")]
    BadParam {
        /// The route name.
        name: String,
        /// The parameter.
        param: String,
        /// The value given.
        value: String,
        /// The converter it had to fit.
        expected: Converter,
    },
    /// Two routes have the same full name.
    #[error(
        "two routes are named `{name}` ({first} and {second})\n  fix: rename one; names must be unique within an app"
    )]
    DuplicateName {
        /// The name.
        name: String,
        /// The first route's pattern.
        first: String,
        /// The second route's pattern.
        second: String,
    },
    /// Two routes claim the same path and method.
    #[error(
        "{method} {path} is routed twice (routes {first} and {second})\n  fix: remove one, or give them different paths or methods"
    )]
    Conflict {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// The first route.
        first: String,
        /// The second route.
        second: String,
    },
    /// A pattern is malformed.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

/// Characters escaped in a path segment value.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

pub(crate) fn encode_segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

// `reverse()` needs no handle: in a request it uses the registry of the
// project serving it (from the request's task-local context); the
// process-wide fallback serves code outside requests (CLI commands, spawned
// tasks) in the usual case of one project per process.
static FALLBACK: RwLock<Option<Arc<UrlRegistry>>> = RwLock::new(None);

pub(crate) fn install_fallback(registry: Arc<UrlRegistry>) {
    if let Ok(mut slot) = FALLBACK.write() {
        *slot = Some(registry);
    }
}

/// Builds the URL of the route named `name` (`"polls:detail"`) with `params`,
/// using the routes of the project being served.
///
/// ```
/// # use kiln::prelude::*;
/// # let project = Project::new("mysite")
/// #     .mount("/polls", App::new("polls").route("/{id:int}/", "detail", get(|| async { "" })));
/// # project.url_registry().unwrap().install();
/// let url = kiln::urls::reverse("polls:detail", [("id", 3)])?;
/// assert_eq!(url, "/polls/3/");
/// # Ok::<(), kiln::urls::UrlError>(())
/// ```
///
/// # Errors
///
/// As [`UrlRegistry::reverse`]; also [`UrlError::NoProject`] when no project is running.
pub fn reverse(name: &str, params: impl UrlParams) -> Result<String, UrlError> {
    let registry =
        crate::http::RequestContext::with_current(|context| Arc::clone(context.site.urls()))
            .or_else(|| FALLBACK.read().ok().and_then(|slot| slot.clone()));
    match registry {
        Some(registry) => registry.reverse(name, params),
        None => Err(UrlError::NoProject {
            name: name.to_owned(),
        }),
    }
}

impl UrlRegistry {
    /// Makes this registry the one [`reverse`] uses outside requests.
    pub fn install(self: &Arc<Self>) {
        install_fallback(Arc::clone(self));
    }
}

impl Display for RouteInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.methods.join(","),
            self.pattern,
            self.name.as_deref().unwrap_or("-")
        )
    }
}
