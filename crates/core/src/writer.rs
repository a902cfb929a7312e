//! The atomic writer: projects a set of files into a volume the way kubelet does, so readers
//! always see one complete version.
//!
//! Layout of a target directory after a write:
//!
//! ```text
//! target/
//!   ..2026_11_22_22_14_42.123456789/   the current version (a hidden, timestamped directory)
//!     db-password
//!     tls/cert.pem
//!   ..data -> ..2026_11_22_22_14_42.123456789
//!   db-password -> ..data/db-password
//!   tls -> ..data/tls
//! ```
//!
//! A write builds the new version in a fresh hidden directory, then swaps `..data` with one
//! `rename(2)`, then adds and removes the user-visible links and deletes the old version. A reader
//! that opens `target/db-password` resolves it through `..data` once, so it sees either the old
//! or the new version, never a mix. Every path is a [`RelPath`] joined onto a directory this
//! writer created, so nothing can land outside the target.
//!
//! The writer only ever replaces or removes what a volume writer made ([`crate::layout`]): a
//! user's `notes/` or `..backup` in a reused directory stays, and a payload that needs a name a
//! user entry already holds is refused before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rand::Rng;
use rustix::fs::{Mode, OFlags};

use crate::layout::{self, DATA_TMP, Entry, LINK_TMP_PREFIX};
use crate::provider::ProviderFile;
use crate::relpath::RelPath;

pub use crate::layout::DATA_DIR;
/// Mode of the version directory and of directories created for nested paths: readable by any
/// user of the pod, writable by no one but root.
const DIR_MODE: u32 = 0o755;
/// Highest permission bits a file may ask for: no setuid, setgid or sticky bits on secrets.
const MAX_FILE_MODE: u32 = 0o777;
/// Largest file [`AtomicWriter::read_current`] reads back (the default cap of one gRPC message,
/// far above any Key Vault object).
pub const MAX_READ_BACK_BYTES: u64 = 4 * 1024 * 1024;

/// Why a write failed. The target keeps its previous version in every case but `Link`.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The target directory does not exist, is not a directory, or is a symlink.
    #[error("failed to write files: target {path} is not a directory")]
    TargetNotDir {
        /// The target.
        path: PathBuf,
    },
    /// Two files share a path, or one file's path is a directory of another.
    #[error("failed to write files: path {path} is given twice or is both a file and a directory")]
    Conflict {
        /// The conflicting path.
        path: String,
    },
    /// The target already holds an entry of that name that no volume writer made; it is left
    /// alone and nothing is written.
    #[error("failed to write files: {path} already holds an entry keyvol did not write")]
    Occupied {
        /// The occupied entry.
        path: PathBuf,
    },
    /// A file asks for bits beyond 0777.
    #[error("failed to write files: mode {mode:o} of {path} is not a permission mode (0000-0777)")]
    Mode {
        /// The file.
        path: String,
        /// The mode asked for.
        mode: u32,
    },
    /// Building the new version failed; the old version is untouched.
    #[error("failed to write {path}")]
    Io {
        /// What was being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The new version is in place but a user-visible link could not be updated.
    #[error("failed to update link {path}")]
    Link {
        /// The link.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Every file already had these bytes and modes; nothing was touched.
    #[default]
    Unchanged,
    /// A new version directory was swapped in.
    Written {
        /// Name of the new version directory.
        version_dir: String,
    },
}

/// Group permission bit every file gets when the volume has a mount group: the group can read.
const GROUP_READ: u32 = 0o040;

/// Writes payloads into one target directory.
#[derive(Debug, Clone)]
pub struct AtomicWriter {
    target: PathBuf,
    /// Group that owns everything written (the pod's fsGroup), if any.
    group: Option<u32>,
}

impl AtomicWriter {
    /// A writer for `target`, which must already exist.
    pub fn new(target: impl Into<PathBuf>) -> Self {
        Self {
            target: target.into(),
            group: None,
        }
    }

    /// Makes every file, directory and link written group-owned by `gid` (and the target
    /// directory too), with files group-readable on top of their own mode — so a pod running
    /// as a non-root user in that group (its `fsGroup`) can read them. World bits stay as each
    /// file's mode says.
    pub fn with_group(mut self, gid: Option<u32>) -> Self {
        self.group = gid;
        self
    }

    /// The mode a file of `mode` gets.
    fn file_mode(&self, mode: u32) -> u32 {
        match self.group {
            Some(_) => mode | GROUP_READ,
            None => mode,
        }
    }

    /// The target directory.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Validates the whole payload, then swaps it in atomically.
    pub fn write(&self, files: &[ProviderFile]) -> Result<WriteOutcome, WriteError> {
        validate(files)?;
        match fs::symlink_metadata(&self.target) {
            Ok(m) if m.is_dir() => {}
            _ => {
                return Err(WriteError::TargetNotDir {
                    path: self.target.clone(),
                });
            }
        }
        let wanted: BTreeSet<&str> = files.iter().map(|f| f.path.first_element()).collect();
        // An empty target (a fresh tmpfs: every first publish) holds nothing to check, compare,
        // replace or clean up, so the write is its files and links alone.
        let fresh = is_empty_dir(&self.target).map_err(|source| WriteError::Io {
            path: self.target.clone(),
            source,
        })?;
        if !fresh {
            self.check_names(&wanted)?;
            let current = fs::read_link(self.target.join(DATA_DIR)).ok();
            if let Some(current) = &current {
                let dir = self.target.join(current);
                if same_content(&dir, files, |m| self.file_mode(m), self.group) {
                    return Ok(WriteOutcome::Unchanged);
                }
            }
        }

        self.own_target()?;
        let (version_dir, version_path) = self.create_version_dir()?;
        if let Err(e) = self.write_payload(&version_path, files) {
            let _ = fs::remove_dir_all(&version_path);
            return Err(e);
        }
        if let Err(e) = self.swap_data_link(&version_dir) {
            let _ = fs::remove_dir_all(&version_path);
            return Err(e);
        }

        for name in &wanted {
            if fresh {
                self.create_user_link(name)?;
            } else {
                self.ensure_user_link(name)?;
            }
        }
        if !fresh {
            self.remove_stale(&wanted, &version_dir)?;
        }
        Ok(WriteOutcome::Written { version_dir })
    }

    /// The files of the current version, relative paths to contents. Empty when nothing was
    /// written. Each file is read with a cap ([`MAX_READ_BACK_BYTES`]); a larger one (or
    /// anything but a regular file) fails the read with an error naming it.
    pub fn read_current(&self) -> io::Result<BTreeMap<String, Vec<u8>>> {
        let mut out = BTreeMap::new();
        let Ok(current) = fs::read_link(self.target.join(DATA_DIR)) else {
            return Ok(out);
        };
        let root = self.target.join(current);
        for (rel, _mode) in list_files(&root)? {
            let bytes =
                crate::bounded::read(&root.join(&rel), MAX_READ_BACK_BYTES).map_err(|e| {
                    let kind = match &e {
                        crate::bounded::BoundedReadError::Io { source, .. } => source.kind(),
                        _ => io::ErrorKind::InvalidData,
                    };
                    io::Error::new(kind, e)
                })?;
            out.insert(rel, bytes);
        }
        Ok(out)
    }

    /// Gives the target directory to the mount group (the tmpfs root, so the group can list it).
    fn own_target(&self) -> Result<(), WriteError> {
        if self.group.is_some() {
            self.chown(&self.target).map_err(|source| WriteError::Io {
                path: self.target.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Sets the mount group on `path` (never following a symlink there). Nothing without one.
    fn chown(&self, path: &Path) -> io::Result<()> {
        match self.group {
            Some(gid) => std::os::unix::fs::lchown(path, None, Some(gid)),
            None => Ok(()),
        }
    }

    fn write_payload(&self, root: &Path, files: &[ProviderFile]) -> Result<(), WriteError> {
        // Files at the top of the version directory (nearly all) are created relative to it,
        // opened once, rather than by walking the whole target path again for every file.
        let root_dir = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| WriteError::Io {
            path: root.to_path_buf(),
            source: e.into(),
        })?;
        let create =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        for f in files {
            let path = f.path.join_onto(root);
            let io_err = |source| WriteError::Io {
                path: path.clone(),
                source,
            };
            let nested = path.parent().is_some_and(|parent| parent != root);
            if let Some(parent) = path.parent()
                && nested
            {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(parent)
                    .map_err(io_err)?;
                // Every directory between the version root and the file belongs to the group.
                let mut dir = parent;
                while dir != root {
                    self.chown(dir).map_err(io_err)?;
                    set_mode(dir, DIR_MODE).map_err(io_err)?;
                    match dir.parent() {
                        Some(p) => dir = p,
                        None => break,
                    }
                }
            }
            let fd = if nested {
                rustix::fs::open(&path, create, Mode::from_raw_mode(0o600))
            } else {
                rustix::fs::openat(
                    &root_dir,
                    f.path.first_element(),
                    create,
                    Mode::from_raw_mode(0o600),
                )
            }
            .map_err(|e| io_err(e.into()))?;
            let mut file = fs::File::from(fd);
            file.write_all(f.contents.expose()).map_err(io_err)?;
            self.chown(&path).map_err(io_err)?;
            // Set the mode explicitly so the process umask does not change what the request
            // asked for.
            file.set_permissions(fs::Permissions::from_mode(self.file_mode(f.mode)))
                .map_err(io_err)?;
            // No fsync: volumes are memory-backed (a tmpfs has nothing to sync, and its content
            // does not outlive the node), and readers only ever reach the files through the
            // `..data` link swapped in after every file is complete.
        }
        Ok(())
    }

    /// Refuses a payload whose top-level names (or `..data` itself) are held by entries no
    /// volume writer made, before anything is written.
    fn check_names(&self, wanted: &BTreeSet<&str>) -> Result<(), WriteError> {
        for name in wanted.iter().copied().chain([DATA_DIR]) {
            let kind = match layout::classify(&self.target, name.as_ref()) {
                Ok(kind) => kind,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(WriteError::Io {
                        path: self.target.join(name),
                        source,
                    });
                }
            };
            let expected = if name == DATA_DIR {
                Entry::DataLink
            } else {
                Entry::UserLink
            };
            if kind != expected {
                return Err(WriteError::Occupied {
                    path: self.target.join(name),
                });
            }
        }
        Ok(())
    }

    fn create_version_dir(&self) -> Result<(String, PathBuf), WriteError> {
        let stamp = timestamp();
        let mut rng = rand::rng();
        loop {
            let name = format!("..{stamp}.{:09}", rng.random_range(0..1_000_000_000u32));
            let path = self.target.join(&name);
            match fs::DirBuilder::new().mode(DIR_MODE).create(&path) {
                Ok(()) => {
                    set_mode(&path, DIR_MODE)
                        .and_then(|()| self.chown(&path))
                        .map_err(|source| WriteError::Io {
                            path: path.clone(),
                            source,
                        })?;
                    return Ok((name, path));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(WriteError::Io { path, source }),
            }
        }
    }

    fn swap_data_link(&self, version_dir: &str) -> Result<(), WriteError> {
        let tmp = self.target.join(DATA_TMP);
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(version_dir, &tmp)
            .and_then(|()| self.chown(&tmp))
            .map_err(|source| WriteError::Io {
                path: tmp.clone(),
                source,
            })?;
        fs::rename(&tmp, self.target.join(DATA_DIR)).map_err(|source| {
            let _ = fs::remove_file(&tmp);
            WriteError::Io {
                path: self.target.join(DATA_DIR),
                source,
            }
        })
    }

    /// Creates `target/<name>` as a symlink to `..data/<name>` in a target that was empty when
    /// the write began. Whatever appeared at the name since is left alone and refused.
    fn create_user_link(&self, name: &str) -> Result<(), WriteError> {
        let link = self.target.join(name);
        match std::os::unix::fs::symlink(Path::new(DATA_DIR).join(name), &link) {
            Ok(()) => self.chown(&link).map_err(|source| WriteError::Link {
                path: link.clone(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(WriteError::Occupied { path: link })
            }
            Err(source) => Err(WriteError::Link { path: link, source }),
        }
    }

    /// Makes `target/<name>` a symlink to `..data/<name>`. [`Self::check_names`] made sure the
    /// name is free or already such a link.
    fn ensure_user_link(&self, name: &str) -> Result<(), WriteError> {
        let link = self.target.join(name);
        let want = Path::new(DATA_DIR).join(name);
        let link_err = |source| WriteError::Link {
            path: link.clone(),
            source,
        };
        if fs::read_link(&link).is_ok_and(|t| t == want) {
            return self.chown(&link).map_err(link_err);
        }
        // Build the link beside its final name and rename it into place, so the name never dangles.
        let tmp = self.target.join(format!("{LINK_TMP_PREFIX}{name}"));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&want, &tmp)
            .and_then(|()| self.chown(&tmp))
            .map_err(link_err)?;
        fs::rename(&tmp, &link).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            link_err(e)
        })
    }

    /// Removes the volume's own leftovers: links no longer in the payload, transient links, and
    /// every version directory but the current one. Entries no volume writer made stay.
    fn remove_stale(&self, wanted: &BTreeSet<&str>, version_dir: &str) -> Result<(), WriteError> {
        let entries = fs::read_dir(&self.target).map_err(|source| WriteError::Io {
            path: self.target.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let path = entry.path();
            let Ok(kind) = layout::classify(&self.target, &name) else {
                continue;
            };
            let stale = match kind {
                Entry::VersionDir => name.to_str() != Some(version_dir),
                Entry::TempLink => true,
                Entry::UserLink => name.to_str().is_some_and(|n| !wanted.contains(n)),
                Entry::DataLink | Entry::Foreign => false,
            };
            if !stale {
                continue;
            }
            let removed = if kind == Entry::VersionDir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(WriteError::Link { path, source }),
            }
        }
        Ok(())
    }
}

/// True when `dir` has no entries.
fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(dir)?.next().is_none())
}

fn validate(files: &[ProviderFile]) -> Result<(), WriteError> {
    let mut seen: BTreeSet<&RelPath> = BTreeSet::new();
    for f in files {
        if f.mode > MAX_FILE_MODE {
            return Err(WriteError::Mode {
                path: f.path.to_string(),
                mode: f.mode,
            });
        }
        if !seen.insert(&f.path) {
            return Err(WriteError::Conflict {
                path: f.path.to_string(),
            });
        }
    }
    // A path that is a directory prefix of another path would need to be both a file and a dir.
    for f in files {
        let mut prefix = String::new();
        for element in f.path.elements() {
            if !prefix.is_empty() {
                if let Ok(p) = RelPath::new(&prefix)
                    && seen.contains(&p)
                {
                    return Err(WriteError::Conflict { path: prefix });
                }
                prefix.push('/');
            }
            prefix.push_str(element);
        }
    }
    Ok(())
}

/// True when `dir` holds exactly these files with these bytes, modes (as `mode_of` maps them)
/// and, when one is asked for, group.
fn same_content(
    dir: &Path,
    files: &[ProviderFile],
    mode_of: impl Fn(u32) -> u32,
    group: Option<u32>,
) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(existing) = list_files(dir) else {
        return false;
    };
    if existing.len() != files.len() {
        return false;
    }
    files.iter().all(|f| {
        let path = f.path.join_onto(dir);
        existing.get(f.path.as_str()) == Some(&mode_of(f.mode))
            && group.is_none_or(|gid| fs::symlink_metadata(&path).is_ok_and(|m| m.gid() == gid))
            && fs::read(&path)
                .map(|b| b == *f.contents.expose())
                .unwrap_or(false)
    })
}

/// Regular files under `root`, relative path to permission bits. Symlinks are not followed.
fn list_files(root: &Path) -> io::Result<BTreeMap<String, u32>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                stack.push((entry.path(), rel));
            } else if meta.is_file() {
                out.insert(rel, meta.permissions().mode() & 0o7777);
            }
        }
    }
    Ok(out)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// `2026_11_22_22_14_42`, the kubelet's timestamp format for version directories (UTC).
fn timestamp() -> String {
    let s = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    s.trim_end_matches('Z').replace(['-', 'T', ':'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensitive::Sensitive;

    /// Measurement, not a check: `cargo test --release -p keyvol-core --lib
    /// first_write_cost -- --ignored --nocapture` prints the time of a first write of ten files
    /// (what every first publish does), into fresh directories on the machine's /dev/shm tmpfs.
    #[test]
    #[ignore = "measurement; prints numbers"]
    fn first_write_cost() {
        let files: Vec<ProviderFile> = (0..10)
            .map(|i| {
                file(
                    &format!("obj-{i:03}"),
                    0o644,
                    "value-of-an-object-64-bytes-long",
                )
            })
            .collect();
        let base = tempfile::tempdir_in("/dev/shm").expect("tempdir");
        let mut took = Vec::new();
        for round in 0..500 {
            let dir = base.path().join(format!("v{round}"));
            fs::create_dir(&dir).expect("dir");
            let started = std::time::Instant::now();
            AtomicWriter::new(&dir).write(&files).expect("write");
            took.push(started.elapsed());
        }
        took.sort();
        println!(
            "first write of 10 files: p50 {:?}, p90 {:?}",
            took[250], took[450]
        );
    }

    fn file(path: &str, mode: u32, contents: &str) -> ProviderFile {
        ProviderFile {
            path: RelPath::new(path).expect("valid path"),
            mode,
            contents: Sensitive::new(contents.as_bytes().to_vec()),
        }
    }

    fn names(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn first_write_builds_the_kubelet_layout() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = AtomicWriter::new(tmp.path());
        let out = w
            .write(&[file("a", 0o644, "A"), file("dir/b", 0o400, "B")])
            .expect("write");
        let WriteOutcome::Written { version_dir } = out else {
            panic!("expected a write")
        };
        assert!(version_dir.starts_with("..20"), "{version_dir}");
        let names = names(tmp.path());
        assert_eq!(
            names,
            BTreeSet::from([
                "..data".into(),
                "a".into(),
                "dir".into(),
                version_dir.clone()
            ])
        );
        assert_eq!(
            fs::read_link(tmp.path().join("..data")).expect("link"),
            PathBuf::from(&version_dir)
        );
        assert_eq!(
            fs::read_link(tmp.path().join("a")).expect("link"),
            PathBuf::from("..data/a")
        );
        assert_eq!(
            fs::read_link(tmp.path().join("dir")).expect("link"),
            PathBuf::from("..data/dir")
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("dir/b")).expect("read"),
            "B"
        );
        let mode = fs::metadata(tmp.path().join("dir/b"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o400);
    }

    #[test]
    fn identical_payload_is_not_rewritten() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = AtomicWriter::new(tmp.path());
        w.write(&[file("a", 0o644, "A")]).expect("write");
        assert_eq!(
            w.write(&[file("a", 0o644, "A")]).expect("write"),
            WriteOutcome::Unchanged
        );
        assert!(matches!(
            w.write(&[file("a", 0o600, "A")]).expect("write"),
            WriteOutcome::Written { .. }
        ));
    }

    #[test]
    fn second_write_swaps_and_removes_stale_entries() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = AtomicWriter::new(tmp.path());
        w.write(&[file("a", 0o644, "A1"), file("gone", 0o644, "G")])
            .expect("write");
        let out = w
            .write(&[file("a", 0o644, "A2"), file("new/x", 0o644, "X")])
            .expect("write");
        let WriteOutcome::Written { version_dir } = out else {
            panic!("expected a write")
        };
        assert_eq!(
            names(tmp.path()),
            BTreeSet::from(["..data".into(), "a".into(), "new".into(), version_dir])
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("a")).expect("read"),
            "A2"
        );
        assert_eq!(w.read_current().expect("read").len(), 2);
    }

    #[test]
    fn reading_the_volume_back_is_capped_and_names_the_file_not_its_bytes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = AtomicWriter::new(tmp.path());
        w.write(&[file("small", 0o644, "S"), file("big", 0o644, "B")])
            .expect("write");
        let big = tmp.path().join("..data").join("big");
        // Grown past the cap behind the writer's back (the volume is keyvol's; this is the
        // guard, not a path the writer takes).
        fs::remove_file(&big).expect("remove");
        let bytes = vec![b'Z'; usize::try_from(MAX_READ_BACK_BYTES).expect("size") + 1];
        fs::write(&big, &bytes).expect("grow");
        let err = w.read_current().expect_err("over the cap");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let text = err.to_string();
        assert!(
            text.contains("big") && text.contains("larger than"),
            "{text}"
        );
        assert!(!text.contains("ZZZ"), "no file content in the error");
    }

    #[test]
    fn a_user_entry_at_a_wanted_name_is_refused_and_kept() {
        // Issue 13: a reused directory's `s1/notes.txt` used to be replaced by keyvol's link.
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::create_dir(tmp.path().join("s1")).expect("mkdir");
        fs::write(tmp.path().join("s1/notes.txt"), "mine").expect("seed");
        fs::write(tmp.path().join("plain"), "old").expect("seed");
        for name in ["s1", "plain"] {
            let err = AtomicWriter::new(tmp.path())
                .write(&[file(name, 0o644, "new")])
                .expect_err("occupied");
            assert!(matches!(err, WriteError::Occupied { .. }), "{err:?}");
        }
        assert_eq!(
            fs::read_to_string(tmp.path().join("s1/notes.txt")).expect("kept"),
            "mine"
        );
        assert_eq!(
            names(tmp.path()),
            BTreeSet::from(["plain".into(), "s1".into()])
        );
    }

    #[test]
    fn user_entries_beside_the_volume_survive_every_write() {
        // Issue 13: every `..*` directory used to be removed.
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::create_dir(tmp.path().join("..backup")).expect("mkdir");
        fs::write(tmp.path().join("notes.txt"), "mine").expect("seed");
        let w = AtomicWriter::new(tmp.path());
        w.write(&[file("a", 0o644, "1")]).expect("first");
        w.write(&[file("b", 0o644, "2")]).expect("second");
        let left = names(tmp.path());
        assert!(
            left.contains("..backup") && left.contains("notes.txt"),
            "{left:?}"
        );
        assert!(!left.contains("a") && left.contains("b"), "{left:?}");
    }

    #[test]
    fn conflicts_and_bad_modes_are_rejected_before_anything_is_written() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let w = AtomicWriter::new(tmp.path());
        assert!(matches!(
            w.write(&[file("a", 0o644, "1"), file("a", 0o644, "2")]),
            Err(WriteError::Conflict { .. })
        ));
        assert!(matches!(
            w.write(&[file("a", 0o644, "1"), file("a/b", 0o644, "2")]),
            Err(WriteError::Conflict { .. })
        ));
        assert!(matches!(
            w.write(&[file("a", 0o4755, "1")]),
            Err(WriteError::Mode { .. })
        ));
        assert!(names(tmp.path()).is_empty());
    }

    #[test]
    fn a_symlink_planted_at_a_top_level_name_is_refused_not_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("a")).expect("plant");
        let err = AtomicWriter::new(tmp.path())
            .write(&[file("a/x", 0o644, "X")])
            .expect_err("occupied");
        assert!(matches!(err, WriteError::Occupied { .. }), "{err:?}");
        assert!(
            names(outside.path()).is_empty(),
            "nothing may land outside the target"
        );
        assert!(
            fs::symlink_metadata(tmp.path().join("a")).is_ok(),
            "left alone"
        );
    }
}
