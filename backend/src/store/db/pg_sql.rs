//! SQLite's SQL as PostgreSQL takes it: the store writes each statement
//! once, in the SQL both accept; a PostgreSQL session rewrites it as it
//! first prepares it (parameters, index hints), and sends held inserts of
//! one text as one insert of many rows.

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

/// `sql`, an `INSERT … VALUES (?1, …, ?N)` that ends with its one row,
/// as an insert of `rows` rows (parameters numbered on, row after row);
/// `None` for any other statement.
pub(crate) fn multi_row(sql: &str, rows: usize) -> Option<String> {
    let at = sql.rfind("VALUES")?;
    let tuple = sql[at + "VALUES".len()..].trim();
    if !sql.trim_start().to_ascii_uppercase().starts_with("INSERT")
        || !tuple.starts_with('(')
        || !tuple.ends_with(')')
        || tuple[1..tuple.len() - 1].contains(['(', ')', '\'', '"'])
    {
        return None;
    }
    let numbers: Vec<usize> = tuple[1..tuple.len() - 1]
        .split(',')
        .map(|p| p.trim().strip_prefix('?')?.parse().ok())
        .collect::<Option<_>>()?;
    let width = numbers.len();
    // Every parameter once, in order: ?1 … ?N.
    if numbers.iter().enumerate().any(|(i, n)| *n != i + 1) {
        return None;
    }
    let mut out = format!("{}VALUES ", &sql[..at]);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for i in 0..width {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("?{}", r * width + i + 1));
        }
        out.push(')');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{multi_row, numbered, to_postgres};

    #[test]
    fn an_insert_of_one_row_becomes_one_of_many() {
        let sql = "INSERT INTO audit (ts, org, body)\n         VALUES (?1, ?2, ?3)";
        assert_eq!(
            multi_row(sql, 3).unwrap(),
            "INSERT INTO audit (ts, org, body)\n         VALUES (?1, ?2, ?3), (?4, ?5, ?6), (?7, ?8, ?9)"
        );
        for other in [
            "INSERT INTO t VALUES (?1) ON CONFLICT DO NOTHING",
            "INSERT INTO t VALUES (?2, ?1)",
            "INSERT INTO t VALUES (?1, lower(?2))",
            "INSERT INTO t VALUES (?1, 'x')",
            "UPDATE t SET x = ?1",
        ] {
            assert_eq!(multi_row(other, 2), None, "{other}");
        }
    }

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
