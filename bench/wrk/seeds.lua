-- wrk script: GET /api/v1/recommend/seeds, the seed track rotating over catalog ids.
-- Usage: wrk ... -s bench/wrk/seeds.lua http://127.0.0.1:PORT -- IDS_FILE [limit]
-- IDS_FILE: one URL-encoded track id a line (bench_serve.py writes a random sample of the catalog).
local ids = {}
local limit = 10
local position = 0
local thread_count = 0

-- runs in the main Lua state once per thread before start: number the threads
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open the ids file " .. tostring(args[1]))
  for line in file:lines() do
    if #line > 0 then ids[#ids + 1] = line end
  end
  file:close()
  assert(#ids > 0, "no track ids in " .. args[1])
  limit = tonumber(args[2]) or 10
  -- threads start at different places of the (shuffled) list, so they do not ask the same seeds in step
  position = math.floor((#ids / 16) * ((thread_id or 1) - 1)) % #ids
end

function request()
  position = position % #ids + 1
  local path = string.format("/api/v1/recommend/seeds?seeds=%s&limit=%d", ids[position], limit)
  return wrk.format("GET", path)
end
