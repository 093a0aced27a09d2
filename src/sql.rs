//! Every SQL statement Octavia runs, one per file in `sql/`, embedded at compile time.
//! A test prepares each of them against the migrated schema.

macro_rules! statements {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[doc = concat!("`sql/", $file, "`")]
            pub const $name: &str = include_str!(concat!("../sql/", $file));
        )*
        /// (file name, statement) of every file in `sql/`.
        pub const ALL: &[(&str, &str)] = &[$(($file, $name)),*];
    };
}

statements! {
    BENCH_PICKUP => "bench_pickup.sql",
    CANCEL_PENDING_SEGMENTS => "cancel_pending_segments.sql",
    CLAIM_JOB_STEPS => "claim_job_steps.sql",
    CLAIM_SEGMENTS => "claim_segments.sql",
    COMPLETE_JOBS => "complete_jobs.sql",
    COMPLETE_PLANS => "complete_plans.sql",
    COMPLETE_SEGMENTS => "complete_segments.sql",
    COMPLETED_SEGMENTS => "completed_segments.sql",
    COUNT_UNFINISHED_JOBS => "count_unfinished_jobs.sql",
    CREDIT_USER => "credit_user.sql",
    DEBIT_USER => "debit_user.sql",
    END_SEGMENT => "end_segment.sql",
    END_STEP => "end_step.sql",
    EXTRA_ATTEMPTS => "extra_attempts.sql",
    FAIL_JOBS => "fail_jobs.sql",
    HEARTBEAT => "heartbeat.sql",
    INSERT_CREDIT_ENTRIES => "insert_credit_entries.sql",
    INSERT_JOBS => "insert_jobs.sql",
    INSERT_MEDIA => "insert_media.sql",
    INSERT_USER => "insert_user.sql",
    JOB_BY_ID => "job_by_id.sql",
    JOB_STATUS => "job_status.sql",
    LEASES_OF_WORKER => "leases_of_worker.sql",
    LEDGER_PROBLEMS => "ledger_problems.sql",
    LIST_JOBS => "list_jobs.sql",
    LOCK_JOBS => "lock_jobs.sql",
    MEDIA_OF_JOB_INPUT => "media_of_job_input.sql",
    NOTIFY_WORK => "notify_work.sql",
    QUEUE_STATS => "queue_stats.sql",
    REFUND_JOBS => "refund_jobs.sql",
    RELEASE_SEGMENTS => "release_segments.sql",
    RELEASE_STEPS => "release_steps.sql",
    REQUEST_CANCEL => "request_cancel.sql",
    RESCUE_SEGMENTS => "rescue_segments.sql",
    RESCUE_STEPS => "rescue_steps.sql",
    RESET_SEGMENTS => "reset_segments.sql",
    RETRY_JOB => "retry_job.sql",
    RETRY_SEGMENT => "retry_segment.sql",
    RETRY_STEP => "retry_step.sql",
    SEGMENTS_OF_JOB => "segments_of_job.sql",
    SETTLE_CANCELLED_JOBS => "settle_cancelled_jobs.sql",
    TABLE_ROWS => "table_rows.sql",
    USER_BALANCE => "user_balance.sql",
    USER_BY_EMAIL => "user_by_email.sql",
}
