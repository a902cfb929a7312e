//! Every `:authority` a real gRPC client sends over a unix socket reaches a keyvol server: the
//! raw client sends each form kubelet and other clients use, to a tonic server behind
//! `UdsListener` (answered) and, as a control, to the same server on a bare unix listener (where
//! h2 resets the stream — the failure kubelet's plugin watcher hit).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use keyvol_proto::csi::v1 as csi;
use keyvol_proto::prost::Message;
use keyvol_proto::rawclient::{self, RawReply};
use keyvol_proto::tonic::transport::Server;
use keyvol_proto::uds::UdsListener;

use crate::roundtrip::Identity;

/// The four `:authority` forms seen from real clients on unix sockets.
const FORMS: [(&str, Option<&[u8]>); 4] = [
    ("absent", None),
    ("localhost (kubelet's CSI client)", Some(b"localhost")),
    (
        "raw path (older grpc-go, grpc-java)",
        Some(b"/var/lib/kubelet/plugins_registry/secrets-store.csi.k8s.io-reg.sock"),
    ),
    (
        "percent-encoded path (kubelet's plugin watcher, grpc-go 1.72)",
        Some(b"%2Fvar%2Flib%2Fkubelet%2Fplugins_registry%2Fsecrets-store.csi.k8s.io-reg.sock"),
    ),
];

async fn get_plugin_info(socket: &Path, authority: Option<&[u8]>) -> RawReply {
    let request = csi::GetPluginInfoRequest {}.encode_to_vec();
    tokio::time::timeout(
        Duration::from_secs(10),
        rawclient::unary(
            socket,
            authority,
            "/csi.v1.Identity/GetPluginInfo",
            &request,
        ),
    )
    .await
    .expect("answer within 10 s")
    .expect("call")
}

#[tokio::test]
async fn a_server_behind_uds_listener_answers_every_authority_form() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("csi.sock");
    let incoming = UdsListener::bind(&socket).unwrap().into_incoming();
    let server = tokio::spawn(
        Server::builder()
            .add_service(csi::identity_server::IdentityServer::new(Identity))
            .serve_with_incoming(incoming),
    );
    for (form, authority) in FORMS {
        let reply = get_plugin_info(&socket, authority).await;
        assert_eq!(reply.reset, None, "{form}: {reply:?}");
        assert_eq!(reply.grpc_status(), Some("0"), "{form}: {reply:?}");
        let info = csi::GetPluginInfoResponse::decode(reply.message.expect("message").as_slice())
            .expect("decodes");
        assert_eq!(info.name, crate::roundtrip::DRIVER, "{form}");
    }
    server.abort();
}

#[tokio::test]
async fn without_the_adapter_h2_resets_path_authorities() {
    // The control: proves the forms above are the ones h2 refuses on its own, so the test
    // above can fail.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bare.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(
        Server::builder()
            .add_service(csi::identity_server::IdentityServer::new(Identity))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    for (form, authority) in FORMS {
        let reply = get_plugin_info(&socket, authority).await;
        let is_path = authority.is_some_and(|a| a != b"localhost");
        if is_path {
            // RST_STREAM PROTOCOL_ERROR (0x1), as kubelet logged.
            assert_eq!(reply.reset, Some(1), "{form}: {reply:?}");
        } else {
            assert_eq!(reply.grpc_status(), Some("0"), "{form}: {reply:?}");
        }
    }
    server.abort();
}
