//! Installing the driver into kubelet's FlexVolume plugin directory: the executable becomes
//! `<plugin dir>/azure~kv/kv`, written to a temporary name and renamed into place, so kubelet —
//! which probes the directory whenever it changes — never runs a half-written file.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Directory of the driver inside the plugin directory: `<vendor>~<driver>`.
pub const DRIVER_DIR: &str = "azure~kv";
/// File name of the driver: kubelet runs `<vendor>~<driver>/<driver>`.
pub const DRIVER_FILE: &str = "kv";
/// Mode of the installed driver and its directory: executable by kubelet (root), readable by
/// all, writable only by the owner.
const DRIVER_MODE: u32 = 0o755;

/// Why installing failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The driver directory could not be created.
    #[error("failed to create {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The executable to install could not be read.
    #[error("failed to read {path}")]
    ReadSource {
        /// The source executable.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The temporary copy could not be written.
    #[error("failed to write {path}")]
    Write {
        /// The temporary file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The copy could not be renamed into place.
    #[error("failed to move {from} to {to}")]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The driver's final path.
        to: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Copies the executable `source` to `<plugin_dir>/azure~kv/kv` (mode 0755), replacing any
/// previous driver atomically. Returns the installed path.
pub fn install(source: &Path, plugin_dir: &Path) -> Result<PathBuf, InstallError> {
    let dir = plugin_dir.join(DRIVER_DIR);
    let create_err = |source| InstallError::CreateDir {
        path: dir.clone(),
        source,
    };
    fs::create_dir_all(&dir).map_err(create_err)?;
    fs::set_permissions(&dir, Permissions::from_mode(DRIVER_MODE)).map_err(create_err)?;

    let target = dir.join(DRIVER_FILE);
    // A dot name in the driver's own directory: same filesystem as the target, so the rename is
    // atomic, and kubelet only ever executes the file named after the driver.
    let temp = dir.join(format!(".{DRIVER_FILE}.{}.tmp", std::process::id()));
    let write_err = |source| InstallError::Write {
        path: temp.clone(),
        source,
    };
    let mut input = File::open(source).map_err(|e| InstallError::ReadSource {
        path: source.to_path_buf(),
        source: e,
    })?;
    let _ = fs::remove_file(&temp);
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(DRIVER_MODE)
            .open(&temp)
            .map_err(write_err)?;
        io::copy(&mut input, &mut out).map_err(write_err)?;
        // The mode given at creation is filtered by the umask; set it exactly.
        out.set_permissions(Permissions::from_mode(DRIVER_MODE))
            .map_err(write_err)?;
        out.sync_all().map_err(write_err)?;
        fs::rename(&temp, &target).map_err(|e| InstallError::Rename {
            from: temp.clone(),
            to: target.clone(),
            source: e,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    // Make the rename durable; a failure here leaves a complete driver in place either way.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_an_executable_copy_and_replaces_an_older_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("keyvol");
        fs::write(&source, b"#!new driver").expect("write");
        let plugins = dir.path().join("volumeplugins");
        fs::create_dir_all(plugins.join(DRIVER_DIR)).expect("mkdir");
        fs::write(plugins.join(DRIVER_DIR).join(DRIVER_FILE), b"old").expect("old");
        fs::write(
            plugins.join(DRIVER_DIR).join("azurekeyvault-flexvolume"),
            b"x",
        )
        .expect("x");

        let installed = install(&source, &plugins).expect("installs");
        assert_eq!(installed, plugins.join("azure~kv/kv"));
        assert_eq!(fs::read(&installed).expect("read"), b"#!new driver");
        let mode = fs::metadata(&installed).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        let mut names: Vec<String> = fs::read_dir(plugins.join(DRIVER_DIR))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["azurekeyvault-flexvolume", "kv"],
            "no temporary file is left and the original's other files are not touched"
        );
    }

    #[test]
    fn a_missing_plugin_directory_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("keyvol");
        fs::write(&source, b"bin").expect("write");
        let installed = install(&source, &dir.path().join("a/b")).expect("installs");
        assert!(installed.exists());
    }

    #[test]
    fn an_unreadable_source_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = install(&dir.path().join("missing"), dir.path()).expect_err("fails");
        assert!(err.to_string().starts_with("failed to read "), "{err}");
    }
}
