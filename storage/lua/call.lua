-- Mark a running job's provider call, so a worker lost after the provider may have billed it
-- leaves a trace the reaper turns into a ledger entry (see lost_call in _lib.lua).
-- phase 'sent': the call is about to go out; 'answered': it came back billed, with its usage
-- and price. Both only for the run that owns the job (its dispatch token).
-- ARGV: prefix, tenant, job_id, token, phase, usage (JSON or ''), actual (micro-dollars)
-- Returns {'ok'} or {'stale'}.
local t, id, token, phase, usage, actual = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local key = K.job(t, id)
local job = hget_all(key)
if job['token'] ~= token or job['status'] ~= 'running' then return {'stale'} end
if phase == 'sent' then
  redis.call('HSET', key, 'calling', job['attempts'] or '1', 'call_usage', '', 'call_actual', '')
else
  redis.call('HSET', key, 'call_usage', usage, 'call_actual', actual)
end
return {'ok'}
