//! A statement as searchgate writes it for both databases: SQL text with `$1`, `$2`, …
//! placeholders (SQLite accepts them too) and the values bound to them, each an integer, a
//! text or a boolean, the only types the tables hold.

use std::{borrow::Cow, fmt::Write, ops::Range};

/// A value bound to a placeholder; `None` binds NULL of that type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A 64-bit integer (`BIGINT`; SQLite `INTEGER`).
    Int(Option<i64>),
    /// A text, NUL characters replaced (see [`text`]).
    Text(Option<String>),
    /// A boolean (`BOOLEAN`; SQLite `INTEGER` 0 or 1).
    Flag(Option<bool>),
    /// A floating-point number (`DOUBLE PRECISION`; SQLite `REAL`).
    Real(Option<f64>),
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Self::Real(Some(value))
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(Some(text(value)))
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Self::from(value.as_str())
    }
}

impl From<&Option<String>> for Value {
    fn from(value: &Option<String>) -> Self {
        Self::Text(value.as_deref().map(text))
    }
}

impl From<Option<bool>> for Value {
    fn from(value: Option<bool>) -> Self {
        Self::Flag(value)
    }
}

/// SQL text and the values of its placeholders, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    sql: Cow<'static, str>,
    values: Vec<Value>,
    /// Where [`Statement::bind`] wrote each placeholder, when it wrote them all: each is then
    /// used once, in order, and may be written anonymously (`?`).
    marks: Vec<Range<usize>>,
}

impl Statement {
    /// A fixed statement whose placeholders `$1`, `$2`, … take `values` in order.
    pub fn new<const N: usize>(sql: &'static str, values: [Value; N]) -> Self {
        Self {
            sql: Cow::Borrowed(sql),
            values: values.into(),
            marks: Vec::new(),
        }
    }

    /// `INSERT INTO table (columns) VALUES (…), (…)`, one group of placeholders per row; each
    /// row holds one value per column (`columns` is comma-separated).
    pub fn insert<R>(table: &str, columns: &str, rows: impl IntoIterator<Item = R>) -> Self
    where
        R: IntoIterator<Item = Value>,
    {
        let mut statement = Self::build(format!("INSERT INTO {table} ({columns}) VALUES "));
        for (n, row) in rows.into_iter().enumerate() {
            statement.push(if n == 0 { "(" } else { ", (" });
            for (column, value) in row.into_iter().enumerate() {
                if column > 0 {
                    statement.push(", ");
                }
                statement.bind(value);
            }
            statement.push(")");
        }
        statement
    }

    /// A statement built up from `sql` with [`Statement::push`] and [`Statement::bind`].
    pub fn build(sql: impl Into<String>) -> Self {
        Self {
            sql: Cow::Owned(sql.into()),
            values: Vec::new(),
            marks: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.to_mut().push_str(sql);
        self
    }

    /// Appends the next placeholder, bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        let sql = self.sql.to_mut();
        let start = sql.len();
        // Writing to a String cannot fail.
        let _ = write!(sql, "${}", self.values.len());
        self.marks.push(start..sql.len());
        self
    }

    /// The SQL and its values, for the driver. With `anonymous`, the placeholders `bind` wrote
    /// become `?` (see `Dialect::ANONYMOUS_PLACEHOLDERS`); written ones stay as they are.
    pub fn into_parts(self, anonymous: bool) -> (Cow<'static, str>, Vec<Value>) {
        if !anonymous || self.marks.is_empty() {
            return (self.sql, self.values);
        }
        let mut sql = String::with_capacity(self.sql.len());
        let mut copied = 0;
        for mark in &self.marks {
            sql.push_str(&self.sql[copied..mark.start]);
            sql.push('?');
            copied = mark.end;
        }
        sql.push_str(&self.sql[copied..]);
        (Cow::Owned(sql), self.values)
    }
}

/// Text as stored: PostgreSQL refuses the NUL character (SQLite keeps it), so it becomes
/// U+FFFD on both. A value from a request can hold one; it must not fail the write (an audit
/// batch would be retried forever) or a lookup (it simply matches nothing).
fn text(value: &str) -> String {
    stored_text(value).into_owned()
}

/// `value` as stored (see [`text`]), borrowed when it holds no NUL.
pub fn stored_text(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_the_order_values_are_bound() {
        let rows = [
            [Value::from(1), Value::from("a")],
            [Value::from(2), Value::from("b")],
        ];
        let insert = Statement::insert("t", "n, s", rows);
        let (sql, values) = insert.clone().into_parts(false);
        assert_eq!(sql, "INSERT INTO t (n, s) VALUES ($1, $2), ($3, $4)");
        assert_eq!(values.len(), 4);
        let (sql, _) = insert.into_parts(true);
        assert_eq!(sql, "INSERT INTO t (n, s) VALUES (?, ?), (?, ?)");

        let mut select = Statement::build("SELECT 1 WHERE a = ");
        select.bind(7).push(" AND b = ").bind(&None::<String>);
        let (sql, values) = select.into_parts(false);
        assert_eq!(sql, "SELECT 1 WHERE a = $1 AND b = $2");
        assert_eq!(values, [Value::Int(Some(7)), Value::Text(None)]);

        let fixed = Statement::new("UPDATE t SET a = $1 WHERE b = $1", [Value::from(1)]);
        let (sql, _) = fixed.into_parts(true);
        assert_eq!(
            sql, "UPDATE t SET a = $1 WHERE b = $1",
            "a written statement may use a placeholder twice: it stays numbered"
        );
    }

    #[test]
    fn nul_characters_never_reach_the_database() {
        assert_eq!(
            Value::from("a\0b"),
            Value::Text(Some("a\u{FFFD}b".into())),
            "PostgreSQL refuses NUL in text; both databases store U+FFFD"
        );
        assert_eq!(
            Value::from(&Some("x\0".to_owned())),
            Value::Text(Some("x\u{FFFD}".into()))
        );
    }
}
