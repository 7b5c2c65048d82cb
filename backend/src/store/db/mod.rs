//! One connection type over the two databases the store runs on: the
//! embedded SQLite file (the default) and PostgreSQL (`serve --database
//! postgres://…`, several replicas on one database).
//!
//! The store's statements are written once, in the SQL both accept
//! (`?N` parameters, `ON CONFLICT`, `RETURNING`); for PostgreSQL the
//! parameters are renumbered `$N` when a statement is first prepared on a
//! connection. Where the two differ (SQLite's pragmas and its full-text
//! index, PostgreSQL's locks), the caller asks [`Connection::dialect`].
//!
//! Values cross in SQLite's five storage classes both ways: a parameter is
//! anything `rusqlite` can bind, written to PostgreSQL as the column's type
//! asks; a PostgreSQL column is read back as SQLite would hand it over, so
//! one `FromSql` reads a row from either.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, ValueRef};

mod pg;

pub use pg::Pg;
use pg::{pg_message, pg_value};

/// Which database a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite's error (also "no rows" for both databases).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL's error: its code and message (never its detail, which
    /// may quote a row).
    #[error("{}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    /// A column could not be read as the type asked for.
    #[error("column {0}: {1}")]
    Column(usize, String),
}

impl Error {
    /// The server cannot be reached or dropped the connection: the request
    /// may be tried again once it is back (503).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Postgres(e) => {
                e.is_closed()
                    || e.as_db_error().is_none_or(|d| {
                        // Class 08 (connection exception), 57P01–57P03
                        // (shutting down, cannot connect now).
                        let code = d.code().code();
                        code.starts_with("08") || code.starts_with("57P")
                    })
            }
            _ => false,
        }
    }

    /// Another transaction got in the way (serialization failure or
    /// deadlock): the whole transaction may be run again.
    pub fn is_contention(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            Error::Postgres(e) => e
                .as_db_error()
                .is_some_and(|d| matches!(d.code().code(), "40001" | "40P01" | "55P03")),
            _ => false,
        }
    }
}

/// A statement's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `query_row`'s "no row" as `None`, on either database.
pub trait OptionalExtension<T> {
    /// `Ok(None)` when the query returned no row.
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A statement's parameters: `rusqlite::params![…]`, an array of values,
/// or `()` for none.
pub trait Params {
    /// Each parameter, in order.
    fn refs(&self) -> Vec<&dyn ToSql>;
}

impl Params for () {
    fn refs(&self) -> Vec<&dyn ToSql> {
        Vec::new()
    }
}

impl Params for &[&dyn ToSql] {
    fn refs(&self) -> Vec<&dyn ToSql> {
        self.to_vec()
    }
}

impl<T: ToSql, const N: usize> Params for [T; N] {
    fn refs(&self) -> Vec<&dyn ToSql> {
        self.iter().map(|v| v as &dyn ToSql).collect()
    }
}

impl<T: ToSql> Params for Vec<T> {
    fn refs(&self) -> Vec<&dyn ToSql> {
        self.iter().map(|v| v as &dyn ToSql).collect()
    }
}

/// A connection to the store's database.
pub enum Connection {
    /// The SQLite file.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL session.
    Postgres(Box<Pg>),
}
/// Text kept in a column that also holds bytes (`meta.value`): read from
/// SQLite's TEXT or either database's BLOB/BYTEA.
pub struct MetaText(pub String);

impl FromSql for MetaText {
    fn column_result(v: ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match v {
            ValueRef::Text(b) | ValueRef::Blob(b) => std::str::from_utf8(b)
                .map(|t| MetaText(t.to_owned()))
                .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e))),
            _ => Err(rusqlite::types::FromSqlError::InvalidType),
        }
    }
}

/// One result row, from either database.
pub enum Row<'a> {
    /// SQLite's row.
    Sqlite(&'a rusqlite::Row<'a>),
    /// PostgreSQL's row.
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` as `T`.
    pub fn get<T: FromSql>(&self, i: usize) -> Result<T> {
        match self {
            Row::Sqlite(r) => Ok(r.get(i)?),
            Row::Postgres(r) => {
                let bad = |e: &dyn std::fmt::Display| Error::Column(i, e.to_string());
                let v = pg_value(r, i).map_err(|e| bad(&e))?;
                T::column_result(ValueRef::from(&v)).map_err(|e| bad(&e))
            }
        }
    }
}
impl Connection {
    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        match self {
            Connection::Sqlite(_) => Dialect::Sqlite,
            Connection::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, its
    /// full-text index); `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Connection::Sqlite(c) => Some(c),
            Connection::Postgres(_) => None,
        }
    }

    /// Runs one statement; the rows it changed.
    pub fn execute(&self, sql: &str, p: impl Params) -> Result<usize> {
        match self {
            Connection::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(lite(&p))?),
            Connection::Postgres(pg) => pg.execute(sql, &p),
        }
    }

    /// [`Connection::execute`] (every statement goes through the
    /// connection's statement cache).
    pub fn exec(&self, sql: &str, p: impl Params) -> Result<usize> {
        self.execute(sql, p)
    }

    /// Statements without parameters, separated by `;`.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Connection::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Connection::Postgres(_) => self.batch_value(sql).map(|_| ()),
        }
    }

    /// The first row, read by `f`; "no rows" is an error
    /// ([`OptionalExtension::optional`] makes it `None`).
    pub fn query_row<T>(
        &self,
        sql: &str,
        p: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        match self {
            Connection::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(lite(&p))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(rusqlite::Error::QueryReturnedNoRows.into()),
                }
            }
            Connection::Postgres(pg) => match pg.query(sql, &p)?.first() {
                Some(r) => f(&Row::Postgres(r)),
                None => Err(rusqlite::Error::QueryReturnedNoRows.into()),
            },
        }
    }

    /// [`Connection::query_row`].
    pub fn row<T>(
        &self,
        sql: &str,
        p: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        self.query_row(sql, p, f)
    }

    /// Every row, each read by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        p: impl Params,
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each(sql, p, |r| {
            out.push(f(r)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `f` for each row as it is read, one row in memory at a time,
    /// until it returns `false`. `f` must not use this connection.
    pub fn each(
        &self,
        sql: &str,
        p: impl Params,
        mut f: impl FnMut(&Row) -> Result<bool>,
    ) -> Result<()> {
        match self {
            Connection::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(lite(&p))?;
                while let Some(r) = rows.next()? {
                    if !f(&Row::Sqlite(r))? {
                        break;
                    }
                }
                Ok(())
            }
            Connection::Postgres(pg) => pg.each(sql, &p, &mut |r| f(&Row::Postgres(r))),
        }
    }

    /// Whether the open transaction can no longer commit what it did:
    /// SQLite rolled it back on its own (I/O error, disk full), or a
    /// statement failed on PostgreSQL, which then refuses the rest of it
    /// until it is rolled back (to a savepoint).
    pub fn transaction_lost(&self) -> bool {
        match self {
            Connection::Sqlite(c) => c.is_autocommit(),
            Connection::Postgres(pg) => pg.spoiled.get(),
        }
    }

    /// A PostgreSQL session whose server went away (restarted, failed
    /// over) is replaced by a new one; an error if it cannot be reached.
    pub fn reconnect_if_closed(&mut self) -> Result<()> {
        if let Connection::Postgres(pg) = self
            && pg.is_closed()
        {
            **pg = Pg::connect(&pg.url.clone())?;
        }
        Ok(())
    }

    /// Statements without parameters, in one round trip (PostgreSQL's
    /// simple query): the first column of the last row any of them
    /// returned, as text. On SQLite, [`Connection::execute_batch`] and
    /// `None`.
    pub fn batch_value(&self, sql: &str) -> Result<Option<String>> {
        match self {
            Connection::Sqlite(c) => {
                c.execute_batch(sql)?;
                Ok(None)
            }
            Connection::Postgres(pg) => {
                let out = pg
                    .client
                    .borrow_mut()
                    .simple_query(sql)
                    .map_err(Error::from);
                let last = pg.track(sql, out)?.into_iter().rev().find_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                    _ => None,
                });
                Ok(last)
            }
        }
    }

    /// Rows changed by this connection so far.
    pub fn total_changes(&self) -> u64 {
        match self {
            Connection::Sqlite(c) => c.total_changes(),
            Connection::Postgres(pg) => pg.changes.get(),
        }
    }

    /// Sets a SQLite pragma; nothing on PostgreSQL.
    pub fn pragma_update(&self, name: &str, value: &str) -> Result<()> {
        if let Connection::Sqlite(c) = self {
            c.pragma_update(None, name, value)?;
        }
        Ok(())
    }
}

fn lite(p: &dyn Params) -> rusqlite::ParamsFromIter<Vec<&dyn ToSql>> {
    rusqlite::params_from_iter(p.refs())
}
