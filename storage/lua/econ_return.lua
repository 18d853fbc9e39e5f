-- A job of economy batch b (its token) that the batch ended without a result for goes back in
-- line: to the economy lane's collection, or, when `lane` is 'interactive', to its tenant's
-- interactive queue with its reservation grown to the interactive estimate `amount` (only if
-- every budget has room: otherwise it stays in the economy lane).
-- ARGV: prefix, tenant, job_id, batch_id, lane, amount, estimate (JSON or ''), window_ms,
--       max_jobs, last_error (JSON)
-- Returns {'ok', lane} | {'stale', status}.
local t, id, b, lane = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local amount, estimate = tonumber(ARGV[6]), ARGV[7]
local window, max_jobs, last_error = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
local now = now_ms()
local key = K.job(t, id)
local job = hget_all(key)
if job['token'] ~= b or job['status'] ~= 'running' then return {'stale', job['status'] or 'missing'} end
if lane == 'interactive' and (job['settled'] or '') ~= '1' then
  local reserved = tonumber(job['reserved'] or '0') or 0
  local delta = amount - reserved
  local keys = bucket_keys(t, job['budget_day'], job['budget_month'])
  if delta > 0 and over_budget(t, keys, delta) then
    lane = 'economy'
  else
    for i = 1, 3 do redis.call('HINCRBY', keys[i], 'reserved', int(delta)) end
    redis.call('HSET', key, 'reserved', int(amount), 'estimate', estimate, 'lane', 'interactive')
  end
end
redis.call('HSET', key, 'status', 'queued', 'token', '', 'ebatch', '', 'updated_at', int(now),
           'last_error', last_error)
local deadline = tonumber(job['deadline'] or '')
if deadline then redis.call('ZADD', K.deadlines(), int(deadline), R.slot(t, id)) end
if lane == 'interactive' then
  enqueue(t, id, K.lane('interactive'), true)
else
  econ_enqueue(t, id, now, window, max_jobs)
end
emit(t, id, job, 'queued', now, 'economy batch ended without its result')
wake()
return {'ok', lane}
