-- Records the stage as done, hands the job to the next stage and acknowledges the entry,
-- all or nothing. A worker that no longer owns the entry changes nothing.
-- KEYS: job hash, its events channel, this stage's stream, next stage's stream, jobs
--       index, the status indexes
-- A: group, consumer, entry_id, stage, run, now, job_id, progress (the job's, overall),
--    status_keys; and either next (the next stage), next_status (the job's status while
--    it runs) and keep (seconds the next stream is kept after this entry, 0: for good),
--    or, after the last stage, result_path; events (to queue for observers, see
--    _queue.lua), whose streams follow the status indexes
if not owns(KEYS[3], A.group, A.consumer, A.entry_id) then return 'lost' end
local state = job_state(A.run)
local s = A.stage
if state == 'ok' and redis.call('HGET', KEYS[1], s .. '.status') == STAGE.done then
  state = 'done'
end
if state == 'ok' then
  redis.call('HSET', KEYS[1], s .. '.status', STAGE.done, s .. '.progress', '100',
    s .. '.finished_at', A.now, 'updated_at', A.now)
  if A.next then
    set_status(KEYS[5], A.next_status)
    redis.call('HSET', KEYS[1], A.next .. '.status', STAGE.queued,
      'stage_detail', 'queued for ' .. A.next)
    raise_field('progress', A.progress)
    redis.call('XADD', KEYS[4], '*', 'job_id', A.job_id, 'run', A.run)
    keep_stream(KEYS[4], A.keep)
  else
    set_status(KEYS[5], STATUS.completed)
    redis.call('HSET', KEYS[1], 'progress', '100', 'stage_detail', 'completed',
      'result_path', A.result_path)
  end
  queue_events(A.run, A.now, nil)
  redis.call('PUBLISH', KEYS[2], 'finished')
end
redis.call('XACK', KEYS[3], A.group, A.entry_id)
return state
