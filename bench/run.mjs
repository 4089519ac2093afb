#!/usr/bin/env node
// `npm run bench`: every benchmark of the service on this machine, each Worker served by
// scripts/serve.mjs (Miniflare on the workerd `wrangler dev` uses, without its proxy worker), each against
// a baseline measured in the same run (bench/baseline: a constant 302 or JSON 200 from a JS
// Worker), with exact request counts; medians and ratios go to BENCHMARKS.md.
//   clicks       the campaign click path and its click accounting (bench/clicks.mjs)
//   leaderboard  100,000-member leaderboards: updates, top 10, ranks, accounting (bench/leaderboard.mjs)
//
// Options (environment): BENCH_ONLY (clicks | leaderboard; the other section of BENCHMARKS.md is
// kept), BENCH_THREADS (wrk threads, 2), BENCH_CONNECTIONS (32), BENCH_ROUNDS (3); clicks:
// BENCH_REQUESTS (per connection and round, 400); leaderboard: BENCH_MEMBERS (100000),
// BENCH_READS (100), BENCH_WRITES (10), BENCH_EVENTS_PER_WRITE (100). The Workers' output goes to
// target/bench/*.log.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { benchClicks } from "./clicks.mjs";
import { benchLeaderboard } from "./leaderboard.mjs";
import { ensureWrk, log, root, startBaseline, stopAll, work } from "./lib.mjs";

const benches = { clicks: benchClicks, leaderboard: benchLeaderboard };

async function main() {
  const only = process.env.BENCH_ONLY;
  if (only && !benches[only]) throw new Error(`BENCH_ONLY must be one of ${Object.keys(benches).join(", ")}`);
  const wrkVersion = ensureWrk();
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const secret = randomBytes(24).toString("hex");
  log("starting the baseline");
  const baseline = await startBaseline(join(work, "baseline-state"));

  const file = join(root, "BENCHMARKS.md");
  const previous = existsSync(file) ? readFileSync(file, "utf8").split(/\n(?=## )/).slice(1) : [];
  const sections = [];
  let ok = true;
  for (const [name, bench] of Object.entries(benches)) {
    if (only && only !== name) {
      const title = { clicks: "## Campaign click path", leaderboard: "## Leaderboards" }[name];
      const kept = previous.find((s) => s.startsWith(title));
      if (kept) sections.push(kept.trimEnd() + "\n");
      continue;
    }
    const result = await bench({ secret, baseline });
    console.log(`\n${result.summary}`);
    sections.push(result.section);
    ok &&= result.ok;
  }
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
