//! Memory-backed volumes: mounting and unmounting tmpfs, and telling whether a directory is a
//! mount point or already memory-backed, from `statx(2)` and `statfs(2)` (the mount table,
//! `/proc/self/mountinfo`, on kernels without `STATX_ATTR_MOUNT_ROOT`).
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

/// What is mounted exactly at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    /// Filesystem type, e.g. `tmpfs`.
    pub fs_type: String,
}

/// What is mounted exactly at `path` (the top of a stack of mounts), or `None` when `path` is
/// not a mount point. A symlink at `path` itself is not followed, so a link never answers for
/// the mount at its destination.
///
/// The kernel says whether a directory is the root of a mount (`statx(2)`'s
/// `STATX_ATTR_MOUNT_ROOT`, Linux 5.8) and whether it is a tmpfs (`fstatfs(2)`), both asked of the
/// directory opened with `O_PATH | O_NOFOLLOW`: no mount table is read, so the cost does not
/// grow with the number of volumes on the node. Older kernels, other filesystems (to name them)
/// and paths that are not directories fall back to `/proc/self/mountinfo`.
pub fn mount_at(path: &Path) -> Result<Option<Mounted>, TmpfsError> {
    match mount_root(path) {
        Some(Root::NotAMount) => return Ok(None),
        Some(Root::Tmpfs) => {
            return Ok(Some(Mounted {
                fs_type: "tmpfs".to_owned(),
            }));
        }
        Some(Root::Other { magic }) => {
            let named = table_entry(path)?.map(|m| m.fs_type);
            return Ok(Some(Mounted {
                fs_type: named.unwrap_or_else(|| format!("filesystem of type {magic:#x}")),
            }));
        }
        None => {}
    }
    Ok(table_entry(path)?.map(|m| Mounted { fs_type: m.fs_type }))
}

/// What the kernel says about a directory as a mount point.
enum Root {
    /// Not the root of a mount.
    NotAMount,
    /// The root of a tmpfs mount.
    Tmpfs,
    /// The root of a mount of another filesystem (its `statfs` magic).
    Other { magic: u64 },
}

/// The kernel's answer for `path`, or `None` when it cannot give one here.
fn mount_root(path: &Path) -> Option<Root> {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags};
    let dir = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::statx(
        &dir,
        "",
        AtFlags::EMPTY_PATH | AtFlags::NO_AUTOMOUNT,
        StatxFlags::TYPE,
    )
    .ok()?;
    if !st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) {
        return None;
    }
    if !st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT) {
        return Some(Root::NotAMount);
    }
    let fs = rustix::fs::fstatfs(&dir).ok()?;
    #[allow(clippy::unnecessary_cast)]
    let magic = fs.f_type as u64;
    Some(if magic == TMPFS_MAGIC {
        Root::Tmpfs
    } else {
        Root::Other { magic }
    })
}

/// The mount table's entry whose mount point is exactly `path` (the last one wins, as stacked
/// mounts do). The parent directories are resolved; a symlink at `path` itself is not followed.
fn table_entry(path: &Path) -> Result<Option<MountEntry>, TmpfsError> {
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
    #![allow(clippy::unwrap_used)]

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

    #[test]
    fn the_kernel_and_the_mount_table_agree_on_what_is_mounted_where() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        assert_eq!(mount_at(&plain).unwrap(), None);
        assert_eq!(table_entry(&plain).unwrap(), None);
        assert_eq!(mount_at(&dir.path().join("absent")).unwrap(), None);
        if !rustix::process::geteuid().is_root() {
            return; // mounting needs root; the rest is checked in CI, which runs as root
        }
        let target = dir.path().join("mount");
        std::fs::create_dir(&target).unwrap();
        mount_tmpfs(&target, None).unwrap();
        let tmpfs = Some(Mounted {
            fs_type: "tmpfs".into(),
        });
        assert_eq!(mount_at(&target).unwrap(), tmpfs);
        assert_eq!(
            table_entry(&target).unwrap().map(|m| m.fs_type),
            Some("tmpfs".to_owned())
        );
        // A directory inside the tmpfs is on it but not a mount point; a link to the mount
        // point is not followed.
        std::fs::create_dir(target.join("inner")).unwrap();
        assert_eq!(mount_at(&target.join("inner")).unwrap(), None);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(mount_at(&link).unwrap(), None);
        // Another filesystem mounted there is named by the table (here: a bind mount of the
        // directory the test runs in, whatever its filesystem).
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let cwd = std::env::current_dir().unwrap();
        rustix::mount::mount_bind(&cwd, &other).unwrap();
        let found = mount_at(&other).unwrap();
        let listed = table_entry(&other).unwrap().map(|m| m.fs_type);
        unmount(&other).unwrap();
        assert_eq!(found.map(|m| m.fs_type), listed);
        unmount(&target).unwrap();
        assert_eq!(mount_at(&target).unwrap(), None);
    }
}
