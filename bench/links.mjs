// The edge links — `/c/{code}` (a live campaign), `/a/{code}` (an active affiliate), `/r/{code}`
// (a user's referral code) — each against the baseline Worker's constant 302, driven in the same
// run by the same load (wrk, distinct browser visitors, an exact number of requests). Rounds
// alternate baseline, /c, /a, /r after a warm-up; the table reports medians and ratios against the
// targets (throughput ≥ 0.9× the baseline's, p99 ≤ 1.5×). Then every link's click count, read
// through the API, must equal the clicks sent to it.
import { join } from "node:path";
import { client, connections, fmt, freshState, jwt, log, median, plural, rounds, runWrk, startService, threads, work } from "./lib.mjs";

const perConnection = Number(process.env.BENCH_REQUESTS ?? 400);
const TARGET_THROUGHPUT = 0.9;
const TARGET_P99 = 1.5;

export async function benchLinks({ secret, baseline, floor }) {
  const persist = join(work, "links-state");
  freshState(persist, secret, "bench-admin");
  log("links: starting the service");
  const service = await startService("links-service", persist, secret);
  const admin = client(service, jwt(secret, "bench-admin"));

  // One live link of each kind, each owned as in production.
  const campaign = await admin("POST", "/campaigns", {
    name: "Benchmark", offer: { type: "discount_percent", value: 10 }, landing_url: "https://soundhash.io/pricing?utm_source=bench",
  });
  await admin("PATCH", `/admin/campaigns/${campaign.campaign_code}`, { status: "active" });
  const affiliate = client(service, jwt(secret, "bench-affiliate"));
  const application = await affiliate("POST", "/affiliates", { payout_email: "bench-affiliate@example.com" });
  await admin("PATCH", `/admin/affiliates/${application.id}`, { status: "active" });
  const referrer = client(service, jwt(secret, "bench-referrer"));
  const { referral_code: referralCode } = await referrer("GET", "/referrals/code");
  // Each link's visitors are its own (`net` in bench/load.lua): the per-IP rate limit (300/min)
  // then sees one link's share of the load per address, as the click section always did.
  const links = [
    { name: "campaign", label: "`/c/{code}` (live campaign)", path: `/c/${campaign.campaign_code}`, net: 1,
      stats: () => admin("GET", `/admin/campaigns/${campaign.campaign_code}/stats`), source: "campaign stats" },
    { name: "affiliate", label: "`/a/{code}` (active affiliate)", path: `/a/${application.affiliate_code}`, net: 2,
      stats: () => affiliate("GET", "/affiliates/dashboard"), source: "affiliate dashboard" },
    { name: "referral", label: "`/r/{code}` (referral code)", path: `/r/${referralCode}`, net: 3,
      stats: () => referrer("GET", "/referrals/stats"), source: "referral stats" },
  ];
  const click = (link, n) => runWrk(service, n, ["clicks", link.path, String(link.net)]);

  log(`links: warming up (${threads} threads, ${connections} connections)`);
  await runWrk(baseline, 20, ["clicks", "/"]);
  await runWrk(floor, 20, ["clicks", "/"]);
  const sent = {};
  for (const link of links) {
    const warm = await click(link, 20);
    if (warm.others) throw new Error(`links warm-up, ${link.path}: ${warm.others} responses other than 302`);
    sent[link.name] = warm.ok;
  }

  const results = { baseline: [], floor: [], ...Object.fromEntries(links.map((l) => [l.name, []])) };
  for (let round = 1; round <= rounds; round++) {
    const line = [];
    const b = await runWrk(baseline, perConnection, ["clicks", "/"]);
    if (b.others) throw new Error(`links round ${round}, baseline: ${b.others} responses other than 302`);
    results.baseline.push(b);
    line.push(`baseline ${fmt(b.rps, 0)} req/s p99 ${fmt(b.p99)} ms`);
    const f = await runWrk(floor, perConnection, ["clicks", "/"]);
    if (f.others) throw new Error(`links round ${round}, Rust floor: ${f.others} responses other than 302`);
    results.floor.push(f);
    line.push(`floor ${fmt(f.rps, 0)} req/s p99 ${fmt(f.p99)} ms`);
    for (const link of links) {
      // (Socket errors are not checked: parked connections are closed by the server while idle.
      // Every request sent got a response; non-302 answers are counted in `others`.)
      const r = await click(link, perConnection);
      if (r.others) throw new Error(`links round ${round}, ${link.path}: ${r.others} responses other than 302`);
      sent[link.name] += r.ok;
      results[link.name].push(r);
      line.push(`${link.path.slice(0, 3)} ${fmt(r.rps, 0)} req/s p99 ${fmt(r.p99)} ms`);
    }
    log(`links round ${round}: ${line.join(" | ")}`);
  }

  // Clicks are recorded after the responses, in batches: give the last batches time to land.
  const counted = {};
  for (const link of links) {
    for (let i = 0; i < 50; i++) {
      counted[link.name] = await link.stats();
      if (counted[link.name].clicks >= sent[link.name]) break;
      await new Promise((res) => setTimeout(res, 200));
    }
  }
  await new Promise((res) => setTimeout(res, 1000));
  for (const link of links) counted[link.name] = await link.stats();
  const exact = Object.fromEntries(links.map((l) => [l.name, counted[l.name].clicks === sent[l.name]]));
  const accountingOk = Object.values(exact).every(Boolean);
  const visitors = threads * Math.min(250, (perConnection * connections) / threads);
  // Round trips per click in the measured rounds, from the service's Server-Timing (bench/load.lua).
  const perClick = (name, key) => {
    const [sum, timed] = results[name].reduce(([s, t], r) => [s + r[key], t + r.timed], [0, 0]);
    return timed ? fmt(sum / timed, 3) : "no Server-Timing";
  };

  const m = (name, key) => median(results[name].map((r) => r[key]));
  const base = { rps: m("baseline", "rps"), p50: m("baseline", "p50"), p99: m("baseline", "p99") };
  const rust = { rps: m("floor", "rps"), p50: m("floor", "p50"), p99: m("floor", "p99") };
  const rows = links.map((link) => {
    const row = { rps: m(link.name, "rps"), p50: m(link.name, "p50"), p99: m(link.name, "p99") };
    const ratio = { rps: row.rps / base.rps, p99: row.p99 / base.p99, floor: row.rps / rust.rps };
    return { link, row, ratio, met: { rps: ratio.rps >= TARGET_THROUGHPUT, p99: ratio.p99 <= TARGET_P99 } };
  });
  const verdict = (ok) => (ok ? "met" : "**not met**");
  const table = [
    "| target | requests/s | p50 ms | p99 ms | throughput ÷ baseline | p99 ÷ baseline | throughput ≥ 0.9× | p99 ≤ 1.5× | throughput ÷ Rust floor |",
    "|---|---:|---:|---:|---:|---:|---|---|---:|",
    `| baseline: constant 302 (JS) | ${fmt(base.rps, 0)} | ${fmt(base.p50)} | ${fmt(base.p99)} | 1.00 | 1.00 | | | |`,
    `| Rust floor: constant 302 (\`worker\` crate, bench/floor) | ${fmt(rust.rps, 0)} | ${fmt(rust.p50)} | ${fmt(rust.p99)} | ${fmt(rust.rps / base.rps, 2)} | ${fmt(rust.p99 / base.p99, 2)} | | | 1.00 |`,
    ...rows.map(({ link, row, ratio, met }) =>
      `| ${link.label} | ${fmt(row.rps, 0)} | ${fmt(row.p50)} | ${fmt(row.p99)} | **${fmt(ratio.rps, 2)}** | **${fmt(ratio.p99, 2)}** | ${verdict(met.rps)} | ${verdict(met.p99)} | ${fmt(ratio.floor, 2)} |`),
  ].join("\n");
  const accounting = links.map((l) =>
    `- ${l.label}: ${sent[l.name]} clicks sent, the ${l.source} count **${counted[l.name].clicks}** (${exact[l.name] ? "exact" : "**MISMATCH**"}); unique visitors ${counted[l.name].unique_visitors}`,
  ).join("\n");
  const rawRows = results.baseline.map((b, i) =>
    `| ${i + 1} | ${fmt(b.rps, 0)} | ${fmt(b.p99)} | ${fmt(results.floor[i].rps, 0)} | ${fmt(results.floor[i].p99)} | ${links.map((l) => `${fmt(results[l.name][i].rps, 0)} | ${fmt(results[l.name][i].p99)}`).join(" | ")} |`);

  const section = `## Links: \`/c/{code}\`, \`/a/{code}\`, \`/r/{code}\` against a constant 302

Load: \`wrk -t ${threads} -c ${connections}\`, exactly ${perConnection * connections} requests per target and round (the script parks
connections once the quota is sent and waits for every response), each thread cycling through 250 visitor identities
(${visitors} visitors per link, each link its own: \`CF-Connecting-IP\` × a browser user agent), ${plural(rounds, "round")} of baseline,
\`/c/\`, \`/a/\`, \`/r/\` in turn after a warm-up; the service in its default configuration. Medians of the rounds:

${table}

Targets: each link at ≥ ${TARGET_THROUGHPUT}× the baseline's throughput with p99 ≤ ${TARGET_P99}× the baseline's. The Rust floor
(bench/floor) is the least a Worker built as the service is (the \`worker\` crate, the same release profile and
tools, the runtime's request taken as it is) can do for the same request: its ratio to the JS baseline is what Rust and
wasm cost in this runtime before any of the service's work; the last column is the service's own cost.

Click accounting (warm-up included; read through the API once the last batches had landed):

${accounting}

Unique visitors are counted per link and hour (the load used ${visitors} per link). D1 round trips / Durable Object calls per
request in the measured rounds, from the service's \`Server-Timing\`: ${links.map((l) => `\`${l.path.slice(0, 3)}\` ${perClick(l.name, "d1")} / ${perClick(l.name, "do")}`).join(", ")} (a click's
batch goes to its object after the response, outside the request's count).

Rounds (requests/s, p99 ms):

| round | baseline | p99 | Rust floor | p99 | ${links.map((l) => `\`${l.path.slice(0, 3)}\` | p99`).join(" | ")} |
|---|---:|---:|---:|---:|${links.map(() => "---:|---:").join("|")}|
${rawRows.join("\n")}

What a link does per request: route, per-IP rate limit (Workers Rate Limiting binding), what the link needs to know
about its code from a per-isolate cache (D1 at most once per code and \`LINK_CACHE_SECONDS\`), an HMAC visitor id, the
302; the click joins the isolate's pending batch for the link, which one request per batch sends to the link's
Durable Object (\`wait_until\`, 100 ms), so the object sees one round trip per batch, not per click. Successful
redirects write no log line (\`REQUEST_LOG=mutations\`).
`;
  const summary = [
    table,
    ...links.map((l) => `${l.path.slice(0, 3)} accounting: sent ${sent[l.name]}, counted ${counted[l.name].clicks} (${exact[l.name] ? "exact" : "MISMATCH"}); unique visitors ${counted[l.name].unique_visitors}; per request d1 ${perClick(l.name, "d1")} do ${perClick(l.name, "do")}`),
    `Rust floor: ${fmt(rust.rps / base.rps, 2)}× the baseline's throughput, p99 ${fmt(rust.p99 / base.p99, 2)}×`,
    ...rows.map(({ link, ratio, met }) => `${link.path.slice(0, 3)} targets: throughput ${fmt(ratio.rps, 2)}× (≥ 0.9: ${met.rps ? "met" : "NOT met"}), p99 ${fmt(ratio.p99, 2)}× (≤ 1.5: ${met.p99 ? "met" : "NOT met"}); ${fmt(ratio.floor, 2)}× the Rust floor`),
  ].join("\n");
  return { title: "## Links", section, summary, ok: accountingOk };
}
