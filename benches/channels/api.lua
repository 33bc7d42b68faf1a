-- wrk: each request is a new customer message through the API channel
-- (50 customers per thread, a message_id unique across threads).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"source_id":"bench-%d-%d","name":"Bench","body":"Message %d from the bench","message_id":"m-%d-%d"}',
    tid, n % 50, n, tid, n)
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("NATTER_API_TOKEN"),
  }, body)
end
