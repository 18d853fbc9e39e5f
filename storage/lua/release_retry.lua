-- A scheduled retry is due: move the job from the schedule to the head of its queue.
-- ARGV: prefix, member ('retry|tenant|job'). Returns 1 if moved.
local member = ARGV[2]
if redis.call('ZREM', P .. ':sched', member) == 0 then return 0 end
local _, _, t, id = string.find(member, '^retry|([^|]+)|(.+)$')
local key = jkey(t, id)
local st = redis.call('HMGET', key, 'status', 'token', 'priority')
if st[1] ~= 'queued' or (st[2] or '') ~= '' then return 0 end
redis.call('HSET', key, 'retry_at', '')
enqueue(t, id, st[3] == 'batch' and '1' or '0', true)
return 1
