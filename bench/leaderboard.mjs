// Leaderboards with 100,000 members: update throughput through `POST /admin/activity` and the
// latency of `GET /rewards/leaderboard` (top 10, and top 10 with the caller's rank), against
// `GET /me` on the same service (the JWT checked, the user kept by the isolate: the cheapest
// authenticated request) and a constant JSON 200 from the baseline Worker, in alternating rounds,
// all served by scripts/serve.mjs. Then the totals are checked
// in the stores themselves: D1's `user_metrics` and the Durable Object's boards must hold exactly
// the seeded amounts plus every event the service accepted.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { client, connections, fmt, freshState, jwt, log, median, rounds, runWrk, startService, threads, work } from "./lib.mjs";

const members = Number(process.env.BENCH_MEMBERS ?? 100_000);
const readsPerConnection = Number(process.env.BENCH_READS ?? 100);
const writesPerConnection = Number(process.env.BENCH_WRITES ?? 10);
const eventsPerWrite = Number(process.env.BENCH_EVENTS_PER_WRITE ?? 100);
const SEED_BATCH = 1_000;
const API = "/api/v1/monetization";
const BOARD = `${API}/rewards/leaderboard?category=api_usage&period=all_time&limit=10`;

/// Deterministic pseudo-random seed amounts (1 … 1,000,000; ties happen, as in real boards).
function seedAmount(i) {
  return (Math.imul(i + 1, 2654435761) >>> 0) % 1_000_000 + 1;
}

function tokensFile(name, secret, ids) {
  const file = join(work, `${name}.tokens`);
  writeFileSync(file, ids.map((id) => jwt(secret, id)).join("\n") + "\n");
  return file;
}

/// Activity batches D1's outbox still holds unconfirmed by the Leaderboard objects.
function pendingBatches(persist) {
  const script = `
import glob, sqlite3, sys
n = 0
for path in glob.glob(sys.argv[1] + "/v3/d1/**/*.sqlite", recursive=True):
    con = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
    try:
        n += con.execute("SELECT COUNT(*) FROM activity_batches WHERE state = 'pending'").fetchone()[0]
    except sqlite3.Error:
        pass
    finally:
        con.close()
print(n)
`;
  return Number(execFileSync("python3", ["-c", script, persist], { encoding: "utf8" }).trim());
}

/// Sums read straight from the local SQLite files of D1 and of the `api_usage` Leaderboard object,
/// the bucket counts' totals, and the all-time ranks of `users` counted row by row.
function storedTotals(persist, users) {
  const script = `
import glob, json, sqlite3, sys
root = sys.argv[1]
def rows(pattern, sql):
    for path in glob.glob(root + pattern, recursive=True):
        con = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
        try:
            return con.execute(sql).fetchall()
        except sqlite3.Error:
            pass
        finally:
            con.close()
    return None
d1 = rows("/v3/d1/**/*.sqlite", "SELECT COALESCE(SUM(value), 0), COUNT(*) FROM user_metrics WHERE metric = 'api_calls'")
do = rows("/v3/do/*Leaderboard*/*.sqlite", "SELECT substr(board, 1, instr(board, ':') - 1), SUM(score), COUNT(*) FROM scores GROUP BY 1")
buckets = rows("/v3/do/*Leaderboard*/*.sqlite", "SELECT substr(board, 1, instr(board, ':') - 1), SUM(members) FROM buckets GROUP BY 1")
ranks = {}
for user in json.loads(sys.argv[2]):
    ranks[user] = rows("/v3/do/*Leaderboard*/*.sqlite", f"""
        SELECT COUNT(*) + 1 FROM scores AS s, (SELECT score, reached_at FROM scores WHERE board = 'all_time:all_time' AND user_id = '{user}') AS m
        WHERE s.board = 'all_time:all_time' AND (s.score > m.score OR (s.score = m.score
          AND (s.reached_at < m.reached_at OR (s.reached_at = m.reached_at AND s.user_id < '{user}'))))""")[0][0]
print(json.dumps({"d1": d1, "do": do, "buckets": buckets, "ranks": ranks}))
`;
  return JSON.parse(execFileSync("python3", ["-c", script, persist, JSON.stringify(users)], { encoding: "utf8" }));
}

export async function benchLeaderboard({ secret, baseline }) {
  const persist = join(work, "leaderboard-state");
  freshState(persist, secret, "bench-admin");
  log("leaderboard: starting the service");
  const service = await startService("leaderboard-service", persist, secret);
  const admin = client(service, jwt(secret, "bench-admin"));

  // Writers: one admin account per connection (the main API's service accounts), so the per-user
  // rate limit (600/min) applies to each as it would in production.
  const writerIds = Array.from({ length: connections }, (_, i) => `bench-writer-${i}`);
  for (const id of writerIds) {
    await client(service, jwt(secret, id))("GET", "/me");
    await admin("PATCH", `/admin/users/${id}`, { is_admin: true });
  }

  const occurredAt = new Date().toISOString().slice(0, 19) + "Z";
  log(`leaderboard: seeding ${members} members in requests of ${SEED_BATCH} events`);
  let seeded = 0;
  const seedStarted = Date.now();
  const batches = Array.from({ length: Math.ceil(members / SEED_BATCH) }, (_, b) => b);
  const seedOne = async (b) => {
    const events = [];
    for (let i = b * SEED_BATCH; i < Math.min(members, (b + 1) * SEED_BATCH); i++) {
      events.push({ id: `seed-${i}`, user_id: `member-${i}`, metric: "api_calls", amount: seedAmount(i), occurred_at: occurredAt });
      seeded += seedAmount(i);
    }
    const r = await admin("POST", "/admin/activity", { events });
    if (r.accepted !== events.length) throw new Error(`seed batch ${b}: ${JSON.stringify(r)}`);
  };
  const workers = Array.from({ length: 4 }, async (_, w) => {
    for (let b = w; b < batches.length; b += 4) await seedOne(b);
  });
  await Promise.all(workers);
  const seedSeconds = (Date.now() - seedStarted) / 1000;

  // Readers: members spread over the board; the 64 lowest scores (ranks near the bottom: the
  // rank count's worst case); users with no score (top 10 only).
  const byScore = Array.from({ length: members }, (_, i) => i).sort((a, b) => seedAmount(a) - seedAmount(b) || b - a);
  const readerIds = Array.from({ length: 256 }, (_, k) => `member-${Math.floor((k * members) / 256)}`);
  const bottomIds = byScore.slice(0, 64).map((i) => `member-${i}`);
  const outsiderIds = Array.from({ length: 64 }, (_, k) => `bench-reader-${k}`);
  const readers = tokensFile("readers", secret, readerIds);
  const bottom = tokensFile("bottom", secret, bottomIds);
  const outsiders = tokensFile("outsiders", secret, outsiderIds);
  // First sight provisions a user (a D1 write): every reader is provisioned before the load, so the
  // rounds measure reads.
  log("leaderboard: provisioning the readers");
  const readerSet = [...new Set([...readerIds, ...bottomIds, ...outsiderIds])];
  for (let i = 0; i < readerSet.length; i += 8) {
    await Promise.all(readerSet.slice(i, i + 8).map((id) => client(service, jwt(secret, id))("GET", "/me")));
  }
  const writers = tokensFile("writers", secret, writerIds);
  const nonce = `run${Date.now()}`;
  const write = (perConnection) =>
    runWrk(service, perConnection, ["api", "POST", `${API}/admin/activity`, writers, "activity", String(eventsPerWrite), String(members), occurredAt, `${nonce}-${perConnection}-${Math.random()}`]);

  log(`leaderboard: warming up (${threads} threads, ${connections} connections)`);
  let accepted = (await write(1)).accepted;
  const targets = {
    baseline: () => runWrk(baseline, readsPerConnection, ["api", "GET", "/api/status", readers]),
    me: () => runWrk(service, readsPerConnection, ["api", "GET", `${API}/me`, readers]),
    top: () => runWrk(service, readsPerConnection, ["api", "GET", BOARD, outsiders]),
    rank: () => runWrk(service, readsPerConnection, ["api", "GET", BOARD, readers]),
    bottom: () => runWrk(service, readsPerConnection, ["api", "GET", BOARD, bottom]),
    update: () => write(writesPerConnection),
  };
  for (const name of ["me", "top", "rank", "bottom"]) {
    await runWrk(service, 4, ["api", "GET", name === "me" ? `${API}/me` : BOARD, { me: readers, top: outsiders, rank: readers, bottom }[name]]);
  }
  const results = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const [name, run] of Object.entries(targets)) {
      const r = await run();
      if (r.others) throw new Error(`leaderboard round ${round}, ${name}: ${r.others} responses other than 200`);
      if (name === "update") accepted += r.accepted;
      results[name].push(r);
    }
    const line = Object.entries(results).map(([k, list]) => `${k} ${fmt(list.at(-1).rps, 0)} req/s p50 ${fmt(list.at(-1).p50)} ms`).join(" | ");
    log(`leaderboard round ${round}: ${line}`);
  }

  // Every event sent was accepted (ids are fresh), so `accepted` is checked, not trusted.
  const sentUpdates = (1 + rounds * writesPerConnection) * connections * eventsPerWrite;
  if (accepted !== sentUpdates) throw new Error(`leaderboard: ${sentUpdates} update events sent, the service accepted ${accepted}`);
  // The boards are updated after each response (wait_until); a publish that failed is re-sent by
  // the cron. Wait until D1's outbox has no batch left unconfirmed, firing the cron meanwhile.
  for (let i = 0; ; i++) {
    if (pendingBatches(persist) === 0) break;
    if (i === 300) throw new Error("leaderboard: activity batches still unconfirmed after 60 s");
    if (i % 25 === 24) await fetch(`${service}/cdn-cgi/handler/scheduled?cron=*+*+*+*+*`);
    await new Promise((res) => setTimeout(res, 200));
  }
  // Spot-check ranks from the top, the middle and the bottom against a row-by-row count.
  const checked = [0, 1, Math.floor(members / 2), members - 2, members - 1].map((k) => `member-${byScore[k]}`);
  const apiRanks = {};
  for (const user of checked) {
    apiRanks[user] = (await client(service, jwt(secret, user))("GET", BOARD.slice(API.length)))?.me?.rank;
  }
  const totals = storedTotals(persist, checked);
  const ranksOk = checked.every((u) => apiRanks[u] === totals.ranks[u]);
  const expected = seeded + accepted;
  const d1Total = totals.d1?.[0]?.[0];
  const boards = Object.fromEntries((totals.do ?? []).map(([window, sum, count]) => [window, { sum, count }]));
  const bucketTotals = Object.fromEntries((totals.buckets ?? []).map(([window, n]) => [window, n]));
  const accountingOk = d1Total === expected
    && ["daily", "weekly", "monthly", "all_time"].every((w) => boards[w]?.sum === expected && boards[w]?.count === members && bucketTotals[w] === members);

  const m = (name, key) => median(results[name].map((r) => r[key]));
  const sentEvents = rounds * writesPerConnection * connections * eventsPerWrite;
  const row = (label, name) => {
    const me = (key) => m(name, key) / m("me", key);
    return `| ${label} | ${fmt(m(name, "rps"), 0)} | ${fmt(m(name, "p50"))} | ${fmt(m(name, "p99"))} | ${fmt(me("p50"), 2)} | ${fmt(me("p99"), 2)} | ${fmt(m(name, "p50") / m("baseline", "p50"), 2)} |`;
  };
  const table = [
    "| request | requests/s | p50 ms | p99 ms | p50 ÷ /me | p99 ÷ /me | p50 ÷ baseline |",
    "|---|---:|---:|---:|---:|---:|---:|",
    row("baseline: constant JSON 200 (JS)", "baseline"),
    row("`GET /me` (JWT; the user as the isolate keeps it: D1 once per user and 10 s)", "me"),
    row("leaderboard top 10 (caller not on the board)", "top"),
    row("leaderboard top 10 + caller's rank (members across the board)", "rank"),
    row(`leaderboard top 10 + caller's rank (the 64 lowest: rank ≈ ${members.toLocaleString("en")})`, "bottom"),
    row(`\`POST /admin/activity\`, ${eventsPerWrite} events`, "update"),
  ].join("\n");
  const eventsPerSecond = m("update", "rps") * eventsPerWrite;
  const section = `## Leaderboards: ${members.toLocaleString("en")} members

Seeded with ${members.toLocaleString("en")} members of the \`api_usage\` boards (one event each, amounts 1–1,000,000) in requests of
${SEED_BATCH} events, 4 at a time: **${fmt(members / seedSeconds, 0)} events/s** (${fmt(seedSeconds)} s). Each event lands in all four
periods' boards, so that is ${fmt((4 * members) / seedSeconds, 0)} board rows/s.

Then ${rounds} rounds, each target in turn with \`wrk -t ${threads} -c ${connections}\` and an exact request count (reads:
${readsPerConnection * connections} per target and round; updates: ${writesPerConnection * connections} requests of ${eventsPerWrite} events for random
members, spread over ${connections} admin accounts). Reads rotate over 256 members' tokens (64 for the bottom and
outsider rows); \`GET /rewards/leaderboard?category=api_usage&period=all_time&limit=10\`. Medians of the rounds:

${table}

Updates: **${fmt(eventsPerSecond, 0)} events/s** through the API (${fmt(m("update", "rps"), 1)} requests/s of ${eventsPerWrite} events; each request
is one D1 transaction — events, totals, badges — and one call to the category's Leaderboard object that upserts
${eventsPerWrite} members × 4 boards in one transaction).

Accounting, read from the stores' SQLite files after the run: ${expected.toLocaleString("en")} expected (seeded amounts plus
${accepted.toLocaleString("en")} accepted update events of amount 1, ${sentEvents.toLocaleString("en")} sent in the measured rounds plus the warm-up);
D1 \`user_metrics\` holds ${d1Total?.toLocaleString("en")}, the object's boards hold ${["daily", "weekly", "monthly", "all_time"].map((w) => `${w} ${boards[w]?.sum?.toLocaleString("en")} (${boards[w]?.count?.toLocaleString("en")} members)`).join(", ")}:
**${accountingOk ? "exact" : "MISMATCH"}**; every board's bucket counts add up to its members (${accountingOk ? "yes" : "see above"}).
Ranks from the API against a row-by-row count in the object's SQLite file (the lowest score, the second lowest, the middle, the second highest, the highest):
${checked.map((u) => `${apiRanks[u]} = ${totals.ranks[u]}`).join(", ")} (**${ranksOk ? "equal" : "MISMATCH"}**).

Rounds (requests/s, p50 ms):

| round | ${Object.keys(results).join(" | ")} |
|---|${Object.keys(results).map(() => "---:").join("|")}|
${results.me.map((_, i) => `| ${i + 1} | ${Object.values(results).map((list) => `${fmt(list[i].rps, 0)}, ${fmt(list[i].p50)}`).join(" | ")} |`).join("\n")}
`;
  const summary = [table, `updates: ${fmt(eventsPerSecond, 0)} events/s; seeding ${fmt(members / seedSeconds, 0)} events/s`,
    `leaderboard accounting: expected ${expected}, D1 ${d1Total}, boards ${JSON.stringify(boards)}, buckets ${JSON.stringify(bucketTotals)} (${accountingOk ? "exact" : "MISMATCH"})`,
    `ranks (API = row count): ${checked.map((u) => `${apiRanks[u]} = ${totals.ranks[u]}`).join(", ")} (${ranksOk ? "equal" : "MISMATCH"})`].join("\n");
  return { title: "## Leaderboards", section, summary, ok: accountingOk && ranksOk };
}
