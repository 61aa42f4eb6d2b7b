-- bench:http's request script for wrk (see load.ts): every request of the token file built once in
-- init, then each request picked at random (seeded by args[3]). Random, not in turn: with a pool
-- larger than the verify cache, a fixed cycle would make each short piece fall wholly in the part
-- of the pool that is cached or wholly in the part that is not.
local reqs = {}
local n = 0

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
  math.randomseed(tonumber(args[3]) or 1)
end

function request()
  return reqs[math.random(n)]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%d,"durationUs":%d,"failures":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(99)))
end
