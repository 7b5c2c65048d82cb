//! The PostgreSQL side of [`super::Connection`]: a session with its
//! prepared statements (their text rewritten by `pg_sql`), and values in
//! SQLite's storage classes both ways.
//!
//! A statement whose answer nobody waits for ([`Pg::execute_later`]: an
//! audit event's insert, a savepoint) is not sent on its own: it goes out
//! with the next statement that is waited for (or the commit), in one
//! round trip (tokio-postgres pipelines requests polled together). Should
//! one of them fail, the transaction is lost as a whole: nothing of it
//! commits, and the statement it went out with reports the error.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;

use futures_util::StreamExt as _;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use super::pg_sql::{multi_row, to_postgres};
use super::{Error, Params, Result};

pub(super) fn pg_message(e: &tokio_postgres::Error) -> String {
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
    /// Drives the session's connection while a statement is waited for.
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    statements: RefCell<HashMap<String, tokio_postgres::Statement>>,
    /// Rows changed by this session's statements (SQLite's
    /// `total_changes`); a statement sent later counts as one now.
    pub(super) changes: Cell<u64>,
    /// A statement failed since the transaction (or its savepoint) began:
    /// PostgreSQL refuses everything in it until it is rolled back.
    spoiled: Cell<bool>,
    /// A statement sent later failed: the transaction cannot commit, even
    /// after a rollback to a savepoint (which may have been made after it).
    lost: Cell<bool>,
    /// Statements to send with the next one waited for.
    later: RefCell<Vec<Held>>,
    /// Rows read ahead for the queries a batch's jobs said they would make
    /// ([`Pg::prefetch`]), by statement and parameters; forgotten at the
    /// first statement that might change them.
    prefetched: RefCell<HashMap<String, Vec<tokio_postgres::Row>>>,
}

/// What a statement held for later does ([`Pg::execute_later`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Later {
    /// It may change any row.
    Change,
    /// It appends to the audit log, which no statement read ahead reads.
    Append,
    /// A statement that changes no row (a transaction's or a savepoint's,
    /// a lock).
    Control,
}

/// A statement held for later.
struct Held {
    statement: tokio_postgres::Statement,
    /// Its text, as the store wrote it (appends of one text are sent as one
    /// insert of many rows).
    sql: String,
    args: Vec<PgArg>,
    what: Later,
}

/// The most rows one insert of held appends carries.
const MAX_ROWS: usize = 256;

/// A statement's key among the rows read ahead.
fn prefetch_key(sql: &str, args: &[PgArg]) -> String {
    format!("{sql}\u{0}{args:?}")
}

impl Pg {
    /// Connects to `url` (a `postgres://` URL or a key=value string).
    pub fn connect(url: &str) -> Result<Self> {
        let mut config: tokio_postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        config.keepalives(true);
        if config.get_application_name().is_none() {
            config.application_name("kube-dc-backend");
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Column(0, format!("cannot start a PostgreSQL session: {e}")))?;
        let (client, connection) = rt.block_on(config.connect(tokio_postgres::NoTls))?;
        // Runs whenever the session waits for an answer; ends (and the
        // client reports itself closed) when the server goes away.
        rt.spawn(async move {
            let _ = connection.await;
        });
        Ok(Pg {
            url: url.to_owned(),
            rt,
            client,
            statements: RefCell::default(),
            changes: Cell::new(0),
            spoiled: Cell::new(false),
            lost: Cell::new(false),
            later: RefCell::default(),
            prefetched: RefCell::default(),
        })
    }

    /// Waits for `fut`, sending the statements held for later first, in
    /// the same round trip. A held statement's failure is the answer, and
    /// loses the transaction.
    fn wait<T>(
        &self,
        fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        let later = self.later.take();
        if later.is_empty() {
            return Ok(self.rt.block_on(fut)?);
        }
        let sends = self.coalesced(later)?;
        let sent = sends
            .iter()
            .map(|(st, args)| self.client.execute_raw(st, args.iter()));
        let (done, out) = self.rt.block_on(futures_util::future::join(
            futures_util::future::join_all(sent),
            fut,
        ));
        if let Some(e) = done.into_iter().find_map(|d| d.err()) {
            self.lost.set(true);
            return Err(e.into());
        }
        Ok(out?)
    }

    /// The held statements as they are sent: each change in order, then
    /// the appends (which nothing held reads) as inserts of many rows each,
    /// in the order they were made — one answer from the server instead of
    /// one per event.
    fn coalesced(&self, later: Vec<Held>) -> Result<Vec<(tokio_postgres::Statement, Vec<PgArg>)>> {
        let (appends, changes): (Vec<Held>, Vec<Held>) =
            later.into_iter().partition(|h| h.what == Later::Append);
        let mut sends: Vec<_> = changes.into_iter().map(|h| (h.statement, h.args)).collect();
        let mut appends = appends.into_iter().peekable();
        while let Some(first) = appends.next() {
            let mut run = vec![first];
            while run.len() < MAX_ROWS && appends.peek().is_some_and(|h| h.sql == run[0].sql) {
                run.extend(appends.next());
            }
            // Rows in groups of a power of two: few statement texts to
            // prepare, whatever the batch's size.
            while !run.is_empty() {
                let n = 1 << run.len().ilog2();
                let group: Vec<Held> = run.drain(..n).collect();
                match (n, multi_row(&group[0].sql, n)) {
                    (2.., Some(sql)) => {
                        let st = self.statement(&sql)?;
                        sends.push((st, group.into_iter().flat_map(|h| h.args).collect()));
                    }
                    _ => sends.extend(group.into_iter().map(|h| (h.statement, h.args))),
                }
            }
        }
        Ok(sends)
    }

    fn statement(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(st) = self.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = self.rt.block_on(self.client.prepare(&to_postgres(sql)))?;
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
                let starts =
                    |w: &str| head.len() >= w.len() && head[..w.len()].eq_ignore_ascii_case(w);
                if ["BEGIN", "COMMIT", "ROLLBACK"].iter().any(|w| starts(w)) {
                    self.spoiled.set(false);
                }
                // Only the whole transaction's end forgets a lost one.
                if ["BEGIN", "COMMIT"].iter().any(|w| starts(w))
                    || (starts("ROLLBACK") && !head.contains(" TO "))
                {
                    self.lost.set(false);
                }
            }
        }
        out
    }

    /// Whether the open transaction can no longer commit.
    pub(super) fn transaction_lost(&self) -> bool {
        self.spoiled.get() || self.lost.get()
    }

    /// Reads ahead, in one round trip (with the statements held for
    /// later), what `queries` answer, for [`Pg::query`] to answer from
    /// until a statement might change it. Only statements that read
    /// nothing [`Later::Append`] writes.
    pub(super) fn prefetch(&self, queries: &[(&str, Vec<Value>)]) -> Result<()> {
        let mut wanted = Vec::new();
        let mut keys = std::collections::HashSet::new();
        for (sql, params) in queries {
            let args = pg_args(params)?;
            if keys.insert(prefetch_key(sql, &args)) {
                wanted.push((self.statement(sql)?, *sql, args));
            }
        }
        let rows = self.wait(async {
            let each = wanted.iter().map(|(st, _, args)| {
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    args.iter().map(|a| a as _).collect();
                async move { self.client.query(st, &refs).await }
            });
            futures_util::future::join_all(each)
                .await
                .into_iter()
                .collect::<std::result::Result<Vec<_>, _>>()
        });
        let rows = self.track("SELECT", rows)?;
        let mut ahead = self.prefetched.borrow_mut();
        for ((_, sql, args), rows) in wanted.iter().zip(rows) {
            ahead.insert(prefetch_key(sql, args), rows);
        }
        Ok(())
    }

    /// Forgets the rows read ahead: a statement might change them.
    fn forget_prefetched(&self) {
        if !self.prefetched.borrow().is_empty() {
            self.prefetched.borrow_mut().clear();
        }
    }

    pub(super) fn query(&self, sql: &str, p: &dyn Params) -> Result<Vec<tokio_postgres::Row>> {
        let out = (|| {
            let args = pg_args(p)?;
            if !self.prefetched.borrow().is_empty() {
                if let Some(rows) = self.prefetched.borrow().get(&prefetch_key(sql, &args)) {
                    return Ok(rows.clone());
                }
                // Not read ahead: it may be a change (`RETURNING`).
                self.forget_prefetched();
            }
            let st = self.statement(sql)?;
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                args.iter().map(|a| a as _).collect();
            self.wait(self.client.query(&st, &refs))
        })();
        self.track(sql, out)
    }

    /// Calls `f` for each row as the server sends it (memory: one row at a
    /// time, however many there are), until it returns `false`. `f` must
    /// not use this session.
    pub(super) fn each(
        &self,
        sql: &str,
        p: &dyn Params,
        f: &mut dyn FnMut(&tokio_postgres::Row) -> Result<bool>,
    ) -> Result<()> {
        self.forget_prefetched();
        let out = (|| {
            let st = self.statement(sql)?;
            let args = pg_args(p)?;
            let rows = self.wait(self.client.query_raw(&st, args.iter()))?;
            let mut rows = std::pin::pin!(rows);
            while let Some(r) = self.rt.block_on(rows.next()) {
                if !f(&r?)? {
                    break;
                }
            }
            Ok(())
        })();
        self.track(sql, out)
    }

    pub(super) fn execute(&self, sql: &str, p: &dyn Params) -> Result<usize> {
        self.forget_prefetched();
        let out = (|| {
            let st = self.statement(sql)?;
            let args = pg_args(p)?;
            let n = self.wait(self.client.execute_raw(&st, args.iter()))?;
            self.changes.set(self.changes.get() + n);
            Ok(n as usize)
        })();
        self.track(sql, out)
    }

    /// Holds `sql` to send with the next statement waited for (see the
    /// module's note), as `what` says it is.
    pub(super) fn execute_later(&self, sql: &str, p: &dyn Params, what: Later) -> Result<()> {
        if what == Later::Change {
            self.forget_prefetched();
        }
        let out = (|| {
            let statement = self.statement(sql)?;
            let args = pg_args(p)?;
            self.later.borrow_mut().push(Held {
                statement,
                sql: sql.to_owned(),
                args,
                what,
            });
            if what != Later::Control {
                self.changes.set(self.changes.get() + 1);
            }
            Ok(())
        })();
        self.track(sql, out)
    }

    /// Statements without parameters, in one round trip (the simple query
    /// protocol), with those held for later; a whole rollback drops those
    /// instead.
    pub(super) fn simple(&self, sql: &str) -> Result<Vec<tokio_postgres::SimpleQueryMessage>> {
        self.forget_prefetched();
        if sql.trim().eq_ignore_ascii_case("ROLLBACK") {
            self.later.borrow_mut().clear();
        }
        let out = self.wait(self.client.simple_query(sql));
        self.track(sql, out)
    }

    /// Whether the session's connection is gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
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

impl tokio_postgres::types::ToSql for PgArg {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use tokio_postgres::types::{IsNull, Type};
        fn put<T: tokio_postgres::types::ToSql>(
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

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Column `i` of a PostgreSQL row in SQLite's storage classes.
pub(super) fn pg_value(r: &tokio_postgres::Row, i: usize) -> Result<Value> {
    use tokio_postgres::types::Type;
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
    use super::super::Connection;
    use super::Pg;

    /// A session on a new database of the test server
    /// (`KUBE_DC_TEST_DATABASE`, which `scripts/test.sh` starts); `None`
    /// only when told to skip (`KUBE_DC_SKIP_POSTGRES=1`).
    fn session() -> Option<(Connection, String)> {
        if std::env::var(kube_dc_testsupport::pg::ENV).is_err()
            && std::env::var("KUBE_DC_SKIP_POSTGRES").as_deref() == Ok("1")
        {
            eprintln!("skipped: KUBE_DC_SKIP_POSTGRES=1");
            return None;
        }
        let url = kube_dc_testsupport::pg::test_database().unwrap_or_else(|| {
            panic!(
                "this test needs PostgreSQL: set {} (scripts/postgres.sh start DIR prints \
                 one), or KUBE_DC_SKIP_POSTGRES=1",
                kube_dc_testsupport::pg::ENV
            )
        });
        let c = Connection::Postgres(Box::new(Pg::connect(&url).unwrap()));
        c.execute_batch("CREATE TABLE t (x BIGINT PRIMARY KEY); CREATE TABLE log (x BIGINT)")
            .unwrap();
        Some((c, url))
    }

    /// Row 1 committed; a transaction begun, holding an insert of row 2.
    fn begin_holding_an_insert(c: &Connection) {
        c.execute("INSERT INTO t VALUES (1)", ()).unwrap();
        c.execute_batch("BEGIN").unwrap();
        c.exec_later("INSERT INTO t VALUES (?1)", [2]).unwrap();
    }

    fn count(c: &Connection, table: &str) -> i64 {
        c.query_row(&format!("SELECT count(*) FROM {table}"), (), |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn held_statements_go_out_with_the_next_statement_waited_for() {
        let Some((c, _)) = session() else { return };
        c.execute_batch("BEGIN").unwrap();
        c.exec_later("INSERT INTO t VALUES (?1)", [1]).unwrap();
        c.append_later("INSERT INTO log VALUES (?1)", [1]).unwrap();
        // Held, in order, before the query that reads them.
        assert_eq!(count(&c, "t") + count(&c, "log"), 2);
        c.exec_later("INSERT INTO t VALUES (?1)", [2]).unwrap();
        c.execute_batch("COMMIT").unwrap();
        assert!(!c.transaction_lost());
        assert_eq!(count(&c, "t"), 2, "the commit took the held insert along");
    }

    #[test]
    fn a_held_statement_that_fails_loses_the_whole_transaction() {
        let Some((c, _)) = session() else { return };
        begin_holding_an_insert(&c);
        c.control_later("SAVEPOINT job").unwrap();
        // A duplicate key, held; the savepoint's release and the next
        // job's savepoint after it.
        c.exec_later("INSERT INTO t VALUES (?1)", [1]).unwrap();
        c.control_later("RELEASE job").unwrap();
        c.control_later("SAVEPOINT job").unwrap();
        let e = c
            .query_row("SELECT count(*) FROM t", (), |r| r.get::<i64>(0))
            .unwrap_err();
        assert!(
            e.to_string().contains("23505"),
            "the held insert's error: {e}"
        );
        // Rolling back to a savepoint does not bring the transaction back.
        let _ = c.execute("ROLLBACK TO job", ());
        assert!(c.transaction_lost());
        c.execute_batch("ROLLBACK").unwrap();
        c.execute_batch("BEGIN").unwrap();
        assert!(!c.transaction_lost(), "a new transaction starts clean");
        assert_eq!(count(&c, "t"), 1, "nothing of the lost one committed");
        c.execute_batch("ROLLBACK").unwrap();
    }

    #[test]
    fn a_commit_whose_held_statement_fails_is_an_error() {
        let Some((c, _)) = session() else { return };
        begin_holding_an_insert(&c);
        c.exec_later("INSERT INTO t VALUES (?1)", [1]).unwrap();
        // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK,
        // not an error: the held statement's error is the answer.
        assert!(c.execute_batch("COMMIT").is_err());
        c.execute_batch("ROLLBACK").unwrap();
        assert_eq!(count(&c, "t"), 1);
    }

    #[test]
    fn a_whole_rollback_drops_held_statements() {
        let Some((c, _)) = session() else { return };
        c.execute_batch("BEGIN").unwrap();
        c.exec_later("INSERT INTO t VALUES (?1)", [1]).unwrap();
        c.execute_batch("ROLLBACK").unwrap();
        assert_eq!(count(&c, "t"), 0);
    }

    #[test]
    fn rows_read_ahead_answer_until_a_change() {
        let Some((c, url)) = session() else { return };
        let other = Connection::Postgres(Box::new(Pg::connect(&url).unwrap()));
        const SQL: &str = "SELECT count(*) FROM t WHERE x > ?1";
        let n = |c: &Connection| -> i64 { c.query_row(SQL, [0], |r| r.get(0)).unwrap() };
        c.execute_batch("BEGIN").unwrap();
        c.prefetch(&[(SQL, vec![0.into()]), (SQL, vec![0.into()])])
            .unwrap();
        // Committed by another session after the read ahead: a query sent
        // now would see it; the rows read ahead are the answer.
        other.execute("INSERT INTO t VALUES (7)", ()).unwrap();
        assert_eq!(n(&c), 0);
        c.append_later("INSERT INTO log VALUES (?1)", [1]).unwrap();
        assert_eq!(n(&c), 0, "an audit append keeps them");
        // Other parameters are not read ahead: asked, and the rows go.
        let bigger: i64 = c.query_row(SQL, [5], |r| r.get(0)).unwrap();
        assert_eq!(bigger, 1);
        assert_eq!(n(&c), 1);
        c.prefetch(&[(SQL, vec![0.into()])]).unwrap();
        c.exec_later("INSERT INTO t VALUES (?1)", [8]).unwrap();
        assert_eq!(n(&c), 2, "a change forgets them");
        c.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn held_appends_go_as_inserts_of_many_rows_in_order() {
        let Some((c, _)) = session() else { return };
        c.execute_batch("CREATE TABLE seqd (seq BIGSERIAL PRIMARY KEY, x BIGINT)")
            .unwrap();
        c.execute_batch("BEGIN").unwrap();
        // 7 rows: groups of 4, 2 and 1; a change held among them.
        for x in 1..=7 {
            c.append_later("INSERT INTO seqd (x) VALUES (?1)", [x])
                .unwrap();
            if x == 3 {
                c.exec_later("INSERT INTO t VALUES (?1)", [x]).unwrap();
            }
        }
        c.execute_batch("COMMIT").unwrap();
        let xs: Vec<i64> = c
            .query_map("SELECT x FROM seqd ORDER BY seq", (), |r| r.get(0))
            .unwrap();
        assert_eq!(xs, (1..=7).collect::<Vec<i64>>());
        assert_eq!(count(&c, "t"), 1);
        let Connection::Postgres(pg) = &c else {
            unreachable!()
        };
        let texts = pg.statements.borrow();
        for rows in ["(?1), (?2), (?3), (?4)", "(?1), (?2)"] {
            assert!(texts.keys().any(|k| k.ends_with(rows)), "{rows}");
        }
    }
}
