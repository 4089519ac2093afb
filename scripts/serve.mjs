#!/usr/bin/env node
// Serves the built worker (build/index.js) on workerd through Miniflare, with the bindings of a
// wrangler.toml (D1, Durable Objects, rate limiters, vars) read by wrangler's own translation,
// local state under --persist-to (the layout `wrangler dev --persist-to` and `wrangler d1
// migrations apply --local --persist-to` use), and cron triggers at
// /cdn-cgi/handler/scheduled?cron=… .
//
//   node scripts/serve.mjs [--config wrangler.toml] [--ip 127.0.0.1] [--port 8787]
//                          [--persist-to DIR] [--var NAME:VALUE]… [--inspector-port N]
//
// --inspector-port opens workerd's V8 inspector (Chrome DevTools: chrome://inspect), e.g. to
// record a CPU profile of the worker under load.
//
// Why not `wrangler dev`: it puts a proxy worker in front of this one, and the proxy reaches the
// worker over pooled keep-alive connections that both ends close after 5 s idle; a request
// written on such a connection as it closes is answered `503 "Your worker restarted
// mid-request"` although nothing restarted (cloudflare/workers-sdk #14641). Here the client's
// connection ends in the same workerd that runs the worker: no hop, no pool. The e2e suite and
// the benchmark use this; `npm run dev` keeps `wrangler dev` (rebuild on change).
//
// Prints one line `ready http://IP:PORT` on stdout when serving; the worker's console output
// follows on stdout/stderr. Stops on SIGTERM/SIGINT.
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";
import { dirname, join, resolve } from "node:path";

const usage = "usage: node scripts/serve.mjs [--config FILE] [--ip IP] [--port N] [--persist-to DIR] [--var NAME:VALUE]… [--inspector-port N]";
const args = process.argv.slice(2);
const options = { config: "wrangler.toml", ip: "127.0.0.1", port: 8787, persistTo: ".wrangler/state", vars: {}, inspectorPort: undefined };
for (let i = 0; i < args.length; i++) {
  const value = () => {
    if (i + 1 >= args.length) fail(`${args[i]} needs a value`);
    return args[++i];
  };
  switch (args[i]) {
    case "--config": case "-c": options.config = value(); break;
    case "--ip": options.ip = value(); break;
    case "--port": options.port = Number(value()); break;
    case "--persist-to": options.persistTo = value(); break;
    case "--inspector-port": options.inspectorPort = Number(value()); break;
    case "--var": {
      const pair = value();
      const at = pair.indexOf(":");
      if (at < 1) fail(`--var takes NAME:VALUE, got ${pair}`);
      options.vars[pair.slice(0, at)] = pair.slice(at + 1);
      break;
    }
    case "-h": case "--help": console.log(usage); process.exit(0);
    default: fail(`unknown argument ${args[i]}`);
  }
}
if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) fail("--port takes a port number");

function fail(message) {
  console.error(`serve: ${message}\n${usage}`);
  process.exit(2);
}

const configPath = resolve(options.config);
const config = unstable_readConfig({ config: configPath });
const { workerOptions, main } = unstable_getMiniflareWorkerOptions(config);
if (!main) fail(`${configPath} names no main module`);
const scriptPath = resolve(dirname(configPath), main);

const mf = new Miniflare({
  host: options.ip,
  port: options.port,
  // Offline: the default `cf` object instead of fetching one from Cloudflare.
  cf: false,
  defaultPersistRoot: join(resolve(options.persistTo), "v3"),
  unsafeTriggerHandlers: true,
  inspectorPort: options.inspectorPort,
  workers: [
    {
      ...workerOptions,
      name: config.name,
      modules: true,
      scriptPath,
      modulesRoot: dirname(scriptPath),
      bindings: { ...workerOptions.bindings, ...options.vars },
    },
  ],
});

const url = await mf.ready;
console.log(`ready ${url.origin}`);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await mf.dispose().catch(() => {});
    process.exit(0);
  });
}
