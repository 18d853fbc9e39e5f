-- A running job moves to another model (its default model became unavailable): its plan,
-- model and estimate change, and its reservation grows or shrinks to the new estimate. A growth
-- is checked against every budget of the tenant, as a hold is.
-- ARGV: prefix, tenant, job_id, token, model, plan (JSON), estimate (JSON), amount, note
-- Returns {'ok'} | {'stale', status} | {'budget_exceeded', period, limit, remaining}.
local t, id, token, model = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local plan, estimate, amount, note = ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9]
local key = K.job(t, id)
local job = hget_all(key)
if job['token'] ~= token or job['status'] ~= 'running' then return {'stale', job['status'] or 'missing'} end
if (job['settled'] or '') == '1' then return {'stale', 'settled'} end
local reserved = tonumber(job['reserved'] or '0') or 0
local delta = amount - reserved
local keys = bucket_keys(t, job['budget_day'], job['budget_month'])
if delta > 0 then
  local over = over_budget(t, keys, delta)
  if over then return {'budget_exceeded', over[1], int(over[2]), int(over[3])} end
end
for i = 1, 3 do
  redis.call('HINCRBY', keys[i], 'reserved', int(delta))
end
redis.call('HSET', key, 'model', model, 'plan', plan, 'estimate', estimate, 'reserved', int(amount),
           'model_note', note, 'updated_at', int(now_ms()))
return {'ok'}
