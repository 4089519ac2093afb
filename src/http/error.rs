//! The one error type of the HTTP boundary and its JSON envelope:
//! `{"error": {"code": "snake_case", "message": "human sentence", "field": "optional.path"}}`.

use serde_json::json;

pub type ApiResult<T = super::Reply> = Result<T, ApiError>;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Extra response headers (`Allow`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
    /// Internal detail for the log line of a 500; never sent to the client.
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, headers: Vec::new(), detail: None }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 422 `validation_failed` naming the offending field.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(422, "validation_failed", message).with_field(field)
    }

    /// 422 with a rule-specific code (`self_referral`, `below_minimum`, …).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(422, code, message)
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_json", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    /// 404 for unknown routes and for records the caller may not see (nothing leaks).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    pub fn method_not_allowed(allow: &[&str]) -> Self {
        let mut e = Self::new(405, "method_not_allowed", "This method is not allowed on this path.");
        e.headers.push(("Allow", allow.join(", ")));
        e
    }

    /// 409 for state conflicts, with a specific code (`invalid_transition`, `already_exists`, …).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    /// 409 for losing a race that a retry would win (`concurrent_update`, `refund_contention`):
    /// `Retry-After: 1` tells the client so, and an `Idempotency-Key` is not spent on it.
    pub fn contention(code: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(409, code, message);
        e.headers.push(("Retry-After", "1".into()));
        e
    }

    /// Whether the client is told to try again later (a 5xx, or `Retry-After`): such an answer
    /// is no final outcome of the request.
    pub fn asks_retry(&self) -> bool {
        self.status >= 500 || self.headers.iter().any(|(name, _)| *name == "Retry-After")
    }

    /// 412: the record (`what`) changed since the version an `If-Match` named.
    pub fn precondition_failed(what: &str) -> Self {
        Self::new(412, "precondition_failed", format!("The {what} changed since it was read (If-Match); read it again."))
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(413, "payload_too_large", format!("The request body exceeds {limit} bytes."))
    }

    pub fn rate_limited(retry_after_seconds: u32) -> Self {
        let mut e = Self::new(429, "rate_limited", "Too many requests; retry later.");
        e.headers.push(("Retry-After", retry_after_seconds.to_string()));
        e
    }

    /// 500: the detail goes to the log, the client sees only the request id.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(500, "internal_error", "An internal error occurred.");
        e.detail = Some(detail.to_string());
        e
    }

    /// The envelope sent to the client; a 500 carries the request id and nothing internal.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        if self.status >= 500 {
            error["message"] =
                json!(format!("An internal error occurred; quote request id {request_id} when reporting it."));
            error["request_id"] = json!(request_id);
        }
        json!({ "error": error })
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::domain::Rejection> for ApiError {
    fn from(r: crate::domain::Rejection) -> Self {
        use crate::domain::RejectionKind::*;
        let status = match r.kind {
            Conflict => 409,
            Unprocessable => 422,
            Forbidden => 403,
        };
        ApiError::new(status, r.code, r.message)
    }
}

/// A store failure is a 500: its detail (with the SQL) goes to the log, never to the client.
impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> Self {
        ApiError::internal(e)
    }
}

/// A failed Durable Object call is a 500, its detail logged.
impl From<crate::objects::Error> for ApiError {
    fn from(e: crate::objects::Error) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::ids::RandomError> for ApiError {
    fn from(e: crate::ids::RandomError) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::config::ConfigError> for ApiError {
    fn from(e: crate::config::ConfigError) -> Self {
        ApiError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_names_code_message_and_field() {
        let body = ApiError::validation("payout_email", "must be an email address").body("rid");
        assert_eq!(
            body,
            json!({"error": {"code": "validation_failed", "message": "must be an email address", "field": "payout_email"}})
        );
    }

    #[test]
    fn internal_errors_hide_the_detail_and_carry_the_request_id() {
        let e = ApiError::internal("D1_ERROR: no such table: users");
        let text = e.body("req-123").to_string();
        assert!(!text.contains("D1_ERROR"), "{text}");
        assert!(!text.contains("users"), "{text}");
        assert!(text.contains("req-123"));
        assert_eq!(e.status, 500);
        assert_eq!(e.detail.as_deref(), Some("D1_ERROR: no such table: users"));
    }

    #[test]
    fn store_errors_are_500s_whose_detail_only_the_log_sees() {
        use crate::store::{Error, Violation};
        let e = ApiError::from(Error::D1("D1 error: boom; sql: SELECT 1".into()));
        assert_eq!((e.status, e.detail.as_deref()), (500, Some("D1 error: boom; sql: SELECT 1")));
        assert!(!e.body("rid").to_string().contains("boom"));
        let corrupt = ApiError::from(Error::corrupt("payouts", "p1", "status", "lost"));
        assert_eq!(corrupt.detail.as_deref(), Some("payouts p1 has status \"lost\""));
        let violated = ApiError::from(Error::Constraint(Violation::Unique("users.id".into())));
        assert_eq!(violated.detail.as_deref(), Some("unexpected constraint violation: Unique(\"users.id\")"));
    }

    #[test]
    fn protocol_headers_travel_with_the_error() {
        assert_eq!(ApiError::method_not_allowed(&["GET", "HEAD"]).headers, vec![("Allow", "GET, HEAD".to_string())]);
        assert_eq!(ApiError::rate_limited(7).headers, vec![("Retry-After", "7".to_string())]);
    }
}
