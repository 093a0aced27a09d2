//! ffmpeg operations on generated speech and video.

use super::{PAUSE_MS, SENTENCES, must, scratch, wav_of};
use octavia::pipeline::media::{
    self, AudioFormat, Clip, CutOptions, FitOptions, MuxRequest, StreamKind, WORK_SPEC, Window,
};
use octavia::pipeline::subtitles::{self, Cue, SubtitleFormat};
use octavia::pipeline::{Language, PipelineError};

#[tokio::test]
async fn generated_video_is_h264_and_aac_as_long_as_its_speech() {
    let dir = scratch();
    let video = dir.path().join("talk.mp4");
    let speech = must(media::generate_video(&SENTENCES, Language::English, PAUSE_MS, &video).await);
    assert_eq!(speech.sentences.len(), SENTENCES.len());
    assert!(speech.duration_ms > 8_000, "{speech:?}");

    let info = must(media::probe(&video).await);
    assert!(info.has_video() && info.has_audio(), "{info:?}");
    assert_eq!(info.video().unwrap().codec, "h264");
    assert_eq!(info.video().unwrap().width, Some(320));
    assert_eq!(info.audio().unwrap().codec, "aac");
    assert!(
        info.duration_ms.abs_diff(speech.duration_ms) <= 100,
        "{} vs {}",
        info.duration_ms,
        speech.duration_ms
    );

    let audio = dir.path().join("talk.mp3");
    must(
        media::generate_audio(
            &SENTENCES[..1],
            Language::English,
            PAUSE_MS,
            AudioFormat::Mp3,
            &audio,
        )
        .await,
    );
    let info = must(media::probe(&audio).await);
    assert!(!info.has_video() && info.has_audio());
    assert_eq!(info.audio().unwrap().codec, "mp3");
}

#[tokio::test]
async fn probe_refuses_what_is_not_media() {
    let dir = scratch();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "Dear diary, this is not a video.\n").unwrap();
    let e = media::probe(&text).await.unwrap_err();
    assert!(matches!(e, PipelineError::InvalidMedia { .. }), "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("not a media file"), "{e}");

    let srt = dir.path().join("subs.srt");
    std::fs::write(&srt, "1\n00:00:01,000 --> 00:00:02,000\nHi\n").unwrap();
    let e = media::probe(&srt).await.unwrap_err();
    assert!(e.to_string().contains("no audio or video stream"), "{e}");

    // Operations that run ffmpeg straight away blame the input too, not the machine.
    let wav = dir.path().join("out.wav");
    for input in [&text, &srt] {
        let e = media::extract_speech(input, Window::new(0, 1_000), &wav)
            .await
            .unwrap_err();
        assert!(matches!(e, PipelineError::InvalidMedia { .. }), "{e}");
        let e = media::detect_silences(input, 1_000, &CutOptions::default())
            .await
            .unwrap_err();
        assert!(!e.is_retryable(), "{e}");
    }

    let e = media::probe(&dir.path().join("missing.mp4"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, PipelineError::Io { .. }) && e.is_retryable(),
        "{e}"
    );
}

#[tokio::test]
async fn cuts_fall_in_the_pauses_between_sentences() {
    let dir = scratch();
    let wav = dir.path().join("speech.wav");
    let speech =
        must(media::generate_speech_wav(&SENTENCES, Language::English, PAUSE_MS, &wav).await);
    let options = CutOptions::target(4_000);
    let silences = must(media::detect_silences(&wav, speech.duration_ms, &options).await);
    let windows = media::plan_windows(speech.duration_ms, &silences, &options);

    assert!(windows.len() >= 3, "{windows:?}");
    assert_eq!(windows[0].start_ms, 0);
    assert_eq!(windows.last().unwrap().end_ms, speech.duration_ms);
    for pair in windows.windows(2) {
        assert_eq!(
            pair[0].end_ms, pair[1].start_ms,
            "no gap, no overlap: {windows:?}"
        );
        let cut = pair[0].end_ms;
        assert!(
            silences
                .iter()
                .any(|s| s.start_ms <= cut && cut <= s.end_ms),
            "cut at {cut} is in no detected silence: {silences:?}"
        );
        assert!(
            speech
                .pauses()
                .iter()
                .any(|p| p.start_ms <= cut && cut <= p.end_ms),
            "cut at {cut} splits a sentence: {:?}",
            speech.sentences
        );
    }
    assert_eq!(
        must(media::speech_windows(&wav, speech.duration_ms, &options).await),
        windows
    );
}

#[tokio::test]
async fn extracted_windows_are_exactly_as_long_as_asked() {
    let dir = scratch();
    let video = dir.path().join("talk.mp4");
    must(media::generate_video(&SENTENCES[..2], Language::English, PAUSE_MS, &video).await);
    let window = Window::new(1_000, 3_500);
    let speech = dir.path().join("speech16k.wav");
    must(media::extract_speech(&video, window, &speech).await);
    let wav = wav_of(&speech).await;
    assert_eq!((wav.spec.sample_rate, wav.spec.channels), (16_000, 1));
    assert_eq!(wav.frames(), 40_000);

    let original = dir.path().join("original.wav");
    must(media::extract_audio(&video, window, &original).await);
    let wav = wav_of(&original).await;
    assert_eq!(wav.spec.sample_rate, 48_000);
    assert_eq!(wav.frames(), 120_000);
    assert!(wav.data.iter().any(|&b| b != 0), "the window holds speech");

    // From a WAV the window is exactly those samples: the seek is sample-accurate.
    let source = dir.path().join("source.wav");
    must(media::generate_speech_wav(&SENTENCES[..1], Language::English, 500, &source).await);
    must(media::extract_audio(&source, Window::new(1_000, 2_500), &original).await);
    let (whole, part) = (wav_of(&source).await, wav_of(&original).await);
    assert_eq!(part.spec, WORK_SPEC);
    assert!(
        part.data == whole.data[2 * 24_000..2 * 60_000],
        "samples 24000..60000"
    );

    // A window past the end of the audio is padded, not short.
    let info = must(media::probe(&video).await);
    let tail = Window::new(info.duration_ms - 500, info.duration_ms + 500);
    must(media::extract_speech(&video, tail, &speech).await);
    assert_eq!(wav_of(&speech).await.frames(), 16_000);
}

#[tokio::test]
async fn fitting_speech_gives_the_exact_target_duration() {
    let dir = scratch();
    let wav = dir.path().join("speech.wav");
    let speech =
        must(media::generate_speech_wav(&SENTENCES[..1], Language::English, 0, &wav).await);
    let long = speech.duration_ms;
    let out = dir.path().join("fit.wav");
    // Too long by a half: sped up. Far too long: sped up to the limit, then cut.
    // Too short: padded, not slowed down. Slowing allowed: slowed.
    let cases = [
        (long * 2 / 3, FitOptions::default()),
        (long / 4, FitOptions::default()),
        (long * 2, FitOptions::default()),
        (
            long * 5 / 4,
            FitOptions {
                min_tempo: 0.5,
                max_tempo: 2.0,
            },
        ),
        (
            1_234,
            FitOptions {
                min_tempo: 1.0,
                max_tempo: 4.0,
            },
        ),
    ];
    for (target, options) in cases {
        let fit = must(media::fit_to_duration(&wav, target, &options, &out).await);
        let fitted = wav_of(&out).await;
        assert_eq!(fitted.spec, WORK_SPEC);
        assert_eq!(
            fitted.frames(),
            WORK_SPEC.frames_in(target),
            "{target} ms: {fit:?}"
        );
        assert!(
            fit.tempo >= options.min_tempo && fit.tempo <= options.max_tempo,
            "{fit:?}"
        );
    }
    let fit = must(media::fit_to_duration(&wav, long / 4, &FitOptions::default(), &out).await);
    assert_eq!(fit.tempo, 2.0);
    assert!(fit.trimmed_ms > 0, "{fit:?}");
    let fit = must(media::fit_to_duration(&wav, long * 2, &FitOptions::default(), &out).await);
    assert_eq!(fit.tempo, 1.0);
    assert!(fit.padded_ms.abs_diff(long) <= 2, "{fit:?}");
    assert!(
        media::fit_to_duration(&wav, 0, &FitOptions::default(), &out)
            .await
            .is_err()
    );
    // Nothing said (an empty cue): the slot is silence.
    let empty = dir.path().join("empty.wav");
    must(media::silence(0, &empty).await);
    let fit = must(media::fit_to_duration(&empty, 700, &FitOptions::default(), &out).await);
    assert_eq!((fit.speech_ms, fit.padded_ms), (0, 700));
    assert_eq!(wav_of(&out).await.frames(), WORK_SPEC.frames_in(700));
}

#[tokio::test]
async fn silence_concatenation_and_placement_are_sample_exact() {
    let dir = scratch();
    let (a, b) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    must(media::silence(1_000, &a).await);
    must(media::generate_speech_wav(&SENTENCES[3..], Language::English, 0, &b).await);
    let b_frames = wav_of(&b).await.frames();
    assert_eq!(wav_of(&a).await.frames(), 24_000);

    let joined = dir.path().join("joined.wav");
    let ms = must(media::concat_wav(&[a.clone(), b.clone(), a.clone()], &joined).await);
    let wav = wav_of(&joined).await;
    assert_eq!(wav.frames(), 48_000 + b_frames);
    assert_eq!(ms, WORK_SPEC.ms_of(48_000 + b_frames));

    // Clips at offsets, one in another format (converted), one running into the next.
    let espeak_native = dir.path().join("native.wav");
    media::encode_audio(&b, AudioFormat::Wav, &espeak_native)
        .await
        .unwrap();
    let placed = dir.path().join("placed.wav");
    let clips = [
        Clip {
            offset_ms: 5_000,
            path: b.clone(),
        },
        Clip {
            offset_ms: 500,
            path: b.clone(),
        },
        Clip {
            offset_ms: 1_000,
            path: joined.clone(),
        },
    ];
    let cut = must(media::place_clips(&clips, 9_000, &placed).await);
    let wav = wav_of(&placed).await;
    assert_eq!(wav.frames(), 9 * 24_000);
    assert!(cut > 0, "the clip at 500 ms runs into the one at 1000 ms");
    // Nothing before the first offset: silence.
    assert!(wav.data[..2 * 12_000].iter().all(|&s| s == 0));
}

#[tokio::test]
async fn mux_copies_the_picture_and_keeps_both_audio_tracks_and_subtitles() {
    let dir = scratch();
    let video = dir.path().join("talk.mp4");
    let speech =
        must(media::generate_video(&SENTENCES[..2], Language::English, PAUSE_MS, &video).await);
    let dub = dir.path().join("dub.wav");
    must(media::silence(speech.duration_ms, &dub).await);
    let subs = dir.path().join("subs.srt");
    let cues: Vec<Cue> = speech
        .sentences
        .iter()
        .map(|(w, text)| Cue::new(w.start_ms, w.end_ms, text.clone()))
        .collect();
    std::fs::write(&subs, subtitles::write(&cues, SubtitleFormat::Srt)).unwrap();

    for name in ["dubbed.mp4", "dubbed.mkv"] {
        let out = dir.path().join(name);
        must(
            media::mux_video(&MuxRequest {
                video: &video,
                dubbed_audio: &dub,
                dubbed_language: Language::Spanish,
                original_language: Some(Language::English),
                subtitles: Some((&subs, Language::Spanish)),
                out: &out,
            })
            .await,
        );
        let input = must(media::probe(&video).await);
        let info = must(media::probe(&out).await);
        let streams: Vec<(&StreamKind, &str)> = info
            .streams
            .iter()
            .map(|s| (&s.kind, s.codec.as_str()))
            .collect();
        let subtitle_codec = if name.ends_with("mp4") {
            "mov_text"
        } else {
            "subrip"
        };
        assert_eq!(
            streams,
            [
                (&StreamKind::Video, "h264"),
                (&StreamKind::Audio, "aac"),
                (&StreamKind::Audio, "aac"),
                (&StreamKind::Subtitle, subtitle_codec),
            ],
            "{name}"
        );
        let languages: Vec<Option<&str>> = info.streams[1..]
            .iter()
            .map(|s| s.language.as_deref())
            .collect();
        assert_eq!(languages, [Some("spa"), Some("eng"), Some("spa")], "{name}");
        assert!(
            info.duration_ms.abs_diff(input.duration_ms) <= 100,
            "{name}: {} vs {}",
            info.duration_ms,
            input.duration_ms
        );
        assert_eq!(
            must(media::count_video_frames(&out).await),
            must(media::count_video_frames(&video).await),
            "{name}: the picture is copied whole"
        );
    }
    let e = media::mux_video(&MuxRequest {
        video: &video,
        dubbed_audio: &dub,
        dubbed_language: Language::Spanish,
        original_language: None,
        subtitles: None,
        out: &dir.path().join("dubbed.avi"),
    })
    .await
    .unwrap_err();
    assert!(!e.is_retryable(), "{e}");
}

#[tokio::test]
async fn audio_outputs_are_encoded_in_the_requested_format() {
    let dir = scratch();
    let wav = dir.path().join("speech.wav");
    let speech =
        must(media::generate_speech_wav(&SENTENCES[..1], Language::English, 300, &wav).await);
    for (format, codec) in [
        (AudioFormat::M4a, "aac"),
        (AudioFormat::Mp3, "mp3"),
        (AudioFormat::Wav, "pcm_s16le"),
    ] {
        let out = dir.path().join(format!("out.{}", format.extension()));
        must(media::encode_audio(&wav, format, &out).await);
        let info = must(media::probe(&out).await);
        assert_eq!(info.audio().unwrap().codec, codec);
        assert!(
            info.duration_ms.abs_diff(speech.duration_ms) <= 100,
            "{codec}: {} vs {}",
            info.duration_ms,
            speech.duration_ms
        );
    }
}

#[tokio::test]
async fn subtitles_written_by_ffmpeg_parse_to_the_same_cues() {
    // Files from another writer: our SRT converted by ffmpeg to WebVTT and back.
    let dir = scratch();
    let cues = vec![
        Cue::new(500, 2_250, "Hello there.\nSecond line."),
        Cue::new(3_000, 4_000, "¿Qué tal?"),
    ];
    let srt = dir.path().join("in.srt");
    std::fs::write(&srt, subtitles::write(&cues, SubtitleFormat::Srt)).unwrap();
    for ext in ["vtt", "srt"] {
        let out = dir.path().join(format!("out.{ext}"));
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&srt)
            .arg(&out)
            .status()
            .expect("ffmpeg runs (install it with `apt-get install -y ffmpeg`)");
        assert!(status.success());
        let text = subtitles::decode(&std::fs::read(&out).unwrap()).unwrap();
        let parsed = subtitles::parse(&text).unwrap_or_else(|e| panic!("{ext}: {e}\n{text}"));
        assert_eq!(parsed, cues, "{ext}:\n{text}");
        subtitles::validate(&parsed).unwrap();
    }
}
