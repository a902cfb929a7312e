//! Failures of the node service, with upstream's error types as codes and exactly one mapping to
//! gRPC status.

use keyvol_core::report;
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
    /// The SecretProviderClass could not be read — absent, forbidden, or the API unreachable.
    #[error("failed to get secretproviderclass {namespace}/{name}")]
    GetClass {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the API answered.
        #[source]
        source: ClusterError,
    },
    /// The class is unusable (no provider, no parameters).
    #[error("{0}")]
    InvalidClass(String),
    /// The SecretProviderClassPodStatus could not be written.
    #[error("failed to update secretproviderclasspodstatus {namespace}/{name}")]
    PodStatus {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the API answered.
        #[source]
        source: ClusterError,
    },
    /// No provider of that name is reachable on this node.
    #[error("provider not found: provider \"{0}\"")]
    ProviderNotFound(String),
    /// The provider failed.
    #[error("failed to mount objects")]
    Provider(#[source] ProviderError),
    /// Mounting, writing or removing files failed.
    #[error(transparent)]
    Volume(PublishError),
    /// Anything else on the node.
    #[error("{0}")]
    Internal(String),
}

impl NodeError {
    /// Upstream's error type names (the `error_type` metric label), from a closed set.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::InvalidArgument(_) => "InvalidArgument",
            NodeError::GetClass {
                source: ClusterError::NotFound { .. },
                ..
            } => "SecretProviderClassNotFound",
            NodeError::GetClass { .. } | NodeError::PodStatus { .. } => "KubernetesAPIUnavailable",
            NodeError::InvalidClass(_) => "InvalidSecretProviderClass",
            NodeError::ProviderNotFound(_) => "FailedToLookupProviderGRPCClient",
            NodeError::Provider(e) => e.code,
            NodeError::Volume(e) => e.code(),
            NodeError::Internal(_) => "Internal",
        }
    }

    /// The gRPC code kubelet sees.
    pub fn grpc_code(&self) -> Code {
        match self {
            NodeError::InvalidArgument(_) => Code::InvalidArgument,
            NodeError::GetClass { source, .. } | NodeError::PodStatus { source, .. } => {
                cluster_code(source)
            }
            NodeError::InvalidClass(_) => Code::InvalidArgument,
            NodeError::ProviderNotFound(_) => Code::Unavailable,
            NodeError::Provider(e) => provider_code(e.kind),
            NodeError::Volume(e) => publish_code(e),
            NodeError::Internal(_) => Code::Internal,
        }
    }

    /// The gRPC status kubelet sees. The message is the whole cause chain, free of secrets.
    pub fn to_status(&self) -> Status {
        Status::new(self.grpc_code(), report::chain(self))
    }
}

/// The gRPC code of a Kubernetes API failure.
pub fn cluster_code(e: &ClusterError) -> Code {
    match e {
        ClusterError::NotFound { .. } => Code::NotFound,
        ClusterError::Unauthorized { .. } => Code::Unauthenticated,
        ClusterError::Forbidden { .. } => Code::PermissionDenied,
        ClusterError::Conflict { .. } | ClusterError::KeptChanging { .. } => Code::Aborted,
        // The node built an object the API server rejects: a keyvol bug, or names past the
        // API's limits.
        ClusterError::Invalid { .. } | ClusterError::Failed { .. } => Code::Internal,
        ClusterError::Unavailable { .. }
        | ClusterError::NotConfigured { .. }
        | ClusterError::Timeout { .. } => Code::Unavailable,
    }
}

/// The gRPC code of a provider failure (also what `keyvol provider` answers).
pub fn provider_code(kind: ProviderErrorKind) -> Code {
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

fn publish_code(e: &PublishError) -> Code {
    match e {
        PublishError::Provider(p) => provider_code(p.kind),
        // A target keyvol does not own stays as it is until someone fixes it; retrying alone
        // will not help.
        PublishError::Symlink { .. }
        | PublishError::NotADirectory { .. }
        | PublishError::OtherMount { .. }
        | PublishError::Foreign { .. } => Code::FailedPrecondition,
        PublishError::Prepare { .. }
        | PublishError::Mount(_)
        | PublishError::Write(_)
        | PublishError::Blocking { .. } => Code::Internal,
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

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(&format!("secretproviderclasses \"c\" {reason}"), reason)
                .with_code(code)
                .boxed(),
        )
    }

    fn transport() -> kube::Error {
        kube::Error::Service(Box::new(std::io::Error::other(
            "tcp connect error: Connection refused",
        )))
    }

    fn get_class(source: ClusterError) -> NodeError {
        NodeError::GetClass {
            namespace: "n".into(),
            name: "c".into(),
            source,
        }
    }

    #[test]
    fn kubernetes_answers_keep_their_kind() {
        let cases = [
            (api(401, "Unauthorized"), "Unauthorized"),
            (api(403, "Forbidden"), "Forbidden"),
            (api(404, "NotFound"), "NotFound"),
            (api(409, "Conflict"), "Conflict"),
            (api(400, "BadRequest"), "Invalid"),
            (api(422, "Invalid"), "Invalid"),
            (api(408, "Timeout"), "Unavailable"),
            (api(429, "TooManyRequests"), "Unavailable"),
            (api(500, "InternalError"), "Unavailable"),
            (api(503, "ServiceUnavailable"), "Unavailable"),
            (api(504, "Timeout"), "Unavailable"),
            (api(410, "Expired"), "Failed"),
            (transport(), "Unavailable"),
            (
                kube::Error::ReadEvents(std::io::Error::other("reset")),
                "Unavailable",
            ),
            (kube::Error::LinesCodecMaxLineLengthExceeded, "Failed"),
        ];
        for (e, kind) in cases {
            let text = e.to_string();
            assert_eq!(ClusterError::from(e).kind(), kind, "{text}");
        }
    }

    #[test]
    fn every_cluster_error_maps_to_a_definite_grpc_code() {
        let cases = [
            (ClusterError::from(api(404, "NotFound")), Code::NotFound),
            (
                ClusterError::from(api(401, "Unauthorized")),
                Code::Unauthenticated,
            ),
            (
                ClusterError::from(api(403, "Forbidden")),
                Code::PermissionDenied,
            ),
            (ClusterError::from(api(409, "Conflict")), Code::Aborted),
            (
                ClusterError::KeptChanging {
                    tries: 5,
                    source: api(409, "Conflict"),
                },
                Code::Aborted,
            ),
            (ClusterError::from(api(422, "Invalid")), Code::Internal),
            (ClusterError::from(transport()), Code::Unavailable),
            (ClusterError::from(api(410, "Expired")), Code::Internal),
            (
                ClusterError::NotConfigured {
                    reason: "no Kubernetes API configured".into(),
                },
                Code::Unavailable,
            ),
            (
                ClusterError::Timeout {
                    after: std::time::Duration::from_secs(20),
                },
                Code::Unavailable,
            ),
        ];
        for (e, code) in cases {
            let kind = e.kind();
            let status = get_class(e).to_status();
            assert_eq!(status.code(), code, "{kind}");
        }
    }

    #[test]
    fn a_forbidden_class_read_is_permission_denied_with_the_api_servers_words_once() {
        let status = get_class(api(403, "Forbidden").into()).to_status();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "failed to get secretproviderclass n/c: forbidden: ApiError: \
             secretproviderclasses \"c\" Forbidden: Forbidden"
        );
    }

    #[test]
    fn every_error_maps_to_a_definite_grpc_code() {
        let cases = [
            (
                NodeError::InvalidArgument("x".into()),
                Code::InvalidArgument,
            ),
            (get_class(api(404, "NotFound").into()), Code::NotFound),
            (NodeError::InvalidClass("x".into()), Code::InvalidArgument),
            (
                NodeError::PodStatus {
                    namespace: "n".into(),
                    name: "p".into(),
                    source: api(403, "Forbidden").into(),
                },
                Code::PermissionDenied,
            ),
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
                NodeError::Volume(PublishError::Provider(ProviderError::new(
                    ProviderErrorKind::NotFound,
                    "ObjectNotFound",
                    "m",
                ))),
                Code::NotFound,
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
    }

    #[test]
    fn metric_codes_stay_upstreams() {
        assert_eq!(
            get_class(api(404, "NotFound").into()).code(),
            "SecretProviderClassNotFound"
        );
        assert_eq!(
            get_class(api(403, "Forbidden").into()).code(),
            "KubernetesAPIUnavailable"
        );
        assert_eq!(
            get_class(ClusterError::NotConfigured {
                reason: "none".into()
            })
            .code(),
            "KubernetesAPIUnavailable"
        );
    }

    #[test]
    fn the_provider_cause_is_rendered_once() {
        let e = NodeError::Provider(ProviderError::new(
            ProviderErrorKind::NotFound,
            "ObjectNotFound",
            "failed to get secret/nope: not found (SecretNotFound: gone)",
        ));
        assert_eq!(
            e.to_status().message(),
            "failed to mount objects: failed to get secret/nope: not found (SecretNotFound: gone)"
        );
    }
}
