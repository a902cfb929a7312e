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
    /// Key Vault throttled the caller past the deadline.
    #[error("failed to get {object}: throttled by the vault ({detail})")]
    Throttled {
        /// `objectType/objectName`.
        object: String,
        /// The service's message.
        detail: String,
        /// How long the vault asked the caller to wait.
        retry_after: Option<std::time::Duration>,
    },
    /// The vault or identity endpoint could not be reached, or answered with a server error.
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

impl AzureError {
    /// True for failures worth another try: throttling, server errors, unreachable endpoints.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AzureError::Throttled { .. } | AzureError::Unavailable { .. }
        )
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            AzureError::Throttled { retry_after, .. }
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
}
