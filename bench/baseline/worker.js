// The benchmark's baseline: the least a Worker can do — a constant 302 for edge links, a constant
// JSON 200 for API paths (`/api/…`).
export default {
  fetch(request) {
    if (new URL(request.url).pathname.startsWith("/api/")) {
      return new Response('{"status":"ok"}', { headers: { "Content-Type": "application/json" } });
    }
    return new Response(null, {
      status: 302,
      headers: { Location: "https://soundhash.io/?promo=BASELINE", "Cache-Control": "no-store" },
    });
  },
};
