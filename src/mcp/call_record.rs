//! What one MCP request did, filled in as it passes the transport layers and the tool handler,
//! and read once at the end to write its audit row. It travels in the request's extensions,
//! which rmcp hands to handlers as `http::request::Parts`.

use std::sync::{Arc, Mutex, MutexGuard};

use rmcp::{RoleServer, service::RequestContext};

use crate::domain::{
    auth::Principal,
    search::{CallCost, CallStats},
};

/// A shared, per-request record. Clones refer to the same record.
#[derive(Debug, Clone)]
pub struct CallRecord {
    request_id: Arc<str>,
    info: Arc<Mutex<CallInfo>>,
}

/// The facts gathered about a request.
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    /// The JSON-RPC method, once the body has been read.
    pub method: Option<String>,
    /// The tool name for `tools/call`.
    pub tool: Option<String>,
    /// Who the verified token stands for.
    pub principal: Option<Principal>,
    /// Set when a tool ran: `None` for success, else the tool error's code.
    pub tool_result: Option<Option<&'static str>>,
    /// Why authentication or authorization refused the request.
    pub auth_failure: Option<&'static str>,
    /// How the tool used the search backend (provider, cache hit, attempts), when it did.
    pub upstream: Option<CallStats>,
    /// The backend's id for the call, when it sent one.
    pub upstream_request_id: Option<String>,
    /// What the call cost, when the backend said.
    pub cost: CallCost,
    /// What the tool was asked for (query or URLs), at most 200 characters.
    pub query_summary: Option<String>,
    /// The trace id of the MCP request: its span's when traces are exported, else the one its
    /// `params._meta.traceparent` or the `traceparent` header names.
    pub trace_id: Option<String>,
    /// The MCP request's span, when traces are exported: the tool's spans are its children.
    pub span: Option<tracing::Span>,
}

impl CallRecord {
    /// An empty record for the request with this id.
    pub fn new(request_id: &str) -> Self {
        Self {
            request_id: request_id.into(),
            info: Arc::default(),
        }
    }

    /// The request's id, as logged and sent back in `x-request-id`.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The record of the request a handler is serving, when the transport attached one.
    pub fn from_context(context: &RequestContext<RoleServer>) -> Option<Self> {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Self>())
            .cloned()
    }

    /// Records that the tool ran, with its error code when it reported an error.
    pub fn tool_finished(&self, error_code: Option<&'static str>) {
        self.lock().tool_result = Some(error_code);
    }

    /// Records how the tool used the search backend.
    pub fn upstream_used(&self, stats: CallStats, request_id: Option<String>, cost: CallCost) {
        let mut info = self.lock();
        info.upstream = Some(stats);
        info.upstream_request_id = request_id;
        info.cost = cost;
    }

    /// Applies `update` to the record.
    pub fn update(&self, update: impl FnOnce(&mut CallInfo)) {
        update(&mut self.lock());
    }

    /// Takes the facts out of the record, leaving it empty: for the audit row, written once the
    /// request is over.
    pub fn take(&self) -> CallInfo {
        std::mem::take(&mut *self.lock())
    }

    /// Reads from the record without copying all of it.
    pub fn read<R>(&self, read: impl FnOnce(&CallInfo) -> R) -> R {
        read(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, CallInfo> {
        // A panic while holding this lock cannot leave the record inconsistent (plain fields).
        self.info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
