-- bench:http's request script for wrk (see load.ts): every request of the token file built once in
-- init, then handed out in turn from index args[3] (where the last run stopped), so a token pool
-- larger than the verify cache misses on every request, run after run.
local reqs = {}
local n = 0
local i = 0

function init(args)
  if args[1] and args[1] ~= "" then
    for line in io.lines(args[1]) do
      n = n + 1
      reqs[n] = wrk.format("GET", args[2], { ["Authorization"] = "Bearer " .. line })
    end
  end
  if n == 0 then
    n = 1
    reqs[1] = wrk.format("GET", args[2])
  end
  i = (tonumber(args[3]) or 0) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%d,"durationUs":%d,"failures":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(99)))
end
