//! The offline engines: pocketsphinx, apertium and espeak-ng, as the worker runs them.

use super::{PAUSE_MS, SENTENCES, must, scratch, wav_of};
use octavia::Config;
use octavia::pipeline::media::{self, WORK_SPEC, Window};
use octavia::pipeline::{Engines, Language, PipelineError};

fn engines() -> Engines {
    must(Engines::from_config(&Config::default()))
}

#[tokio::test]
async fn every_default_engine_is_installed() {
    // Fails with the packages to install when something is missing.
    must(engines().check().await);
}

#[tokio::test]
async fn pocketsphinx_hears_some_of_the_spoken_words_at_their_times() {
    let dir = scratch();
    let video = dir.path().join("talk.mp4");
    let speech = must(media::generate_video(&SENTENCES, Language::English, PAUSE_MS, &video).await);
    // The second half of the video, as a segment would see it.
    let window = Window::new(speech.sentences[2].0.start_ms - 300, speech.duration_ms);
    let wav = dir.path().join("segment.wav");
    must(media::extract_speech(&video, window, &wav).await);
    let phrases = must(
        engines()
            .speech_to_text
            .transcribe(&wav, Language::English)
            .await,
    );

    let heard: Vec<String> = phrases
        .iter()
        .flat_map(|p| p.text.split_whitespace().map(str::to_lowercase))
        .collect();
    // pocketsphinx's general English model hears espeak-ng's robotic voice badly: it
    // gets a few content words right, so the test asks for a few, not a transcript.
    let expected = [
        "please", "call", "me", "tomorrow", "morning", "one", "two", "three", "four", "five",
    ];
    let found: Vec<&&str> = expected
        .iter()
        .filter(|w| heard.iter().any(|h| h == **w))
        .collect();
    assert!(
        found.len() >= 3,
        "heard {heard:?}, of the expected {expected:?}"
    );
    for pair in phrases.windows(2) {
        assert!(pair[0].end_ms <= pair[1].start_ms, "{phrases:?}");
    }
    let last = phrases.last().unwrap();
    assert!(last.end_ms <= window.duration_ms(), "{phrases:?}");
    // Phrases are where the sentences are, relative to the window.
    let first_sentence = speech.sentences[2].0;
    let start = phrases[0].to_cue(window.start_ms).start_ms;
    assert!(
        start.abs_diff(first_sentence.start_ms) < 700,
        "first phrase at {start} ms, sentence at {first_sentence:?}"
    );

    let e = engines()
        .speech_to_text
        .transcribe(&wav, Language::Spanish)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PipelineError::UnsupportedLanguage(_)) && !e.is_retryable(),
        "{e}"
    );
}

#[tokio::test]
async fn pocketsphinx_hears_nothing_in_silence() {
    let dir = scratch();
    let work = dir.path().join("silence.wav");
    must(media::silence(2_000, &work).await);
    let wav = dir.path().join("silence16k.wav");
    must(media::extract_speech(&work, Window::new(0, 2_000), &wav).await);
    let phrases = must(
        engines()
            .speech_to_text
            .transcribe(&wav, Language::English)
            .await,
    );
    assert!(phrases.is_empty(), "{phrases:?}");
}

#[tokio::test]
async fn apertium_translates_a_batch_line_for_line() {
    let texts: Vec<String> = [
        "Hello, my name is John.",
        "I live in a small house near the river.",
        "",
        // Two lines of one cue are one text; a line break is not a sentence end.
        "My name is John\nI live here",
        "The weather is very good today.",
    ]
    .map(String::from)
    .to_vec();
    let spanish = must(
        engines()
            .translator
            .translate(&texts, Language::English, Language::Spanish)
            .await,
    );
    assert_eq!(
        spanish,
        [
            "Hola, mi nombre es John.",
            "Vivo en una casa pequeña se acerca el río.",
            "",
            "Mi nombre es Juan I vive aquí",
            "El tiempo es muy bien hoy.",
        ]
    );
    let english = must(
        engines()
            .translator
            .translate(
                &["Hola, ¿cómo estás?".into(), "El perro come.".into()],
                Language::Spanish,
                Language::English,
            )
            .await,
    );
    assert_eq!(english, ["Hello, how you are?", "The dog eats."]);
    let e = engines()
        .translator
        .translate(&texts, Language::Spanish, Language::Spanish)
        .await
        .unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(
        must(
            engines()
                .translator
                .translate(&[], Language::English, Language::Spanish)
                .await
        ),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn espeak_speaks_in_the_working_format() {
    let dir = scratch();
    let out = dir.path().join("hola.wav");
    let tts = engines().text_to_speech;
    must(
        tts.synthesize("-Hola, ¿qué tal?", Language::Spanish, &out)
            .await,
    );
    let wav = wav_of(&out).await;
    assert_eq!(wav.spec, WORK_SPEC);
    assert!(wav.duration_ms() > 500, "{} ms", wav.duration_ms());
    let info = must(media::probe(&out).await);
    assert_eq!(info.audio().unwrap().codec, "pcm_s16le");

    must(tts.synthesize("  ", Language::English, &out).await);
    assert_eq!(wav_of(&out).await.frames(), 0);
}
