//! The `objects` parameter: an `array:` of YAML strings, each describing one Key Vault object,
//! parsed and fully validated before any network call.
//!
//! A class author controls all of it, so parsing is bounded — [`MAX_OBJECTS_BYTES`] before
//! parsing starts, [`MAX_OBJECTS_DEPTH`] and a node budget while it runs — and every object name
//! and version must follow Key Vault's syntax ([`is_object_name`], [`is_object_version`]), so
//! nothing a class says can change which URL is requested.
//!
//! A class's `objects` text comes back on every mount, republish and rotation of its volumes,
//! and parsing it is most of a warm mount's local work, so accepted texts are remembered
//! ([`PARSED_IDLE`], [`MAX_PARSED`], texts of at most [`MAX_PARSED_TEXT_BYTES`]).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use keyvol_core::RelPath;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::cache::IdleCache;
use crate::error::AzureError;

/// An accepted `objects` text not parsed again for this long is forgotten.
pub const PARSED_IDLE: Duration = Duration::from_secs(600);
/// Most accepted `objects` texts remembered (one per class in use, in practice).
pub const MAX_PARSED: usize = 256;
/// Only texts up to this size are remembered, so the memory they hold stays bounded (a class
/// with dozens of objects is a few KiB).
pub const MAX_PARSED_TEXT_BYTES: usize = 16 * 1024;

/// Accepted `objects` texts and what they parsed to.
static PARSED: LazyLock<IdleCache<String, Arc<ParsedObjects>>> =
    LazyLock::new(|| IdleCache::new(PARSED_IDLE, MAX_PARSED));

/// Forgets the parsed `objects` texts no mount has used for [`PARSED_IDLE`]; returns how many.
pub fn evict_idle() -> usize {
    PARSED.sweep_now()
}

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
    /// keyvol's own keys (docs/beyond-upstream.md); all empty for an upstream class.
    pub extensions: ObjectExtensions,
}

/// What an object says beyond upstream's keys (docs/beyond-upstream.md). Empty (the default)
/// for every object of an upstream class, which then behaves exactly as upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectExtensions {
    /// `objectName` holds `*` or `?`: it selects every enabled object of its `objectType` whose
    /// name matches ([`glob_match`]), each at its newest version, in a file named after it.
    pub wildcard: bool,
    /// `jmesPath`: files holding what JMESPath expressions find in the secret's JSON value.
    pub jmes_path: Vec<JmesPathFile>,
    /// The object's own `keyvaultName`: the vault it is fetched from instead of the class's
    /// (with the class's identity).
    pub vault: Option<String>,
    /// The object's own `tenantId` (or `tenantID`), for a vault in another tenant; only with
    /// its own `keyvaultName`.
    pub tenant: Option<String>,
}

/// One `jmesPath` entry: an expression over the object's JSON value and the file its result
/// goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JmesPathFile {
    /// Where the entry is in the class, for messages: `objects[0].jmesPath[1]`.
    pub field: String,
    /// The JMESPath expression (checked with [`crate::jmes::check`]).
    pub path: String,
    /// The entry's `objectAlias`.
    pub file: RelPath,
}

impl KeyVaultObject {
    /// True when `objectName` is a pattern selecting objects, not a name.
    pub fn is_wildcard(&self) -> bool {
        self.extensions.wildcard
    }
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

/// A wildcard `objectName`: 1 to 127 of Key Vault's name characters, `*` (any run of them)
/// and `?` (any one), with at least one `*` or `?`.
pub fn is_object_pattern(pattern: &str) -> bool {
    (1..=MAX_OBJECT_NAME).contains(&pattern.len())
        && pattern
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'*' | b'?'))
        && pattern.contains(['*', '?'])
}

/// Whether `name` matches the glob `pattern` (`*` any run of characters, `?` any one),
/// ignoring ASCII case as Key Vault does for names. Linear backtracking: at most
/// `pattern.len() * name.len()` steps.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and where in `name` its match currently ends.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            // Let the last `*` take one more character and try again from there.
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// A vault name as Key Vault allows it (and upstream checks the class's): 3 to 24 of
/// `0-9`, `a-z`, `A-Z` and `-`.
pub fn is_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A tenant as an object may name it: a GUID or a domain (`contoso.onmicrosoft.com`), 1 to 64
/// of `0-9`, `a-z`, `A-Z`, `-` and `.` — nothing that could change the token endpoint's path.
pub fn is_tenant(tenant: &str) -> bool {
    (1..=64).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !tenant.starts_with('.')
        && !tenant.contains("..")
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

/// The object key holding `jmesPath` entries (the AWS provider's name for the same idea).
const JMES_PATH_KEY: &str = "jmesPath";
/// Most `jmesPath` entries on one object.
pub const MAX_JMES_PATHS: usize = 64;

/// Object keys the upstream provider knows, and keyvol's own (docs/beyond-upstream.md).
const KNOWN_KEYS: [&str; 12] = [
    "objectName",
    "objectAlias",
    "objectType",
    "objectVersion",
    "objectVersionHistory",
    "objectFormat",
    "objectEncoding",
    "filePermission",
    JMES_PATH_KEY,
    "keyvaultName",
    "tenantId",
    "tenantID",
];

/// Parsed objects plus advice about keys that look misspelled.
#[derive(Debug, Default, Clone)]
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

/// Parses the `objects` parameter (a text accepted before is not parsed again).
pub fn parse_objects(text: &str) -> Result<ParsedObjects, AzureError> {
    if text.len() > MAX_PARSED_TEXT_BYTES {
        return parse_objects_now(text);
    }
    let key = text.to_owned();
    if let Some(parsed) = PARSED.get(&key) {
        return Ok(ParsedObjects::clone(&parsed));
    }
    // Parsed outside the cache's lock: other mounts' lookups do not wait on it.
    let parsed = parse_objects_now(text)?;
    PARSED.insert(key, Arc::new(parsed.clone()));
    Ok(parsed)
}

/// Parses the `objects` parameter.
fn parse_objects_now(text: &str) -> Result<ParsedObjects, AzureError> {
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
    // Who writes each file, for messages: `objects[0]` or `objects[0].jmesPath[1]`.
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("objects[{i}]");
        let Value::String(item_text) = item else {
            return Err(invalid(
                field,
                "must be a YAML string (use `- |` and indent the object)",
            ));
        };
        let raw = parse_item(&field, item_text)?;
        let object = parse_one(&field, &raw, &mut parsed.warnings)?;
        // A wildcard's files are known once the vault is listed (checked then).
        if !object.is_wildcard()
            && let Some((other, _)) =
                files.insert(object.file.to_string(), (i, object.version_history))
        {
            return Err(invalid(
                &field,
                format!(
                    "file name {} is also used by {}; give one of them an objectAlias",
                    shown(object.file.as_str()),
                    owners
                        .get(object.file.as_str())
                        .cloned()
                        .unwrap_or_else(|| format!("objects[{other}]"))
                ),
            ));
        }
        owners.insert(object.file.to_string(), field.clone());
        for extracted in &object.extensions.jmes_path {
            let name = extracted.file.to_string();
            if files.insert(name.clone(), (i, 0)).is_some() {
                return Err(invalid(
                    format!("{}.objectAlias", extracted.field),
                    format!(
                        "file name {} is also used by {}",
                        shown(&name),
                        owners.get(&name).map_or("another entry", String::as_str)
                    ),
                ));
            }
            owners.insert(name, extracted.field.clone());
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
pub(crate) fn check_directories(files: &BTreeMap<String, (usize, u32)>) -> Result<(), AzureError> {
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

/// One item: its scalar keys with their values read as the text the class wrote (as
/// upstream's string fields read them: a version of 32 decimal digits stays itself, not a
/// number), and the entries of `jmesPath`, the one key whose value is a list.
#[derive(Debug, Default)]
struct RawItem {
    scalars: BTreeMap<String, Option<String>>,
    jmes_path: Option<Vec<BTreeMap<String, Option<String>>>>,
}

impl<'de> Deserialize<'de> for RawItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = RawItem;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of object keys")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawItem, A::Error> {
                let mut item = RawItem::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == JMES_PATH_KEY {
                        item.jmes_path = map.next_value()?;
                    } else {
                        let value: Option<String> = map.next_value()?;
                        item.scalars.insert(key, value);
                    }
                }
                Ok(item)
            }
        }
        deserializer.deserialize_map(ItemVisitor)
    }
}

/// One item's keys and values ([`RawItem`]).
fn parse_item(field: &str, text: &str) -> Result<RawItem, AzureError> {
    serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        // Name the key whose value has the wrong shape, if that is what failed.
        let structured: Option<BTreeMap<String, Value>> =
            serde_saphyr::from_str_with_options(text, yaml_options()).ok();
        let Some(map) = structured else {
            return invalid(field, yaml_message(&e));
        };
        if let Some((key, _)) = map.iter().find(|(k, v)| {
            k.as_str() != JMES_PATH_KEY && matches!(v, Value::Array(_) | Value::Object(_))
        }) {
            return invalid(format!("{field}.{}", key_shown(key)), "must be a scalar");
        }
        if map.contains_key(JMES_PATH_KEY) {
            return invalid(
                format!("{field}.{JMES_PATH_KEY}"),
                "must be a list of mappings with the scalar keys path and objectAlias",
            );
        }
        invalid(field, yaml_message(&e))
    })
}

/// The `jmesPath` entries of object `field`, checked: each a valid expression ([`crate::jmes`])
/// and a valid file name, with no other key.
fn parse_jmes_paths(
    field: &str,
    entries: &[BTreeMap<String, Option<String>>],
) -> Result<Vec<JmesPathFile>, AzureError> {
    if entries.len() > MAX_JMES_PATHS {
        return Err(invalid(
            format!("{field}.{JMES_PATH_KEY}"),
            format!(
                "has {} entries, more than the {MAX_JMES_PATHS} keyvol accepts",
                entries.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (j, entry) in entries.iter().enumerate() {
        let at = format!("{field}.{JMES_PATH_KEY}[{j}]");
        if let Some(key) = entry
            .keys()
            .find(|k| !matches!(k.as_str(), "path" | "objectAlias"))
        {
            return Err(invalid(
                format!("{at}.{}", key_shown(key)),
                "unknown key (an entry takes path and objectAlias)",
            ));
        }
        let get = |key: &str| {
            entry
                .get(key)
                .and_then(Option::as_deref)
                .unwrap_or("")
                .trim()
        };
        let path = get("path");
        crate::jmes::check(path).map_err(|e| invalid(format!("{at}.path"), e.to_string()))?;
        let alias = get("objectAlias");
        if alias.is_empty() {
            return Err(invalid(
                format!("{at}.objectAlias"),
                "is required: the file the result is written to",
            ));
        }
        let file =
            RelPath::new(alias).map_err(|e| invalid(format!("{at}.objectAlias"), e.to_string()))?;
        out.push(JmesPathFile {
            field: at,
            path: path.to_owned(),
            file,
        });
    }
    Ok(out)
}

fn parse_one(
    field: &str,
    raw: &RawItem,
    warnings: &mut Vec<String>,
) -> Result<KeyVaultObject, AzureError> {
    let map = &raw.scalars;
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
    let wildcard = name.contains(['*', '?']);
    if wildcard {
        if !is_object_pattern(&name) {
            return Err(invalid(
                format!("{field}.objectName"),
                format!(
                    "{} is not a Key Vault object name pattern (1 to {MAX_OBJECT_NAME} of 0-9, a-z, A-Z, -, and the wildcards * and ?)",
                    shown(&name)
                ),
            ));
        }
        for key in ["objectAlias", "objectVersion", "objectVersionHistory"] {
            if !get(key).is_empty() {
                return Err(invalid(
                    format!("{field}.{key}"),
                    "is not allowed with a wildcard objectName: each selected object is mounted at its newest version, in a file named after it",
                ));
            }
        }
    } else if !is_object_name(&name) {
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

    let jmes_path = match &raw.jmes_path {
        None => Vec::new(),
        Some(entries) => {
            let key = format!("{field}.{JMES_PATH_KEY}");
            if object_type != ObjectType::Secret {
                return Err(invalid(key, "is only supported for objectType: secret"));
            }
            if wildcard {
                return Err(invalid(
                    key,
                    "is not allowed with a wildcard objectName (the files of several objects would share the aliases)",
                ));
            }
            if format == ObjectFormat::Pfx {
                return Err(invalid(
                    key,
                    "is not supported with objectFormat: pfx (the value is not JSON)",
                ));
            }
            if version_history > 1 {
                return Err(invalid(
                    key,
                    "is not supported with objectVersionHistory above 1",
                ));
            }
            parse_jmes_paths(field, entries)?
        }
    };

    let vault_text = get("keyvaultName");
    let vault = if vault_text.is_empty() {
        None
    } else if is_vault_name(&vault_text) {
        Some(vault_text)
    } else {
        return Err(invalid(
            format!("{field}.keyvaultName"),
            format!(
                "{} is not a vault name (3 to 24 of 0-9, a-z, A-Z and -)",
                shown(&vault_text)
            ),
        ));
    };
    // `tenantID` wins over `tenantId`, as for the class.
    let (tenant_key, tenant_text) = match get("tenantID") {
        t if t.is_empty() => ("tenantId", get("tenantId")),
        t => ("tenantID", t),
    };
    let tenant = if tenant_text.is_empty() {
        None
    } else if vault.is_none() {
        return Err(invalid(
            format!("{field}.{tenant_key}"),
            "is only allowed with the object's own keyvaultName (the tenant of that vault)",
        ));
    } else if is_tenant(&tenant_text) {
        Some(tenant_text)
    } else {
        return Err(invalid(
            format!("{field}.{tenant_key}"),
            format!(
                "{} is not a tenant (a GUID or a domain: 1 to 64 of 0-9, a-z, A-Z, - and .)",
                shown(&tenant_text)
            ),
        ));
    };

    Ok(KeyVaultObject {
        name,
        file,
        object_type,
        version,
        version_history,
        format,
        encoding,
        file_permission,
        extensions: ObjectExtensions {
            wildcard,
            jmes_path,
            vault,
            tenant,
        },
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

    #[test]
    fn a_remembered_text_gives_what_parsing_gives_and_refusals_are_not_remembered() {
        let text = "array:\n  - |\n    objectName: remembered\n    objectType: secret\n    objectname: x\n";
        let fresh = parse_objects_now(text).expect("valid");
        for _ in 0..2 {
            let again = parse_objects(text).expect("valid");
            assert_eq!(again.objects, fresh.objects);
            assert_eq!(again.warnings, fresh.warnings);
        }
        assert!(PARSED.get(&text.to_owned()).is_some());
        let bad = "array:\n  - |\n    objectName: bad name\n    objectType: secret\n";
        for _ in 0..2 {
            assert!(parse_objects(bad).is_err());
        }
        assert!(PARSED.get(&bad.to_owned()).is_none());
    }

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
    fn globs_match_whole_names_ignoring_case() {
        for (pattern, name, want) in [
            ("*", "anything", true),
            ("db-*", "db-", true),
            ("db-*", "DB-password", true),
            ("db-*", "db", false),
            ("db-*", "xdb-a", false),
            ("*-key", "api-key", true),
            ("*-key", "api-keys", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-b-b-d", false),
            ("**", "", true),
            ("?", "", false),
        ] {
            assert_eq!(glob_match(pattern, name), want, "{pattern} ~ {name}");
        }
        // Backtracking stays linear in practice: a hostile pattern against a long name.
        let started = std::time::Instant::now();
        assert!(!glob_match(
            &"*a".repeat(60),
            &format!("{}b", "a".repeat(126))
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn wildcard_entries_are_checked_and_refuse_what_a_selection_cannot_have() {
        let parsed = parse_objects(&objects(&[
            "objectName: db-*\nobjectType: secret\nfilePermission: \"0400\"\nobjectEncoding: base64",
            "objectName: \"*\"\nobjectType: cert",
            "objectName: \"a?\"\nobjectType: key",
            "objectName: db-1\nobjectType: secret\nobjectAlias: db-x",
        ]))
        .expect("parses");
        let wild: Vec<bool> = parsed
            .objects
            .iter()
            .map(KeyVaultObject::is_wildcard)
            .collect();
        assert_eq!(wild, [true, true, true, false]);
        assert_eq!(parsed.objects[0].file_permission, Some(0o400));
        // Two wildcards (and a wildcard and a name) do not clash at parse time: their files
        // are known once the vault is listed.
        parse_objects(&objects(&[
            "objectName: db-*\nobjectType: secret",
            "objectName: db-*\nobjectType: key",
            "objectName: \"*\"\nobjectType: secret\nobjectAlias: \"\"",
        ]))
        .expect("checked after listing");
        let cases = [
            (
                "objectName: db-*\nobjectType: secret\nobjectAlias: x",
                "objects[0].objectAlias: is not allowed with a wildcard objectName: each selected object is mounted at its newest version, in a file named after it",
            ),
            (
                "objectName: db-*\nobjectType: secret\nobjectVersion: 0123456789abcdef0123456789abcdef",
                "objects[0].objectVersion: is not allowed with a wildcard objectName",
            ),
            (
                "objectName: db-*\nobjectType: secret\nobjectVersion: latest",
                "objects[0].objectVersion: is not allowed with a wildcard objectName",
            ),
            (
                "objectName: db-*\nobjectType: secret\nobjectVersionHistory: 2",
                "objects[0].objectVersionHistory: is not allowed with a wildcard objectName",
            ),
            (
                "objectName: db_*\nobjectType: secret",
                "objects[0].objectName: \"db_*\" is not a Key Vault object name pattern (1 to 127 of 0-9, a-z, A-Z, -, and the wildcards * and ?)",
            ),
            (
                "objectName: \"../*\"\nobjectType: secret",
                "objects[0].objectName: \"../*\" is not a Key Vault object name pattern",
            ),
            (
                "objectName: \"[ab]*\"\nobjectType: secret",
                "objects[0].objectName: \"[ab]*\" is not a Key Vault object name pattern",
            ),
            (
                "objectName: db-*\nobjectType: secrets",
                "objects[0].objectType: \"secrets\" is not one of secret, key, cert",
            ),
            (
                "objectName: db-*\nobjectType: key\nobjectEncoding: hex",
                "objects[0].objectEncoding: is only supported for objectType: secret",
            ),
        ];
        for (item, want) in cases {
            let err = parse_objects(&objects(&[item]))
                .expect_err(item)
                .to_string();
            assert!(err.starts_with(want), "{item}: {err}");
        }
        let long = format!("objectName: {}*\nobjectType: secret", "a".repeat(127));
        assert!(
            parse_objects(&objects(&[&long])).is_err(),
            "127 characters at most"
        );
    }

    #[test]
    fn jmes_path_entries_are_parsed_and_checked_before_any_request() {
        let parsed = parse_objects(&objects(&[
            "objectName: db\nobjectType: secret\nobjectVersion: 00000000000000000000000000000002\njmesPath:\n  - path: username\n    objectAlias: creds/user\n  - path: \"{h: host, p: port}\"\n    objectAlias: endpoint.json",
            "objectName: plain\nobjectType: secret\njmesPath: []",
        ]))
        .expect("parses");
        let db = &parsed.objects[0];
        assert_eq!(
            db.version, "00000000000000000000000000000002",
            "scalars stay text"
        );
        let entries: Vec<(&str, &str, &str)> = db
            .extensions
            .jmes_path
            .iter()
            .map(|e| (e.field.as_str(), e.path.as_str(), e.file.as_str()))
            .collect();
        assert_eq!(
            entries,
            [
                ("objects[0].jmesPath[0]", "username", "creds/user"),
                (
                    "objects[0].jmesPath[1]",
                    "{h: host, p: port}",
                    "endpoint.json"
                ),
            ]
        );
        assert!(parsed.objects[1].extensions.jmes_path.is_empty());
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);

        let entry = |path: &str, alias: &str| format!("  - path: {path}\n    objectAlias: {alias}");
        let item = |extra: &str, entries: &[String]| {
            format!(
                "objectName: db\nobjectType: secret\n{extra}jmesPath:\n{}",
                entries.join("\n")
            )
        };
        let cases = [
            (
                vec![item("", &[entry("a", "x"), entry("b", "x")])],
                "objects[0].jmesPath[1].objectAlias: file name \"x\" is also used by objects[0].jmesPath[0]",
            ),
            (
                vec![item("", &[entry("a", "db")])],
                "objects[0].jmesPath[0].objectAlias: file name \"db\" is also used by objects[0]",
            ),
            (
                vec![item("", &[entry("a", "y")]), "objectName: y\nobjectType: secret".into()],
                "objects[1]: file name \"y\" is also used by objects[0].jmesPath[0]; give one of them an objectAlias",
            ),
            (
                vec![item("", &[entry("a", "../etc/passwd")])],
                "objects[0].jmesPath[0].objectAlias: file name must not contain '..'",
            ),
            (
                vec![item("", &[entry("a", "/abs")])],
                "objects[0].jmesPath[0].objectAlias: file name must be a relative path",
            ),
            (
                vec![item("", &[entry("a", "..data")])],
                "objects[0].jmesPath[0].objectAlias: file name must not start with '..'",
            ),
            (
                vec![item("", &["  - path: a".into()])],
                "objects[0].jmesPath[0].objectAlias: is required: the file the result is written to",
            ),
            (
                vec![item("", &["  - objectAlias: a".into()])],
                "objects[0].jmesPath[0].path: is empty",
            ),
            (
                vec![item("", &[entry("\"a..b\"", "x")])],
                "objects[0].jmesPath[0].path: is not a JMESPath expression: Parse error: ",
            ),
            (
                vec![item("", &[entry("\"nope(a)\"", "x")])],
                "objects[0].jmesPath[0].path: calls nope(), which is not a JMESPath function",
            ),
            (
                vec![item("", &["  - path: a\n    objectAlias: x\n    alias: y".into()])],
                "objects[0].jmesPath[0].alias: unknown key (an entry takes path and objectAlias)",
            ),
            (
                vec!["objectName: db\nobjectType: secret\njmesPath: username".into()],
                "objects[0].jmesPath: must be a list of mappings with the scalar keys path and objectAlias",
            ),
            (
                vec!["objectName: db\nobjectType: secret\njmesPath:\n  - a\n  - b".into()],
                "objects[0].jmesPath: must be a list of mappings",
            ),
            (
                vec![item("", &["  - path: [a]\n    objectAlias: x".into()])],
                "objects[0].jmesPath: must be a list of mappings",
            ),
            (
                vec!["objectName: db\nobjectType: key\njmesPath:\n  - path: a\n    objectAlias: x".into()],
                "objects[0].jmesPath: is only supported for objectType: secret",
            ),
            (
                vec!["objectName: db-*\nobjectType: secret\njmesPath:\n  - path: a\n    objectAlias: x".into()],
                "objects[0].jmesPath: is not allowed with a wildcard objectName",
            ),
            (
                vec![item("objectFormat: pfx\n", &[entry("a", "x")])],
                "objects[0].jmesPath: is not supported with objectFormat: pfx",
            ),
            (
                vec![item("objectVersionHistory: 2\n", &[entry("a", "x")])],
                "objects[0].jmesPath: is not supported with objectVersionHistory above 1",
            ),
            (
                vec![item("", &(0..65).map(|n| entry("a", &format!("f{n}"))).collect::<Vec<_>>())],
                "objects[0].jmesPath: has 65 entries, more than the 64 keyvol accepts",
            ),
            (
                vec![item("", &[entry("a", "x/y")]), "objectName: x\nobjectType: secret".into()],
                "objects[0]: file name \"x/y\" would need \"x\" (objects[1]) to be a directory",
            ),
        ];
        for (items, want) in cases {
            let items: Vec<&str> = items.iter().map(String::as_str).collect();
            let err = parse_objects(&objects(&items)).expect_err(want).to_string();
            assert!(err.starts_with(want), "want {want}\n got {err}");
        }
        // The path is shown as written, never a value: there is none yet.
        let long = "a.".repeat(200) + "a";
        let err = parse_objects(&objects(&[&item("", &[entry(&long, "x")])]))
            .expect_err("long")
            .to_string();
        assert!(err.contains("longer than the 256 bytes"), "{err}");
    }

    #[test]
    fn an_objects_own_vault_and_tenant_are_checked() {
        let parsed = parse_objects(&objects(&[
            "objectName: a\nobjectType: secret\nkeyvaultName: kv-2",
            "objectName: b\nobjectType: secret\nkeyvaultName: kv-3\ntenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47",
            "objectName: c\nobjectType: secret\nkeyvaultName: kv-4\ntenantId: t-old\ntenantID: contoso.onmicrosoft.com",
            "objectName: d\nobjectType: secret",
        ]))
        .expect("parses");
        let got: Vec<(Option<&str>, Option<&str>)> = parsed
            .objects
            .iter()
            .map(|o| {
                (
                    o.extensions.vault.as_deref(),
                    o.extensions.tenant.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Some("kv-2"), None),
                (Some("kv-3"), Some("72f988bf-86f1-41af-91ab-2d7cd011db47")),
                (Some("kv-4"), Some("contoso.onmicrosoft.com")),
                (None, None)
            ]
        );
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        let cases = [
            (
                "keyvaultName: a_b",
                "objects[0].keyvaultName: \"a_b\" is not a vault name (3 to 24 of 0-9, a-z, A-Z and -)",
            ),
            (
                "keyvaultName: kv",
                "objects[0].keyvaultName: \"kv\" is not a vault name",
            ),
            (
                "keyvaultName: evil.example.com/x",
                "objects[0].keyvaultName: \"evil.example.com/x\" is not a vault name",
            ),
            (
                "keyvaultName: a-very-long-vault-name-xyz",
                "objects[0].keyvaultName: \"a-very-long-vault-name-xyz\" is not a vault name",
            ),
            (
                "tenantId: t-2",
                "objects[0].tenantId: is only allowed with the object's own keyvaultName",
            ),
            (
                "keyvaultName: kv-2\ntenantId: ../../x",
                "objects[0].tenantId: \"../../x\" is not a tenant (a GUID or a domain: 1 to 64 of 0-9, a-z, A-Z, - and .)",
            ),
            (
                "keyvaultName: kv-2\ntenantID: \"t/oauth2\"",
                "objects[0].tenantID: \"t/oauth2\" is not a tenant",
            ),
            (
                "keyvaultName: [kv-2]",
                "objects[0].keyvaultName: must be a scalar",
            ),
        ];
        for (extra, want) in cases {
            let err = parse_objects(&objects(&[&format!(
                "objectName: a\nobjectType: secret\n{extra}"
            )]))
            .expect_err(extra)
            .to_string();
            assert!(err.starts_with(want), "{extra}: {err}");
        }
        // Two vaults' objects still write distinct files.
        let err = parse_objects(&objects(&[
            "objectName: db\nobjectType: secret",
            "objectName: db\nobjectType: secret\nkeyvaultName: kv-2",
        ]))
        .expect_err("same file")
        .to_string();
        assert_eq!(
            err,
            "objects[1]: file name \"db\" is also used by objects[0]; give one of them an objectAlias"
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
