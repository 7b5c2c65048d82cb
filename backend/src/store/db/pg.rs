//! The PostgreSQL side of [`super::Connection`]: a session with its
//! prepared statements, SQLite's SQL as PostgreSQL takes it, and values in
//! SQLite's storage classes both ways.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use super::{Error, Params, Result};

pub(super) fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("PostgreSQL {}: {}", d.code().code(), d.message()),
        None => format!("PostgreSQL: {e}"),
    }
}

/// Prepared statements one PostgreSQL session keeps at most.
const MAX_STATEMENTS: usize = 256;

/// A PostgreSQL session with its prepared statements.
pub struct Pg {
    pub(super) url: String,
    pub(super) client: RefCell<postgres::Client>,
    pub(super) statements: RefCell<HashMap<String, postgres::Statement>>,
    /// Rows changed by this session's statements (SQLite's
    /// `total_changes`).
    pub(super) changes: Cell<u64>,
    /// A statement failed since the transaction (or its savepoint) began:
    /// PostgreSQL refuses everything in it until it is rolled back.
    pub(super) spoiled: Cell<bool>,
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
    pub(super) fn track<T>(&self, sql: &str, out: Result<T>) -> Result<T> {
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

    pub(super) fn query(&self, sql: &str, p: &dyn Params) -> Result<Vec<postgres::Row>> {
        self.track(sql, self.query_untracked(sql, p))
    }

    /// Calls `f` for each row as the server sends it (memory: one row at a
    /// time, however many there are), until it returns `false`. `f` must
    /// not use this session.
    pub(super) fn each(
        &self,
        sql: &str,
        p: &dyn Params,
        f: &mut dyn FnMut(&postgres::Row) -> Result<bool>,
    ) -> Result<()> {
        let out = (|| {
            use postgres::fallible_iterator::FallibleIterator as _;
            let st = self.statement(sql)?;
            let args = pg_args(p)?;
            let mut client = self.client.borrow_mut();
            let mut rows = client.query_raw(&st, args.iter())?;
            while let Some(r) = rows.next()? {
                if !f(&r)? {
                    break;
                }
            }
            Ok(())
        })();
        self.track(sql, out)
    }

    pub(super) fn query_untracked(&self, sql: &str, p: &dyn Params) -> Result<Vec<postgres::Row>> {
        let st = self.statement(sql)?;
        let args = pg_args(p)?;
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        Ok(self.client.borrow_mut().query(&st, &refs)?)
    }

    pub(super) fn execute(&self, sql: &str, p: &dyn Params) -> Result<usize> {
        self.track(sql, self.execute_untracked(sql, p))
    }

    pub(super) fn execute_untracked(&self, sql: &str, p: &dyn Params) -> Result<usize> {
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

/// Column `i` of a PostgreSQL row in SQLite's storage classes.
pub(super) fn pg_value(r: &postgres::Row, i: usize) -> Result<Value> {
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
