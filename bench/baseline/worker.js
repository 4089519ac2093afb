// The benchmark's baseline: the least a Worker can do for an edge link — answer a constant 302.
export default {
  fetch() {
    return new Response(null, {
      status: 302,
      headers: { Location: "https://soundhash.io/?promo=BASELINE", "Cache-Control": "no-store" },
    });
  },
};
