//! A client of the API during faults, as a well-behaved user's program would be: it probes
//! an authenticated route, and creates jobs each under an Idempotency-Key of its own,
//! sending a creation again with the same key after a 503 or a lost connection. What it
//! saw proves the API's promises: 503 with a JSON error while the database is away, 2xx
//! once it is back, and one job (one charge) per key however often a creation was sent.

use super::report::ApiFigures;
use octavia::error::{Error, Result};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How one request was answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Ok,
    /// 503 with `{"error": {"code": "unavailable", "message": …}}`.
    Unavailable,
    /// Anything else: a violation.
    Unexpected(String),
}

/// One probe: when it was answered, and how.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub at: Instant,
    pub answer: Answer,
}

/// What the creator did.
#[derive(Debug, Default)]
pub(crate) struct Creations {
    pub jobs: Vec<Uuid>,
    pub retried: usize,
    pub replays: usize,
    /// Creations answered with something else than 2xx or a 503 (violations).
    pub failures: Vec<String>,
}

/// An API client signed in as one user.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// Longest a request may take: a request that hangs is a violation, not a slow answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

impl Client {
    /// Signs in at `base` (retrying while the API says 503).
    pub async fn sign_in(base: &str, email: &str, password: &str) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Invalid(format!("HTTP client: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = http
                .post(format!("{base}/api/sessions"))
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await;
            if let Ok(r) = r {
                let status = r.status();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if status.is_success()
                    && let Some(token) = body["token"].as_str()
                {
                    return Ok(Client {
                        http,
                        base: base.to_string(),
                        token: token.to_string(),
                    });
                }
                if status.as_u16() != 503 {
                    return Err(Error::Invalid(format!("sign-in answered {status}: {body}")));
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Invalid("could not sign in within 30 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GET /api/me, classified.
    async fn probe(&self) -> Answer {
        let sent = self
            .http
            .get(format!("{}/api/me", self.base))
            .bearer_auth(&self.token)
            .send()
            .await;
        match sent {
            Ok(r) => classify(r).await.0,
            Err(e) => Answer::Unexpected(format!("GET /api/me: no answer: {e}")),
        }
    }

    /// Probes every `every` until `stop`; returns every answer.
    pub fn spawn_prober(&self, every: Duration, stop: CancellationToken) -> JoinHandle<Vec<Probe>> {
        let client = self.clone();
        tokio::spawn(async move {
            let mut probes = Vec::new();
            while !stop.is_cancelled() {
                let answer = client.probe().await;
                probes.push(Probe {
                    at: Instant::now(),
                    answer,
                });
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => {}
                }
            }
            probes
        })
    }

    /// Creates a job of `options` every `every` until `stop`, each under a new
    /// Idempotency-Key sent again until it is answered (for at most a minute).
    pub fn spawn_creator(
        &self,
        job: Value,
        every: Duration,
        stop: CancellationToken,
    ) -> JoinHandle<Creations> {
        let client = self.clone();
        tokio::spawn(async move {
            let mut done = Creations::default();
            while !stop.is_cancelled() {
                client.create(&job, &mut done).await;
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => {}
                }
            }
            done
        })
    }

    async fn create(&self, job: &Value, done: &mut Creations) {
        let key = Uuid::new_v4().to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tries = 0;
        loop {
            tries += 1;
            if tries == 2 {
                done.retried += 1;
            }
            let sent = self
                .http
                .post(format!("{}/api/jobs", self.base))
                .bearer_auth(&self.token)
                .header("Idempotency-Key", &key)
                .json(job)
                .send()
                .await;
            let why = match sent {
                Ok(r) => {
                    let replayed = r.headers().contains_key("idempotent-replayed");
                    match classify(r).await {
                        (Answer::Ok, body) => match body["id"].as_str().map(Uuid::parse_str) {
                            Some(Ok(id)) => {
                                done.jobs.push(id);
                                done.replays += usize::from(replayed);
                                return;
                            }
                            _ => {
                                done.failures
                                    .push(format!("POST /api/jobs: 2xx without an id: {body}"));
                                return;
                            }
                        },
                        (Answer::Unavailable, _) => "503".to_string(),
                        (Answer::Unexpected(e), _) => {
                            done.failures.push(format!("POST /api/jobs: {e}"));
                            return;
                        }
                    }
                }
                // The request may or may not have reached the database: the key makes
                // sending it again safe.
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                done.failures.push(format!(
                    "POST /api/jobs with key {key} still failing after 60 s ({why})"
                ));
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A response as an [`Answer`], with its JSON body.
async fn classify(r: reqwest::Response) -> (Answer, Value) {
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let answer = if status.is_success() {
        Answer::Ok
    } else if status.as_u16() == 503
        && body["error"]["code"] == "unavailable"
        && body["error"]["message"].is_string()
    {
        Answer::Unavailable
    } else {
        let text: String = text.chars().take(300).collect();
        Answer::Unexpected(format!("{status}: {text}"))
    };
    (answer, body)
}

/// Tallies the probes and creations; unexpected answers become violations.
pub(crate) fn figures(
    probes: &[Probe],
    creations: &Creations,
    violations: &mut Vec<String>,
) -> ApiFigures {
    let mut f = ApiFigures {
        probes: probes.len(),
        jobs_created: creations.jobs.len(),
        creations_retried: creations.retried,
        replays: creations.replays,
        ..ApiFigures::default()
    };
    for p in probes {
        match &p.answer {
            Answer::Ok => f.ok += 1,
            Answer::Unavailable => f.unavailable += 1,
            Answer::Unexpected(e) => {
                f.unexpected += 1;
                if f.unexpected <= 5 {
                    violations.push(format!("the API answered GET /api/me with {e}"));
                }
            }
        }
    }
    violations.extend(creations.failures.iter().cloned());
    f
}

/// Seconds from `since` to the first 2xx probe after it.
pub(crate) fn first_ok_after(probes: &[Probe], since: Instant) -> Option<f64> {
    probes
        .iter()
        .find(|p| p.at >= since && p.answer == Answer::Ok)
        .map(|p| p.at.duration_since(since).as_secs_f64())
}

/// Whether a probe answered between `from` and `to` was a 503 with the JSON error.
pub(crate) fn unavailable_between(probes: &[Probe], from: Instant, to: Instant) -> bool {
    probes
        .iter()
        .any(|p| p.at >= from && p.at <= to && p.answer == Answer::Unavailable)
}
