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

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use rusqlite::ToSql;
use rusqlite::types::{FromSql, ToSqlOutput, Value, ValueRef};

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

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("PostgreSQL {}: {}", d.code().code(), d.message()),
        None => format!("PostgreSQL: {e}"),
    }
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

/// Prepared statements one PostgreSQL session keeps at most.
const MAX_STATEMENTS: usize = 256;

/// A PostgreSQL session with its prepared statements.
pub struct Pg {
    url: String,
    client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    /// Rows changed by this session's statements (SQLite's
    /// `total_changes`).
    changes: Cell<u64>,
    /// A statement failed since the transaction (or its savepoint) began:
    /// PostgreSQL refuses everything in it until it is rolled back.
    spoiled: Cell<bool>,
}

impl Pg {
    /// Connects to `url` (a `postgres://` URL or a key=value string).
    pub fn connect(url: &str) -> Result<Self> {
        let mut config: postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        config.keepalives(true);
        if config.get_application_name().is_none() {
            config.application_name("kube-dc-backend");
        }
        let client = config.connect(postgres::NoTls)?;
        Ok(Pg {
            url: url.to_owned(),
            client: RefCell::new(client),
            statements: RefCell::default(),
            changes: Cell::new(0),
            spoiled: Cell::new(false),
        })
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement> {
        if let Some(st) = self.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.borrow_mut().prepare(&to_postgres(sql))?;
        let mut cache = self.statements.borrow_mut();
        // Statements made from values (an `IN` list of actor ids) would
        // otherwise pile up on the server for as long as the session lives.
        if cache.len() >= MAX_STATEMENTS {
            cache.clear();
        }
        cache.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    /// Notes a failed statement (the transaction is spoiled until rolled
    /// back), or a statement that ends one or rolls back to a savepoint.
    fn track<T>(&self, sql: &str, out: Result<T>) -> Result<T> {
        match &out {
            Err(_) => self.spoiled.set(true),
            Ok(_) => {
                let head = sql.trim_start();
                if ["BEGIN", "COMMIT", "ROLLBACK"]
                    .iter()
                    .any(|w| head.len() >= w.len() && head[..w.len()].eq_ignore_ascii_case(w))
                {
                    self.spoiled.set(false);
                }
            }
        }
        out
    }

    fn query(&self, sql: &str, p: &dyn Params) -> Result<Vec<postgres::Row>> {
        self.track(sql, self.query_untracked(sql, p))
    }

    fn query_untracked(&self, sql: &str, p: &dyn Params) -> Result<Vec<postgres::Row>> {
        let st = self.statement(sql)?;
        let args = pg_args(p)?;
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        Ok(self.client.borrow_mut().query(&st, &refs)?)
    }

    fn execute(&self, sql: &str, p: &dyn Params) -> Result<usize> {
        self.track(sql, self.execute_untracked(sql, p))
    }

    fn execute_untracked(&self, sql: &str, p: &dyn Params) -> Result<usize> {
        let st = self.statement(sql)?;
        let args = pg_args(p)?;
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        let n = self.client.borrow_mut().execute(&st, &refs)?;
        self.changes.set(self.changes.get() + n);
        Ok(n as usize)
    }

    /// Whether the session's connection is gone.
    pub fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }
}

/// A statement as PostgreSQL takes it: parameters renumbered
/// ([`numbered`]) and SQLite's index hints (`INDEXED BY name`) left out
/// (PostgreSQL's planner picks its own).
pub(crate) fn to_postgres(sql: &str) -> String {
    let mut out = numbered(sql);
    while let Some(at) = out.find("INDEXED BY ") {
        let rest = &out[at + "INDEXED BY ".len()..];
        let name = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        out.replace_range(at..at + "INDEXED BY ".len() + name, "");
    }
    out
}

/// SQLite's parameters (`?N`, `?`) as PostgreSQL's (`$N`), outside quoted
/// text.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut highest = 0u32;
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = digits.parse().unwrap_or(highest + 1);
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// A borrowed parameter, owned; text that is not UTF-8 is refused, never
/// altered.
fn owned(r: ValueRef<'_>) -> Result<Value> {
    Ok(match r {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|e| Error::Column(0, format!("a text parameter is not UTF-8: {e}")))?
                .to_owned(),
        ),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

/// One parameter as PostgreSQL is to receive it.
#[derive(Debug)]
struct PgArg(Value);

fn pg_args(p: &dyn Params) -> Result<Vec<PgArg>> {
    p.refs()
        .into_iter()
        .map(|v| {
            Ok(PgArg(match v.to_sql()? {
                ToSqlOutput::Borrowed(r) => owned(r)?,
                ToSqlOutput::Owned(v) => v,
                other => return Err(Error::Column(0, format!("cannot send {other:?}"))),
            }))
        })
        .collect()
}

impl postgres::types::ToSql for PgArg {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use postgres::types::{IsNull, Type};
        fn put<T: postgres::types::ToSql>(
            v: T,
            ty: &Type,
            out: &mut bytes::BytesMut,
        ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            v.to_sql(ty, out)
        }
        let wrong = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("cannot send {:?} as {ty}", self.0).into()
        };
        match (&self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(n), &Type::INT8) => put(n, ty, out),
            (Value::Integer(n), &Type::INT4) => {
                put(i32::try_from(*n).map_err(|_| wrong())?, ty, out)
            }
            (Value::Integer(n), &Type::INT2) => {
                put(i16::try_from(*n).map_err(|_| wrong())?, ty, out)
            }
            (Value::Integer(n), &Type::BOOL) => put(*n != 0, ty, out),
            (Value::Integer(n), &Type::FLOAT8) => put(*n as f64, ty, out),
            (Value::Integer(n), &Type::TEXT | &Type::VARCHAR) => put(n.to_string(), ty, out),
            (Value::Real(f), &Type::FLOAT8) => put(f, ty, out),
            (Value::Real(f), &Type::FLOAT4) => put(*f as f32, ty, out),
            (Value::Text(t), &Type::TEXT | &Type::VARCHAR | &Type::NAME | &Type::BPCHAR) => {
                put(t.as_str(), ty, out)
            }
            (Value::Text(t), &Type::BYTEA) => put(t.as_bytes(), ty, out),
            (Value::Blob(b), &Type::BYTEA) => put(b.as_slice(), ty, out),
            _ => Err(wrong()),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
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

/// Column `i` of a PostgreSQL row in SQLite's storage classes.
fn pg_value(r: &postgres::Row, i: usize) -> Result<Value> {
    use postgres::types::Type;
    let ty = r
        .columns()
        .get(i)
        .ok_or_else(|| Error::Column(i, "no such column".into()))?
        .type_()
        .clone();
    let v = match ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Integer),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)?
            .map(|n| Value::Integer(n.into())),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)?
            .map(|n| Value::Integer(n.into())),
        Type::BOOL => r
            .try_get::<_, Option<bool>>(i)?
            .map(|b| Value::Integer(b.into())),
        Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::FLOAT4 => r
            .try_get::<_, Option<f32>>(i)?
            .map(|f| Value::Real(f.into())),
        Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
        _ => r.try_get::<_, Option<String>>(i)?.map(Value::Text),
    };
    Ok(v.unwrap_or(Value::Null))
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
            Connection::Postgres(pg) => {
                let out = pg
                    .client
                    .borrow_mut()
                    .batch_execute(sql)
                    .map_err(Error::from);
                pg.track(sql, out)
            }
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

    /// Calls `f` for each row as it is read (SQLite) or once all are
    /// fetched (PostgreSQL), until it returns `false`.
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
            Connection::Postgres(pg) => {
                for r in &pg.query(sql, &p)? {
                    if !f(&Row::Postgres(r))? {
                        break;
                    }
                }
                Ok(())
            }
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

#[cfg(test)]
mod tests {
    use super::{numbered, to_postgres};

    #[test]
    fn index_hints_are_left_to_postgres() {
        assert_eq!(
            to_postgres("SELECT seq FROM audit INDEXED BY audit_org_seq WHERE org = ?1"),
            "SELECT seq FROM audit  WHERE org = $1"
        );
    }

    #[test]
    fn parameters_are_renumbered_outside_quotes() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ?2 AND c = ?1 AND d = '?3'"),
            "SELECT a FROM t WHERE b = $2 AND c = $1 AND d = '?3'"
        );
        assert_eq!(
            numbered("x = ?1 AND (y = ? OR z = ?)"),
            "x = $1 AND (y = $2 OR z = $3)"
        );
        assert_eq!(numbered("\"user\" = ?10"), "\"user\" = $10");
    }
}
