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
    CANCEL_PENDING_SEGMENTS => "cancel_pending_segments.sql",
    CLAIM_JOB_STEPS => "claim_job_steps.sql",
    CLAIM_SEGMENTS => "claim_segments.sql",
    COMPLETE_JOBS => "complete_jobs.sql",
    COMPLETE_MEDIA => "complete_media.sql",
    COMPLETE_PLANS => "complete_plans.sql",
    COMPLETE_SEGMENTS => "complete_segments.sql",
    CREATE_JOB => "create_job.sql",
    CREDIT_USER => "credit_user.sql",
    DEBIT_USER => "debit_user.sql",
    DELETE_SEGMENTS => "delete_segments.sql",
    DELETE_SESSION => "delete_session.sql",
    END_SEGMENT => "end_segment.sql",
    END_STEP => "end_step.sql",
    FAIL_JOBS => "fail_jobs.sql",
    HEARTBEAT => "heartbeat.sql",
    IDEMPOTENCY_KEY => "idempotency_key.sql",
    INSERT_CREDIT_ENTRIES => "insert_credit_entries.sql",
    INSERT_JOBS => "insert_jobs.sql",
    INSERT_MEDIA => "insert_media.sql",
    INSERT_PROJECT => "insert_project.sql",
    INSERT_SESSION => "insert_session.sql",
    INSERT_USER => "insert_user.sql",
    JOB_BY_ID => "job_by_id.sql",
    JOB_OWNER => "job_owner.sql",
    JOB_PROGRESS => "job_progress.sql",
    JOB_STATUS => "job_status.sql",
    LIST_ALL_JOBS => "list_all_jobs.sql",
    LIST_JOBS => "list_jobs.sql",
    LIST_USER_JOBS => "list_user_jobs.sql",
    LOCK_JOBS => "lock_jobs.sql",
    MEDIA_BY_ID => "media_by_id.sql",
    MEDIA_OF_JOB_INPUT => "media_of_job_input.sql",
    NOTIFY_JOB_EVENTS => "notify_job_events.sql",
    NOTIFY_WORK => "notify_work.sql",
    PING => "ping.sql",
    PROJECT_OWNER => "project_owner.sql",
    PROJECTS_OF_USER => "projects_of_user.sql",
    PRUNE_SEGMENTS => "prune_segments.sql",
    QUEUE_STATS => "queue_stats.sql",
    RECENT_CREDITS => "recent_credits.sql",
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
    SEGMENT_COUNTS => "segment_counts.sql",
    SEGMENTS_OF_JOB => "segments_of_job.sql",
    SESSION_BY_TOKEN => "session_by_token.sql",
    SWEEP_FINISHED_JOBS => "sweep_finished_jobs.sql",
    SETTLE_CANCELLED_JOBS => "settle_cancelled_jobs.sql",
    SETTLE_TRANSACTION => "settle_transaction.sql",
    TABLE_ROWS => "table_rows.sql",
    UPSERT_TRANSACTION => "upsert_transaction.sql",
    USER_BALANCE => "user_balance.sql",
    USER_BY_EMAIL => "user_by_email.sql",
    USER_BY_ID => "user_by_id.sql",
    VACUUM_PROBLEMS => "vacuum_problems.sql",
}
