"""Profiles of the overhead and submit benchmarks, taken by hand for issue 15 and quoted in
BENCHMARKS.md under their sections (the benchmark run itself does not profile: a sampler costs
CPU of its own)."""

WORKER = """
Where the worker's CPU goes, profiled by hand on this machine for issue 15 (2026-11-26, not by this run):
`py-spy record --gil` at 200-250 Hz on the worker of this benchmark's busy case (events on), samples
grouped by where the thread was. "Before" is the worker as issue 15 found it after its first round
(a Celery message per edit; 3 batches of 200 jobs), "after" the worker as it is now (one batch of
600 jobs, 980 samples). The S3 and provider rows are what the floor does too. Shares move by a
point or two between runs (the machine is shared).

| where (share of samples holding the GIL) | before | after |
|---|---|---|
| S3 put of the output (floor too) | 18.5% | 25.2% |
| S3 get of the source (floor too) | 12.0% | 27.7% |
| provider call, JSON and base64 decode (floor too) | 16.8% | 15.5% |
| dispatcher: publishing admitted jobs (send_task) | 6.7% | gone |
| Celery: receiving a message (BRPOP, task strategy) | 4.1% | gone |
| Celery: trace, thread pool, event loop | 7.7% | 4.0% (webhook and housekeeping queues only) |
| task events | 5.6% | 1.4% (buffered, one message per flush) |
| dispatcher: admit.lua | 2.7% | 0.1% (it only fills threads that fall idle) |
| start.lua, finish.lua, observe.lua | 4.2% | claim (start.lua, which now also notes the call sent) 7.2%; settle with the next job's admission (finish.lua + admit.lua, one round trip) 7.2% |
| call.lua (the sent and answered marks) | 6.7% | 5.5% (the answered mark and observe.lua in one round trip) |
| dispatcher: wake-ups and schedule polls | 2.6% | 0.2% |
| editq's own job code (plan, pricing, logs) and the output check | 3.3% | 5.7% |

What changed: an edit no longer crosses the broker. The dispatcher admits a job only while its
worker has a free edit thread and hands it over in-process (`worker/runner.py`); an edit thread
whose job succeeded admits its own next job in the round trip that settles the last, so the
dispatcher thread's CPU per job fell from 0.55 to 0.08 ms (per-thread CPU from /proc). The
sources are loaded before the claim, and the claim notes the call sent: three Redis round trips
per job on a busy worker (claim; answered mark with the limiter's observation; settle with the
next admission; four when the dispatcher admits), against six scripts, a broker message in and
out and two event messages before. Task events are buffered and published by the dispatcher's
loop (at most twice a second, within about a second). Redis replies are parsed by hiredis (a job record's reply:
115 us of CPU instead of 277 us). What is left above the floor is mostly threads: the floor is one
loop, the worker runs six edit threads, and the floor itself costs 9.3 ms per job instead of 7.8-8.8 ms
when six threads run it at once on this machine (measured beside it, not by this benchmark).
Worker CPU per job in alternating runs (same harness, 3 batches of 200 jobs each, medians): 14.2
and 12.9 ms for the worker as issue 15 found it, 11.1 and 8.4 ms with broker-free dispatch and the
sources loaded ahead; hiredis then 10.2 and 9.5 ms against 10.9 and 9.9 ms without it. With events
off the ratio is no lower: the events now cost about 1% of the worker's CPU.
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
