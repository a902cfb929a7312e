//! Failures of the Azure provider, each with a stable code and a message free of secrets.

use keyvol_core::{ProviderError, ProviderErrorKind};

/// Why a mount through the Azure provider failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AzureError {
    /// A parameter of the SecretProviderClass (or an object in `objects`) is invalid.
    #[error("{field}: {reason}")]
    InvalidParameter {
        /// The parameter, e.g. `keyvaultName` or `objects[2].objectType`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The node-publish secret lacks a credential the identity mode needs.
    #[error("failed to get credentials: {0}")]
    MissingCredential(String),
    /// The identity mode is recognised but not available in this build.
    #[error("{0}")]
    Unsupported(String),
    /// The identity could not get a token.
    #[error("failed to authenticate {identity}: {detail}")]
    Authentication {
        /// Non-secret name of the identity (client id or mode).
        identity: String,
        /// The identity provider's answer (error codes and descriptions only).
        detail: String,
    },
    /// Key Vault refused the caller.
    #[error("failed to get {object}: forbidden ({detail})")]
    Forbidden {
        /// `objectType/objectName`.
        object: String,
        /// The service's error code and message.
        detail: String,
    },
    /// The object or version does not exist.
    #[error("failed to get {object}: not found ({detail})")]
    NotFound {
        /// `objectType/objectName`.
        object: String,
        /// The service's error code and message.
        detail: String,
    },
    /// The vault or the token endpoint answered 429: throttled, and the wait it asked for did
    /// not fit in the mount's deadline (or the retries ran out).
    #[error(
        "failed to get {object}: throttled by {service} {endpoint}{} ({detail})",
        wait_note(*.retry_after)
    )]
    Throttled {
        /// `objectType/objectName`.
        object: String,
        /// Which service throttled.
        service: Service,
        /// Its URL (the vault's, or the token endpoint's).
        endpoint: String,
        /// The service's error code and message.
        detail: String,
        /// How long the service asked the caller to wait.
        retry_after: Option<std::time::Duration>,
    },
    /// The vault or the token endpoint answered with a server error (5xx).
    #[error(
        "failed to get {object}: {service} {endpoint} answered HTTP {status} {}{} ({detail})",
        status_name(*.status),
        wait_note(*.retry_after)
    )]
    ServerError {
        /// `objectType/objectName`.
        object: String,
        /// Which service failed.
        service: Service,
        /// Its URL (the vault's, or the token endpoint's).
        endpoint: String,
        /// The HTTP status, 500 to 599.
        status: u16,
        /// The service's error code and message.
        detail: String,
        /// How long the service asked the caller to wait, if it said.
        retry_after: Option<std::time::Duration>,
    },
    /// The vault or identity endpoint could not be reached (connection or I/O failure).
    #[error("failed to reach {endpoint}: {detail}")]
    Unavailable {
        /// Which endpoint.
        endpoint: String,
        /// What happened (no response bodies of successful calls).
        detail: String,
        /// How long the server asked the caller to wait, if it said.
        retry_after: Option<std::time::Duration>,
    },
    /// The vault's answer could not be turned into a file.
    #[error("failed to convert {object}: {reason}")]
    Format {
        /// `objectType/objectName`.
        object: String,
        /// What is wrong (never the content).
        reason: String,
    },
    /// The mount did not finish within its deadline.
    #[error("failed to fetch the objects within {0:?}")]
    Deadline(std::time::Duration),
    /// Any other failure.
    #[error("{0}")]
    Internal(String),
}

/// Which remote service answered, for messages and for deciding whose throttle gate closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The Key Vault data plane.
    Vault,
    /// The identity's token endpoint (Entra ID, IMDS or NMI).
    TokenEndpoint,
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Service::Vault => "the vault",
            Service::TokenEndpoint => "the token endpoint",
        })
    }
}

/// The name of a 5xx status, as Azure services spell it in error codes.
pub fn status_name(status: u16) -> &'static str {
    match status {
        500 => "InternalServerError",
        501 => "NotImplemented",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "ServerError",
    }
}

/// `"; asked to wait 3600s"` when the service named a wait, else nothing.
fn wait_note(retry_after: Option<std::time::Duration>) -> String {
    retry_after
        .map(|d| format!("; asked to wait {}s", d.as_secs()))
        .unwrap_or_default()
}

impl AzureError {
    /// True for failures worth another try: throttling, server errors, unreachable endpoints.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AzureError::Throttled { .. }
                | AzureError::ServerError { .. }
                | AzureError::Unavailable { .. }
        )
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            AzureError::Throttled { retry_after, .. }
            | AzureError::ServerError { retry_after, .. }
            | AzureError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl AzureError {
    /// Stable code for metrics and status, from a closed set.
    pub fn code(&self) -> &'static str {
        match self {
            AzureError::InvalidParameter { .. } => "InvalidParameter",
            AzureError::MissingCredential(_) => "MissingCredential",
            AzureError::Unsupported(_) => "Unsupported",
            AzureError::Authentication { .. } => "AuthenticationFailed",
            AzureError::Forbidden { .. } => "Forbidden",
            AzureError::NotFound { .. } => "ObjectNotFound",
            AzureError::Throttled { .. } => "Throttled",
            AzureError::ServerError { status, .. } => status_name(*status),
            AzureError::Unavailable { .. } => "Unavailable",
            AzureError::Format { .. } => "FormatError",
            AzureError::Deadline(_) => "DeadlineExceeded",
            AzureError::Internal(_) => "Internal",
        }
    }

    /// Broad class, for gRPC codes and exit statuses.
    pub fn kind(&self) -> ProviderErrorKind {
        match self {
            AzureError::InvalidParameter { .. }
            | AzureError::MissingCredential(_)
            | AzureError::Unsupported(_) => ProviderErrorKind::InvalidArgument,
            AzureError::Authentication { .. } => ProviderErrorKind::Unauthenticated,
            AzureError::Forbidden { .. } => ProviderErrorKind::PermissionDenied,
            AzureError::NotFound { .. } => ProviderErrorKind::NotFound,
            AzureError::Throttled { .. } | AzureError::Unavailable { .. } => {
                ProviderErrorKind::Unavailable
            }
            // A gateway or a service that says it is down will likely answer later; a 500 is
            // the service failing on this request, reported as what it is.
            AzureError::ServerError { status, .. } => match status {
                502..=504 => ProviderErrorKind::Unavailable,
                _ => ProviderErrorKind::Internal,
            },
            AzureError::Deadline(_) => ProviderErrorKind::DeadlineExceeded,
            AzureError::Format { .. } | AzureError::Internal(_) => ProviderErrorKind::Internal,
        }
    }
}

impl From<AzureError> for ProviderError {
    fn from(e: AzureError) -> Self {
        ProviderError::new(e.kind(), e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_kind_and_code() {
        let all = [
            (
                AzureError::InvalidParameter {
                    field: "f".into(),
                    reason: "r".into(),
                },
                ProviderErrorKind::InvalidArgument,
            ),
            (
                AzureError::MissingCredential("x".into()),
                ProviderErrorKind::InvalidArgument,
            ),
            (
                AzureError::Unsupported("x".into()),
                ProviderErrorKind::InvalidArgument,
            ),
            (
                AzureError::Authentication {
                    identity: "i".into(),
                    detail: "d".into(),
                },
                ProviderErrorKind::Unauthenticated,
            ),
            (
                AzureError::Forbidden {
                    object: "o".into(),
                    detail: "d".into(),
                },
                ProviderErrorKind::PermissionDenied,
            ),
            (
                AzureError::NotFound {
                    object: "o".into(),
                    detail: "d".into(),
                },
                ProviderErrorKind::NotFound,
            ),
            (
                AzureError::Throttled {
                    object: "o".into(),
                    service: Service::Vault,
                    endpoint: "e".into(),
                    detail: "d".into(),
                    retry_after: None,
                },
                ProviderErrorKind::Unavailable,
            ),
            (
                AzureError::ServerError {
                    object: "o".into(),
                    service: Service::TokenEndpoint,
                    endpoint: "e".into(),
                    status: 500,
                    detail: "d".into(),
                    retry_after: None,
                },
                ProviderErrorKind::Internal,
            ),
            (
                AzureError::ServerError {
                    object: "o".into(),
                    service: Service::Vault,
                    endpoint: "e".into(),
                    status: 503,
                    detail: "d".into(),
                    retry_after: None,
                },
                ProviderErrorKind::Unavailable,
            ),
            (
                AzureError::Unavailable {
                    endpoint: "e".into(),
                    detail: "d".into(),
                    retry_after: None,
                },
                ProviderErrorKind::Unavailable,
            ),
            (
                AzureError::Format {
                    object: "o".into(),
                    reason: "r".into(),
                },
                ProviderErrorKind::Internal,
            ),
            (
                AzureError::Internal("x".into()),
                ProviderErrorKind::Internal,
            ),
        ];
        for (e, kind) in all {
            assert_eq!(e.kind(), kind, "{e:?}");
            assert!(!e.code().is_empty());
        }
    }

    #[test]
    fn server_errors_are_reported_as_the_status_they_are() {
        let e = |status| AzureError::ServerError {
            object: "secret/s1".into(),
            service: Service::Vault,
            endpoint: "https://kv.vault.azure.net/".into(),
            status,
            detail: "InternalServerError: boom".into(),
            retry_after: None,
        };
        assert_eq!(
            e(500).to_string(),
            "failed to get secret/s1: the vault https://kv.vault.azure.net/ answered HTTP 500 InternalServerError (InternalServerError: boom)"
        );
        assert_eq!(e(500).code(), "InternalServerError");
        assert_eq!(e(503).code(), "ServiceUnavailable");
        assert_eq!(e(599).code(), "ServerError");
    }

    #[test]
    fn a_throttling_error_names_the_endpoint_and_the_wait() {
        let e = AzureError::Throttled {
            object: "secret/s1".into(),
            service: Service::TokenEndpoint,
            endpoint: "https://login.microsoftonline.com/t/oauth2/v2.0/token".into(),
            detail: "HTTP 429".into(),
            retry_after: Some(std::time::Duration::from_secs(3600)),
        };
        assert_eq!(
            e.to_string(),
            "failed to get secret/s1: throttled by the token endpoint https://login.microsoftonline.com/t/oauth2/v2.0/token; asked to wait 3600s (HTTP 429)"
        );
    }
}
