-- The database's clock at this very moment (not the transaction's start, as now() is):
-- fault scenarios time recoveries on the clock that stamps finished_at.
SELECT clock_timestamp()
