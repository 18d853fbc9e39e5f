-- Put a job back in line: after a retryable error (due later, via the schedule) or after its
-- worker died (now, at the head of its queue). Frees its slot.
-- ARGV: prefix, tenant, job_id, token, due_ms (0 = now), counter field ('' for none),
--       last_error (JSON or ''), reason (the retry's `editq_retries_total` label, '' for none)
-- Returns {'ok'} or {'stale', status}.
local t, id, token, due = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local counter, last_error, reason = ARGV[6], ARGV[7], ARGV[8] or ''

local now = now_ms()
local key = K.job(t, id)
local job = hget_all(key)
if job['token'] ~= token or (job['status'] ~= 'running' and job['status'] ~= 'queued') then
  return {'stale', job['status'] or 'missing'}
end
drop_slot(t, id)
call_done(t, id)
redis.call('HSET', key, 'status', 'queued', 'token', '', 'lease_until', '', 'updated_at', int(now))
if counter ~= '' then redis.call('HINCRBY', key, counter, 1) end
if reason ~= '' then count_metric('editq_retries', 1, reason) end
if last_error ~= '' then redis.call('HSET', key, 'last_error', last_error) end
local deadline = tonumber(job['deadline'] or '')
if deadline then redis.call('ZADD', K.deadlines(), int(deadline), R.slot(t, id)) end
if due > now then
  redis.call('HSET', key, 'retry_at', int(due))
  redis.call('ZADD', K.schedule(), int(due), R.retry(t, id))
else
  redis.call('HSET', key, 'retry_at', '')
  enqueue(t, id, K.lane(job['priority']), true)
end
if job['status'] == 'running' then emit(t, id, job, 'queued', now, counter) end
wake()
return {'ok'}
