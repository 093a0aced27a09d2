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

/// Prefixes of a job's intermediate objects: what its plan and segment attempts wrote,
/// which nothing needs once the job completed (its outputs are elsewhere).
pub fn intermediate_prefixes(job_id: Uuid) -> [String; 2] {
    [
        format!("jobs/{job_id}/plan"),
        format!("jobs/{job_id}/segments"),
    ]
}

/// Prefix of every object of a job, for [`Storage::list`] and [`Storage::delete_prefix`].
pub fn job_prefix(job_id: Uuid) -> String {
    format!("jobs/{job_id}")
}

/// What a key of Octavia's layout names, read back from it (see [`StoredKey::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredKey {
    /// `media/{user}/{media}/{file}`: an upload or an output.
    Media { media_id: Uuid },
    /// `jobs/{job}/output/{media}/{file}`: the output of a job without an owner.
    JobOutput { media_id: Uuid },
    /// `jobs/{job}/plan/{run}-{attempt}/{file}`.
    Plan {
        job_id: Uuid,
        run: i32,
        attempt: i32,
    },
    /// `jobs/{job}/segments/{index}/{run}-{attempt}/{file}`.
    Segment {
        job_id: Uuid,
        index: i32,
        run: i32,
        attempt: i32,
    },
}

impl StoredKey {
    /// The layout's reading of `key`, or `None` for a key Octavia does not write (which
    /// nothing of Octavia ever deletes).
    pub fn parse(key: &str) -> Option<StoredKey> {
        let parts: Vec<&str> = key.split('/').collect();
        let uuid = |s: &str| Uuid::parse_str(s).ok();
        let run_attempt = |s: &str| {
            let (run, attempt) = s.split_once('-')?;
            Some((run.parse().ok()?, attempt.parse().ok()?))
        };
        match parts.as_slice() {
            ["media", user, media, file @ ..] if uuid(user).is_some() && !file.is_empty() => {
                Some(StoredKey::Media {
                    media_id: uuid(media)?,
                })
            }
            ["jobs", job, "output", media, file @ ..]
                if uuid(job).is_some() && !file.is_empty() =>
            {
                Some(StoredKey::JobOutput {
                    media_id: uuid(media)?,
                })
            }
            ["jobs", job, "plan", ra, file] if !file.is_empty() => {
                let (run, attempt) = run_attempt(ra)?;
                Some(StoredKey::Plan {
                    job_id: uuid(job)?,
                    run,
                    attempt,
                })
            }
            ["jobs", job, "segments", index, ra, file] if !file.is_empty() => {
                let (run, attempt) = run_attempt(ra)?;
                Some(StoredKey::Segment {
                    job_id: uuid(job)?,
                    index: index.parse().ok()?,
                    run,
                    attempt,
                })
            }
            _ => None,
        }
    }
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

    #[test]
    fn every_key_written_reads_back_as_what_it_is() {
        let (user, media, job) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            StoredKey::parse(&media_key(user, media, "talk.es.mp4")),
            Some(StoredKey::Media { media_id: media })
        );
        assert_eq!(
            StoredKey::parse(&job_output_key(job, &format!("{media}/out.srt"))),
            Some(StoredKey::JobOutput { media_id: media })
        );
        assert_eq!(
            StoredKey::parse(&plan_key(job, 2, 3, "segment-00001.wav")),
            Some(StoredKey::Plan {
                job_id: job,
                run: 2,
                attempt: 3
            })
        );
        assert_eq!(
            StoredKey::parse(&segment_key(job, 7, 1, 4, "dub.wav")),
            Some(StoredKey::Segment {
                job_id: job,
                index: 7,
                run: 1,
                attempt: 4
            })
        );
        for foreign in [
            "media/not-a-uuid/x/y",
            "backups/db.dump",
            &format!("jobs/{job}/plan/1/x"),
            &format!("jobs/{job}/segments/a/1-1/x"),
            &format!("media/{user}/{media}"),
        ] {
            assert_eq!(StoredKey::parse(foreign), None, "{foreign}");
        }
    }
}
