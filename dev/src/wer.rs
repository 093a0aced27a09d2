//! Word error rate, the standard measure of speech-to-text: the fewest substitutions,
//! deletions and insertions that turn the reference words into the words heard, over the
//! number of reference words. Both texts are normalised first: lower case, punctuation
//! stripped (an apostrophe inside a word is kept), hyphens as spaces, and numbers written
//! as English words, so "10 years" and "ten years" are the same two words, and "$50.00"
//! is "fifty dollars".

/// The edit counts between a reference and what was heard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WordErrors {
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    /// Words of the reference.
    pub words: usize,
}

impl WordErrors {
    /// Substitutions, deletions and insertions together.
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// The word error rate, 0 for a perfect transcript (and for an empty reference heard
    /// as nothing); it exceeds 1 when more words are inserted than the reference has.
    pub fn rate(&self) -> f64 {
        if self.words == 0 {
            return if self.insertions == 0 { 0.0 } else { 1.0 };
        }
        self.errors() as f64 / self.words as f64
    }
}

impl std::ops::AddAssign for WordErrors {
    fn add_assign(&mut self, other: WordErrors) {
        self.substitutions += other.substitutions;
        self.deletions += other.deletions;
        self.insertions += other.insertions;
        self.words += other.words;
    }
}

/// The word errors of `heard` against `reference`.
pub fn word_errors(reference: &str, heard: &str) -> WordErrors {
    let r = normalize(reference);
    let h = normalize(heard);
    // cost[i][j]: edits turning r[..i] into h[..j], with the counts of one cheapest way.
    let mut row: Vec<(usize, WordErrors)> = (0..=h.len())
        .map(|j| {
            (
                j,
                WordErrors {
                    insertions: j,
                    ..WordErrors::default()
                },
            )
        })
        .collect();
    for i in 1..=r.len() {
        let mut next = Vec::with_capacity(h.len() + 1);
        let (cost, mut counts) = row[0];
        counts.deletions += 1;
        next.push((cost + 1, counts));
        for j in 1..=h.len() {
            let same = r[i - 1] == h[j - 1];
            let (diagonal, mut d) = row[j - 1];
            if !same {
                d.substitutions += 1;
            }
            let (up, mut u) = row[j];
            u.deletions += 1;
            let (left, mut l) = next[j - 1];
            l.insertions += 1;
            let best = [
                (diagonal + usize::from(!same), d),
                (up + 1, u),
                (left + 1, l),
            ]
            .into_iter()
            .min_by_key(|(cost, _)| *cost)
            .expect("three candidates");
            next.push(best);
        }
        row = next;
    }
    let mut counts = row[h.len()].1;
    counts.words = r.len();
    counts
}

/// The words of `text` as word error rate compares them.
pub fn normalize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace(['-', '–', '—', '/'], " ");
    let mut words = Vec::new();
    for raw in lower.split_whitespace() {
        let percent = raw.ends_with('%');
        let dollars = raw.starts_with('$');
        // Keep letters, digits, and apostrophes and separators inside a word or number.
        let token: String = raw
            .trim_matches(|c: char| !c.is_alphanumeric())
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '\'' | '’' | '.' | ','))
            .map(|c| if c == '’' { '\'' } else { c })
            .collect();
        if token.is_empty() {
            continue;
        }
        let mut digits: String = token.chars().filter(|c| *c != ',').collect();
        // "50.00" is 50: no cents.
        if let Some(whole) = digits.strip_suffix(".00") {
            digits = whole.to_string();
        }
        match digits.parse::<u64>() {
            Ok(n) if digits.chars().all(|c| c.is_ascii_digit()) => words.extend(number_words(n)),
            _ => {
                let word: String = token.chars().filter(|c| !matches!(c, '.' | ',')).collect();
                if let Some((whole, fraction)) = digits.split_once('.')
                    && let (Ok(w), true) = (
                        whole.parse::<u64>(),
                        !fraction.is_empty() && fraction.chars().all(|c| c.is_ascii_digit()),
                    )
                {
                    words.extend(number_words(w));
                    words.push("point".into());
                    words.extend(fraction.chars().flat_map(|c| number_words(c as u64 - 48)));
                } else if !word.is_empty() {
                    words.push(word);
                }
            }
        }
        if percent {
            words.push("percent".into());
        }
        if dollars {
            words.push("dollars".into());
        }
    }
    words
}

/// `n` in English words: 42 is "forty two", 1,500 "one thousand five hundred".
fn number_words(n: u64) -> Vec<String> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    fn below_thousand(n: u64, out: &mut Vec<String>) {
        if n >= 100 {
            out.push(ONES[(n / 100) as usize].into());
            out.push("hundred".into());
        }
        let rest = n % 100;
        if rest >= 20 {
            out.push(TENS[(rest / 10) as usize].into());
            if !rest.is_multiple_of(10) {
                out.push(ONES[(rest % 10) as usize].into());
            }
        } else if rest > 0 || n == 0 {
            out.push(ONES[rest as usize].into());
        }
    }
    let mut out = Vec::new();
    let mut scales = Vec::new();
    let mut rest = n;
    for (size, name) in [
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ] {
        scales.push((rest / size, name));
        rest %= size;
    }
    for (count, name) in scales {
        if count > 0 {
            below_thousand(count, &mut out);
            out.push(name.into());
        }
    }
    if rest > 0 || out.is_empty() {
        below_thousand(rest, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_punctuation_and_how_numbers_are_written() {
        assert_eq!(
            normalize("Hello, World! It's 10 o'clock."),
            ["hello", "world", "it's", "ten", "o'clock"]
        );
        assert_eq!(normalize("twenty-five"), normalize("25"));
        assert_eq!(
            normalize("1,500 people, 3.5% of 2024"),
            normalize(
                "one thousand five hundred people three point five percent of two thousand twenty four"
            )
        );
        assert_eq!(normalize("«¿Qué tal?»"), ["qué", "tal"]);
        assert_eq!(normalize("It is $50.00."), normalize("it is fifty dollars"));
        assert_eq!(normalize(" ... "), Vec::<String>::new());
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let e = word_errors("the cat sat on the mat", "the cat sat on the mat");
        assert_eq!((e.errors(), e.words, e.rate()), (0, 6, 0.0));
        // One substitution, one deletion, one insertion.
        let e = word_errors("the cat sat on the mat", "a cat sat the mat today");
        assert_eq!(
            (e.substitutions, e.deletions, e.insertions, e.words),
            (1, 1, 1, 6)
        );
        assert!((e.rate() - 0.5).abs() < 1e-9);
        let e = word_errors("one two", "");
        assert_eq!((e.deletions, e.rate()), (2, 1.0));
        let e = word_errors("", "noise");
        assert_eq!((e.insertions, e.rate()), (1, 1.0));
        let mut total = word_errors("a b", "a c");
        total += word_errors("d e f", "d e f");
        assert_eq!((total.errors(), total.words), (1, 5));
    }
}
