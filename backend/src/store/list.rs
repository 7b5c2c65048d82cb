//! Listing a namespace's secrets, live or soft-deleted, one record at a
//! time (`Store::LIST_SQL`, `Store::LIST_DELETED_SQL`).

use super::secrets::secret_from_row;
use super::{Result, SecretRecord, Store};
use rusqlite::params;

impl Store {
    /// The live secrets of `ns`, by name.
    pub fn list(&self, ns: &str) -> Result<Vec<SecretRecord>> {
        let mut out = Vec::new();
        self.list_each(ns, |rec| out.push(rec))?;
        Ok(out)
    }

    /// [`Store::list`], each record handed to `each` as it is read (none
    /// is kept).
    pub fn list_each(&self, ns: &str, each: impl FnMut(SecretRecord)) -> Result<()> {
        self.list_each_of(ns, false, each)
    }

    /// [`Store::list_each`] of the live secrets, or (`deleted`) of the
    /// soft-deleted ones.
    pub fn list_each_of(
        &self,
        ns: &str,
        deleted: bool,
        mut each: impl FnMut(SecretRecord),
    ) -> Result<()> {
        let sql = if deleted {
            Self::LIST_DELETED_SQL
        } else {
            Self::LIST_SQL
        };
        self.read(|c| {
            c.each(sql, params![ns], |r| {
                each(secret_from_row(r)?);
                Ok(true)
            })?;
            Ok(())
        })
    }
}
