-- Turn a hold into a job: record, reservation, pending queue, idempotency answer, all at once.
-- ARGV: prefix, tenant, job_id, hold_id, fields (JSON object of job hash fields),
--       idem_key ('' for none), idem_ttl_s, response_status, response_body,
--       mode ('queue' | 'reused'), reuse_source_job ('' unless reused)
-- Returns {'ok'} or {'hold_lost'}.
local t, id, hold = ARGV[2], ARGV[3], ARGV[4]
local fields = cjson.decode(ARGV[5])
local idem, idem_ttl = ARGV[6], tonumber(ARGV[7])
local status, body, mode = ARGV[8], ARGV[9], ARGV[10]
local now = now_ms()
local h = hget_all(K.hold(hold))
if not h['tenant'] or h['tenant'] ~= t then return {'hold_lost'} end
redis.call('DEL', K.hold(hold))
redis.call('ZREM', K.holds(), hold)

local key = K.job(t, id)
local flat = {}
for k, v in pairs(fields) do
  flat[#flat + 1] = k
  flat[#flat + 1] = tostring(v)
end
redis.call('HSET', key, unpack(flat))
redis.call('HSET', key, 'reserved', h['amount'], 'budget_day', h['day'],
           'budget_month', h['month'], 'updated_at', int(now))
local on_plan = (h['plan'] or '') ~= ''
if on_plan then redis.call('HSET', key, 'credits_reserved', h['credits'] or '0') end
local job = hget_all(key)
redis.call('ZADD', K.jobs(t), job['created_at'], id)
local entry = {'job', id, 'kind', 'reserved', 'amount', h['amount'], 'released', '0',
               'model', job['model'] or '', 'usage', '', 'day', h['day'], 'at', int(now),
               'note', ''}
if on_plan then
  entry[#entry + 1] = 'credits'
  entry[#entry + 1] = h['credits'] or '0'
end
redis.call('XADD', K.ledger(t), '*', unpack(entry))

if mode == 'reused' then
  redis.call('HSET', key, 'status', 'succeeded', 'finished_at', int(now), 'started_at', int(now))
  job['status'] = 'succeeded'
  settle(t, id, job, 0, 'reused', '', now, 'reused ' .. ARGV[11], 0)
  emit(t, id, job, 'succeeded', now, 'reused')
  retain(t, id, job)
else
  redis.call('HSET', key, 'status', 'queued')
  local deadline = tonumber(job['deadline'] or '')
  if deadline then redis.call('ZADD', K.deadlines(), int(deadline), R.slot(t, id)) end
  enqueue(t, id, K.lane(job['priority']), false)
  emit(t, id, job, 'queued', now, '')
end
if idem ~= '' then
  local ikey = K.idempotency(t, idem)
  redis.call('HSET', ikey, 'state', 'done', 'status', status, 'body', body, 'job', id)
  redis.call('EXPIRE', ikey, idem_ttl)
end
return {'ok'}
