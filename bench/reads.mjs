// Authenticated reads against a JS Worker making the same number of D1 round trips per request
// (the runtime's floor): `GET /me`, which for a user the isolate knows makes none, against the
// baseline's constant JSON 200, and `GET /referrals/balance`, one, against the baseline's `/d1/1`
// (the same balance query for the token's user, no JWT check); the baseline's `/d1/2` is shown for
// what a second round trip costs. The load rotates over distinct users' tokens (bench/load.lua
// `api`); the users are provisioned and their credit rows seeded before the rounds. Rounds
// alternate the targets after a warm-up; the table reports medians and ratios against the target
// (≥ 0.9× the baseline's throughput). Then the round trips are checked instead of assumed: the
// `Server-Timing` of a few requests per route must say 0 D1 round trips for `/me` and 1 for the
// balance of a user the isolate knows.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connections, creditRowsSql, d1Execute, fmt, jwt, log, median, migrate, plural, readUsers, rounds, runWrk, startService, threads, work } from "./lib.mjs";

const perConnection = Number(process.env.BENCH_REQUESTS ?? 400);
const TARGET_THROUGHPUT = 0.9;
const API = "/api/v1/monetization";
const RATE_LIMIT_USER = 600; // wrangler.toml: requests per user and 60 s

/// `Server-Timing: d1;count=N;…, do;count=M;…, total;dur=T` → { d1, do, total }.
function serverTiming(header) {
  const field = (name, key) => Number(new RegExp(`(?:^|,)\\s*${name};(?:[^,]*;)?${key}=([\\d.]+)`).exec(header ?? "")?.[1] ?? NaN);
  return { d1: field("d1", "count"), do: field("do", "count"), total: field("total", "dur") };
}

export async function benchReads({ secret, baseline, floor }) {
  const persist = join(work, "reads-state");
  migrate(persist);
  // The same credit rows as the baseline's D1 (bench/lib.mjs startBaseline), before the service
  // serves this D1.
  d1Execute(persist, creditRowsSql(readUsers));
  log("reads: starting the service");
  const service = await startService("reads-service", persist, secret);
  const tokens = Object.fromEntries(readUsers.map((u) => [u, jwt(secret, u)]));
  const tokensFile = join(work, "reads.tokens");
  writeFileSync(tokensFile, Object.values(tokens).join("\n") + "\n");
  const get = async (base, path, user) => {
    const r = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${tokens[user]}` } });
    return { status: r.status, timing: serverTiming(r.headers.get("Server-Timing")), body: await r.json() };
  };

  const perUser = ((rounds + 1) * 2 * perConnection * connections) / readUsers.length;
  if (perUser > RATE_LIMIT_USER * 0.8) {
    log(`reads: warning: ${fmt(perUser, 0)} service requests per user in this section; the per-user rate limit (${RATE_LIMIT_USER}/60 s) may refuse some`);
  }

  // First sight provisions a user (a D1 write): done for every user before the load.
  log(`reads: provisioning ${readUsers.length} users`);
  for (let i = 0; i < readUsers.length; i += 8) {
    await Promise.all(readUsers.slice(i, i + 8).map(async (u) => {
      const r = await get(service, `${API}/me`, u);
      if (r.status !== 200) throw new Error(`provisioning ${u}: ${r.status} ${JSON.stringify(r.body)}`);
    }));
  }

  const targets = {
    constant: { base: baseline, path: "/api/status", label: "baseline: constant JSON 200 (JS)" },
    floor: { base: floor, path: "/api/status", label: "Rust floor: constant JSON 200 (`worker` crate, bench/floor)", against: "constant", reference: true },
    me: { base: service, path: `${API}/me`, label: "`GET /me` (service)", against: "constant", floor: "floor" },
    d1: { base: baseline, path: "/d1/1", label: "baseline: `/d1/1`, the balance query (JS)" },
    balance: { base: service, path: `${API}/referrals/balance`, label: "`GET /referrals/balance` (service)", against: "d1" },
    d1x2: { base: baseline, path: "/d1/2", label: "baseline: `/d1/2`, the user's row, then the balance query (JS)" },
  };
  const run = (t, n) => runWrk(t.base, n, ["api", "GET", t.path, tokensFile]);
  log(`reads: warming up (${threads} threads, ${connections} connections, ${readUsers.length} users)`);
  for (const [name, t] of Object.entries(targets)) {
    const r = await run(t, 20);
    if (r.others) throw new Error(`reads warm-up, ${name}: ${r.others} responses other than 200`);
  }
  const results = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const [name, t] of Object.entries(targets)) {
      const r = await run(t, perConnection);
      if (r.others) throw new Error(`reads round ${round}, ${name}: ${r.others} responses other than 200`);
      results[name].push(r);
    }
    log(`reads round ${round}: ${Object.entries(results).map(([k, l]) => `${k} ${fmt(l.at(-1).rps, 0)} req/s p99 ${fmt(l.at(-1).p99)} ms`).join(" | ")}`);
  }

  // The round trips, from the service's own Server-Timing: for a few users, /me once (the
  // isolate's copy of the user may have expired since the rounds), then /me and the balance again
  // (a user the isolate knows). The balance must also equal the baseline's answer for the user.
  const sample = [0, 1, 2, 3, 4].map((k) => readUsers[Math.floor((k * readUsers.length) / 5)]);
  const checks = [];
  for (const user of sample) {
    const first = await get(service, `${API}/me`, user);
    const me = await get(service, `${API}/me`, user);
    const balance = await get(service, `${API}/referrals/balance`, user);
    const expected = await get(baseline, `/d1/1?user=${user}`, user);
    checks.push({ user, first, me, balance, sameBalance: JSON.stringify(balance.body) === JSON.stringify(expected.body) });
  }
  const list = (key, field) => checks.map((c) => c[key].timing[field]).join(" ");
  const statusesOk = checks.every((c) => c.first.status === 200 && c.me.status === 200 && c.balance.status === 200);
  const meOk = checks.every((c) => c.me.timing.d1 === 0 && c.me.timing.do === 0);
  const balanceOk = checks.every((c) => c.balance.timing.d1 === 1 && c.balance.timing.do === 0);
  const sameOk = checks.every((c) => c.sameBalance);
  const roundTripsOk = statusesOk && meOk && balanceOk && sameOk;

  const m = (name, key) => median(results[name].map((r) => r[key]));
  const verdict = (ok) => (ok ? "met" : "**not met**");
  // Round trips per request in the measured rounds: the service's rows from its Server-Timing
  // (summed by bench/load.lua), the baseline's by construction.
  const perRequest = (name, key) => {
    const [sum, timed] = results[name].reduce(([s, t], r) => [s + r[key], t + r.timed], [0, 0]);
    return timed ? sum / timed : NaN;
  };
  const timedOk = ["me", "balance"].every((name) => results[name].every((r) => r.timed === r.ok));
  const trips = { constant: "0", floor: "0", me: fmt(perRequest("me", "d1"), 3), d1: "1", balance: fmt(perRequest("balance", "d1"), 3), d1x2: "2" };
  const rows = Object.entries(targets).map(([name, t]) => {
    const cells = [t.label, trips[name], fmt(m(name, "rps"), 0), fmt(m(name, "p50")), fmt(m(name, "p99"))];
    if (!t.against) return `| ${cells.join(" | ")} | | | |`;
    const ratio = { rps: m(name, "rps") / m(t.against, "rps"), p99: m(name, "p99") / m(t.against, "p99") };
    const toFloor = t.floor ? ` (${fmt(m(name, "rps") / m(t.floor, "rps"), 2)}× the Rust floor)` : "";
    if (t.reference) return `| ${cells.join(" | ")} | ${fmt(ratio.rps, 2)} | ${fmt(ratio.p99, 2)} | |`;
    return `| ${cells.join(" | ")} | **${fmt(ratio.rps, 2)}**${toFloor} | ${fmt(ratio.p99, 2)} | ${verdict(ratio.rps >= TARGET_THROUGHPUT)} |`;
  });
  const table = [
    "| request | D1 round trips per request | requests/s | p50 ms | p99 ms | throughput ÷ baseline | p99 ÷ baseline | throughput ≥ 0.9× |",
    "|---|---|---:|---:|---:|---:|---:|---|",
    ...rows,
  ].join("\n");
  const ratioOf = (name) => m(name, "rps") / m(targets[name].against, "rps");

  const section = `## Reads: \`GET /me\` and \`GET /referrals/balance\` against a JS Worker with the same D1 round trips

Load: \`wrk -t ${threads} -c ${connections}\`, exactly ${perConnection * connections} requests per target and round, each with the next of
${readUsers.length} users' tokens (distinct users, provisioned before the load; each has 4 credit transactions, the same rows in the
service's D1 and in the baseline's). ${plural(rounds, "round")} of the targets in turn after a warm-up; the service in its default
configuration (\`USER_CACHE_SECONDS\` 10). Each service row is compared with its JS baseline (\`GET /me\` with the constant
JSON 200, the balance with \`/d1/1\`): a JS Worker making the same D1 round trips per request without checking the
token (\`/d1/1\` runs the service's balance statement for the token's user). The Rust floor is the least a Worker built
as the service is (bench/floor) does for a constant JSON 200. Medians of the rounds:

${table}

Target: each service row at ≥ ${TARGET_THROUGHPUT}× its baseline's throughput.

Round trips per request, from the service's \`Server-Timing\` after the rounds, for ${sample.length} of the users (${sample.join(", ")}):
**${meOk && balanceOk && statusesOk ? "as expected (0 and 1 D1 round trips)" : "NOT as expected (0 and 1 D1 round trips)"}**.

- \`GET /me\` of a user the isolate knows: D1 ${list("me", "d1")}; Durable Objects ${list("me", "do")}
- \`GET /referrals/balance\` of the same users: D1 ${list("balance", "d1")}; Durable Objects ${list("balance", "do")}

The first \`/me\` of each user after the rounds made ${list("first", "d1")} D1 round trips: the isolate keeps a user for
\`USER_CACHE_SECONDS\`, so during the rounds a user is read from D1 again at most once per 10 s. The balances equal the
baseline's for the same users: **${sameOk ? "yes" : "NO"}**. In the measured rounds (the second column), the service's
responses reported ${fmt(perRequest("me", "d1"), 3)} D1 round trips and ${fmt(perRequest("me", "do"), 3)} Durable Object calls per \`/me\`, ${fmt(perRequest("balance", "d1"), 3)} and
${fmt(perRequest("balance", "do"), 3)} per balance${timedOk ? "" : " (**some responses had no Server-Timing**)"}: the part above 0 and 1 is those re-reads.

Rounds (requests/s, p99 ms):

| round | ${Object.keys(targets).map((k) => `${k} | p99`).join(" | ")} |
|---|${Object.keys(targets).map(() => "---:|---:").join("|")}|
${results.me.map((_, i) => `| ${i + 1} | ${Object.keys(targets).map((k) => `${fmt(results[k][i].rps, 0)} | ${fmt(results[k][i].p99)}`).join(" | ")} |`).join("\n")}
`;
  const summary = [
    table,
    `round trips per request in the rounds (Server-Timing): /me d1 ${fmt(perRequest("me", "d1"), 3)} do ${fmt(perRequest("me", "do"), 3)}, balance d1 ${fmt(perRequest("balance", "d1"), 3)} do ${fmt(perRequest("balance", "do"), 3)}${timedOk ? "" : " (SOME RESPONSES WITHOUT Server-Timing)"}`,
    `round trips after the rounds (Server-Timing): /me known d1 [${list("me", "d1")}] do [${list("me", "do")}], first after the rounds d1 [${list("first", "d1")}]; balance d1 [${list("balance", "d1")}] do [${list("balance", "do")}] (${meOk && balanceOk && statusesOk ? "as expected" : "NOT AS EXPECTED"}); balances equal to the baseline's: ${sameOk ? "yes" : "NO"}`,
    `Rust floor: ${fmt(ratioOf("floor"), 2)}× the constant JSON baseline; /me ${fmt(m("me", "rps") / m("floor", "rps"), 2)}× the Rust floor`,
    `targets: /me ${fmt(ratioOf("me"), 2)}× (≥ 0.9: ${ratioOf("me") >= TARGET_THROUGHPUT ? "met" : "NOT met"}), balance ${fmt(ratioOf("balance"), 2)}× (≥ 0.9: ${ratioOf("balance") >= TARGET_THROUGHPUT ? "met" : "NOT met"})`,
  ].join("\n");
  return { title: "## Reads", section, summary, ok: roundTripsOk };
}
