use super::*;

const SRT: &str = "1\n00:00:01,000 --> 00:00:02,500\nHello there.\nSecond line.\n\n2\n00:00:03,000 --> 00:00:04,000\n<i>Bye</i> &amp; thanks\n";

#[test]
fn srt_parses_and_round_trips() {
    let cues = parse(SRT).unwrap();
    assert_eq!(
        cues,
        vec![
            Cue::new(1000, 2500, "Hello there.\nSecond line."),
            Cue::new(3000, 4000, "<i>Bye</i> &amp; thanks"),
        ]
    );
    assert_eq!(write(&cues, SubtitleFormat::Srt), format!("{SRT}\n"));
    assert_eq!(parse(&write(&cues, SubtitleFormat::WebVtt)).unwrap(), cues);
    assert_eq!(cues[1].plain_text(), "Bye & thanks");
    assert_eq!(cues[0].plain_text(), "Hello there. Second line.");
}

#[test]
fn real_world_srt_quirks_are_accepted() {
    // BOM, CRLF, extra blank lines, dot milliseconds, coordinates after the timing,
    // no final newline, and a missing blank line between two cues.
    let text = "\u{feff}\r\n\r\n1\r\n00:00:01.000 --> 00:00:02,000 X1:10 X2:20\r\nOne\r\n\r\n\r\n\r\n2\r\n00:00:02,000 --> 00:00:03,000\r\nTwo\r\n3\r\n00:00:04,000 --> 00:00:05,000\r\nThree";
    let cues = parse(text).unwrap();
    assert_eq!(
        cues,
        vec![
            Cue::new(1000, 2000, "One"),
            Cue::new(2000, 3000, "Two"),
            Cue::new(4000, 5000, "Three"),
        ]
    );
    validate(&cues).unwrap();
}

#[test]
fn webvtt_with_header_notes_styles_ids_and_settings() {
    let text = "WEBVTT - a title\nKind: captions\nLanguage: en\n\nNOTE this is\na comment\n\nSTYLE\n::cue { color: red }\n\nintro\n00:01.000 --> 00:02.000 align:start position:10%\n<v Roger>Hi\n\n01:00:00.000 --> 01:00:01.5\nLater\n";
    assert_eq!(detect(text).unwrap(), SubtitleFormat::WebVtt);
    let cues = parse(text).unwrap();
    assert_eq!(
        cues,
        vec![
            Cue::new(1000, 2000, "<v Roger>Hi"),
            Cue::new(3_600_000, 3_601_500, "Later"),
        ]
    );
    assert_eq!(cues[0].plain_text(), "Hi");
    let written = write(&cues, SubtitleFormat::WebVtt);
    assert!(written.starts_with("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n"));
    assert_eq!(parse(&written).unwrap(), cues);
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn garbage_is_refused_with_the_line_and_the_reason() {
    assert_eq!(error(""), "the file is empty");
    assert_eq!(error("\u{feff} \n\n"), "the file is empty");
    assert!(error("Dear diary,\ntoday I wrote a text file.\n").contains("not SRT or WebVTT"));
    assert_eq!(
        error("WEBVTT\n\nNOTE nothing here\n"),
        "the file has no cues"
    );
    let e = parse("1\n00:00:01,000 --> 00:00:0x,000\nHi\n").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("bad timestamp `00:00:0x,000`"), "{e}");
    let e = error("1\n00:00:05,000 --> 00:00:02,000\nHi\n");
    assert!(
        e.starts_with("line 2: the cue ends (00:00:02,000) before it starts"),
        "{e}"
    );
    let e = error(
        "1\n00:00:01,000 --> 00:00:02,000\nHi\n\nnot a number\n00:00:03,000 --> 00:00:04,000\n",
    );
    assert!(e.starts_with("line 5: expected a cue number"), "{e}");
    let e = error("1\n00:00:01,000 --> 00:00:02,000\nHi\n\n2\nHello\n");
    assert!(e.starts_with("line 6: expected a timing line"), "{e}");
    let e = error("1\n00:00:01,000 --> 00:61:02,000\nHi\n");
    assert!(e.contains("below 60"), "{e}");
    assert!(decode(b"\x00\x01binary").is_err());
}

#[test]
fn timestamps() {
    assert_eq!(parse_timestamp("01:02:03,004"), Ok(3_723_004));
    assert_eq!(parse_timestamp("02:03.5"), Ok(123_500));
    assert_eq!(parse_timestamp("100:00:00.000"), Ok(360_000_000));
    assert!(parse_timestamp("1:2").is_err());
    assert!(parse_timestamp("00:00:01,0000").is_err());
    assert_eq!(format_timestamp(3_723_004, ','), "01:02:03,004");
    assert_eq!(format_timestamp(0, '.'), "00:00:00.000");
}

#[test]
fn decode_accepts_bom_and_latin1() {
    assert_eq!(decode(b"\xEF\xBB\xBFhi").unwrap(), "hi");
    assert_eq!(decode(b"caf\xe9").unwrap(), "café");
}

#[test]
fn validate_finds_disorder_and_overlap() {
    let ok = [Cue::new(0, 10, "a"), Cue::new(10, 20, "b")];
    validate(&ok).unwrap();
    let e = validate(&[Cue::new(0, 10, "a"), Cue::new(5, 20, "b")]).unwrap_err();
    assert!(
        e.to_string()
            .contains("cue 2 starts at 00:00:00,005, before cue 1 ends"),
        "{e}"
    );
    assert!(validate(&[Cue::new(10, 10, "a")]).is_err());
    assert!(validate(&[]).is_err());
}

#[test]
fn batches_respect_count_and_span() {
    let cues: Vec<Cue> = (0..10)
        .map(|i| Cue::new(i * 1000, i * 1000 + 900, "x"))
        .collect();
    assert_eq!(batch(&cues, 4, u64::MAX), vec![0..4, 4..8, 8..10]);
    // 2.5 s spans: cues 0-1 end at 1.9 s, cue 2 would end at 2.9 s.
    assert_eq!(batch(&cues, 100, 2500), vec![0..2, 2..4, 4..6, 6..8, 8..10]);
    assert_eq!(batch(&cues[..1], 0, 0), vec![0..1]);
    assert!(batch(&[], 5, 5).is_empty());
}

#[test]
fn writing_keeps_cues_parseable() {
    let cues = [Cue::new(0, 1000, "a\n\nb --> c")];
    let srt = write(&cues, SubtitleFormat::Srt);
    assert_eq!(parse(&srt).unwrap()[0].text, "a\nb --> c");
    let vtt = write(&cues, SubtitleFormat::WebVtt);
    assert_eq!(parse(&vtt).unwrap()[0].text, "a\nb -> c");
}
