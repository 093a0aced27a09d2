//! Translation with Apertium's English–Spanish pair (`apertium -u eng-spa` / `spa-eng`).
//!
//! Apertium reads running text, not lines: a single newline is just a space to it, and its
//! transfer rules move words across it ("My name is John\nI live here" comes out as
//! "Mi nombre es John I \n vive aquí"). A blank line, though, ends a paragraph, which no
//! rule crosses. So a batch is sent as one call with each text on one line and a blank line
//! between texts, and the output's non-blank lines are the translations, in order.

use super::traits::Translator;
use crate::pipeline::process::{self, APERTIUM};
use crate::pipeline::{Language, PipelineError, Result};
use async_trait::async_trait;

/// Offline translation with Apertium.
#[derive(Debug, Clone, Copy, Default)]
pub struct Apertium;

/// The pairs this engine uses, as `apertium -l` names them.
const PAIRS: [&str; 2] = ["eng-spa", "spa-eng"];

fn pair(from: Language, to: Language) -> Result<&'static str> {
    match (from, to) {
        (Language::English, Language::Spanish) => Ok("eng-spa"),
        (Language::Spanish, Language::English) => Ok("spa-eng"),
        _ => Err(PipelineError::UnsupportedLanguage(format!(
            "apertium translates en to es and es to en, not {from} to {to}"
        ))),
    }
}

/// The pairs this engine needs that `apertium -l` does not list.
pub(super) async fn missing_pairs() -> Result<Vec<&'static str>> {
    let out = process::run(&APERTIUM, ["-l"], None).await?;
    let listed = String::from_utf8_lossy(&out);
    let listed: Vec<&str> = listed.split_whitespace().collect();
    Ok(PAIRS.into_iter().filter(|p| !listed.contains(p)).collect())
}

/// One line of text: apertium must see each text as one paragraph line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Tidies apertium's spacing: it may start a line with a space and leaves one between an
/// untranslated name and the punctuation after it ("John .").
fn tidy(line: &str) -> String {
    let mut out = one_line(line);
    for p in [".", ",", ";", ":", "!", "?", ")"] {
        out = out.replace(&format!(" {p}"), p);
    }
    out
}

async fn run(pair: &str, texts: &[&str]) -> Result<Vec<String>> {
    let input = texts.join("\n\n");
    let out = process::run(&APERTIUM, ["-u", pair], Some(input.into_bytes())).await?;
    let out = String::from_utf8_lossy(&out);
    Ok(out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(tidy)
        .collect())
}

#[async_trait]
impl Translator for Apertium {
    fn name(&self) -> &'static str {
        "apertium"
    }

    async fn translate(
        &self,
        texts: &[String],
        from: Language,
        to: Language,
    ) -> Result<Vec<String>> {
        let pair = pair(from, to)?;
        let lines: Vec<String> = texts.iter().map(|t| one_line(t)).collect();
        // Empty texts stay empty: a blank line would not survive the round trip.
        let todo: Vec<&str> = lines
            .iter()
            .filter(|l| !l.is_empty())
            .map(String::as_str)
            .collect();
        if todo.is_empty() {
            return Ok(vec![String::new(); texts.len()]);
        }
        let mut done = run(pair, &todo).await?;
        if done.len() != todo.len() {
            // Should a text ever come back over several lines, the batch cannot be split
            // back reliably: translate one text per call instead.
            done = Vec::with_capacity(todo.len());
            for text in &todo {
                done.push(run(pair, &[text]).await?.join(" "));
            }
        }
        let mut done = done.into_iter();
        Ok(lines
            .iter()
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    done.next().unwrap_or_default()
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_tidying() {
        assert_eq!(
            pair(Language::English, Language::Spanish).unwrap(),
            "eng-spa"
        );
        assert_eq!(
            pair(Language::Spanish, Language::English).unwrap(),
            "spa-eng"
        );
        let e = pair(Language::English, Language::English).unwrap_err();
        assert!(
            !e.is_retryable() && e.to_string().contains("en to en"),
            "{e}"
        );
        assert_eq!(
            tidy(" Hola, mi nombre es John ."),
            "Hola, mi nombre es John."
        );
        assert_eq!(one_line(" two\nlines  here "), "two lines here");
    }
}
