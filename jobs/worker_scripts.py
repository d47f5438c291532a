"""The two Lua scripts of LeanWorker's per-job protocol (jobs/worker_base.py): START takes a job
and starts it, FINISH ends a row's job; each one round trip, atomic in Redis.

They name the job's key from its id rather than in KEYS: Swapline runs one Redis, not a cluster.
"""
from __future__ import annotations

# KEYS: queue, its intermediate queue, started registry, worker. ARGV: the job's id ("": pop the
# queue's first), execution id, lease expiry (Unix time), now (RQ's format), worker name, the job
# key prefix. Nil: the queue is empty; {id}: that job's hash is gone (RQ skips it too); else
# {id, the job's hash as HGETALL reads it}.
START = """
local id = ARGV[1]
if id == '' then
  id = redis.call('LPOP', KEYS[1])
  if not id then return false end
else
  redis.call('LREM', KEYS[2], 1, id)
end
local key = ARGV[6] .. id
if redis.call('EXISTS', key) == 0 then return {id} end
redis.call('HSET', key, 'status', 'started', 'started_at', ARGV[4], 'last_heartbeat', ARGV[4],
           'worker_name', ARGV[5])
redis.call('PERSIST', key)
redis.call('ZADD', KEYS[3], ARGV[3], id .. ':' .. ARGV[2])
redis.call('HSET', KEYS[4], 'state', 'busy', 'current_job', id)
return {id, redis.call('HGETALL', key)}
"""
# KEYS: the job, started registry, worker, queue. ARGV: ended at (RQ's format), the result TTL,
# the lease entry, working seconds. Returns the queue's length. The job is marked finished only
# when its lease entry was still there: gone, the worker stalled past its lease and
# requeue_abandoned claimed it (the job is queued again or runs elsewhere), or Redis was wiped;
# either way the job is no longer this run's to finish.
FINISH = """
if redis.call('ZREM', KEYS[2], ARGV[3]) == 1 then
  redis.call('HSET', KEYS[1], 'status', 'finished', 'ended_at', ARGV[1],
             'last_heartbeat', ARGV[1])
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
  elseif ttl == 0 then
    redis.call('DEL', KEYS[1])
  end
end
redis.call('HSET', KEYS[3], 'state', 'idle', 'current_job', '')
redis.call('HINCRBY', KEYS[3], 'successful_job_count', 1)
redis.call('HINCRBYFLOAT', KEYS[3], 'total_working_time', ARGV[4])
return redis.call('LLEN', KEYS[4])
"""
