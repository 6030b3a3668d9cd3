//! "Did you mean ...?" for misspelt keys and names.

/// The closest of `candidates` to `word`, phrased as a help line, when one
/// is close enough to be a likely typo.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> Option<String> {
    closest(word, candidates.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}

/// The closest candidate by Jaro-Winkler similarity, if similar enough.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
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
}
