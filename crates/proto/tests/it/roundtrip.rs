//! Round trips over real unix sockets in a temp dir: a tiny CSI Identity server and a
//! CSIDriverProvider server, each bound with `uds::UdsListener` and called through
//! `uds::connect`, the generated clients, and (once per protocol) a hand-written upstream
//! method path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use keyvol_proto::csi::v1 as csi;
use keyvol_proto::provider::v1alpha1 as provider;
use keyvol_proto::tonic::codegen::http;
use keyvol_proto::tonic::transport::Server;
use keyvol_proto::tonic::{self, Request, Response, Status};
use keyvol_proto::uds::{self, UdsListener};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) const DRIVER: &str = "secrets-store.csi.k8s.io";

/// A minimal CSI Identity service.
pub(crate) struct Identity;

#[tonic::async_trait]
impl csi::identity_server::Identity for Identity {
    async fn get_plugin_info(
        &self,
        _: Request<csi::GetPluginInfoRequest>,
    ) -> Result<Response<csi::GetPluginInfoResponse>, Status> {
        Ok(Response::new(csi::GetPluginInfoResponse {
            name: DRIVER.into(),
            vendor_version: "0.1.0".into(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<csi::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<csi::GetPluginCapabilitiesResponse>, Status> {
        Ok(Response::new(csi::GetPluginCapabilitiesResponse {
            capabilities: vec![csi::PluginCapability {
                r#type: Some(csi::plugin_capability::Type::Service(
                    csi::plugin_capability::Service {
                        r#type: csi::plugin_capability::service::Type::ControllerService as i32,
                    },
                )),
            }],
        }))
    }

    async fn probe(
        &self,
        _: Request<csi::ProbeRequest>,
    ) -> Result<Response<csi::ProbeResponse>, Status> {
        Ok(Response::new(csi::ProbeResponse { ready: Some(true) }))
    }
}

/// A provider that echoes what it was asked for into one file, so the test sees that every
/// request field arrived.
struct EchoProvider;

#[tonic::async_trait]
impl provider::csi_driver_provider_server::CsiDriverProvider for EchoProvider {
    async fn version(
        &self,
        request: Request<provider::VersionRequest>,
    ) -> Result<Response<provider::VersionResponse>, Status> {
        Ok(Response::new(provider::VersionResponse {
            version: request.into_inner().version,
            runtime_name: "echo".into(),
            runtime_version: "1.2.3".into(),
        }))
    }

    async fn mount(
        &self,
        request: Request<provider::MountRequest>,
    ) -> Result<Response<provider::MountResponse>, Status> {
        let request = request.into_inner();
        if request.attributes.is_empty() {
            return Ok(Response::new(provider::MountResponse {
                error: Some(provider::Error {
                    code: "NoAttributes".into(),
                }),
                ..Default::default()
            }));
        }
        let mode: i32 = request
            .permission
            .parse()
            .map_err(|_| Status::invalid_argument("permission"))?;
        let echo = format!(
            "{}|{}|{}|{}",
            request.attributes,
            request.secrets,
            request.target_path,
            request.current_object_version.len()
        );
        Ok(Response::new(provider::MountResponse {
            object_version: vec![provider::ObjectVersion {
                id: "secret/echo".into(),
                version: "v1".into(),
            }],
            error: None,
            files: vec![provider::File {
                path: "dir/echo".into(),
                mode,
                contents: echo.into_bytes(),
            }],
        }))
    }
}

/// A tower layer that records the `:authority` of every request the server receives.
#[derive(Clone)]
struct RecordAuthority<S> {
    inner: S,
    seen: Arc<Mutex<Vec<String>>>,
}

impl<S, B> tower::Service<http::Request<B>> for RecordAuthority<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        self.seen.lock().unwrap().push(authority);
        self.inner.call(request)
    }
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }
}

fn serve_identity(path: &Path) -> Running {
    let incoming = UdsListener::bind(path).unwrap().into_incoming();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        Server::builder()
            .add_service(csi::identity_server::IdentityServer::new(Identity))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        stop: Some(stop),
        task,
    }
}

fn serve_provider(path: &Path, seen: Arc<Mutex<Vec<String>>>) -> Running {
    let incoming = UdsListener::bind(path).unwrap().into_incoming();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        Server::builder()
            .layer(tower::layer::layer_fn(move |inner| RecordAuthority {
                inner,
                seen: seen.clone(),
            }))
            .add_service(
                provider::csi_driver_provider_server::CsiDriverProviderServer::new(EchoProvider),
            )
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        stop: Some(stop),
        task,
    }
}

fn socket_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[tokio::test]
async fn identity_round_trip_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir, "csi.sock");
    let server = serve_identity(&path);

    let mut client = csi::identity_client::IdentityClient::new(uds::connect(&path).await.unwrap());
    let info = client
        .get_plugin_info(csi::GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, DRIVER);
    assert_eq!(info.vendor_version, "0.1.0");

    let capabilities = client
        .get_plugin_capabilities(csi::GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capabilities.capabilities.len(), 1);

    let probe = client
        .probe(csi::ProbeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(probe.ready, Some(true));

    server.stop().await;
    assert!(
        !path.exists(),
        "the socket file is removed when the server stops"
    );
}

#[tokio::test]
async fn the_upstream_method_path_reaches_the_identity_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir, "csi.sock");
    let server = serve_identity(&path);

    // Spelled out as kubelet's Go client sends it, independent of the generated client.
    let mut grpc = tonic::client::Grpc::new(uds::connect(&path).await.unwrap());
    grpc.ready().await.unwrap();
    let response: Response<csi::ProbeResponse> = grpc
        .unary(
            Request::new(csi::ProbeRequest {}),
            http::uri::PathAndQuery::from_static("/csi.v1.Identity/Probe"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(response.into_inner().ready, Some(true));
    server.stop().await;
}

#[tokio::test]
async fn a_service_the_server_does_not_declare_is_unimplemented() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir, "csi.sock");
    let server = serve_identity(&path);

    let mut node = csi::node_client::NodeClient::new(uds::connect(&path).await.unwrap());
    let status = node
        .node_get_info(csi::NodeGetInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    server.stop().await;
}

#[tokio::test]
async fn provider_mount_round_trip_carries_every_field_and_sends_authority_localhost() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir, "azure.sock");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = serve_provider(&path, seen.clone());
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o600
    );

    let mut client = provider::csi_driver_provider_client::CsiDriverProviderClient::new(
        uds::connect(&path).await.unwrap(),
    );
    let version = client
        .version(provider::VersionRequest {
            version: "v1alpha1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            version.version.as_str(),
            version.runtime_name.as_str(),
            version.runtime_version.as_str()
        ),
        ("v1alpha1", "echo", "1.2.3")
    );

    let response = client
        .mount(provider::MountRequest {
            attributes: r#"{"keyvaultName":"kv"}"#.into(),
            secrets: r#"{"clientid":"c"}"#.into(),
            target_path: "/target".into(),
            permission: "420".into(),
            current_object_version: vec![provider::ObjectVersion {
                id: "secret/old".into(),
                version: "v0".into(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.error, None);
    assert_eq!(response.object_version[0].id, "secret/echo");
    assert_eq!(response.files.len(), 1);
    assert_eq!(response.files[0].path, "dir/echo");
    assert_eq!(response.files[0].mode, 0o644);
    assert_eq!(
        String::from_utf8(response.files[0].contents.clone()).unwrap(),
        r#"{"keyvaultName":"kv"}|{"clientid":"c"}|/target|1"#
    );

    let failed = client
        .mount(provider::MountRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failed.error.unwrap().code, "NoAttributes");

    let authorities = seen.lock().unwrap().clone();
    assert_eq!(authorities.len(), 3);
    assert!(
        authorities.iter().all(|a| a == "localhost"),
        "{authorities:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_upstream_method_path_reaches_the_provider_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir, "azure.sock");
    let server = serve_provider(&path, Arc::default());

    let mut grpc = tonic::client::Grpc::new(uds::connect(&path).await.unwrap());
    grpc.ready().await.unwrap();
    let response: Response<provider::VersionResponse> = grpc
        .unary(
            Request::new(provider::VersionRequest {
                version: "v1alpha1".into(),
            }),
            http::uri::PathAndQuery::from_static("/v1alpha1.CSIDriverProvider/Version"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(response.into_inner().runtime_name, "echo");
    server.stop().await;
}

#[tokio::test]
async fn a_lazy_channel_reaches_a_provider_restarted_on_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir, "azure.sock");
    let mut client = provider::csi_driver_provider_client::CsiDriverProviderClient::new(
        uds::connect_lazy(&path),
    );
    let version = || provider::VersionRequest {
        version: "v1alpha1".into(),
    };

    // Nothing listens yet: the lazy channel fails the call instead of hanging.
    let status = client.version(version()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);

    let first = serve_provider(&path, Arc::default());
    assert!(client.version(version()).await.is_ok());
    first.stop().await;

    let second = serve_provider(&path, Arc::default());
    // The old connection is gone; the channel reconnects on one of the next calls.
    let mut answered = false;
    for _ in 0..50 {
        if client.version(version()).await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "the restarted provider was never reached");
    second.stop().await;
}
