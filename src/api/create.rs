//! `POST /api/jobs`: checking and pricing a job, then creating it with its credit
//! reservation, exactly once per Idempotency-Key.
//!
//! This file keeps the HTTP side: the request, its validation (job type, options, input),
//! the price, and the answers. The creation is the queue's ([`enqueue::create`]): one
//! statement debits the balance under the user row's lock (so one user's creations run one
//! at a time and never spend the same credits twice), claims the Idempotency-Key, inserts
//! the job `queued` and writes the `job_reserve` ledger row, or does nothing when the
//! balance is short (402). A concurrent request with the same key waits on the user row,
//! then finds the key taken and answers with the job the first one created: it charges
//! nothing. The workers are woken once the creation has committed.

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ErrorBody, check_json};
use super::jobs::{self, JobResponse};
use super::state::ApiState;
use super::{limits, media, projects};
use crate::credits;
use crate::db::Session;
use crate::job::{JobType, MediaType};
use crate::queue::enqueue::{self, Created, Idempotency, PaidJob};
use crate::storage;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// A job to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJobRequest {
    #[schema(value_type = crate::job::JobType)]
    pub job_type: String,
    /// A completed upload of the caller's; every type but `noop` needs one.
    pub input_media_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    /// The job type's options, e.g. `{"source_language": "en", "target_language": "es"}`;
    /// the translating types need `target_language`; the types that hear speech take
    /// `"source_language": "auto"` to have it detected.
    #[serde(default)]
    #[schema(value_type = crate::job::options_schema::JobOptions)]
    pub options: Value,
}

/// The price of a job: `rate` credits per started minute of input, at least one minute.
pub fn price(rate: i64, input_ms: Option<u64>) -> i64 {
    let minutes = input_ms.map_or(1, |ms| ms.div_ceil(60_000).max(1));
    rate.saturating_mul(i64::try_from(minutes).unwrap_or(i64::MAX))
}

/// Milliseconds of input a job on `media` is priced by: the time its cues are shown for
/// subtitles, the duration for audio and video.
fn input_ms(media: &media::MediaRow) -> u64 {
    if media.media_type.as_deref() == Some(MediaType::Subtitle.as_str())
        && let Some(ms) = media.metadata["cues_ms"].as_u64()
    {
        return ms;
    }
    media
        .duration_seconds
        .map_or(0, |s| (s.max(0.0) * 1000.0).ceil() as u64)
}

/// Checks the options of `job_type` exactly as its handler will, so a job that would fail
/// at once for its options is refused with 422 instead of being charged.
fn check_options(job_type: JobType, options: &Value) -> Result<(), ApiError> {
    if !options.is_object() {
        return Err(ApiError::Invalid("options must be a JSON object".into()));
    }
    check_json("options", options)?;
    job_type.check_options(options).map_err(ApiError::Invalid)
}

/// `value` as text with object keys sorted at every level, so that two requests that mean
/// the same hash the same whatever their key order or spacing.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn request_hash(body: &NewJobRequest) -> Vec<u8> {
    let mut text = String::new();
    canonical(
        &json!({
            "job_type": body.job_type,
            "input_media_id": body.input_media_id,
            "project_id": body.project_id,
            "options": body.options,
        }),
        &mut text,
    );
    Sha256::digest(text.as_bytes()).to_vec()
}

/// The Idempotency-Key header: 1 to 255 visible ASCII characters, if present.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
        })?;
    Ok(Some(key.to_string()))
}

/// The answer to a request whose key was used before: its job if the request is the same,
/// 409 if not; `None` if the key is unused.
async fn replay<C: Session>(
    state: &ApiState,
    client: &C,
    caller: &Caller,
    key: &str,
    hash: &[u8],
) -> Result<Option<Response>, ApiError> {
    let Some(keyed) = enqueue::keyed(client, caller.user_id, key).await? else {
        return Ok(None);
    };
    if keyed.request_hash != hash {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let view = jobs::view(state, client, keyed.job_id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    let mut response = (StatusCode::OK, axum::Json(view)).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(response))
}

/// Create a job: prices it, reserves its credits and queues it, in one transaction.
#[utoipa::path(
    post,
    operation_id = "createJob",
    path = "/api/jobs",
    tag = "jobs",
    request_body = NewJobRequest,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Makes a retried request return the job the first one created, charging once")),
    responses(
        (status = 201, description = "Created and queued", body = JobResponse),
        (status = 200, description = "Replay of an earlier request with the same Idempotency-Key", body = JobResponse),
        (status = 400, description = "Malformed body or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 402, description = "The price exceeds the balance (both in the error)", body = ErrorBody),
        (status = 404, description = "No such project or media of the caller's", body = ErrorBody),
        (status = 409, description = "Upload not completed, its bytes changed after it was completed, or Idempotency-Key used with another request", body = ErrorBody),
        (status = 410, description = "The input expired: the retention policy deleted its file", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 422, description = "Invalid job type, input or options", body = ErrorBody),
        (status = 429, description = "More requests to create jobs in a minute than \
            api.job_creations_per_minute allows", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the minute ends"))),
    ),
    security(("bearer" = []))
)]
pub async fn create_job(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewJobRequest>,
) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    // First, so that a client over its rate costs one statement, whatever it sent.
    limits::job_creation(&client, &state.config.api, caller.user_id).await?;
    let key = idempotency_key(&headers)?;
    let job_type: JobType = body.job_type.parse().map_err(ApiError::Invalid)?;
    let options = if body.options.is_null() {
        json!({})
    } else {
        body.options.clone()
    };
    check_options(job_type, &options)?;
    let hash = request_hash(&body);
    if let Some(key) = &key
        && let Some(response) = replay(&state, &client, &caller, key, &hash).await?
    {
        return Ok(response);
    }

    // What does not change under the transaction is checked before it, to hold the user
    // row's lock as briefly as possible.
    projects::check_owner(&client, &caller, body.project_id).await?;
    let input = match (body.input_media_id, job_type.inputs()) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ApiError::Invalid(format!(
                "a {} job needs input_media_id",
                body.job_type
            )));
        }
        (Some(id), accepted) => {
            let media = media::load(&client, id)
                .await?
                .filter(|m| m.user_id == Some(caller.user_id))
                .ok_or(ApiError::NotFound("media"))?;
            if let Some(at) = media.expired_at {
                return Err(ApiError::Gone(format!(
                    "the input {id} expired at {at}: the retention policy deleted its file; \
                     upload it again"
                )));
            }
            if !media.is_uploaded() {
                return Err(ApiError::Conflict(
                    "the input's upload is not completed: POST /api/uploads/{id}/complete first"
                        .into(),
                ));
            }
            if let Some(seal) = storage::Seal::recorded(&media.metadata) {
                let now = state.storage.head(&media.s3_key).await?;
                if let Some(why) = seal.broken_by(now.as_ref()) {
                    return Err(ApiError::Conflict(format!(
                        "the input {id} is not what its upload completed with: {why}; \
                         upload the file again"
                    )));
                }
            }
            let kind = media.media_type.as_deref().unwrap_or_default();
            if let Some(accepted) = accepted
                && !accepted.iter().any(|a| a.as_str() == kind)
            {
                let accepted: Vec<&str> = accepted.iter().map(|a| a.as_str()).collect();
                return Err(ApiError::Invalid(format!(
                    "a {} job takes {} input, not {kind}",
                    body.job_type,
                    accepted.join(" or ")
                )));
            }
            Some(input_ms(&media))
        }
    };
    let cost = price(state.config.pricing.per_minute(job_type), input);
    let job_id = Uuid::now_v7();
    let traceparent = crate::telemetry::traceparent();
    let paid = PaidJob {
        id: job_id,
        user_id: caller.user_id,
        project_id: body.project_id,
        job_type: job_type.name(),
        input_media_id: body.input_media_id,
        options: &options,
        cost_credits: cost,
        max_attempts: state.config.worker.max_attempts as i32,
        idempotency: key.as_deref().map(|key| Idempotency {
            key,
            request_hash: &hash,
        }),
        traceparent: traceparent.as_deref(),
    };
    let job = match enqueue::create(&client, &paid).await? {
        Created::Job(job) => *job,
        // Nothing was written.
        Created::ShortOfCredits => {
            let balance = match credits::balance(&client, caller.user_id).await {
                Err(crate::error::Error::NotFound { .. }) => {
                    return Err(ApiError::Unauthorized(
                        "the signed-in user no longer exists".into(),
                    ));
                }
                other => other?,
            };
            return Err(ApiError::InsufficientCredits {
                price: cost,
                balance,
            });
        }
        // A concurrent request with this key committed first.
        Created::KeyTaken => {
            let key = key.as_deref().unwrap_or_default();
            return replay(&state, &client, &caller, key, &hash)
                .await?
                .ok_or_else(|| ApiError::Internal("a claimed key has no row".into()));
        }
    };
    state.waker.wake();
    metrics::counter!("octavia_jobs_created_total", "job_type" => body.job_type).increment(1);
    tracing::info!(job.id = %job_id, user.id = %caller.user_id, "job created");

    // Just created: no segments yet, and what it was created with.
    let view = jobs::response(&state, &client, job, &[]).await?;
    let mut response = (StatusCode::CREATED, axum::Json(view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/jobs/{job_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_count_started_minutes() {
        assert_eq!(price(10, None), 10, "no input: one minute");
        assert_eq!(price(10, Some(0)), 10, "at least one minute");
        assert_eq!(price(10, Some(60_000)), 10);
        assert_eq!(price(10, Some(60_001)), 20);
        assert_eq!(price(3, Some(30 * 60_000 + 1)), 93);
        assert_eq!(price(0, Some(1 << 40)), 0);
        assert_eq!(price(i64::MAX, Some(120_000)), i64::MAX, "saturates");
    }

    #[test]
    fn equal_requests_hash_equally_whatever_the_key_order() {
        let a: NewJobRequest =
            serde_json::from_str(r#"{"job_type":"noop","options":{"segments":2,"fail_rate":0.5}}"#)
                .unwrap();
        let b: NewJobRequest = serde_json::from_str(
            r#"{ "options": {"fail_rate":0.5, "segments":2}, "job_type":"noop" }"#,
        )
        .unwrap();
        let c: NewJobRequest =
            serde_json::from_str(r#"{"job_type":"noop","options":{"segments":3}}"#).unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(request_hash(&a), request_hash(&c));
    }

    #[test]
    fn options_are_checked() {
        let ok = json!({"source_language": "en", "target_language": "es"});
        use JobType::*;
        assert!(check_options(VideoTranslation, &ok).is_ok());
        assert!(check_options(Subtitles, &json!({})).is_ok());
        assert!(check_options(SubtitleTranslation, &json!({})).is_err());
        assert!(check_options(AudioTranslation, &json!({"target_language": "tlh"})).is_err());
        assert!(check_options(AudioTranslation, &json!({"target_language": 3})).is_err());
        assert!(check_options(Noop, &json!({"segments": "many"})).is_err());
        assert!(check_options(Noop, &json!([1])).is_err());
        assert!(check_options(Noop, &json!({"segments": 2})).is_ok());
        assert!(check_options(Subtitles, &json!({"x": "a\u{0}b"})).is_err());
    }
}
