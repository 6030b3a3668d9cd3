//! Errors in a job file, rendered like a compiler's: what was expected,
//! `--> file:line:col`, the line, a caret under the spot, and a `help:`.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use super::doc_path::{Anchor, DocPath};

/// Where in the file a diagnostic points.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A byte range of the source.
    Span(Range<usize>),
    /// A value (or its key) named by its path, resolved to a span on rendering.
    Path(DocPath, Anchor),
    /// The file as a whole (line 1, column 1).
    File,
}

/// One problem in a job file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// What was expected, as one sentence without a final period.
    pub message: String,
    pub location: Location,
    /// A short label under the caret.
    pub label: Option<String>,
    /// A suggestion ("did you mean `processes`?").
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at the value found at `path`.
    pub fn at(path: DocPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            location: Location::Path(path, Anchor::Value),
            label: None,
            help: None,
        }
    }

    /// A diagnostic at the key that names the value at `path`.
    pub fn at_key(path: DocPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            location: Location::Path(path, Anchor::Key),
            ..Diagnostic::at(DocPath::root(), message)
        }
    }

    /// A diagnostic at a byte range.
    pub fn at_span(span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            location: Location::Span(span),
            ..Diagnostic::at(DocPath::root(), message)
        }
    }

    /// A diagnostic about the whole file.
    pub fn at_file(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            location: Location::File,
            ..Diagnostic::at(DocPath::root(), message)
        }
    }

    /// Adds a `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Adds a label under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }
}

/// A diagnostic whose location is resolved to a byte range.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub message: String,
    pub span: Range<usize>,
    pub label: Option<String>,
    pub help: Option<String>,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column (in characters) of `span.start`.
    pub column: usize,
}

impl Located {
    /// Resolves the span's line and column in `source`.
    pub fn new(d: &Diagnostic, span: Range<usize>, source: &str) -> Located {
        Located::with_lines(d, span, source, &LineStarts::of(source))
    }

    /// [`Located::new`] with the line starts of `source` found once for
    /// all its diagnostics: a file with many errors is not scanned from
    /// its start again for each of them.
    pub fn with_lines(
        d: &Diagnostic,
        span: Range<usize>,
        source: &str,
        lines: &LineStarts,
    ) -> Located {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
        let (line, line_start) = lines.line_of(start);
        let column = source[line_start..start].chars().count() + 1;
        Located {
            message: d.message.clone(),
            span: start..end,
            label: d.label.clone(),
            help: d.help.clone(),
            line,
            column,
        }
    }

    /// Renders the diagnostic against `source`, naming `path`.
    pub fn render(&self, path: &Path, source: &str, color: bool) -> String {
        let origin = path.display().to_string();
        // Point at one character at least, and never past the line's end, so
        // the caret always sits under something visible.
        let line_end = source[self.span.start..]
            .find('\n')
            .map_or(source.len(), |i| self.span.start + i);
        let mut end = self.span.end.min(line_end);
        if end <= self.span.start {
            end = source[self.span.start..line_end]
                .chars()
                .next()
                .map_or(self.span.start, |c| self.span.start + c.len_utf8());
        }
        // Only the line is handed to the renderer: a big file is not read
        // again for each error.
        let line_start = source[..self.span.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = if source[..line_end].ends_with('\r') && line_end > self.span.start {
            line_end - 1
        } else {
            line_end
        };
        let end = end.min(line_end).max(self.span.start);
        let mut annotation =
            AnnotationKind::Primary.span(self.span.start - line_start..end - line_start);
        if let Some(label) = &self.label {
            annotation = annotation.label(label);
        }
        let snippet = Snippet::source(&source[line_start..line_end])
            .line_start(self.line)
            .path(origin)
            .fold(true)
            .annotation(annotation);
        let mut group = Level::ERROR.primary_title(&self.message).element(snippet);
        if let Some(help) = &self.help {
            group = group.element(Level::HELP.message(help));
        }
        let report: &[Group<'_>] = &[group];
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        renderer.render(report)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where each line of a source text starts, for turning byte offsets into
/// line numbers by binary search.
pub struct LineStarts(Vec<usize>);

impl LineStarts {
    pub fn of(source: &str) -> LineStarts {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineStarts(starts)
    }

    /// The 1-based line of byte `offset`, and where that line starts.
    fn line_of(&self, offset: usize) -> (usize, usize) {
        // The last start at or before `offset`; the first is 0.
        let i = self.0.partition_point(|&s| s <= offset).max(1) - 1;
        (i + 1, self.0[i])
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_starts_give_the_line_and_column_a_scan_would() {
        let source = "a = 1\n\nb = \"é\"\nc";
        let lines = LineStarts::of(source);
        for offset in 0..=source.len() {
            if !source.is_char_boundary(offset) {
                continue;
            }
            let before = &source[..offset];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            assert_eq!(lines.line_of(offset), (line, start), "offset {offset}");
        }
    }
}
