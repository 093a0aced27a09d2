//! What the demo shows once the job completed: which worker ran which segment and what it
//! heard and said, and where the dubbed video and its subtitles are — files under the
//! local store's directory, and the API's download link.
//!
//! The API reports the output's main file only; the other files a job wrote (its
//! subtitles) are in the output row's `metadata.files`, which the demo, as the operator,
//! reads from the database.

use octavia::config::StorageConfig;
use octavia::db;
use octavia::db::Session;
use octavia::job::{self, SegmentView};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use uuid::Uuid;

/// Where a stored object is for someone at this machine: a file of the local store, or the
/// object's address in the bucket.
pub fn object_location(storage: &StorageConfig, key: &str) -> String {
    match storage.backend.as_str() {
        // object_store's local store keeps a key's segments as directories under its root.
        "local" => PathBuf::from(&storage.local_dir)
            .join(key)
            .display()
            .to_string(),
        _ => format!("s3://{}/{key}", storage.s3_bucket),
    }
}

/// The files of output media `id` by role (`video`, `audio`, `srt`, `vtt`): their keys,
/// media before subtitles.
pub async fn output_files<C: Session>(
    client: &C,
    id: Uuid,
) -> octavia::Result<Vec<(String, String)>> {
    let row = db::query_opt(client, octavia::sql::MEDIA_BY_ID, &[&id])
        .await?
        .ok_or_else(|| octavia::Error::NotFound {
            what: "media",
            id: id.to_string(),
        })?;
    let key: String = row.get(3);
    let metadata: Option<Value> = row.get(8);
    let metadata = metadata.unwrap_or_default();
    Ok(job::output_files(&metadata, &key)
        .into_iter()
        .map(|(role, file)| (role, file.key))
        .collect())
}

/// Lines saying, per segment, its window, the worker that ran it, and what it heard and
/// said; then how many segments each worker ran.
pub fn segment_lines(segments: &[SegmentView]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut by_worker: BTreeMap<String, usize> = BTreeMap::new();
    for s in segments {
        let result = s.result.clone().unwrap_or(Value::Null);
        let worker = result["worker"]
            .as_str()
            .or(s.locked_by.as_deref())
            .unwrap_or("?")
            .to_string();
        *by_worker.entry(worker.clone()).or_default() += 1;
        let secs = |ms: Option<i32>| ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        let phrases: Vec<String> = result["phrases"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        let heard = p["text"].as_str()?;
                        let said = p["translation"].as_str().unwrap_or("");
                        Some(format!("\"{heard}\" -> \"{said}\""))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let what = if phrases.is_empty() {
            "heard no speech".to_string()
        } else {
            phrases.join("; ")
        };
        let window = format!("{:.1}-{:.1} s", secs(s.start_ms), secs(s.end_ms));
        lines.push(format!("  #{:<2} {window:>12}  {worker}  {what}", s.index));
    }
    let shares: Vec<String> = by_worker
        .iter()
        .map(|(w, n)| format!("{w} ran {n}"))
        .collect();
    lines.push(format!("  {}", shares.join(", ")));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn local_keys_are_files_under_the_store_and_s3_keys_are_addresses() {
        let mut storage = StorageConfig {
            local_dir: "var/demo/objects".into(),
            ..StorageConfig::default()
        };
        assert_eq!(
            object_location(&storage, "media/u/m/talk.es.mp4"),
            "var/demo/objects/media/u/m/talk.es.mp4"
        );
        storage.backend = "s3".into();
        storage.s3_bucket = "bucket".into();
        assert_eq!(
            object_location(&storage, "media/u/m/talk.es.srt"),
            "s3://bucket/media/u/m/talk.es.srt"
        );
    }

    fn segment(index: i32, worker: &str, phrases: Value) -> SegmentView {
        SegmentView {
            id: Uuid::nil(),
            index,
            status: octavia::job::SegmentStatus::Completed,
            attempts: 1,
            max_attempts: 5,
            start_ms: Some(index * 4000),
            end_ms: Some(index * 4000 + 4000),
            locked_by: None,
            last_error: None,
            input: None,
            result: Some(json!({"worker": worker, "phrases": phrases})),
            finished_at: None,
        }
    }

    #[test]
    fn segments_show_their_worker_and_what_was_said() {
        let lines = segment_lines(&[
            segment(
                0,
                "w-1",
                json!([{"text": "the weather is", "translation": "el tiempo es"}]),
            ),
            segment(1, "w-2", json!([])),
            segment(2, "w-1", json!([])),
        ]);
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].contains("w-1") && lines[0].contains("\"the weather is\" -> \"el tiempo es\""),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("   4.0-8.0 s  w-2") && lines[1].contains("heard no speech"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[3], "  w-1 ran 2, w-2 ran 1");
    }
}
