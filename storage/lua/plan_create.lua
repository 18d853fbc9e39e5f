-- Create a plan: its name in the plan set and its record, together or not at all. Plans never
-- change once made (jobs point at the terms they were reserved under).
-- ARGV: prefix, name, then the record's field/value pairs.
-- Returns 1 if created, 0 if the name is taken (nothing written).
local name = ARGV[2]
if redis.call('SADD', K.plans(), name) == 0 then return 0 end
redis.call('HSET', K.plan(name), unpack(ARGV, 3))
return 1
