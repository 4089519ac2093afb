// Marketplace: `POST /licenses/validate` (the hot path of sellers' software: one D1 round trip, the
// key looked up by its SHA-256 with its active instances) against `GET /me` on the same service
// (the authenticated floor: a JWT check and a user the isolate knows), with wrk; and the download
// of a 10 MiB file through `/d/{token}` (signature, grant and version checked, the object streamed
// from R2, the download counted) against the baseline's `/r2/<key>`, the same bytes read from its
// own local R2 with no checks at all. Then the accounting: every validation answered `valid` and
// changed nothing (no activation), every download was whole with the file's SHA-256, and the
// grant counted each one once.
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { client, connections, fmt, freshState, jwt, log, median, plural, readUsers, rounds, runWrk, startService, threads, work } from "./lib.mjs";

const perConnection = Number(process.env.BENCH_REQUESTS ?? 400);
const licenses = Number(process.env.BENCH_LICENSES ?? 100);
const downloaders = Number(process.env.BENCH_DOWNLOADERS ?? 4);
const downloadsPerClient = Number(process.env.BENCH_DOWNLOADS ?? 3);
const FILE_BYTES = 10 * 1024 * 1024;
const API = "/api/v1/monetization";
const MiB = 1024 * 1024;

/// Downloads `url` once, as client `n`: bytes, SHA-256, status.
async function download(url, n) {
  const r = await fetch(url, { headers: { "CF-Connecting-IP": `10.250.0.${n + 1}` } });
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of r.body) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { status: r.status, bytes, sha256: hash.digest("hex") };
}

/// `downloaders` clients at once, `downloadsPerClient` downloads each: MiB/s over the wall time,
/// each download's latency; throws on a download that is not the file.
async function downloadRound(url, sha256) {
  const latencies = [];
  let bytes = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: downloaders }, async (_, n) => {
    for (let i = 0; i < downloadsPerClient; i++) {
      const t = performance.now();
      const d = await download(url, n);
      latencies.push(performance.now() - t);
      if (d.status !== 200 || d.bytes !== FILE_BYTES || d.sha256 !== sha256) throw new Error(`download of ${url}: ${JSON.stringify(d)}`);
      bytes += d.bytes;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { mibps: bytes / MiB / seconds, p50: latencies[Math.floor(latencies.length / 2)], max: latencies.at(-1), count: latencies.length };
}

export async function benchMarketplace({ secret, baseline }) {
  const persist = join(work, "marketplace-state");
  freshState(persist, secret, "bench-admin");
  log("marketplace: starting the service");
  const service = await startService("marketplace-service", persist, secret);
  const seller = client(service, jwt(secret, "bench-seller"));
  const item = await seller("POST", "/marketplace/items", { title: "Bench plugin", category: "plugin", price_cents: 0 });
  const upload = async (id, bytes) => {
    const r = await fetch(`${service}${API}/marketplace/items/${id}/file`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${jwt(secret, "bench-seller")}`, "Content-Type": "application/zip", "Content-Length": String(bytes.length) },
      body: bytes,
    });
    if (r.status !== 201) throw new Error(`upload: ${r.status} ${await r.text()}`);
  };
  const file = randomBytes(FILE_BYTES);
  const sha256 = createHash("sha256").update(file).digest("hex");
  await upload(item.id, file);
  await seller("PATCH", `/marketplace/items/${item.id}`, { status: "published" });

  // Buyers of the (free) item: one license each.
  log(`marketplace: ${licenses} buyers`);
  const keys = [];
  let firstOrder = null;
  for (let i = 0; i < licenses; i += 8) {
    await Promise.all(Array.from({ length: Math.min(8, licenses - i) }, async (_, k) => {
      const buyer = `bench-buyer-${i + k}`;
      const r = await fetch(`${service}${API}/marketplace/items/${item.id}/purchase`, {
        method: "POST",
        headers: { Authorization: `Bearer ${jwt(secret, buyer)}`, "Content-Type": "application/json", "Idempotency-Key": `bench-${buyer}` },
        body: "{}",
      });
      const order = await r.json();
      if (r.status !== 201 || order.status !== "completed") throw new Error(`purchase: ${r.status} ${JSON.stringify(order)}`);
      keys.push(order.license.key);
      if (i + k === 0) firstOrder = { buyer, order };
    }));
  }
  const bodiesFile = join(work, "marketplace.bodies");
  writeFileSync(bodiesFile, keys.map((k) => JSON.stringify({ license_key: k, item_id: item.id })).join("\n") + "\n");
  // The /me side: users the isolate knows, as in the reads bench (the baseline's D1 has their rows).
  const users = readUsers;
  const tokensFile = join(work, "marketplace.tokens");
  writeFileSync(tokensFile, users.map((u) => jwt(secret, u)).join("\n") + "\n");
  for (let i = 0; i < users.length; i += 8) await Promise.all(users.slice(i, i + 8).map((u) => client(service, jwt(secret, u))("GET", "/me")));

  const targets = {
    d1: () => runWrk(baseline, perConnection, ["api", "GET", "/d1/1", tokensFile]),
    me: () => runWrk(service, perConnection, ["api", "GET", `${API}/me`, tokensFile]),
    validate: () => runWrk(service, perConnection, ["post", `${API}/licenses/validate`, bodiesFile, '"code":"valid"']),
  };
  log(`marketplace: warming up (${threads} threads, ${connections} connections)`);
  for (const [name, run] of Object.entries(targets)) {
    const r = await run();
    if (r.others) throw new Error(`marketplace warm-up, ${name}: ${r.others} responses other than the expected 200`);
  }
  const results = { d1: [], me: [], validate: [] };
  for (let round = 1; round <= rounds; round++) {
    for (const [name, run] of Object.entries(targets)) {
      const r = await run();
      if (r.others) throw new Error(`marketplace round ${round}, ${name}: ${r.others} responses other than the expected 200`);
      results[name].push(r);
    }
    log(`marketplace round ${round}: ${Object.entries(results).map(([k, l]) => `${k} ${fmt(l.at(-1).rps, 0)} req/s p99 ${fmt(l.at(-1).p99)} ms`).join(" | ")}`);
  }
  const validations = results.validate.reduce((n, r) => n + r.ok, 0);
  const perRequest = (name, key) => {
    const [sum, timed] = results[name].reduce(([s, t], r) => [s + r[key], t + r.timed], [0, 0]);
    return timed ? sum / timed : NaN;
  };

  // Downloads: the buyer's link, and the same bytes in the baseline's R2.
  const buyerClient = client(service, jwt(secret, firstOrder.buyer));
  const purchase = await buyerClient("GET", `/marketplace/purchases/${firstOrder.order.order_id}`);
  const link = `${service}${new URL(purchase.download_url).pathname}`;
  const put = await fetch(`${baseline}/r2/bench-file`, { method: "PUT", body: file });
  if (put.status !== 200) throw new Error(`baseline R2 put: ${put.status}`);
  const downloadTargets = { r2: `${baseline}/r2/bench-file`, service: link };
  log(`marketplace: downloads (${downloaders} clients × ${downloadsPerClient} of ${FILE_BYTES / MiB} MiB per target and round)`);
  for (const url of Object.values(downloadTargets)) await downloadRound(url, sha256);
  let serviceDownloads = downloaders * downloadsPerClient;
  const downloads = { r2: [], service: [] };
  for (let round = 1; round <= rounds; round++) {
    for (const [name, url] of Object.entries(downloadTargets)) {
      const r = await downloadRound(url, sha256);
      downloads[name].push(r);
      if (name === "service") serviceDownloads += r.count;
    }
    log(`marketplace downloads round ${round}: ${Object.entries(downloads).map(([k, l]) => `${k} ${fmt(l.at(-1).mibps, 0)} MiB/s`).join(" | ")}`);
  }

  // Accounting: validations changed nothing; the grant counted every download once.
  const mine = await seller("GET", "/marketplace/seller/items");
  const counted = mine.items.find((i) => i.id === item.id)?.seller?.downloads;
  let activations = 0;
  for (let cursor = ""; ;) {
    const page = await seller("GET", `/marketplace/items/${item.id}/licenses?limit=100${cursor}`);
    activations += page.items.reduce((n, l) => n + l.activation_usage, 0);
    if (!page.next_cursor) break;
    cursor = `&cursor=${page.next_cursor}`;
  }
  const audit = await client(service, jwt(secret, "bench-admin"))("GET", "/admin/ledger-audit");
  const accountingOk = counted === serviceDownloads && activations === 0 && audit.violations.length === 0;

  const m = (list, key) => median(list.map((r) => r[key]));
  const ratio = m(results.validate, "rps") / m(results.me, "rps");
  const downloadRatio = m(downloads.service, "mibps") / m(downloads.r2, "mibps");
  const table = [
    "| request | D1 round trips per request | requests/s | p50 ms | p99 ms |",
    "|---|---:|---:|---:|---:|",
    `| baseline: \`/d1/1\`, one D1 query, no checks (JS) | 1 | ${fmt(m(results.d1, "rps"), 0)} | ${fmt(m(results.d1, "p50"))} | ${fmt(m(results.d1, "p99"))} |`,
    `| \`GET /me\` (a user the isolate knows) | ${fmt(perRequest("me", "d1"), 3)} | ${fmt(m(results.me, "rps"), 0)} | ${fmt(m(results.me, "p50"))} | ${fmt(m(results.me, "p99"))} |`,
    `| \`POST /licenses/validate\` (${licenses} keys, throttled per IP) | ${fmt(perRequest("validate", "d1"), 3)} | ${fmt(m(results.validate, "rps"), 0)} | ${fmt(m(results.validate, "p50"))} | ${fmt(m(results.validate, "p99"))} |`,
  ].join("\n");
  const downloadTable = [
    "| download of 10 MiB | MiB/s | p50 ms per download | slowest ms |",
    "|---|---:|---:|---:|",
    `| baseline: \`/r2/<key>\`, the object streamed with no checks (JS) | ${fmt(m(downloads.r2, "mibps"), 0)} | ${fmt(m(downloads.r2, "p50"), 0)} | ${fmt(m(downloads.r2, "max"), 0)} |`,
    `| \`GET /d/{token}\` (service) | ${fmt(m(downloads.service, "mibps"), 0)} | ${fmt(m(downloads.service, "p50"), 0)} | ${fmt(m(downloads.service, "max"), 0)} |`,
  ].join("\n");
  const section = `## Marketplace: license validation and downloads

Validation load: \`wrk -t ${threads} -c ${connections}\`, exactly ${perConnection * connections} requests per target and round; \`POST /licenses/validate\`
bodies rotate over ${licenses} licenses of one item (each answered \`"code":"valid"\`, else the run fails), from 500 client
addresses (the route is throttled per IP); \`GET /me\` and the baseline's \`/d1/1\` rotate over ${users.length} users' tokens. ${plural(rounds, "round")} in turn after a
warm-up. Medians of the rounds:

${table}

Validations per second ÷ \`GET /me\` per second: **${fmt(ratio, 2)}** (p99 ${fmt(m(results.validate, "p99") / m(results.me, "p99"), 2)}×); ÷ the baseline's one D1 query with no
checks: **${fmt(m(results.validate, "rps") / m(results.d1, "rps"), 2)}**. \`GET /me\` makes no D1 round trip for a user the isolate knows, a validation
makes one, and a local D1 query costs more than everything else a request does here: the second ratio is the one that
shows the validation's own cost.

Downloads: ${downloaders} clients at once, ${downloadsPerClient} downloads each of the same 10 MiB file per target and round, each
hashed by the client and checked against the upload's SHA-256. The service checks the signed token, reads the grant and
the item's versions in D1, streams the object from its local R2 (Range-capable, with \`ETag\` and \`Content-Disposition\`)
and counts the download; the baseline streams its own copy of the bytes from its local R2 with no checks. Medians:

${downloadTable}

Service MiB/s ÷ baseline MiB/s: **${fmt(downloadRatio, 2)}**.

Accounting: ${validations.toLocaleString("en")} validations answered \`valid\` and ${activations} activations exist (validation has no side
effects); ${serviceDownloads} downloads of the service's link, the grant counted ${counted}; the ledger audit found
${audit.violations.length} violations: **${accountingOk ? "exact" : "MISMATCH"}**.
`;
  const summary = `${table}\nvalidate ÷ /me: ${fmt(ratio, 2)}, ÷ /d1/1: ${fmt(m(results.validate, "rps") / m(results.d1, "rps"), 2)}\n${downloadTable}\nservice ÷ baseline download: ${fmt(downloadRatio, 2)}; accounting ${accountingOk ? "exact" : `MISMATCH (downloads ${counted} of ${serviceDownloads}, activations ${activations}, audit ${audit.violations.length})`}`;
  return { title: "## Marketplace", section, summary, ok: accountingOk };
}
