-- A worker claims an admitted job: queued -> running, under a lease.
-- ARGV: prefix, tenant, job_id, token, lease_ms, worker, calling ('1': the run's provider call
--       goes out next, noted at once as call.lua's 'sent' would; the sources are loaded already)
-- Returns {'ok', fields...} (the job after the claim) | {'skip', status} | {'expired'}
local t, id, token, lease, worker = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local calling = ARGV[7] == '1'
local now = now_ms()
local key = K.job(t, id)
local job = hget_all(key)
if not job['status'] then return {'skip', 'missing'} end
if job['status'] ~= 'queued' or job['token'] ~= token then return {'skip', job['status']} end
local deadline = tonumber(job['deadline'] or '')
if deadline and deadline <= now then return {'expired'} end
redis.call('HSET', key, 'status', 'running', 'lease_until', int(now + lease), 'updated_at', int(now),
           'worker', worker)
if (job['started_at'] or '') == '' then redis.call('HSET', key, 'started_at', int(now)) end
redis.call('HINCRBY', key, 'runs', 1)
local attempts = redis.call('HINCRBY', key, 'attempts', 1)
if calling then
  redis.call('HSET', key, 'calling', attempts, 'call_usage', '', 'call_actual', '')
end
redis.call('ZADD', K.inflight(), int(now + lease), R.slot(t, id))
if (job['account'] or '') ~= '' then
  redis.call('ZADD', K.account_inflight(job['account']), int(now + lease), R.slot(t, id))
end
redis.call('ZADD', K.running(t), int(now + lease), id)
redis.call('ZREM', K.deadlines(), R.slot(t, id))
if (job['started_at'] or '') == '' then emit(t, id, job, 'running', now, '') end
local claimed = redis.call('HGETALL', key)
table.insert(claimed, 1, 'ok')
return claimed
