//! Memory-backed volumes: mounting and unmounting tmpfs, and telling whether a directory is a
//! mount point or already memory-backed, from `/proc/self/mountinfo` and `statfs(2)`.
//!
//! Secrets only ever live on tmpfs. Mounts are `nodev,nosuid,noexec` with an optional size cap.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use std::os::fd::AsRawFd;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, UnmountFlags};

/// `statfs(2)` filesystem magic of tmpfs.
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// Mode of a freshly mounted volume root: world-readable so non-root pods can read, writable only
/// by root.
const ROOT_MODE: &str = "0755";

/// Why a tmpfs operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TmpfsError {
    /// `mount(2)` failed (commonly: not root, so `EPERM`).
    #[error("failed to mount tmpfs at {path}")]
    Mount {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `umount(2)` failed.
    #[error("failed to unmount {path}")]
    Unmount {
        /// The target.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The mount table could not be read.
    #[error("failed to read the mount table")]
    MountTable(#[source] io::Error),
}

/// Mounts a tmpfs at `target` with `nodev,nosuid,noexec`, root mode 0755 and, when given, a size
/// limit in bytes. `target` must be a directory itself, not a symlink to one: it is opened with
/// `O_NOFOLLOW` and the mount goes onto that open directory (through `/proc/self/fd`), so a
/// symlink swapped in after any earlier check cannot redirect the mount.
pub fn mount_tmpfs(target: &Path, size_bytes: Option<u64>) -> Result<(), TmpfsError> {
    let mount_err = |source: io::Error| TmpfsError::Mount {
        path: target.to_path_buf(),
        source,
    };
    let mut data = format!("mode={ROOT_MODE}");
    if let Some(size) = size_bytes {
        data.push_str(&format!(",size={size}"));
    }
    let data = CString::new(data)
        .map_err(|e| mount_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let dir = rustix::fs::open(
        target,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| mount_err(e.into()))?;
    let through_fd = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    rustix::mount::mount(
        "tmpfs",
        &through_fd,
        "tmpfs",
        MountFlags::NODEV | MountFlags::NOSUID | MountFlags::NOEXEC,
        data.as_c_str(),
    )
    .map_err(|e| mount_err(e.into()))
}

/// Unmounts `target` without following a symlink at `target` itself (`UMOUNT_NOFOLLOW`). A
/// target that is not a mount point, or does not exist, is not an error.
pub fn unmount(target: &Path) -> Result<(), TmpfsError> {
    match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(TmpfsError::Unmount {
            path: target.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// True when `path` is on a tmpfs (the volume root or anything below it).
pub fn is_tmpfs(path: &Path) -> io::Result<bool> {
    let st = rustix::fs::statfs(path)?;
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as u64 == TMPFS_MAGIC)
}

/// One line of `/proc/self/mountinfo`, the fields keyvol uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount point, unescaped.
    pub mount_point: PathBuf,
    /// Filesystem type, e.g. `tmpfs`.
    pub fs_type: String,
    /// Per-mount options, e.g. `rw,nosuid,nodev,noexec,relatime`.
    pub options: String,
}

/// Parses the text of `/proc/self/mountinfo`. Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // id parent major:minor root mount_point options [optional...] - fstype source super_opts
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < 6 || sep + 1 >= fields.len() {
            continue;
        }
        out.push(MountEntry {
            mount_point: PathBuf::from(unescape_octal(fields[4])),
            options: fields[5].to_owned(),
            fs_type: fields[sep + 1].to_owned(),
        });
    }
    out
}

/// The mount table of this process.
pub fn mount_table() -> Result<Vec<MountEntry>, TmpfsError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(TmpfsError::MountTable)?;
    Ok(parse_mountinfo(&text))
}

/// The mount entry whose mount point is exactly `path` (the last one wins, as stacked mounts do).
/// The parent directories are resolved; a symlink at `path` itself is not followed, so a link
/// never answers for the mount at its destination.
pub fn mount_at(path: &Path) -> Result<Option<MountEntry>, TmpfsError> {
    let canonical = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
    };
    Ok(mount_table()?
        .into_iter()
        .rev()
        .find(|m| m.mount_point == canonical))
}

/// Undoes the kernel's octal escaping of space, tab, newline and backslash in mountinfo paths.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_parsed_and_unescaped() {
        let text = "36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - tmpfs tmpfs rw,size=1024k\n\
                    37 35 98:0 / /var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/v/mount rw,nosuid,nodev,noexec - tmpfs tmpfs rw\n\
                    garbage\n";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(entries[0].fs_type, "tmpfs");
        assert_eq!(entries[1].options, "rw,nosuid,nodev,noexec");
    }
}
