//! What every template sees besides the view's context: values added by
//! context processors (Django's `context_processors`). Kiln's own add
//! `request`, `user` and `messages`; apps and projects add theirs with
//! [`App::context_processor`](crate::App::context_processor).

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use axum::http::{Extensions, HeaderMap, Method, Uri};
use minijinja::Value;
use minijinja::value::{Enumerator, Object};

use crate::http::RequestContext;

/// A borrowed view of the request a page is rendered for.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RequestView<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI as received (path and query).
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The extensions, where Kiln's layers leave what they found (the
    /// request id today; the session and the user later).
    pub extensions: &'a Extensions,
}

/// What [`render`](super::render) accepts as the request: `Parts` (an
/// extractor) or a whole `Request`.
pub trait RequestHead {
    /// The view of the request.
    fn view(&self) -> RequestView<'_>;
}

impl RequestHead for axum::http::request::Parts {
    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            extensions: &self.extensions,
        }
    }
}

impl<B> RequestHead for axum::http::Request<B> {
    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: self.method(),
            uri: self.uri(),
            headers: self.headers(),
            extensions: self.extensions(),
        }
    }
}

impl RequestHead for RequestView<'_> {
    fn view(&self) -> RequestView<'_> {
        *self
    }
}

/// The values context processors add, by name. A view's own context wins
/// over them, as in Django.
#[derive(Debug, Default)]
pub struct ContextValues {
    pub(crate) values: Vec<(Cow<'static, str>, Value)>,
}

impl ContextValues {
    /// Adds (or replaces) `key`.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.values.push((key, value)),
        }
    }
}

/// A context processor: adds values for every template rendered for a request.
pub type ContextProcessor = Arc<dyn Fn(RequestView<'_>, &mut ContextValues) + Send + Sync>;

/// Kiln's processors, in the order they run: `request`, `user`,
/// `messages`, and the CSRF state that `csrf_input()` reads.
pub(crate) fn builtin() -> Vec<ContextProcessor> {
    vec![
        Arc::new(request),
        Arc::new(user),
        Arc::new(messages),
        Arc::new(csrf),
    ]
}

/// Adds the request's CSRF state under a hidden name, for the
/// `csrf_input()` and `csrf_token()` functions.
fn csrf(request: RequestView<'_>, context: &mut ContextValues) {
    if let Some(csrf) = crate::security::csrf::TemplateCsrf::for_view(request) {
        context.insert(
            crate::security::csrf::TemplateCsrf::VARIABLE,
            Value::from_object(csrf),
        );
    }
}

/// Adds `request`: `request.method`, `request.path`, `request.full_path`,
/// `request.query_string`, `request.GET` (the query parameters, the last
/// value of each) and `request.id` (the request id).
pub fn request(request: RequestView<'_>, context: &mut ContextValues) {
    let id = request
        .extensions
        .get::<RequestContext>()
        .map(|context| context.id.as_str().to_owned());
    context.insert(
        "request",
        Value::from_object(RequestObject {
            method: request.method.clone(),
            uri: request.uri.clone(),
            id,
        }),
    );
}

/// Adds `user`: the request's logged-in user (`user.is_authenticated`,
/// `user.username`, `user.email`, `user.is_staff`, `user.is_superuser`,
/// `user.id`; never the password hash), loaded by Kiln's stack (see
/// [`crate::auth::login`]), or the anonymous user (`user.is_authenticated`
/// false, `user.is_anonymous` true, `user.username` empty).
pub fn user(request: RequestView<'_>, context: &mut ContextValues) {
    static ANONYMOUS: LazyLock<Value> = LazyLock::new(|| {
        minijinja::context! { is_authenticated => false, is_anonymous => true, username => "", is_staff => false, is_superuser => false }
    });
    let user = crate::auth::login::template_user(request.extensions);
    context.insert("user", user.unwrap_or_else(|| ANONYMOUS.clone()));
}

/// Adds `messages`: the request's flash messages (see
/// [`crate::messages`]), each with `level`, `tags` (Django's CSS class) and
/// `text`, and shown as its text by `{{ message }}`. A page that reads them
/// clears them: [`render`](super::render) then sends the cookie's removal.
pub fn messages(request: RequestView<'_>, context: &mut ContextValues) {
    let carries_messages = request
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .any(|cookie| {
            cookie
                .to_str()
                .is_ok_and(|c| c.contains(crate::messages::COOKIE))
        });
    if !carries_messages {
        // Most requests: no cookie to parse or check. One empty list serves
        // them all: with nothing to read, its `read` flag is never set.
        static NONE: LazyLock<Value> =
            LazyLock::new(|| Value::from_object(MessageList::new(Vec::new())));
        context.insert("messages", NONE.clone());
        return;
    }
    let site = request
        .extensions
        .get::<RequestContext>()
        .map(|current| current.site.clone())
        .or_else(|| RequestContext::with_current(|current| current.site.clone()));
    let queued = site
        .map(|site| {
            crate::messages::Messages::from_request(&site, request.headers, request.extensions)
                .peek()
                .to_vec()
        })
        .unwrap_or_default();
    context.insert("messages", Value::from_object(MessageList::new(queued)));
}

/// The root of a page's context: the view's values, then the context
/// processors' where the view has no such key (as in Django, the view
/// wins). One object looked up in place, rather than the processors'
/// values copied into a map and merged with `merge_maps`: a page looks up
/// a few names, and the map and the merge cost about 1,700 instructions a
/// page (callgrind, benchmarks/template-bench).
#[derive(Debug)]
pub(crate) struct PageContext {
    view: Value,
    processed: Vec<(Cow<'static, str>, Value)>,
}

impl PageContext {
    /// The root value for `view`'s context and the processors' `processed`.
    pub(crate) fn root(view: Value, processed: Vec<(Cow<'static, str>, Value)>) -> Value {
        Value::from_object(Self { view, processed })
    }
}

impl Object for PageContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some(key) => self.get_value_by_str(key),
            None => self.view.get_item(key).ok().filter(|v| !v.is_undefined()),
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        if let Some(value) = self.view.get_attr(key).ok().filter(|v| !v.is_undefined()) {
            return Some(value);
        }
        self.processed
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // The keys of both, sorted and once each (what minijinja's
        // `merge_maps` gave before).
        let mut keys = std::collections::BTreeSet::new();
        if self.view.kind() == minijinja::value::ValueKind::Map
            && let Ok(view_keys) = self.view.try_iter()
        {
            keys.extend(view_keys);
        }
        keys.extend(self.processed.iter().map(|(name, _)| Value::from(&**name)));
        Enumerator::Values(keys.into_iter().collect())
    }
}

/// `messages` in templates: a sequence that notes whether it was read.
#[derive(Debug)]
pub(crate) struct MessageList {
    messages: Vec<crate::messages::Message>,
    read: std::sync::atomic::AtomicBool,
}

impl MessageList {
    fn new(messages: Vec<crate::messages::Message>) -> Self {
        Self {
            messages,
            read: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the template looked at a message.
    pub(crate) fn was_read(&self) -> bool {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Object for MessageList {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let message = self.messages.get(key.as_usize()?)?;
        self.read.store(true, std::sync::atomic::Ordering::Relaxed);
        Some(Value::from_object(MessageValue(message.clone())))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.messages.len())
    }
}

/// One message in a template.
#[derive(Debug)]
struct MessageValue(crate::messages::Message);

impl Object for MessageValue {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "level" | "tags" | "level_tag" => Some(Value::from(self.0.level.to_string())),
            "text" | "message" => Some(Value::from(self.0.text.clone())),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.text)
    }
}

/// `request` in templates: computed on access, so a page that does not
/// use it costs two reference-count increments.
#[derive(Debug)]
struct RequestObject {
    method: Method,
    uri: Uri,
    id: Option<String>,
}

impl Object for RequestObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "method" => Value::from(self.method.as_str()),
            "path" => Value::from(self.uri.path()),
            "query_string" => Value::from(self.uri.query().unwrap_or("")),
            "full_path" => Value::from(
                self.uri
                    .path_and_query()
                    .map_or(self.uri.path(), |p| p.as_str()),
            ),
            "GET" => {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_str(self.uri.query().unwrap_or("")).unwrap_or_default();
                pairs
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into()
            }
            "id" => Value::from(self.id.clone()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["method", "path", "full_path", "query_string", "GET", "id"])
    }
}
