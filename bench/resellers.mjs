// Reseller usage: `POST /resellers/usage` (the main API asks before serving an end user's calls:
// one D1 read of the reseller and end user, then the reseller's ResellerQuota Durable Object counts
// the calls in a transaction) against `GET /me` (the authenticated floor: a JWT check and a user
// the isolate knows) on the same service, with wrk. Every report counts one call for one of 50 end
// users of one reseller whose quota is far above the load. Then the accounting: the object's count
// for the month equals the reports answered `"accepted":true`.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { client, connections, fmt, freshState, jwt, log, median, plural, readUsers, rounds, runWrk, startService, threads, work } from "./lib.mjs";

const perConnection = Number(process.env.BENCH_REQUESTS ?? 400);
const END_USERS = 50;
const API = "/api/v1/monetization";

export async function benchResellers({ secret }) {
  const persist = join(work, "resellers-state");
  freshState(persist, secret, "bench-admin");
  log("resellers: starting the service");
  const service = await startService("resellers-service", persist, secret);
  const admin = client(service, jwt(secret, "bench-admin"));
  const reseller = client(service, jwt(secret, "bench-reseller"));
  const applied = await reseller("POST", "/resellers", { company_name: "Bench Resale", contact_email: "ops@bench.example", expected_monthly_api_calls: 1_000_000 });
  const now = Math.floor(Date.now() / 1000);
  const iso = (t) => new Date(t * 1000).toISOString().slice(0, 19) + "Z";
  await admin("PATCH", `/admin/resellers/${applied.id}`, {
    status: "approved",
    contract: {
      starts_at: iso(now - 60), ends_at: iso(now + 86_400),
      pricing: { mode: "graduated", tiers: [{ up_to: 10_000, unit_price_micros: 10_000 }, { unit_price_micros: 5_000 }] },
      markup_bps: 2_000, max_end_users: END_USERS, max_api_calls_per_month: 10_000_000_000,
    },
  });
  const cron = await fetch(`${service}/cdn-cgi/handler/scheduled?cron=*+*+*+*+*`);
  if (cron.status !== 200 || (await reseller("GET", "/resellers/me")).status !== "active") throw new Error("resellers: the cron did not activate the reseller");
  const endUsers = [];
  for (let i = 0; i < END_USERS; i++) endUsers.push((await reseller("POST", "/resellers/me/end-users", { external_id: `bench-end-user-${i}` })).id);
  const bodiesFile = join(work, "resellers.bodies");
  writeFileSync(bodiesFile, endUsers.map((u) => JSON.stringify({ reseller_id: applied.id, end_user_id: u, calls: 1 })).join("\n") + "\n");
  const adminTokens = join(work, "resellers.admin.tokens");
  writeFileSync(adminTokens, jwt(secret, "bench-admin") + "\n");
  const tokensFile = join(work, "resellers.tokens");
  writeFileSync(tokensFile, readUsers.map((u) => jwt(secret, u)).join("\n") + "\n");
  for (let i = 0; i < readUsers.length; i += 8) await Promise.all(readUsers.slice(i, i + 8).map((u) => client(service, jwt(secret, u))("GET", "/me")));

  const targets = {
    me: () => runWrk(service, perConnection, ["api", "GET", `${API}/me`, tokensFile]),
    usage: () => runWrk(service, perConnection, ["post", `${API}/resellers/usage`, bodiesFile, '"accepted":true', adminTokens]),
  };
  let accepted = 0;
  log(`resellers: warming up (${threads} threads, ${connections} connections)`);
  for (const [name, run] of Object.entries(targets)) {
    const r = await run();
    if (r.others) throw new Error(`resellers warm-up, ${name}: ${r.others} responses other than the expected 200`);
    if (name === "usage") accepted += r.ok;
  }
  const results = { me: [], usage: [] };
  for (let round = 1; round <= rounds; round++) {
    for (const [name, run] of Object.entries(targets)) {
      const r = await run();
      if (r.others) throw new Error(`resellers round ${round}, ${name}: ${r.others} responses other than the expected 200`);
      results[name].push(r);
      if (name === "usage") accepted += r.ok;
    }
    log(`resellers round ${round}: ${Object.entries(results).map(([k, l]) => `${k} ${fmt(l.at(-1).rps, 0)} req/s p99 ${fmt(l.at(-1).p99)} ms`).join(" | ")}`);
  }
  const board = await reseller("GET", "/resellers/me/dashboard");
  const counted = board.api_calls.calls;
  const accountingOk = counted === accepted;
  const perRequest = (name, key) => {
    const [sum, timed] = results[name].reduce(([s, t], r) => [s + r[key], t + r.timed], [0, 0]);
    return timed ? sum / timed : NaN;
  };
  const m = (name, key) => median(results[name].map((r) => r[key]));
  const ratio = m("usage", "rps") / m("me", "rps");
  const table = [
    "| request | D1 round trips | Durable Object calls | requests/s | p50 ms | p99 ms |",
    "|---|---:|---:|---:|---:|---:|",
    `| \`GET /me\` (a user the isolate knows) | ${fmt(perRequest("me", "d1"), 3)} | ${fmt(perRequest("me", "do"), 3)} | ${fmt(m("me", "rps"), 0)} | ${fmt(m("me", "p50"))} | ${fmt(m("me", "p99"))} |`,
    `| \`POST /resellers/usage\` (1 call per report, ${END_USERS} end users) | ${fmt(perRequest("usage", "d1"), 3)} | ${fmt(perRequest("usage", "do"), 3)} | ${fmt(m("usage", "rps"), 0)} | ${fmt(m("usage", "p50"))} | ${fmt(m("usage", "p99"))} |`,
  ].join("\n");
  const section = `## Reseller usage: quota checks against \`GET /me\`

Load: \`wrk -t ${threads} -c ${connections}\`, exactly ${perConnection * connections} requests per target and round; \`POST /resellers/usage\` reports one
call each for the next of ${END_USERS} end users of one active reseller (from the admin service account; the route is not
throttled per user), every answer \`"accepted":true\` or the run fails; \`GET /me\` rotates over ${readUsers.length} users' tokens.
${plural(rounds, "round")} in turn after a warm-up. Each report reads the reseller and the end user in one D1 query, then the
reseller's quota object admits it in one transaction: every report of the reseller goes through that one object. Medians:

${table}

Reports per second ÷ \`GET /me\` per second: **${fmt(ratio, 2)}** (p99 ${fmt(m("usage", "p99") / m("me", "p99"), 2)}×).

Accounting: ${accepted.toLocaleString("en")} reports answered \`accepted\` (warm-up included); the quota object counts
${counted.toLocaleString("en")} calls this month: **${accountingOk ? "exact" : "MISMATCH"}**.
`;
  const summary = `${table}\nusage ÷ /me: ${fmt(ratio, 2)}; accounting ${accountingOk ? "exact" : `MISMATCH (${counted} counted of ${accepted})`}`;
  return { title: "## Reseller usage", section, summary, ok: accountingOk };
}
