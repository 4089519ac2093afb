-- wrk script of `npm run bench`: GET <path> as distinct visitors, an exact number of requests.
-- Usage: wrk -t T -c C -d <generous> -s bench/clicks.lua <url> -- <requests per thread> <path>
-- Each thread sends exactly its quota: once it is reached, delay() parks the thread's connections
-- instead of letting them send more, and the responses still in flight are awaited and counted.
-- The elapsed time is measured here (first request to last response, over all threads), and each
-- thread reports when it is through so that the runner can end wrk before its -d.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *ts);
]]
local function now_ms()
  local ts = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[1])
  reserved = 0 -- delay() is asked before every request, the first ones included
  target = args[2]
  sent, ok, others, first, last = 0, 0, 0, 0, 0
end

function delay()
  if reserved < quota then
    reserved = reserved + 1
    return 0
  end
  return 100000000 -- parked until wrk ends
end

local agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

function request()
  if sent == 0 then first = now_ms() end
  -- 250 visitors per thread: 10.<thread>.0.<1..250>
  local visitor = sent % 250
  sent = sent + 1
  local ip = string.format("10.%d.%d.%d", id % 250, math.floor(visitor / 250), visitor % 250 + 1)
  return wrk.format("GET", target, { ["User-Agent"] = agent, ["CF-Connecting-IP"] = ip })
end

function response(status, headers, body)
  if status == 302 then ok = ok + 1 else others = others + 1 end
  if ok + others == quota then
    last = now_ms()
    -- Tells bench/run.mjs this thread is through; once all are, it stops wrk with SIGINT.
    io.write("thread-done\n")
    io.flush()
  end
end

function done(summary, latency, requests)
  local r, o, s, first_all, last_all, unfinished = 0, 0, 0, math.huge, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("ok")
    o = o + t:get("others")
    s = s + t:get("sent")
    first_all = math.min(first_all, t:get("first"))
    if t:get("last") == 0 then unfinished = unfinished + 1 end
    last_all = math.max(last_all, t:get("last"))
  end
  -- wrk's socket error counts are left out: parked connections time out or are closed while idle.
  io.write(string.format(
    '{"sent":%d,"requests":%d,"elapsed_ms":%.1f,"ok":%d,"others":%d,"unfinished":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    s, summary.requests, last_all - first_all, r, o, unfinished,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
