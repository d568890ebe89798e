-- KEYS: a stage's stream; A: group (its consumer group), cap (count no further; 0: all)
return waiting(KEYS[1], A.group, A.cap)
