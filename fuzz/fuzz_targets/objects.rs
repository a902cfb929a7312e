//! The SecretProviderClass `objects` parameter, as `keyvol_azure::objects::parse_objects` reads
//! it from a class (the class author controls every byte).
//!
//! Checked: no panic, and bounded time and memory (libFuzzer's limits); an accepted list holds
//! only names and versions in Key Vault's syntax, file names that are valid relative paths, no
//! file twice and none that would have to be another's directory, `pfx` and encodings on
//! secrets only, permissions within 0777; every message — error or warning — is bounded.
#![no_main]

use std::collections::BTreeMap;

use keyvol_azure::objects::{
    KeyVaultObject, ObjectEncoding, ObjectFormat, ObjectType, is_object_name, is_object_version,
    parse_objects,
};
use keyvol_core::RelPath;
use keyvol_fuzz::assert_bounded;
use libfuzzer_sys::fuzz_target;

/// Longest message a refused or odd list may produce: a template, a field name and a value
/// shown cut short.
const MAX_MESSAGE: usize = 2048;

fuzz_target!(|data: &[u8]| {
    // Parameters are strings (the API server stores UTF-8).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_objects(text) {
        Ok(parsed) => {
            for w in &parsed.warnings {
                assert_bounded("warning", w, MAX_MESSAGE);
            }
            check_accepted(&parsed.objects);
        }
        Err(e) => assert_bounded("error", &keyvol_core::report::chain(&e), MAX_MESSAGE),
    }
});

fn check_accepted(objects: &[KeyVaultObject]) {
    let mut files: BTreeMap<&str, u32> = BTreeMap::new();
    for o in objects {
        assert!(is_object_name(&o.name), "accepted name {:?}", o.name);
        let latest = o.version_history > 1 && o.version.eq_ignore_ascii_case("latest");
        assert!(
            is_object_version(&o.version) || latest,
            "accepted version {:?}",
            o.version
        );
        assert_eq!(
            RelPath::new(o.file.as_str()).as_ref(),
            Ok(&o.file),
            "file name is not a valid relative path"
        );
        if o.format == ObjectFormat::Pfx || o.encoding != ObjectEncoding::Utf8 {
            assert_eq!(
                o.object_type,
                ObjectType::Secret,
                "pfx or encoding on {o:?}"
            );
        }
        if let Some(mode) = o.file_permission {
            assert!(mode <= 0o777, "permission {mode:o}");
        }
        assert!(
            files.insert(o.file.as_str(), o.version_history).is_none(),
            "file {:?} accepted twice",
            o.file.as_str()
        );
    }
    // No file may need another's file to be a directory (`a` and `a/b`); an object with
    // version history owns only `<file>/0` … `<file>/<N-1>` under its directory.
    for (&name, &history) in &files {
        for (&other, _) in files
            .iter()
            .filter(|(o, _)| o.starts_with(&format!("{name}/")))
        {
            assert!(history > 1, "{other:?} accepted under the file {name:?}");
            let first = other[name.len() + 1..].split('/').next().unwrap_or("");
            let taken = first
                .parse::<u32>()
                .is_ok_and(|n| n < history && n.to_string() == first);
            assert!(!taken, "{other:?} accepted inside {name:?}'s version files");
        }
    }
}
