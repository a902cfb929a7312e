//! Publishing a volume, all or nothing: make sure the target is memory-backed, ask the provider
//! for files, write them atomically — and however that ends (an error, a dropped future, a
//! killed process) leave either the complete files or nothing mounted. Unpublishing touches only
//! what a volume writer made.
//!
//! Shared by `keyvol mount`, the CSI node service and the FlexVolume driver.
//!
//! How each way of ending is covered:
//! - **Errors**: a [`Publication`] guard undoes what the call did (unmounts the tmpfs it mounted,
//!   removes the directory it created) unless the caller commits it.
//! - **Cancellation** (kubelet's deadline drops the gRPC call): dropping the guard undoes the
//!   same. The filesystem phases run on the blocking pool, so they always run to completion; the
//!   write phase owns the guard while it runs, so nothing is unmounted under a half-done write.
//! - **A killed process**: a tmpfs left without a valid `..data` is not a published volume
//!   ([`TargetState::is_published`]); the next publish fetches into it, and a failed one
//!   unmounts it.

use std::path::{Path, PathBuf};

use crate::layout::{self, Survey};
use crate::provider::{MountRequest, ObjectVersion, Provider, ProviderError};
use crate::tmpfs::{self, TmpfsError};
use crate::writer::{AtomicWriter, WriteError, WriteOutcome};

/// Mode of a target directory keyvol creates (kubelet no longer creates CSI targets).
const TARGET_DIR_MODE: u32 = 0o750;

/// How many mounts stacked on one target unpublish takes down before giving up.
const MAX_STACKED_MOUNTS: usize = 8;

/// What the target directory must be backed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// A tmpfs: reuse the one keyvol left at the target, or mount one (optionally size-capped).
    Tmpfs {
        /// Size cap in bytes.
        size_bytes: Option<u64>,
    },
    /// Write into the directory as it is (developer fallback when not root).
    PlainDirectory,
}

/// Why publishing or unpublishing failed. The target is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The target directory could not be created, inspected or removed.
    #[error("failed to prepare target {path}")]
    Prepare {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The target is a symbolic link; keyvol never follows one (its destination could be
    /// anything on the node).
    #[error("refusing to use {path}: it is a symbolic link")]
    Symlink {
        /// The target.
        path: PathBuf,
    },
    /// The target exists and is not a directory.
    #[error("refusing to use {path}: it is not a directory")]
    NotADirectory {
        /// The target.
        path: PathBuf,
    },
    /// Something other than a tmpfs is mounted at the target; secrets never go there.
    #[error("refusing to use {path}: a {fs_type} filesystem is mounted there, not keyvol's tmpfs")]
    OtherMount {
        /// The target.
        path: PathBuf,
        /// The mounted filesystem type.
        fs_type: String,
    },
    /// The target holds entries no volume writer made; keyvol neither writes into nor removes
    /// such a directory.
    #[error(
        "refusing to use {path}: it holds {count} entries keyvol did not write (such as {names})"
    )]
    Foreign {
        /// The target.
        path: PathBuf,
        /// How many such entries.
        count: usize,
        /// The first few names, comma-separated.
        names: String,
    },
    /// The tmpfs could not be mounted or unmounted, or the mount table read.
    #[error(transparent)]
    Mount(#[from] TmpfsError),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The files could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A filesystem phase could not run on the blocking pool (the runtime is shutting down).
    #[error("failed to run a filesystem step for {path}")]
    Blocking {
        /// The target.
        path: PathBuf,
    },
}

impl PublishError {
    /// Stable code for metrics and status (upstream's error types where they exist).
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Prepare { .. } | PublishError::Blocking { .. } => {
                "FailedToEnsureMountPoint"
            }
            PublishError::Symlink { .. }
            | PublishError::NotADirectory { .. }
            | PublishError::OtherMount { .. }
            | PublishError::Foreign { .. } => "TargetNotOwned",
            PublishError::Mount(_) => "FailedToMount",
            PublishError::Provider(e) => e.code,
            PublishError::Write(_) => "FileWriteError",
        }
    }

    /// True when the error is about the target or the request, not a failure to carry it out.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            PublishError::Symlink { .. }
                | PublishError::NotADirectory { .. }
                | PublishError::OtherMount { .. }
                | PublishError::Foreign { .. }
                | PublishError::Write(
                    WriteError::Conflict { .. }
                        | WriteError::Mode { .. }
                        | WriteError::Occupied { .. }
                )
        )
    }
}

/// What is at a target, looked at without following a symlink at the target itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    /// Nothing.
    Absent,
    /// A symbolic link (never followed).
    Symlink,
    /// Something that is not a directory.
    NotADirectory,
    /// A directory that is not a mount point.
    Directory(Survey),
    /// A tmpfs mounted exactly at the target.
    Tmpfs(Survey),
    /// Another filesystem mounted exactly at the target.
    OtherMount {
        /// Its type.
        fs_type: String,
    },
}

impl TargetState {
    /// True when a tmpfs at the target holds a completed write: the volume is published. A
    /// tmpfs without a valid `..data` (a publish killed mid-way) is not.
    pub fn is_published(&self) -> bool {
        matches!(self, TargetState::Tmpfs(s) if s.published)
    }
}

/// Looks at `target` without following a symlink there.
pub fn inspect(target: &Path) -> Result<TargetState, PublishError> {
    let prepare = |source| PublishError::Prepare {
        path: target.to_path_buf(),
        source,
    };
    let meta = match std::fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TargetState::Absent),
        Err(e) => return Err(prepare(e)),
    };
    if meta.file_type().is_symlink() {
        return Ok(TargetState::Symlink);
    }
    if !meta.is_dir() {
        return Ok(TargetState::NotADirectory);
    }
    let mount = tmpfs::mount_at(target)?;
    match mount {
        Some(m) if m.fs_type != "tmpfs" => Ok(TargetState::OtherMount { fs_type: m.fs_type }),
        Some(_) => Ok(TargetState::Tmpfs(layout::survey(target).map_err(prepare)?)),
        None => Ok(TargetState::Directory(
            layout::survey(target).map_err(prepare)?,
        )),
    }
}

/// What undoes a publish that did not complete: unmounts the tmpfs it mounted (or found
/// abandoned), removes the layout and directory it created. Armed until disarmed; dropping it
/// armed undoes.
#[derive(Debug)]
struct Rollback {
    target: PathBuf,
    /// Unmount: the tmpfs was mounted by this call, or found without a completed write (left
    /// by a publish that was killed).
    unmount: bool,
    /// Remove the target directory: this call created it.
    remove_dir: bool,
    /// Remove the layout: a plain directory this call created.
    remove_layout: bool,
    armed: bool,
}

impl Rollback {
    /// True when the volume was not published before this call: undoing it leaves nothing.
    fn is_new(&self) -> bool {
        self.unmount || self.remove_dir
    }

    fn run(&mut self) {
        if !self.armed {
            return;
        }
        self.armed = false;
        // Nothing useful can be done about a failure while undoing; the target is reported
        // unpublished either way and the next unpublish or publish deals with what is left.
        if self.remove_layout {
            let _ = layout::remove_layout(&self.target);
        }
        if self.unmount {
            let _ = tmpfs::unmount(&self.target);
        }
        if self.remove_dir {
            let _ = std::fs::remove_dir(&self.target);
        }
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        self.run();
    }
}

/// A written volume whose publish is not yet committed: dropping it (an error later in the
/// caller, or the caller's future dropped) undoes the publish; [`Publication::commit`] keeps it.
#[derive(Debug)]
#[must_use = "dropping a Publication undoes the publish; call commit() to keep it"]
pub struct Publication {
    rollback: Rollback,
    published: Published,
}

impl Publication {
    /// What the publish did.
    pub fn published(&self) -> &Published {
        &self.published
    }

    /// Keeps the published volume.
    pub fn commit(mut self) -> Published {
        self.rollback.armed = false;
        std::mem::take(&mut self.published)
    }
}

/// What a publish did.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// True when the volume was not published before (a fresh or taken-over mount).
    pub mounted_now: bool,
    /// What the writer did.
    pub write: WriteOutcome,
    /// Versions of the objects now in the volume.
    pub object_versions: Vec<ObjectVersion>,
    /// Relative paths of the files written, with the mode of each.
    pub files: Vec<(String, u32)>,
}

/// Makes the target ready for a write and returns the guard that undoes it.
fn prepare(target: &Path, backing: Backing) -> Result<Rollback, PublishError> {
    let mut guard = Rollback {
        target: target.to_path_buf(),
        unmount: false,
        remove_dir: false,
        remove_layout: false,
        armed: true,
    };
    let state = match inspect(target)? {
        TargetState::Absent => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(TARGET_DIR_MODE)
                .create(target)
                .map_err(|source| PublishError::Prepare {
                    path: target.to_path_buf(),
                    source,
                })?;
            guard.remove_dir = true;
            inspect(target)?
        }
        other => other,
    };
    match (state, backing) {
        (TargetState::Absent, _) => Err(PublishError::Prepare {
            path: target.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        }),
        (TargetState::Symlink, _) => Err(PublishError::Symlink {
            path: target.to_path_buf(),
        }),
        (TargetState::NotADirectory, _) => Err(PublishError::NotADirectory {
            path: target.to_path_buf(),
        }),
        (TargetState::OtherMount { fs_type }, _) => Err(PublishError::OtherMount {
            path: target.to_path_buf(),
            fs_type,
        }),
        (TargetState::Tmpfs(survey), _) => {
            if !survey.published && !survey.only_layout() {
                return Err(foreign(target, &survey));
            }
            // An abandoned tmpfs (no completed write) is taken over: fetched into, and
            // unmounted again if this publish fails.
            guard.unmount = !survey.published;
            Ok(guard)
        }
        (TargetState::Directory(_), Backing::Tmpfs { size_bytes }) => {
            tmpfs::mount_tmpfs(target, size_bytes)?;
            guard.unmount = true;
            Ok(guard)
        }
        (TargetState::Directory(_), Backing::PlainDirectory) => {
            // A reused directory may hold someone else's files: the writer keeps them and
            // refuses names they hold. Only a directory this call created is cleaned up.
            guard.remove_layout = guard.remove_dir;
            Ok(guard)
        }
    }
}

fn foreign(target: &Path, survey: &Survey) -> PublishError {
    PublishError::Foreign {
        path: target.to_path_buf(),
        count: survey.foreign,
        names: survey.foreign_names.join(", "),
    }
}

/// Runs a filesystem phase on the blocking pool (it runs to completion even if the caller's
/// future is dropped).
async fn blocking<T: Send + 'static>(
    target: &Path,
    phase: impl FnOnce() -> Result<T, PublishError> + Send + 'static,
) -> Result<T, PublishError> {
    tokio::task::spawn_blocking(phase)
        .await
        .map_err(|_| PublishError::Blocking {
            path: target.to_path_buf(),
        })?
}

/// Publishes `request` into `target` and returns the uncommitted [`Publication`]: commit it
/// once everything else the caller must do has succeeded, or drop it to undo the publish.
pub async fn publish(
    provider: &dyn Provider,
    request: MountRequest,
    target: &Path,
    backing: Backing,
) -> Result<Publication, PublishError> {
    publish_for_group(provider, request, target, backing, None).await
}

/// [`publish`], with every file, directory and link of the volume group-owned by `group` (the
/// pod's fsGroup, passed by kubelet as the CSI volume mount group) and every file
/// group-readable, so a non-root pod in that group can read its secrets.
pub async fn publish_for_group(
    provider: &dyn Provider,
    request: MountRequest,
    target: &Path,
    backing: Backing,
    group: Option<u32>,
) -> Result<Publication, PublishError> {
    // The target is made ready on the blocking pool while the provider fetches: neither needs
    // the other, and a publish then takes the longer of the two instead of their sum. Dropped
    // anywhere below (the caller's future dropped), the preparation still runs to completion on
    // the blocking pool and its guard, dropped there, undoes it.
    let owned = target.to_path_buf();
    let prepared = blocking(target, move || prepare(&owned, backing));
    let fetched = provider.mount(request);
    tokio::pin!(prepared, fetched);
    let (guard, fetched) = tokio::select! {
        // A target that cannot be used fails the publish at once; the fetch is dropped.
        guard = &mut prepared => (guard?, fetched.await),
        fetched = &mut fetched => (prepared.await?, fetched),
    };
    let response = match fetched {
        Ok(response) => response,
        Err(e) => {
            // Undone off the async runtime, before the error is reported.
            blocking(target, move || {
                drop(guard);
                Ok(())
            })
            .await?;
            return Err(e.into());
        }
    };
    let files: Vec<(String, u32)> = response
        .files
        .iter()
        .map(|f| (f.path.to_string(), f.mode))
        .collect();
    let owned = target.to_path_buf();
    let object_versions = response.object_versions;
    let payload = response.files;
    // The write phase owns the guard: nothing unmounts the target under a write in progress. On
    // failure the guard is dropped inside, undoing the preparation.
    blocking(target, move || {
        let rollback = guard;
        let write = AtomicWriter::new(&owned)
            .with_group(group)
            .write(&payload)?;
        Ok(Publication {
            published: Published {
                mounted_now: rollback.is_new(),
                write,
                object_versions,
                files,
            },
            rollback,
        })
    })
    .await
}

/// What an unpublish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpublished {
    /// Nothing was there.
    AlreadyClean,
    /// The tmpfs was unmounted (and the directory removed when empty).
    Unmounted,
    /// A plain directory holding only a volume's layout was removed.
    Removed,
}

/// Unpublishes `target`: unmounts a tmpfs holding a volume (or nothing) and removes the
/// directory, or removes a plain directory holding only a volume's layout. A missing target is
/// success; a symlink, another filesystem, or a directory with entries no volume writer made is
/// refused and left exactly as it is.
pub fn unpublish(target: &Path) -> Result<Unpublished, PublishError> {
    let mut unmounted = 0;
    loop {
        match inspect(target)? {
            TargetState::Absent => {
                return Ok(if unmounted > 0 {
                    Unpublished::Unmounted
                } else {
                    Unpublished::AlreadyClean
                });
            }
            TargetState::Symlink => {
                return Err(PublishError::Symlink {
                    path: target.to_path_buf(),
                });
            }
            TargetState::NotADirectory => {
                return Err(PublishError::NotADirectory {
                    path: target.to_path_buf(),
                });
            }
            TargetState::OtherMount { fs_type } => {
                return Err(PublishError::OtherMount {
                    path: target.to_path_buf(),
                    fs_type,
                });
            }
            TargetState::Tmpfs(survey) => {
                if !survey.only_layout() {
                    return Err(foreign(target, &survey));
                }
                if unmounted == MAX_STACKED_MOUNTS {
                    return Err(PublishError::Mount(TmpfsError::Unmount {
                        path: target.to_path_buf(),
                        source: std::io::Error::other("still mounted after repeated unmounts"),
                    }));
                }
                tmpfs::unmount(target)?;
                unmounted += 1;
            }
            TargetState::Directory(survey) => {
                if !survey.only_layout() {
                    if unmounted > 0 {
                        // The tmpfs is gone; what is underneath is not the volume's.
                        return Ok(Unpublished::Unmounted);
                    }
                    return Err(foreign(target, &survey));
                }
                let remove = |source| PublishError::Prepare {
                    path: target.to_path_buf(),
                    source,
                };
                layout::remove_layout(target).map_err(remove)?;
                match std::fs::remove_dir(target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(remove(e)),
                }
                return Ok(if unmounted > 0 {
                    Unpublished::Unmounted
                } else {
                    Unpublished::Removed
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::provider::{MountResponse, ProviderFile};
    use crate::relpath::RelPath;
    use crate::sensitive::Sensitive;

    fn root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn backing() -> Backing {
        if root() {
            Backing::Tmpfs { size_bytes: None }
        } else {
            Backing::PlainDirectory
        }
    }

    fn request() -> MountRequest {
        MountRequest {
            attributes: BTreeMap::new(),
            secrets: BTreeMap::new(),
            default_mode: 0o644,
            target_path: String::new(),
            current_versions: Vec::new(),
        }
    }

    /// Answers with one file, after `gate` opens (never, if it never does).
    struct Gated {
        gate: Arc<tokio::sync::Notify>,
    }

    #[async_trait::async_trait]
    impl Provider for Gated {
        async fn mount(&self, _: MountRequest) -> Result<MountResponse, ProviderError> {
            self.gate.notified().await;
            Ok(MountResponse {
                files: vec![ProviderFile {
                    path: RelPath::new("s1").unwrap(),
                    mode: 0o644,
                    contents: Sensitive::new(b"one".to_vec()),
                }],
                object_versions: Vec::new(),
            })
        }

        fn runtime(&self) -> (&'static str, &'static str) {
            ("gated", "0")
        }
    }

    fn mounted(path: &Path) -> bool {
        tmpfs::mount_at(path).unwrap().is_some()
    }

    #[tokio::test]
    async fn a_publish_dropped_while_the_provider_works_leaves_nothing() {
        // Issue 13: kubelet's deadline dropped the call mid-fetch; the empty tmpfs stayed.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("mount");
        let provider = Gated {
            gate: Arc::new(tokio::sync::Notify::new()),
        };
        let call = publish(&provider, request(), &target, backing());
        assert!(
            tokio::time::timeout(Duration::from_millis(300), call)
                .await
                .is_err(),
            "the provider never answers"
        );
        assert!(!target.exists(), "the directory this call created is gone");
        assert!(!mounted(&target));
    }

    #[tokio::test]
    async fn an_uncommitted_publication_is_undone_and_a_committed_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("mount");
        let gate = Arc::new(tokio::sync::Notify::new());
        gate.notify_one();
        let provider = Gated { gate: gate.clone() };
        let publication = publish(&provider, request(), &target, backing())
            .await
            .unwrap();
        assert_eq!(std::fs::read(target.join("s1")).unwrap(), b"one");
        assert!(publication.published().mounted_now);
        drop(publication); // e.g. the pod status could not be written
        assert!(!target.exists() && !mounted(&target));

        gate.notify_one();
        let published = publish(&provider, request(), &target, backing())
            .await
            .unwrap()
            .commit();
        assert_eq!(published.files, [("s1".to_owned(), 0o644)]);
        assert_eq!(inspect(&target).unwrap().is_published(), root());
        assert_ne!(unpublish(&target).unwrap(), Unpublished::AlreadyClean);
        assert!(!target.exists());
    }

    #[tokio::test]
    async fn an_abandoned_tmpfs_is_fetched_into_and_unmounted_if_that_fails() {
        if !root() {
            eprintln!("skipped: needs root for tmpfs mounts");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("mount");
        std::fs::create_dir(&target).unwrap();
        // What a publish killed mid-fetch leaves: an empty tmpfs.
        tmpfs::mount_tmpfs(&target, None).unwrap();
        assert!(!inspect(&target).unwrap().is_published());
        let gate = Arc::new(tokio::sync::Notify::new());
        let provider = Gated { gate: gate.clone() };
        let call = publish(&provider, request(), &target, backing());
        assert!(
            tokio::time::timeout(Duration::from_millis(300), call)
                .await
                .is_err()
        );
        assert!(!mounted(&target), "taken over, then undone");

        tmpfs::mount_tmpfs(&target, None).unwrap();
        gate.notify_one();
        let _ = publish(&provider, request(), &target, backing())
            .await
            .unwrap()
            .commit();
        assert!(inspect(&target).unwrap().is_published());
        unpublish(&target).unwrap();
        assert!(!mounted(&target) && !target.exists());
    }
}
