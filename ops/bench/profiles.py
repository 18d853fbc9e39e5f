"""Profiles of the overhead and submit benchmarks, taken by hand for issue 15 and quoted in
BENCHMARKS.md under their sections (the benchmark run itself does not profile: a sampler costs
CPU of its own)."""

WORKER = """
Where the worker's CPU goes, profiled by hand on this machine for issue 15 (2026-11-26, not by this run):
`py-spy record --gil` at 200 Hz on the worker of this benchmark's busy case (3 batches of 200 jobs,
events on), samples grouped by where the thread was. The S3 and provider rows are what the floor
does too. Shares move by a point or two between runs (the machine is shared).

| where (share of samples holding the GIL) | before | after |
|---|---|---|
| S3 put of the output (floor too) | 17.9% | 18.5% |
| provider call, JSON and base64 decode (floor too) | 15.5% | 16.8% |
| S3 get of the source (floor too) | 12.3% | 12.0% |
| Celery: task events published | 7.8% | 5.6% |
| Celery: receiving a message (BRPOP, unacked hash, task strategy) | 6.2% | 4.1% |
| dispatcher: publishing admitted jobs (send_task) | 5.9% | 6.7% |
| call.lua (the sent and answered marks) | 5.0% | 6.7% |
| Celery event loop, the rest (polling, acks) | 4.0% | 1.9% |
| Celery trace and thread pool | 3.3% | 5.8% |
| dispatcher: admit.lua | 3.2% | 2.7% |
| editq's own job code (plan, pricing, logs) | 3.2% | 3.3% |
| dispatcher: wake-ups and schedule polls | 2.8% | 2.6% |
| finish.lua, start.lua, observe.lua | 5.4% | 4.2% |
| status read before storing outputs | 0.4% | gone |

Top functions by own samples before: `b64decode` 5.6%, `email.feedparser` 2.8% (HTTP headers),
redis-py `get_connection` 2.5% and `send_packed_command` 2.4%, redis-py `CaseInsensitiveDict.__setitem__`
1.9% (a new redis-py client, with its table of response callbacks, for every message kombu published);
after: `b64decode` 3.5%, the JSON decoder, redis-py's socket reads and writes; the client tables are gone.
What changed (issue 15): one redis-py client per kombu channel (`editq/worker/broker.py`), no
`task-started` event for edits (Flower still lists each task from `task-received` and
`task-succeeded`), no ack emulation on the broker (kombu wrote each delivered message to an unacked
hash and deleted it again at the ack: two round trips per message, for a redelivery editq never
uses), the answered-call mark says whether to store outputs (one read less), the dispatcher looks at
the schedule at most every 50 ms. Redis commands per job (Redis' commandstats, commands inside Lua
scripts included): PUBLISH 2.6 -> 1.8, MULTI/EXEC 2 -> 0, HGET 7.9 -> 6.9, ZRANGE 2.7 -> 1.7, ZADD, ZREM
and HDEL one less each. Worker CPU per job in alternating runs of the commit before and after (same
harness, 2 batches of 200 jobs each): 11.4, 12.0, 12.0, 12.4 ms before; 10.8, 10.9, 10.7, 11.5 ms after
(-8%). What is left above the floor is mostly Celery itself (a message in and out per job, its
events, its trace) and editq's five Redis scripts per job; 1.2x would take a worker that runs
admitted jobs without a broker round trip.
"""

API = """
Where the API's CPU goes, profiled by hand for issue 15 (2026-11-26, not by this run): the API
process's CPU per accepted submission in the same harness (4 client threads), and `py-spy record
--gil` on it. Before: 21.5 ms per submission (the floor: 5.2 ms); the JPEG check decoded every
pixel (Pillow's `load`, which releases the GIL, so the sampler misses most of it: a full decode of
this 1400x1400 JPEG takes 10-27 ms here); Starlette's `BaseHTTPMiddleware` (the request-id and
metrics middleware) ran each chunk of the 1 MB body through a task group of its own (4.3% of
samples, plus the receive path under it); S3 put 32% of samples, the multipart reader 8.8%.
After: 9.0-10.8 ms per submission (the floor: 4.7 ms). A plain upright JPEG is no longer decoded:
Pillow reads its header and editq walks its segments to the end-of-image marker (a cut file is
`image_truncated`, a broken segment `image_corrupt`; a decode refused no more, as libjpeg only warns
about damaged coded data), about 1 ms instead of 10-27; the middleware is plain ASGI. Top entries
after: S3 put 21.7% of samples, the image check 12.5% (SHA-256 and the segment walk), `prepare` 3.6%,
the submit script 3.1%, the multipart reader 2.8%.
"""
