-- wrk script: the seed's registration request, with the tenant's Host.
wrk.method = "POST"
wrk.body = '{"client_name":"My Dynamic Application","redirect_uris":["https://application.example.com/callback","https://application.example.com/callback2"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Host"] = os.getenv and os.getenv("BENCH_HOST") or "bench.example"

