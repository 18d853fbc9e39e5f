-- Open economy batch b with some of the jobs waiting in the economy lane's collection: each
-- job still queued there starts running in the batch (its dispatch token is the batch id), and
-- the batch's record and its poller's schedule entry are written (due lease_ms from now, so a
-- builder that dies is resumed by the next poller). The collection's own entry is moved to
-- when what still waits is due. A job past its Cancel-After deadline is left to expire.
-- ARGV: prefix, batch_id, window_ms, max_jobs, lease_ms, then tenant, job_id pairs
-- Returns the number of jobs the batch took.
local b, window, max_jobs, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local taken = 0
for i = 6, #ARGV - 1, 2 do
  local t, id = ARGV[i], ARGV[i + 1]
  if redis.call('ZREM', K.econ_pending(), R.slot(t, id)) == 1 then
    local key = K.job(t, id)
    local job = hget_all(key)
    local deadline = tonumber(job['deadline'] or '')
    if job['status'] == 'queued' and job['lane'] == 'economy' and not (deadline and deadline <= now) then
      redis.call('HSET', key, 'status', 'running', 'token', b, 'ebatch', b, 'provider_batch', '',
                 'updated_at', int(now))
      if (job['started_at'] or '') == '' then redis.call('HSET', key, 'started_at', int(now)) end
      redis.call('HINCRBY', key, 'runs', 1)
      redis.call('HINCRBY', key, 'attempts', 1)
      redis.call('HINCRBY', key, 'econ_batches', 1)
      redis.call('ZREM', K.deadlines(), R.slot(t, id))
      redis.call('HSET', K.econ_batch_jobs(b), id, t)
      if (job['started_at'] or '') == '' then emit(t, id, job, 'running', now, 'economy batch') end
      taken = taken + 1
    end
  end
end
if taken > 0 then
  redis.call('HSET', K.econ_batch(b), 'id', b, 'state', 'open', 'jobs', int(taken), 'open', int(taken),
             'created_at', int(now), 'updated_at', int(now))
  redis.call('ZADD', K.econ_batches(), int(now), b)
  redis.call('ZADD', K.schedule(), int(now + lease), R.batch(b))
end
local left = redis.call('ZCARD', K.econ_pending())
if left == 0 then
  redis.call('ZREM', K.schedule(), R.collect())
else
  local oldest = redis.call('ZRANGE', K.econ_pending(), 0, 0, 'WITHSCORES')
  local due = tonumber(oldest[2]) + window
  if left >= max_jobs or due < now then due = now end
  redis.call('ZADD', K.schedule(), int(due), R.collect())
end
return taken
