//! Label and field selectors: parsing the `labelSelector` / `fieldSelector` query strings with
//! the API server's grammar and matching objects against them.
//!
//! Labels: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, `a>1`, `a<1`,
//! comma-separated (all must hold). `!=` and `notin` also match objects without the label, as
//! upstream. Fields: `path=value`, `path==value`, `path!=value`, comma-separated, where the
//! path must be one the resource supports (see [`crate::resources::ResourceDef::field_labels`]);
//! a missing field compares as the empty string.

use serde_json::Value;

use crate::meta;
use crate::status::ApiError;

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

impl LabelSelector {
    /// Parses a `labelSelector` query value.
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for term in split_top_level(input) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_label_term(term)?);
        }
        Ok(Self { requirements })
    }

    /// Whether the object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels: Vec<(&str, &str)> = meta::labels(object).collect();
        let get = |key: &str| labels.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        self.requirements.iter().all(|req| match req {
            LabelRequirement::Equals(k, v) => get(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelRequirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelRequirement::Exists(k) => get(k).is_some(),
            LabelRequirement::DoesNotExist(k) => get(k).is_none(),
            LabelRequirement::GreaterThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelRequirement::LessThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn invalid_selector(term: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: {why} in label selector term {term:?}"
    ))
}

fn check_key(key: &str, term: &str) -> Result<String, ApiError> {
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(invalid_selector(term, "invalid label key"))
    }
}

fn check_value(value: &str, term: &str) -> Result<String, ApiError> {
    let valid = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(invalid_selector(term, "invalid label value"))
    }
}

fn parse_label_term(term: &str) -> Result<LabelRequirement, ApiError> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelRequirement::DoesNotExist(check_key(key.trim(), term)?));
    }
    // Set-based: `key in (a,b)` / `key notin (a,b)`.
    let words: Vec<&str> = term.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words.as_slice() {
        let rest = rest.trim_start();
        let (negated, list) = if let Some(list) = rest.strip_prefix("notin") {
            (true, list)
        } else if let Some(list) = rest.strip_prefix("in") {
            (false, list)
        } else {
            (false, "")
        };
        let list = list.trim();
        if let Some(inner) = list.strip_prefix('(').and_then(|l| l.strip_suffix(')')) {
            let key = check_key(key, term)?;
            let values = inner
                .split(',')
                .map(|v| check_value(v.trim(), term))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if negated {
                LabelRequirement::NotIn(key, values)
            } else {
                LabelRequirement::In(key, values)
            });
        }
    }
    for (op, build) in [
        (
            "!=",
            LabelRequirement::NotEquals as fn(String, String) -> LabelRequirement,
        ),
        ("==", LabelRequirement::Equals),
        ("=", LabelRequirement::Equals),
    ] {
        if let Some((key, value)) = term.split_once(op) {
            return Ok(build(
                check_key(key.trim(), term)?,
                check_value(value.trim(), term)?,
            ));
        }
    }
    for (op, greater) in [(">", true), ("<", false)] {
        if let Some((key, value)) = term.split_once(op) {
            let key = check_key(key.trim(), term)?;
            let n = value.trim().parse::<i64>().map_err(|_| {
                invalid_selector(
                    term,
                    "for 'Gt', 'Lt' operators, the value must be an integer",
                )
            })?;
            return Ok(if greater {
                LabelRequirement::GreaterThan(key, n)
            } else {
                LabelRequirement::LessThan(key, n)
            });
        }
    }
    Ok(LabelRequirement::Exists(check_key(term, term)?))
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    /// JSON path (dot-separated) the label maps to for this resource.
    path: String,
    value: String,
    negated: bool,
}

impl FieldSelector {
    /// Parses a `fieldSelector` query value. `supported` maps each field label the resource
    /// accepts to the JSON path it reads; any other label is a 400, as upstream.
    pub fn parse(input: &str, supported: &[(&str, &str)]) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for term in input.split(',') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (label, value, negated) = if let Some((l, v)) = term.split_once("!=") {
                (l, v, true)
            } else if let Some((l, v)) = term.split_once("==") {
                (l, v, false)
            } else if let Some((l, v)) = term.split_once('=') {
                (l, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: {term:?}: expected a comparison"
                )));
            };
            let label = label.trim();
            let path = supported
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, p)| *p)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("field label not supported: {label}"))
                })?;
            requirements.push(FieldRequirement {
                path: path.to_owned(),
                value: value.trim().to_owned(),
                negated,
            });
        }
        Ok(Self { requirements })
    }

    /// Whether the object satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|req| {
            let actual = field_value(object, &req.path);
            (actual == req.value) != req.negated
        })
    }
}

/// The value at a dot-separated path as the string a field selector compares with.
fn field_value(object: &Value, path: &str) -> String {
    let mut current = object;
    for part in path.split('.') {
        match current.get(part) {
            Some(next) => current = next,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Label and field selector together, as a list or watch request carries them.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    /// The label selector.
    pub labels: LabelSelector,
    /// The field selector.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether the object matches both.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": labels},
            "spec": {"nodeName": "node-1"},
        })
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    #[test]
    fn equality_and_inequality_labels() {
        let p = pod(json!({"app": "web", "tier": "front"}));
        assert!(sel("app=web").matches(&p));
        assert!(sel("app==web,tier=front").matches(&p));
        assert!(!sel("app=db").matches(&p));
        assert!(sel("app!=db").matches(&p));
        assert!(!sel("app!=web").matches(&p));
        // `!=` matches objects without the label at all.
        assert!(sel("missing!=x").matches(&p));
    }

    #[test]
    fn existence_labels() {
        let p = pod(json!({"app": "web"}));
        assert!(sel("app").matches(&p));
        assert!(!sel("!app").matches(&p));
        assert!(sel("!other").matches(&p));
        assert!(!sel("other").matches(&p));
    }

    #[test]
    fn set_based_labels() {
        let p = pod(json!({"env": "prod"}));
        assert!(sel("env in (dev, prod)").matches(&p));
        assert!(!sel("env in (dev,qa)").matches(&p));
        assert!(sel("env notin (dev,qa)").matches(&p));
        assert!(!sel("env notin (prod)").matches(&p));
        assert!(sel("other notin (prod)").matches(&p));
        assert!(sel("env in (prod),!other").matches(&p));
    }

    #[test]
    fn numeric_comparison_labels() {
        let p = pod(json!({"rank": "5"}));
        assert!(sel("rank>4").matches(&p));
        assert!(!sel("rank<5").matches(&p));
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(sel("").matches(&pod(json!({}))));
    }

    #[test]
    fn malformed_label_selectors_are_bad_requests() {
        for bad in ["a=b=c!", "a in (x", "=x", "a>b", "a b"] {
            let err = LabelSelector::parse(bad).unwrap_err();
            assert_eq!(err.code, 400, "{bad}");
        }
    }

    const POD_FIELDS: &[(&str, &str)] = &[
        ("metadata.name", "metadata.name"),
        ("metadata.namespace", "metadata.namespace"),
        ("spec.nodeName", "spec.nodeName"),
    ];

    #[test]
    fn field_selectors_compare_supported_fields() {
        let p = pod(json!({}));
        let f = |s| FieldSelector::parse(s, POD_FIELDS).unwrap();
        assert!(f("spec.nodeName=node-1").matches(&p));
        assert!(f("metadata.name=p,metadata.namespace==ns").matches(&p));
        assert!(!f("spec.nodeName!=node-1").matches(&p));
        assert!(f("spec.nodeName!=node-2").matches(&p));
        // A missing field is the empty string.
        assert!(f("spec.nodeName=").matches(&json!({"metadata": {}})));
    }

    #[test]
    fn unsupported_field_labels_are_rejected() {
        let err = FieldSelector::parse("spec.hostname=x", POD_FIELDS).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(err.message, "field label not supported: spec.hostname");
    }
}
