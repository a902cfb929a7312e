//! Failures of the node service, with upstream's error types as codes and exactly one mapping to
//! gRPC status.

use keyvol_core::volume::PublishError;
use keyvol_core::{ProviderError, ProviderErrorKind};
use tonic::{Code, Status};

use crate::cluster::ClusterError;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request is malformed (missing volume id, target, capability, `readOnly`...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The SecretProviderClass does not exist in the pod's namespace.
    #[error("failed to get secretproviderclass {namespace}/{name}, error: not found")]
    ClassNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The class is unusable (no provider, no parameters).
    #[error("{0}")]
    InvalidClass(String),
    /// The Kubernetes API could not be reached or refused.
    #[error("kubernetes API unavailable: {0}")]
    ApiUnavailable(String),
    /// No provider of that name is reachable on this node.
    #[error("provider not found: provider \"{0}\"")]
    ProviderNotFound(String),
    /// The provider failed.
    #[error("failed to mount objects: {0}")]
    Provider(#[source] ProviderError),
    /// Mounting, writing or removing files failed.
    #[error("{0}")]
    Volume(#[source] PublishError),
    /// Anything else on the node.
    #[error("{0}")]
    Internal(String),
}

impl NodeError {
    /// Upstream's error type names (the `error_type` metric label), from a closed set.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::InvalidArgument(_) => "InvalidArgument",
            NodeError::ClassNotFound { .. } => "SecretProviderClassNotFound",
            NodeError::InvalidClass(_) => "InvalidSecretProviderClass",
            NodeError::ApiUnavailable(_) => "KubernetesAPIUnavailable",
            NodeError::ProviderNotFound(_) => "FailedToLookupProviderGRPCClient",
            NodeError::Provider(e) => e.code,
            NodeError::Volume(e) => e.code(),
            NodeError::Internal(_) => "Internal",
        }
    }

    /// The gRPC status kubelet sees. The message is the whole cause chain, free of secrets.
    pub fn to_status(&self) -> Status {
        let code = match self {
            NodeError::InvalidArgument(_) => Code::InvalidArgument,
            NodeError::ClassNotFound { .. } => Code::NotFound,
            NodeError::InvalidClass(_) => Code::InvalidArgument,
            NodeError::ApiUnavailable(_) => Code::Unavailable,
            NodeError::ProviderNotFound(_) => Code::Unavailable,
            NodeError::Provider(e) => provider_code(e.kind),
            NodeError::Volume(PublishError::Provider(e)) => provider_code(e.kind),
            NodeError::Volume(_) => Code::Internal,
            NodeError::Internal(_) => Code::Internal,
        };
        Status::new(code, chain(self))
    }
}

fn provider_code(kind: ProviderErrorKind) -> Code {
    match kind {
        ProviderErrorKind::InvalidArgument => Code::InvalidArgument,
        ProviderErrorKind::Unauthenticated => Code::Unauthenticated,
        ProviderErrorKind::PermissionDenied => Code::PermissionDenied,
        ProviderErrorKind::NotFound => Code::NotFound,
        ProviderErrorKind::Unavailable => Code::Unavailable,
        ProviderErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ProviderErrorKind::Internal => Code::Internal,
    }
}

/// The error and its sources, each once.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

impl From<ClusterError> for NodeError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::NotFound { namespace, name } => {
                NodeError::ClassNotFound { namespace, name }
            }
            ClusterError::Unavailable(m) => NodeError::ApiUnavailable(m),
            ClusterError::Api(m) => NodeError::ApiUnavailable(m),
        }
    }
}

impl From<PublishError> for NodeError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Provider(p) => NodeError::Provider(p),
            other => NodeError::Volume(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_definite_grpc_code() {
        let cases = [
            (
                NodeError::InvalidArgument("x".into()),
                Code::InvalidArgument,
            ),
            (
                NodeError::ClassNotFound {
                    namespace: "n".into(),
                    name: "c".into(),
                },
                Code::NotFound,
            ),
            (NodeError::InvalidClass("x".into()), Code::InvalidArgument),
            (NodeError::ApiUnavailable("x".into()), Code::Unavailable),
            (NodeError::ProviderNotFound("p".into()), Code::Unavailable),
            (
                NodeError::Provider(ProviderError::new(
                    ProviderErrorKind::PermissionDenied,
                    "Forbidden",
                    "m",
                )),
                Code::PermissionDenied,
            ),
            (
                NodeError::Provider(ProviderError::new(
                    ProviderErrorKind::Unauthenticated,
                    "A",
                    "m",
                )),
                Code::Unauthenticated,
            ),
            (
                NodeError::Provider(ProviderError::new(
                    ProviderErrorKind::DeadlineExceeded,
                    "D",
                    "m",
                )),
                Code::DeadlineExceeded,
            ),
            (
                NodeError::Volume(PublishError::Write(keyvol_core::WriteError::Conflict {
                    path: "a".into(),
                })),
                Code::Internal,
            ),
            (NodeError::Internal("x".into()), Code::Internal),
        ];
        for (e, code) in cases {
            assert_eq!(e.to_status().code(), code, "{e:?}");
            assert_ne!(e.to_status().code(), Code::Unknown);
        }
        assert_eq!(
            NodeError::ClassNotFound {
                namespace: "n".into(),
                name: "c".into()
            }
            .code(),
            "SecretProviderClassNotFound"
        );
    }
}
