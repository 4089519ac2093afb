#!/usr/bin/env node
// Prints a development JWT (HS256, like the main SoundHash API issues) for a user id.
//
//   npm run token -- <user-id> [--admin] [--expires 1h] [--persist-to DIR]
//
// The secret is API_SECRET_KEY from the environment, else from .dev.vars. JWT_ISSUER and
// JWT_AUDIENCE (environment, else wrangler.toml [vars]) become `iss`/`aud` when set.
// --admin also marks the user as an active administrator in the local D1 (the one `npm run dev`
// uses, or the one under --persist-to DIR): admin rights live in D1, never in the token.
import { createHmac } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const usage = "usage: npm run token -- <user-id> [--admin] [--expires 1h] [--persist-to DIR]";

function fail(message) {
  console.error(`token: ${message}\n${usage}`);
  process.exit(2);
}

const args = process.argv.slice(2);
let userId = null;
let admin = false;
let expires = "1h";
let persistTo = null;
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === "--admin") admin = true;
  else if (arg === "--expires") expires = args[++i];
  else if (arg === "--persist-to") persistTo = args[++i];
  else if (arg === "-h" || arg === "--help") { console.log(usage); process.exit(0); }
  else if (arg.startsWith("--")) fail(`unknown option ${arg}`);
  else if (userId === null) userId = arg;
  else fail(`unexpected argument ${arg}`);
}
if (!userId) fail("a user id is required");
if (!/^[\x21-\x7e]{1,128}$/.test(userId)) fail("user ids are 1-128 visible ASCII characters");

const match = /^(\d+)([smhd])$/.exec(expires ?? "");
if (!match) fail(`--expires takes a duration like 30m, 1h or 7d, got ${expires}`);
const seconds = Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[match[2]];

function devVar(name) {
  if (process.env[name] !== undefined) return process.env[name];
  const file = join(root, ".dev.vars");
  if (!existsSync(file)) return undefined;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && m[1] === name) return m[2].replace(/^(["'])(.*)\1$/, "$2");
  }
  return undefined;
}

function tomlVar(name) {
  if (process.env[name] !== undefined) return process.env[name];
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  const vars = toml.split(/^\[vars\]\s*$/m)[1]?.split(/^\[/m)[0] ?? "";
  const m = new RegExp(`^\\s*${name}\\s*=\\s*"([^"]*)"`, "m").exec(vars);
  return m ? m[1] : "";
}

const secret = devVar("API_SECRET_KEY");
if (!secret) fail("API_SECRET_KEY is not set and .dev.vars has none (run npm run setup)");

const now = Math.floor(Date.now() / 1000);
const claims = { sub: userId, iat: now, exp: now + seconds };
const iss = tomlVar("JWT_ISSUER");
const aud = tomlVar("JWT_AUDIENCE");
if (iss) claims.iss = iss;
if (aud) claims.aud = aud;

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
const signed = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
const token = `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;

if (admin) {
  const id = userId.replaceAll("'", "''");
  const sql =
    "INSERT INTO users (id, is_admin, is_active, created_at, updated_at) " +
    `VALUES ('${id}', 1, 1, unixepoch(), unixepoch()) ` +
    "ON CONFLICT (id) DO UPDATE SET is_admin = 1, is_active = 1, updated_at = unixepoch()";
  const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
  const cmd = ["d1", "execute", "DB", "--local", "--command", sql];
  if (persistTo) cmd.push("--persist-to", persistTo);
  // The running `wrangler dev` may hold the SQLite file for a moment: retry while it is busy.
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync(process.execPath, [wrangler, ...cmd], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      });
      break;
    } catch (e) {
      const output = `${e.stdout ?? ""}${e.stderr ?? ""}`;
      if (attempt < 8 && /SQLITE_BUSY|database is locked/.test(output)) {
        await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
        continue;
      }
      console.error(output || String(e));
      fail("could not mark the user admin in the local D1 (were the migrations applied?)");
    }
  }
  console.error(`token: ${userId} is now an active admin in the local D1`);
}
console.log(token);
