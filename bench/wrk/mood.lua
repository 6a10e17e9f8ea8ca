-- wrk script: GET /api/v1/recommend/mood, the target rotating over a list of moods.
-- Usage: wrk ... -s bench/wrk/mood.lua http://127.0.0.1:PORT -- TARGETS_FILE [limit]
-- TARGETS_FILE: one "valence arousal" pair a line (bench_serve.py writes catalog tracks' moods
-- plus a little noise, so targets fall where the music is, as a user's clicks on the pad would).
local targets = {}
local limit = 10
local position = 0
local thread_count = 0

-- runs in the main Lua state once per thread before start: number the threads
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open the targets file " .. tostring(args[1]))
  for line in file:lines() do
    local valence, arousal = line:match("^(%S+)%s+(%S+)$")
    if valence then targets[#targets + 1] = {valence, arousal} end
  end
  file:close()
  assert(#targets > 0, "no targets in " .. args[1])
  limit = tonumber(args[2]) or 10
  -- threads start at different places of the (shuffled) list, so they do not ask the same targets in step
  position = math.floor((#targets / 16) * ((thread_id or 1) - 1)) % #targets
end

function request()
  position = position % #targets + 1
  local target = targets[position]
  local path = string.format("/api/v1/recommend/mood?target_valence=%s&target_arousal=%s&limit=%d",
                             target[1], target[2], limit)
  return wrk.format("GET", path)
end
