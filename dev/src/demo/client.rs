//! The demo's HTTP client: the calls a real client of `octavia-api` makes, with the
//! response shapes it needs (a client's own view of them, not the server's types), and a
//! reader of the job's Server-Sent Events.

use super::error::DemoError;
use futures_util::{Stream, StreamExt};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

/// Longest wait for an ordinary request (not the event stream, which lasts the job).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of one API server, signed in once [`ApiClient::sign_in`] succeeded.
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

/// A link the API signed (an upload or a download).
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    pub url: String,
}

/// A media file as the API reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct Media {
    pub id: Uuid,
    pub duration_seconds: Option<f64>,
    pub size_bytes: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct UploadCreated {
    media: Media,
    upload: Link,
}

#[derive(Debug, Deserialize)]
struct Project {
    id: Uuid,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ProjectList {
    projects: Vec<Project>,
}

/// A job's segments by status.
#[derive(Debug, Clone, Deserialize)]
pub struct Segments {
    pub total: i64,
    pub completed: i64,
}

/// A job's output once it completed.
#[derive(Debug, Clone, Deserialize)]
pub struct JobOutput {
    pub media_id: Uuid,
    pub duration_seconds: Option<f64>,
    pub download: Option<Link>,
}

/// A job as `GET /api/jobs/{id}` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub status: String,
    pub progress: i32,
    pub cost_credits: i64,
    pub error: Option<String>,
    pub segments: Segments,
    pub output: Option<JobOutput>,
}

#[derive(Debug, Deserialize)]
struct JobSummary {
    id: Uuid,
}

#[derive(Debug, Deserialize)]
struct JobPage {
    jobs: Vec<JobSummary>,
}

/// Where a job is: one event of its stream, or read from the job itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Progress {
    pub status: String,
    pub progress: i32,
    pub segments_done: i64,
    pub segments_total: i64,
    pub error: Option<String>,
}

impl From<&Job> for Progress {
    fn from(job: &Job) -> Self {
        Progress {
            status: job.status.clone(),
            progress: job.progress,
            segments_done: job.segments.completed,
            segments_total: job.segments.total,
            error: job.error.clone(),
        }
    }
}

impl Progress {
    /// Whether the job will change no more (completed, failed or cancelled).
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "cancelled")
    }
}

impl ApiClient {
    pub fn new(base: &str) -> Result<ApiClient, DemoError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("octavia-demo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DemoError::Failed(format!("cannot make an HTTP client: {e}")))?;
        Ok(ApiClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            token: None,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends `request` (described by `what` in errors) and reads its JSON answer, or the
    /// API's error.
    async fn call<T: DeserializeOwned>(
        &self,
        what: &str,
        request: RequestBuilder,
    ) -> Result<T, DemoError> {
        let response = send(what, request.timeout(REQUEST_TIMEOUT)).await?;
        let response = check(what, response).await?;
        response.json().await.map_err(|e| DemoError::Http {
            what: what.to_string(),
            error: e,
        })
    }

    /// Whether the server answers `GET /readyz` with 200 (database reachable, schema
    /// current).
    pub async fn is_ready(&self) -> bool {
        self.request(Method::GET, "/readyz")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    }

    /// `POST /api/sessions`: signs in; later requests carry the token.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Result<(), DemoError> {
        #[derive(Deserialize)]
        struct Session {
            token: String,
        }
        let body = json!({ "email": email, "password": password });
        let session: Session = self
            .call(
                "signing in",
                self.request(Method::POST, "/api/sessions").json(&body),
            )
            .await?;
        self.token = Some(session.token);
        Ok(())
    }

    /// `DELETE /api/sessions/current`: the token stops working.
    pub async fn sign_out(&mut self) -> Result<(), DemoError> {
        let what = "signing out";
        let request = self.request(Method::DELETE, "/api/sessions/current");
        check(what, send(what, request.timeout(REQUEST_TIMEOUT)).await?).await?;
        self.token = None;
        Ok(())
    }

    /// The caller's project named `name`, created if there is none.
    pub async fn project(&self, name: &str) -> Result<Uuid, DemoError> {
        let list: ProjectList = self
            .call(
                "listing projects",
                self.request(Method::GET, "/api/projects"),
            )
            .await?;
        if let Some(p) = list
            .projects
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
        {
            return Ok(p.id);
        }
        let created: Project = self
            .call(
                "creating a project",
                self.request(Method::POST, "/api/projects")
                    .json(&json!({ "name": name })),
            )
            .await?;
        Ok(created.id)
    }

    /// Uploads the file at `path` as a client does: `POST /api/uploads` records it and
    /// answers with a URL, the bytes go to that URL with a PUT, and
    /// `POST /api/uploads/{id}/complete` checks them and records the duration.
    pub async fn upload(
        &self,
        path: &Path,
        media_type: &str,
        project: Uuid,
    ) -> Result<Media, DemoError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| DemoError::Failed(format!("cannot read {}: {e}", path.display())))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".into());
        let body = json!({
            "file_name": file_name,
            "media_type": media_type,
            "size_bytes": bytes.len(),
            "project_id": project,
        });
        let created: UploadCreated = self
            .call(
                "starting the upload",
                self.request(Method::POST, "/api/uploads").json(&body),
            )
            .await?;
        // The signed URL is the credential: no bearer token goes with it, as with S3.
        let what = "sending the file to the upload URL";
        let put = self
            .http
            .put(&created.upload.url)
            .body(bytes)
            .timeout(REQUEST_TIMEOUT);
        check(what, send(what, put).await?).await?;
        self.call(
            "completing the upload",
            self.request(
                Method::POST,
                &format!("/api/uploads/{}/complete", created.media.id),
            ),
        )
        .await
    }

    /// `POST /api/jobs` with an Idempotency-Key, so a retried request would not charge
    /// twice.
    pub async fn create_job(
        &self,
        job_type: &str,
        input: Uuid,
        project: Uuid,
        options: Value,
    ) -> Result<Job, DemoError> {
        let body = json!({
            "job_type": job_type,
            "input_media_id": input,
            "project_id": project,
            "options": options,
        });
        self.call(
            "creating the job",
            self.request(Method::POST, "/api/jobs")
                .header("Idempotency-Key", Uuid::new_v4().to_string())
                .json(&body),
        )
        .await
    }

    /// `GET /api/jobs/{id}`.
    pub async fn job(&self, id: Uuid) -> Result<Job, DemoError> {
        self.call(
            "reading the job",
            self.request(Method::GET, &format!("/api/jobs/{id}")),
        )
        .await
    }

    /// The caller's jobs that are queued or running.
    pub async fn unfinished_jobs(&self) -> Result<Vec<Uuid>, DemoError> {
        let mut ids = Vec::new();
        for status in ["queued", "running"] {
            let page: JobPage = self
                .call(
                    "listing unfinished jobs",
                    self.request(Method::GET, &format!("/api/jobs?status={status}&limit=100")),
                )
                .await?;
            ids.extend(page.jobs.into_iter().map(|j| j.id));
        }
        Ok(ids)
    }

    /// `POST /api/jobs/{id}/cancel`.
    pub async fn cancel(&self, id: Uuid) -> Result<Job, DemoError> {
        self.call(
            "cancelling a job",
            self.request(Method::POST, &format!("/api/jobs/{id}/cancel")),
        )
        .await
    }

    /// `GET /api/jobs/{id}/events`: the job's progress as it changes, ending after a
    /// terminal status (or when the connection ends).
    pub async fn events(
        &self,
        id: Uuid,
    ) -> Result<impl Stream<Item = Result<Progress, DemoError>> + Unpin + use<>, DemoError> {
        let what = "following the job's events";
        let request = self.request(Method::GET, &format!("/api/jobs/{id}/events"));
        let response = check(what, send(what, request).await?).await?;
        let mut parser = SseParser::default();
        let stream = response
            .bytes_stream()
            .map(move |chunk| -> Vec<Result<Progress, DemoError>> {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        return vec![Err(DemoError::Http {
                            what: what.to_string(),
                            error: e,
                        })];
                    }
                };
                parser
                    .push(&chunk)
                    .into_iter()
                    .filter(|e| e.event == "job")
                    .map(|e| {
                        serde_json::from_str(&e.data).map_err(|err| {
                            DemoError::Failed(format!(
                                "a job event is not what it should be: {err}: {}",
                                e.data
                            ))
                        })
                    })
                    .collect()
            })
            .flat_map(futures_util::stream::iter);
        Ok(Box::pin(stream))
    }

    /// Downloads `url` (a signed link: no token) and returns how many bytes came.
    pub async fn download_size(&self, url: &str) -> Result<u64, DemoError> {
        let what = "downloading the output";
        let response = check(
            what,
            send(what, self.http.get(url).timeout(REQUEST_TIMEOUT)).await?,
        )
        .await?;
        let bytes = response.bytes().await.map_err(|e| DemoError::Http {
            what: what.to_string(),
            error: e,
        })?;
        Ok(bytes.len() as u64)
    }
}

async fn send(what: &str, request: RequestBuilder) -> Result<Response, DemoError> {
    request.send().await.map_err(|e| DemoError::Http {
        what: what.to_string(),
        error: e,
    })
}

/// The response if it is a success, else the API's `{"error": {"code", "message"}}` as
/// [`DemoError::Api`].
async fn check(what: &str, response: Response) -> Result<Response, DemoError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let field = |f: &str| body["error"][f].as_str().unwrap_or_default().to_string();
    Err(DemoError::Api {
        what: what.to_string(),
        status: status.as_u16(),
        code: field("code"),
        message: field("message"),
    })
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name (`message` when there is none).
    pub event: String,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// Splits an event stream into events as its bytes arrive, whatever the chunking.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    /// Adds `chunk` and returns the events it completed. Comments (`:` lines, such as
    /// keep-alives) and blocks without data are skipped.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        // CR LF and LF both end lines; dropping every CR is safe because JSON data escapes
        // its own.
        self.buffer.extend(chunk.iter().filter(|b| **b != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block);
            let mut event = String::from("message");
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event = value.to_string(),
                    "data" => data.push(value),
                    _ => {}
                }
            }
            if !data.is_empty() {
                events.push(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_whatever_the_chunks() {
        let stream = b": keep-alive\n\nevent: job\ndata: {\"a\":1}\n\nevent: job\r\ndata: {\"a\":2}\r\n\r\ndata: x\ndata: y\n\n";
        for size in [1, 3, 7, stream.len()] {
            let mut parser = SseParser::default();
            let events: Vec<SseEvent> = stream.chunks(size).flat_map(|c| parser.push(c)).collect();
            assert_eq!(
                events,
                vec![
                    SseEvent {
                        event: "job".into(),
                        data: "{\"a\":1}".into()
                    },
                    SseEvent {
                        event: "job".into(),
                        data: "{\"a\":2}".into()
                    },
                    SseEvent {
                        event: "message".into(),
                        data: "x\ny".into()
                    },
                ],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn an_unfinished_event_waits_for_its_end() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"event: job\ndata: {}").is_empty());
        assert_eq!(parser.push(b"\n\n").len(), 1);
    }

    /// The client reads what the server writes: its own event type, serialized.
    #[test]
    fn the_servers_job_event_reads_as_progress() {
        let event = octavia::api::JobEvent {
            id: Uuid::nil(),
            status: octavia::job::JobStatus::Running,
            progress: 50,
            segments_done: 3,
            segments_total: 6,
            error: None,
        };
        let p: Progress = serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
        assert_eq!((p.segments_done, p.segments_total, p.progress), (3, 6, 50));
        assert!(!p.is_terminal());
    }
}
