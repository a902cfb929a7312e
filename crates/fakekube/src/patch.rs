//! PATCH bodies: which kind a `Content-Type` names and how each is applied to a stored object.
//!
//! - `application/merge-patch+json`: RFC 7386 JSON merge patch.
//! - `application/strategic-merge-patch+json`: **treated as a JSON merge patch.** Real
//!   strategic merge merges some lists by key (containers by `name`, finalizers as a set, ...)
//!   and understands `$patch` directives; here every list in the patch replaces the stored one.
//! - `application/json-patch+json`: RFC 6902 JSON patch (all six operations).
//! - `application/apply-patch+yaml`: server-side apply, simplified to create-or-merge: the
//!   applied configuration (YAML or JSON) creates the object if it does not exist and is
//!   otherwise merged into it like a merge patch. `fieldManager` is required, `force` is
//!   accepted; field ownership (`managedFields`) and apply conflicts are not modelled.

use serde_json::Value;

use crate::status::ApiError;

/// The patch flavours the API server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// RFC 7386 merge patch.
    Merge,
    /// Strategic merge patch, applied as a merge patch (see the module docs).
    StrategicMerge,
    /// RFC 6902 JSON patch.
    Json,
    /// Server-side apply (create-or-merge).
    Apply,
}

impl PatchKind {
    /// The kind a `Content-Type` header names (parameters such as `charset` are ignored).
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::StrategicMerge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(Self::Apply),
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }
}

/// Parses a patch body: JSON for the JSON kinds, YAML (of which JSON is a subset) for apply.
pub fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Apply => serde_json::from_slice(body).or_else(|_| {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("apply patch is not UTF-8"))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML apply patch: {e}")))
        }),
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}"))),
    }
}

/// Applies an RFC 7386 merge patch to `target` in place.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge(target.entry(key.as_str()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch to a copy of `target`. A patch that does not apply (a failed
/// `test`, a missing path) is a 422, as upstream.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let patch: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
    let mut doc = target.clone();
    json_patch::patch(&mut doc, &patch).map_err(|e| {
        ApiError::with_code(
            422,
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge(
            &mut doc,
            &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"x": 1}}),
        );
        assert_eq!(
            doc,
            json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"x": 1}})
        );
    }

    #[test]
    fn json_patch_applies_and_reports_failures_as_invalid() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}});
        let patched = json_patch(
            &doc,
            &json!([
                {"op": "test", "path": "/metadata/labels/a", "value": "1"},
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/a"},
            ]),
        )
        .unwrap();
        assert_eq!(patched, json!({"metadata": {"labels": {"b": "2"}}}));
        let err = json_patch(
            &doc,
            &json!([{"op": "test", "path": "/metadata/labels/a", "value": "9"}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn content_types_select_the_patch_kind() {
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8").unwrap(),
            PatchKind::Merge
        );
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml").unwrap(),
            PatchKind::Apply
        );
        assert_eq!(
            PatchKind::from_content_type("text/plain").unwrap_err().code,
            415
        );
    }

    #[test]
    fn apply_bodies_may_be_yaml() {
        let body = b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  k: v\n";
        let value = parse_body(PatchKind::Apply, body).unwrap();
        assert_eq!(value["metadata"]["name"], "s");
        assert_eq!(value["stringData"]["k"], "v");
    }
}
