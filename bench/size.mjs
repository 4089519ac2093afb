// Size and startup, as `npm run deploy:check` measures them (scripts/deploy-check.mjs measure()):
// the upload of `wrangler deploy --dry-run` (total and gzip) and the Worker's startup in the
// profile of `wrangler check startup` (each run and the median), against the budgets. Over a budget
// is reported, not a failure of the bench.
import { BUDGET_GZIP_KIB, BUDGET_STARTUP_MS, measure } from "../scripts/deploy-check.mjs";
import { fmt, log } from "./lib.mjs";

export async function benchSize() {
  log("size: wrangler deploy --dry-run and wrangler check startup");
  const m = measure();
  const gzipOk = m.gzipKiB <= BUDGET_GZIP_KIB;
  const startupOk = m.startupMedianMs < BUDGET_STARTUP_MS;
  const verdict = (ok) => (ok ? "met" : "**not met**");
  const runs = m.startupMs.map((ms) => fmt(ms)).join(", ");
  const table = [
    "| measure | value | budget | |",
    "|---|---:|---:|---|",
    `| upload (\`wrangler deploy --dry-run\`) | ${m.uploadKiB} KiB | | |`,
    `| upload, gzip | **${m.gzipKiB} KiB** | ${BUDGET_GZIP_KIB} KiB | ${verdict(gzipOk)} |`,
    `| startup (\`wrangler check startup\`), median of ${m.startupMs.length} | **${fmt(m.startupMedianMs)} ms** | < ${BUDGET_STARTUP_MS} ms | ${verdict(startupOk)} |`,
  ].join("\n");
  const section = `## Size and startup

What \`npm run deploy:check\` measures (scripts/deploy-check.mjs, on the build this run benchmarked): the upload of
\`wrangler deploy --dry-run\` (the whole Worker, as built now; the budget is meant to hold all seven programs) and the
span of the CPU profile
\`wrangler check startup\` writes for the Worker's startup (compiling and instantiating the wasm module, top-level
code) in local workerd. Startup runs (ms): ${runs}.

${table}

Cloudflare's own limits: 3 MiB compressed upload on the free plan (10 MiB paid), 1 s of startup CPU.
`;
  const summary = [
    table,
    `startup runs: ${runs} ms`,
    `budgets: gzip ≤ ${BUDGET_GZIP_KIB} KiB ${gzipOk ? "met" : "NOT met"}, startup < ${BUDGET_STARTUP_MS} ms ${startupOk ? "met" : "NOT met"}`,
  ].join("\n");
  return { title: "## Size and startup", section, summary, ok: true };
}
