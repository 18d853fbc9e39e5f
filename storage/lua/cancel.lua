-- Cancel a job (or expire it at its deadline).
-- A queued job ends at once and its reservation is released. A running job is marked
-- canceled; its worker settles what the call cost when it returns.
-- ARGV: prefix, tenant, job_id, mode ('canceled' | 'expired')
-- Returns {'ok', status} | {'finished', status} | {'missing'} | {'not_due'}
local t, id, mode = ARGV[2], ARGV[3], ARGV[4]
local now = now_ms()
local key = K.job(t, id)
local job = hget_all(key)
local status = job['status']
if not status then return {'missing'} end
if mode == 'expired' then
  local deadline = tonumber(job['deadline'] or '')
  if status ~= 'queued' or not deadline or deadline > now then return {'not_due'} end
end
if status == 'running' and mode == 'canceled' then
  redis.call('HSET', key, 'status', 'canceled', 'finished_at', int(now), 'updated_at', int(now),
             'error', cjson.encode({code = 'canceled', message = 'canceled while running; ' ..
             'the provider call, if billed, is charged'}))
  emit(t, id, job, 'canceled', now, 'while running')
  retain(t, id, job)
  return {'ok', 'canceled'}
end
if status ~= 'queued' then return {'finished', status} end
redis.call('LREM', K.queue(t, K.lane('interactive')), 0, id)
redis.call('LREM', K.queue(t, K.lane('batch')), 0, id)
redis.call('ZREM', K.schedule(), R.retry(t, id))
redis.call('ZREM', K.deadlines(), R.slot(t, id))
drop_slot(t, id)
local message = 'canceled before it started; nothing was charged'
if mode == 'expired' then message = 'not started before its Cancel-After deadline; nothing was charged' end
redis.call('HSET', key, 'status', mode, 'finished_at', int(now), 'updated_at', int(now), 'token', '',
           'error', cjson.encode({code = mode, message = message}))
settle(t, id, job, 0, 'released', '', now, mode, 0)
emit(t, id, job, mode, now, '')
retain(t, id, job)
wake()
return {'ok', mode}
