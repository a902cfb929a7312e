//! JSON field extraction (`jmesPath` on an object, docs/beyond-upstream.md): a JMESPath
//! expression evaluated over a secret's JSON value, its result written to a file of its own —
//! a string as its bytes, any other value as compact JSON.
//!
//! A class author writes the expressions, so they are checked before any network call
//! ([`check`]): length ([`MAX_EXPRESSION_BYTES`]), syntax, known functions, and how much larger
//! than the value a result could grow ([`MAX_GROWTH`]; `[@, @, @]` triples it, `to_string`
//! may escape every character, nesting multiplies). With the value itself bounded
//! ([`MAX_VALUE_BYTES`]), an evaluation's memory and time are bounded. Errors name types and
//! positions, never the value.

use jmespath::ast::Ast;
use keyvol_core::{ProviderFile, Sensitive};

use crate::error::AzureError;
use crate::objects::KeyVaultObject;

/// Longest expression accepted. Real paths (`db.primary.connectionString`,
/// `{user: username, password: password}`) are far shorter; the bound also bounds the
/// parser's and the interpreter's recursion.
pub const MAX_EXPRESSION_BYTES: usize = 256;
/// How many times the size of the value a result may be at most, as estimated from the
/// expression alone.
pub const MAX_GROWTH: u64 = 64;
/// Largest value searched. Key Vault keeps secrets under 25,600 characters (at most four bytes
/// each).
pub const MAX_VALUE_BYTES: usize = 128 * 1024;
/// Largest result written to a file; with [`MAX_GROWTH`] an evaluation cannot build more than
/// 64 times the value anyway, this keeps each file (and a volume of 64 entries) small.
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;
/// Longest `join` separator: a literal, so the result grows by at most its length per element.
const MAX_JOIN_SEPARATOR: usize = 16;

/// Why an expression is refused or its evaluation failed. The messages hold the expression's
/// positions and JSON type names, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JmesError {
    /// The expression is empty, too long, not JMESPath, or could grow too large.
    #[error("{0}")]
    Invalid(String),
    /// The value is not JSON.
    #[error("the value is not JSON")]
    NotJson,
    /// The value is larger than [`MAX_VALUE_BYTES`].
    #[error("the value is larger than the {} KiB keyvol searches", MAX_VALUE_BYTES / 1024)]
    TooLarge,
    /// The result is larger than [`MAX_RESULT_BYTES`].
    #[error("the result is larger than the {} KiB keyvol writes", MAX_RESULT_BYTES / 1024)]
    ResultTooLarge,
    /// The expression matches nothing (its result is null).
    #[error("matches nothing in the value (the result is null)")]
    NoMatch,
    /// Evaluating the expression failed (a function given the wrong type, …).
    #[error("failed: {0}")]
    Failed(String),
}

/// The parser's or interpreter's complaint: its reason and column, without the caret drawing.
fn reason(e: &jmespath::JmespathError) -> String {
    format!("{} (column {})", e.reason, e.column + 1)
}

/// Checks `expression` without any value: length, syntax, functions and growth.
pub fn check(expression: &str) -> Result<(), JmesError> {
    if expression.trim().is_empty() {
        return Err(JmesError::Invalid("is empty".into()));
    }
    if expression.len() > MAX_EXPRESSION_BYTES {
        return Err(JmesError::Invalid(format!(
            "is longer than the {MAX_EXPRESSION_BYTES} bytes keyvol accepts"
        )));
    }
    let compiled = jmespath::compile(expression)
        .map_err(|e| JmesError::Invalid(format!("is not a JMESPath expression: {}", reason(&e))))?;
    let growth = growth(compiled.as_ast())?;
    if growth > MAX_GROWTH {
        return Err(JmesError::Invalid(format!(
            "could produce a result up to {growth} times the size of the value, more than the {MAX_GROWTH} keyvol allows"
        )));
    }
    Ok(())
}

/// An upper bound of how many times larger than the value the result of `ast` can be (the
/// product along a path, the sum across the members of a multiselect), saturating. Refuses
/// unknown functions and `join` separators that are not short literals.
fn growth(ast: &Ast) -> Result<u64, JmesError> {
    fn sum<'a>(nodes: impl Iterator<Item = &'a Ast>) -> Result<u64, JmesError> {
        let mut nodes = nodes;
        nodes.try_fold(0u64, |acc, n| Ok(acc.saturating_add(growth(n)?)))
    }
    Ok(match ast {
        Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Slice { .. }
        | Ast::Literal { .. } => 1,
        Ast::Subexpr { lhs, rhs, .. } | Ast::Projection { lhs, rhs, .. } => {
            growth(lhs)?.saturating_mul(growth(rhs)?)
        }
        Ast::Comparison { lhs, rhs, .. } => growth(lhs)?.max(growth(rhs)?),
        Ast::And { lhs, rhs, .. } | Ast::Or { lhs, rhs, .. } => {
            growth(lhs)?.saturating_add(growth(rhs)?)
        }
        Ast::Condition {
            predicate, then, ..
        } => growth(predicate)?.max(growth(then)?),
        Ast::Not { node, .. }
        | Ast::Flatten { node, .. }
        | Ast::ObjectValues { node, .. }
        | Ast::Expref { ast: node, .. } => growth(node)?,
        Ast::MultiList { elements, .. } => sum(elements.iter())?.max(1),
        Ast::MultiHash { elements, .. } => sum(elements.iter().map(|kv| &kv.value))?.max(1),
        Ast::Function { name, args, .. } => {
            if jmespath::DEFAULT_RUNTIME.get_function(name).is_none() {
                return Err(JmesError::Invalid(format!(
                    "calls {name}(), which is not a JMESPath function"
                )));
            }
            let args_growth = sum(args.iter())?.max(1);
            match name.as_str() {
                // Every character may become an escape (`\u0001`: six).
                "to_string" => args_growth.saturating_mul(6),
                // An expression per element of an array.
                "map" => args
                    .iter()
                    .try_fold(1u64, |acc, a| Ok(acc.saturating_mul(growth(a)?)))?,
                "join" => {
                    let separator = match args.first() {
                        Some(Ast::Literal { value, .. }) => value.as_string().map(String::len),
                        _ => None,
                    };
                    match separator {
                        Some(len) if len <= MAX_JOIN_SEPARATOR => {
                            args_growth.saturating_mul(1 + len as u64)
                        }
                        _ => {
                            return Err(JmesError::Invalid(format!(
                                "join's separator must be a string literal of at most {MAX_JOIN_SEPARATOR} bytes"
                            )));
                        }
                    }
                }
                _ => args_growth,
            }
        }
    })
}

/// Evaluates `expression` (checked with [`check`]) over `value`: a string result as its bytes,
/// any other result as compact JSON.
pub fn extract(expression: &str, value: &[u8]) -> Result<Vec<u8>, JmesError> {
    check(expression)?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(JmesError::TooLarge);
    }
    let text = std::str::from_utf8(value).map_err(|_| JmesError::NotJson)?;
    let data = jmespath::Variable::from_json(text).map_err(|_| JmesError::NotJson)?;
    let compiled = jmespath::compile(expression)
        .map_err(|e| JmesError::Invalid(format!("is not a JMESPath expression: {}", reason(&e))))?;
    let result = compiled
        .search(data)
        .map_err(|e| JmesError::Failed(reason(&e)))?;
    let bytes = match &*result {
        jmespath::Variable::Null => return Err(JmesError::NoMatch),
        jmespath::Variable::String(s) => s.as_bytes().to_vec(),
        other => serde_json::to_vec(other)
            .map_err(|_| JmesError::Failed("the result could not be written as JSON".into()))?,
    };
    if bytes.len() > MAX_RESULT_BYTES {
        return Err(JmesError::ResultTooLarge);
    }
    Ok(bytes)
}

/// The files `object`'s `jmesPath` entries extract from `value` (the bytes of the object's own
/// file), each with `mode`. The first failure fails them all, naming the entry and its path.
pub fn files(
    object: &KeyVaultObject,
    value: &[u8],
    mode: u32,
) -> Result<Vec<ProviderFile>, AzureError> {
    object
        .extensions
        .jmes_path
        .iter()
        .map(|entry| {
            let bytes = extract(&entry.path, value).map_err(|e| AzureError::Format {
                object: format!("{}/{}", object.object_type.as_str(), object.name),
                reason: format!("{}.path {:?}: {e}", entry.field, entry.path),
            })?;
            Ok(ProviderFile {
                path: entry.file.clone(),
                mode,
                contents: Sensitive::new(bytes),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = r#"{"username":"app","password":"p@ss\"word","port":5432,"tls":true,"hosts":["a","b"],"nested":{"deep":{"x":1.5}},"empty":"","nothing":null}"#;

    fn get(expression: &str) -> Result<String, JmesError> {
        extract(expression, VALUE.as_bytes()).map(|b| String::from_utf8(b).expect("utf-8"))
    }

    #[test]
    fn strings_are_raw_and_everything_else_is_compact_json() {
        let cases = [
            ("username", "app"),
            ("password", "p@ss\"word"),
            ("port", "5432"),
            ("tls", "true"),
            ("hosts", r#"["a","b"]"#),
            ("hosts[1]", "b"),
            ("nested.deep", r#"{"x":1.5}"#),
            ("{u: username, p: port}", r#"{"p":5432,"u":"app"}"#),
            ("join(',', hosts)", "a,b"),
            ("length(hosts)", "2"),
            ("to_string(port)", "5432"),
            ("empty", ""),
            ("`\"lit\"`", "lit"),
        ];
        for (expression, want) in cases {
            assert_eq!(get(expression).expect(expression), want, "{expression}");
        }
    }

    #[test]
    fn null_not_json_and_type_errors_fail_without_the_value() {
        assert_eq!(get("missing"), Err(JmesError::NoMatch));
        assert_eq!(get("nothing"), Err(JmesError::NoMatch));
        assert_eq!(get("hosts[5]"), Err(JmesError::NoMatch));
        assert_eq!(extract("a", b"plain text"), Err(JmesError::NotJson));
        assert_eq!(extract("a", b"{\"a\":"), Err(JmesError::NotJson));
        assert_eq!(extract("a", &[0xff, 0xfe]), Err(JmesError::NotJson));
        let err = get("length(port)").expect_err("type error").to_string();
        assert!(err.starts_with("failed: Runtime error: "), "{err}");
        for secret in ["p@ss", "5432", "app"] {
            assert!(!err.contains(secret), "{err}");
        }
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_VALUE_BYTES));
        assert_eq!(extract("a", big.as_bytes()), Err(JmesError::TooLarge));
    }

    #[test]
    fn bad_expressions_are_refused_before_any_value() {
        let cases = [
            ("", "is empty"),
            ("  ", "is empty"),
            ("a..b", "is not a JMESPath expression: Parse error: "),
            ("a[", "is not a JMESPath expression: "),
            ("nope(a)", "calls nope(), which is not a JMESPath function"),
            (
                "join(a, b)",
                "join's separator must be a string literal of at most 16 bytes",
            ),
            (
                "join('this separator is long', b)",
                "join's separator must be a string literal",
            ),
            (
                "to_string(to_string([@, @, @, @, @, @]))",
                "could produce a result up to 216 times the size of the value, more than the 64 keyvol allows",
            ),
            (
                "[@, @, @, @, @, @, @, @][*].[@, @, @, @, @, @, @, @, @][]",
                "could produce a result up to 72 times",
            ),
        ];
        for (expression, want) in cases {
            let err = check(expression).expect_err(expression).to_string();
            assert!(err.starts_with(want), "{expression}: {err}");
        }
        assert!(check(&"a.".repeat(200)).is_err(), "too long");
        check("[@, @, @, @, @, @, @, @][*].[@, @, @, @, @, @, @, @]").expect("64 is allowed");
        check(&format!("{}a{}", "(".repeat(100), ")".repeat(100)))
            .expect("nesting within the length");
    }

    #[test]
    fn multiplying_expressions_stay_within_the_bound_on_the_largest_value() {
        // The largest allowed growth over the largest value finishes quickly and small.
        let value = format!("[{}]", vec!["\"\\u0001\""; 14_000].join(","));
        let started = std::time::Instant::now();
        let err = extract(
            "to_string([@, @, @, @, @, @, @, @, @, @])",
            value.as_bytes(),
        )
        .expect_err("over the result cap");
        assert_eq!(err, JmesError::ResultTooLarge);
        let out = extract("to_string([@, @])", value.as_bytes()).expect("bounded");
        assert!(out.len() <= MAX_RESULT_BYTES);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
