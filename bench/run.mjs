#!/usr/bin/env node
// `npm run bench`: every benchmark of the service on this machine, each Worker served by
// scripts/serve.mjs (Miniflare on the workerd `wrangler dev` uses, without wrangler dev's proxy
// worker), each against a baseline measured in the same run (bench/baseline: a JS Worker answering
// a constant 302, a constant JSON 200, or one or two D1 queries), with exact request counts;
// medians and ratios go to BENCHMARKS.md, one section each:
//   links        /c/{code}, /a/{code}, /r/{code} against a constant 302; exact click accounting (bench/links.mjs)
//   reads        GET /me and GET /referrals/balance against the baseline with the same D1 round trips;
//                the round trips checked in Server-Timing (bench/reads.mjs)
//   leaderboard  100,000-member leaderboards: updates, top 10, ranks, accounting (bench/leaderboard.mjs)
//   revenue      POST /admin/revenue, 1,000 records per request, against POST /admin/activity (bench/revenue.mjs)
//   marketplace  POST /licenses/validate against GET /me; 10 MiB downloads through /d/{token} against the
//                baseline's R2 read with no checks; validations without side effects, downloads counted once
//                (bench/marketplace.mjs)
//   resellers    POST /resellers/usage against GET /me; the quota object's count equals the reports accepted
//                (bench/resellers.mjs)
//   size         upload size and startup time, as npm run deploy:check measures them (bench/size.mjs)
// Exits non-zero when an accounting or round-trip check fails; a target or budget not met is
// reported in BENCHMARKS.md, not a failure.
//
// Options (environment):
//   BENCH_ONLY         links | reads | leaderboard | revenue | marketplace | resellers | size: run one section; the others of BENCHMARKS.md are kept
//   BENCH_THREADS      wrk threads (2)
//   BENCH_CONNECTIONS  wrk connections (32)
//   BENCH_ROUNDS       measured rounds per target (3); the tables show medians
//   BENCH_REQUESTS     links and reads: requests per connection, target and round (400)
//   BENCH_USERS        reads: distinct users whose tokens the load rotates over (200)
//   BENCH_MEMBERS      leaderboard: members seeded (100000)
//   BENCH_READS        leaderboard: read requests per connection, target and round (100)
//   BENCH_WRITES       leaderboard: update requests per connection and round (10)
//   BENCH_EVENTS_PER_WRITE  leaderboard: events per update request (100)
//   BENCH_WRITERS      revenue: concurrent clients (4)
//   BENCH_INGEST_REQUESTS  revenue: requests per client, target and round (5)
//   BENCH_LICENSES     marketplace: licenses the validations rotate over (100)
//   BENCH_DOWNLOADERS  marketplace: concurrent downloading clients (4)
//   BENCH_DOWNLOADS    marketplace: downloads per client, target and round (3)
//   STARTUP_RUNS       size: runs of wrangler check startup (3; scripts/deploy-check.mjs)
// The Workers' output goes to target/bench/*.log, their state to target/bench/*-state.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { benchLeaderboard } from "./leaderboard.mjs";
import { benchLinks } from "./links.mjs";
import { benchMarketplace } from "./marketplace.mjs";
import { benchReads } from "./reads.mjs";
import { benchResellers } from "./resellers.mjs";
import { benchRevenue } from "./revenue.mjs";
import { benchSize } from "./size.mjs";
import { ensureWrk, log, root, startBaseline, startFloor, stopAll, work } from "./lib.mjs";

// Section name → its bench and the title its BENCHMARKS.md section starts with (how a run of
// BENCH_ONLY finds the other sections to keep).
const benches = {
  links: { bench: benchLinks, title: "## Links" },
  reads: { bench: benchReads, title: "## Reads" },
  leaderboard: { bench: benchLeaderboard, title: "## Leaderboards" },
  revenue: { bench: benchRevenue, title: "## Revenue ingest" },
  marketplace: { bench: benchMarketplace, title: "## Marketplace" },
  resellers: { bench: benchResellers, title: "## Reseller usage" },
  size: { bench: benchSize, title: "## Size and startup" },
};

async function main() {
  const only = process.env.BENCH_ONLY;
  if (only && !benches[only]) throw new Error(`BENCH_ONLY must be one of ${Object.keys(benches).join(", ")}`);
  const wrkVersion = ensureWrk();
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const secret = randomBytes(24).toString("hex");
  let baseline = null; // started once, for the first section that drives load
  let floor = null; // the Rust floor (bench/floor), likewise

  const file = join(root, "BENCHMARKS.md");
  const previous = existsSync(file) ? readFileSync(file, "utf8").split(/\n(?=## )/).slice(1) : [];
  const sections = [];
  let ok = true;
  for (const [name, { bench, title }] of Object.entries(benches)) {
    if (only && only !== name) {
      const kept = previous.find((s) => s.startsWith(title));
      if (kept) sections.push(kept.trimEnd() + "\n");
      continue;
    }
    if (!baseline && name !== "size") {
      log("starting the baseline");
      baseline = await startBaseline(join(work, "baseline-state"));
      floor = await startFloor();
    }
    const result = await bench({ secret, baseline, floor });
    console.log(`\n${result.summary}`);
    sections.push(result.section);
    ok &&= result.ok;
  }
  // The soak's section (npm run soak) is kept as it is.
  const soak = previous.find((s) => s.startsWith("## Soak"));
  if (soak) sections.push(soak.replace(/\nCommand: `npm run bench`[^\n]*\n?$/, "").trimEnd() + "\n");
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const machine = `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}`;
  const version = (name) => JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version;
  const report = `# Benchmarks

Measured by \`npm run bench\` (bench/run.mjs) on ${new Date().toISOString().slice(0, 10)}${only ? ` (section ${only}; the others are from an earlier run)` : ""}. Machine: ${machine}.
Every Worker is served by \`scripts/serve.mjs\`: Miniflare ${version("miniflare")} on the local workerd that \`wrangler dev\`
${version("wrangler")} uses, with the bindings wrangler reads from the Worker's wrangler.toml, without wrangler dev's proxy
worker. The load generator (${wrkVersion.trim()}) runs on the same machine, so absolute numbers are this machine's and
the ratios are the result.

${sections.join("\n")}
Command: \`npm run bench\` (options in bench/run.mjs: BENCH_ONLY, BENCH_CONNECTIONS, BENCH_ROUNDS, …).
`;
  writeFileSync(file, report.replace(/\n*Command: `npm run bench`[^\n]*\n(?=[\s\S]*Command: `npm run bench`)/g, "\n"));
  console.log("written to BENCHMARKS.md");
  if (!ok) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`bench: ${e.stack ?? e}`);
  process.exitCode = 1;
}).finally(stopAll);
