//! Text measured as a terminal shows it: display columns (a CJK character
//! takes two, a combining mark none), not bytes or characters. Every line
//! the reporter prints is padded and cut here, so columns line up and a
//! line fits the width it was given.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The columns `s` takes on a terminal.
pub(crate) fn width(s: &str) -> usize {
    // Printable ASCII, the common case, is one column a byte.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.len();
    }
    s.width()
}

/// `s` followed by spaces up to `columns` display columns (as is when it
/// is already that wide).
pub(crate) fn pad_right(s: &str, columns: usize) -> String {
    let mut out = String::with_capacity(s.len().max(columns));
    push_padded(&mut out, s, columns);
    out
}

/// Appends [`pad_right`] of `s` to `out`.
pub(crate) fn push_padded(out: &mut String, s: &str, columns: usize) {
    out.push_str(s);
    out.extend(std::iter::repeat_n(' ', columns.saturating_sub(width(s))));
}

/// `s` preceded by spaces up to `columns` display columns.
pub(crate) fn pad_left(s: &str, columns: usize) -> String {
    let mut out: String = std::iter::repeat_n(' ', columns.saturating_sub(width(s))).collect();
    out.push_str(s);
    out
}

/// At most `columns` display columns of `s`, with `…` marking a cut. A
/// wide character that would straddle the limit is left out whole.
pub(crate) fn cut(s: &str, columns: usize) -> String {
    let mut out = String::new();
    push_cut(&mut out, s, columns);
    out
}

/// Appends [`cut`] of `s` to `out`.
pub(crate) fn push_cut(out: &mut String, s: &str, columns: usize) {
    if width(s) <= columns {
        out.push_str(s);
        return;
    }
    let room = columns.saturating_sub(1);
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > room {
            break;
        }
        used += w;
        out.push(c);
    }
    if columns > 0 {
        out.push('…');
    }
}

/// `s` with line breaks and other control characters made visible, so
/// one record stays one line and cannot drive the terminal.
pub(crate) fn one_line(s: &str) -> String {
    // Printable ASCII, the common case, is shown as it is.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.trim_end_matches(['\n', '\r']).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Width of a status column, in every listing: the longest status,
/// `cancelled`.
pub(crate) const STATUS_WIDTH: usize = 9;

/// The last `n` lines of `text` (a final newline ends the last line, it
/// does not start an empty one), from at most its last `bytes` bytes.
pub(crate) fn tail_lines(text: &str, n: usize, bytes: usize) -> Vec<&str> {
    let window = tail_of(text.trim_end_matches(['\n', '\r']), bytes);
    let mut lines: Vec<&str> = window.rsplit('\n').take(n).collect();
    lines.reverse();
    lines
}

/// The last `cap` bytes of `s` (at a character boundary).
pub(crate) fn tail_of(s: &str, cap: usize) -> &str {
    if s.len() <= cap {
        return s;
    }
    let mut at = s.len() - cap;
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(width("数据"), 4);
        assert_eq!(pad_right("数据", 6), "数据  ");
        assert_eq!(pad_left("数", 4), "  数");
        assert_eq!(width(&pad_right("数据处理", 3)), 8, "never cut by padding");
    }

    #[test]
    fn cuts_fit_the_columns_given() {
        assert_eq!(cut("abcdef", 6), "abcdef");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("数据处理", 6), "数据…");
        assert_eq!(cut("数据处理", 4), "数…");
        assert!(width(&cut("数据处理", 5)) <= 5);
        assert_eq!(cut("abc", 0), "");
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(one_line("a\nb\x1b[2J\n"), "a\\nb\\u{1b}[2J");
    }

    #[test]
    fn tails_are_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2, 100), ["b", "c"]);
        assert_eq!(tail_lines("a\nb\nc", 5, 100), ["a", "b", "c"]);
        assert_eq!(tail_lines("", 5, 100), [""]);
        assert_eq!(tail_lines("aaaa\nbé", 5, 3), ["bé"]);
        assert_eq!(tail_lines("aaaa\nbé", 5, 2), ["é"]);
    }
}
