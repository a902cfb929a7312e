//! The `objects` parameter: an `array:` of YAML strings, each describing one Key Vault object,
//! parsed and fully validated before any network call.
//!
//! A class author controls all of it, so parsing is bounded — [`MAX_OBJECTS_BYTES`] before
//! parsing starts, [`MAX_OBJECTS_DEPTH`] and a node budget while it runs — and every object name
//! and version must follow Key Vault's syntax ([`is_object_name`], [`is_object_version`]), so
//! nothing a class says can change which URL is requested.

use std::collections::BTreeMap;

use keyvol_core::RelPath;
use serde_json::Value;

use crate::error::AzureError;

/// Kind of Key Vault object. Matched case-sensitively, as upstream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectType {
    /// `secret`
    Secret,
    /// `key` (the public key is written)
    Key,
    /// `cert` (the public certificate is written)
    Cert,
}

impl ObjectType {
    /// The name used in manifests and object version ids.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Secret => "secret",
            ObjectType::Key => "key",
            ObjectType::Cert => "cert",
        }
    }
}

/// `objectFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectFormat {
    /// PEM (default).
    Pem,
    /// The PFX as stored (secrets of PKCS#12 certificates only).
    Pfx,
}

/// `objectEncoding` (secrets only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectEncoding {
    /// Bytes as stored (default).
    Utf8,
    /// Stored value is standard base64; write the decoded bytes.
    Base64,
    /// Stored value is hex; write the decoded bytes.
    Hex,
}

/// One validated object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVaultObject {
    /// `objectName`.
    pub name: String,
    /// The file name: `objectAlias`, or `objectName` when there is no alias.
    pub file: RelPath,
    /// `objectType`.
    pub object_type: ObjectType,
    /// `objectVersion`; empty means the newest.
    pub version: String,
    /// `objectVersionHistory`; values above 1 mount that many versions under `<file>/<index>`.
    pub version_history: u32,
    /// `objectFormat`.
    pub format: ObjectFormat,
    /// `objectEncoding`.
    pub encoding: ObjectEncoding,
    /// `filePermission`, when set.
    pub file_permission: Option<u32>,
}

/// Largest `objects` parameter accepted, checked before parsing. Upstream sets no limit; a class
/// with a thousand objects is under 100 KiB, and the API server keeps objects under 1.5 MiB.
pub const MAX_OBJECTS_BYTES: usize = 256 * 1024;
/// Deepest YAML nesting accepted in `objects` and in each item. A valid list nests two deep
/// (a mapping holding a list of strings) and each item one (a flat mapping); deeper input is
/// refused before the parser's recursion can grow.
pub const MAX_OBJECTS_DEPTH: usize = 8;
/// Most YAML nodes in `objects` or in one item (a thousand objects need a few thousand).
const MAX_OBJECTS_NODES: usize = 50_000;
/// Most anchors and aliases: valid lists need none, and aliases could multiply the input.
const MAX_OBJECTS_ALIASES: usize = 64;
/// Longest object name Key Vault accepts.
pub const MAX_OBJECT_NAME: usize = 127;
/// Length of a Key Vault object version: 32 hexadecimal digits.
pub const OBJECT_VERSION_LEN: usize = 32;
/// Most characters of a refused value shown in a message.
const MAX_SHOWN: usize = 140;

/// Key Vault's object-name syntax: 1 to 127 of `0-9`, `a-z`, `A-Z` and `-`. Anything else would
/// be a different URL path once encoded (`k1/../s1`, `%2e%2e/keys/k1`) or be dropped by the URL
/// parser (`s\n1` became `s1`).
pub fn is_object_name(name: &str) -> bool {
    (1..=MAX_OBJECT_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A Key Vault object version: empty (the newest) or 32 hexadecimal digits, as the service makes
/// them.
pub fn is_object_version(version: &str) -> bool {
    version.is_empty()
        || (version.len() == OBJECT_VERSION_LEN && version.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A refused value for a message: quoted, control characters escaped, cut after [`MAX_SHOWN`]
/// characters.
pub fn shown(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_SHOWN).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// A key for a message: as written when it is short plain text (keys are names), else quoted,
/// escaped and cut as values are ([`shown`]), so a message stays one short line.
pub fn key_shown(key: &str) -> String {
    if key.chars().count() <= MAX_SHOWN && !key.chars().any(char::is_control) {
        key.to_owned()
    } else {
        shown(key)
    }
}

/// The YAML parser's limits for `objects` and each item.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_OBJECTS_DEPTH,
            flow_nesting_limit: MAX_OBJECTS_DEPTH,
            max_nodes: MAX_OBJECTS_NODES,
            max_events: 4 * MAX_OBJECTS_NODES,
            max_documents: 1,
            max_aliases: MAX_OBJECTS_ALIASES,
            max_anchors: MAX_OBJECTS_ALIASES,
            max_merge_keys: MAX_OBJECTS_ALIASES,
            max_recorded_anchor_events: MAX_OBJECTS_NODES,
            max_recorded_anchor_bytes: MAX_OBJECTS_BYTES,
            max_total_scalar_bytes: 2 * MAX_OBJECTS_BYTES,
        },
    }
}

/// Object keys the upstream provider knows.
const KNOWN_KEYS: [&str; 8] = [
    "objectName",
    "objectAlias",
    "objectType",
    "objectVersion",
    "objectVersionHistory",
    "objectFormat",
    "objectEncoding",
    "filePermission",
];

/// Parsed objects plus advice about keys that look misspelled.
#[derive(Debug, Default)]
pub struct ParsedObjects {
    /// The objects, in manifest order.
    pub objects: Vec<KeyVaultObject>,
    /// Warnings, e.g. `objects[0].objectname: unknown key, did you mean objectName?`.
    pub warnings: Vec<String>,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> AzureError {
    AzureError::InvalidParameter {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parses the `objects` parameter.
pub fn parse_objects(text: &str) -> Result<ParsedObjects, AzureError> {
    if text.trim().is_empty() {
        return Err(invalid("objects", "is not set"));
    }
    if text.len() > MAX_OBJECTS_BYTES {
        return Err(invalid(
            "objects",
            format!(
                "is {} KiB, larger than the {} KiB keyvol accepts",
                text.len().div_ceil(1024),
                MAX_OBJECTS_BYTES / 1024
            ),
        ));
    }
    let outer: Value = serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|e| invalid("objects", yaml_message(&e)))?;
    let items = match outer.get("array") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => return Ok(ParsedObjects::default()),
        Some(_) => return Err(invalid("objects.array", "must be a list of YAML strings")),
    };
    let mut parsed = ParsedObjects::default();
    let mut files: BTreeMap<String, (usize, u32)> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("objects[{i}]");
        let Value::String(item_text) = item else {
            return Err(invalid(
                field,
                "must be a YAML string (use `- |` and indent the object)",
            ));
        };
        let map = parse_item(&field, item_text)?;
        let object = parse_one(&field, &map, &mut parsed.warnings)?;
        if let Some((other, _)) = files.insert(object.file.to_string(), (i, object.version_history))
        {
            return Err(invalid(
                &field,
                format!(
                    "file name {} is also used by objects[{other}]; give one of them an objectAlias",
                    shown(object.file.as_str())
                ),
            ));
        }
        parsed.objects.push(object);
    }
    check_directories(&files)?;
    Ok(parsed)
}

/// Every file must be able to exist: none may have to be a directory for another (`a` and
/// `a/b`). An object with `objectVersionHistory: N` above 1 writes the directory `<file>` with
/// the files `0` … `N-1`; others may sit beside those. The version files are reasoned about,
/// never listed, so a large N costs nothing here.
///
/// `files` maps each object's file to its index and `objectVersionHistory`.
fn check_directories(files: &BTreeMap<String, (usize, u32)>) -> Result<(), AzureError> {
    for (name, &(i, history)) in files {
        let prefix = format!("{name}/");
        // Files under `name/` are contiguous in the map's order.
        for (other, &(j, _)) in files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            let needs = if history > 1 {
                // Only a version index below N is taken: `name/0` … `name/N-1`.
                let first = other[prefix.len()..].split('/').next().unwrap_or("");
                match first.parse::<u32>() {
                    Ok(n) if n < history && n.to_string() == first => format!("{name}/{first}"),
                    _ => continue,
                }
            } else {
                name.clone()
            };
            return Err(invalid(
                format!("objects[{j}]"),
                format!(
                    "file name {} would need {} (objects[{i}]) to be a directory",
                    shown(other),
                    shown(&needs)
                ),
            ));
        }
    }
    Ok(())
}

/// One item's keys and values. Values are read as the text the class wrote, as upstream's
/// string fields read them (a version of 32 decimal digits stays itself, not a number).
fn parse_item(field: &str, text: &str) -> Result<BTreeMap<String, Option<String>>, AzureError> {
    serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        // Name the key whose value is not a scalar, if that is what failed.
        let structured: Option<BTreeMap<String, Value>> =
            serde_saphyr::from_str_with_options(text, yaml_options()).ok();
        match structured.and_then(|m| {
            m.into_iter()
                .find(|(_, v)| matches!(v, Value::Array(_) | Value::Object(_)))
        }) {
            Some((key, _)) => invalid(format!("{field}.{}", key_shown(&key)), "must be a scalar"),
            None => invalid(field, yaml_message(&e)),
        }
    })
}

fn parse_one(
    field: &str,
    map: &BTreeMap<String, Option<String>>,
    warnings: &mut Vec<String>,
) -> Result<KeyVaultObject, AzureError> {
    for key in map.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            let key_text = key_shown(key);
            match closest_known(key) {
                Some(known) => warnings.push(format!(
                    "{field}.{key_text}: unknown key, did you mean {known}? (ignored, as upstream does)"
                )),
                None => warnings.push(format!("{field}.{key_text}: unknown key (ignored)")),
            }
        }
    }
    let get = |key: &str| -> String {
        map.get(key)
            .and_then(Option::as_deref)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let name = get("objectName");
    if name.is_empty() {
        return Err(invalid(format!("{field}.objectName"), "is required"));
    }
    if !is_object_name(&name) {
        return Err(invalid(
            format!("{field}.objectName"),
            format!(
                "{} is not a Key Vault object name (1 to {MAX_OBJECT_NAME} of 0-9, a-z, A-Z and -)",
                shown(&name)
            ),
        ));
    }
    let alias = get("objectAlias");
    let file_field = if alias.is_empty() {
        "objectName"
    } else {
        "objectAlias"
    };
    let file_text = if alias.is_empty() { &name } else { &alias };
    let file = RelPath::new(file_text)
        .map_err(|e| invalid(format!("{field}.{file_field}"), e.to_string()))?;

    let type_text = get("objectType");
    let object_type = match type_text.as_str() {
        "secret" => ObjectType::Secret,
        "key" => ObjectType::Key,
        "cert" => ObjectType::Cert,
        "" => {
            return Err(invalid(
                format!("{field}.objectType"),
                "is required: one of secret, key, cert",
            ));
        }
        other => {
            return Err(invalid(
                format!("{field}.objectType"),
                format!(
                    "{} is not one of secret, key, cert (the value is case-sensitive)",
                    shown(other)
                ),
            ));
        }
    };

    let format_text = get("objectFormat");
    let format = match format_text.to_ascii_lowercase().as_str() {
        "" | "pem" => ObjectFormat::Pem,
        "pfx" => ObjectFormat::Pfx,
        _ => {
            return Err(invalid(
                format!("{field}.objectFormat"),
                format!("{} is not one of pem, pfx", shown(&format_text)),
            ));
        }
    };
    if format == ObjectFormat::Pfx && object_type != ObjectType::Secret {
        return Err(invalid(
            format!("{field}.objectFormat"),
            "pfx is only supported for objectType: secret",
        ));
    }

    let encoding_text = get("objectEncoding");
    let encoding = match encoding_text.to_ascii_lowercase().as_str() {
        "" | "utf-8" => ObjectEncoding::Utf8,
        "base64" => ObjectEncoding::Base64,
        "hex" => ObjectEncoding::Hex,
        _ => {
            return Err(invalid(
                format!("{field}.objectEncoding"),
                format!("{} is not one of utf-8, base64, hex", shown(&encoding_text)),
            ));
        }
    };
    if !encoding_text.is_empty() && object_type != ObjectType::Secret {
        return Err(invalid(
            format!("{field}.objectEncoding"),
            "is only supported for objectType: secret",
        ));
    }

    let history_text = get("objectVersionHistory");
    let version_history = if history_text.is_empty() {
        0
    } else {
        history_text
            .parse::<i32>()
            .map_err(|_| {
                invalid(
                    format!("{field}.objectVersionHistory"),
                    format!("{} is not a whole number", shown(&history_text)),
                )
            })?
            .max(0)
            .unsigned_abs()
    };

    let perm_text = get("filePermission");
    let file_permission = if perm_text.is_empty() {
        None
    } else {
        match u32::from_str_radix(&perm_text, 8) {
            Ok(mode) if mode <= 0o777 => Some(mode),
            _ => {
                return Err(invalid(
                    format!("{field}.filePermission"),
                    format!(
                        "{} is not an octal permission between 0000 and 0777",
                        shown(&perm_text)
                    ),
                ));
            }
        }
    };

    // `latest` means the newest only where upstream gives it a meaning: version history.
    let version = get("objectVersion");
    let latest = version_history > 1 && version.eq_ignore_ascii_case("latest");
    if !is_object_version(&version) && !latest {
        return Err(invalid(
            format!("{field}.objectVersion"),
            format!(
                "{} is not an object version ({OBJECT_VERSION_LEN} hexadecimal digits, or empty for the newest)",
                shown(&version)
            ),
        ));
    }

    Ok(KeyVaultObject {
        name,
        file,
        object_type,
        version,
        version_history,
        format,
        encoding,
        file_permission,
    })
}

/// The known key `key` most likely meant: same letters ignoring case, or within two edits.
fn closest_known(key: &str) -> Option<&'static str> {
    KNOWN_KEYS
        .iter()
        .copied()
        .filter(|k| {
            k.eq_ignore_ascii_case(key)
                || edit_distance(&k.to_ascii_lowercase(), &key.to_ascii_lowercase()) <= 2
        })
        .min_by_key(|k| edit_distance(k, key))
}

/// Levenshtein distance.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A YAML error for a message: the parser's own words without a snippet of the input, and the
/// budget's breaches in plain terms.
pub(crate) fn yaml_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::budget::BudgetBreach;
    let e = e.without_snippet();
    // Flow collections (`[[[…`) hit the parser's own nesting limit before the budget sees them.
    if let serde_saphyr::Error::ExternalMessage { source, .. } = e
        && let serde_saphyr::ExternalMessageSource::Parser(scan) = source.as_ref()
        && matches!(
            scan.kind(),
            serde_saphyr::granit_parser::ErrorKind::RecursionLimitExceeded
        )
    {
        return format!("is nested deeper than {MAX_OBJECTS_DEPTH} levels");
    }
    if let serde_saphyr::Error::Budget { breach, .. } = e {
        return match breach {
            BudgetBreach::Depth { .. } => {
                format!("is nested deeper than {MAX_OBJECTS_DEPTH} levels")
            }
            BudgetBreach::Aliases { .. } | BudgetBreach::Anchors { .. } => {
                format!("uses more than {MAX_OBJECTS_ALIASES} YAML anchors or aliases")
            }
            _ => "is too large or too complex for a list of objects".to_owned(),
        };
    }
    e.render_with_options(serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(items: &[&str]) -> String {
        let mut s = String::from("array:\n");
        for item in items {
            s.push_str("  - |\n");
            for line in item.lines() {
                s.push_str("    ");
                s.push_str(line);
                s.push('\n');
            }
        }
        s
    }

    #[test]
    fn parses_every_field() {
        let text = objects(&[
            "objectName: s1\nobjectType: secret\nobjectVersion: 0123456789abcdef0123456789ABCDEF\nobjectEncoding: BASE64\nfilePermission: \"0440\"",
            "objectName: k1\nobjectAlias: keys/k1.pem\nobjectType: key",
            "objectName: c1\nobjectType: cert\nobjectVersionHistory: 3",
        ]);
        let parsed = parse_objects(&text).expect("parses");
        let o = &parsed.objects;
        assert_eq!(o.len(), 3);
        assert_eq!(
            (o[0].object_type, o[0].encoding, o[0].file_permission),
            (ObjectType::Secret, ObjectEncoding::Base64, Some(0o440))
        );
        assert_eq!(o[0].version, "0123456789abcdef0123456789ABCDEF");
        assert_eq!(o[1].file.as_str(), "keys/k1.pem");
        assert_eq!(o[2].version_history, 3);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn errors_name_the_field_and_the_index() {
        let cases = [
            (
                objects(&[
                    "objectName: a\nobjectType: secret",
                    "objectName: b\nobjectType: Secret",
                ]),
                "objects[1].objectType: \"Secret\" is not one of secret, key, cert (the value is case-sensitive)",
            ),
            (
                objects(&["objectName: a\nobjectType: secret\nfilePermission: \"0900\""]),
                "objects[0].filePermission: \"0900\" is not an octal permission between 0000 and 0777",
            ),
            (
                objects(&["objectName: a\nobjectAlias: ../etc/passwd\nobjectType: secret"]),
                "objects[0].objectAlias: file name must not contain '..'",
            ),
            (
                objects(&["objectName: ../etc/passwd\nobjectType: secret"]),
                "objects[0].objectName: \"../etc/passwd\" is not a Key Vault object name (1 to 127 of 0-9, a-z, A-Z and -)",
            ),
            (
                objects(&["objectName: a\nobjectAlias: /abs\nobjectType: secret"]),
                "objects[0].objectAlias: file name must be a relative path",
            ),
            (
                objects(&["objectName: a\nobjectType: key\nobjectFormat: PFX"]),
                "objects[0].objectFormat: pfx is only supported for objectType: secret",
            ),
            (
                objects(&["objectName: a\nobjectType: key\nobjectEncoding: base64"]),
                "objects[0].objectEncoding: is only supported for objectType: secret",
            ),
            (
                objects(&["objectName: a\nobjectType: secret\nobjectEncoding: SECRET_ALIAS"]),
                "objects[0].objectEncoding: \"SECRET_ALIAS\" is not one of utf-8, base64, hex",
            ),
            (
                objects(&["objectType: secret"]),
                "objects[0].objectName: is required",
            ),
            (
                objects(&[
                    "objectName: a\nobjectType: secret",
                    "objectName: a\nobjectType: key",
                ]),
                "objects[1]: file name \"a\" is also used by objects[0]; give one of them an objectAlias",
            ),
            (String::new(), "objects: is not set"),
        ];
        for (text, want) in cases {
            let err = parse_objects(&text).expect_err(want);
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn messages_stay_short_whatever_the_values_and_keys() {
        // The objects fuzz target's bound on messages, on inputs written for it: refused values,
        // file names and keys were quoted whole, so a long one made a message as long.
        let long = "x".repeat(5000);
        let dirs = format!("{}/", "d".repeat(250)).repeat(12);
        let one = |extra: &str| objects(&[&format!("objectName: a\nobjectType: secret\n{extra}")]);
        let texts = [
            objects(&[&format!("objectName: a\nobjectType: {long}")]),
            one(&format!("objectFormat: {long}")),
            one(&format!("objectEncoding: {long}")),
            one(&format!("objectVersionHistory: {long}")),
            one(&format!("filePermission: {long}")),
            one(&format!("? {long}\n: [1]")),
            objects(&[
                &format!("objectName: a\nobjectType: secret\nobjectAlias: {dirs}f"),
                &format!("objectName: b\nobjectType: secret\nobjectAlias: {dirs}f"),
            ]),
            objects(&[
                &format!("objectName: a\nobjectType: secret\nobjectAlias: {dirs}f"),
                &format!("objectName: b\nobjectType: secret\nobjectAlias: {dirs}f/g"),
            ]),
        ];
        for text in &texts {
            let e = parse_objects(text).expect_err("refused").to_string();
            assert!(
                e.len() < 600 && e.contains('…'),
                "{} bytes: {e:.300}",
                e.len()
            );
        }
        let parsed = parse_objects(&one(&format!("? {long}\n: 1"))).expect("parses");
        assert!(
            parsed.warnings[0].len() < 600,
            "{}",
            parsed.warnings[0].len()
        );
    }

    #[test]
    fn names_and_versions_outside_key_vaults_syntax_are_refused_with_control_characters_escaped() {
        let long = "a".repeat(128);
        let cases = [
            (
                "objectName: \"s\\n1\"",
                "objects[0].objectName: \"s\\n1\" is not a Key Vault object name",
            ),
            (
                "objectName: \"s\\t1\"",
                "objects[0].objectName: \"s\\t1\" is not a Key Vault object name",
            ),
            (
                "objectName: k1/../s1",
                "objects[0].objectName: \"k1/../s1\" is not",
            ),
            (
                "objectName: \"%2e%2e/keys/k1\"",
                "objects[0].objectName: \"%2e%2e/keys/k1\" is not",
            ),
            ("objectName: s_1", "objects[0].objectName: \"s_1\" is not"),
            ("objectName: s.1", "objects[0].objectName: \"s.1\" is not"),
            (
                "objectName: \"s\\u00001\"",
                "objects[0].objectName: \"s\\01\" is not",
            ),
            (
                &*format!("objectName: {long}"),
                "objects[0].objectName: \"aaaa",
            ),
            (
                "objectName: s1\nobjectVersion: ../../keys/k1",
                "objects[0].objectVersion: \"../../keys/k1\" is not an object version (32 hexadecimal digits, or empty for the newest)",
            ),
            (
                "objectName: s1\nobjectVersion: latest",
                "objects[0].objectVersion: \"latest\" is not",
            ),
            (
                "objectName: s1\nobjectVersion: 0123456789abcdef0123456789abcdeg",
                "objects[0].objectVersion: \"0123456789abcdef0123456789abcdeg\"",
            ),
            (
                "objectName: s1\nobjectVersion: 0123456789abcdef0123456789abcdef0",
                "objects[0].objectVersion:",
            ),
        ];
        for (item, want) in cases {
            let err = parse_objects(&objects(&[&format!(
                "{item}\nobjectAlias: f\nobjectType: secret"
            )]))
            .expect_err(item)
            .to_string();
            assert!(err.starts_with(want), "{item}: {err}");
            assert!(
                !err.contains('\n') && !err.contains('\t') && !err.contains('\0'),
                "{err}"
            );
        }
        let err = parse_objects(&objects(&[&format!(
            "objectName: {}\nobjectType: secret",
            "b".repeat(1000)
        )]))
        .expect_err("long")
        .to_string();
        assert!(
            err.len() < 300,
            "the message shows at most the name's start: {err}"
        );
    }

    #[test]
    fn versions_are_read_as_written() {
        let parsed = parse_objects(&objects(&[
            "objectName: a\nobjectType: secret\nobjectVersion: 00000000000000000000000000000002",
            "objectName: b\nobjectType: secret\nobjectVersion: 12345678901234567890123456789012",
            "objectName: c\nobjectType: secret\nobjectVersionHistory: 3\nobjectVersion: Latest",
        ]))
        .expect("parses");
        let v: Vec<&str> = parsed.objects.iter().map(|o| o.version.as_str()).collect();
        assert_eq!(
            v,
            [
                "00000000000000000000000000000002",
                "12345678901234567890123456789012",
                "Latest"
            ],
            "numbers stay text; latest is only meaningful with version history"
        );
    }

    #[test]
    fn oversized_and_deeply_nested_lists_fail_fast_naming_the_field() {
        let huge = format!(
            "{}# {}\n",
            objects(&["objectName: a\nobjectType: secret"]),
            "x".repeat(10 << 20)
        );
        let started = std::time::Instant::now();
        assert_eq!(
            parse_objects(&huge).expect_err("huge").to_string(),
            "objects: is 10241 KiB, larger than the 256 KiB keyvol accepts"
        );
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse_objects(&deep).expect_err("deep").to_string(),
            "objects: is nested deeper than 8 levels"
        );
        let err = parse_objects(&format!("array:\n  - |\n    {deep}\n"))
            .expect_err("deep item")
            .to_string();
        assert_eq!(err, "objects[0]: is nested deeper than 8 levels");
        let blocks: String = (0..200)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect();
        assert_eq!(
            parse_objects(&blocks).expect_err("deep blocks").to_string(),
            "objects: is nested deeper than 8 levels"
        );
        let aliases = format!(
            "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [{}]\narray: []\n",
            vec!["*b"; 100].join(", ")
        );
        assert!(
            parse_objects(&aliases).is_err(),
            "alias expansion is bounded"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let err = parse_objects(&objects(&["objectName: [a]\nobjectType: secret"]))
            .expect_err("list")
            .to_string();
        assert_eq!(err, "objects[0].objectName: must be a scalar");
    }

    #[test]
    fn version_history_directories_are_checked_without_listing_every_version() {
        // A huge N costs nothing: the version files are reasoned about, not listed.
        let started = std::time::Instant::now();
        let parsed = parse_objects(&objects(&[
            "objectName: a\nobjectType: secret\nobjectVersionHistory: 2147483647",
            "objectName: b\nobjectType: secret\nobjectAlias: a/notes",
            "objectName: c\nobjectType: secret\nobjectVersionHistory: 2\nobjectAlias: a/x",
        ]))
        .expect("files beside the version files are fine");
        assert_eq!(parsed.objects[0].version_history, 2147483647);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let cases = [
            (
                vec![
                    "objectName: a\nobjectType: secret\nobjectVersionHistory: 3",
                    "objectName: b\nobjectType: secret\nobjectAlias: a/2",
                ],
                "objects[1]: file name \"a/2\" would need \"a/2\" (objects[0]) to be a directory",
            ),
            (
                vec![
                    "objectName: a\nobjectType: secret\nobjectVersionHistory: 3",
                    "objectName: b\nobjectType: secret\nobjectAlias: a/1/x",
                ],
                "objects[1]: file name \"a/1/x\" would need \"a/1\" (objects[0]) to be a directory",
            ),
            (
                vec![
                    "objectName: a\nobjectType: secret",
                    "objectName: b\nobjectType: secret\nobjectAlias: a/b",
                ],
                "objects[1]: file name \"a/b\" would need \"a\" (objects[0]) to be a directory",
            ),
            (
                vec![
                    "objectName: a\nobjectType: secret\nobjectVersionHistory: 3",
                    "objectName: b\nobjectType: secret\nobjectAlias: a",
                ],
                "objects[1]: file name \"a\" is also used by objects[0]; give one of them an objectAlias",
            ),
        ];
        for (items, want) in cases {
            assert_eq!(
                parse_objects(&objects(&items)).expect_err(want).to_string(),
                want
            );
        }
        // `a/3` and `a/03` are not among `a/0` .. `a/2`.
        parse_objects(&objects(&[
            "objectName: a\nobjectType: secret\nobjectVersionHistory: 3",
            "objectName: b\nobjectType: secret\nobjectAlias: a/3",
            "objectName: c\nobjectType: secret\nobjectAlias: a/02",
        ]))
        .expect("beside the version files");
    }

    #[test]
    fn misspelled_keys_are_reported() {
        let parsed = parse_objects(&objects(&[
            "objectName: a\nobjectType: secret\nobjectname: b\nobjectAliases: c",
        ]))
        .expect("parses");
        assert_eq!(parsed.warnings.len(), 2);
        assert!(
            parsed
                .warnings
                .iter()
                .any(|w| w.contains("objectAliases: unknown key, did you mean objectAlias?")),
            "{:?}",
            parsed.warnings
        );
    }

    #[test]
    fn an_empty_array_mounts_nothing() {
        assert!(
            parse_objects("array: []")
                .expect("parses")
                .objects
                .is_empty()
        );
    }
}
