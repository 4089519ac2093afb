//! The end-to-end harness: starts real instances of the worker (workerd through Miniflare, as
//! `wrangler dev` runs it, from scripts/serve.mjs: local D1 with the migrations applied, local
//! Durable Objects, the rate limiters) on free ports with fresh `--persist-to` directories, mints
//! JWTs the way the main SoundHash API does, and drives the HTTP API.
//!
//! Program test modules use: `shared()` (one instance for the whole run), `Server::start(vars)`
//! (an instance with its own vars, stopped on drop), `server.admin()`, `server.user()`,
//! `server.get(path).token(&t).send()`, `unique("name")`, `wait_for(...)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const API: &str = "/api/v1/monetization";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh id for this run: `name-<pid>-<n>`, so tests never share users or codes.
pub fn unique(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{name}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Unix seconds of an RFC 3339 `…Z` time as the API writes them.
pub fn parse_time(text: &str) -> i64 {
    let b = text.as_bytes();
    let n = |from: usize, len: usize| text[from..from + len].parse::<i64>().expect("digits");
    assert!(b.len() == 20 && b[19] == b'Z', "not an API time: {text}");
    let (y, m, d) = (n(0, 4), n(5, 2), n(8, 2));
    // Days from civil (Howard Hinnant), independent of the worker's implementation.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(11, 2) * 3_600 + n(14, 2) * 60 + n(17, 2)
}

/// An RFC 3339 `…Z` time for request bodies (civil from days, Hinnant; independent of the worker).
pub fn iso(t: i64) -> String {
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = t.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Polls `probe` until it yields a value or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// An HS256 JWT over `claims`, signed with `secret` (by hand, independently of the worker's code).
pub fn sign(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let data = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(data.as_bytes());
    format!("{data}.{}", B64.encode(mac.finalize().into_bytes()))
}

pub fn b64(text: &str) -> String {
    B64.encode(text)
}

// ---------------------------------------------------------------------------------------------
// Servers

static SERVERS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// The instance most tests share (default configuration).
pub fn shared() -> &'static Server {
    static SHARED: OnceLock<Server> = OnceLock::new();
    SHARED.get_or_init(|| Server::start(&[]))
}

/// A second shared instance with the optional checks switched on: `JWT_ISSUER`, `JWT_AUDIENCE`,
/// a 2-second `IDEMPOTENCY_TTL_SECONDS` so that key expiry is observable, and no Stripe secret.
pub fn strict() -> &'static Server {
    static STRICT: OnceLock<Server> = OnceLock::new();
    STRICT.get_or_init(|| {
        Server::start(&[
            ("JWT_ISSUER", "https://api.soundhash.test"),
            ("JWT_AUDIENCE", "monetization"),
            ("IDEMPOTENCY_TTL_SECONDS", "2"),
            ("STRIPE_WEBHOOK_SECRET", ""),
        ])
    })
}

/// Deletes the persist directories of earlier runs (kept after a run for post-mortems).
pub fn remove_previous_runs() {
    let dir = root().join("target").join("e2e");
    for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("server-") {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// An instance where commissions are available at once (`COMMISSION_HOLD_DAYS=0`), for the
/// payout stories.
pub fn instant() -> &'static Server {
    static INSTANT: OnceLock<Server> = OnceLock::new();
    INSTANT.get_or_init(|| Server::start(&[("COMMISSION_HOLD_DAYS", "0")]))
}

/// Stops every instance still running (called by `main` after the run).
pub fn shutdown_all() {
    let groups: Vec<i32> = SERVERS.lock().map(|mut g| g.drain(..).collect()).unwrap_or_default();
    for pgid in groups {
        stop_group(pgid);
    }
}

/// Whether a process of group `pgid` is alive (running or sleeping, not a zombie), from /proc.
fn group_alive(pgid: i32) -> bool {
    fs::read_dir("/proc").into_iter().flatten().flatten().any(|entry| {
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp …`: the fields after the command's closing parenthesis.
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" && fields[0] != "X"
    })
}

fn stop_group(pgid: i32) {
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(300));
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

pub struct Server {
    /// The origin it serves on (another after `revive`): `base()`.
    base: std::sync::RwLock<String>,
    pub dir: PathBuf,
    pub secret: String,
    vars: Vec<(String, String)>,
    config: PathBuf,
    child: Mutex<Child>,
    pgid: std::sync::atomic::AtomicI32,
    admin: OnceLock<String>,
    agent: ureq::Agent,
}

impl Server {
    /// Starts an instance with extra `--var NAME:VALUE` pairs and waits until it serves.
    pub fn start(vars: &[(&str, &str)]) -> Server {
        let dir = root().join("target").join("e2e").join(unique("server"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create persist dir");
        Server::start_in(dir, None, vars, e2e_config())
    }

    /// As `start`, with rate limits a thousand times the configured ones: for load that is not
    /// about throttling (the contract fuzzer).
    pub fn start_unthrottled(vars: &[(&str, &str)]) -> Server {
        let dir = root().join("target").join("e2e").join(unique("server"));
        fs::create_dir_all(&dir).expect("create persist dir");
        Server::start_in(dir, None, vars, unthrottled_config())
    }

    /// Stops this instance and starts another on the same local state (D1, Durable Objects) and
    /// wrangler.toml with other vars: the same data under a new configuration.
    pub fn restart(self, vars: &[(&str, &str)]) -> Server {
        let (dir, secret, config) = (self.dir.clone(), self.secret.clone(), self.config.clone());
        drop(self);
        Server::start_in(dir, Some(secret), vars, config)
    }

    fn start_in(dir: PathBuf, secret: Option<String>, vars: &[(&str, &str)], config: PathBuf) -> Server {
        ensure_built();
        apply_migrations(&dir, &config, secret.is_none());

        let secret = secret.unwrap_or_else(|| format!("e2e-secret-{}", unique("key")));
        let mut all_vars: Vec<(String, String)> = vec![
            ("API_SECRET_KEY".into(), secret.clone()),
            ("STRIPE_WEBHOOK_SECRET".into(), format!("whsec_{}", unique("e2e"))),
            ("PUBLIC_BASE_URL".into(), "https://links.soundhash.test".into()),
            ("AFFILIATE_LANDING_URL".into(), "https://soundhash.test/partners?src=aff".into()),
            ("REFERRAL_LANDING_URL".into(), "https://soundhash.test/signup".into()),
            ("LINK_CACHE_SECONDS".into(), "1".into()),
        ];
        for (k, v) in vars {
            all_vars.retain(|(name, _)| name != k);
            if !v.is_empty() {
                all_vars.push((k.to_string(), v.to_string()));
            }
        }
        let (child, pgid) = spawn_server(&dir, &config, &all_vars, 0, false);
        let server = Server {
            base: std::sync::RwLock::new(String::new()),
            dir,
            secret,
            vars: all_vars,
            config,
            child: Mutex::new(child),
            pgid: pgid.into(),
            admin: OnceLock::new(),
            // No connection reuse: workerd closes idle keep-alive connections, and a POST sent on
            // one just as it closes fails with EOF (ureq retries only idempotent methods).
            agent: ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(60)).max_idle_connections(0).build(),
        };
        *server.base.write().expect("base") = server.wait_ready(0);
        // Made admin now, before any test sends requests: writing the local D1 from a second
        // process while the worker serves can make the worker's queries fail (SQLITE_BUSY).
        server.admin();
        server
    }

    /// Waits for the instance's `ready http://…` line and then for `/healthz`; returns its origin.
    fn wait_ready(&self, log_from: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut base = None;
        loop {
            if base.is_none() {
                let log = self.log_text();
                base = log.get(log_from..).unwrap_or_default().lines().find_map(|l| l.strip_prefix("ready ")).map(|url| url.trim().to_owned());
            }
            if let Some(base) = &base {
                if let Ok(r) = self.agent.get(&format!("{base}/healthz")).call() {
                    if r.status() == 200 {
                        return base.clone();
                    }
                }
            }
            if let Ok(Some(status)) = self.child.lock().expect("child").try_wait() {
                panic!("the instance exited with {status}:\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                panic!("the instance did not become ready:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The structured JSON lines the worker logged so far.
    pub fn log_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Waits until the worker logged lines matching `pred`, and returns them.
    pub fn wait_log(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        wait_for(Duration::from_secs(10), || {
            let found: Vec<Value> = self.log_lines().into_iter().filter(|l| pred(l)).collect();
            (!found.is_empty()).then_some(found)
        })
        .unwrap_or_default()
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    // --- tokens and users ---------------------------------------------------------------------

    pub fn token_with(&self, claims: Value) -> String {
        sign(&json!({"alg": "HS256", "typ": "JWT"}), &claims, self.secret.as_bytes())
    }

    /// A valid one-hour token for `user_id` (with `iss`/`aud` when the instance checks them).
    pub fn token(&self, user_id: &str) -> String {
        let mut claims = json!({"sub": user_id, "iat": now(), "exp": now() + 3600});
        if let Some(iss) = self.var("JWT_ISSUER") {
            claims["iss"] = json!(iss);
        }
        if let Some(aud) = self.var("JWT_AUDIENCE") {
            claims["aud"] = json!(aud);
        }
        self.token_with(claims)
    }

    /// A new regular user, provisioned: `(id, token)`.
    pub fn user(&self) -> (String, String) {
        let id = unique("user");
        let token = self.token(&id);
        let r = self.get(&format!("{API}/me")).token(&token).send();
        assert_eq!(r.status, 200, "provisioning {id}: {}", r.body);
        (id, token)
    }

    /// The token of the instance's bootstrap administrator, made admin the way a developer does
    /// it: `npm run token -- <id> --admin --persist-to <dir>` (a real write to the local D1).
    pub fn admin(&self) -> &str {
        self.admin.get_or_init(|| {
            let id = unique("admin");
            let out = Command::new("node")
                .arg(root().join("scripts/token.mjs"))
                .args([id.as_str(), "--admin", "--persist-to", path(&self.dir)])
                .env("API_SECRET_KEY", &self.secret)
                .envs(self.vars.iter().filter(|(k, _)| k.starts_with("JWT_")).map(|(k, v)| (k, v)))
                .current_dir(root())
                .output()
                .expect("run scripts/token.mjs");
            assert!(out.status.success(), "token.mjs --admin failed: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).expect("utf8 token").trim().to_owned()
        })
    }

    /// A new administrator (made admin by the bootstrap admin through the API): `(id, token)`.
    pub fn new_admin(&self) -> (String, String) {
        let (id, token) = self.user();
        let r = self
            .patch(&format!("{API}/admin/users/{id}"))
            .token(self.admin())
            .json(&json!({"is_admin": true}))
            .send();
        assert_eq!(r.status, 200, "{}", r.body);
        (id, token)
    }

    /// A user as the admin listing shows it (walks every page).
    pub fn find_user(&self, id: &str) -> Value {
        let mut cursor: Option<String> = None;
        loop {
            let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let r = self.get(&format!("{API}/admin/users?limit=100{q}")).token(self.admin()).send();
            assert_eq!(r.status, 200, "{}", r.body);
            let page = r.json();
            if let Some(u) = page["items"].as_array().unwrap().iter().find(|u| u["id"] == id) {
                return u.clone();
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => panic!("user {id} not listed"),
            }
        }
    }

    // --- money ------------------------------------------------------------------------------

    /// Posts a Stripe event signed with the instance's webhook secret (`t` = now).
    pub fn stripe(&self, event: &Value) -> Resp {
        self.stripe_signed(event, now(), self.var("STRIPE_WEBHOOK_SECRET").unwrap_or_default())
    }

    /// A Stripe delivery of `event`, signed now with the instance's secret, to send.
    pub fn stripe_call(&self, event: &Value) -> Call<'_> {
        self.stripe_request(event, now(), self.var("STRIPE_WEBHOOK_SECRET").unwrap_or_default())
    }

    pub fn stripe_signed(&self, event: &Value, t: i64, secret: &str) -> Resp {
        self.stripe_request(event, t, secret).send()
    }

    fn stripe_request(&self, event: &Value, t: i64, secret: &str) -> Call<'_> {
        let body = event.to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{t}.{body}").as_bytes());
        let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        self.post(&format!("{API}/webhooks/stripe"))
            .header("Stripe-Signature", &format!("t={t},v1={signature}"))
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.into_bytes())
    }

    /// Runs the ledger audit (sql/ledger_audit.sql, through the admin endpoint so that it reads
    /// the same database connection the worker writes) and returns the violations.
    pub fn audit(&self) -> Vec<Value> {
        let r = self.get(&format!("{API}/admin/ledger-audit")).token(self.admin()).send();
        assert_eq!(r.status, 200, "ledger audit: {}", r.body);
        r.json()["violations"].as_array().cloned().expect("violations")
    }

    pub fn assert_ledgers_consistent(&self) {
        let violations = self.audit();
        assert!(violations.is_empty(), "ledger audit found violations: {violations:#?}");
    }

    /// A new active affiliate: `(user id, token, affiliate id, code)`.
    pub fn active_affiliate(&self) -> (String, String, String, String) {
        let (user, token) = self.user();
        let r = self.post(&format!("{API}/affiliates")).token(&token).json(&json!({})).send();
        assert_eq!(r.status, 201, "{}", r.body);
        let (id, code) = (r.json()["id"].as_str().unwrap().to_owned(), r.json()["affiliate_code"].as_str().unwrap().to_owned());
        let r = self.patch(&format!("{API}/admin/affiliates/{id}")).token(self.admin()).json(&json!({"status": "active"})).send();
        assert_eq!(r.status, 200, "{}", r.body);
        (user, token, id, code)
    }

    /// A new user attributed to an affiliate code: `(id, token)`.
    pub fn referred_user(&self, affiliate_code: &str) -> (String, String) {
        let (user, token) = self.user();
        let r = self.post(&format!("{API}/attributions")).token(&token).json(&json!({"affiliate_code": affiliate_code})).send();
        assert_eq!(r.status, 201, "{}", r.body);
        (user, token)
    }

    /// Records a conversion through the admin endpoint and returns its response body.
    pub fn convert(&self, user: &str, cents: i64) -> Value {
        let external_id = unique("inv");
        let r = self
            .post(&format!("{API}/admin/conversions"))
            .token(self.admin())
            .json(&json!({"external_id": external_id, "user_id": user, "amount_cents": cents, "currency": "usd"}))
            .send();
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()
    }

    // --- requests -----------------------------------------------------------------------------

    pub fn request(&self, method: &str, path: &str) -> Call<'_> {
        Call { server: self, method: method.into(), path: path.into(), headers: Vec::new(), body: None }
    }
    pub fn get(&self, path: &str) -> Call<'_> {
        self.request("GET", path)
    }
    pub fn post(&self, path: &str) -> Call<'_> {
        self.request("POST", path)
    }
    pub fn patch(&self, path: &str) -> Call<'_> {
        self.request("PATCH", path)
    }

    /// Runs SQL on the instance's local D1 from outside the worker (`wrangler d1 execute`) and
    /// returns the rows of the last statement. For simulating what the API cannot do (a crash
    /// between two writes, old rows): use it on an instance of the test's own, while no request is
    /// in flight, since a second writer can make the worker's queries fail with SQLITE_BUSY.
    pub fn d1(&self, sql: &str) -> Vec<Value> {
        self.try_d1(sql).unwrap_or_else(|text| panic!("d1 execute failed: {text}"))
    }

    /// `d1`, with D1's refusal (a violated constraint, say) as an `Err` of its message.
    pub fn try_d1(&self, sql: &str) -> Result<Vec<Value>, String> {
        let config = e2e_config();
        for attempt in 1.. {
            let out = Command::new("node")
                .arg(root().join("node_modules/wrangler/bin/wrangler.js"))
                .args(["d1", "execute", "DB", "--local", "--json", "-c", path(&config), "--persist-to", path(&self.dir), "--command", sql])
                .current_dir(root())
                .env("WRANGLER_SEND_METRICS", "false")
                .stdin(Stdio::null())
                .output()
                .expect("run wrangler d1 execute");
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            if out.status.success() {
                let results: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("d1 execute output ({e}): {text}"));
                return Ok(results.as_array().and_then(|r| r.last()).and_then(|r| r["results"].as_array()).cloned().unwrap_or_default());
            }
            if attempt >= 8 || !(text.contains("SQLITE_BUSY") || text.contains("database is locked")) {
                return Err(text);
            }
            std::thread::sleep(Duration::from_millis(250 * attempt));
        }
        unreachable!()
    }

    /// Runs a read-only query on the SQLite files of the instance's Durable Objects of `class`
    /// (python3's sqlite3; the objects have no API for what tests need to see, such as rows
    /// deleted by a cron) and returns the rows of every object that has the queried tables.
    pub fn object_rows(&self, class: &str, sql: &str) -> Vec<Value> {
        let script = r#"
import glob, json, sqlite3, sys
rows = []
for path in glob.glob(sys.argv[1] + "/v3/do/*-" + sys.argv[2] + "/*.sqlite"):
    if path.endswith("metadata.sqlite"):
        continue
    con = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
    try:
        rows += [list(r) for r in con.execute(sys.argv[3]).fetchall()]
    except sqlite3.Error:
        pass
    finally:
        con.close()
print(json.dumps(rows))
"#;
        let out = Command::new("python3")
            .args(["-c", script, path(&self.dir), class, sql])
            .output()
            .expect("run python3 (the machine's CPython) to read the objects' SQLite files");
        assert!(out.status.success(), "object_rows: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("rows as JSON")
    }

    /// Writes `bytes` on a fresh connection and returns everything the server answers until it
    /// closes the connection (or 10 s pass): for requests no HTTP client would send.
    pub fn raw(&self, bytes: &[u8]) -> String {
        use std::io::Write;
        let base = self.base();
        let address = base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(bytes).expect("write the request");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Runs SQL on the SQLite files of the instance's Durable Objects of `class` from outside
    /// (python3's sqlite3), for what no request can do: a trigger that makes an object's writes
    /// fail, say. Only on an instance of the test's own.
    pub fn object_exec(&self, class: &str, sql: &str) {
        let script = r#"
import glob, sqlite3, sys
for path in glob.glob(sys.argv[1] + "/v3/do/*-" + sys.argv[2] + "/*.sqlite"):
    if path.endswith("metadata.sqlite"):
        continue
    con = sqlite3.connect(path, timeout=10)
    try:
        con.executescript(sys.argv[3])
        con.commit()
    finally:
        con.close()
"#;
        let out = Command::new("python3").args(["-c", script, path(&self.dir), class, sql]).output().expect("run python3");
        assert!(out.status.success(), "object_exec: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Fires the cron trigger (Miniflare's `/cdn-cgi/handler/scheduled`).
    pub fn run_cron(&self, cron: &str) {
        let r = self.get(&format!("/cdn-cgi/handler/scheduled?cron={}", cron.replace(' ', "+"))).send();
        assert_eq!(r.status, 200, "cron: {}", r.body);
    }
}

impl Server {
    /// Kills the instance's processes (node and workerd) with SIGKILL, as a crash would: no
    /// request in flight is answered, nothing the isolate held in memory is flushed.
    pub fn crash(&self) {
        let pgid = self.pgid.load(std::sync::atomic::Ordering::SeqCst);
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        if let Ok(mut child) = self.child.lock() {
            let _ = child.wait();
        }
        // workerd too: no process of the group is alive (a zombie waiting for its reaper is dead).
        let gone = wait_for(Duration::from_secs(10), || (!group_alive(pgid)).then_some(()));
        assert!(gone.is_some(), "processes of group {pgid} survived SIGKILL");
        if let Ok(mut groups) = SERVERS.lock() {
            groups.retain(|g| *g != pgid);
        }
    }

    /// Starts the crashed instance again on the same state and vars (on a port of its own: the
    /// old one may have been taken meanwhile); `base()` names it from then on.
    pub fn revive(&self) {
        let log_from = self.log_text().len();
        let (child, pgid) = spawn_server(&self.dir, &self.config, &self.vars, 0, true);
        *self.child.lock().expect("child") = child;
        self.pgid.store(pgid, std::sync::atomic::Ordering::SeqCst);
        *self.base.write().expect("base") = self.wait_ready(log_from);
    }

    /// The origin the instance serves on, `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        self.base.read().expect("base").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pgid = self.pgid.load(std::sync::atomic::Ordering::SeqCst);
        stop_group(pgid);
        if let Ok(mut child) = self.child.lock() {
            let _ = child.wait();
        }
        if let Ok(mut groups) = SERVERS.lock() {
            groups.retain(|g| *g != pgid);
        }
    }
}

pub struct Call<'a> {
    server: &'a Server,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Call<'_> {
    pub fn token(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn json(self, body: &Value) -> Self {
        self.header("Content-Type", "application/json").body(body.to_string().into_bytes())
    }
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    pub fn send(self) -> Resp {
        let (method, url) = (self.method.clone(), format!("{}{}", self.server.base(), self.path));
        self.try_send().unwrap_or_else(|e| panic!("{method} {url}: transport error {e}"))
    }

    /// As `send`, with a transport failure (no answer: the instance is down, say) as an error.
    pub fn try_send(self) -> Result<Resp, String> {
        let url = format!("{}{}", self.server.base(), self.path);
        let mut req = self.server.agent.request(&self.method, &url);
        for (k, v) in &self.headers {
            req = req.set(k, v);
        }
        let result = match &self.body {
            Some(body) => req.send_bytes(body),
            None => req.call(),
        };
        match result {
            Err(ureq::Error::Transport(e)) => Err(e.to_string()),
            result => Ok(Resp::from(result, &self.method, &url)),
        }
    }

    /// Sends the body with chunked transfer encoding (no Content-Length).
    pub fn send_chunked(self) -> Resp {
        let url = format!("{}{}", self.server.base(), self.path);
        let mut req = self.server.agent.request(&self.method, &url);
        for (k, v) in &self.headers {
            req = req.set(k, v);
        }
        let body = self.body.unwrap_or_default();
        Resp::from(req.send(std::io::Cursor::new(body)), &self.method, &url)
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    fn from(result: Result<ureq::Response, ureq::Error>, method: &str, url: &str) -> Resp {
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: transport error {e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| response.header(&name).map(|v| (name.to_lowercase(), v.to_owned())))
            .collect();
        let mut body = String::new();
        let _ = response.into_reader().take(16 << 20).read_to_string(&mut body);
        Resp { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// `error.code` of an error envelope (asserting the envelope's shape).
    pub fn code(&self) -> String {
        let v = self.json();
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "no message: {v}");
        v["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error envelope: {v}")).to_owned()
    }

    /// Asserts status and error code together, with the body in the failure message.
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert!(self.header("x-request-id").is_some(), "error without X-Request-Id");
    }
}

// ---------------------------------------------------------------------------------------------
// Tools

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Spawns from a thread that lives as long as the test process: PR_SET_PDEATHSIG fires when the
/// spawning *thread* ends, and test threads end long before the shared server should.
fn spawn_kept(cmd: Command) -> Child {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut cmd = cmd;
        let _ = tx.send(cmd.spawn());
        loop {
            std::thread::park();
        }
    });
    rx.recv().expect("spawner thread").expect("spawn node scripts/serve.mjs (run npm run setup first)")
}


/// Starts `node scripts/serve.mjs` for an instance (port 0: any free one, named in its `ready`
/// line); returns the child and its process group.
fn spawn_server(dir: &Path, config: &Path, vars: &[(String, String)], port: u16, append_log: bool) -> (Child, i32) {
    // scripts/serve.mjs: the worker on workerd through Miniflare, without the proxy worker
    // `wrangler dev` puts in front of it (whose pooled keep-alive hop answers a request sent
    // as an idle connection closes with a spurious 503, workers-sdk #14641).
    let mut cmd = Command::new("node");
    cmd.arg(root().join("scripts/serve.mjs"))
        // Port 0: the instance takes a free one and names it in its `ready` line (a port
        // looked up here and handed over could be taken by someone else meanwhile).
        .args(["-c", path(config), "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--persist-to", path(dir)]);
    for (k, v) in vars {
        cmd.arg("--var").arg(format!("{k}:{v}"));
    }
    let log = fs::OpenOptions::new().create(true).write(true).append(append_log).truncate(!append_log).open(dir.join("server.log")).expect("log file");
    cmd.current_dir(root())
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0);
    unsafe {
        // Die with the test run even if it is killed before `shutdown_all`.
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = spawn_kept(cmd);
    let pgid = child.id() as i32;
    SERVERS.lock().expect("servers").push(pgid);
    (child, pgid)
}

/// Applies the D1 migrations to an instance's local state. The local D1 behind `wrangler d1
/// migrations apply` (a workerd of its own) has failed under this machine's load with an
/// internal assertion (`false == true`) part-way through a migration; a fresh database is then
/// made again from nothing, up to three times.
fn apply_migrations(dir: &Path, config: &Path, fresh: bool) {
    let args = ["d1", "migrations", "apply", "DB", "--local", "-c", path(config), "--persist-to", path(dir)];
    for attempt in 1.. {
        match try_wrangler(&args) {
            Ok(_) => return,
            Err(e) if fresh && attempt < 3 => {
                eprintln!("migrations failed (attempt {attempt}), starting the database again: {}", e.lines().rev().take(5).collect::<Vec<_>>().join(" | "));
                let _ = fs::remove_dir_all(dir.join("v3").join("d1"));
            }
            Err(e) => panic!("wrangler {args:?} failed:\n{e}"),
        }
    }
}

/// Runs the project's wrangler and returns its stdout; panics with its output on failure.
pub fn wrangler(args: &[&str]) -> String {
    try_wrangler(args).unwrap_or_else(|e| panic!("wrangler {args:?} failed:\n{e}"))
}

/// As `wrangler`, with a failure's output as the error.
fn try_wrangler(args: &[&str]) -> Result<String, String> {
    let out = Command::new("node")
        .arg(root().join("node_modules/wrangler/bin/wrangler.js"))
        .args(args)
        .current_dir(root())
        .env("SOUNDHASH_SKIP_BUILD", "1")
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::null())
        .output()
        .expect("run wrangler (run npm run setup first)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(stdout)
}

/// wrangler.toml for the test instances, written once per run to target/e2e: the same bindings
/// and vars, `main` and the migrations as absolute paths, no `[build]` (the worker is built once
/// before the run), and no `.dev.vars` beside it (every secret comes from `--var`).
fn e2e_config() -> PathBuf {
    static CONFIG: OnceLock<PathBuf> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let text = fs::read_to_string(root().join("wrangler.toml")).expect("read wrangler.toml");
            let mut config: toml::Table = text.parse().expect("wrangler.toml is valid TOML");
            config.remove("build");
            config.insert("main".into(), root().join("build/index.js").to_string_lossy().into_owned().into());
            for db in config.get_mut("d1_databases").and_then(|d| d.as_array_mut()).into_iter().flatten() {
                if let Some(db) = db.as_table_mut() {
                    let dir = root().join(db.get("migrations_dir").and_then(|d| d.as_str()).unwrap_or("migrations"));
                    db.insert("migrations_dir".into(), dir.to_string_lossy().into_owned().into());
                }
            }
            let dir = root().join("target").join("e2e");
            fs::create_dir_all(&dir).expect("target/e2e");
            let path = dir.join("wrangler.toml");
            fs::write(&path, toml::to_string(&config).expect("serialize config")).expect("write e2e config");
            path
        })
        .clone()
}

/// The e2e configuration with every rate limit multiplied by 1,000 (target/e2e/unthrottled.toml).
fn unthrottled_config() -> PathBuf {
    static CONFIG: OnceLock<PathBuf> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let text = fs::read_to_string(e2e_config()).expect("read the e2e config");
            let mut config: toml::Table = text.parse().expect("valid TOML");
            for limiter in config.get_mut("ratelimits").and_then(|r| r.as_array_mut()).into_iter().flatten() {
                let simple = limiter.get_mut("simple").and_then(|s| s.as_table_mut()).expect("ratelimits.simple");
                let limit = simple.get("limit").and_then(|l| l.as_integer()).expect("ratelimits.simple.limit");
                simple.insert("limit".into(), (limit * 1000).into());
            }
            let path = root().join("target").join("e2e").join("unthrottled.toml");
            fs::write(&path, toml::to_string(&config).expect("serialize config")).expect("write the unthrottled config");
            path
        })
        .clone()
}

/// The worker is built once per run (`npm test` does it first); a stale build is rebuilt here so
/// `cargo test` alone never tests old code.
fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let wasm = root().join("build/index_bg.wasm");
        let built = fs::metadata(&wasm).and_then(|m| m.modified()).ok();
        let newest_source = ["src", "Cargo.toml", "Cargo.lock"]
            .iter()
            .flat_map(|p| files(&root().join(p)))
            .filter_map(|f| fs::metadata(f).and_then(|m| m.modified()).ok())
            .max();
        if built.is_none() || newest_source > built {
            eprintln!("e2e: the worker build is missing or stale; running scripts/build.sh");
            let status = Command::new("bash")
                .arg(root().join("scripts/build.sh"))
                .current_dir(root())
                .env_remove("SOUNDHASH_SKIP_BUILD")
                .status()
                .expect("run scripts/build.sh");
            assert!(status.success(), "scripts/build.sh failed");
        }
    });
}

fn files(p: &Path) -> Vec<PathBuf> {
    if p.is_dir() {
        fs::read_dir(p).into_iter().flatten().flatten().flat_map(|e| files(&e.path())).collect()
    } else {
        vec![p.to_path_buf()]
    }
}

/// Runs `n` calls of `f` at once on `n` threads and returns their results in order.
pub fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("parallel call panicked")).collect()
    })
}
