//! What Kiln knows about the request being served, in one place: the site,
//! the request id and the CSRF state. The core service puts it in the
//! request's extensions (for the `Site`, `RequestId` and `CsrfToken`
//! extractors) and in a task-local (for `reverse()` and
//! `RequestId::current()`, which have no request at hand).
//!
//! One value for all keeps the per-request cost to one boxed extension and
//! one task-local scope: each extension is a separate allocation, and the
//! fourth one makes the extensions' table grow.

use std::future::Future;

use super::RequestId;
use crate::project::Site;
use crate::security::csrf::CsrfState;

/// The site, the request id and the CSRF state of the request being served.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    pub(crate) site: Site,
    pub(crate) id: RequestId,
    /// Shared with the core service, which sets the cookie of a secret
    /// the handler made.
    pub(crate) csrf: CsrfState,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

impl RequestContext {
    /// Runs `future` with `self` as the current context.
    pub(crate) fn scope<F: Future>(
        self,
        future: F,
    ) -> tokio::task::futures::TaskLocalFuture<Self, F> {
        CURRENT.scope(self, future)
    }

    /// Calls `f` with the current context, if the task serves a request.
    pub(crate) fn with_current<R>(f: impl FnOnce(&Self) -> R) -> Option<R> {
        CURRENT.try_with(f).ok()
    }
}
