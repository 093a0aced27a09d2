//! Media files (`media_files`): what kind each one is, and an output file a job records.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What kind of file a media row is (`media_files.media_type`): an upload's declared kind,
/// or the kind of a job's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Video,
    Audio,
    Subtitle,
}

impl MediaType {
    pub const fn as_str(self) -> &'static str {
        match self {
            MediaType::Video => "video",
            MediaType::Audio => "audio",
            MediaType::Subtitle => "subtitle",
        }
    }
}

impl std::fmt::Display for MediaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file to record in `media_files`: the output of a job, inserted in the transaction
/// that completes it.
#[derive(Debug, Clone)]
pub struct NewMedia {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub s3_key: String,
    /// A [`MediaType`] for the product's job types; the queue records any kind.
    pub media_type: String,
    pub duration_seconds: Option<f64>,
    pub size_bytes: i64,
    pub mimetype: String,
    pub derived_from: Option<Uuid>,
    pub metadata: serde_json::Value,
}

/// One file of a job's output, as `media_files.metadata.files` records it under its role
/// (`video`, `audio`, `srt`, `vtt`, `transcript`). Rows written before sizes were recorded map a role to
/// the bare key; [`output_files`] reads both.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct OutputFile {
    pub key: String,
    pub size_bytes: Option<i64>,
    pub mimetype: Option<String>,
    pub duration_seconds: Option<f64>,
}

/// The roles an output's files are listed in: the main file's first, then video, audio,
/// srt, vtt, transcript, then anything else by name.
const ROLE_ORDER: [&str; 5] = ["video", "audio", "srt", "vtt", "transcript"];

/// Every file a media row's `metadata` lists, by role, the main one first. A row that
/// lists none (an upload, or a queue test's output) is its own `s3_key`, in the role
/// `metadata.main` names (or `file`).
pub fn output_files(metadata: &serde_json::Value, s3_key: &str) -> Vec<(String, OutputFile)> {
    let main = metadata["main"].as_str().unwrap_or("file");
    let mut files: Vec<(String, OutputFile)> = metadata["files"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(role, value)| {
            let file = match value {
                serde_json::Value::String(key) => OutputFile {
                    key: key.clone(),
                    size_bytes: None,
                    mimetype: None,
                    duration_seconds: None,
                },
                other => serde_json::from_value(other.clone()).ok()?,
            };
            Some((role.clone(), file))
        })
        .collect();
    if files.is_empty() {
        files.push((
            main.to_string(),
            OutputFile {
                key: s3_key.to_string(),
                size_bytes: None,
                mimetype: None,
                duration_seconds: None,
            },
        ));
    }
    files.sort_by_key(|(role, _)| {
        let rank = ROLE_ORDER.iter().position(|r| r == role);
        (role != main, rank.unwrap_or(ROLE_ORDER.len()), role.clone())
    });
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_files_lists_the_main_file_first_and_reads_bare_keys() {
        let metadata = json!({
            "main": "vtt",
            "files": {
                "srt": "k/a.srt",
                "vtt": {"key": "k/a.vtt", "size_bytes": 10, "mimetype": "text/vtt",
                        "duration_seconds": 4.0},
                "video": {"key": "k/a.mp4", "size_bytes": 99, "mimetype": "video/mp4",
                          "duration_seconds": 4.0},
            }
        });
        let files = output_files(&metadata, "k/a.vtt");
        let roles: Vec<&str> = files.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(roles, ["vtt", "video", "srt"]);
        assert_eq!(files[0].1.size_bytes, Some(10));
        assert_eq!(files[2].1.key, "k/a.srt");
        assert_eq!(files[2].1.mimetype, None);

        let upload = output_files(&json!({"file_name": "talk.srt"}), "media/u/m/talk.srt");
        assert_eq!(upload.len(), 1);
        assert_eq!(
            (upload[0].0.as_str(), upload[0].1.key.as_str()),
            ("file", "media/u/m/talk.srt")
        );
    }
}
