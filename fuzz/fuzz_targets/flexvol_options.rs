//! The FlexVolume driver's `mount` options: the JSON argument kubelet passes (pod author's
//! options plus kubelet's own keys, the secretRef's values base64-encoded), through
//! `keyvol_flexvol::call::DriverCall::parse` and `keyvol_flexvol::options::FlexOptions::parse`.
//!
//! Checked: no panic; every message is bounded and never repeats the client secret (as given or
//! decoded); accepted options hold names and versions in Key Vault's syntax and distinct,
//! valid file names — and the Azure provider reads the request they become back exactly (same
//! vault, tenant, identity and objects, no warnings), since both drivers share its code.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use keyvol_azure::objects::{ObjectType, is_object_name, is_object_version};
use keyvol_azure::params::AzureParams;
use keyvol_core::RelPath;
use keyvol_flexvol::call::DriverCall;
use keyvol_flexvol::options::{FlexOptions, Identity, key};
use keyvol_flexvol::request::mount_request;
use keyvol_fuzz::{assert_bounded, assert_no_echo};
use libfuzzer_sys::fuzz_target;

const MAX_MESSAGE: usize = 2048;
/// Stands in for the client secret: text no parser compares, so libFuzzer never learns it.
const CANARY: &str = "Qz7-canary-K3x9Wp2-never-compared";

const TARGET: &str = "/var/lib/kubelet/pods/uid/volumes/azure~kv/v";

fuzz_target!(|data: &[u8]| {
    // argv is made of C strings: no NUL, and Go's exec refuses invalid UTF-8 only in Windows.
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    if json.contains('\0') {
        return;
    }
    let args = ["mount".to_owned(), TARGET.to_owned(), json.to_owned()];
    let options = match DriverCall::parse(&args) {
        Ok(DriverCall::Mount { options, .. }) => options,
        Ok(other) => panic!("a mount call parsed as {other:?}"),
        Err(e) => {
            assert_bounded("call error", &e.to_string(), MAX_MESSAGE);
            return;
        }
    };
    match FlexOptions::parse(&options) {
        Ok(parsed) => check_accepted(parsed),
        Err(e) => {
            let message = e.to_string();
            assert_bounded("options error", &message, MAX_MESSAGE);
        }
    }
    check_secret_not_echoed(&options);
});

/// The secretRef's client secret appears in no message, whatever the other options say: the
/// options are parsed again with a canary as the secret — valid base64, wrapped in whitespace,
/// not base64, not UTF-8 once decoded — and no message may repeat it, as given or decoded. (The
/// fuzzer's own secret cannot be checked so: libFuzzer learns every text the parser compares,
/// such as option keys and cloud names, and copies it into the secret and into the messages.)
fn check_secret_not_echoed(options: &BTreeMap<String, String>) {
    let key = options
        .keys()
        .find(|k| k.eq_ignore_ascii_case(key::SECRET_CLIENT_SECRET))
        .cloned()
        .unwrap_or_else(|| key::SECRET_CLIENT_SECRET.to_owned());
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut not_utf8 = vec![0xff];
    not_utf8.extend_from_slice(CANARY.as_bytes());
    for value in [
        b64(CANARY.as_bytes()),
        format!(" {}\n", b64(CANARY.as_bytes())),
        format!("*{CANARY}*"),
        b64(&not_utf8),
    ] {
        let mut options = options.clone();
        options.insert(key.clone(), value.clone());
        if let Err(e) = FlexOptions::parse(&options) {
            let message = e.to_string();
            assert_no_echo("client secret", value.as_bytes(), &message, &[]);
            assert_no_echo("decoded client secret", CANARY.as_bytes(), &message, &[]);
        }
    }
}

fn check_accepted(parsed: FlexOptions) {
    let vault = parsed.vault_name.clone();
    let tenant = parsed.tenant_id.clone();
    let cloud = parsed.cloud.name.clone();
    let identity = match &parsed.identity {
        Identity::ServicePrincipal { .. } => "ServicePrincipal",
        Identity::PodIdentity => "PodIdentity",
        Identity::VmManagedIdentity { .. } => "VMManagedIdentity",
    };
    let mut want: Vec<(String, ObjectType, String, String)> = Vec::new();
    for o in &parsed.objects {
        assert!(is_object_name(&o.name), "accepted name {:?}", o.name);
        assert!(
            is_object_version(&o.version),
            "accepted version {:?}",
            o.version
        );
        assert_eq!(RelPath::new(o.file.as_str()).as_ref(), Ok(&o.file));
        for (_, _, _, file) in &want {
            let f = o.file.as_str();
            assert_ne!(file, f, "file {f:?} accepted twice");
            assert!(
                !f.starts_with(&format!("{file}/")) && !file.starts_with(&format!("{f}/")),
                "{file:?} and {f:?} accepted together"
            );
        }
        want.push((
            o.name.clone(),
            o.object_type,
            o.version.clone(),
            o.file.as_str().to_owned(),
        ));
    }

    // What the FlexVolume driver accepted, the provider must read back as it was meant.
    let request = mount_request(parsed, Path::new(TARGET));
    let back = match AzureParams::parse(&request.attributes, "AzurePublicCloud", None) {
        Ok(back) => back,
        Err(e) => panic!(
            "accepted options the provider refuses: {}",
            keyvol_core::report::chain(&e)
        ),
    };
    assert_eq!(
        (back.vault_name.as_str(), back.tenant_id.as_str()),
        (vault.as_str(), tenant.as_str())
    );
    assert_eq!(back.cloud.name, cloud);
    assert_eq!(back.identity.name(), identity);
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    let got: Vec<(String, ObjectType, String, String)> = back
        .objects
        .iter()
        .map(|o| {
            (
                o.name.clone(),
                o.object_type,
                o.version.clone(),
                o.file.as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want, "the provider read other objects back");
}
