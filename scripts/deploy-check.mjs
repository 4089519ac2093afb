#!/usr/bin/env node
// `npm run deploy:check` (after scripts/build.sh): what a deploy would upload and how long the
// Worker's startup takes, against the budgets: 600 KiB gzip upload (Cloudflare's own limits are
// 3 MiB compressed on the free plan, 10 MiB paid) and 50 ms of startup in the profile of
// `wrangler check startup` (Cloudflare allows 1 s of startup CPU). Exits 1 when over a budget.
//
// - size: `wrangler deploy --dry-run --outdir target/deploy-dry-run` ("Total Upload: … / gzip: …");
// - startup: `wrangler check startup` runs the Worker's startup (compiling and instantiating the
//   wasm module, top-level code) in local workerd and writes a CPU profile; its span is the
//   startup time. The median of STARTUP_RUNS (3) profiles, since this machine is shared.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const BUDGET_GZIP_KIB = 600;
export const BUDGET_STARTUP_MS = 50;
const wranglerJs = join(root, "node_modules", "wrangler", "bin", "wrangler.js");

function wrangler(args) {
  return execFileSync(process.execPath, [wranglerJs, ...args], {
    cwd: root,
    // The worker is built already (scripts/build.sh); wrangler's [build] step is skipped.
    env: { ...process.env, SOUNDHASH_SKIP_BUILD: "1", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/// `{ uploadKiB, gzipKiB, startupMs: [each run], startupMedianMs }`
export function measure(runs = Number(process.env.STARTUP_RUNS ?? 3)) {
  const out = wrangler(["deploy", "--dry-run", "--outdir", join("target", "deploy-dry-run")]);
  const size = /Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/.exec(out);
  if (!size) throw new Error(`no upload size in wrangler's output:\n${out}`);
  const dir = join(root, "target", "startup");
  mkdirSync(dir, { recursive: true });
  const startupMs = [];
  for (let i = 0; i < runs; i++) {
    const file = join(dir, "worker-startup.cpuprofile");
    wrangler(["check", "startup", "--outfile", file]);
    const profile = JSON.parse(readFileSync(file, "utf8"));
    startupMs.push((profile.endTime - profile.startTime) / 1000);
  }
  const sorted = [...startupMs].sort((a, b) => a - b);
  return {
    uploadKiB: Number(size[1]),
    gzipKiB: Number(size[2]),
    startupMs,
    startupMedianMs: sorted[Math.floor(sorted.length / 2)],
  };
}

export function withinBudget(m) {
  return m.gzipKiB <= BUDGET_GZIP_KIB && m.startupMedianMs < BUDGET_STARTUP_MS;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const m = measure();
  const runs = m.startupMs.map((ms) => ms.toFixed(1)).join(", ");
  console.log(`upload: ${m.uploadKiB} KiB, gzip ${m.gzipKiB} KiB (budget ${BUDGET_GZIP_KIB} KiB)`);
  console.log(`startup: median ${m.startupMedianMs.toFixed(1)} ms of ${runs} (budget ${BUDGET_STARTUP_MS} ms; profile in target/startup)`);
  if (!withinBudget(m)) {
    console.error("deploy:check: over budget");
    process.exitCode = 1;
  }
}
