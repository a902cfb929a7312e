//! Reading files keyvol is pointed at — by a class, a flag or a user — with a size cap, so a
//! path like `/dev/zero` or a multi-gigabyte file fails at once instead of exhausting memory.
//! Only regular files are read. Errors name the file, never its contents.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum BoundedReadError {
    /// The file could not be opened or read.
    #[error("failed to read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The path is not a regular file (a device, a directory, a FIFO…).
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than the cap for its kind.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{path} is not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
}

/// Reads the regular file at `path` whole, failing once it exceeds `limit` bytes (without
/// reading further).
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, BoundedReadError> {
    let io_err = |source| BoundedReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    if !file.metadata().map_err(io_err)?.is_file() {
        return Err(BoundedReadError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > limit {
        return Err(BoundedReadError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// [`read`] for UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, BoundedReadError> {
    String::from_utf8(read(path, limit)?).map_err(|_| BoundedReadError::NotText {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn devices_directories_and_oversized_files_fail_without_reading_them_whole() {
        assert!(matches!(
            read(Path::new("/dev/zero"), 1024),
            Err(BoundedReadError::NotAFile { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(dir.path(), 1024),
            Err(BoundedReadError::NotAFile { .. })
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        let err = read_to_string(&big, 1024).unwrap_err();
        assert!(matches!(
            err,
            BoundedReadError::TooLarge { limit: 1024, .. }
        ));
        assert!(!err.to_string().contains("aaaa"), "never the contents");
        std::fs::write(&big, b"ok").unwrap();
        assert_eq!(read_to_string(&big, 1024).unwrap(), "ok");
    }
}
