//! What belongs to a volume: the names the atomic writer (keyvol's, kubelet's and the upstream
//! driver's, which share one layout) creates in a target directory, told apart from everything
//! else. Publish, unpublish and the writer use it to act only on what a volume writer made —
//! never on a user's files in a reused directory.
//!
//! The layout (see [`crate::writer`]): `..data` → `..<timestamp>.<digits>/`, one top-level
//! symlink per file or directory pointing to `..data/<name>`, and the writer's transient
//! `..data_tmp` and `..link_tmp.<name>` links. Nothing here follows a symlink.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::Path;

/// Name of the symlink that points at the current version directory.
pub const DATA_DIR: &str = "..data";
/// Name of the temporary symlink renamed onto [`DATA_DIR`].
pub const DATA_TMP: &str = "..data_tmp";
/// Prefix of the temporary symlinks renamed onto top-level names.
pub const LINK_TMP_PREFIX: &str = "..link_tmp.";

/// Most foreign names an error lists (a reused directory may hold thousands).
const MAX_NAMED: usize = 3;

/// What one entry of a target directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The `..data` symlink.
    DataLink,
    /// A version directory `..<timestamp>.<digits>`.
    VersionDir,
    /// A writer's transient link (`..data_tmp`, `..link_tmp.<name>`).
    TempLink,
    /// A top-level symlink into `..data/`.
    UserLink,
    /// Anything a volume writer does not create.
    Foreign,
}

impl Entry {
    /// True for everything a volume writer creates.
    pub fn is_layout(self) -> bool {
        !matches!(self, Entry::Foreign)
    }
}

/// True for `..YYYY_MM_DD_HH_MM_SS.<digits>`, the version directories kubelet's atomic writer
/// (and so the upstream driver's and keyvol's) names.
pub fn is_version_dir_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("..") else {
        return false;
    };
    let Some((stamp, digits)) = rest.split_once('.') else {
        return false;
    };
    let stamp = stamp.as_bytes();
    let stamp_ok = stamp.len() == 19
        && stamp.iter().enumerate().all(|(i, b)| match i {
            4 | 7 | 10 | 13 | 16 => *b == b'_',
            _ => b.is_ascii_digit(),
        });
    stamp_ok && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Classifies the entry `name` of directory `dir` without following symlinks.
pub fn classify(dir: &Path, name: &OsStr) -> io::Result<Entry> {
    let Some(text) = name.to_str() else {
        return Ok(Entry::Foreign);
    };
    let path = dir.join(name);
    let meta = fs::symlink_metadata(&path)?;
    let is_link = meta.file_type().is_symlink();
    let entry = if text == DATA_DIR && is_link {
        Entry::DataLink
    } else if (text == DATA_TMP || text.starts_with(LINK_TMP_PREFIX)) && is_link {
        Entry::TempLink
    } else if is_version_dir_name(text) && meta.is_dir() {
        Entry::VersionDir
    } else if is_link && !text.starts_with("..") && points_into_data(&path, text) {
        Entry::UserLink
    } else {
        Entry::Foreign
    };
    Ok(entry)
}

/// True when the symlink at `path` reads `..data/<name>`.
fn points_into_data(path: &Path, name: &str) -> bool {
    fs::read_link(path).is_ok_and(|t| t == Path::new(DATA_DIR).join(name))
}

/// True when `dir/..data` is a symlink to a version directory that exists: a completed write.
/// A volume without one (a publish killed before its first write finished) is not published.
pub fn has_valid_data(dir: &Path) -> bool {
    let Ok(target) = fs::read_link(dir.join(DATA_DIR)) else {
        return false;
    };
    let Some(name) = target.to_str() else {
        return false;
    };
    is_version_dir_name(name) && fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_dir())
}

/// The names in `dir` that are not layout entries (at most a few, for messages), and whether
/// the directory holds anything at all.
pub fn survey(dir: &Path) -> io::Result<Survey> {
    let mut survey = Survey::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        survey.entries += 1;
        match classify(dir, &entry.file_name()) {
            Ok(kind) if kind.is_layout() => {}
            // Vanished between listing and looking: not there any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound => survey.entries -= 1,
            Err(e) => return Err(e),
            Ok(_) => {
                survey.foreign += 1;
                if survey.foreign_names.len() < MAX_NAMED {
                    survey
                        .foreign_names
                        .push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    survey.published = has_valid_data(dir);
    Ok(survey)
}

/// What a directory holds, as far as volumes are concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    /// Entries of any kind.
    pub entries: usize,
    /// Entries a volume writer does not create.
    pub foreign: usize,
    /// The first few of those, for messages.
    pub foreign_names: Vec<String>,
    /// A completed write is in place (see [`has_valid_data`]).
    pub published: bool,
}

impl Survey {
    /// True when the directory holds nothing but (possibly) a volume's layout.
    pub fn only_layout(&self) -> bool {
        self.foreign == 0
    }
}

/// Removes every layout entry of `dir` and nothing else (never following a symlink; version
/// directories are removed with their contents, which the writer created).
pub fn remove_layout(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        match classify(dir, &entry.file_name()) {
            Ok(Entry::VersionDir) => remove_tree(&path)?,
            Ok(Entry::DataLink | Entry::TempLink | Entry::UserLink) => remove_entry(&path)?,
            Ok(Entry::Foreign) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn remove_entry(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_tree(path: &Path) -> io::Result<()> {
    // `remove_dir_all` does not follow symlinks inside the tree.
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn version_directory_names_follow_kubelets_format() {
        assert!(is_version_dir_name("..2026_11_22_22_14_42.123456789"));
        assert!(is_version_dir_name("..2026_11_22_22_14_42.1"));
        for bad in [
            "..data",
            "..2026-11-22_22_14_42.1",
            "..2026_11_22_22_14_42.",
            "..2026_11_22_22_14_42",
            "..2026_11_22_22_14_42.12a",
            "2026_11_22_22_14_42.1",
            "..my-backup",
        ] {
            assert!(!is_version_dir_name(bad), "{bad}");
        }
    }

    fn layout(dir: &Path) {
        let v = dir.join("..2026_11_22_22_14_42.000000001");
        fs::create_dir(&v).unwrap();
        fs::write(v.join("s1"), "x").unwrap();
        symlink("..2026_11_22_22_14_42.000000001", dir.join(DATA_DIR)).unwrap();
        symlink("..data/s1", dir.join("s1")).unwrap();
    }

    #[test]
    fn a_written_volume_is_all_layout_and_published() {
        let dir = tempfile::tempdir().unwrap();
        layout(dir.path());
        let s = survey(dir.path()).unwrap();
        assert!(s.published && s.only_layout());
        assert_eq!(s.entries, 3);
    }

    #[test]
    fn user_entries_are_foreign_and_survive_layout_removal() {
        let dir = tempfile::tempdir().unwrap();
        layout(dir.path());
        fs::create_dir(dir.path().join("notes")).unwrap();
        fs::create_dir(dir.path().join("..my-backup")).unwrap();
        symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        symlink("..data/elsewhere", dir.path().join("other-name")).unwrap();
        let s = survey(dir.path()).unwrap();
        assert_eq!(s.foreign, 4, "{s:?}");
        remove_layout(dir.path()).unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["..my-backup", "notes", "other-name", "passwd"]);
    }

    #[test]
    fn data_without_a_version_directory_is_not_published() {
        let dir = tempfile::tempdir().unwrap();
        symlink("..2026_11_22_22_14_42.000000001", dir.path().join(DATA_DIR)).unwrap();
        assert!(!has_valid_data(dir.path()));
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("..2026_11_22_22_14_42.000000001")).unwrap();
        let s = survey(dir.path()).unwrap();
        assert!(!s.published && s.only_layout(), "a killed first write");
    }
}
