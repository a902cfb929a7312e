//! Publishing a volume: make sure the target is memory-backed, ask the provider for files, write
//! them atomically, and on any failure leave the target exactly as it was.
//!
//! Shared by `keyvol mount`, the CSI node service and the FlexVolume driver.

use std::path::{Path, PathBuf};

use crate::provider::{MountRequest, ObjectVersion, Provider, ProviderError};
use crate::tmpfs::{self, TmpfsError};
use crate::writer::{AtomicWriter, WriteError, WriteOutcome};

/// Mode of a target directory keyvol creates (kubelet no longer creates CSI targets).
const TARGET_DIR_MODE: u32 = 0o750;

/// What the target directory must be backed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// A tmpfs: reuse the one mounted at the target, or mount one (optionally size-capped).
    Tmpfs {
        /// Size cap in bytes.
        size_bytes: Option<u64>,
    },
    /// Write into the directory as it is (developer fallback when not root).
    PlainDirectory,
}

/// Why publishing failed. The target is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The target directory could not be created or inspected.
    #[error("failed to prepare target {path}")]
    Prepare {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The tmpfs could not be mounted.
    #[error(transparent)]
    Mount(#[from] TmpfsError),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The files could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl PublishError {
    /// Stable code for metrics and status (upstream's error types where they exist).
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Prepare { .. } => "FailedToEnsureMountPoint",
            PublishError::Mount(_) => "FailedToMount",
            PublishError::Provider(e) => e.code,
            PublishError::Write(_) => "FileWriteError",
        }
    }
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    /// True when this call mounted the tmpfs.
    pub mounted_now: bool,
    /// What the writer did.
    pub write: WriteOutcome,
    /// Versions of the objects now in the volume.
    pub object_versions: Vec<ObjectVersion>,
    /// Relative paths of the files written, with the mode of each.
    pub files: Vec<(String, u32)>,
}

/// Publishes `request` into `target`.
pub async fn publish(
    provider: &dyn Provider,
    request: MountRequest,
    target: &Path,
    backing: Backing,
) -> Result<Published, PublishError> {
    let prepare = |source| PublishError::Prepare {
        path: target.to_path_buf(),
        source,
    };
    if !target.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(TARGET_DIR_MODE)
            .create(target)
            .map_err(prepare)?;
    }
    let mut mounted_now = false;
    if let Backing::Tmpfs { size_bytes } = backing
        && tmpfs::mount_at(target)?.is_none()
    {
        tmpfs::mount_tmpfs(target, size_bytes)?;
        mounted_now = true;
    }
    let undo = |mounted_now: bool| {
        if mounted_now {
            let _ = tmpfs::unmount(target);
        }
    };
    let response = match provider.mount(request).await {
        Ok(r) => r,
        Err(e) => {
            undo(mounted_now);
            return Err(e.into());
        }
    };
    let writer = AtomicWriter::new(target);
    let write = match writer.write(&response.files) {
        Ok(w) => w,
        Err(e) => {
            undo(mounted_now);
            return Err(e.into());
        }
    };
    let files = response
        .files
        .iter()
        .map(|f| (f.path.to_string(), f.mode))
        .collect();
    Ok(Published {
        mounted_now,
        write,
        object_versions: response.object_versions,
        files,
    })
}

/// Unmounts (if mounted) and removes `target`. Succeeds when there is nothing to do.
pub fn unpublish(target: &Path) -> Result<(), PublishError> {
    if !target.exists() {
        return Ok(());
    }
    if tmpfs::mount_at(target)?.is_some() {
        tmpfs::unmount(target)?;
    }
    std::fs::remove_dir_all(target).map_err(|source| PublishError::Prepare {
        path: target.to_path_buf(),
        source,
    })
}

use std::os::unix::fs::DirBuilderExt;
