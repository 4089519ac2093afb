//! All SQL against D1 lives under this module, one file per program. This file holds the thin
//! plumbing: binding arguments (integers stay within ±2^53 and travel as JS numbers) and mapping
//! D1 failures to internal errors.

pub mod idempotency;
pub mod users;

use crate::http::ApiError;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

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
#[macro_export]
macro_rules! args {
    ($($value:expr),* $(,)?) => { [$($crate::store::Arg::from($value)),*] };
}

pub struct Db(D1Database);

impl Db {
    pub fn from_env(env: &Env) -> Result<Db, ApiError> {
        Ok(Db(env.d1("DB")?))
    }

    pub fn statement(&self, sql: &str, args: &[Arg]) -> Result<D1PreparedStatement, ApiError> {
        let values: Vec<JsValue> = args.iter().map(JsValue::from).collect();
        self.0.prepare(sql).bind(&values).map_err(|e| db_error(sql, e))
    }

    pub async fn first<T: DeserializeOwned>(&self, sql: &str, args: &[Arg]) -> Result<Option<T>, ApiError> {
        self.statement(sql, args)?.first::<T>(None).await.map_err(|e| db_error(sql, e))
    }

    pub async fn all<T: DeserializeOwned>(&self, sql: &str, args: &[Arg]) -> Result<Vec<T>, ApiError> {
        let result = self.statement(sql, args)?.all().await.map_err(|e| db_error(sql, e))?;
        result.results::<T>().map_err(|e| db_error(sql, e))
    }

    /// Runs a write and returns the number of rows it changed.
    pub async fn run(&self, sql: &str, args: &[Arg]) -> Result<usize, ApiError> {
        let result = self.statement(sql, args)?.run().await.map_err(|e| db_error(sql, e))?;
        Ok(result.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0))
    }
}

fn db_error(sql: &str, e: worker::Error) -> ApiError {
    ApiError::internal(format!("D1 error: {e}; sql: {sql}"))
}
