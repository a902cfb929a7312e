//! The run's private directory (sockets, kubeconfig, CA, kubelet-style pod directories) and the
//! promise that nothing outlives the run: dropping the [`Workspace`] unmounts every mount below
//! it — whatever a daemon left, on success, error, panic or Ctrl-C — and then removes it.

use std::path::{Path, PathBuf};

use crate::error::BenchError;

/// The size limit of a [`Workspace::scratch`] tmpfs: it holds only empty directories.
pub const SCRATCH_BYTES: u64 = 64 * 1024 * 1024;

/// A temporary directory that unmounts what is mounted below it when dropped.
pub struct Workspace {
    root: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Workspace {
    /// Creates a fresh directory in the system's temporary directory.
    pub fn create() -> Result<Self, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("keyvol-bench-")
            .tempdir()
            .map_err(BenchError::WorkDir)?;
        // Mount points in /proc/self/mountinfo are canonical paths.
        let root = std::fs::canonicalize(dir.path()).map_err(BenchError::WorkDir)?;
        Ok(Self {
            root,
            dir: Some(dir),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Creates `name` below the directory and, when running as root, mounts a tmpfs of at most
    /// [`SCRATCH_BYTES`] there: kubelet-style pod directories of thousands of volumes come and
    /// go below it, and removing them from a disk mounted with `discard` costs minutes of
    /// synchronous I/O. Returns whether the tmpfs is there (the directory is plain otherwise).
    pub fn scratch(&self, name: &str) -> Result<bool, BenchError> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).map_err(BenchError::WorkDir)?;
        Ok(rustix::process::geteuid().is_root()
            && keyvol_core::tmpfs::mount_tmpfs(&dir, Some(SCRATCH_BYTES)).is_ok())
    }

    /// Mount points below the directory, deepest first.
    pub fn mounts(&self) -> Vec<PathBuf> {
        let mut points: Vec<PathBuf> = keyvol_core::tmpfs::mount_table()
            .map(|t| {
                t.into_iter()
                    .map(|m| m.mount_point)
                    .filter(|p| p.starts_with(&self.root) && p != &self.root)
                    .collect()
            })
            .unwrap_or_default();
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        points.dedup();
        points
    }

    /// Unmounts everything below the directory; returns what could not be unmounted.
    pub fn sweep(&self) -> Vec<PathBuf> {
        let mut stuck = Vec::new();
        for point in self.mounts() {
            if keyvol_core::tmpfs::unmount(&point).is_err()
                && rustix::mount::unmount(&point, rustix::mount::UnmountFlags::DETACH).is_err()
            {
                stuck.push(point);
            }
        }
        stuck
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let stuck = self.sweep();
        if stuck.is_empty() {
            // Removes the directory tree.
            drop(self.dir.take());
        } else {
            // Never recurse into a mount that is still there: keep the directory and say so.
            if let Some(dir) = self.dir.take() {
                let _ = dir.keep();
            }
            eprintln!(
                "keyvol-dev bench: could not unmount {} mount(s) below {}; left in place",
                stuck.len(),
                self.root.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_is_removed_when_dropped() {
        let ws = Workspace::create().expect("workspace");
        let path = ws.path().to_path_buf();
        std::fs::create_dir_all(path.join("a/b")).expect("dirs");
        assert!(ws.mounts().is_empty());
        drop(ws);
        assert!(!path.exists());
    }

    #[test]
    fn a_scratch_directory_is_a_tmpfs_for_root_and_goes_with_the_workspace() {
        let ws = Workspace::create().expect("workspace");
        let mounted = ws.scratch("pods").expect("scratch");
        let pods = ws.path().join("pods");
        assert!(pods.is_dir());
        assert_eq!(mounted, rustix::process::geteuid().is_root());
        if mounted {
            let target = pods.join("uid/volumes/v/mount");
            std::fs::create_dir_all(&target).expect("dirs");
            keyvol_core::tmpfs::mount_tmpfs(&target, None).expect("mount");
            // The volume first, then the scratch tmpfs under it.
            assert_eq!(ws.mounts(), vec![target, pods.clone()]);
        }
        let path = ws.path().to_path_buf();
        drop(ws);
        assert!(!path.exists());
    }

    #[test]
    fn mounts_below_the_workspace_are_unmounted_when_it_is_dropped() {
        if !rustix::process::geteuid().is_root() {
            return; // tmpfs needs root; CI runs as root.
        }
        let ws = Workspace::create().expect("workspace");
        let target = ws.path().join("pods/uid/volumes/v/mount");
        std::fs::create_dir_all(&target).expect("dirs");
        keyvol_core::tmpfs::mount_tmpfs(&target, None).expect("mount");
        assert_eq!(ws.mounts(), vec![target.clone()]);
        let path = ws.path().to_path_buf();
        drop(ws);
        assert!(
            keyvol_core::tmpfs::mount_at(&target)
                .expect("table")
                .is_none()
        );
        assert!(!path.exists());
    }
}
