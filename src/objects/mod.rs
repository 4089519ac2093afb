//! Durable Object classes (counters, leaderboards) and the typed clients the programs call them
//! through. The clients fail with this module's `Error`, which `http` turns into a 500.

pub mod leaderboard;
pub mod link_clicks;
pub mod reseller_quota;

use crate::timing::Meter;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{web_sys, Env, Method, Request, Response, SqlStorage, State};

/// A Durable Object call failed: the object could not be reached, refused the call, or answered
/// something unreadable. The detail is for the log only.
#[derive(Debug)]
pub struct Error(String);

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<worker::Error> for Error {
    fn from(e: worker::Error) -> Self {
        Error(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error(e.to_string())
    }
}

/// Creates the table of batch ids an object has applied (`first_delivery`).
fn create_batch_log(sql: &SqlStorage) -> worker::Result<()> {
    sql.exec("CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, at INTEGER NOT NULL)", None)?;
    sql.exec("CREATE INDEX IF NOT EXISTS batches_by_time ON batches (at)", None)?;
    Ok(())
}

/// Records batch `id`: `true` the first time, `false` for a re-sent batch, which must change
/// nothing. Ids are remembered `retention_seconds`.
fn first_delivery(sql: &SqlStorage, id: &str, now: i64, retention_seconds: i64) -> worker::Result<bool> {
    let fresh = sql
        .exec("INSERT INTO batches (id, at) VALUES (?, ?) ON CONFLICT DO NOTHING", vec![id.to_owned().into(), now.into()])?
        .rows_written()
        > 0;
    if fresh {
        sql.exec("DELETE FROM batches WHERE at < ?", vec![(now - retention_seconds).into()])?;
    }
    Ok(fresh)
}

#[wasm_bindgen]
extern "C" {
    /// `DurableObjectStorage`, for `transactionSync` (not bound by the worker crate).
    type TransactionalStorage;

    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(this: &TransactionalStorage, work: &Closure<dyn FnMut() -> Result<JsValue, JsValue>>) -> Result<JsValue, JsValue>;
}

/// Runs `work` (synchronous storage calls) as one transaction: an error rolls all of it back.
fn transaction<T: 'static>(state: &State, work: impl FnOnce() -> worker::Result<T> + 'static) -> worker::Result<T> {
    let output = Rc::new(RefCell::new(None));
    let slot = output.clone();
    let mut work = Some(work);
    let closure = Closure::<dyn FnMut() -> Result<JsValue, JsValue>>::new(move || {
        let work = work.take().ok_or_else(|| JsValue::from_str("transaction body ran twice"))?;
        let value = work().map_err(|e| JsValue::from_str(&e.to_string()))?;
        *slot.borrow_mut() = Some(value);
        Ok(JsValue::UNDEFINED)
    });
    let storage = state.storage();
    storage.as_raw().unchecked_ref::<TransactionalStorage>().transaction_sync(&closure)?;
    let value = output.borrow_mut().take();
    value.ok_or_else(|| worker::Error::RustError("transaction produced no result".into()))
}

/// Test-only fault injection, never set in production: the var `FAULT_OBJECT_WRITES`, a list
/// like `before,before,after,none`, is what each object does to its first writes in turn (the
/// steps taken are kept in the object's storage, so an evicted object does not start over): `before` fails inside the transaction (rolled back: nothing applied), `after` fails
/// after the commit (applied, but the caller is told it failed), `none` succeeds; later writes
/// succeed. The fault tests prove that callers retry the first kind and never count the second
/// twice.
pub const FAULT_VAR: &str = "FAULT_OBJECT_WRITES";

#[derive(Default)]
struct Faults {
    plan: Vec<Option<Fault>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    BeforeCommit,
    AfterCommit,
}

impl Faults {
    fn from_env(env: &Env) -> Faults {
        let plan = env.var(FAULT_VAR).map(|v| v.to_string()).unwrap_or_default();
        let plan = plan
            .split(',')
            .filter_map(|step| match step.trim() {
                "before" => Some(Some(Fault::BeforeCommit)),
                "after" => Some(Some(Fault::AfterCommit)),
                "none" => Some(None),
                _ => None,
            })
            .collect();
        Faults { plan }
    }

    /// The next step of the plan, taken (nothing, and no storage call, without a plan).
    fn next(&self, state: &State) -> worker::Result<Option<Fault>> {
        if self.plan.is_empty() {
            return Ok(None);
        }
        let sql = state.storage().sql();
        sql.exec("CREATE TABLE IF NOT EXISTS injected_faults (step INTEGER PRIMARY KEY)", None)?;
        #[derive(serde::Deserialize)]
        struct Taken {
            n: usize,
        }
        let taken: Vec<Taken> = sql.exec("SELECT COUNT(*) AS n FROM injected_faults", None)?.to_array()?;
        let step = taken.first().map_or(0, |t| t.n);
        if step >= self.plan.len() {
            return Ok(None);
        }
        sql.exec("INSERT INTO injected_faults (step) VALUES (?)", vec![(step as i64).into()])?;
        Ok(self.plan[step])
    }
}

/// `transaction` for a write, with the next injected fault (if any) applied to it.
fn write_transaction<T: 'static>(state: &State, faults: &Faults, work: impl FnOnce() -> worker::Result<T> + 'static) -> worker::Result<T> {
    let fault = faults.next(state)?;
    let value = transaction(state, move || {
        let value = work()?;
        if fault == Some(Fault::BeforeCommit) {
            return Err(worker::Error::RustError("injected fault: the write fails before its commit".into()));
        }
        Ok(value)
    })?;
    if fault == Some(Fault::AfterCommit) {
        return Err(worker::Error::RustError("injected fault: the write fails after its commit".into()));
    }
    Ok(value)
}

/// Calls the object `name` of namespace `binding`, counted on `meter`; anything but a 200 is an
/// error.
async fn call(env: &Env, meter: &Meter, binding: &str, name: &str, method: Method, path: &str, body: Option<String>) -> Result<Response> {
    let stub = env.durable_object(binding)?.id_from_name(name)?.get_stub()?;
    // Built with web_sys directly: worker's RequestInit drags in the whole `cf` property model.
    let init = web_sys::RequestInit::new();
    init.set_method(method.as_ref());
    if let Some(body) = body {
        init.set_body(&body.into());
    }
    let request = web_sys::Request::new_with_str_and_init(&format!("https://{binding}{path}"), &init)
        .map_err(|e| Error(format!("{binding} request: {e:?}")))?;
    let mut response = meter.time(stub.fetch_with_request(Request::from(request))).await?;
    if response.status_code() != 200 {
        let text = response.text().await.unwrap_or_default();
        return Err(Error(format!("{binding} {name} {path} answered {}: {text}", response.status_code())));
    }
    Ok(response)
}
