// Shared plumbing of `npm run bench`: Worker instances (scripts/serve.mjs), wrk runs with exact
// request counts, tokens, medians.
import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { homedir } from "node:os";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const work = join(root, "target", "bench");
const wranglerJs = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
export const threads = Number(process.env.BENCH_THREADS ?? 2);
export const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
export const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const children = [];

export function log(message) {
  console.error(`bench: ${message}`);
}


export function ensureWrk() {
  try {
    return execFileSync("wrk", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n")[0];
  } catch (e) {
    if (e.code !== "ENOENT") return String(e.stdout ?? "").split("\n")[0]; // wrk --version exits 1
  }
  log("installing wrk from Debian's archive (apt-get install wrk)");
  const sudo = process.getuid && process.getuid() === 0 ? [] : ["sudo"];
  const apt = (args) => execFileSync(sudo[0] ?? "apt-get", [...(sudo.length ? ["apt-get"] : []), ...args], { stdio: "inherit" });
  try {
    apt(["install", "-y", "wrk"]);
  } catch {
    apt(["update"]);
    apt(["install", "-y", "wrk"]);
  }
  return ensureWrk();
}

export function wrangler(args, env = {}) {
  return execFileSync(process.execPath, [wranglerJs, ...args], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", SOUNDHASH_SKIP_BUILD: "1", ...env },
  });
}

/// The service's migrations applied to the local D1 under `dir`.
export function migrate(dir) {
  wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", dir]);
}

/// A fresh local D1 with the migrations applied and `admin` made an administrator.
export function freshState(dir, secret, admin) {
  migrate(dir);
  execFileSync(process.execPath, [join(root, "scripts", "token.mjs"), admin, "--admin", "--persist-to", dir], {
    cwd: root, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, API_SECRET_KEY: secret },
  });
}

/// Runs SQL against the local D1 (binding DB) of `config` under `dir` (before its Worker serves it:
/// a second writer on the SQLite file can make the Worker's queries fail).
export function d1Execute(dir, sql, config = join(root, "wrangler.toml")) {
  const file = join(work, `seed-${process.pid}-${Date.now()}.sql`);
  writeFileSync(file, sql);
  wrangler(["d1", "execute", "DB", "--local", "-c", config, "--persist-to", dir, "--file", file]);
  rmSync(file);
}

/// The users whose credit balance the reads section measures (tokens rotate over them) and the
/// ledger rows the bench seeds for each, the same in the service's D1 and the baseline's.
export const readUsers = Array.from({ length: Number(process.env.BENCH_USERS ?? 200) }, (_, i) => `bench-user-${i}`);
export function creditRowsSql(users) {
  const rows = users.flatMap((user, i) => {
    let balance = 0;
    return [1000, -(100 + (i % 50) * 5), 500, -(50 + (i % 7) * 10)].map((amount, k) => {
      balance += amount;
      return `('${user}', ${k + 1}, '${amount > 0 ? "bonus" : "deduction"}', ${amount}, ${balance}, 'bench', 1767225600)`;
    });
  });
  return `INSERT INTO credit_transactions (user_id, seq, kind, amount, balance_after, reason, created_at) VALUES\n${rows.join(",\n")};\n`;
}

const baselineConfig = join(root, "bench", "baseline", "wrangler.toml");

/// The baseline Worker (bench/baseline) on its own local D1 under `dir`: the service's migrations,
/// `readUsers` as users with the same credit rows as the service's.
/// The service's credit-balance statement, as src/store/credits.rs `balance` runs it.
function balanceSql() {
  const source = readFileSync(join(root, "src", "store", "credits.rs"), "utf8");
  const found = /pub async fn balance\([^)]*\)[^{]*\{\s*let sql = "([^"]+)";/.exec(source);
  if (!found) throw new Error("src/store/credits.rs: no balance statement found for the baseline");
  return found[1].replace(/\s+/g, " ").trim();
}

export async function startBaseline(dir) {
  wrangler(["d1", "migrations", "apply", "DB", "--local", "-c", baselineConfig, "--persist-to", dir]);
  const users = readUsers.map((u) => `('${u}', 0, 1, 1767225600, 1767225600)`).join(",\n");
  d1Execute(dir, `INSERT INTO users (id, is_admin, is_active, created_at, updated_at) VALUES\n${users};\n${creditRowsSql(readUsers)}`, baselineConfig);
  return serve("baseline", baselineConfig, 0, dir, { BALANCE_SQL: balanceSql() });
}

/// The Rust floor (bench/floor): built with the tools scripts/build.sh uses (worker-build, the
/// wasm-bindgen and wasm-opt `npm run setup` installed), served as the baseline is.
export async function startFloor() {
  const dir = join(root, "bench", "floor");
  const bin = join(process.env.CARGO_HOME ?? join(homedir(), ".cargo"), "bin");
  log("building the Rust floor (bench/floor; a minute or two the first time)");
  execFileSync(join(bin, "worker-build"), ["--release"], {
    cwd: dir,
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      ...process.env,
      WASM_BINDGEN_BIN: join(bin, "wasm-bindgen"),
      WASM_OPT_BIN: join(root, "node_modules", ".bin", "wasm-opt"),
      ESBUILD_BIN: join(root, "node_modules", ".bin", "esbuild"),
    },
  });
  return serve("floor", join(dir, "wrangler.toml"), 0, null, {});
}

/// Serves a Worker with scripts/serve.mjs (Miniflare on the workerd `wrangler dev` uses, without
/// wrangler dev's proxy worker) on `port`, local state under `persist`, `vars` as `--var NAME:VALUE`;
/// its output goes to target/bench/<name>.log. Resolves with its origin once it prints `ready`.
export async function serve(name, config, port, persist, vars) {
  const logPath = join(work, `${name}.log`);
  const logFile = openSync(logPath, "w");
  const args = [join(root, "scripts", "serve.mjs"), "-c", config, "--ip", "127.0.0.1", "--port", String(port)];
  if (persist) args.push("--persist-to", persist);
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn(process.execPath, args, {
    cwd: root,
    detached: true, // its own process group (node and workerd), stopped with SIGTERM to the group
    stdio: ["ignore", logFile, logFile],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  closeSync(logFile);
  children.push(child);
  let exited = null;
  child.on("exit", (code, signal) => { exited = signal ?? code; });
  for (let i = 0; i < 600; i++) {
    const ready = /^ready (http:\/\/\S+)$/m.exec(readFileSync(logPath, "utf8"));
    if (ready) return ready[1];
    if (exited !== null) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`${name} did not start (${exited !== null ? `exited: ${exited}` : "no ready line"}); see ${logPath}`);
}

/// The service (the repo's wrangler.toml, build/) served on a free port. serve.mjs reads `.dev.vars`
/// beside the config, as wrangler dev does; so the secrets are given here (derived from `secret`),
/// and any other name `.dev.vars` sets is given its wrangler.toml value, so that the configuration
/// measured is the default one plus `extra`.
export async function startService(name, persist, secret, extra = {}) {
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  const tomlVars = toml.split(/^\[vars\]\s*$/m)[1]?.split(/^\[/m)[0] ?? "";
  const vars = {};
  const devVars = join(root, ".dev.vars");
  for (const line of existsSync(devVars) ? readFileSync(devVars, "utf8").split("\n") : []) {
    const devName = /^\s*([A-Za-z0-9_]+)\s*=/.exec(line)?.[1];
    if (!devName) continue;
    const value = new RegExp(`^\\s*${devName}\\s*=\\s*"([^"]*)"`, "m").exec(tomlVars)?.[1];
    if (value !== undefined) vars[devName] = value;
  }
  Object.assign(vars, {
    API_SECRET_KEY: secret,
    STRIPE_WEBHOOK_SECRET: `whsec_${secret}`,
    VISITOR_HASH_SECRET: `visitors-${secret}`,
  }, extra);
  return serve(name, join(root, "wrangler.toml"), 0, persist, vars);
}

export function stopAll() {
  for (const child of children) {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
  }
}
process.on("exit", stopAll);
process.on("SIGINT", () => process.exit(130));

export function jwt(secret, sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const data = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, iat: now, exp: now + 3600 })}`;
  return `${data}.${createHmac("sha256", secret).update(data).digest("base64url")}`;
}

/// A JSON API client for one instance and token.
export function client(base, token) {
  return async (method, path, body) => {
    const r = await fetch(`${base}/api/v1/monetization${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body && JSON.stringify(body),
    });
    const json = await r.json();
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
}

// wrk would run for its whole -d even when every thread is through; the scripts print a line per
// finished thread, and wrk is then stopped with SIGINT (it prints its results on SIGINT). -d is
// only a safety net: a thread cut off by it would leave requests unanswered, reported as unfinished.
// `args` are bench/load.lua's after the per-thread quota (`clicks <path>` or `api <method> <path>
// <tokens file> …`); its summary line counts `ok` (expected) and `others` responses.
export function runWrk(base, perConnection, args) {
  const perThread = (perConnection * connections) / threads;
  const wrkArgs = ["-t", String(threads), "-c", String(connections), "-d", "600s", "--timeout", "10s",
    "-s", join(root, "bench", "load.lua"), base, "--", String(perThread), ...args];
  return new Promise((resolve, reject) => {
    const wrk = spawn("wrk", wrkArgs, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    let finished = 0;
    wrk.stdout.on("data", (chunk) => {
      out += chunk;
      const done = (out.match(/^thread-done$/gm) || []).length;
      if (done !== finished) {
        finished = done;
        if (finished === threads) wrk.kill("SIGINT");
      }
    });
    wrk.on("error", reject);
    wrk.on("close", () => {
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) return reject(new Error(`no result from wrk:\n${out}`));
      const r = JSON.parse(line);
      if (r.unfinished > 0) return reject(new Error(`wrk threads did not finish: ${line}`));
      const rps = r.requests / (r.elapsed_ms / 1000);
      resolve({ ...r, rps, p50: r.p50_us / 1000, p90: r.p90_us / 1000, p99: r.p99_us / 1000 });
    });
  });
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const fmt = (x, digits = 1) => x.toFixed(digits);
export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
