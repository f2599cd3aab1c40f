-- wrk script: POST /api/v1/auth/login.
-- MODE=ok:    LOGINS (a file of logins, one per line) and PASSWORD, the right one, taken in
--             turn: each request is one Argon2id verification and a pending session (the password
--             step of a real login).
-- MODE=flood: a new unknown login each request and a wrong password: what an attacker spraying
--             passwords does; each costs the server one Argon2id verification (on a decoy hash).
local mode = os.getenv("MODE") or "ok"
local logins = {}
local password = os.getenv("PASSWORD") or ""
local headers = { ["Content-Type"] = "application/json" }
local counter = 0

local threads = {}

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(seed)
  prefix = "fl" .. seed .. "."
  if mode == "ok" then
    for line in io.lines(os.getenv("LOGINS")) do logins[#logins + 1] = line end
  end
end

request = function()
  counter = counter + 1
  if mode == "ok" then
    local login = logins[(counter % #logins) + 1]
    return wrk.format("POST", "/api/v1/auth/login", headers,
      '{"login":"' .. login .. '","password":"' .. password .. '"}')
  end
  return wrk.format("POST", "/api/v1/auth/login", headers,
    '{"login":"' .. prefix .. counter .. '@bench.example","password":"not the right one at all"}')
end

n401, n503, nother = 0, 0, 0
response = function(status, headers, body)
  if status == 401 then n401 = n401 + 1
  elseif status == 503 then n503 = n503 + 1
  elseif status ~= 200 then nother = nother + 1 end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("n401"); b = b + t:get("n503"); c = c + t:get("nother")
  end
  io.write(string.format("status 401: %d, 503: %d, other non-200: %d\n", a, b, c))
  if mode == "ok" then
    io.write(string.format("non-2xx or errors: %d\n", e.status + e.connect + e.read + e.write + e.timeout))
  end
end
