-- Moves the due members of a stage's retry set back into its stream as new entries that
-- carry their count of attempts, each exactly once (the move is one step), and says when
-- the next member is due.
-- KEYS: the stage's stream, its retry set
-- A: limit (most members moved), keep (seconds the stream is kept after an entry, 0: for good)
-- Returns {members moved, milliseconds until the next is due (-1: none waits)}
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, A.limit)
for _, member in ipairs(due) do
  local job_id, run, attempts = string.match(member, '^(%S+) (%d+) (%d+)$')
  if job_id then
    redis.call('XADD', KEYS[1], '*', 'job_id', job_id, 'run', run, 'attempts', attempts)
    keep_stream(KEYS[1], A.keep)
  end
  redis.call('ZREM', KEYS[2], member)
end
local next_due = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #next_due == 0 then return {#due, -1} end
return {#due, math.max(0, math.ceil((tonumber(next_due[2]) - now) * 1000))}
