-- A run ends: running -> succeeded | failed, settling the money and freeing the slot.
-- A job canceled while its call was in flight stays canceled; what the call cost is charged.
-- ARGV: prefix, tenant, job_id, token, outcome ('succeeded'|'failed'), outputs (JSON),
--       error (JSON or ''), usage (JSON or ''), actual (micro-dollars), reuse_key ('' for none),
--       reuse_ttl_s, output_retention_s, credits (what the job costs on its plan if it
--       succeeded; a failed or canceled job is charged no credits)
-- Returns {'ok', status} or {'stale', status}.
local t, id, token, outcome = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local outputs, err, usage, actual = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local reuse_key, reuse_ttl, out_ttl = ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12])
local credits = tonumber(ARGV[13] or '0') or 0
local now = now_ms()
local key = K.job(t, id)
local job = hget_all(key)
if job['token'] ~= token then return {'stale', job['status'] or 'missing'} end
local status = job['status']
if status ~= 'running' and status ~= 'canceled' then return {'stale', status or 'missing'} end
drop_slot(t, id)
call_done(t, id)
local kind = 'settled'
if actual == 0 and usage == '' then kind = 'released' end
if status == 'canceled' then
  settle(t, id, job, actual, kind, usage, now, 'canceled while running', 0)
  redis.call('HSET', key, 'usage', usage, 'updated_at', int(now))
  wake()
  return {'ok', 'canceled'}
end
redis.call('HSET', key, 'status', outcome, 'finished_at', int(now), 'updated_at', int(now),
           'usage', usage)
if outcome == 'succeeded' then
  redis.call('HSET', key, 'outputs', outputs)
  if reuse_key ~= '' then
    redis.call('SET', K.reuse(t, reuse_key), id, 'EX', reuse_ttl)
  end
  redis.call('ZADD', K.retention(), int(now + out_ttl * 1000), R.outputs(t, id))
else
  redis.call('HSET', key, 'error', err)
end
if outcome ~= 'succeeded' then credits = 0 end
settle(t, id, job, actual, kind, usage, now, '', credits)
emit(t, id, job, outcome, now, '')
retain(t, id, job)
wake()
return {'ok', outcome}
