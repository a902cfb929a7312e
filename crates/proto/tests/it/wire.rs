//! Golden wire tests: messages with known field values are encoded and compared with bytes
//! written out by hand from the published field numbers and types, then decoded back. A wrong
//! field number, wire type or scalar type in a `.proto` file fails here.
//!
//! Reading the expected bytes: a field key is `(number << 3) | wire_type`, with wire type 0 for
//! varints (bool, int32, int64, enum) and 2 for length-delimited values (string, bytes,
//! messages, map entries), followed by the length. A map entry is a message with the key as
//! field 1 and the value as field 2. prost writes fields in number order, and maps are
//! `BTreeMap`s here, so entries come sorted by key.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use keyvol_proto::csi::v1 as csi;
use keyvol_proto::pluginregistration as reg;
use keyvol_proto::prost::Message;
use keyvol_proto::provider::v1alpha1 as provider;

/// Asserts that `message` encodes to exactly `expected` and decodes back to itself.
fn assert_wire<M: Message + Default + PartialEq>(message: &M, expected: &[u8]) {
    let encoded = message.encode_to_vec();
    assert_eq!(
        hex(&encoded),
        hex(expected),
        "encoding of {}",
        std::any::type_name::<M>()
    );
    let decoded = M::decode(expected).unwrap();
    assert!(
        decoded == *message,
        "decoding of {}",
        std::any::type_name::<M>()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `key` for a length-delimited field.
const fn ld(field: u8) -> u8 {
    (field << 3) | 2
}

/// `key` for a varint field.
const fn varint(field: u8) -> u8 {
    field << 3
}

#[test]
fn the_key_helpers_match_literal_protobuf_keys() {
    // Field 1 length-delimited is 0x0a, field 4 is 0x22, field 8 is 0x42; field 6 varint 0x30.
    assert_eq!([ld(1), ld(2), ld(4), ld(8)], [0x0a, 0x12, 0x22, 0x42]);
    assert_eq!([varint(1), varint(2), varint(6)], [0x08, 0x10, 0x30]);
}

fn read_only_mount_capability() -> csi::VolumeCapability {
    csi::VolumeCapability {
        access_type: Some(csi::volume_capability::AccessType::Mount(
            csi::volume_capability::MountVolume::default(),
        )),
        access_mode: Some(csi::volume_capability::AccessMode {
            mode: csi::volume_capability::access_mode::Mode::SingleNodeReaderOnly as i32,
        }),
    }
}

/// VolumeCapability{mount: {}, access_mode: {mode: SINGLE_NODE_READER_ONLY (2)}}.
#[rustfmt::skip]
const READ_ONLY_MOUNT_CAPABILITY: [u8; 6] = [
    ld(2), 0x00, // mount = 2: empty MountVolume, present because the oneof is set
    ld(3), 0x02, varint(1), 0x02, // access_mode = 3: {mode = 1: 2}
];

#[test]
#[rustfmt::skip]
fn node_publish_volume_request_matches_the_published_field_numbers() {
    let request = csi::NodePublishVolumeRequest {
        volume_id: "v".into(),
        publish_context: map(&[("p", "q")]),
        staging_target_path: "/s".into(),
        target_path: "/t".into(),
        volume_capability: Some(read_only_mount_capability()),
        readonly: true,
        secrets: map(&[("k", "s")]),
        volume_context: map(&[("a", "1"), ("b", "2")]),
    };
    let mut expected = vec![
        ld(1), 1, b'v', // volume_id = 1
        ld(2), 6, ld(1), 1, b'p', ld(2), 1, b'q', // publish_context = 2: {"p": "q"}
        ld(3), 2, b'/', b's', // staging_target_path = 3
        ld(4), 2, b'/', b't', // target_path = 4
        ld(5), 6, // volume_capability = 5
    ];
    expected.extend(READ_ONLY_MOUNT_CAPABILITY);
    expected.extend([
        varint(6), 1, // readonly = 6: true
        ld(7), 6, ld(1), 1, b'k', ld(2), 1, b's', // secrets = 7: {"k": "s"}
        ld(8), 6, ld(1), 1, b'a', ld(2), 1, b'1', // volume_context = 8: {"a": "1",
        ld(8), 6, ld(1), 1, b'b', ld(2), 1, b'2', //                      "b": "2"}
    ]);
    assert_wire(&request, &expected);
}

#[test]
#[rustfmt::skip]
fn node_stage_and_unstage_requests_match_the_published_field_numbers() {
    let stage = csi::NodeStageVolumeRequest {
        volume_id: "v".into(),
        publish_context: map(&[("p", "q")]),
        staging_target_path: "/s".into(),
        volume_capability: Some(read_only_mount_capability()),
        secrets: map(&[("k", "s")]),
        volume_context: map(&[("a", "1")]),
    };
    let mut expected = vec![
        ld(1), 1, b'v', // volume_id = 1
        ld(2), 6, ld(1), 1, b'p', ld(2), 1, b'q', // publish_context = 2
        ld(3), 2, b'/', b's', // staging_target_path = 3
        ld(4), 6, // volume_capability = 4
    ];
    expected.extend(READ_ONLY_MOUNT_CAPABILITY);
    expected.extend([
        ld(5), 6, ld(1), 1, b'k', ld(2), 1, b's', // secrets = 5
        ld(6), 6, ld(1), 1, b'a', ld(2), 1, b'1', // volume_context = 6
    ]);
    assert_wire(&stage, &expected);

    let unstage = csi::NodeUnstageVolumeRequest {
        volume_id: "v".into(),
        staging_target_path: "/s".into(),
    };
    assert_wire(&unstage, &[ld(1), 1, b'v', ld(2), 2, b'/', b's']);

    let unpublish = csi::NodeUnpublishVolumeRequest {
        volume_id: "v".into(),
        target_path: "/t".into(),
    };
    assert_wire(&unpublish, &[ld(1), 1, b'v', ld(2), 2, b'/', b't']);
}

#[test]
#[rustfmt::skip]
fn block_access_and_mount_options_encode_in_their_own_fields() {
    let block = csi::VolumeCapability {
        access_type: Some(csi::volume_capability::AccessType::Block(
            csi::volume_capability::BlockVolume {},
        )),
        access_mode: Some(csi::volume_capability::AccessMode {
            mode: csi::volume_capability::access_mode::Mode::SingleNodeMultiWriter as i32,
        }),
    };
    assert_wire(&block, &[ld(1), 0, ld(3), 2, varint(1), 7]);

    let mount = csi::volume_capability::MountVolume {
        fs_type: "x".into(),
        mount_flags: vec!["ro".into(), "y".into()],
        volume_mount_group: "9".into(),
    };
    assert_wire(
        &mount,
        &[
            ld(1), 1, b'x', // fs_type = 1
            ld(2), 2, b'r', b'o', ld(2), 1, b'y', // mount_flags = 2 (repeated)
            ld(3), 1, b'9', // volume_mount_group = 3
        ],
    );
}

#[test]
#[rustfmt::skip]
fn node_expand_and_volume_stats_match_the_published_field_numbers() {
    let expand = csi::NodeExpandVolumeRequest {
        volume_id: "v".into(),
        volume_path: "/p".into(),
        capacity_range: Some(csi::CapacityRange {
            required_bytes: 1,
            limit_bytes: 2,
        }),
        staging_target_path: "/s".into(),
        volume_capability: None,
        secrets: map(&[("k", "s")]),
    };
    assert_wire(
        &expand,
        &[
            ld(1), 1, b'v', // volume_id = 1
            ld(2), 2, b'/', b'p', // volume_path = 2
            ld(3), 4, varint(1), 1, varint(2), 2, // capacity_range = 3 (int64 1, 2)
            ld(4), 2, b'/', b's', // staging_target_path = 4
            ld(6), 6, ld(1), 1, b'k', ld(2), 1, b's', // secrets = 6
        ],
    );
    assert_wire(
        &csi::NodeExpandVolumeResponse { capacity_bytes: 300 },
        &[varint(1), 0xac, 0x02], // 300 = 0b10_0101100 as a varint
    );

    let stats_request = csi::NodeGetVolumeStatsRequest {
        volume_id: "v".into(),
        volume_path: "/p".into(),
        staging_target_path: "/s".into(),
    };
    assert_wire(
        &stats_request,
        &[ld(1), 1, b'v', ld(2), 2, b'/', b'p', ld(3), 2, b'/', b's'],
    );

    let stats = csi::NodeGetVolumeStatsResponse {
        usage: vec![csi::VolumeUsage {
            available: 1,
            total: 2,
            used: 3,
            unit: csi::volume_usage::Unit::Bytes as i32,
        }],
        volume_condition: Some(csi::VolumeCondition {
            abnormal: true,
            message: "m".into(),
        }),
    };
    assert_wire(
        &stats,
        &[
            ld(1), 8, varint(1), 1, varint(2), 2, varint(3), 3, varint(4), 1, // usage = 1
            ld(2), 5, varint(1), 1, ld(2), 1, b'm', // volume_condition = 2
        ],
    );
}

#[test]
#[rustfmt::skip]
fn node_capabilities_and_info_match_the_published_field_numbers() {
    let capabilities = csi::NodeGetCapabilitiesResponse {
        capabilities: vec![
            csi::NodeServiceCapability {
                r#type: Some(csi::node_service_capability::Type::Rpc(
                    csi::node_service_capability::Rpc {
                        r#type: csi::node_service_capability::rpc::Type::StageUnstageVolume
                            as i32,
                    },
                )),
            },
            csi::NodeServiceCapability {
                r#type: Some(csi::node_service_capability::Type::Rpc(
                    csi::node_service_capability::Rpc {
                        r#type: csi::node_service_capability::rpc::Type::VolumeMountGroup as i32,
                    },
                )),
            },
        ],
    };
    assert_wire(
        &capabilities,
        &[
            ld(1), 4, ld(1), 2, varint(1), 1, // {rpc: {type: STAGE_UNSTAGE_VOLUME (1)}}
            ld(1), 4, ld(1), 2, varint(1), 6, // {rpc: {type: VOLUME_MOUNT_GROUP (6)}}
        ],
    );

    let info = csi::NodeGetInfoResponse {
        node_id: "n".into(),
        max_volumes_per_node: 3,
        accessible_topology: Some(csi::Topology {
            segments: map(&[("z", "1")]),
        }),
    };
    assert_wire(
        &info,
        &[
            ld(1), 1, b'n', // node_id = 1
            varint(2), 3, // max_volumes_per_node = 2
            ld(3), 8, ld(1), 6, ld(1), 1, b'z', ld(2), 1, b'1', // accessible_topology = 3
        ],
    );
}

#[test]
#[rustfmt::skip]
fn identity_messages_match_the_published_field_numbers() {
    let info = csi::GetPluginInfoResponse {
        name: "d".into(),
        vendor_version: "1".into(),
        manifest: map(&[("m", "x")]),
    };
    assert_wire(
        &info,
        &[ld(1), 1, b'd', ld(2), 1, b'1', ld(3), 6, ld(1), 1, b'm', ld(2), 1, b'x'],
    );

    let capabilities = csi::GetPluginCapabilitiesResponse {
        capabilities: vec![
            csi::PluginCapability {
                r#type: Some(csi::plugin_capability::Type::Service(
                    csi::plugin_capability::Service {
                        r#type: csi::plugin_capability::service::Type::ControllerService as i32,
                    },
                )),
            },
            csi::PluginCapability {
                r#type: Some(csi::plugin_capability::Type::VolumeExpansion(
                    csi::plugin_capability::VolumeExpansion {
                        r#type: csi::plugin_capability::volume_expansion::Type::Offline as i32,
                    },
                )),
            },
        ],
    };
    assert_wire(
        &capabilities,
        &[
            ld(1), 4, ld(1), 2, varint(1), 1, // {service: {type: CONTROLLER_SERVICE (1)}}
            ld(1), 4, ld(2), 2, varint(1), 2, // {volume_expansion: {type: OFFLINE (2)}}
        ],
    );

    let controller = csi::ControllerGetCapabilitiesResponse {
        capabilities: vec![csi::ControllerServiceCapability {
            r#type: Some(csi::controller_service_capability::Type::Rpc(
                csi::controller_service_capability::Rpc {
                    r#type: csi::controller_service_capability::rpc::Type::ModifyVolume as i32,
                },
            )),
        }],
    };
    assert_wire(&controller, &[ld(1), 4, ld(1), 2, varint(1), 14]);
}

#[test]
#[rustfmt::skip]
fn probe_readiness_is_a_bool_value_wrapper_message() {
    // ready = 1 is a google.protobuf.BoolValue: a message whose field 1 is the bool.
    assert_wire(
        &csi::ProbeResponse { ready: Some(true) },
        &[ld(1), 2, varint(1), 1],
    );
    // false is the wrapper's default, so the wrapper is present but empty ...
    assert_wire(&csi::ProbeResponse { ready: Some(false) }, &[ld(1), 0]);
    // ... which is different from not saying anything.
    assert_wire(&csi::ProbeResponse { ready: None }, &[]);
}

#[test]
#[rustfmt::skip]
fn mount_request_matches_the_provider_field_numbers() {
    let request = provider::MountRequest {
        attributes: "{}".into(),
        secrets: "{}".into(),
        target_path: "/p".into(),
        permission: "420".into(),
        current_object_version: vec![provider::ObjectVersion {
            id: "i".into(),
            version: "v".into(),
        }],
    };
    assert_wire(
        &request,
        &[
            ld(1), 2, b'{', b'}', // attributes = 1
            ld(2), 2, b'{', b'}', // secrets = 2
            ld(3), 2, b'/', b'p', // target_path = 3
            ld(4), 3, b'4', b'2', b'0', // permission = 4
            ld(5), 6, ld(1), 1, b'i', ld(2), 1, b'v', // current_object_version = 5
        ],
    );
}

#[test]
#[rustfmt::skip]
fn mount_response_matches_the_provider_field_numbers() {
    let response = provider::MountResponse {
        object_version: vec![provider::ObjectVersion {
            id: "a".into(),
            version: "1".into(),
        }],
        error: Some(provider::Error { code: "E".into() }),
        files: vec![provider::File {
            path: "f".into(),
            mode: 0o644,
            contents: b"x".to_vec(),
        }],
    };
    assert_wire(
        &response,
        &[
            ld(1), 6, ld(1), 1, b'a', ld(2), 1, b'1', // object_version = 1
            ld(2), 3, ld(1), 1, b'E', // error = 2: {code = 1}
            ld(3), 9, // files = 3
            ld(1), 1, b'f', // path = 1
            varint(2), 0xa4, 0x03, // mode = 2: 420 (0644) as a varint
            ld(3), 1, b'x', // contents = 3
        ],
    );
}

#[test]
#[rustfmt::skip]
fn file_mode_is_int32_not_sint32_or_uint32() {
    // A negative int32 is sign-extended to ten varint bytes; sint32 would zigzag it to 0x01.
    let file = provider::File {
        path: String::new(),
        mode: -1,
        contents: Vec::new(),
    };
    assert_wire(
        &file,
        &[varint(2), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    );
}

#[test]
#[rustfmt::skip]
fn version_messages_match_the_provider_field_numbers() {
    assert_wire(
        &provider::VersionRequest {
            version: "v1alpha1".into(),
        },
        &[ld(1), 8, b'v', b'1', b'a', b'l', b'p', b'h', b'a', b'1'],
    );
    assert_wire(
        &provider::VersionResponse {
            version: "v".into(),
            runtime_name: "n".into(),
            runtime_version: "1".into(),
        },
        &[ld(1), 1, b'v', ld(2), 1, b'n', ld(3), 1, b'1'],
    );
}

#[test]
#[rustfmt::skip]
fn plugin_registration_messages_match_the_kubelet_field_numbers() {
    let info = reg::PluginInfo {
        r#type: "CSIPlugin".into(),
        name: "n".into(),
        endpoint: "/e".into(),
        supported_versions: vec!["1".into(), "2".into()],
    };
    let mut expected = vec![ld(1), 9];
    expected.extend(b"CSIPlugin");
    expected.extend([
        ld(2), 1, b'n', // name = 2
        ld(3), 2, b'/', b'e', // endpoint = 3
        ld(4), 1, b'1', ld(4), 1, b'2', // supported_versions = 4 (repeated)
    ]);
    assert_wire(&info, &expected);

    assert_wire(
        &reg::RegistrationStatus {
            plugin_registered: true,
            error: "x".into(),
        },
        &[varint(1), 1, ld(2), 1, b'x'],
    );
}

#[test]
fn unknown_fields_from_a_newer_peer_are_skipped() {
    // A NodePublishVolumeRequest from a future spec with an extra field 99 still decodes.
    let mut bytes = vec![ld(1), 1, b'v'];
    bytes.extend([0x9a, 0x06, 1, b'z']); // field 99, wire type 2: key 99 << 3 | 2 = 794
    let decoded = csi::NodePublishVolumeRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.volume_id, "v");
}

#[test]
fn services_have_the_upstream_names() {
    use keyvol_proto::tonic::server::NamedService;

    fn name<S: NamedService>(_: Option<S>) -> &'static str {
        S::NAME
    }
    assert_eq!(
        name::<csi::identity_server::IdentityServer<IdentityStub>>(None),
        "csi.v1.Identity"
    );
    assert_eq!(
        name::<csi::node_server::NodeServer<NodeStub>>(None),
        "csi.v1.Node"
    );
    assert_eq!(
        name::<provider::csi_driver_provider_server::CsiDriverProviderServer<ProviderStub>>(None),
        "v1alpha1.CSIDriverProvider"
    );
    assert_eq!(
        name::<reg::registration_server::RegistrationServer<RegistrationStub>>(None),
        "pluginregistration.Registration"
    );
}

// Stubs only to name the generated server types above; never called.
struct IdentityStub;
struct NodeStub;
struct ProviderStub;
struct RegistrationStub;

type Res<T> = Result<keyvol_proto::tonic::Response<T>, keyvol_proto::tonic::Status>;
type Req<T> = keyvol_proto::tonic::Request<T>;

fn unimplemented<T>() -> Res<T> {
    Err(keyvol_proto::tonic::Status::unimplemented("stub"))
}

#[keyvol_proto::tonic::async_trait]
impl csi::identity_server::Identity for IdentityStub {
    async fn get_plugin_info(
        &self,
        _: Req<csi::GetPluginInfoRequest>,
    ) -> Res<csi::GetPluginInfoResponse> {
        unimplemented()
    }
    async fn get_plugin_capabilities(
        &self,
        _: Req<csi::GetPluginCapabilitiesRequest>,
    ) -> Res<csi::GetPluginCapabilitiesResponse> {
        unimplemented()
    }
    async fn probe(&self, _: Req<csi::ProbeRequest>) -> Res<csi::ProbeResponse> {
        unimplemented()
    }
}

#[keyvol_proto::tonic::async_trait]
impl csi::node_server::Node for NodeStub {
    async fn node_stage_volume(
        &self,
        _: Req<csi::NodeStageVolumeRequest>,
    ) -> Res<csi::NodeStageVolumeResponse> {
        unimplemented()
    }
    async fn node_unstage_volume(
        &self,
        _: Req<csi::NodeUnstageVolumeRequest>,
    ) -> Res<csi::NodeUnstageVolumeResponse> {
        unimplemented()
    }
    async fn node_publish_volume(
        &self,
        _: Req<csi::NodePublishVolumeRequest>,
    ) -> Res<csi::NodePublishVolumeResponse> {
        unimplemented()
    }
    async fn node_unpublish_volume(
        &self,
        _: Req<csi::NodeUnpublishVolumeRequest>,
    ) -> Res<csi::NodeUnpublishVolumeResponse> {
        unimplemented()
    }
    async fn node_get_volume_stats(
        &self,
        _: Req<csi::NodeGetVolumeStatsRequest>,
    ) -> Res<csi::NodeGetVolumeStatsResponse> {
        unimplemented()
    }
    async fn node_expand_volume(
        &self,
        _: Req<csi::NodeExpandVolumeRequest>,
    ) -> Res<csi::NodeExpandVolumeResponse> {
        unimplemented()
    }
    async fn node_get_capabilities(
        &self,
        _: Req<csi::NodeGetCapabilitiesRequest>,
    ) -> Res<csi::NodeGetCapabilitiesResponse> {
        unimplemented()
    }
    async fn node_get_info(
        &self,
        _: Req<csi::NodeGetInfoRequest>,
    ) -> Res<csi::NodeGetInfoResponse> {
        unimplemented()
    }
}

#[keyvol_proto::tonic::async_trait]
impl provider::csi_driver_provider_server::CsiDriverProvider for ProviderStub {
    async fn version(&self, _: Req<provider::VersionRequest>) -> Res<provider::VersionResponse> {
        unimplemented()
    }
    async fn mount(&self, _: Req<provider::MountRequest>) -> Res<provider::MountResponse> {
        unimplemented()
    }
}

#[keyvol_proto::tonic::async_trait]
impl reg::registration_server::Registration for RegistrationStub {
    async fn get_info(&self, _: Req<reg::InfoRequest>) -> Res<reg::PluginInfo> {
        unimplemented()
    }
    async fn notify_registration_status(
        &self,
        _: Req<reg::RegistrationStatus>,
    ) -> Res<reg::RegistrationStatusResponse> {
        unimplemented()
    }
}
