#!/usr/bin/env node
// `npm run bench`: the campaign click path (`GET /c/{code}`) against a baseline Worker that only
// answers a constant 302, both under `wrangler dev` on this machine, driven in the same run by
// the same load (wrk, one connection per thread, distinct visitor identities, an exact number of
// requests). Rounds alternate baseline / campaign; the table reports medians and ratios. Then the
// campaign's stats must equal the clicks sent. Writes BENCHMARKS.md.
//
// Options (environment): BENCH_THREADS (wrk threads, 2), BENCH_CONNECTIONS (32), BENCH_REQUESTS
// (requests per connection and round, 400), BENCH_ROUNDS (3).
import { spawn, execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync, readFileSync, openSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const wranglerJs = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
const threads = Number(process.env.BENCH_THREADS ?? 2);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const perConnection = Number(process.env.BENCH_REQUESTS ?? 400);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const work = join(root, "target", "bench");
const children = [];

function log(message) {
  console.error(`bench: ${message}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function ensureWrk() {
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

function wrangler(args, env = {}) {
  return execFileSync(process.execPath, [wranglerJs, ...args], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", SOUNDHASH_SKIP_BUILD: "1", ...env },
  });
}

async function startDev(name, configArgs, port, persist, vars) {
  const logFile = openSync(join(work, `${name}.log`), "w");
  const args = [wranglerJs, "dev", ...configArgs, "--ip", "127.0.0.1", "--port", String(port),
    "--inspector-port", String(await freePort()), "--show-interactive-dev-session=false", "--log-level", "warn"];
  if (persist) args.push("--persist-to", persist);
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn(process.execPath, args, {
    cwd: root,
    detached: true,
    stdio: ["ignore", logFile, logFile],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      SOUNDHASH_SKIP_BUILD: "1",
      WRANGLER_REGISTRY_PATH: join(work, `${name}-registry`),
      WRANGLER_CI_DISABLE_CONFIG_WATCHING: "true",
    },
  });
  children.push(child);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      const r = await fetch(`${base}/healthz`, { redirect: "manual" });
      if (r.status === 200 || r.status === 302) {
        // wrangler rebuilds (a no-op here) and reloads the worker once it is up; let it settle.
        await new Promise((res) => setTimeout(res, 3000));
        return base;
      }
    } catch {}
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`${name} did not start; see ${join(work, `${name}.log`)}`);
}

function stopAll() {
  for (const child of children) {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
  }
}
process.on("exit", stopAll);
process.on("SIGINT", () => process.exit(130));

function jwt(secret, sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const data = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, iat: now, exp: now + 3600 })}`;
  return `${data}.${createHmac("sha256", secret).update(data).digest("base64url")}`;
}

// wrk would run for its whole -d even when every thread is through; the script prints a line per
// finished thread, and wrk is then stopped with SIGINT (it prints its results on SIGINT). -d is
// only a safety net: a thread cut off by it would leave requests unanswered, reported as unfinished.
function runWrk(base, path, perConnection) {
  const perThread = (perConnection * connections) / threads;
  const args = ["-t", String(threads), "-c", String(connections), "-d", "600s", "--timeout", "10s",
    "-s", join(root, "bench", "clicks.lua"), base, "--", String(perThread), path];
  return new Promise((resolve, reject) => {
    const wrk = spawn("wrk", args, { stdio: ["ignore", "pipe", "inherit"] });
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

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x, digits = 1) => x.toFixed(digits);

async function main() {
  const wrkVersion = ensureWrk();
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const persist = join(work, "state");
  const secret = randomBytes(24).toString("hex");
  log("applying migrations to fresh local D1 databases");
  for (const dir of [persist, join(work, "state-quiet")]) {
    wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", dir]);
    execFileSync(process.execPath, [join(root, "scripts", "token.mjs"), "bench-admin", "--admin", "--persist-to", dir], {
      cwd: root, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, API_SECRET_KEY: secret },
    });
  }
  const admin = jwt(secret, "bench-admin");
  log("starting the service and the baseline under wrangler dev");
  const [servicePort, baselinePort] = [await freePort(), await freePort()];
  const service = await startDev("service", [], servicePort, persist, { API_SECRET_KEY: secret });
  // The same service logging only failures (REQUEST_LOG=errors), to show what the per-request log
  // line costs here: wrangler dev's node process handles every console line on the same 2 cores.
  const quietPort = await freePort();
  const quiet = await startDev("service-quiet", [], quietPort, join(work, "state-quiet"), { API_SECRET_KEY: secret, REQUEST_LOG: "errors" });
  const baseline = await startDev("baseline", ["-c", join(root, "bench", "baseline", "wrangler.toml")], baselinePort, null, {});

  const api = async (base, method, path, body) => {
    const r = await fetch(`${base}/api/v1/monetization${path}`, {
      method,
      headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" },
      body: body && JSON.stringify(body),
    });
    const json = await r.json();
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
  const liveCampaign = async (base) => {
    const campaign = await api(base, "POST", "/campaigns", {
      name: "Benchmark", offer: { type: "discount_percent", value: 10 }, landing_url: "https://soundhash.io/pricing?utm_source=bench",
    });
    await api(base, "PATCH", `/admin/campaigns/${campaign.campaign_code}`, { status: "active" });
    return campaign.campaign_code;
  };
  const code = await liveCampaign(service);
  const quietCode = await liveCampaign(quiet);

  log(`warming up (${threads} threads, ${connections} connections)`);
  await runWrk(baseline, "/", 20);
  const warm = await runWrk(service, `/c/${code}`, 20);
  await runWrk(quiet, `/c/${quietCode}`, 20);
  let sent = warm.redirects;

  const results = { baseline: [], campaign: [], quiet: [] };
  for (let round = 1; round <= rounds; round++) {
    const b = await runWrk(baseline, "/", perConnection);
    const c = await runWrk(service, `/c/${code}`, perConnection);
    const q = await runWrk(quiet, `/c/${quietCode}`, perConnection);
    // (Socket errors are not checked: parked connections are closed by the server while idle.
    // Every request sent got a response; non-302 answers would be counted in `others`.)
    if (b.others || c.others || q.others) {
      throw new Error(`round ${round}: non-302 responses: ${JSON.stringify({ b, c, q })}`);
    }
    sent += c.redirects;
    results.baseline.push(b);
    results.campaign.push(c);
    results.quiet.push(q);
    log(`round ${round}: baseline ${fmt(b.rps, 0)} req/s p99 ${fmt(b.p99)} ms | /c/{code} ${fmt(c.rps, 0)} req/s p99 ${fmt(c.p99)} ms | without access log ${fmt(q.rps, 0)} req/s p99 ${fmt(q.p99)} ms`);
  }

  // The clicks are recorded after the responses, in batches: give the last batch time to land.
  let stats;
  for (let i = 0; i < 50; i++) {
    await new Promise((res) => setTimeout(res, 200));
    stats = await api(service, "GET", `/admin/campaigns/${code}/stats`);
    if (stats.clicks >= sent) break;
  }
  await new Promise((res) => setTimeout(res, 1000));
  stats = await api(service, "GET", `/admin/campaigns/${code}/stats`);
  const visitors = threads * Math.min(250, (perConnection * connections) / threads);

  const m = (list, key) => median(list.map((r) => r[key]));
  const row = (name, list) => ({ name, rps: m(list, "rps"), p50: m(list, "p50"), p99: m(list, "p99") });
  const b = row("baseline: constant 302 (JS)", results.baseline);
  const c = row("/c/{code} (service)", results.campaign);
  const q = row("/c/{code}, REQUEST_LOG=errors", results.quiet);
  const ratio = { rps: c.rps / b.rps, p50: c.p50 / b.p50, p99: c.p99 / b.p99 };
  const quietRatio = { rps: q.rps / b.rps, p50: q.p50 / b.p50, p99: q.p99 / b.p99 };
  const accountingOk = stats.clicks === sent;
  const target = { throughput: ratio.rps >= 0.6, p99: ratio.p99 <= 2 };

  const table = [
    "| target | requests/s | p50 ms | p99 ms |",
    "|---|---:|---:|---:|",
    `| ${b.name} | ${fmt(b.rps, 0)} | ${fmt(b.p50)} | ${fmt(b.p99)} |`,
    `| ${c.name} | ${fmt(c.rps, 0)} | ${fmt(c.p50)} | ${fmt(c.p99)} |`,
    `| **ratio** (service / baseline) | **${fmt(ratio.rps, 2)}** | ${fmt(ratio.p50, 2)} | **${fmt(ratio.p99, 2)}** |`,
    `| ${q.name} | ${fmt(q.rps, 0)} | ${fmt(q.p50)} | ${fmt(q.p99)} |`,
    `| ratio without the access log | ${fmt(quietRatio.rps, 2)} | ${fmt(quietRatio.p50, 2)} | ${fmt(quietRatio.p99, 2)} |`,
  ].join("\n");
  const rawRows = results.campaign.map((cr, i) => {
    const [br, qr] = [results.baseline[i], results.quiet[i]];
    return `| ${i + 1} | ${fmt(br.rps, 0)} | ${fmt(br.p50)} | ${fmt(br.p99)} | ${fmt(cr.rps, 0)} | ${fmt(cr.p50)} | ${fmt(cr.p99)} | ${fmt(qr.rps, 0)} | ${fmt(qr.p99)} |`;
  });
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const machine = `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}`;
  const wranglerVersion = JSON.parse(readFileSync(join(root, "node_modules", "wrangler", "package.json"), "utf8")).version;
  const report = `# Benchmarks

Measured by \`npm run bench\` (bench/run.mjs) on ${new Date().toISOString().slice(0, 10)}. Machine: ${machine}.
Both Workers run under \`wrangler dev\` ${wranglerVersion} (local workerd) with \`--log-level warn\`; the load generator
(${wrkVersion.trim()}) runs on the same machine, so absolute numbers are this machine's and the ratios are the result.

## Campaign click path: \`GET /c/{code}\` against a constant 302

Load: \`wrk -t ${threads} -c ${connections}\`, exactly ${perConnection * connections} requests per target and round (the
script parks connections once the quota is sent and waits for every response), each thread cycling through 250 visitor
identities (${visitors} visitors: \`CF-Connecting-IP\` × browser user agent), ${rounds} rounds alternating baseline and
service after a warm-up. Medians of the rounds:

${table}

Target: the click path at ≥ 60 % of the baseline's throughput (${target.throughput ? "met" : "**not met**"}) with p99 ≤ 2×
the baseline's (${target.p99 ? "met" : "**not met**"}), in the default configuration (first service row).

The second service row is the same Worker with \`REQUEST_LOG=errors\` (no access-log line for successful requests).
The difference is mostly not the Worker's own work: under \`wrangler dev\`, wrangler's node process receives and
handles every console line, and it competes with workerd for the same 2 cores (while the service is under load,
node uses about half a core; with the baseline, which logs nothing, it idles).

Click accounting: ${sent} clicks sent (302s, warm-up included), the campaign's stats count **${stats.clicks}**
(${accountingOk ? "exact" : "**mismatch**"}); unique visitors ${stats.unique_visitors} (the load used ${visitors}; counted per hour).

Rounds:

| round | baseline req/s | p50 | p99 | /c/{code} req/s | p50 | p99 | no access log req/s | p99 |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${rawRows.join("\n")}

What the click path does per request: route, per-IP rate limit (Workers Rate Limiting binding), the campaign from a
per-isolate cache (D1 at most once per code and \`CAMPAIGN_CACHE_SECONDS\`), an HMAC visitor id, the 302; the click is
appended to the isolate's pending batch for the link and sent to the link's Durable Object by one request per batch
(\`wait_until\`, 25 ms), so the Durable Object sees one round trip per batch, not per click.

Command: \`npm run bench\` (options: BENCH_CONNECTIONS, BENCH_REQUESTS, BENCH_ROUNDS).
`;
  writeFileSync(join(root, "BENCHMARKS.md"), report);
  console.log(table);
  console.log(`\nclick accounting: sent ${sent}, counted ${stats.clicks} (${accountingOk ? "exact" : "MISMATCH"}); unique visitors ${stats.unique_visitors}`);
  console.log(`targets: throughput ≥ 0.60× ${target.throughput ? "met" : "NOT met"}, p99 ≤ 2× ${target.p99 ? "met" : "NOT met"}`);
  console.log("written to BENCHMARKS.md");
  if (!accountingOk) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`bench: ${e.stack ?? e}`);
  process.exitCode = 1;
}).finally(stopAll);
