//! "Did you mean ...?" for misspelt keys and names: the one rule, for the
//! job file's keys and names, `--task` ids and shared-value names.
//!
//! A candidate is suggested when it is at most a third of the word's
//! length away in Damerau-Levenshtein distance (edits, and two swapped
//! letters count as one), one edit at least; never when the word would
//! have to be rewritten whole (`b` for `a`). The nearest wins; among
//! equals, the first given.

/// The closest of `candidates` to `word`, phrased as a help line, when one
/// is close enough to be a likely typo.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> Option<String> {
    closest(word, candidates.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}

/// The closest candidate to `word`, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = word.chars().count();
    let most = (len / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= most && *distance < len.max(c.chars().count()))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["processes", "timeout", "retries"];
        assert_eq!(closest("procesess", keys), Some("processes"));
        assert_eq!(closest("retires", keys), Some("retries"));
        assert_eq!(closest("colour", keys), None);
    }

    #[test]
    fn the_nearest_wins() {
        assert_eq!(closest("squre", ["sq", "sum", "square"]), Some("square"));
        assert_eq!(closest("helo", ["hello", "help"]), Some("hello"));
        assert_eq!(closest("tset", ["lint", "test"]), Some("test"));
        assert_eq!(closest("nmu", ["arr", "num"]), Some("num"));
        assert_eq!(closest("logs", ["log", "name"]), Some("log"));
        assert_eq!(closest("build", ["build"]), Some("build"));
    }

    #[test]
    fn no_suggestion_for_tiny_or_far_words() {
        assert_eq!(closest("b", ["a"]), None);
        assert_eq!(closest("totally_else", ["num", "log"]), None);
        assert_eq!(did_you_mean("zzzzzz", &["test", "lint"]), None);
        assert_eq!(
            did_you_mean("widht", &["width"]).as_deref(),
            Some("did you mean `width`?")
        );
    }
}
