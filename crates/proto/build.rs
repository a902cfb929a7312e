//! Compiles the three .proto files under `proto/` with protox (pure Rust, no `protoc`) and
//! generates prost messages plus tonic clients and servers into `OUT_DIR`.

use std::error::Error;

/// Messages that carry secrets: prost derives no `Debug` for them; `src/redact.rs` implements
/// one that leaves the secret parts out.
const SECRET_BEARING: &[&str] = &[
    ".csi.v1.NodeStageVolumeRequest",
    ".csi.v1.NodePublishVolumeRequest",
    ".csi.v1.NodeExpandVolumeRequest",
    ".v1alpha1.MountRequest",
    ".v1alpha1.File",
];

/// The protocol files, relative to `proto/`.
const PROTOS: &[&str] = &[
    "csi/v1/csi.proto",
    "provider/v1alpha1/service.proto",
    "pluginregistration/api.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Maps as BTreeMap: deterministic encoding order (golden tests, reproducible logs);
        // the wire format does not depend on the map type.
        .btree_map(".")
        .skip_debug(SECRET_BEARING.iter().copied())
        .compile_fds(descriptors)?;
    Ok(())
}
