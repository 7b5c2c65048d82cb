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
mod pg_sql;

pub use pg::Pg;
use pg::{Later, pg_message, pg_value};

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
    Postgres(#[from] tokio_postgres::Error),
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

/// One result row, from either database, or copied out of one.
pub enum Row<'a> {
    /// SQLite's row.
    Sqlite(&'a rusqlite::Row<'a>),
    /// PostgreSQL's row.
    Postgres(&'a tokio_postgres::Row),
    /// A row of [`PackedRows`].
    Packed(&'a PackedRows, usize),
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
            Row::Packed(p, row) => {
                T::column_result(p.value(*row, i)).map_err(|e| Error::Column(i, e.to_string()))
            }
        }
    }

    /// The columns it has.
    pub fn width(&self) -> usize {
        match self {
            Row::Sqlite(r) => r.as_ref().column_count(),
            Row::Postgres(r) => r.len(),
            Row::Packed(p, _) => p.width,
        }
    }

    /// Appends a copy of this row to `to` (whose rows all have the width
    /// of the first).
    pub fn pack_into(&self, to: &mut PackedRows) -> Result<()> {
        let n = self.width();
        if to.is_empty() {
            to.width = n;
        } else if n != to.width {
            return Err(Error::Column(
                n,
                format!("a row of {} columns was expected", to.width),
            ));
        }
        for i in 0..n {
            match self {
                Row::Sqlite(r) => to.push(r.get_ref(i)?),
                Row::Postgres(r) => {
                    let v = pg_value(r, i).map_err(|e| Error::Column(i, e.to_string()))?;
                    to.push(ValueRef::from(&v));
                }
                Row::Packed(p, row) => to.push(p.value(*row, i)),
            }
        }
        Ok(())
    }
}

/// Rows copied out of the database into one buffer: read on one thread,
/// decoded on another (the secrets list), one allocation for many rows
/// instead of one per text column.
pub struct PackedRows {
    width: usize,
    cells: Vec<Cell>,
    bytes: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(u32, u32),
    Blob(u32, u32),
}

impl PackedRows {
    /// Room for `rows` rows of about `width` columns.
    pub fn with_capacity(width: usize, rows: usize) -> Self {
        Self {
            width: 0,
            cells: Vec::with_capacity(width * rows),
            bytes: Vec::with_capacity(rows * 256),
        }
    }

    /// The rows held.
    pub fn len(&self) -> usize {
        self.cells.len() / self.width.max(1)
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Row `i`, to read as any other.
    pub fn row(&self, i: usize) -> Row<'_> {
        Row::Packed(self, i)
    }

    fn span(&mut self, b: &[u8]) -> (u32, u32) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        // Offsets fit in u32: a batch holds a few hundred rows.
        (start as u32, self.bytes.len() as u32)
    }

    fn push(&mut self, v: ValueRef<'_>) {
        let cell = match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Integer(i),
            ValueRef::Real(f) => Cell::Real(f),
            ValueRef::Text(t) => {
                let (a, b) = self.span(t);
                Cell::Text(a, b)
            }
            ValueRef::Blob(t) => {
                let (a, b) = self.span(t);
                Cell::Blob(a, b)
            }
        };
        self.cells.push(cell);
    }

    fn value(&self, row: usize, col: usize) -> ValueRef<'_> {
        let at = |a: u32, b: u32| &self.bytes[a as usize..b as usize];
        match self.cells[row * self.width + col] {
            Cell::Null => ValueRef::Null,
            Cell::Integer(i) => ValueRef::Integer(i),
            Cell::Real(f) => ValueRef::Real(f),
            Cell::Text(a, b) => ValueRef::Text(at(a, b)),
            Cell::Blob(a, b) => ValueRef::Blob(at(a, b)),
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

    /// A change whose row count nobody needs, inside a transaction. On
    /// PostgreSQL it is sent with the next statement waited for (or the
    /// commit) in one round trip, and should it fail, the whole
    /// transaction is lost ([`Connection::transaction_lost`]), whatever
    /// savepoint is rolled back to. So only a statement that is not
    /// expected to fail is run this way, never one whose failure a caller
    /// handles. On SQLite it runs at once.
    pub fn exec_later(&self, sql: &str, p: impl Params) -> Result<()> {
        match self {
            Connection::Sqlite(_) => self.execute(sql, p).map(|_| ()),
            Connection::Postgres(pg) => pg.execute_later(sql, &p, Later::Change),
        }
    }

    /// An audit event's insert, sent as [`Connection::exec_later`] sends a
    /// change; rows read ahead ([`Connection::prefetch`]) stay, since none
    /// is read from the audit log.
    pub fn append_later(&self, sql: &str, p: impl Params) -> Result<()> {
        match self {
            Connection::Sqlite(_) => self.execute(sql, p).map(|_| ()),
            Connection::Postgres(pg) => pg.execute_later(sql, &p, Later::Append),
        }
    }

    /// Reads ahead, in one round trip, what `queries` will answer (a
    /// batch's reads), for the batch's jobs to find without a round trip
    /// each, until a statement might change them. Nothing on SQLite, which
    /// reads in-process. Only for statements that read nothing from the
    /// audit log ([`Connection::append_later`]).
    pub fn prefetch(&self, queries: &[(&str, Vec<rusqlite::types::Value>)]) -> Result<()> {
        match self {
            Connection::Sqlite(_) => Ok(()),
            Connection::Postgres(pg) => pg.prefetch(queries),
        }
    }

    /// A statement that changes no row (`BEGIN`, `SAVEPOINT`, `RELEASE`, an
    /// advisory lock), sent as [`Connection::exec_later`] sends a change.
    pub fn control_later(&self, sql: &str) -> Result<()> {
        match self {
            Connection::Sqlite(_) => self.execute(sql, ()).map(|_| ()),
            Connection::Postgres(pg) => pg.execute_later(sql, &(), Later::Control),
        }
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
            Connection::Postgres(pg) => pg.transaction_lost(),
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
                let last = pg.simple(sql)?.into_iter().rev().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A packed row reads back as the row it was copied from, in each of
    /// SQLite's storage classes.
    #[test]
    fn packed_rows_read_back_as_read() {
        let c = Connection::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        let sql = "SELECT 1, -9223372036854775808, 2.5, 'héllo \"x\"', x'00ff', NULL, ''
            UNION ALL SELECT 2, 7, -0.0, 'b', x'', 'n', 'e'";
        type Cols = (i64, i64, f64, String, Vec<u8>, Option<String>, String);
        let read = |r: &Row| -> Result<Cols> {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        };
        let direct = c.query_map(sql, (), read).unwrap();
        let mut packed = PackedRows::with_capacity(7, 2);
        c.each(sql, (), |r| {
            r.pack_into(&mut packed)?;
            Ok(true)
        })
        .unwrap();
        assert_eq!(packed.len(), 2);
        let back: Vec<Cols> = (0..packed.len())
            .map(|i| read(&packed.row(i)).unwrap())
            .collect();
        assert_eq!(back, direct);
        assert!(
            packed.row(0).get::<i64>(3).is_err(),
            "text is not an integer"
        );
    }
}
