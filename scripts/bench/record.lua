-- wrk script: POST /api/quota/record with a workspace key (env QA_KEY).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("QA_KEY")
wrk.body = '{"success": true, "tokens_used": 42}'
