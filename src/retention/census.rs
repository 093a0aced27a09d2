//! The census of the store: every object, listed and told apart by what names it in the
//! database (an upload, an output, an intermediate a job may still need) or by nothing
//! (an orphan). `octavia storage stats` prints it; the orphan pass deletes its orphans.
//!
//! Why deleting an orphan is safe, for objects under `jobs/` (the keys carry run and
//! attempt). The store is listed first, then the jobs are read in one snapshot. An object
//! written by attempt `a` of run `r` is only ever read once a completed step names it (a
//! segment's input, written by its plan, or a segment's result), and a step completes
//! only while its lease holds: fenced on `attempts = a` and on the run. Runs only move
//! forward, and so do a step's attempts within a run, except that a worker shutting down
//! gives an attempt back (`attempts - 1`) for the next claim to use again. So an object is
//! kept when a segment names it, and when its attempt is the current one or later
//! (`(r, a) >= (run, attempts)`: running, or given back); an older attempt can never
//! complete, and no one will read what it wrote. A finished job's unnamed objects are
//! orphans too (a retry starts a new run), and so is everything of a run the job's
//! `swept_run` covers. Objects listed before an attempt wrote them are not in the census
//! at all. Under `media/`, an output is uploaded before the row that names it is
//! inserted, so an object no row names is an orphan only once older than
//! `storage.orphan_grace_seconds`.

use crate::db::Session;
use crate::error::Result;
use crate::job::{JobStatus, SegmentStatus};
use crate::storage::{ObjectInfo, Storage, StoredKey};
use crate::{db, sql};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// What an object is to Octavia.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A file a user uploaded (completed or not).
    Uploads,
    /// A file a job produced.
    Outputs,
    /// What a job's steps wrote and a step may still read.
    Intermediates,
    /// An object no row names yet, younger than `storage.orphan_grace_seconds` (an
    /// output being uploaded, most likely).
    Recent,
    /// An object nothing needs: deleted by the orphan pass.
    Orphans,
    /// A key outside Octavia's layout: never touched.
    Other,
}

/// Objects and bytes of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub objects: u64,
    pub bytes: u64,
}

/// An object the census found nobody needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    pub key: String,
    pub size: u64,
    pub why: &'static str,
}

/// The whole store, by kind, and the orphans.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Census {
    pub kinds: BTreeMap<Kind, Tally>,
    pub orphans: Vec<Orphan>,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Uploads,
        Kind::Outputs,
        Kind::Intermediates,
        Kind::Recent,
        Kind::Orphans,
        Kind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Uploads => "uploads",
            Kind::Outputs => "outputs",
            Kind::Intermediates => "intermediates",
            Kind::Recent => "recent",
            Kind::Orphans => "orphans",
            Kind::Other => "other",
        }
    }
}

impl Census {
    /// The tally of `kind` (zero when there is none).
    pub fn of(&self, kind: Kind) -> Tally {
        self.kinds.get(&kind).copied().unwrap_or_default()
    }

    fn count(&mut self, kind: Kind, size: u64) {
        let tally = self.kinds.entry(kind).or_default();
        tally.objects += 1;
        tally.bytes += size;
    }
}

/// A job as the census reads it (`sql/census_jobs.sql`).
#[derive(Debug, Clone)]
pub struct JobState {
    pub status: JobStatus,
    pub step: String,
    pub run: i32,
    pub attempts: i32,
    pub swept_run: Option<i32>,
    /// Per segment index: its status and attempts.
    pub segments: HashMap<i32, (SegmentStatus, i32)>,
    /// Keys under `jobs/{id}/` its segments name.
    pub named: HashSet<String>,
}

/// A media file as the census reads it (`sql/census_media.sql`).
#[derive(Debug, Clone)]
pub struct MediaState {
    pub output: bool,
    /// Expired or deleted: none of its objects should remain.
    pub gone: bool,
    pub keys: HashSet<String>,
}

/// What to make of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep(Kind),
    Orphan(&'static str),
}

/// The verdict on the object at `key`, `parsed` from it, given the job or media row it
/// belongs to (`None`: no such row), and whether it is older than the grace period.
pub fn judge(
    key: &str,
    parsed: StoredKey,
    job: Option<&JobState>,
    media: Option<&MediaState>,
    past_grace: bool,
) -> Verdict {
    match parsed {
        StoredKey::Media { .. } | StoredKey::JobOutput { .. } => match media {
            None if past_grace => Verdict::Orphan("no media row names it"),
            None => Verdict::Keep(Kind::Recent),
            Some(m) if m.gone => Verdict::Orphan("its media file expired or was deleted"),
            Some(m) if !m.keys.contains(key) && past_grace => {
                Verdict::Orphan("its media row does not name it")
            }
            Some(m) if !m.keys.contains(key) => Verdict::Keep(Kind::Recent),
            Some(m) if m.output => Verdict::Keep(Kind::Outputs),
            Some(_) => Verdict::Keep(Kind::Uploads),
        },
        StoredKey::Plan { run, attempt, .. } | StoredKey::Segment { run, attempt, .. } => {
            let Some(job) = job else {
                return if past_grace {
                    Verdict::Orphan("its job does not exist")
                } else {
                    Verdict::Keep(Kind::Recent)
                };
            };
            if job.swept_run.is_some_and(|swept| run <= swept) {
                return Verdict::Orphan("its job's run was swept");
            }
            if job.named.contains(key) {
                return Verdict::Keep(Kind::Intermediates);
            }
            if matches!(
                job.status,
                JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
            ) {
                // No attempt of a finished job runs, and a retry starts a new run.
                return if run <= job.run {
                    Verdict::Orphan("written by an attempt whose result was not kept")
                } else {
                    Verdict::Keep(Kind::Intermediates)
                };
            }
            // The attempt it belongs to, against the current one of its step.
            let current = match parsed {
                StoredKey::Plan { .. } if job.step == "plan" => Some(job.attempts),
                // The plan completed: its unnamed files belong to attempts that did not.
                StoredKey::Plan { .. } => None,
                StoredKey::Segment { index, .. } => match job.segments.get(&index) {
                    Some((_, attempts)) => Some(*attempts),
                    // Not inserted yet: a single-segment job run whole under its plan.
                    None => return Verdict::Keep(Kind::Intermediates),
                },
                _ => unreachable!("matched above"),
            };
            match current {
                Some(a) if (run, attempt) >= (job.run, a) => Verdict::Keep(Kind::Intermediates),
                _ => Verdict::Orphan("written by an attempt that lost its lease or failed"),
            }
        }
    }
}

/// How many ids one census query asks about.
const IDS_PER_QUERY: usize = 1000;

/// Lists the whole store and tells every object apart. `grace_seconds` is
/// `storage.orphan_grace_seconds`.
pub async fn take<C: Session>(client: &C, storage: &Storage, grace_seconds: u64) -> Result<Census> {
    // Listed before the rows are read: see the module's documentation.
    let objects = storage.list_info("").await?;
    let now = Utc::now();
    let parsed: Vec<(String, ObjectInfo, Option<StoredKey>)> = objects
        .into_iter()
        .map(|(key, info)| {
            let parsed = StoredKey::parse(&key);
            (key, info, parsed)
        })
        .collect();
    let mut job_ids = HashSet::new();
    let mut media_ids = HashSet::new();
    for (_, _, parsed) in &parsed {
        match parsed {
            Some(StoredKey::Media { media_id } | StoredKey::JobOutput { media_id }) => {
                media_ids.insert(*media_id);
            }
            Some(StoredKey::Plan { job_id, .. } | StoredKey::Segment { job_id, .. }) => {
                job_ids.insert(*job_id);
            }
            None => {}
        }
    }
    let jobs = jobs(client, job_ids.into_iter().collect()).await?;
    let media = media(client, media_ids.into_iter().collect()).await?;
    let mut census = Census::default();
    for (key, info, parsed) in parsed {
        let Some(parsed) = parsed else {
            census.count(Kind::Other, info.size);
            continue;
        };
        let (job, file) = match parsed {
            StoredKey::Media { media_id } | StoredKey::JobOutput { media_id } => {
                (None, media.get(&media_id))
            }
            StoredKey::Plan { job_id, .. } | StoredKey::Segment { job_id, .. } => {
                (jobs.get(&job_id), None)
            }
        };
        match judge(
            &key,
            parsed,
            job,
            file,
            older_than(info.last_modified, now, grace_seconds),
        ) {
            Verdict::Keep(kind) => census.count(kind, info.size),
            Verdict::Orphan(why) => {
                census.count(Kind::Orphans, info.size);
                census.orphans.push(Orphan {
                    key,
                    size: info.size,
                    why,
                });
            }
        }
    }
    census.orphans.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(census)
}

fn older_than(modified: DateTime<Utc>, now: DateTime<Utc>, seconds: u64) -> bool {
    (now - modified).num_seconds() >= seconds as i64
}

async fn jobs<C: Session>(client: &C, ids: Vec<Uuid>) -> Result<HashMap<Uuid, JobState>> {
    let mut jobs = HashMap::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        for r in db::query(client, sql::CENSUS_JOBS, &[&chunk]).await? {
            let indexes: Vec<i32> = r.get("segment_indexes");
            let statuses: Vec<Option<SegmentStatus>> = r.get("segment_statuses");
            let attempts: Vec<i32> = r.get("segment_attempts");
            let segments = indexes
                .into_iter()
                .zip(statuses)
                .zip(attempts)
                .map(|((i, s), a)| (i, (s.unwrap_or(SegmentStatus::Pending), a)))
                .collect();
            jobs.insert(
                r.get("id"),
                JobState {
                    status: r.get("status"),
                    step: r.get("step"),
                    run: r.get("run"),
                    attempts: r.get("attempts"),
                    swept_run: r.get("swept_run"),
                    segments,
                    named: r.get::<_, Vec<String>>("keys").into_iter().collect(),
                },
            );
        }
    }
    Ok(jobs)
}

async fn media<C: Session>(client: &C, ids: Vec<Uuid>) -> Result<HashMap<Uuid, MediaState>> {
    let mut media = HashMap::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        for r in db::query(client, sql::CENSUS_MEDIA, &[&chunk]).await? {
            media.insert(
                r.get("id"),
                MediaState {
                    output: r.get("output"),
                    gone: r.get("gone"),
                    keys: r.get::<_, Vec<String>>("keys").into_iter().collect(),
                },
            );
        }
    }
    Ok(media)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{media_key, plan_key, segment_key};

    fn running(run: i32, step: &str, attempts: i32, segments: &[(i32, i32)]) -> JobState {
        JobState {
            status: JobStatus::Running,
            step: step.into(),
            run,
            attempts,
            swept_run: None,
            segments: segments
                .iter()
                .map(|&(i, a)| (i, (SegmentStatus::Running, a)))
                .collect(),
            named: HashSet::new(),
        }
    }

    fn verdict(key: &str, job: &JobState) -> Verdict {
        judge(key, StoredKey::parse(key).unwrap(), Some(job), None, false)
    }

    #[test]
    fn an_attempt_s_objects_are_kept_while_it_or_a_later_one_may_use_them() {
        let id = Uuid::now_v7();
        let job = running(2, "segments", 0, &[(0, 3)]);
        let keep = Verdict::Keep(Kind::Intermediates);
        // The current attempt, and one given back at shutdown (the next claim reuses it).
        assert_eq!(verdict(&segment_key(id, 0, 2, 3, "dub.wav"), &job), keep);
        assert_eq!(verdict(&segment_key(id, 0, 2, 4, "dub.wav"), &job), keep);
        // Older attempts, of this run or an earlier one, can never complete.
        for (run, attempt) in [(2, 2), (1, 5)] {
            let key = segment_key(id, 0, run, attempt, "dub.wav");
            assert!(matches!(verdict(&key, &job), Verdict::Orphan(_)), "{key}");
        }
        // Unless a completed segment names it: its result is read by finalize.
        let mut named = job.clone();
        let old = segment_key(id, 0, 1, 5, "dub.wav");
        named.named.insert(old.clone());
        assert_eq!(verdict(&old, &named), keep);
        // A segment not inserted yet (a job run whole under its plan) is left alone.
        assert_eq!(verdict(&segment_key(id, 9, 1, 1, "dub.wav"), &job), keep);
    }

    #[test]
    fn plan_files_are_kept_while_planning_and_when_a_segment_reads_them() {
        let id = Uuid::now_v7();
        let keep = Verdict::Keep(Kind::Intermediates);
        let planning = running(1, "plan", 2, &[]);
        assert_eq!(verdict(&plan_key(id, 1, 2, "w.wav"), &planning), keep);
        assert!(matches!(
            verdict(&plan_key(id, 1, 1, "w.wav"), &planning),
            Verdict::Orphan(_)
        ));
        // Planned: only the files its segments name are needed.
        let mut planned = running(1, "segments", 0, &[(0, 1)]);
        let named = plan_key(id, 1, 2, "w.wav");
        planned.named.insert(named.clone());
        assert_eq!(verdict(&named, &planned), keep);
        assert!(matches!(
            verdict(&plan_key(id, 1, 2, "other.wav"), &planned),
            Verdict::Orphan(_)
        ));
    }

    #[test]
    fn finished_and_swept_jobs_keep_only_what_a_retry_resumes_from() {
        let id = Uuid::now_v7();
        let key = segment_key(id, 0, 1, 1, "dub.wav");
        let mut failed = running(1, "segments", 0, &[(0, 1)]);
        failed.status = JobStatus::Failed;
        failed.named.insert(key.clone());
        assert_eq!(verdict(&key, &failed), Verdict::Keep(Kind::Intermediates));
        assert!(matches!(
            verdict(&segment_key(id, 1, 1, 3, "dub.wav"), &failed),
            Verdict::Orphan(_)
        ));
        // Swept: named or not, every object of the run goes; the next run's stay.
        failed.swept_run = Some(1);
        assert!(matches!(verdict(&key, &failed), Verdict::Orphan(_)));
        let mut retried = failed.clone();
        retried.status = JobStatus::Queued;
        retried.run = 2;
        retried.step = "plan".into();
        assert_eq!(
            verdict(&plan_key(id, 2, 1, "w.wav"), &retried),
            Verdict::Keep(Kind::Intermediates)
        );
        // No job at all: an orphan once past the grace period.
        let parsed = StoredKey::parse(&key).unwrap();
        assert_eq!(
            judge(&key, parsed, None, None, false),
            Verdict::Keep(Kind::Recent)
        );
        assert!(matches!(
            judge(&key, parsed, None, None, true),
            Verdict::Orphan(_)
        ));
    }

    #[test]
    fn media_objects_belong_to_their_row_while_it_keeps_them() {
        let (user, media) = (Uuid::now_v7(), Uuid::now_v7());
        let key = media_key(user, media, "talk.es.srt");
        let parsed = StoredKey::parse(&key).unwrap();
        let mut row = MediaState {
            output: true,
            gone: false,
            keys: [key.clone()].into(),
        };
        let judged =
            |row: &MediaState, past_grace| judge(&key, parsed, None, Some(row), past_grace);
        assert_eq!(judged(&row, true), Verdict::Keep(Kind::Outputs));
        row.output = false;
        assert_eq!(judged(&row, true), Verdict::Keep(Kind::Uploads));
        row.keys.clear();
        assert_eq!(judged(&row, false), Verdict::Keep(Kind::Recent));
        assert!(matches!(judged(&row, true), Verdict::Orphan(_)));
        row.keys.insert(key.clone());
        row.gone = true;
        assert!(matches!(judged(&row, false), Verdict::Orphan(_)));
        // An output uploaded by a finalize whose row is not inserted yet.
        assert_eq!(
            judge(&key, parsed, None, None, false),
            Verdict::Keep(Kind::Recent)
        );
    }
}
