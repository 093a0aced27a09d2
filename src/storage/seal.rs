//! Sealed uploads: what an upload's bytes were when `POST /api/uploads/{id}/complete`
//! priced them (their size and the store's entity tag), recorded in the media row's
//! `metadata.sealed`, and checked wherever the bytes are used again (creating a job,
//! downloading the input in the pipeline), so bytes put to a still-valid upload link
//! after completion are refused instead of processed at the old price.

use super::ObjectInfo;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An upload's bytes as completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub size: u64,
    /// The store's entity tag (S3's ETag; the local store's inode, time and size).
    pub e_tag: Option<String>,
}

impl Seal {
    /// The seal of the object `info` describes.
    pub fn of(info: &ObjectInfo) -> Seal {
        Seal {
            size: info.size,
            e_tag: info.e_tag.clone(),
        }
    }

    /// The seal recorded in a media row's metadata; `None` for rows that have none
    /// (outputs, and uploads completed before seals were recorded).
    pub fn recorded(metadata: &Value) -> Option<Seal> {
        serde_json::from_value(metadata.get("sealed")?.clone()).ok()
    }

    /// Why the object `now` describes is not the sealed one, if it is not.
    pub fn broken_by(&self, now: Option<&ObjectInfo>) -> Option<String> {
        let Some(now) = now else {
            return Some("its object is gone from the store".into());
        };
        if now.size != self.size {
            return Some(format!(
                "its object has {} bytes, and {} were completed",
                now.size, self.size
            ));
        }
        match (&self.e_tag, &now.e_tag) {
            (Some(then), Some(now)) if then != now => Some(format!(
                "its object was replaced after it was completed (entity tag {now}, was {then})"
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn info(size: u64, e_tag: &str) -> ObjectInfo {
        ObjectInfo {
            size,
            last_modified: Utc::now(),
            e_tag: Some(e_tag.into()),
        }
    }

    #[test]
    fn a_seal_is_broken_by_other_bytes_and_kept_by_the_same() {
        let seal = Seal::of(&info(54, "\"a\""));
        let metadata = serde_json::json!({"upload": "complete", "sealed": seal});
        assert_eq!(Seal::recorded(&metadata), Some(seal.clone()));
        assert_eq!(Seal::recorded(&serde_json::json!({})), None);
        assert_eq!(seal.broken_by(Some(&info(54, "\"a\""))), None);
        let e = seal.broken_by(Some(&info(6_863, "\"b\""))).unwrap();
        assert!(e.contains("6863 bytes") && e.contains("54"), "{e}");
        let e = seal.broken_by(Some(&info(54, "\"b\""))).unwrap();
        assert!(e.contains("replaced"), "{e}");
        assert!(seal.broken_by(None).unwrap().contains("gone"));
    }
}
