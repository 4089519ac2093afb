//! All SQL against D1 lives under this module, one file per program. This file holds the thin
//! plumbing: binding arguments (integers stay within ±2^53 and travel as JS numbers) and the
//! store's own error (`Error`), which `http` turns into a 500 at the handler boundary.

pub mod affiliates;
pub mod audit;
pub mod campaigns;
pub mod attributions;
pub mod clicks;
pub mod conversions;
pub mod credits;
pub mod earnings;
pub mod idempotency;
pub mod marketplace;
pub mod payouts;
pub mod referrals;
pub mod resellers;
pub mod revenue;
pub mod rewards;
pub mod stripe;
pub mod users;

use crate::timing::Meter;
use std::rc::Rc;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use crate::domain::MAX_EXACT_INT;
use worker::{D1Database, D1PreparedStatement, D1Result, Env};

/// One bound SQL argument.
#[derive(Clone, Debug)]
pub enum Arg {
    Text(String),
    Int(i64),
    Null,
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<&Arg> for Arg {
    fn from(v: &Arg) -> Self {
        v.clone()
    }
}
impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Arg::Int(v.into())
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Int(v.into())
    }
}
impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

impl From<&Arg> for JsValue {
    fn from(arg: &Arg) -> Self {
        match arg {
            Arg::Text(s) => JsValue::from_str(s),
            Arg::Int(i) => JsValue::from_f64(*i as f64),
            Arg::Null => JsValue::NULL,
        }
    }
}

/// `args![a, b, c]` → `[Arg; 3]` for binding.
macro_rules! args {
    ($($value:expr),* $(,)?) => { [$($crate::store::Arg::from($value)),*] };
}
pub(crate) use args;

/// What a store function fails with. Its detail is for the log only: `http` answers 500.
#[derive(Debug)]
pub enum Error {
    /// D1 failed, or answered something the code did not expect: the detail, with the SQL
    /// where there is one statement.
    D1(String),
    /// A stored value the code cannot read (an unknown status, say): where it is and what it holds.
    Corrupt { table: &'static str, id: String, column: &'static str, value: String },
    /// A write violated a constraint (told apart by `Db::batch` and `Db::write`, so callers can
    /// match e.g. `Err(Error::Constraint(v)) if v.is_unique("affiliates.user_id")`).
    Constraint(Violation),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn corrupt(table: &'static str, id: impl Into<String>, column: &'static str, value: &str) -> Error {
        Error::Corrupt { table, id: id.into(), column, value: value.to_owned() }
    }

    /// A stored integer read through the domain's rule for its range (`commission_rate`, …): a
    /// value the rule refuses is a corrupt row, never a number cast into range.
    pub fn checked<T>(
        table: &'static str,
        id: &str,
        column: &'static str,
        value: i64,
        rule: fn(i64) -> std::result::Result<T, &'static str>,
    ) -> Result<T> {
        rule(value).map_err(|_| Error::corrupt(table, id, column, &value.to_string()))
    }

    /// A D1 failure of a batch or a write, with a violated constraint told apart.
    fn from_write(e: worker::Error) -> Error {
        let message = e.to_string();
        match Violation::parse(&message) {
            Some(v) => Error::Constraint(v),
            None => Error::D1(format!("D1 error: {message}")),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::D1(detail) => f.write_str(detail),
            Error::Corrupt { table, id, column, value } => write!(f, "{table} {id} has {column} {value:?}"),
            Error::Constraint(v) => write!(f, "unexpected constraint violation: {v:?}"),
        }
    }
}

/// The D1 database, with the meter that counts this handle's round trips (`Server-Timing`).
pub struct Db {
    d1: D1Database,
    meter: Rc<Meter>,
}

impl Db {
    /// For work outside a request (cron, background): its round trips are counted by no one.
    pub fn from_env(env: &Env) -> Result<Db> {
        Db::metered(env, Rc::default())
    }

    /// For a request: every round trip is counted on `meter`.
    pub fn metered(env: &Env, meter: Rc<Meter>) -> Result<Db> {
        let d1 = env.d1("DB").map_err(|e| Error::D1(e.to_string()))?;
        Ok(Db { d1, meter })
    }

    pub fn statement(&self, sql: &str, args: &[Arg]) -> Result<D1PreparedStatement> {
        // D1 takes numbers as JavaScript doubles: an integer beyond ±2^53 would be stored
        // rounded (and read back as a float no record can hold). Refused, never rounded.
        let inexact = args.iter().find_map(|a| match a {
            Arg::Int(i) if i.unsigned_abs() > MAX_EXACT_INT => Some(i),
            _ => None,
        });
        if let Some(i) = inexact {
            return Err(Error::D1(format!("{sql}: the integer {i} is beyond ±2^53 and cannot be bound exactly")));
        }
        let values: Vec<JsValue> = args.iter().map(JsValue::from).collect();
        self.d1.prepare(sql).bind(&values).map_err(|e| db_error(sql, e))
    }

    pub async fn first<T: DeserializeOwned>(&self, sql: &str, args: &[Arg]) -> Result<Option<T>> {
        let statement = self.statement(sql, args)?;
        self.meter.time(statement.first::<T>(None)).await.map_err(|e| db_error(sql, e))
    }

    pub async fn all<T: DeserializeOwned>(&self, sql: &str, args: &[Arg]) -> Result<Vec<T>> {
        let statement = self.statement(sql, args)?;
        let result = self.meter.time(statement.all()).await.map_err(|e| db_error(sql, e))?;
        result.results::<T>().map_err(|e| db_error(sql, e))
    }

    /// Runs a write and returns the number of rows it changed.
    pub async fn run(&self, sql: &str, args: &[Arg]) -> Result<usize> {
        let statement = self.statement(sql, args)?;
        let result = self.meter.time(statement.run()).await.map_err(|e| db_error(sql, e))?;
        Ok(changes(&result))
    }

    /// Runs statements as one atomic batch (a transaction): all of them land or none does. A
    /// violated constraint comes back as `Error::Constraint`, so callers can tell "someone else
    /// got there first" from a failure.
    pub async fn batch(&self, statements: Vec<D1PreparedStatement>) -> Result<Vec<D1Result>> {
        self.meter.time(self.d1.batch(statements)).await.map_err(Error::from_write)
    }

    /// A single write returning rows (`… RETURNING`), with constraint violations told apart.
    pub async fn write<T: DeserializeOwned>(&self, sql: &str, args: &[Arg]) -> Result<Option<T>> {
        let statement = self.statement(sql, args)?;
        self.meter.time(statement.first::<T>(None)).await.map_err(Error::from_write)
    }
}

/// A sum read as SQL text (`CAST(COALESCE(SUM(x), 0) AS TEXT)`): SQLite adds exactly in 64 bits,
/// but a sum beyond ±2^53 would reach the worker as an inexact JavaScript number and be refused.
/// For `#[serde(deserialize_with = "exact")]`.
pub fn exact<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// The most bytes bound as one JSON value. D1 refuses any string over 2,000,000 bytes (local
/// SQLite does not), so a list bound for `json_each` is cut into arrays of at most this size,
/// one statement each, run in the same batch.
pub const JSON_CHUNK_BYTES: usize = 1_000_000;

/// `items` as JSON arrays of at most `JSON_CHUNK_BYTES` each, in order; one `[]` when empty.
pub fn json_chunks<T: serde::Serialize>(items: impl IntoIterator<Item = T>) -> Result<Vec<String>> {
    json_chunks_of(items, JSON_CHUNK_BYTES)
}

fn json_chunks_of<T: serde::Serialize>(items: impl IntoIterator<Item = T>, max: usize) -> Result<Vec<String>> {
    let mut chunks = Vec::new();
    let mut chunk = String::from("[");
    for item in items {
        let json = serde_json::to_string(&item).map_err(|e| Error::D1(e.to_string()))?;
        if json.len() + 2 > max {
            return Err(Error::D1(format!("a value of {} bytes cannot be bound (at most {max})", json.len())));
        }
        if chunk.len() + json.len() + 2 > max {
            chunk.push(']');
            chunks.push(std::mem::replace(&mut chunk, String::from("[")));
        }
        if chunk.len() > 1 {
            chunk.push(',');
        }
        chunk.push_str(&json);
    }
    chunk.push(']');
    chunks.push(chunk);
    Ok(chunks)
}

/// The rows a write changed.
pub fn changes(result: &D1Result) -> usize {
    result.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0)
}

/// Rows of one statement of a batch.
pub fn rows<T: DeserializeOwned>(results: &[D1Result], index: usize) -> Result<Vec<T>> {
    match results.get(index) {
        Some(result) => result.results::<T>().map_err(|e| Error::D1(format!("D1 batch result {index}: {e}"))),
        None => Err(Error::D1(format!("D1 batch has no result {index}"))),
    }
}

/// A constraint a write violated, read from SQLite's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// `UNIQUE constraint failed: table.col, table.col` (also primary keys): the columns.
    Unique(String),
    /// `CHECK constraint failed: expression`.
    Check(String),
    /// Any other constraint (foreign key, not null).
    Other(String),
}

impl Violation {
    pub fn parse(message: &str) -> Option<Violation> {
        let after = |marker: &str| {
            message.find(marker).map(|i| {
                let rest = &message[i + marker.len()..];
                rest.split(": SQLITE").next().unwrap_or(rest).trim().to_owned()
            })
        };
        if let Some(cols) = after("UNIQUE constraint failed:") {
            Some(Violation::Unique(cols))
        } else if let Some(expr) = after("CHECK constraint failed:") {
            Some(Violation::Check(expr))
        } else {
            message.contains("constraint failed").then(|| Violation::Other(message.to_owned()))
        }
    }

    /// A UNIQUE violation on exactly these columns (`"table.col"` or `"table.a, table.b"`).
    pub fn is_unique(&self, columns: &str) -> bool {
        matches!(self, Violation::Unique(c) if c == columns)
    }
}

fn db_error(sql: &str, e: worker::Error) -> Error {
    Error::D1(format!("D1 error: {e}; sql: {sql}"))
}

/// Runs a python3 script with `input` as JSON on its stdin and returns its stdout: the SQL of the
/// store tested natively in SQLite (python3's sqlite3 module, the engine D1 runs).
#[cfg(test)]
pub(crate) fn run_in_sqlite(script: &str, input: &serde_json::Value) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (its sqlite3 module runs the SQL)");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("python3 output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    out.stdout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_messages_are_classified() {
        assert_eq!(
            Violation::parse("D1_ERROR: UNIQUE constraint failed: stripe_events.id: SQLITE_CONSTRAINT"),
            Some(Violation::Unique("stripe_events.id".into()))
        );
        let pk = Violation::parse("UNIQUE constraint failed: refunds.conversion_id, refunds.seq").unwrap();
        assert!(pk.is_unique("refunds.conversion_id, refunds.seq"));
        assert!(!pk.is_unique("refunds.seq"));
        assert_eq!(
            Violation::parse("D1_ERROR: CHECK constraint failed: balance_after >= 0: SQLITE_CONSTRAINT"),
            Some(Violation::Check("balance_after >= 0".into()))
        );
        assert!(matches!(Violation::parse("FOREIGN KEY constraint failed"), Some(Violation::Other(_))));
        assert_eq!(Violation::parse("D1_ERROR: no such table: users"), None);
    }

    #[test]
    fn json_is_bound_in_arrays_under_the_limit_that_hold_every_item_in_order() {
        assert_eq!(json_chunks_of(Vec::<u32>::new(), 10).unwrap(), vec!["[]"]);
        // "[1000,1001]" is 11 bytes: over 10, so one item per array at 10, two at 11.
        assert_eq!(json_chunks_of([1000, 1001, 1002], 10).unwrap(), vec!["[1000]", "[1001]", "[1002]"]);
        assert_eq!(json_chunks_of([1000, 1001, 1002], 11).unwrap(), vec!["[1000,1001]", "[1002]"]);
        assert!(json_chunks_of(["too long for six"], 6).is_err());
        for max in [60, 100, 1_000, 10_000] {
            let items: Vec<String> = (0..500).map(|i| "x\"".repeat(i % 17) + &i.to_string()).collect();
            let chunks = json_chunks_of(&items, max).unwrap();
            assert!(chunks.iter().all(|c| c.len() <= max), "{max}");
            let back: Vec<String> = chunks.iter().flat_map(|c| serde_json::from_str::<Vec<String>>(c).unwrap()).collect();
            assert_eq!(back, items);
        }
    }
}
