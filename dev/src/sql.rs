//! The statements of the dev tooling (the demo, the benchmarks, the chaos scenarios),
//! one per file in `dev/sql/`, embedded at compile time: what they read to measure and
//! check the product, which the product itself never runs. A test prepares each of them
//! against the migrated schema, as it does the product's (`octavia::sql`).

macro_rules! statements {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[doc = concat!("`dev/sql/", $file, "`")]
            pub const $name: &str = include_str!(concat!("../sql/", $file));
        )*
        /// (file name, statement) of every file in `dev/sql/`.
        pub const ALL: &[(&str, &str)] = &[$(($file, $name)),*];
    };
}

statements! {
    BENCH_CLAIM_BY_JOB => "bench_claim_by_job.sql",
    BENCH_COMPLETED_SEGMENTS => "bench_completed_segments.sql",
    BENCH_COMPLETE_CLAIMED => "bench_complete_claimed.sql",
    BENCH_DB_NOW => "bench_db_now.sql",
    BENCH_FILL_JOBS => "bench_fill_jobs.sql",
    BENCH_FILL_SEGMENTS => "bench_fill_segments.sql",
    BENCH_FILL_USERS => "bench_fill_users.sql",
    BENCH_FILL_USER_JOBS => "bench_fill_user_jobs.sql",
    BENCH_LAST_FINISH => "bench_last_finish.sql",
    BENCH_PHASES => "bench_phases.sql",
    BENCH_PICKUP => "bench_pickup.sql",
    BENCH_PLANNED_JOB => "bench_planned_job.sql",
    BENCH_PLANNED_SEGMENTS => "bench_planned_segments.sql",
    BENCH_TABLE_SIZES => "bench_table_sizes.sql",
    BENCH_USERS_SERVED => "bench_users_served.sql",
    COMPLETED_SEGMENTS => "completed_segments.sql",
    COUNT_UNFINISHED_JOBS => "count_unfinished_jobs.sql",
    COUNT_USER_JOBS => "count_user_jobs.sql",
    DATABASE_EXISTS => "database_exists.sql",
    DB_CLOCK => "db_clock.sql",
    EXTRA_ATTEMPTS => "extra_attempts.sql",
    FIRST_COMPLETION_AFTER => "first_completion_after.sql",
    JOB_OUTCOMES => "job_outcomes.sql",
    LEASES_OF_WORKER => "leases_of_worker.sql",
    LEDGER_BY_USER => "ledger_by_user.sql",
    LEDGER_PROBLEMS => "ledger_problems.sql",
    LISTENERS => "listeners.sql",
    RERUN_SEGMENTS => "rerun_segments.sql",
    RUNNING_SEGMENTS => "running_segments.sql",
    TERMINATE_BACKENDS => "terminate_backends.sql",
    WORK_BACK_AFTER => "work_back_after.sql",
}
