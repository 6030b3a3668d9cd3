//! Durations as the job file writes them: `"250ms"`, `"30s"`, `"10m"`, `"2h"`.

use std::time::Duration;

/// Parses a duration string; the error says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("an empty duration".into());
    }
    humantime::parse_duration(trimmed).map_err(|e| format!("`{text}` is not a duration ({e})"))
}

/// The help line for a bad duration.
pub const DURATION_HELP: &str =
    "write a number and a unit, like \"250ms\", \"30s\", \"10m\" or \"2h\"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-3s").is_err());
    }
}
