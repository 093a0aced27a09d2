//! Fair share between users: shares by weight whatever their number of jobs, the whole
//! fleet for a user alone, and a per-user ceiling on leased segments that holds across
//! worker processes.

use super::*;
use std::cell::Cell;
use std::collections::BTreeMap;

/// `jobs` noop jobs of `user`, each of `segments` segments taking `ms` each.
async fn submit(db: &TestDb, user: Uuid, jobs: usize, segments: u32, ms: u32) -> Vec<Uuid> {
    let jobs = (0..jobs)
        .map(|_| {
            let mut j = job("noop", json!({ "segments": segments, "segment_ms": ms }));
            j.user_id = Some(user);
            j
        })
        .collect();
    enqueue_jobs(db, jobs).await
}

/// Completed segments per user.
async fn completed(db: &TestDb) -> BTreeMap<Uuid, i64> {
    let client = db.client().await;
    client
        .query(
            "SELECT owner_id, count(*) FROM job_segments WHERE status = 'completed'
             GROUP BY owner_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn set_user(db: &TestDb, user: Uuid, weight: i32, ceiling: Option<i32>) {
    db.client()
        .await
        .execute(
            "UPDATE users SET share_weight = $2, max_running_segments = $3 WHERE id = $1",
            &[&user, &weight, &ceiling],
        )
        .await
        .unwrap();
}

/// Runs one worker of 8 slots over the work of `many` (50 jobs) and `one` (1 job), both
/// with more than the measurement takes, and returns the share of the segments each
/// completed while both had work ready: counted from the moment both have started until
/// 800 more are done.
async fn shares_of(db: &TestDb, many: Uuid, one: Uuid) -> (f64, f64) {
    submit(db, many, 50, 60, 10).await;
    submit(db, one, 1, 3000, 10).await;
    let mut config = fast_config(db);
    config.worker.concurrency = 8;
    let worker = TestWorker::start(config, registry(), "fair");
    let before = wait_for(30, "both users' segments to run", || async {
        let done = completed(db).await;
        let started = |u: &Uuid| done.get(u).copied().unwrap_or(0) >= 10;
        (started(&many) && started(&one)).then_some(done)
    })
    .await;
    let total = |d: &BTreeMap<Uuid, i64>| d[&many] + d[&one];
    let after = wait_for(60, "800 more segments", || async {
        let done = completed(db).await;
        (total(&done) >= total(&before) + 800).then_some(done)
    })
    .await;
    worker.stop().await;
    let (a, b) = (
        (after[&many] - before[&many]) as f64,
        (after[&one] - before[&one]) as f64,
    );
    // Neither ran out of work: the measurement is of shares, not of leftovers.
    assert!(after[&many] < 3000 && after[&one] < 3000, "{after:?}");
    eprintln!("50 jobs: {a} segments, 1 job: {b} segments");
    (a / (a + b), b / (a + b))
}

#[tokio::test]
async fn users_share_equally_however_many_jobs_each_has() {
    let db = TestDb::new().await;
    let (many, one) = (user(&db, 0).await, user(&db, 0).await);
    let (a, b) = shares_of(&db, many, one).await;
    // Each within 20 % of half: fair between jobs, the one with 50 jobs would take 98 %.
    assert!((0.4..=0.6).contains(&a), "50 jobs: {a:.3}, 1 job: {b:.3}");
    assert!((0.4..=0.6).contains(&b), "50 jobs: {a:.3}, 1 job: {b:.3}");
}

#[tokio::test]
async fn weights_split_the_fleet_in_their_proportion() {
    let db = TestDb::new().await;
    let (many, one) = (user(&db, 0).await, user(&db, 0).await);
    // The user of one job weighs 3, the one of 50 jobs 1.
    set_user(&db, one, 3, None).await;
    let (a, b) = shares_of(&db, many, one).await;
    assert!(
        (0.2..=0.3).contains(&a),
        "weight 1: {a:.3}, weight 3: {b:.3}"
    );
    assert!(
        (0.6..=0.9).contains(&b),
        "weight 1: {a:.3}, weight 3: {b:.3}"
    );
}

#[tokio::test]
async fn a_user_alone_gets_every_slot_of_the_fleet() {
    let db = TestDb::new().await;
    let alone = user(&db, 0).await;
    // A light weight changes nothing when nobody else has work.
    set_user(&db, alone, 1, None).await;
    let other = user(&db, 0).await;
    set_user(&db, other, 100, None).await;
    let ids = submit(&db, alone, 1, 400, 20).await;
    let mut config = fast_config(&db);
    config.worker.concurrency = 8;
    let worker = TestWorker::start(config, registry(), "alone");
    let client = db.client().await;
    wait_for(30, "8 segments of the user running at once", || async {
        let running: i64 = client
            .query_one(
                "SELECT count(*) FROM job_segments WHERE owner_id = $1 AND status = 'running'",
                &[&alone],
            )
            .await
            .unwrap()
            .get(0);
        (running >= 8).then_some(())
    })
    .await;
    worker.stop().await;
    assert_eq!(status(&db, ids[0]).await, "running");
}

/// Records, at the commit of every transaction that leased a segment of a user with a
/// ceiling, whether the user's leased segments then exceed it: the check sees what every
/// earlier committed transaction leased, and what this one still holds at its end.
const CEILING_WATCH: &str = "
CREATE TABLE ceiling_violations (owner_id uuid, leased bigint, ceiling int);
CREATE FUNCTION watch_ceiling() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  cap int;
  leased bigint;
BEGIN
  SELECT max_running_segments INTO cap FROM users WHERE id = NEW.owner_id;
  IF cap IS NOT NULL THEN
    SELECT count(*) INTO leased FROM job_segments
    WHERE owner_id = NEW.owner_id AND status = 'running';
    IF leased > cap THEN
      INSERT INTO ceiling_violations VALUES (NEW.owner_id, leased, cap);
    END IF;
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER watch_ceiling AFTER INSERT OR UPDATE ON job_segments
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'running')
  EXECUTE FUNCTION watch_ceiling();
";

#[tokio::test]
async fn a_users_ceiling_holds_across_three_worker_processes() {
    let db = TestDb::new().await;
    let client = db.client().await;
    client.batch_execute(CEILING_WATCH).await.unwrap();
    let (capped, free) = (user(&db, 0).await, user(&db, 0).await);
    set_user(&db, capped, 1, Some(3)).await;
    let mut ids = submit(&db, capped, 6, 25, 30).await;
    ids.extend(submit(&db, free, 2, 100, 30).await);
    let workers: Vec<_> = (0..3)
        .map(|i| {
            spawn_worker_process(
                &db,
                &format!("ceiling-{i}"),
                &["--concurrency", "4", "--job-types", "noop"],
            )
        })
        .collect();
    // Sampled as well, while the jobs run: the most leased at once, and how many of the
    // 12 slots the other user had meanwhile.
    let (most, others) = (Cell::new(0i64), Cell::new(0i64));
    wait_for(120, "every job to end", || async {
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE owner_id = $1), count(*) FILTER (WHERE owner_id = $2)
                 FROM job_segments WHERE status = 'running'",
                &[&capped, &free],
            )
            .await
            .unwrap();
        most.set(most.get().max(row.get(0)));
        others.set(others.get().max(row.get(1)));
        let ended: i64 = client
            .query_one(
                "SELECT count(*) FROM jobs WHERE id = ANY($1) AND status = 'completed'",
                &[&ids],
            )
            .await
            .unwrap()
            .get(0);
        (ended == ids.len() as i64).then_some(())
    })
    .await;
    drop(workers);
    let violations: Vec<(i64, i32)> = client
        .query("SELECT leased, ceiling FROM ceiling_violations", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(violations.is_empty(), "over the ceiling: {violations:?}");
    let (most, others) = (most.get(), others.get());
    assert!(most <= 3, "{most} leased at once");
    assert_eq!(most, 3, "the ceiling is used, not just respected");
    assert!(
        others > 3,
        "the other user got the slots the ceiling left: {others}"
    );

    // The watch does see a lease over the ceiling.
    client
        .execute(
            "UPDATE job_segments SET status = 'running', locked_by = 'test',
                    lease_expires_at = now() + interval '1 minute'
             WHERE id IN (SELECT id FROM job_segments WHERE owner_id = $1 LIMIT 4)",
            &[&capped],
        )
        .await
        .unwrap();
    let seen: i64 = client
        .query_one("SELECT count(*) FROM ceiling_violations", &[])
        .await
        .unwrap()
        .get(0);
    assert!(seen > 0, "the watch saw nothing");
}

#[tokio::test]
async fn the_cli_sets_a_users_or_a_roles_share_and_refuses_bad_values() {
    let db = TestDb::new().await;
    let client = db.client().await;
    for (email, role) in [
        ("a@example.com", "user"),
        ("b@example.com", "team"),
        ("c@example.com", "team"),
    ] {
        octavia::users::create(&client, email, "password-1", role, 0)
            .await
            .unwrap();
    }
    let out = octavia_cli(
        &db,
        &[
            "users",
            "share",
            "A@example.com",
            "--weight",
            "3",
            "--max-running",
            "5",
        ],
    );
    assert_eq!(out, "a@example.com: weight 3, at most 5 segments running\n");
    let out = octavia_cli(&db, &["users", "share", "--role", "team", "--weight", "2"]);
    assert!(out.contains("b@example.com: weight 2, no ceiling"), "{out}");
    assert!(out.contains("c@example.com: weight 2, no ceiling"), "{out}");
    // 0 lifts the ceiling; the weight stays.
    let out = octavia_cli(
        &db,
        &["users", "share", "a@example.com", "--max-running", "0"],
    );
    assert_eq!(out, "a@example.com: weight 3, no ceiling\n");
    let rows = client
        .query(
            "SELECT email, share_weight, max_running_segments FROM users ORDER BY email",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, i32, Option<i32>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a@example.com".into(), 3, None),
            ("b@example.com".into(), 2, None),
            ("c@example.com".into(), 2, None),
        ]
    );

    let cli = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_octavia"));
        c.arg("--no-migrate").env("DATABASE_URL", &db.url);
        c
    };
    for (args, says) in [
        (
            vec!["a@example.com", "--weight", "0"],
            "weight must be between 1 and 10000",
        ),
        (
            vec!["a@example.com", "--max-running=-1"],
            "must be positive",
        ),
        (
            vec!["nobody@example.com", "--weight", "2"],
            "no user with email",
        ),
        (
            vec!["--role", "boss", "--weight", "2"],
            "`boss` is not a role",
        ),
        (vec!["a@example.com"], "nothing to set"),
    ] {
        let err = refused(cli().args(["users", "share"]).args(&args));
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
