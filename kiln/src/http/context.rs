//! What Kiln knows about the request being served, in one place: the site
//! and the request id. The core service puts it in the request's extensions
//! (for the `Site` and `RequestId` extractors) and in a task-local (for
//! `reverse()` and `RequestId::current()`, which have no request at hand).
//!
//! One value for both keeps the per-request cost to one boxed extension and
//! one task-local scope.

use std::future::Future;

use super::RequestId;
use crate::project::Site;

/// The site and the request id of the request being served.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    pub(crate) site: Site,
    pub(crate) id: RequestId,
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
