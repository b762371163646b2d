-- wrk script for the token endpoint: POST a form to /oauth/token with the tenant's Host.
-- BENCH_BODY is the form; with BENCH_CODES (a file, one authorization code per line) each
-- request redeems the next code ("code=" is appended), since a code works only once.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Host"] = os.getenv("BENCH_HOST") or "bench.example"
local body = os.getenv("BENCH_BODY") or ""
local codes_file = os.getenv("BENCH_CODES")
local codes = {}
if codes_file and codes_file ~= "" then
  for line in io.lines(codes_file) do codes[#codes + 1] = line end
end
local next_code = 0

request = function()
  if #codes == 0 then
    return wrk.format(nil, nil, nil, body)
  end
  next_code = next_code + 1
  return wrk.format(nil, nil, nil, body .. "&code=" .. (codes[next_code] or "exhausted"))
end
