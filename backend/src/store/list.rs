//! Listing a namespace's secrets, live or soft-deleted, one record at a
//! time (`Store::LIST_SQL`, `Store::LIST_DELETED_SQL`).

use super::db::PackedRows;
use super::secrets::{SECRET_COLUMNS, secret_from_row};
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
        let sql = Self::list_sql(deleted);
        self.read(|c| {
            c.each(sql, params![ns], |r| {
                each(secret_from_row(r)?);
                Ok(true)
            })?;
            Ok(())
        })
    }

    /// The list's statement: of the live secrets, or the soft-deleted ones.
    fn list_sql(deleted: bool) -> &'static str {
        if deleted {
            Self::LIST_DELETED_SQL
        } else {
            Self::LIST_SQL
        }
    }

    /// [`Store::list_each_of`], the rows handed over as they are read,
    /// `batch` at a time, copied but not decoded: the caller decodes them
    /// ([`secret_records`]) on another thread, so reading the database and
    /// building the records overlap (the secrets list).
    pub fn list_packed(
        &self,
        ns: &str,
        deleted: bool,
        batch: usize,
        mut each: impl FnMut(PackedRows),
    ) -> Result<()> {
        let sql = Self::list_sql(deleted);
        let fresh = || PackedRows::with_capacity(SECRET_COLUMNS, batch);
        self.read(|c| {
            let mut rows = fresh();
            c.each(sql, params![ns], |r| {
                r.pack_into(&mut rows)?;
                if rows.len() == batch {
                    each(std::mem::replace(&mut rows, fresh()));
                }
                Ok(true)
            })?;
            if !rows.is_empty() {
                each(rows);
            }
            Ok(())
        })
    }
}

/// The records of rows read by [`Store::list_packed`].
pub fn secret_records(rows: &PackedRows) -> impl Iterator<Item = Result<SecretRecord>> + '_ {
    (0..rows.len()).map(|i| Ok(secret_from_row(&rows.row(i))?))
}
