//! The HTTP engines against a local server with the services' endpoint shapes: what they
//! send is recorded and checked, and their answers (good, bad, slow) are made up here.

use super::{must, scratch, wav_of};
use axum::Router;
use axum::extract::Multipart;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use octavia::Config;
use octavia::pipeline::media::WORK_SPEC;
use octavia::pipeline::media::wav::{Wav, WavSpec};
use octavia::pipeline::{Engines, Language, PipelineError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What the server was sent: form fields or JSON, and the Authorization header.
#[derive(Debug, Default, Clone)]
struct Seen {
    fields: BTreeMap<String, String>,
    file: Option<(String, String, Vec<u8>)>,
    json: Option<Value>,
    authorization: Option<String>,
}

type Record = Arc<Mutex<Vec<Seen>>>;

/// Serves `router` on a free local port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string())
}

/// A Whisper-like transcription endpoint answering `answer`.
fn transcription_server(record: Record, answer: Value) -> Router {
    Router::new().route(
        "/v1/audio/transcriptions",
        post(move |headers: HeaderMap, mut form: Multipart| async move {
            let mut seen = Seen {
                authorization: authorization(&headers),
                ..Seen::default()
            };
            while let Some(field) = form.next_field().await.unwrap() {
                let name = field.name().unwrap().to_string();
                match field.file_name().map(str::to_string) {
                    Some(file_name) => {
                        let mime = field.content_type().unwrap_or("").to_string();
                        let bytes = field.bytes().await.unwrap().to_vec();
                        seen.file = Some((file_name, mime, bytes));
                    }
                    None => {
                        seen.fields.insert(name, field.text().await.unwrap());
                    }
                }
            }
            record.lock().unwrap().push(seen);
            axum::Json(answer)
        }),
    )
}

/// Configuration with every engine pointed at `url`, with API keys.
fn config(url: &str) -> Config {
    let mut config = Config::default();
    let e = &mut config.engines;
    e.speech_to_text = "openai".into();
    e.speech_to_text_url = url.into();
    e.speech_to_text_api_key = "stt-key".into();
    e.translator = "libretranslate".into();
    e.translator_url = format!("{url}/");
    e.translator_api_key = "lt-key".into();
    e.text_to_speech = "openai".into();
    e.text_to_speech_url = format!("{url}/v1");
    e.text_to_speech_api_key = "tts-key".into();
    e.http_timeout_seconds = 2;
    config
}

async fn one_second_wav(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("speech16k.wav");
    let spec = WavSpec {
        sample_rate: 16_000,
        channels: 1,
    };
    must(
        Wav {
            spec,
            data: vec![0; 32_000],
        }
        .write(&path)
        .await,
    );
    path
}

#[tokio::test]
async fn openai_transcription_sends_the_audio_and_reads_segment_timings() {
    let record = Record::default();
    let answer = json!({
        "task": "transcribe", "language": "english", "duration": 1.0,
        "text": "Hello there. General Kenobi.",
        "segments": [
            {"id": 0, "start": 0.0, "end": 0.42, "text": " Hello there."},
            {"id": 1, "start": 0.5, "end": 0.98, "text": "  General   Kenobi. "},
            {"id": 2, "start": 0.98, "end": 1.0, "text": " "}
        ]
    });
    let url = serve(transcription_server(record.clone(), answer)).await;
    let dir = scratch();
    let wav = one_second_wav(dir.path()).await;
    let engines = must(Engines::from_config(&config(&url)));
    let phrases = must(
        engines
            .speech_to_text
            .transcribe(&wav, Language::English)
            .await,
    );
    let got: Vec<(u64, u64, &str)> = phrases
        .iter()
        .map(|p| (p.start_ms, p.end_ms, p.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [(0, 420, "Hello there."), (500, 980, "General Kenobi.")]
    );

    let seen = record.lock().unwrap()[0].clone();
    assert_eq!(seen.authorization.as_deref(), Some("Bearer stt-key"));
    assert_eq!(seen.fields["model"], "whisper-1");
    assert_eq!(seen.fields["language"], "en");
    assert_eq!(seen.fields["response_format"], "verbose_json");
    let (name, mime, bytes) = seen.file.unwrap();
    assert_eq!((name.as_str(), mime.as_str()), ("audio.wav", "audio/wav"));
    assert_eq!(bytes, std::fs::read(&wav).unwrap());
}

#[tokio::test]
async fn a_transcription_without_segments_spans_the_whole_audio() {
    let record = Record::default();
    let url = serve(transcription_server(
        record,
        json!({"text": " Just text. "}),
    ))
    .await;
    let dir = scratch();
    let wav = one_second_wav(dir.path()).await;
    let engines = must(Engines::from_config(&config(&url)));
    let phrases = must(
        engines
            .speech_to_text
            .transcribe(&wav, Language::Spanish)
            .await,
    );
    assert_eq!(phrases.len(), 1);
    assert_eq!((phrases[0].start_ms, phrases[0].end_ms), (0, 1_000));
    assert_eq!(phrases[0].text, "Just text.");
}

#[tokio::test]
async fn libretranslate_translates_a_batch_in_one_request() {
    let record = Record::default();
    let seen = record.clone();
    let router = Router::new().route(
        "/translate",
        post(move |axum::Json(body): axum::Json<Value>| async move {
            seen.lock().unwrap().push(Seen {
                json: Some(body.clone()),
                ..Seen::default()
            });
            let q = body["q"].as_array().unwrap();
            if q.len() == 3 {
                // One short: the client must notice.
                return axum::Json(json!({"translatedText": ["a", "b"]}));
            }
            let out: Vec<String> = q
                .iter()
                .map(|t| format!("[es] {}", t.as_str().unwrap()))
                .collect();
            axum::Json(json!({"translatedText": out}))
        }),
    );
    let url = serve(router).await;
    let engines = must(Engines::from_config(&config(&url)));
    let texts = ["Hello.".to_string(), "Two\nlines.".to_string()];
    let out = must(
        engines
            .translator
            .translate(&texts, Language::English, Language::Spanish)
            .await,
    );
    assert_eq!(out, ["[es] Hello.", "[es] Two lines."]);
    let body = record.lock().unwrap()[0].json.clone().unwrap();
    assert_eq!(
        body,
        json!({"q": ["Hello.", "Two lines."], "source": "en", "target": "es",
               "format": "text", "api_key": "lt-key"})
    );
    assert_eq!(record.lock().unwrap().len(), 1, "one request for the batch");

    let three = ["a", "b", "c"].map(String::from);
    let e = engines
        .translator
        .translate(&three, Language::Spanish, Language::English)
        .await
        .unwrap_err();
    assert!(matches!(e, PipelineError::BadOutput { .. }), "{e}");
}

#[tokio::test]
async fn openai_speech_is_converted_to_the_working_format() {
    let record = Record::default();
    let seen = record.clone();
    // The server answers 22.05 kHz WAV, as some compatible servers do whatever was asked.
    let audio = Wav {
        spec: WavSpec {
            sample_rate: 22_050,
            channels: 1,
        },
        data: (0..22_050u32)
            .flat_map(|i| ((i % 100) as i16 * 100).to_le_bytes())
            .collect(),
    };
    let dir = scratch();
    let served = dir.path().join("served.wav");
    must(audio.write(&served).await);
    let bytes = std::fs::read(&served).unwrap();
    let router = Router::new().route(
        "/v1/audio/speech",
        post(
            move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                seen.lock().unwrap().push(Seen {
                    json: Some(body.clone()),
                    authorization: authorization(&headers),
                    ..Seen::default()
                });
                if body["input"] == "not audio" {
                    return (StatusCode::OK, b"<html>hello</html>".to_vec()).into_response();
                }
                ([("content-type", "audio/wav")], bytes).into_response()
            },
        ),
    );
    let url = serve(router).await;
    let engines = must(Engines::from_config(&config(&url)));
    let out = dir.path().join("speech.wav");
    must(
        engines
            .text_to_speech
            .synthesize("Hola, ¿qué tal?", Language::Spanish, &out)
            .await,
    );
    let wav = wav_of(&out).await;
    assert_eq!(wav.spec, WORK_SPEC);
    assert!(
        wav.duration_ms().abs_diff(1_000) <= 5,
        "{}",
        wav.duration_ms()
    );
    let seen = record.lock().unwrap()[0].clone();
    assert_eq!(seen.authorization.as_deref(), Some("Bearer tts-key"));
    assert_eq!(
        seen.json.unwrap(),
        json!({"model": "tts-1", "input": "Hola, ¿qué tal?", "voice": "alloy",
               "response_format": "wav"})
    );

    let e = engines
        .text_to_speech
        .synthesize("not audio", Language::English, &out)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PipelineError::BadOutput { .. }) && !e.is_retryable(),
        "{e}"
    );
}

#[tokio::test]
async fn http_errors_say_whether_to_retry() {
    let router = Router::new().route(
        "/translate",
        post(|axum::Json(body): axum::Json<Value>| async move {
            match body["q"][0].as_str().unwrap() {
                "busy" => (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response(),
                "slow" => {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    StatusCode::OK.into_response()
                }
                _ => (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "target language not supported"})),
                )
                    .into_response(),
            }
        }),
    );
    let url = serve(router).await;
    let engines = must(Engines::from_config(&config(&url)));
    let translate = |text: &str| {
        let engines = engines.clone();
        let texts = vec![text.to_string()];
        async move {
            engines
                .translator
                .translate(&texts, Language::English, Language::Spanish)
                .await
                .unwrap_err()
        }
    };
    let e = translate("busy").await;
    assert!(
        e.is_retryable() && e.to_string().contains("503") && e.to_string().contains("try later"),
        "{e}"
    );
    let e = translate("bad").await;
    assert!(
        !e.is_retryable() && e.to_string().contains("target language not supported"),
        "{e}"
    );
    let e = translate("slow").await;
    assert!(
        matches!(e, PipelineError::Http { .. }) && e.is_retryable(),
        "{e}"
    );

    // Nothing listening: a closed port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let engines = must(Engines::from_config(&config(&closed)));
    let e = engines
        .translator
        .translate(&["x".to_string()], Language::English, Language::Spanish)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PipelineError::Http { .. }) && e.is_retryable(),
        "{e}"
    );
}
