//! Kubernetes `Status` errors: [`ApiError`] is what every failing operation of the fake returns,
//! rendered on the wire as a `meta/v1` `Status` object with the `code` and `reason` the real API
//! server uses for the same failure.

use serde_json::{Value, json};

/// A failed API operation, as the API server would report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code (`Status.code`).
    pub code: u16,
    /// Machine-readable reason (`Status.reason`), e.g. `NotFound`, `AlreadyExists`.
    pub reason: &'static str,
    /// Human-readable message (`Status.message`).
    pub message: String,
    /// The object the error is about (`Status.details`), when there is one.
    pub details: Option<Details>,
}

/// `Status.details`: which object an error concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// Object name.
    pub name: String,
    /// API group, empty for the core group.
    pub group: String,
    /// Resource (plural), as the API server puts it in `details.kind`.
    pub kind: String,
}

impl Details {
    fn new(group: &str, plural: &str, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: plural.to_owned(),
        }
    }
}

/// `secrets` or `secretproviderclasses.secrets-store.csi.x-k8s.io`, as in upstream messages.
fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_owned()
    } else {
        format!("{plural}.{group}")
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 NotFound for a named object.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self {
            details: Some(Details::new(group, plural, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", qualified(group, plural)),
            )
        }
    }

    /// 404 NotFound for a path the server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 409 AlreadyExists on create.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self {
            details: Some(Details::new(group, plural, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", qualified(group, plural)),
            )
        }
    }

    /// 409 Conflict: stale `resourceVersion` (optimistic concurrency).
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict_with(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a specific cause (failed preconditions).
    pub fn conflict_with(group: &str, plural: &str, name: &str, cause: &str) -> Self {
        Self {
            details: Some(Details::new(group, plural, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {cause}",
                    qualified(group, plural)
                ),
            )
        }
    }

    /// 410 Gone / Expired: a resourceVersion or continue token older than the kept history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
        )
    }

    /// 422 Invalid: the object fails validation.
    pub fn invalid(group: &str, kind: &str, name: &str, cause: impl Into<String>) -> Self {
        let cause = cause.into();
        Self {
            details: Some(Details {
                name: name.to_owned(),
                group: group.to_owned(),
                kind: kind.to_owned(),
            }),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind} \"{name}\" is invalid: {cause}"),
            )
        }
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// An error with any code; `reason` as the API server would pick it for that code.
    pub fn with_code(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            410 => "Expired",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        Self::new(code, reason, message)
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            let mut d = json!({ "name": details.name, "kind": details.kind });
            if !details.group.is_empty() {
                d["group"] = json!(details.group);
            }
            status["details"] = d;
        }
        status
    }
}

/// The `Status` a successful delete returns for resources that do not return the object.
pub fn success_status(group: &str, plural: &str, name: &str, uid: &str) -> Value {
    let mut details = json!({ "name": name, "kind": plural, "uid": uid });
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_matches_the_api_server_shape() {
        let status = ApiError::not_found("", "secrets", "db").to_status();
        assert_eq!(
            status,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "secrets \"db\" not found", "reason": "NotFound",
                "details": {"name": "db", "kind": "secrets"}, "code": 404,
            })
        );
    }

    #[test]
    fn group_resources_are_qualified_in_messages() {
        let err =
            ApiError::already_exists("secrets-store.csi.x-k8s.io", "secretproviderclasses", "a");
        assert_eq!(
            err.message,
            "secretproviderclasses.secrets-store.csi.x-k8s.io \"a\" already exists"
        );
        assert_eq!(
            err.to_status()["details"]["group"],
            "secrets-store.csi.x-k8s.io"
        );
    }
}
