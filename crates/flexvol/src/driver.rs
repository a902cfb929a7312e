//! The driver's flows: `init`, `mount` and `unmount`, each answering one [`DriverStatus`].
//!
//! `mount` validates the options, mounts a `nodev,nosuid,noexec` tmpfs at the volume directory
//! and writes the objects with the kubelet-style atomic writer (`keyvol_core::volume::publish`,
//! which unmounts again on any failure). A volume directory whose tmpfs already holds files (a
//! completed write, or the original driver's plain files) is left alone and reported mounted,
//! without fetching; an empty tmpfs — left by a mount that was killed mid-fetch — is not a
//! mounted volume and is fetched into. `unmount` unmounts and removes the directory, and
//! succeeds when there is nothing to do.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use keyvol_azure::{AzureError, AzureProvider};
use keyvol_core::tmpfs::{self, TmpfsError};
use keyvol_core::volume::{self, Backing, PublishError, TargetState};

use crate::call::{CallError, DriverCall};
use crate::options::{FlexOptions, OptionsError, OutputFormat};
use crate::original::OriginalFormat;
use crate::request::{NodeConfig, mount_request, provider_config};
use crate::status::DriverStatus;

/// How many mounts stacked on one volume directory `unmount` takes down before giving up.
const MAX_STACKED_MOUNTS: usize = 8;

/// Why a `mount` failed. The volume directory is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The options are invalid.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The volume directory could not be inspected.
    #[error("failed to check whether {path} is mounted")]
    Inspect {
        /// The volume directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: PublishError,
    },
    /// The Azure provider could not be built (trust anchors unreadable).
    #[error("failed to set up the Azure provider")]
    Provider(#[source] AzureError),
    /// Mounting, fetching or writing failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Why an `unmount` failed.
#[derive(Debug, thiserror::Error)]
pub enum UnmountError {
    /// The volume directory could not be inspected.
    #[error("failed to inspect {path}")]
    Inspect {
        /// The volume directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The mount table could not be read, or `umount(2)` failed.
    #[error(transparent)]
    Tmpfs(#[from] TmpfsError),
    /// Mounts kept appearing at the directory.
    #[error("failed to unmount {path}: still mounted after {MAX_STACKED_MOUNTS} unmounts")]
    StillMounted {
        /// The volume directory.
        path: PathBuf,
    },
    /// The directory could not be removed after unmounting.
    #[error("failed to remove {path}")]
    Remove {
        /// The volume directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// What a successful `mount` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    /// Something was already mounted there; nothing was fetched.
    AlreadyMounted,
    /// A tmpfs was mounted and filled.
    Mounted {
        /// Files written.
        files: usize,
    },
}

/// What a successful `unmount` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmountOutcome {
    /// The directory does not exist.
    Absent,
    /// The path is not a directory; it is left as it is.
    NotADirectory,
    /// Unmounted (if mounted) and removed.
    Removed,
    /// Nothing was mounted and the directory holds files this driver did not write; it is left
    /// in place (kubelet removes volume directories itself once they are empty).
    LeftNotEmpty,
}

/// Answers one driver call given as argv (without the program name). Never panics on input;
/// every failure becomes a `Failure` status.
pub async fn run(args: &[String], node: &NodeConfig) -> DriverStatus {
    let call = match DriverCall::parse(args) {
        Ok(c) => c,
        Err(e) => return call_failure(&e),
    };
    tracing::info!(command = call.name(), "driver call");
    match call {
        DriverCall::Init => DriverStatus::initialized(),
        DriverCall::Mount { target, options } => match mount(&target, &options, node).await {
            Ok((MountOutcome::AlreadyMounted, _)) => {
                DriverStatus::success(Some(format!("{} is already mounted", target.display())))
            }
            Ok((MountOutcome::Mounted { files }, note)) => DriverStatus::success(Some(format!(
                "mounted {files} file(s) at {}{note}",
                target.display()
            ))),
            Err(e) => {
                tracing::warn!(target = %target.display(), code = mount_code(&e), "mount failed");
                DriverStatus::failure_from(&e)
            }
        },
        DriverCall::Unmount { target } => match unmount(&target) {
            Ok(outcome) => DriverStatus::success(Some(unmount_message(&target, outcome))),
            Err(e) => DriverStatus::failure_from(&e),
        },
        DriverCall::Unsupported { command } => DriverStatus::not_supported(&command),
    }
}

fn call_failure(e: &CallError) -> DriverStatus {
    DriverStatus::failure(e.to_string())
}

fn mount_code(e: &MountError) -> &'static str {
    match e {
        MountError::Options(_) => "InvalidOptions",
        MountError::Inspect { .. } => "FailedToInspect",
        MountError::Provider(_) => "ProviderSetup",
        MountError::Publish(p) => p.code(),
    }
}

fn unmount_message(target: &Path, outcome: UnmountOutcome) -> String {
    let t = target.display();
    match outcome {
        UnmountOutcome::Absent => format!("{t} does not exist; nothing to unmount"),
        UnmountOutcome::NotADirectory => format!("{t} is not a directory; left as it is"),
        UnmountOutcome::Removed => format!("unmounted and removed {t}"),
        UnmountOutcome::LeftNotEmpty => {
            format!("nothing was mounted at {t}; left it in place because it is not empty")
        }
    }
}

/// `mount <dir> <options>`: returns what was done and a note for the status message.
pub async fn mount(
    target: &Path,
    options: &BTreeMap<String, String>,
    node: &NodeConfig,
) -> Result<(MountOutcome, String), MountError> {
    // Checked first, so a volume mounted by an earlier version of the driver stays mounted even
    // if its options would not pass today's validation. An empty tmpfs (a mount killed before
    // its write) is not a volume: it is fetched into below.
    let state = volume::inspect(target).map_err(|source| MountError::Inspect {
        path: target.to_path_buf(),
        source,
    })?;
    if let TargetState::Tmpfs(survey) = &state
        && (survey.published || !survey.only_layout())
    {
        return Ok((MountOutcome::AlreadyMounted, String::new()));
    }
    let options = FlexOptions::parse(options)?;
    let mut note = String::new();
    if !options.ignored.is_empty() {
        note = format!("; ignored unknown options: {}", options.ignored.join(", "));
    }
    tracing::info!(
        target = %target.display(),
        vault = %options.vault_name,
        objects = options.objects.len(),
        identity = options.identity.mode(),
        format = ?options.output,
        "mounting"
    );
    let provider =
        AzureProvider::new(provider_config(&options, node)).map_err(MountError::Provider)?;
    let output = options.output;
    let request = mount_request(options, target);
    let backing = Backing::Tmpfs { size_bytes: None };
    let published = match output {
        OutputFormat::Flexvol => {
            volume::publish(&OriginalFormat::new(&provider), request, target, backing).await?
        }
        OutputFormat::Csi => volume::publish(&provider, request, target, backing).await?,
    }
    .commit();
    Ok((
        MountOutcome::Mounted {
            files: published.files.len(),
        },
        note,
    ))
}

/// `unmount <dir>`.
pub fn unmount(target: &Path) -> Result<UnmountOutcome, UnmountError> {
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(UnmountOutcome::Absent),
        Err(source) => {
            return Err(UnmountError::Inspect {
                path: target.to_path_buf(),
                source,
            });
        }
        Ok(meta) if !meta.is_dir() => return Ok(UnmountOutcome::NotADirectory),
        Ok(_) => {}
    }
    let mut unmounted = 0;
    while tmpfs::mount_at(target)?.is_some() {
        if unmounted == MAX_STACKED_MOUNTS {
            return Err(UnmountError::StillMounted {
                path: target.to_path_buf(),
            });
        }
        tmpfs::unmount(target)?;
        unmounted += 1;
    }
    match std::fs::remove_dir(target) {
        Ok(()) => Ok(UnmountOutcome::Removed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(UnmountOutcome::Removed),
        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty && unmounted == 0 => {
            Ok(UnmountOutcome::LeftNotEmpty)
        }
        Err(source) => Err(UnmountError::Remove {
            path: target.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn init_and_unknown_commands_answer_without_touching_anything() {
        let node = NodeConfig::default();
        assert_eq!(
            run(&args(&["init"]), &node).await,
            DriverStatus::initialized()
        );
        let s = run(&args(&["getvolumename", "{}"]), &node).await;
        assert_eq!(s.status, crate::status::Status::NotSupported);
        let s = run(&args(&["mount", "relative", "{}"]), &node).await;
        assert_eq!(s.status, crate::status::Status::Failure);
    }

    #[tokio::test]
    async fn invalid_options_fail_before_anything_is_mounted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("v");
        let s = run(
            &args(&[
                "mount",
                target.to_str().expect("utf8"),
                r#"{"keyvaultname":"kv-one","tenantid":"t"}"#,
            ]),
            &NodeConfig::default(),
        )
        .await;
        assert_eq!(
            s.message.as_deref(),
            Some("keyvaultobjectnames: is required (the objects to mount, separated by ';')")
        );
        assert!(!target.exists(), "nothing was created");
    }

    #[test]
    fn unmount_succeeds_when_there_is_nothing_to_do_and_never_deletes_foreign_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let absent = dir.path().join("absent");
        assert_eq!(unmount(&absent).expect("ok"), UnmountOutcome::Absent);

        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert_eq!(unmount(&file).expect("ok"), UnmountOutcome::NotADirectory);
        assert!(file.exists());

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        assert_eq!(unmount(&empty).expect("ok"), UnmountOutcome::Removed);
        assert!(!empty.exists());

        let full = dir.path().join("full");
        std::fs::create_dir(&full).expect("mkdir");
        std::fs::write(full.join("keep"), "x").expect("write");
        assert_eq!(unmount(&full).expect("ok"), UnmountOutcome::LeftNotEmpty);
        assert!(full.join("keep").exists());
    }
}
