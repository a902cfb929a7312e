//! The `objects` parameter: an `array:` of YAML strings, each describing one Key Vault object,
//! parsed and fully validated before any network call.

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
    let outer: Value =
        serde_saphyr::from_str(text).map_err(|e| invalid("objects", yaml_message(&e)))?;
    let items = match outer.get("array") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => return Ok(ParsedObjects::default()),
        Some(_) => return Err(invalid("objects.array", "must be a list of YAML strings")),
    };
    let mut parsed = ParsedObjects::default();
    let mut files: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("objects[{i}]");
        let Value::String(item_text) = item else {
            return Err(invalid(
                field,
                "must be a YAML string (use `- |` and indent the object)",
            ));
        };
        let map: BTreeMap<String, Value> =
            serde_saphyr::from_str(item_text).map_err(|e| invalid(&field, yaml_message(&e)))?;
        let object = parse_one(&field, &map, &mut parsed.warnings)?;
        let names: Vec<String> = if object.version_history > 1 {
            (0..object.version_history)
                .map(|n| format!("{}/{n}", object.file))
                .collect()
        } else {
            vec![object.file.to_string()]
        };
        for name in names {
            if let Some(other) = files.insert(name.clone(), i) {
                return Err(invalid(
                    &field,
                    format!(
                        "file name {name:?} is also used by objects[{other}]; give one of them an objectAlias"
                    ),
                ));
            }
        }
        parsed.objects.push(object);
    }
    // A file that is also a directory of another (`a` and `a/b`) cannot exist.
    for name in files.keys() {
        let prefix = format!("{name}/");
        if let Some((other, idx)) = files.iter().find(|(k, _)| k.starts_with(&prefix)) {
            return Err(invalid(
                format!("objects[{idx}]"),
                format!(
                    "file name {other:?} would need {name:?} (objects[{}]) to be a directory",
                    files[name]
                ),
            ));
        }
    }
    Ok(parsed)
}

fn parse_one(
    field: &str,
    map: &BTreeMap<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<KeyVaultObject, AzureError> {
    for key in map.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            match closest_known(key) {
                Some(known) => warnings.push(format!(
                    "{field}.{key}: unknown key, did you mean {known}? (ignored, as upstream does)"
                )),
                None => warnings.push(format!("{field}.{key}: unknown key (ignored)")),
            }
        }
    }
    let get = |key: &str| -> Result<String, AzureError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.trim().to_owned()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::Bool(b)) => Ok(b.to_string()),
            Some(_) => Err(invalid(format!("{field}.{key}"), "must be a scalar")),
        }
    };
    let name = get("objectName")?;
    if name.is_empty() {
        return Err(invalid(format!("{field}.objectName"), "is required"));
    }
    let alias = get("objectAlias")?;
    let file_field = if alias.is_empty() {
        "objectName"
    } else {
        "objectAlias"
    };
    let file_text = if alias.is_empty() { &name } else { &alias };
    let file = RelPath::new(file_text)
        .map_err(|e| invalid(format!("{field}.{file_field}"), e.to_string()))?;

    let type_text = get("objectType")?;
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
                format!("{other:?} is not one of secret, key, cert (the value is case-sensitive)"),
            ));
        }
    };

    let format_text = get("objectFormat")?;
    let format = match format_text.to_ascii_lowercase().as_str() {
        "" | "pem" => ObjectFormat::Pem,
        "pfx" => ObjectFormat::Pfx,
        _ => {
            return Err(invalid(
                format!("{field}.objectFormat"),
                format!("{format_text:?} is not one of pem, pfx"),
            ));
        }
    };
    if format == ObjectFormat::Pfx && object_type != ObjectType::Secret {
        return Err(invalid(
            format!("{field}.objectFormat"),
            "pfx is only supported for objectType: secret",
        ));
    }

    let encoding_text = get("objectEncoding")?;
    let encoding = match encoding_text.to_ascii_lowercase().as_str() {
        "" | "utf-8" => ObjectEncoding::Utf8,
        "base64" => ObjectEncoding::Base64,
        "hex" => ObjectEncoding::Hex,
        _ => {
            return Err(invalid(
                format!("{field}.objectEncoding"),
                format!("{encoding_text:?} is not one of utf-8, base64, hex"),
            ));
        }
    };
    if !encoding_text.is_empty() && object_type != ObjectType::Secret {
        return Err(invalid(
            format!("{field}.objectEncoding"),
            "is only supported for objectType: secret",
        ));
    }

    let history_text = get("objectVersionHistory")?;
    let version_history = if history_text.is_empty() {
        0
    } else {
        history_text
            .parse::<i32>()
            .map_err(|_| {
                invalid(
                    format!("{field}.objectVersionHistory"),
                    format!("{history_text:?} is not a whole number"),
                )
            })?
            .max(0)
            .unsigned_abs()
    };

    let perm_text = get("filePermission")?;
    let file_permission = if perm_text.is_empty() {
        None
    } else {
        match u32::from_str_radix(&perm_text, 8) {
            Ok(mode) if mode <= 0o777 => Some(mode),
            _ => {
                return Err(invalid(
                    format!("{field}.filePermission"),
                    format!("{perm_text:?} is not an octal permission between 0000 and 0777"),
                ));
            }
        }
    };

    Ok(KeyVaultObject {
        name,
        file,
        object_type,
        version: get("objectVersion")?,
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

pub(crate) fn yaml_message(e: &serde_saphyr::Error) -> String {
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
            "objectName: s1\nobjectType: secret\nobjectVersion: abc\nobjectEncoding: BASE64\nfilePermission: \"0440\"",
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
        assert_eq!(o[0].version, "abc");
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
                objects(&["objectName: ../etc/passwd\nobjectType: secret"]),
                "objects[0].objectName: file name must not contain '..'",
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
