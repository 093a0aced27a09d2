//! The demo's pieces against real servers, without running the whole demo (which takes a
//! cluster, three processes and a dub): its user set-up against a test database, and its
//! HTTP client against the API served in-process, so a change of the API's shapes that
//! would break `bin/demo` breaks a test.

use crate::api::{TestApi, config};
use crate::harness::TestDb;
use futures_util::StreamExt;
use octavia::pipeline::Language;
use octavia::pipeline::media::{SAMPLE_PAUSE_MS, SAMPLE_SENTENCES, generate_video};
use octavia_dev::demo::DemoError;
use octavia_dev::demo::children::Children;
use octavia_dev::demo::client::{ApiClient, Progress};
use octavia_dev::demo::progress;
use octavia_dev::demo::setup::ensure_user;
use serde_json::json;
use std::time::Duration;

const EMAIL: &str = "demo@example.com";
const PASSWORD: &str = "a-demo-password-of-some-length";

/// The user's balance and the sum of their ledger.
async fn balance(db: &TestDb, user: uuid::Uuid) -> (i64, i64) {
    crate::api::balance(db, user).await
}

#[tokio::test]
async fn the_demo_user_is_made_once_then_reused_and_topped_up() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    let made = ensure_user(&mut client, EMAIL, PASSWORD, 100)
        .await
        .unwrap();
    assert!(made.created);
    assert_eq!((made.balance, made.granted), (100, 100));
    let again = ensure_user(&mut client, EMAIL, PASSWORD, 100)
        .await
        .unwrap();
    assert_eq!(again.id, made.id);
    assert!(!again.created);
    assert_eq!(
        (again.balance, again.granted),
        (100, 0),
        "enough: nothing granted"
    );

    // A user whose earlier runs spent some of the credits is topped up, with a ledger row.
    let spent = "spent@example.com";
    let id = octavia::users::create(&client, spent, PASSWORD, "user", 70)
        .await
        .unwrap();
    let topped = ensure_user(&mut client, spent, PASSWORD, 100)
        .await
        .unwrap();
    assert_eq!((topped.id, topped.created), (id, false));
    assert_eq!((topped.balance, topped.granted), (100, 30));
    assert_eq!(balance(&db, id).await, (100, 100), "the ledger agrees");

    let e = ensure_user(&mut client, EMAIL, "another password", 100)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("password other than the demo's"), "{e}");
}

#[tokio::test]
async fn the_demo_client_uploads_and_queues_a_dub_through_the_api() {
    let db = TestDb::new().await;
    let (config, _store) = config(&db);
    let api = TestApi::start(config).await;
    let mut client = db.client().await;
    ensure_user(&mut client, EMAIL, PASSWORD, 100)
        .await
        .unwrap();

    let mut demo = ApiClient::new(&api.url).unwrap();
    assert!(demo.is_ready().await);
    match demo.sign_in(EMAIL, "wrong password").await {
        Err(DemoError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (401, "unauthorized"))
        }
        other => panic!("{other:?}"),
    }
    demo.sign_in(EMAIL, PASSWORD).await.unwrap();
    let project = demo.project("Octavia demo").await.unwrap();
    assert_eq!(
        demo.project("Octavia demo").await.unwrap(),
        project,
        "reused"
    );

    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("demo.mp4");
    let speech = generate_video(
        &SAMPLE_SENTENCES[..1],
        Language::English,
        SAMPLE_PAUSE_MS,
        &video,
    )
    .await
    .unwrap();
    let media = demo.upload(&video, "video", project).await.unwrap();
    assert_eq!(
        media.size_bytes,
        Some(std::fs::metadata(&video).unwrap().len() as i64)
    );
    let seconds = media.duration_seconds.unwrap();
    assert!(
        (seconds - speech.duration_ms as f64 / 1000.0).abs() < 0.2,
        "{seconds}"
    );

    let options = json!({ "source_language": "en", "target_language": "es" });
    let job = demo
        .create_job("video_translation", media.id, project, options)
        .await
        .unwrap();
    assert_eq!((job.status.as_str(), job.cost_credits), ("queued", 10));
    assert_eq!(demo.unfinished_jobs().await.unwrap(), vec![job.id]);

    let mut events = demo.events(job.id).await.unwrap();
    let first: Progress = events.next().await.unwrap().unwrap();
    assert_eq!(first.status, "queued");
    drop(events);

    // No worker runs here: cancelling ends the queued job at once, and following it
    // stops at that terminal status.
    demo.cancel(job.id).await.unwrap();
    let mut seen = Vec::new();
    let last = progress::follow(
        &demo,
        job.id,
        &mut Children::default(),
        Duration::from_secs(30),
        |p| seen.push(p.clone()),
    )
    .await
    .unwrap();
    assert_eq!(last.status, "cancelled");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(demo.unfinished_jobs().await.unwrap().is_empty());

    demo.sign_out().await.unwrap();
    assert!(matches!(
        demo.job(job.id).await,
        Err(DemoError::Api { status: 401, .. })
    ));
    api.stop().await;
}
