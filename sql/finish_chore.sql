-- Records what a pass of storage chore $1 found and did ($2).
UPDATE storage_chores SET last_finished_at = now(), last_report = $2 WHERE name = $1
