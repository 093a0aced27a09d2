//! The offline engines: whisper, pocketsphinx, apertium and espeak-ng, as the worker runs
//! them.

use super::{PAUSE_MS, SENTENCES, SPANISH_SENTENCES, must, scratch, wav_of, wer_of};
use octavia::Config;
use octavia::pipeline::media::{self, WORK_SPEC, Window};
use octavia::pipeline::{Engines, Language, PipelineError};
use std::path::Path;

fn engines() -> Engines {
    must(Engines::from_config(&Config::default()))
}

fn pocketsphinx() -> Engines {
    let mut config = Config::default();
    config.engines.speech_to_text = "pocketsphinx".into();
    must(Engines::from_config(&config))
}

#[tokio::test]
async fn every_default_engine_is_installed() {
    // Fails with the packages to install when something is missing.
    must(engines().check().await);
}

/// Speech of `sentences` in `language` as a segment's 16 kHz WAV, and where each is.
async fn speech(
    dir: &Path,
    name: &str,
    sentences: &[&str],
    language: Language,
) -> (std::path::PathBuf, Vec<Window>) {
    let spoken = dir.join(format!("{name}.wav"));
    let speech = must(media::generate_speech_wav(sentences, language, PAUSE_MS, &spoken).await);
    let wav = dir.join(format!("{name}-16k.wav"));
    must(media::extract_speech(&spoken, Window::new(0, speech.duration_ms), &wav).await);
    (wav, speech.sentences.iter().map(|(w, _)| *w).collect())
}

#[tokio::test]
async fn whisper_hears_english_words_and_where_each_sentence_is() {
    let dir = scratch();
    let (wav, sentences) = speech(dir.path(), "en", &SENTENCES, Language::English).await;
    let engines = engines();
    let phrases = must(
        engines
            .speech_to_text
            .transcribe(&wav, Language::English)
            .await,
    );
    let heard: Vec<String> = phrases.iter().map(|p| p.text.clone()).collect();
    let wer = wer_of(&SENTENCES, &heard);
    assert!(wer <= 0.08, "WER {wer:.3}: heard {heard:?}");
    // One phrase per sentence, starting and ending where its voice does.
    assert_eq!(phrases.len(), sentences.len(), "{phrases:?}");
    for (phrase, sentence) in phrases.iter().zip(&sentences) {
        assert!(
            phrase.start_ms.abs_diff(sentence.start_ms) <= 300
                && phrase.end_ms.abs_diff(sentence.end_ms) <= 300,
            "{phrase:?} for the sentence at {sentence:?}"
        );
    }
    // Readable: capitals and punctuation kept.
    assert!(heard[0].starts_with("The weather"), "{heard:?}");
    assert!(heard[0].ends_with('.'), "{heard:?}");
}

#[tokio::test]
async fn whisper_hears_spanish_and_tells_the_languages_apart() {
    let dir = scratch();
    let (es, _) = speech(dir.path(), "es", &SPANISH_SENTENCES, Language::Spanish).await;
    let (en, _) = speech(dir.path(), "en", &SENTENCES, Language::English).await;
    let engines = engines();
    let stt = &engines.speech_to_text;
    let phrases = must(stt.transcribe(&es, Language::Spanish).await);
    let heard: Vec<String> = phrases.iter().map(|p| p.text.clone()).collect();
    let wer = wer_of(&SPANISH_SENTENCES, &heard);
    assert!(wer <= 0.35, "WER {wer:.3}: heard {heard:?}");

    let detected = must(stt.detect_language(&es).await);
    assert_eq!(detected.language, Language::Spanish, "{detected:?}");
    assert!(detected.probability > 0.7, "{detected:?}");
    let detected = must(stt.detect_language(&en).await);
    assert_eq!(detected.language, Language::English, "{detected:?}");

    // A language Octavia does not translate is refused, not heard as another.
    let spoken = dir.path().join("fr-22k.wav");
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "fr", "-w"])
        .arg(&spoken)
        .arg("Bonjour, je voudrais un café s'il vous plaît. Il fait très beau aujourd'hui.")
        .status()
        .expect("espeak-ng runs (apt-get install -y espeak-ng)");
    assert!(status.success());
    let fr = dir.path().join("fr.wav");
    let length = wav_of(&spoken).await.duration_ms();
    must(media::extract_speech(&spoken, Window::new(0, length), &fr).await);
    let e = stt.detect_language(&fr).await.unwrap_err();
    assert!(
        matches!(e, PipelineError::UnsupportedLanguage(_)) && !e.is_retryable(),
        "{e}"
    );
    assert!(e.to_string().contains("`fr`"), "{e}");
}

#[tokio::test]
async fn whisper_names_what_is_missing_and_the_command_that_installs_it() {
    let mut config = Config::default();
    config.engines.whisper_python = "/nonexistent/python".into();
    config.engines.whisper_english_model = "/nonexistent/tiny.en".into();
    let e = must(Engines::from_config(&config))
        .check()
        .await
        .unwrap_err();
    let message = e.to_string();
    for part in [
        "/nonexistent/python",
        "engines.whisper_python",
        "/nonexistent/tiny.en",
        "no model.bin",
        "bin/deps --demo",
    ] {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
    // An interpreter without faster-whisper: the helper says so when it starts.
    let mut config = Config::default();
    config.engines.whisper_python = "/usr/bin/python3".into();
    let e = must(Engines::from_config(&config))
        .check()
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("faster-whisper in /usr/bin/python3")
            && message.contains("bin/deps --demo"),
        "{message}"
    );
}

#[tokio::test]
async fn a_whisper_request_that_fails_says_why_and_the_next_one_is_heard() {
    let dir = scratch();
    let engines = engines();
    let stt = &engines.speech_to_text;
    let missing = dir.path().join("missing.wav");
    let e = stt
        .transcribe(&missing, Language::English)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("whisper helper") && e.to_string().contains("missing.wav"),
        "{e}"
    );
    assert!(e.is_retryable(), "{e}");
    let (wav, _) = speech(dir.path(), "en", &SENTENCES[..1], Language::English).await;
    let phrases = must(stt.transcribe(&wav, Language::English).await);
    assert_eq!(phrases.len(), 1, "{phrases:?}");
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
        pocketsphinx()
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

    let e = pocketsphinx()
        .speech_to_text
        .transcribe(&wav, Language::Spanish)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PipelineError::UnsupportedLanguage(_)) && !e.is_retryable(),
        "{e}"
    );
    let e = pocketsphinx()
        .speech_to_text
        .detect_language(&wav)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PipelineError::UnsupportedLanguage(_)) && !e.is_retryable(),
        "{e}"
    );
}

#[tokio::test]
async fn speech_to_text_hears_nothing_in_silence() {
    let dir = scratch();
    let work = dir.path().join("silence.wav");
    must(media::silence(2_000, &work).await);
    let wav = dir.path().join("silence16k.wav");
    must(media::extract_speech(&work, Window::new(0, 2_000), &wav).await);
    for engines in [pocketsphinx(), engines()] {
        let phrases = must(
            engines
                .speech_to_text
                .transcribe(&wav, Language::English)
                .await,
        );
        assert!(
            phrases.is_empty(),
            "{}: {phrases:?}",
            engines.speech_to_text.name()
        );
    }
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
