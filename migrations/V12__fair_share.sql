-- Fair share between users (see sql/claim_segments.sql and docs/queue.md "Fair share").
--
-- share_weight: a user's share of each claim relative to the other users with ready work
-- (2 gets twice what 1 gets). max_running_segments: how many of the user's segments may be
-- leased at once across the fleet; NULL for no ceiling.
ALTER TABLE users
  ADD COLUMN share_weight int NOT NULL DEFAULT 1
    CONSTRAINT users_share_weight_check CHECK (share_weight BETWEEN 1 AND 10000),
  ADD COLUMN max_running_segments int
    CONSTRAINT users_max_running_segments_check CHECK (max_running_segments > 0);

-- The user whose job a segment belongs to, copied from jobs.user_id when the plan inserts
-- the segment (the nil UUID for a job without a user), so the claim groups pending
-- segments by user from the index alone. Not a foreign key: a deleted user's jobs keep
-- running (jobs.user_id becomes NULL) and their segments keep the id they were planned
-- with, which then has the default weight and no ceiling.
ALTER TABLE job_segments
  ADD COLUMN owner_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';

-- Segments that are still to run take their job's user; finished ones keep the nil UUID,
-- which nothing reads.
UPDATE job_segments s
SET owner_id = j.user_id
FROM jobs j
WHERE j.id = s.job_id AND j.user_id IS NOT NULL AND s.status IN ('pending', 'running');

-- The claim walks users, then each user's jobs, then each job's segments, all in this one
-- index (it replaces V2's (priority, job_id, segment_index)).
DROP INDEX job_segments_claim_idx;
CREATE INDEX job_segments_claim_idx ON job_segments (priority, owner_id, job_id, segment_index)
  WHERE status = 'pending';

-- A user's leased segments, counted against its max_running_segments, are found through
-- job_segments_lease_idx (every leased segment: about the fleet's slots), by the claims of
-- capped users only: an index of their own would cost every claim of every user an entry.
