//! `GET /api/jobs/{id}/transcript`: the phrases a job's segments recorded, with their
//! times, text and translation, for the job's owner and admins; 404 for anyone else.

use super::storage::{complete, start_upload};
use super::*;

const SRT: &str = "1\n00:00:01,000 --> 00:00:03,000\nThe weather is very good today.\n\n\
                   2\n00:00:04,000 --> 00:00:06,500\nI would like a cup of coffee.\n";

#[tokio::test]
async fn a_job_s_transcript_lists_its_phrases_for_its_owner_and_admins_only() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config.clone()).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let (media, url) = start_upload(&api, &token, "talk.srt", "subtitle", SRT.len()).await;
    let r = api.http.put(&url).body(SRT).send().await.unwrap();
    assert!(r.status().is_success());
    let (status, _) = complete(&api, &token, &media).await;
    assert_eq!(status, StatusCode::OK);
    let (status, job) = parts(translate_subtitles(&api, &token, &media).await).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let path = format!("/api/jobs/{id}/transcript");

    // Before any segment ran: nothing yet, and not complete.
    let (status, early) = parts(api.get(&path, &token).await).await;
    assert_eq!(status, StatusCode::OK, "{early}");
    assert_eq!(
        (
            early["complete"].as_bool(),
            early["lines"].as_array().map(Vec::len)
        ),
        (Some(false), Some(0))
    );

    run_jobs(&db, &config, &[id.parse().unwrap()]).await;

    let (status, t) = parts(api.get(&path, &token).await).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["status"], "completed");
    assert_eq!(t["complete"], true);
    let lines = t["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{t}");
    assert_eq!(lines[0]["start_ms"], 1000);
    assert_eq!(lines[0]["end_ms"], 3000);
    assert_eq!(lines[0]["text"], "The weather is very good today.");
    let spanish = lines[1]["translation"].as_str().unwrap().to_lowercase();
    assert!(spanish.contains("café"), "{t}");

    // Once the segment rows are pruned, the output's transcript file answers the same.
    let job_id: Uuid = id.parse().unwrap();
    let client = db.client().await;
    client
        .execute("DELETE FROM job_segments WHERE job_id = $1", &[&job_id])
        .await
        .unwrap();
    let (status, pruned) = parts(api.get(&path, &token).await).await;
    assert_eq!(status, StatusCode::OK, "{pruned}");
    assert_eq!(pruned["lines"], t["lines"]);

    // Someone else's job does not exist for them; an admin reads it.
    let (_, stranger) = signed_in(&api, &db, "user", 0).await;
    let r = api.get(&path, &stranger).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let (_, admin) = signed_in(&api, &db, "admin", 0).await;
    let (status, seen) = parts(api.get(&path, &admin).await).await;
    assert_eq!(
        (status, seen["lines"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    let r = api
        .get(&format!("/api/jobs/{}/transcript", Uuid::now_v7()), &token)
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    api.stop().await;
}
