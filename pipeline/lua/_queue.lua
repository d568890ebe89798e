-- Shared prelude of the scripts (prepended to each by pipeline/store.py): the queue.

-- A replay lane's stream is trimmed only while the lane's workers run, so it expires
-- instead, a job's lifetime after its last entry: by then every job it names has expired.
local function keep_stream(stream, seconds)
  if tonumber(seconds) ~= 0 then redis.call('EXPIRE', stream, seconds) end
end

-- Entries of a stage's stream that no consumer of its group has been given yet. When the
-- server cannot tell the group's lag itself, they are counted, no further than cap (0: all).
local function waiting(stream, group, cap)
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if groups['err'] then return 0 end  -- no stream yet: nothing waits
  for _, info in ipairs(groups) do
    local fields = {}
    for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
    if fields['name'] == group then
      if fields['lag'] then return tonumber(fields['lag']) end
      -- Entries were trimmed or deleted: count what follows the last delivered entry.
      local after = '(' .. fields['last-delivered-id']
      if cap > 0 then return #redis.call('XRANGE', stream, after, '+', 'COUNT', cap) end
      return #redis.call('XRANGE', stream, after, '+')
    end
  end
  -- No group yet (no worker ever started): everything in the stream waits.
  return redis.call('XLEN', stream)
end

-- Queues A.events, each on its observer's stream ({key = the stream's position in KEYS,
-- name = the observer, event, status}), carrying what the observer reports (error: why the
-- job failed; the job's options), and starts the observer's record of the job afresh for
-- that event.
local function queue_events(run, now, error)
  for _, e in ipairs(A.events or {}) do
    local entry = {'job_id', A.job_id, 'run', run, 'event', e.event, 'status', e.status,
      'at', now, 'options', redis.call('HGET', KEYS[1], 'options')}
    if error then
      entry[#entry + 1] = 'error'
      entry[#entry + 1] = error
    end
    redis.call('XADD', KEYS[e.key], '*', unpack(entry))
    local n = e.name .. '.'
    redis.call('HDEL', KEYS[1], n .. 'attempts', n .. 'error', n .. 'next_attempt_at',
      n .. 'finished_at')
    redis.call('HSET', KEYS[1], n .. 'status', STAGE.queued, n .. 'event', e.event,
      n .. 'run', run)
  end
end
