// The benchmark's baseline: the least a Worker can do for each kind of request the bench measures.
//   /api/…   a constant JSON 200 (no D1: the floor of a request that needs no round trip)
//   /d1/1    one D1 query, the service's credit-balance read (`GET /referrals/balance`), for the
//            user the request names
//   /d1/2    two D1 queries in sequence: the user's row (as the service reads a user it does not
//            know yet), then the same balance read
//   /r2/<key>  PUT stores the body in R2 under <key>; GET streams the object back with its length
//            and no checks at all (the floor of a download from R2)
//   anything else: a constant 302 (edge links)
// The user is `?user=` or else the `sub` of the bearer token, decoded but not verified: checking
// the signature is the service's own cost, not the runtime's. The rows it reads are seeded by the
// bench (bench/lib.mjs startBaseline) into its own local D1, whose schema is the service's
// migrations.

// The service's statements: a user's row (src/store/users.rs find), and the credit-balance read,
// which the bench takes from src/store/credits.rs at run time and hands over as the var
// BALANCE_SQL, so the two cannot drift apart.
const USER = "SELECT id, is_admin, is_active, created_at FROM users WHERE id = ?1";

function userOf(request, url) {
  const named = url.searchParams.get("user");
  if (named) return named;
  const token = /^Bearer ([^.]+)\.([^.]+)\./.exec(request.headers.get("Authorization") ?? "");
  if (!token) return null;
  try {
    return JSON.parse(atob(token[2].replace(/-/g, "+").replace(/_/g, "/"))).sub ?? null;
  } catch {
    return null;
  }
}

const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/api/")) {
      return new Response('{"status":"ok"}', { headers: { "Content-Type": "application/json" } });
    }
    if (url.pathname.startsWith("/r2/")) {
      const key = url.pathname.slice(4);
      if (request.method === "PUT") {
        await env.FILES.put(key, request.body);
        return json({ stored: key });
      }
      const object = await env.FILES.get(key);
      if (!object) return json({ error: "no such object" }, 404);
      return new Response(object.body, { headers: { "Content-Length": String(object.size), "Content-Type": "application/octet-stream" } });
    }
    if (url.pathname === "/d1/1" || url.pathname === "/d1/2") {
      const user = userOf(request, url);
      if (!user) return json({ error: "no user" }, 401);
      if (url.pathname === "/d1/2") {
        const row = await env.DB.prepare(USER).bind(user).first();
        if (!row) return json({ error: "no such user" }, 404);
      }
      const balance = await env.DB.prepare(env.BALANCE_SQL).bind(user).first();
      return json(balance);
    }
    return new Response(null, {
      status: 302,
      headers: { Location: "https://soundhash.io/?promo=BASELINE", "Cache-Control": "no-store" },
    });
  },
};
