//! The service's rules on what a request or a seed may hold: vault, object and version names,
//! and the longest secret value and content type. The store, the seed and the data plane all
//! apply them, so they live here, apart from each of them.

/// The longest secret value the service accepts, in characters; longer ones answer 400
/// `SecretTooLarge`.
pub const MAX_VALUE_CHARS: usize = 25_600;

/// The longest content type the service documents for a secret.
pub const MAX_CONTENT_TYPE_CHARS: usize = 255;

/// Why a secret's value or content type is refused, as the service refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The value is longer than [`MAX_VALUE_CHARS`].
    #[error("the value is longer than Key Vault's limit of {MAX_VALUE_CHARS} characters")]
    ValueTooLarge,
    /// The content type is longer than [`MAX_CONTENT_TYPE_CHARS`].
    #[error(
        "the content type is longer than Key Vault's limit of {MAX_CONTENT_TYPE_CHARS} characters"
    )]
    ContentTypeTooLong,
}

/// Checks a value and content type against the service's limits (either may be absent, as on
/// an update).
pub fn check_limits(value: Option<&str>, content_type: Option<&str>) -> Result<(), LimitError> {
    if value.is_some_and(|v| service_len(v) > MAX_VALUE_CHARS) {
        return Err(LimitError::ValueTooLarge);
    }
    if content_type.is_some_and(|ct| service_len(ct) > MAX_CONTENT_TYPE_CHARS) {
        return Err(LimitError::ContentTypeTooLong);
    }
    Ok(())
}

/// A string's length as the service counts characters. The service is a .NET one, whose
/// strings count UTF-16 code units; for ASCII this is the byte length.
fn service_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Key Vault's vault name rule: 3-24 of `0-9a-zA-Z-`.
pub fn valid_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Key Vault's object name rule: 1-127 of `0-9a-zA-Z-`.
pub fn valid_object_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A version id as the service makes them: 32 lowercase hex characters.
pub fn valid_version(v: &str) -> bool {
    v.len() == 32
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
