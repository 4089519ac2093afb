-- wrk script of `npm run bench`: an exact number of requests of one kind.
-- Usage: wrk -t T -c C -d <generous> -s bench/load.lua <url> -- <requests per thread> <kind> …
--   clicks <path> [<net>]                 GET <path> as distinct visitors (CF-Connecting-IP 10.<thread>.<net>.<1..250>
--                                         × a browser user agent, 250 per thread; net 0 by default, so that each link
--                                         can have visitors of its own); 302 counts as ok.
--   api <method> <path> <tokens file>     authenticated requests, each with the next JWT of the file (one per line),
--                                         so the load is spread over many users; 200 counts as ok.
--   post <path> <bodies file> <pattern> [<tokens file>]
--                                         POSTs of the next JSON body of the file (one per line), as distinct clients
--                                         (CF-Connecting-IP 10.<thread>.200.<1..250>), with the next JWT of the tokens
--                                         file if one is given; a 200 whose body matches the Lua pattern counts as ok.
--   api … activity <events per request> <members> <occurred_at> <nonce>
--                                         the body is a fresh batch of `api_calls` events of amount 1 for random
--                                         members `member-0 … member-<members-1>` (ids unique through <nonce>); the
--                                         summary adds the events the service reported as accepted.
-- Responses carrying the service's `Server-Timing` (`d1;count=N;…, do;count=M;…`) add their D1 round trips and Durable
-- Object calls to the summary (`timed` responses, `d1`, `do`); the baseline sends none.
-- Each thread sends exactly its quota: once it is reached, delay() parks the thread's connections instead of letting
-- them send more, and the responses still in flight are awaited and counted. The elapsed time is measured here (first
-- request to last response, over all threads), and each thread reports when it is through so that the runner can end
-- wrk before its -d.
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
  quota, kind = tonumber(args[1]), args[2]
  if kind == "clicks" then
    method, target, expected = "GET", args[3], 302
    net = tonumber(args[4] or "0")
  elseif kind == "post" then
    method, target, expected, pattern = "POST", args[3], 200, args[5]
    bodies = {}
    for line in io.lines(args[4]) do
      if #line > 0 then table.insert(bodies, line) end
    end
    if args[6] then
      tokens = {}
      for line in io.lines(args[6]) do
        if #line > 0 then table.insert(tokens, line) end
      end
    end
  else
    method, target, expected = args[3], args[4], 200
    tokens = {}
    for line in io.lines(args[5]) do
      if #line > 0 then table.insert(tokens, line) end
    end
    activity = args[6] == "activity"
    if activity then
      per_request, members, occurred_at, nonce = tonumber(args[7]), tonumber(args[8]), args[9], args[10]
      math.randomseed(id * 7919 + os.time())
    end
  end
  reserved, sent, ok, others, accepted, first, last = 0, 0, 0, 0, 0, 0, 0
  timed, d1, objects = 0, 0, 0
end

function delay()
  if reserved < quota then
    reserved = reserved + 1
    return 0
  end
  return 100000000 -- parked until wrk ends
end

local agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

local function batch()
  local parts = {}
  for k = 1, per_request do
    parts[k] = string.format(
      '{"id":"%s-%d-%d-%d","user_id":"member-%d","metric":"api_calls","amount":1,"occurred_at":"%s"}',
      nonce, id, sent, k, math.random(0, members - 1), occurred_at)
  end
  return '{"events":[' .. table.concat(parts, ",") .. "]}"
end

function request()
  if sent == 0 then first = now_ms() end
  local headers, body
  if kind == "clicks" then
    -- 250 visitors per thread: 10.<thread>.<net>.<1..250>
    local visitor = sent % 250
    headers = { ["User-Agent"] = agent, ["CF-Connecting-IP"] = string.format("10.%d.%d.%d", id % 250, net, visitor + 1) }
  elseif kind == "post" then
    headers = { ["Content-Type"] = "application/json", ["CF-Connecting-IP"] = string.format("10.%d.200.%d", id % 250, sent % 250 + 1) }
    body = bodies[(sent + id * 997) % #bodies + 1]
    if tokens then headers["Authorization"] = "Bearer " .. tokens[(sent + id * 997) % #tokens + 1] end
  else
    headers = { ["Authorization"] = "Bearer " .. tokens[(sent + id * 997) % #tokens + 1] }
    if activity then
      headers["Content-Type"] = "application/json"
      body = batch()
    end
  end
  sent = sent + 1
  return wrk.format(method, target, headers, body)
end

function response(status, headers, body)
  if status == expected and (pattern == nil or string.find(body, pattern)) then ok = ok + 1 else others = others + 1 end
  local timing = headers["Server-Timing"] or headers["server-timing"]
  if timing then
    timed = timed + 1
    d1 = d1 + tonumber(string.match(timing, "d1;count=(%d+)") or "0")
    objects = objects + tonumber(string.match(timing, "do;count=(%d+)") or "0")
  end
  if activity and status == 200 then
    accepted = accepted + tonumber(string.match(body, '"accepted":(%d+)') or "0")
  end
  if ok + others == quota then
    last = now_ms()
    -- Tells bench/lib.mjs this thread is through; once all are, it stops wrk with SIGINT.
    io.write("thread-done\n")
    io.flush()
  end
end

function done(summary, latency, requests)
  local r, o, s, a, first_all, last_all, unfinished = 0, 0, 0, 0, math.huge, 0, 0
  local tm, d, ob = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("ok")
    o = o + t:get("others")
    s = s + t:get("sent")
    a = a + t:get("accepted")
    tm, d, ob = tm + t:get("timed"), d + t:get("d1"), ob + t:get("objects")
    first_all = math.min(first_all, t:get("first"))
    if t:get("last") == 0 then unfinished = unfinished + 1 end
    last_all = math.max(last_all, t:get("last"))
  end
  -- wrk's socket error counts are left out: parked connections time out or are closed while idle.
  io.write(string.format(
    '{"sent":%d,"requests":%d,"elapsed_ms":%.1f,"ok":%d,"others":%d,"accepted":%d,"unfinished":%d,"timed":%d,"d1":%d,"do":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    s, summary.requests, last_all - first_all, r, o, a, unfinished, tm, d, ob,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
