-- A provider slot whose lease lapsed: its job was admitted but never started, or its worker
-- died mid-run. Put the job back in line (bounded), or end it; always free the slot.
-- ARGV: prefix, tenant, job_id, max_losses
-- Returns {'requeued'} | {'failed'} | {'released'} | {'freed'} | {'alive'}
local t, id, max_losses = ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = now_ms()
local score = tonumber(redis.call('ZSCORE', K.inflight(), R.slot(t, id)) or '')
if score and score > now then return {'alive'} end
local key = K.job(t, id)
local job = hget_all(key)
drop_slot(t, id)
local status = job['status']
if status == 'running' or status == 'canceled' then lost_call(t, id, job, now) end
if status == 'queued' and (job['token'] or '') ~= '' then
  redis.call('HSET', key, 'token', '', 'updated_at', int(now))
  enqueue(t, id, K.lane(job['priority']), true)
  return {'requeued'}
end
if status == 'running' then
  local losses = redis.call('HINCRBY', key, 'losses', 1)
  if losses > max_losses then
    redis.call('HSET', key, 'status', 'failed', 'finished_at', int(now), 'updated_at', int(now),
               'token', '', 'error', cjson.encode({code = 'worker_lost', message =
               'the worker running this job stopped ' .. losses .. ' times; giving up'}))
    settle(t, id, job, 0, 'released', '', now, 'worker lost; a provider call may have been billed', 0)
    emit(t, id, job, 'failed', now, 'worker_lost')
    retain(t, id, job)
    return {'failed'}
  end
  redis.call('HSET', key, 'status', 'queued', 'token', '', 'lease_until', '', 'updated_at', int(now))
  enqueue(t, id, K.lane(job['priority']), true)
  count_metric('editq_retries', 1, 'worker_lost')
  emit(t, id, job, 'queued', now, 'worker_lost')
  return {'requeued'}
end
if status == 'canceled' and (job['settled'] or '') ~= '1' then
  settle(t, id, job, 0, 'released', '', now, 'canceled; worker lost, a call may have been billed', 0)
  return {'released'}
end
return {'freed'}
