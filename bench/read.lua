-- wrk script: POST /api/v1/persons/read (the gate) for random CINs of the loaded population.
-- Environment: CINS (a file of CINs, one per line), TOKEN (a development bearer token),
-- PURPOSE (default registration), FULL (true/false, default false), FIELDS (JSON array,
-- default [] = every field the role may see).
-- Requests are built once per thread in init(), so that wrk spends its CPU sending, not
-- formatting: the server, not the load generator, should be what is measured.
local token = os.getenv("TOKEN")
local purpose = os.getenv("PURPOSE") or "registration"
local full = os.getenv("FULL") or "false"
local fields = os.getenv("FIELDS") or "[]"

local requests = {}
local n = 0

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed)
  local cins = {}
  for line in io.lines(os.getenv("CINS")) do cins[#cins + 1] = line end
  local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  for i = 1, 20000 do
    local cin = cins[math.random(1, #cins)]
    local body = '{"cin":"' .. cin .. '","purpose":"' .. purpose .. '","full":' .. full .. ',"fields":' .. fields .. '}'
    requests[i] = wrk.format("POST", "/api/v1/persons/read", headers, body)
  end
end

request = function()
  n = n + 1
  if n > #requests then n = 1 end
  return requests[n]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("non-2xx or errors: %d\n", e.status + e.connect + e.read + e.write + e.timeout))
end
