-- Fails the job with a readable reason and acknowledges the entry; with a dead-letter
-- stream, first copies the entry there (copy, then ack: never the other way round).
-- KEYS: job hash, its events channel, this stage's stream, dead-letter stream, jobs index,
--       the status indexes
-- A: group, consumer, entry_id, stage, run, now, reason, dead_letter, deliveries, job_id,
--    status_keys, events (to queue for observers, see _queue.lua), whose streams follow
--    the status indexes
if not owns(KEYS[3], A.group, A.consumer, A.entry_id) then return 'lost' end
if A.dead_letter then
  redis.call('XADD', KEYS[4], '*', 'job_id', A.job_id, 'run', A.run, 'stage', A.stage,
    'entry_id', A.entry_id, 'deliveries', A.deliveries, 'reason', A.reason,
    'failed_at', A.now)
end
local state = job_state(A.run)
if state == 'ok' then
  local s = A.stage
  set_status(KEYS[5], STATUS.failed)
  redis.call('HSET', KEYS[1], 'error', A.reason,
    'stage_detail', s .. ' failed', s .. '.status', STAGE.failed, s .. '.finished_at', A.now,
    'updated_at', A.now)
  queue_events(A.run, A.now, A.reason)
  redis.call('PUBLISH', KEYS[2], 'failed')
end
redis.call('XACK', KEYS[3], A.group, A.entry_id)
return state
