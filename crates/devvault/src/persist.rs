//! The file-backed store behind `keyvol-dev dev-vault --data DIR`: one redb database file holding
//! every vault (one JSON document per vault) and the dev vault's own keys (CA, token signer).
//!
//! redb was chosen because it is pure Rust (no C toolchain or SQLite), a single file, ACID with
//! crash-safe commits, has a stable file format since 1.0, and runs no background threads. The
//! data is small (a dev vault), so each write rewrites the changed vault's document in one
//! transaction.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "dev-vault.redb";

const VAULTS: TableDefinition<&str, &[u8]> = TableDefinition::new("vaults");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Why the data directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The directory could not be created.
    #[error("failed to create the data directory {path}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// redb failed.
    #[error("failed to use the data store {path}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<redb::Error>,
    },
}

/// An open data store.
pub struct Db {
    db: Database,
    path: PathBuf,
}

impl Db {
    /// Opens (or creates) `DIR/dev-vault.redb`.
    pub fn open(dir: &Path) -> Result<Self, PersistError> {
        std::fs::create_dir_all(dir).map_err(|source| PersistError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let db = Database::create(&path).map_err(|e| PersistError::Db {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        let this = Self { db, path };
        // Create both tables so reads never meet a missing one.
        this.run(|db| {
            let txn = db.begin_write()?;
            txn.open_table(VAULTS)?;
            txn.open_table(META)?;
            txn.commit()?;
            Ok(())
        })?;
        Ok(this)
    }

    fn run<R>(
        &self,
        f: impl FnOnce(&Database) -> Result<R, redb::Error>,
    ) -> Result<R, PersistError> {
        f(&self.db).map_err(|e| PersistError::Db {
            path: self.path.clone(),
            source: Box::new(e),
        })
    }

    /// Every stored vault: name and document.
    pub fn load_vaults(&self) -> Result<Vec<(String, Vec<u8>)>, PersistError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(VAULTS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                out.push((k.value().to_owned(), v.value().to_vec()));
            }
            Ok(out)
        })
    }

    /// Replaces one vault's document.
    pub fn save_vault(&self, name: &str, doc: &[u8]) -> Result<(), PersistError> {
        self.put(VAULTS, name, doc)
    }

    /// A value of the dev vault's own state (CA, signing key).
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, PersistError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(META)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })
    }

    /// Stores a value of the dev vault's own state.
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), PersistError> {
        self.put(META, key, value)
    }

    fn put(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        value: &[u8],
    ) -> Result<(), PersistError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut t = txn.open_table(table)?;
                t.insert(key, value)?;
            }
            txn.commit()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_survive_reopening_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = Db::open(dir.path()).expect("open");
            db.save_vault("kv1", b"{\"a\":1}").expect("save");
            db.save_vault("kv1", b"{\"a\":2}").expect("save again");
            db.set_meta("ca", b"pem").expect("meta");
        }
        let db = Db::open(dir.path()).expect("reopen");
        assert_eq!(
            db.load_vaults().expect("load"),
            vec![("kv1".to_owned(), b"{\"a\":2}".to_vec())]
        );
        assert_eq!(db.meta("ca").expect("meta"), Some(b"pem".to_vec()));
        assert_eq!(db.meta("absent").expect("meta"), None);
    }
}
