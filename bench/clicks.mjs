// The campaign click path (`GET /c/{code}`) against a baseline Worker that only answers a constant
// 302, both served by scripts/serve.mjs, driven in the same run by the same load (wrk, distinct visitor
// identities, an exact number of requests). Rounds alternate baseline / campaign; the table
// reports medians and ratios. Then the campaign's stats must equal the clicks sent.
import { join } from "node:path";
import { client, connections, fmt, freshState, jwt, log, median, rounds, runWrk, startService, threads, work } from "./lib.mjs";

const perConnection = Number(process.env.BENCH_REQUESTS ?? 400);

export async function benchClicks({ secret, baseline }) {
  const admin = jwt(secret, "bench-admin");
  const [persist, quietPersist] = [join(work, "clicks-state"), join(work, "clicks-state-quiet")];
  freshState(persist, secret, "bench-admin");
  freshState(quietPersist, secret, "bench-admin");
  log("clicks: starting the service twice (access log on and off)");
  const service = await startService("clicks-service", persist, secret);
  // The same service logging only failures (REQUEST_LOG=errors), to show what the per-request log
  // line costs here: wrangler dev's node process handles every console line on the same 2 cores.
  const quiet = await startService("clicks-service-quiet", quietPersist, secret, { REQUEST_LOG: "errors" });

  const liveCampaign = async (base) => {
    const api = client(base, admin);
    const campaign = await api("POST", "/campaigns", {
      name: "Benchmark", offer: { type: "discount_percent", value: 10 }, landing_url: "https://soundhash.io/pricing?utm_source=bench",
    });
    await api("PATCH", `/admin/campaigns/${campaign.campaign_code}`, { status: "active" });
    return campaign.campaign_code;
  };
  const code = await liveCampaign(service);
  const quietCode = await liveCampaign(quiet);

  log(`clicks: warming up (${threads} threads, ${connections} connections)`);
  await runWrk(baseline, 20, ["clicks", "/"]);
  const warm = await runWrk(service, 20, ["clicks", `/c/${code}`]);
  await runWrk(quiet, 20, ["clicks", `/c/${quietCode}`]);
  let sent = warm.ok;

  const results = { baseline: [], campaign: [], quiet: [] };
  for (let round = 1; round <= rounds; round++) {
    const b = await runWrk(baseline, perConnection, ["clicks", "/"]);
    const c = await runWrk(service, perConnection, ["clicks", `/c/${code}`]);
    const q = await runWrk(quiet, perConnection, ["clicks", `/c/${quietCode}`]);
    // (Socket errors are not checked: parked connections are closed by the server while idle.
    // Every request sent got a response; non-302 answers would be counted in `others`.)
    if (b.others || c.others || q.others) {
      throw new Error(`round ${round}: non-302 responses: ${JSON.stringify({ b, c, q })}`);
    }
    sent += c.ok;
    results.baseline.push(b);
    results.campaign.push(c);
    results.quiet.push(q);
    log(`clicks round ${round}: baseline ${fmt(b.rps, 0)} req/s p99 ${fmt(b.p99)} ms | /c/{code} ${fmt(c.rps, 0)} req/s p99 ${fmt(c.p99)} ms | without access log ${fmt(q.rps, 0)} req/s p99 ${fmt(q.p99)} ms`);
  }

  // The clicks are recorded after the responses, in batches: give the last batch time to land.
  const api = client(service, admin);
  let stats;
  for (let i = 0; i < 50; i++) {
    await new Promise((res) => setTimeout(res, 200));
    stats = await api("GET", `/admin/campaigns/${code}/stats`);
    if (stats.clicks >= sent) break;
  }
  await new Promise((res) => setTimeout(res, 1000));
  stats = await api("GET", `/admin/campaigns/${code}/stats`);
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
  const section = `## Campaign click path: \`GET /c/{code}\` against a constant 302

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
per-isolate cache (D1 at most once per code and \`LINK_CACHE_SECONDS\`), an HMAC visitor id, the 302; the click is
appended to the isolate's pending batch for the link and sent to the link's Durable Object by one request per batch
(\`wait_until\`, 25 ms), so the Durable Object sees one round trip per batch, not per click.
`;
  const summary = [
    table,
    `click accounting: sent ${sent}, counted ${stats.clicks} (${accountingOk ? "exact" : "MISMATCH"}); unique visitors ${stats.unique_visitors}`,
    `targets: throughput ≥ 0.60× ${target.throughput ? "met" : "NOT met"}, p99 ≤ 2× ${target.p99 ? "met" : "NOT met"}`,
  ].join("\n");
  return { title: "## Campaign click path", section, summary, ok: accountingOk };
}
