//! `RelPath`: a file name relative to a volume, validated so it can never leave the volume.
//!
//! This is the check for the CVE-2020-8567 class (a crafted object name or alias writing outside
//! the target): every path a provider hands back is parsed into a `RelPath` before anything is
//! written, and the writer only ever joins `RelPath`s onto directories it created itself.

use std::fmt;
use std::path::{Path, PathBuf};

/// Longest accepted relative path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted path element, in bytes (Linux `NAME_MAX`).
pub const MAX_ELEMENT_BYTES: usize = 255;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelPathError {
    /// The path is empty.
    #[error("file name must not be empty")]
    Empty,
    /// The path starts at the filesystem root.
    #[error("file name must be a relative path")]
    Absolute,
    /// An element is `..`.
    #[error("file name must not contain '..'")]
    ParentElement,
    /// The first element starts with `..`, which the atomic writer reserves for itself.
    #[error("file name must not start with '..' (reserved for the volume's own bookkeeping)")]
    Reserved,
    /// The path has `.` elements, doubled or trailing slashes: it is not in clean form.
    #[error("file name must be clean: no '.' elements, empty elements or trailing '/'")]
    NotClean,
    /// The path holds a NUL byte.
    #[error("file name must not contain a NUL byte")]
    Nul,
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("file name is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    /// One element is longer than [`MAX_ELEMENT_BYTES`].
    #[error("a file name element is longer than {MAX_ELEMENT_BYTES} bytes")]
    ElementTooLong,
}

/// A validated relative path such as `tls.crt` or `db/password`.
///
/// Guarantees: non-empty; relative; made of normal elements only (no `.`, `..`, empty elements);
/// the first element does not start with `..`; no NUL; within the Linux length limits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

impl RelPath {
    /// Validates `s` as a relative path.
    pub fn new(s: &str) -> Result<Self, RelPathError> {
        if s.is_empty() {
            return Err(RelPathError::Empty);
        }
        if s.len() > MAX_PATH_BYTES {
            return Err(RelPathError::TooLong);
        }
        if s.contains('\0') {
            return Err(RelPathError::Nul);
        }
        if s.starts_with('/') {
            return Err(RelPathError::Absolute);
        }
        let mut first = true;
        for element in s.split('/') {
            if element == ".." {
                return Err(RelPathError::ParentElement);
            }
            if element.is_empty() || element == "." {
                return Err(RelPathError::NotClean);
            }
            if element.len() > MAX_ELEMENT_BYTES {
                return Err(RelPathError::ElementTooLong);
            }
            if first && element.starts_with("..") {
                return Err(RelPathError::Reserved);
            }
            first = false;
        }
        Ok(Self(s.to_owned()))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first element: the name of the entry this path creates at the top of the volume.
    pub fn first_element(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    /// The elements of the path.
    pub fn elements(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Joins this path onto `base`.
    pub fn join_onto(&self, base: &Path) -> PathBuf {
        base.join(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for RelPath {
    type Error = RelPathError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_nested_names_are_accepted() {
        for ok in [
            "a",
            "tls.crt",
            "db/password",
            "a/b/c.pem",
            "x..y",
            "a/..b",
            ".hidden",
        ] {
            assert!(RelPath::new(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn traversal_and_unclean_names_are_refused() {
        let cases = [
            ("", RelPathError::Empty),
            ("/etc/passwd", RelPathError::Absolute),
            ("..", RelPathError::ParentElement),
            ("../x", RelPathError::ParentElement),
            ("a/../../x", RelPathError::ParentElement),
            ("a/..", RelPathError::ParentElement),
            ("..data", RelPathError::Reserved),
            ("..2026_01_01/x", RelPathError::Reserved),
            ("./a", RelPathError::NotClean),
            ("a//b", RelPathError::NotClean),
            ("a/", RelPathError::NotClean),
            ("a/./b", RelPathError::NotClean),
            ("a\0b", RelPathError::Nul),
        ];
        for (input, want) in cases {
            assert_eq!(RelPath::new(input), Err(want), "input {input:?}");
        }
        assert_eq!(
            RelPath::new(&"a".repeat(256)),
            Err(RelPathError::ElementTooLong)
        );
        assert_eq!(RelPath::new(&"a/".repeat(2100)), Err(RelPathError::TooLong));
    }

    #[test]
    fn first_element_names_the_top_level_entry() {
        assert_eq!(
            RelPath::new("db/password").map(|p| p.first_element().to_owned()),
            Ok("db".into())
        );
    }
}
