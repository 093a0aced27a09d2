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
