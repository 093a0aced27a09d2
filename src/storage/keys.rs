//! The key layout: where each kind of object lives, so nobody formats keys by hand, and
//! the one canonical form a key is accepted in.

use crate::error::{Error, Result};
use object_store::path::Path as Key;
use uuid::Uuid;

/// Path of the API route that serves the local store's signed links: `{LOCAL_ROUTE}{key}`.
pub const LOCAL_ROUTE: &str = "/api/storage/";

/// Key of an uploaded or produced media file: `media/{user_id}/{media_id}/{file}`.
pub fn media_key(user_id: Uuid, media_id: Uuid, file: &str) -> String {
    format!("media/{user_id}/{media_id}/{file}")
}

/// Key of a file written by one attempt at a segment:
/// `jobs/{job_id}/segments/{index}/{run}-{attempt}/{file}`. The job's run and the attempt
/// are part of the key so a worker that lost its lease can never overwrite what the
/// segment's new owner wrote, even after a retry started the attempts again.
pub fn segment_key(job_id: Uuid, index: i32, run: i32, attempt: i32, file: &str) -> String {
    format!("jobs/{job_id}/segments/{index}/{run}-{attempt}/{file}")
}

/// Key of a file written by one attempt at a job's plan step:
/// `jobs/{job_id}/plan/{run}-{attempt}/{file}` (the segments' inputs). As with
/// [`segment_key`], run and attempt keep a plan that lost its lease from overwriting its
/// successor's files.
pub fn plan_key(job_id: Uuid, run: i32, attempt: i32, file: &str) -> String {
    format!("jobs/{job_id}/plan/{run}-{attempt}/{file}")
}

/// Key of a job's assembled output: `jobs/{job_id}/output/{file}`.
pub fn job_output_key(job_id: Uuid, file: &str) -> String {
    format!("jobs/{job_id}/output/{file}")
}

/// Prefix of every object of a job, for [`Storage::list`] and [`Storage::delete_prefix`].
pub fn job_prefix(job_id: Uuid) -> String {
    format!("jobs/{job_id}")
}

/// A key as the store's path, refused unless it is already in canonical form (no leading,
/// trailing or doubled `/`, no `.` or `..` segment, no control character), so each object
/// has exactly one key and nothing escapes the local store's directory.
pub(super) fn parse_key(key: &str) -> Result<Key> {
    let location = Key::parse(key).map_err(object_store::Error::from)?;
    if location.is_root() || location.as_ref() != key {
        return Err(Error::Invalid(format!("`{key}` is not an object key")));
    }
    Ok(location)
}

/// A prefix as the store's path.
pub(super) fn parse_prefix(prefix: &str) -> Result<Key> {
    Ok(Key::parse(prefix).map_err(object_store::Error::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let (user, media, job) = (Uuid::nil(), Uuid::max(), Uuid::nil());
        assert_eq!(
            media_key(user, media, "input.mp4"),
            format!("media/{user}/{media}/input.mp4")
        );
        assert_eq!(
            segment_key(job, 7, 1, 2, "audio.wav"),
            format!("jobs/{job}/segments/7/1-2/audio.wav")
        );
        assert_eq!(
            job_output_key(job, "out.srt"),
            format!("jobs/{job}/output/out.srt")
        );
        assert!(segment_key(job, 0, 1, 1, "x").starts_with(&format!("{}/", job_prefix(job))));
        for key in [
            media_key(user, media, "a b.mp4"),
            segment_key(job, 0, 1, 1, "x"),
        ] {
            assert!(parse_key(&key).is_ok(), "{key}");
        }
    }
}
