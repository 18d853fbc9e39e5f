-- A running job moves to another model (its default model became unavailable): its plan,
-- model and estimate change, and its reservation grows or shrinks to the new estimate. A growth
-- is checked against every budget of the tenant, as a hold is.
-- On a credit plan, its credit reservation is resized the same way, under the same plan.
-- ARGV: prefix, tenant, job_id, token, model, plan (JSON), estimate (JSON), amount, note,
--       credits ('' for a job on no plan), credit terms (JSON or '')
-- Returns {'ok'} | {'stale', status} | {'budget_exceeded', period, limit, remaining}
--       | {'insufficient_credits', balance, available}.
local t, id, token, model = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local plan, estimate, amount, note = ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9]
local credits, terms = tonumber(ARGV[10] or ''), ARGV[11] or ''
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
local held = tonumber(job['credits_reserved'] or '')
if held and credits then
  local balance, all_held = credit_state(t)
  if credits > held and all_held + credits - held > balance then
    return {'insufficient_credits', int(balance), int(math.max(0, balance - all_held))}
  end
  redis.call('HINCRBY', K.credits(t), 'reserved', int(credits - held))
  redis.call('HSET', key, 'credits_reserved', int(credits), 'credit_terms', terms)
end
for i = 1, 3 do
  redis.call('HINCRBY', keys[i], 'reserved', int(delta))
end
redis.call('HSET', key, 'model', model, 'plan', plan, 'estimate', estimate, 'reserved', int(amount),
           'model_note', note, 'updated_at', int(now_ms()))
return {'ok'}
