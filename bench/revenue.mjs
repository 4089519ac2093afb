// Revenue ingest: `POST /admin/revenue` with 1,000 records per request against `POST /admin/activity`
// with 1,000 events per request on the same service, in alternating rounds, each request from one of
// `BENCH_WRITERS` concurrent clients (admin accounts, as the main API's service accounts). Records
// are split when they arrive (terms, owners, the last closed period read in one round trip, then
// one batch: records, lines, the read-back); events are counted with badges in one batch and
// published to the Leaderboard objects after the response. Then the stores are checked: every sent
// record is stored once with its lines, and the ledger audit is empty.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { client, fmt, freshState, jwt, log, median, rounds, startService, work } from "./lib.mjs";

const writers = Number(process.env.BENCH_WRITERS ?? 4);
const requestsPerWriter = Number(process.env.BENCH_INGEST_REQUESTS ?? 5);
const PER_REQUEST = 1_000;

/// Rows of the revenue tables, read from D1's local SQLite file.
function storedRevenue(persist) {
  const script = `
import glob, json, sqlite3, sys
for path in glob.glob(sys.argv[1] + "/v3/d1/**/*.sqlite", recursive=True):
    con = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
    try:
        r = con.execute("SELECT COUNT(*), COALESCE(SUM(gross_cents), 0) FROM revenue_records").fetchone()
        l = con.execute("SELECT COUNT(DISTINCT record_id) FROM revenue_lines").fetchone()
        print(json.dumps({"records": r[0], "gross": r[1], "with_lines": l[0]}))
        break
    except sqlite3.Error:
        pass
    finally:
        con.close()
`;
  return JSON.parse(execFileSync("python3", ["-c", script, persist], { encoding: "utf8" }).trim() || "{}");
}

function lastMonth() {
  const d = new Date();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() - 1);
  return d.toISOString().slice(0, 7);
}

export async function benchRevenue({ secret }) {
  const persist = join(work, "revenue-state");
  freshState(persist, secret, "bench-admin");
  log("revenue: starting the service");
  const service = await startService("revenue-service", persist, secret);
  const admin = client(service, jwt(secret, "bench-admin"));
  const writerIds = Array.from({ length: writers }, (_, i) => `bench-ingest-${i}`);
  for (const id of writerIds) {
    await client(service, jwt(secret, id))("GET", "/me");
    await admin("PATCH", `/admin/users/${id}`, { is_admin: true });
  }
  const clients = writerIds.map((id) => client(service, jwt(secret, id)));
  const month = lastMonth();
  const occurredAt = new Date().toISOString().slice(0, 19) + "Z";
  let serial = 0;
  let sentGross = 0;
  const activity = () => ({
    events: Array.from({ length: PER_REQUEST }, () => {
      const n = serial++;
      return { id: `evt-${n}`, user_id: `member-${n % 5_000}`, metric: "api_calls", amount: 1, occurred_at: occurredAt };
    }),
  });
  const revenue = () => ({
    records: Array.from({ length: PER_REQUEST }, () => {
      const n = serial++;
      const gross = (Math.imul(n + 1, 2654435761) >>> 0) % 100_000 - 5_000; // chargebacks too
      sentGross += gross;
      return {
        id: `rev-${n}`, creator_id: `creator-${n % 500}`, channel_id: `channel-${n % 2_000}`, video_id: `video-${n % 20_000}`,
        period: month, gross_cents: gross, currency: "usd", views: n % 1_000, api_calls: n % 100, matches: n % 10,
      };
    }),
  });
  // Every request from `writers` clients at once, `requestsPerWriter` each; items/s over the wall
  // time, and each request's latency.
  const run = async (path, body, field) => {
    const latencies = [];
    let accepted = 0;
    const started = performance.now();
    await Promise.all(clients.map(async (call) => {
      for (let i = 0; i < requestsPerWriter; i++) {
        const payload = body();
        const t = performance.now();
        const r = await call("POST", path, payload);
        latencies.push(performance.now() - t);
        accepted += r.accepted;
        if (r.accepted !== payload[field].length) throw new Error(`${path}: ${JSON.stringify(r).slice(0, 300)}`);
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return { perSecond: accepted / seconds, accepted, p50: latencies[Math.floor(latencies.length / 2)], max: latencies.at(-1) };
  };
  log(`revenue: warming up (${writers} clients × ${requestsPerWriter} requests of ${PER_REQUEST})`);
  let records = (await run("/admin/revenue", revenue, "records")).accepted;
  await run("/admin/activity", activity, "events");
  const results = { activity: [], revenue: [] };
  for (let round = 1; round <= rounds; round++) {
    results.activity.push(await run("/admin/activity", activity, "events"));
    const r = await run("/admin/revenue", revenue, "records");
    records += r.accepted;
    results.revenue.push(r);
    log(`revenue round ${round}: activity ${fmt(results.activity.at(-1).perSecond, 0)} events/s, revenue ${fmt(r.perSecond, 0)} records/s`);
  }
  const stored = storedRevenue(persist);
  const audit = await admin("GET", "/admin/ledger-audit");
  const accountingOk = stored.records === records && stored.with_lines === records && stored.gross === sentGross && audit.violations.length === 0;
  const m = (name, key) => median(results[name].map((r) => r[key]));
  const ratio = m("revenue", "perSecond") / m("activity", "perSecond");
  const table = [
    "| request | items/s | p50 ms per request | slowest ms |",
    "|---|---:|---:|---:|",
    `| \`POST /admin/activity\`, ${PER_REQUEST} events | ${fmt(m("activity", "perSecond"), 0)} | ${fmt(m("activity", "p50"), 0)} | ${fmt(m("activity", "max"), 0)} |`,
    `| \`POST /admin/revenue\`, ${PER_REQUEST} records | ${fmt(m("revenue", "perSecond"), 0)} | ${fmt(m("revenue", "p50"), 0)} | ${fmt(m("revenue", "max"), 0)} |`,
  ].join("\n");
  const section = `## Revenue ingest: records against activity events

Load: ${writers} admin clients at once, ${requestsPerWriter} requests each of ${PER_REQUEST} items, per target and round (${writers * requestsPerWriter * PER_REQUEST} items);
${rounds} rounds of \`POST /admin/activity\` (events of 5,000 members; counted with badges in one D1 batch, the
Leaderboard objects updated after the response) and \`POST /admin/revenue\` (records of 500 creators on 2,000 channels,
some negative; terms, owners and the last closed period read in one round trip, then records, lines and the read-back in
one batch) in turn after a warm-up. Medians of the rounds:

${table}

Records per second ÷ events per second: **${fmt(ratio, 2)}**.

Accounting, read from D1's SQLite file after the run: ${records.toLocaleString("en")} records accepted, D1 holds ${stored.records?.toLocaleString("en")}
records (${stored.with_lines?.toLocaleString("en")} with their lines), gross ${stored.gross?.toLocaleString("en")} cents of ${sentGross.toLocaleString("en")} sent; the ledger audit
found ${audit.violations.length} violations: **${accountingOk ? "exact" : "MISMATCH"}**.

Rounds (items/s):

| round | activity | revenue |
|---|---:|---:|
${results.revenue.map((_, i) => `| ${i + 1} | ${fmt(results.activity[i].perSecond, 0)} | ${fmt(results.revenue[i].perSecond, 0)} |`).join("\n")}
`;
  const summary = `${table}\nrevenue ÷ activity: ${fmt(ratio, 2)}; accounting ${accountingOk ? "exact" : `MISMATCH ${JSON.stringify(stored)} audit ${audit.violations.length}`}`;
  return { title: "## Revenue ingest", section, summary, ok: accountingOk };
}
