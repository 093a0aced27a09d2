//! The HTTP engines: OpenAI-compatible speech-to-text (`/v1/audio/transcriptions`) and
//! text-to-speech (`/v1/audio/speech`), and LibreTranslate-compatible `/translate`.

use super::traits::{Detected, Phrase, SpeechToText, TextToSpeech, Translator};
use crate::pipeline::media::{self, WORK_SPEC, wav::Wav};
use crate::pipeline::{Language, PipelineError, Result};
use async_trait::async_trait;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// How much of an error response's body an error keeps.
const ERROR_BODY_CHARS: usize = 500;

fn client(engine: &'static str, timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|source| PipelineError::Http {
            engine,
            url: String::new(),
            source,
        })
}

/// An OpenAI endpoint under a base URL given with or without its `/v1`.
fn openai_endpoint(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/{path}")
    } else {
        format!("{base}/v1/{path}")
    }
}

/// Sends a request and returns the body of a successful answer; any other status is
/// [`PipelineError::HttpStatus`] with the start of the body the server sent.
async fn send(
    engine: &'static str,
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<bytes::Bytes> {
    let http = |source| PipelineError::Http {
        engine,
        url: url.to_string(),
        source,
    };
    let response = request.send().await.map_err(http)?;
    let status = response.status();
    let body = response.bytes().await.map_err(http)?;
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body)
            .chars()
            .take(ERROR_BODY_CHARS)
            .collect();
        return Err(PipelineError::HttpStatus {
            engine,
            url: url.to_string(),
            status: status.as_u16(),
            body: text,
        });
    }
    Ok(body)
}

fn decode<T: serde::de::DeserializeOwned>(engine: &'static str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| PipelineError::BadOutput {
        engine,
        message: format!(
            "{e} in `{}`",
            String::from_utf8_lossy(body)
                .chars()
                .take(ERROR_BODY_CHARS)
                .collect::<String>()
        ),
    })
}

fn with_key(request: reqwest::RequestBuilder, key: &str) -> reqwest::RequestBuilder {
    if key.is_empty() {
        request
    } else {
        request.bearer_auth(key)
    }
}

/// Speech-to-text over an OpenAI-compatible transcription API (Whisper servers).
#[derive(Debug, Clone)]
pub struct OpenAiSpeechToText {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: String,
}

impl OpenAiSpeechToText {
    /// `base_url` is the server's root or its `/v1`.
    pub fn new(base_url: &str, model: &str, api_key: &str, timeout: Duration) -> Result<Self> {
        Ok(Self {
            client: client("openai speech-to-text", timeout)?,
            url: openai_endpoint(base_url, "audio/transcriptions"),
            model: model.to_string(),
            api_key: api_key.to_string(),
        })
    }
}

#[derive(Deserialize)]
struct Transcription {
    #[serde(default)]
    text: String,
    /// The language heard, by name (`english`) or code; servers send it with verbose_json.
    language: Option<String>,
    duration: Option<f64>,
    segments: Option<Vec<TranscriptionSegment>>,
}

#[derive(Deserialize)]
struct TranscriptionSegment {
    start: f64,
    end: f64,
    text: String,
}

fn ms(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0).round() as u64
}

impl OpenAiSpeechToText {
    /// Transcribes `wav`, in `language` or, without one, in the language the server detects.
    async fn request(&self, wav: &Path, language: Option<Language>) -> Result<Transcription> {
        let audio = tokio::fs::read(wav)
            .await
            .map_err(|e| PipelineError::io(format!("reading {}", wav.display()), e))?;
        let file = reqwest::multipart::Part::bytes(audio)
            .file_name("audio.wav")
            .mime_str("audio/wav")
            .expect("a valid media type");
        let mut form = reqwest::multipart::Form::new()
            .part("file", file)
            .text("model", self.model.clone())
            // verbose_json is the response format that carries segment timings.
            .text("response_format", "verbose_json")
            .text("timestamp_granularities[]", "segment");
        if let Some(language) = language {
            form = form.text("language", language.code());
        }
        let request = with_key(self.client.post(&self.url), &self.api_key).multipart(form);
        let body = send(self.name(), &self.url, request).await?;
        decode(self.name(), &body)
    }
}

#[async_trait]
impl SpeechToText for OpenAiSpeechToText {
    fn name(&self) -> &'static str {
        "openai speech-to-text"
    }

    async fn transcribe(&self, wav: &Path, language: Language) -> Result<Vec<Phrase>> {
        let answer = self.request(wav, Some(language)).await?;
        let phrases: Vec<Phrase> = match answer.segments {
            Some(segments) => segments
                .into_iter()
                .map(|s| Phrase {
                    start_ms: ms(s.start),
                    end_ms: ms(s.end.max(s.start)),
                    text: s.text.split_whitespace().collect::<Vec<_>>().join(" "),
                })
                .collect(),
            // A server without segments: the whole text over the whole audio.
            None => vec![Phrase {
                start_ms: 0,
                end_ms: match answer.duration {
                    Some(d) => ms(d),
                    None => Wav::read(wav).await?.duration_ms(),
                },
                text: answer.text.split_whitespace().collect::<Vec<_>>().join(" "),
            }],
        };
        Ok(phrases.into_iter().filter(|p| !p.text.is_empty()).collect())
    }

    async fn detect_language(&self, wav: &Path) -> Result<Detected> {
        let answer = self.request(wav, None).await?;
        let name = answer.language.ok_or_else(|| PipelineError::BadOutput {
            engine: self.name(),
            message: "no `language` in the answer to a request without one".into(),
        })?;
        let language = name.parse::<Language>().map_err(|_| {
            PipelineError::UnsupportedLanguage(format!(
                "the speech is in `{name}` (as {} heard it), not a language Octavia \
                 translates ({})",
                self.name(),
                Language::ALL.map(Language::code).join(", ")
            ))
        })?;
        Ok(Detected {
            language,
            probability: 1.0,
        })
    }
}

/// Translation over a LibreTranslate-compatible API.
#[derive(Debug, Clone)]
pub struct LibreTranslate {
    client: reqwest::Client,
    url: String,
    api_key: String,
}

impl LibreTranslate {
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<Self> {
        Ok(Self {
            client: client("libretranslate", timeout)?,
            url: format!("{}/translate", base_url.trim_end_matches('/')),
            api_key: api_key.to_string(),
        })
    }
}

/// LibreTranslate answers a list of texts with a list, and one text with a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Translated {
    Many(Vec<String>),
    One(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TranslateAnswer {
    translated_text: Translated,
}

#[async_trait]
impl Translator for LibreTranslate {
    fn name(&self) -> &'static str {
        "libretranslate"
    }

    async fn translate(
        &self,
        texts: &[String],
        from: Language,
        to: Language,
    ) -> Result<Vec<String>> {
        if from == to {
            return Err(PipelineError::UnsupportedLanguage(format!(
                "translation from {from} to {to}"
            )));
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = serde_json::json!({
            "q": texts.iter().map(|t| t.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>(),
            "source": from.code(),
            "target": to.code(),
            "format": "text",
        });
        if !self.api_key.is_empty() {
            body["api_key"] = self.api_key.clone().into();
        }
        let request = self.client.post(&self.url).json(&body);
        let answer: TranslateAnswer =
            decode(self.name(), &send(self.name(), &self.url, request).await?)?;
        let out = match answer.translated_text {
            Translated::Many(list) => list,
            Translated::One(text) => vec![text],
        };
        if out.len() != texts.len() {
            return Err(PipelineError::BadOutput {
                engine: self.name(),
                message: format!("{} translations for {} texts", out.len(), texts.len()),
            });
        }
        Ok(out)
    }
}

/// Text-to-speech over an OpenAI-compatible speech API.
#[derive(Debug, Clone)]
pub struct OpenAiTextToSpeech {
    client: reqwest::Client,
    url: String,
    model: String,
    voice: String,
    api_key: String,
}

impl OpenAiTextToSpeech {
    pub fn new(
        base_url: &str,
        model: &str,
        voice: &str,
        api_key: &str,
        timeout: Duration,
    ) -> Result<Self> {
        Ok(Self {
            client: client("openai text-to-speech", timeout)?,
            url: openai_endpoint(base_url, "audio/speech"),
            model: model.to_string(),
            voice: voice.to_string(),
            api_key: api_key.to_string(),
        })
    }
}

#[async_trait]
impl TextToSpeech for OpenAiTextToSpeech {
    fn name(&self) -> &'static str {
        "openai text-to-speech"
    }

    /// The language is not sent: these services speak the language the text is in.
    async fn synthesize(&self, text: &str, _language: Language, out: &Path) -> Result<()> {
        if text.trim().is_empty() {
            return Wav {
                spec: WORK_SPEC,
                data: Vec::new(),
            }
            .write(out)
            .await;
        }
        let body = serde_json::json!({
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": "wav",
        });
        let request = with_key(self.client.post(&self.url), &self.api_key).json(&body);
        let audio = send(self.name(), &self.url, request).await?;
        let dir = tempfile::Builder::new()
            .prefix("octavia-tts-")
            .tempdir()
            .map_err(|e| PipelineError::io("creating a scratch directory", e))?;
        // Whatever format the server chose, ffmpeg reads it by its content.
        let raw = dir.path().join("speech");
        tokio::fs::write(&raw, &audio)
            .await
            .map_err(|e| PipelineError::io(format!("writing {}", raw.display()), e))?;
        media::to_work_wav(&raw, out).await.map_err(|e| match e {
            PipelineError::InvalidMedia { reason, .. } => PipelineError::BadOutput {
                engine: "openai text-to-speech",
                message: format!("the answer is not audio: {reason}"),
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_with_or_without_v1() {
        assert_eq!(
            openai_endpoint("http://h:8000/", "audio/speech"),
            "http://h:8000/v1/audio/speech"
        );
        assert_eq!(
            openai_endpoint("https://api.openai.com/v1", "audio/transcriptions"),
            "https://api.openai.com/v1/audio/transcriptions"
        );
    }
}
