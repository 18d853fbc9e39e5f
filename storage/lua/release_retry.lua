-- A scheduled retry is due: move the job from the schedule to the head of its queue.
-- ARGV: prefix, tenant, job_id. Returns 1 if moved.
local t, id = ARGV[2], ARGV[3]
if redis.call('ZREM', K.schedule(), R.retry(t, id)) == 0 then return 0 end
local key = K.job(t, id)
local st = redis.call('HMGET', key, 'status', 'token', 'priority')
if st[1] ~= 'queued' or (st[2] or '') ~= '' then return 0 end
redis.call('HSET', key, 'retry_at', '')
enqueue(t, id, K.lane(st[3]), true)
return 1
