//! TOML text to a tree of values that keep their spans, read one top-level
//! line at a time.
//!
//! `toml_parser` (the lexer and push parser under `toml` and `toml_edit`)
//! turns tokens into events; this module assembles the events into tables
//! with TOML's rules (dotted keys, `[table]` and `[[array]]` headers, no key
//! defined twice). It never holds the whole file's tokens: the lexer is read
//! up to the end of each top-level expression (a newline outside brackets),
//! and that expression alone is parsed. A reader can also take each
//! `[[task]]` table as soon as the next one starts (TOML can no longer
//! change it then), so a file of many tasks never sits in memory as a tree.
//!
//! It only knows TOML; what the keys mean is [`super::load`]'s business.

use std::borrow::Cow;
use std::ops::Range;

use indexmap::IndexMap;
use indexmap::map::Entry as MapEntry;
use toml_parser::decoder::ScalarKind;
use toml_parser::lexer::{Token, TokenKind};
use toml_parser::parser::{Event, EventKind, RecursionGuard, ValidateWhitespace};
use toml_parser::{ErrorSink, Expected, ParseError, Source};

/// Byte range in the source.
pub type ByteSpan = Range<usize>;

/// Nesting deeper than this (arrays in arrays...) is a syntax error, so
/// that nothing recursive can overflow the stack.
const MAX_DEPTH: u32 = 64;

/// A value and where it is written (a table from a header: the header).
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'s> {
    pub span: ByteSpan,
    pub value: Value<'s>,
}

/// A TOML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'s> {
    String(Cow<'s, str>),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    /// A date, time or both, as written (and validated).
    Datetime(String),
    Array(Array<'s>),
    Table(Table<'s>),
}

/// An array, or an array of tables made by `[[NAME]]` headers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Array<'s> {
    pub items: Vec<Item<'s>>,
    /// Made by `[[NAME]]` headers (only those can be extended).
    pub of_tables: bool,
    /// Tables already handed to the reader's `on_task` (their indexes
    /// come before those of `items`).
    pub taken: usize,
}

/// A table: keys in the order written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table<'s> {
    pub entries: IndexMap<Cow<'s, str>, Entry<'s>>,
    /// Only made as the parent of a header or a dotted key, not defined.
    implicit: bool,
    /// Made by a dotted key.
    dotted: bool,
    /// Written `{ ... }`: closed once written.
    inline: bool,
}

/// One key of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'s> {
    pub key_span: ByteSpan,
    pub item: Item<'s>,
}

/// Why the text is not TOML.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub span: ByteSpan,
    pub message: String,
}

impl<'s> Value<'s> {
    /// What the value is, with an article: "a string", "an integer", ...
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

impl<'s> Table<'s> {
    pub fn get(&self, key: &str) -> Option<&Entry<'s>> {
        self.entries.get(key)
    }
}

/// Parses `source` into its root table. With `on_task`, each table of the
/// top-level `[[task]]` array is handed over, with its index, once it is
/// complete, and is not kept in the tree (its array keeps only the count).
/// Stops at the first error.
pub fn parse<'s, 'f>(
    source: &'s str,
    on_task: Option<&'f mut (dyn FnMut(usize, Item<'s>) + 'f)>,
) -> Result<Table<'s>, SyntaxError> {
    let src = Source::new(source);
    let mut builder = Builder {
        source: src,
        root: Table::default(),
        current: Table::default(),
        header: None,
        on_task,
        error: None,
    };
    let mut tokens: Vec<Token> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut depth: usize = 0;
    let mut lexer = src.lex();
    loop {
        let token = lexer.next();
        let end_of_expression = match token {
            None => true,
            Some(t) => {
                tokens.push(t);
                match t.kind() {
                    TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                        depth += 1;
                        false
                    }
                    TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                        depth = depth.saturating_sub(1);
                        false
                    }
                    TokenKind::Newline => depth == 0,
                    TokenKind::Eof => true,
                    _ => false,
                }
            }
        };
        if end_of_expression && !tokens.is_empty() {
            let mut parse_error: Option<ParseError> = None;
            {
                let mut push = |e: Event| events.push(e);
                let mut ws = ValidateWhitespace::new(&mut push, src);
                let mut guard = RecursionGuard::new(&mut ws, MAX_DEPTH);
                toml_parser::parser::parse_document(&tokens, &mut guard, &mut parse_error);
            }
            if let Some(e) = parse_error {
                return Err(syntax_error(&e));
            }
            builder.document(&events);
            if let Some(e) = builder.error.take() {
                return Err(e);
            }
            tokens.clear();
            events.clear();
        }
        if token.is_none() {
            break;
        }
    }
    builder.finish_table();
    if let Some(e) = builder.error.take() {
        return Err(e);
    }
    builder.hand_over_tasks(true);
    Ok(builder.root)
}

/// The message of a parse error as `toml_edit` words it: the description,
/// then what was expected.
fn syntax_error(e: &ParseError) -> SyntaxError {
    let mut message = e.description().to_string();
    if let Some(expected) = e.expected() {
        message.push_str(", expected ");
        if expected.is_empty() {
            message.push_str("nothing");
        }
        for (i, x) in expected.iter().enumerate() {
            if i != 0 {
                message.push_str(", ");
            }
            match x {
                Expected::Literal("\n") => message.push_str("newline"),
                Expected::Literal("`") => message.push_str("'`'"),
                Expected::Literal(s) if s.chars().all(|c| c.is_ascii_control()) => {
                    message.push_str(&format!("`{}`", s.escape_debug()));
                }
                Expected::Literal(s) => message.push_str(&format!("`{s}`")),
                Expected::Description(s) => message.push_str(s),
                _ => message.push_str("etc"),
            }
        }
    }
    let span = e
        .unexpected()
        .or(e.context())
        .map_or(0..0, |s| s.start()..s.end());
    SyntaxError { span, message }
}

struct Header<'s> {
    path: Vec<(Cow<'s, str>, ByteSpan)>,
    key: Option<(Cow<'s, str>, ByteSpan)>,
    span: ByteSpan,
    is_array: bool,
}

struct Builder<'s, 'f> {
    source: Source<'s>,
    root: Table<'s>,
    /// The table of the current header (the root's own keys before any).
    current: Table<'s>,
    header: Option<Header<'s>>,
    on_task: Option<&'f mut (dyn FnMut(usize, Item<'s>) + 'f)>,
    error: Option<SyntaxError>,
}

/// Reads events one at a time.
struct Cursor<'e> {
    events: &'e [Event],
    at: usize,
}

impl<'e> Cursor<'e> {
    fn next(&mut self) -> Option<&'e Event> {
        let e = self.events.get(self.at)?;
        self.at += 1;
        Some(e)
    }

    fn peek(&self, ahead: usize) -> Option<EventKind> {
        self.events.get(self.at + ahead).map(Event::kind)
    }
}

/// Collects the first of the decoder's errors.
struct FirstError(Option<ParseError>);

impl ErrorSink for FirstError {
    fn report_error(&mut self, error: ParseError) {
        if self.0.is_none() {
            self.0 = Some(error);
        }
    }
}

fn span_of(e: &Event) -> ByteSpan {
    e.span().start()..e.span().end()
}

impl<'s> Builder<'s, '_> {
    fn fail(&mut self, span: ByteSpan, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { span, message });
        }
    }

    fn fail_parse(&mut self, e: Option<ParseError>) -> bool {
        match e {
            Some(e) => {
                if self.error.is_none() {
                    self.error = Some(syntax_error(&e));
                }
                true
            }
            None => false,
        }
    }

    /// The events of one top-level expression (or several, in error cases).
    fn document(&mut self, events: &[Event]) {
        let mut input = Cursor { events, at: 0 };
        while let Some(event) = input.next() {
            if self.error.is_some() {
                return;
            }
            match event.kind() {
                EventKind::StdTableOpen | EventKind::ArrayTableOpen => {
                    self.finish_table();
                    let header = self.on_table(event, &mut input);
                    self.start_table(header);
                }
                EventKind::SimpleKey => {
                    let Some((path, key)) = self.on_key(event, &mut input) else {
                        return;
                    };
                    if input.peek(0) == Some(EventKind::Whitespace) {
                        input.next();
                    }
                    if input.next().map(Event::kind) != Some(EventKind::KeyValSep) {
                        return;
                    }
                    if input.peek(0) == Some(EventKind::Whitespace) {
                        input.next();
                    }
                    let Some(value) = self.value(&mut input) else {
                        return;
                    };
                    let mut current = std::mem::take(&mut self.current);
                    self.key_value(&mut current, path, key, value, false);
                    self.current = current;
                }
                _ => {}
            }
        }
    }

    fn on_table(&mut self, open: &Event, input: &mut Cursor<'_>) -> Header<'s> {
        let mut header = Header {
            path: Vec::new(),
            key: None,
            span: span_of(open),
            is_array: open.kind() == EventKind::ArrayTableOpen,
        };
        while let Some(event) = input.next() {
            match event.kind() {
                EventKind::StdTableClose | EventKind::ArrayTableClose => {
                    header.span.end = event.span().end();
                    break;
                }
                EventKind::SimpleKey => {
                    if let Some((path, key)) = self.on_key(event, input) {
                        header.path = path;
                        header.key = Some(key);
                    }
                }
                _ => {}
            }
        }
        header
    }

    /// A key, dotted or not: the path to its table and the last part.
    #[allow(clippy::type_complexity)]
    fn on_key(
        &mut self,
        first: &Event,
        input: &mut Cursor<'_>,
    ) -> Option<(Vec<(Cow<'s, str>, ByteSpan)>, (Cow<'s, str>, ByteSpan))> {
        // Most keys have one part: the path stays an empty Vec (no
        // allocation) until a dot shows there is more.
        let mut path = Vec::new();
        let mut key = self.decode_key(first)?;
        loop {
            let more = matches!(
                (input.peek(0), input.peek(1)),
                (Some(EventKind::KeySep), _)
                    | (Some(EventKind::Whitespace), Some(EventKind::KeySep))
            );
            if !more {
                break;
            }
            while let Some(event) = input.next() {
                if event.kind() == EventKind::SimpleKey {
                    let next = self.decode_key(event)?;
                    path.push(std::mem::replace(&mut key, next));
                    break;
                }
            }
            if path.len() as u32 >= MAX_DEPTH {
                self.fail(key.1, "a key of too many parts".into());
                return None;
            }
        }
        Some((path, key))
    }

    fn decode_key(&mut self, event: &Event) -> Option<(Cow<'s, str>, ByteSpan)> {
        let raw = self.source.get(event)?;
        let mut decoded = Cow::Borrowed("");
        let mut errors = FirstError(None);
        raw.decode_key(&mut decoded, &mut errors);
        if self.fail_parse(errors.0) {
            return None;
        }
        Some((decoded, span_of(event)))
    }

    /// A value; `None` once an error is recorded.
    fn value(&mut self, input: &mut Cursor<'_>) -> Option<Item<'s>> {
        let event = input.next()?;
        match event.kind() {
            EventKind::InlineTableOpen => self.inline_table(event, input),
            EventKind::ArrayOpen => self.array(event, input),
            EventKind::Scalar => self.scalar(event),
            _ => {
                self.fail(span_of(event), "expected a value".into());
                None
            }
        }
    }

    fn scalar(&mut self, event: &Event) -> Option<Item<'s>> {
        let span = span_of(event);
        let raw = self.source.get(event)?;
        let mut decoded = Cow::Borrowed("");
        let mut errors = FirstError(None);
        let kind = raw.decode_scalar(&mut decoded, &mut errors);
        if self.fail_parse(errors.0) {
            return None;
        }
        let value = match kind {
            ScalarKind::String => Value::String(decoded),
            ScalarKind::Boolean(b) => Value::Boolean(b),
            ScalarKind::DateTime => match decoded.parse::<toml_datetime::Datetime>() {
                Ok(d) => Value::Datetime(d.to_string()),
                Err(e) => {
                    self.fail(span, e.to_string());
                    return None;
                }
            },
            ScalarKind::Float => {
                let text: &str = &decoded;
                match text.parse::<f64>() {
                    Ok(f) if f.is_finite() || text.contains("inf") || text.contains("nan") => {
                        Value::Float(f)
                    }
                    _ => {
                        self.fail(span, "invalid floating-point number".into());
                        return None;
                    }
                }
            }
            ScalarKind::Integer(radix) => match i64::from_str_radix(&decoded, radix.value()) {
                Ok(i) => Value::Integer(i),
                Err(_) => {
                    self.fail(
                        span,
                        "integer number overflowed: TOML integers are 64-bit".into(),
                    );
                    return None;
                }
            },
        };
        Some(Item { span, value })
    }

    fn array(&mut self, open: &Event, input: &mut Cursor<'_>) -> Option<Item<'s>> {
        let mut items = Vec::new();
        let mut end = open.span().end();
        while let Some(event) = input.next() {
            end = event.span().end();
            let item = match event.kind() {
                EventKind::ArrayClose => break,
                EventKind::InlineTableOpen => self.inline_table(event, input)?,
                EventKind::ArrayOpen => self.array(event, input)?,
                EventKind::Scalar => self.scalar(event)?,
                EventKind::ValueSep
                | EventKind::Whitespace
                | EventKind::Comment
                | EventKind::Newline
                | EventKind::Error => continue,
                _ => break,
            };
            items.push(item);
        }
        Some(Item {
            span: open.span().start()..end,
            value: Value::Array(Array {
                items,
                of_tables: false,
                taken: 0,
            }),
        })
    }

    fn inline_table(&mut self, open: &Event, input: &mut Cursor<'_>) -> Option<Item<'s>> {
        let mut table = Table {
            inline: true,
            ..Table::default()
        };
        let mut end = open.span().end();
        let mut key = None;
        while let Some(event) = input.next() {
            end = event.span().end();
            match event.kind() {
                EventKind::InlineTableClose => break,
                EventKind::SimpleKey => key = Some(self.on_key(event, input)?),
                EventKind::InlineTableOpen | EventKind::ArrayOpen | EventKind::Scalar => {
                    input.at -= 1;
                    let value = self.value(input)?;
                    if let Some((path, k)) = key.take() {
                        self.key_value(&mut table, path, k, value, true);
                        if self.error.is_some() {
                            return None;
                        }
                    }
                }
                EventKind::KeyValSep
                | EventKind::ValueSep
                | EventKind::Whitespace
                | EventKind::Comment
                | EventKind::Newline
                | EventKind::Error => {}
                _ => break,
            }
        }
        Some(Item {
            span: open.span().start()..end,
            value: Value::Table(table),
        })
    }

    /// `path.key = value` in `table`.
    fn key_value(
        &mut self,
        table: &mut Table<'s>,
        path: Vec<(Cow<'s, str>, ByteSpan)>,
        key: (Cow<'s, str>, ByteSpan),
        value: Item<'s>,
        inline: bool,
    ) {
        let dotted = !path.is_empty();
        let parent = match descend(table, &path, dotted, inline) {
            Ok(t) => t,
            Err(e) => {
                self.fail(e.span, e.message);
                return;
            }
        };
        // Dotted keys cannot add to a table defined by a header, nor plain
        // keys to one made by dotted keys.
        let mixed = if inline {
            dotted != parent.dotted
        } else {
            dotted && !parent.implicit
        };
        if mixed {
            self.fail(key.1, format!("duplicate key `{}`", key.0));
            return;
        }
        match parent.entries.entry(key.0) {
            MapEntry::Vacant(slot) => {
                slot.insert(Entry {
                    key_span: key.1,
                    item: value,
                });
            }
            MapEntry::Occupied(slot) => {
                let message = format!("duplicate key `{}`", slot.key());
                self.fail(key.1, message);
            }
        }
    }

    /// Puts the finished table of the current header in its place.
    fn finish_table(&mut self) {
        let table = std::mem::take(&mut self.current);
        let Some(header) = self.header.take() else {
            self.root = table;
            return;
        };
        let Some((key, key_span)) = header.key else {
            return;
        };
        let item = Item {
            span: header.span.clone(),
            value: Value::Table(table),
        };
        let is_task = header.path.is_empty() && key == "task";
        let parent = match descend(&mut self.root, &header.path, false, false) {
            Ok(t) => t,
            Err(e) => {
                self.fail(e.span, e.message);
                return;
            }
        };
        if !header.is_array {
            parent.entries.insert(key, Entry { key_span, item });
            return;
        }
        let name = key.to_string();
        let entry = parent.entries.entry(key).or_insert_with(|| Entry {
            key_span: key_span.clone(),
            item: Item {
                span: header.span.clone(),
                value: Value::Array(Array {
                    items: Vec::new(),
                    of_tables: true,
                    taken: 0,
                }),
            },
        });
        let pushed = match &mut entry.item.value {
            Value::Array(a) if a.of_tables => {
                a.items.push(item);
                true
            }
            _ => false,
        };
        if !pushed {
            self.fail(key_span, format!("duplicate key `{name}`"));
            return;
        }
        if is_task {
            self.hand_over_tasks(false);
        }
    }

    /// Hands the complete tables of the top-level `[[task]]` array to
    /// `on_task`: all of them at the end, all but the last before.
    fn hand_over_tasks(&mut self, all: bool) {
        let Some(on_task) = self.on_task.as_mut() else {
            return;
        };
        let Some(Entry {
            item: Item {
                value: Value::Array(a),
                ..
            },
            ..
        }) = self.root.entries.get_mut("task")
        else {
            return;
        };
        if !a.of_tables {
            return;
        }
        let keep = usize::from(!all);
        while a.items.len() > keep {
            let item = a.items.remove(0);
            on_task(a.taken, item);
            a.taken += 1;
        }
    }

    fn start_table(&mut self, header: Header<'s>) {
        if !header.is_array {
            if let Some((key, key_span)) = &header.key {
                match descend(&mut self.root, &header.path, false, false) {
                    Ok(parent) => {
                        if let Some((_, old)) = parent.entries.shift_remove_entry(key.as_ref()) {
                            match old.item.value {
                                // Made as the parent of an earlier header:
                                // this header defines it now.
                                Value::Table(t) if t.implicit && !t.dotted => self.current = t,
                                _ => {
                                    self.fail(key_span.clone(), format!("duplicate key `{key}`"));
                                }
                            }
                        }
                    }
                    Err(e) => self.fail(e.span, e.message),
                }
            }
        }
        if self.current.entries.capacity() == 0 {
            // A task's few keys fit without growing.
            self.current.entries.reserve(8);
        }
        self.current.implicit = false;
        self.current.dotted = false;
        self.header = Some(header);
    }
}

/// The table at `path` under `table`, made (implicit) where missing.
fn descend<'t, 's>(
    mut table: &'t mut Table<'s>,
    path: &[(Cow<'s, str>, ByteSpan)],
    dotted: bool,
    inline: bool,
) -> Result<&'t mut Table<'s>, SyntaxError> {
    for (key, key_span) in path {
        let entry = table.entries.entry(key.clone()).or_insert_with(|| Entry {
            key_span: key_span.clone(),
            item: Item {
                span: key_span.clone(),
                value: Value::Table(Table {
                    implicit: true,
                    dotted,
                    inline,
                    ..Table::default()
                }),
            },
        });
        let extend_error = |what: &str| SyntaxError {
            span: key_span.clone(),
            message: format!("cannot extend `{key}`, {what}, with a dotted key or a header"),
        };
        let problem = match &entry.item.value {
            Value::Array(a) if a.of_tables => match a.items.last() {
                Some(Item {
                    value: Value::Table(_),
                    ..
                }) => None,
                _ => Some(extend_error("an array of tables")),
            },
            Value::Table(t) if t.inline && !inline => Some(extend_error("an inline table")),
            Value::Table(t) if dotted && !t.implicit => Some(SyntaxError {
                span: key_span.clone(),
                message: format!("duplicate key `{key}`"),
            }),
            Value::Table(_) => None,
            other => Some(extend_error(other.kind())),
        };
        if let Some(e) = problem {
            return Err(e);
        }
        table = match &mut entry.item.value {
            Value::Array(a) => match a.items.last_mut() {
                Some(Item {
                    value: Value::Table(t),
                    ..
                }) => t,
                _ => return Err(extend_error("an array")),
            },
            Value::Table(t) => {
                if dotted && t.implicit {
                    t.dotted = true;
                }
                t
            }
            other => return Err(extend_error(other.kind())),
        };
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Table<'_> {
        parse(text, None).expect("valid TOML")
    }

    fn error(text: &str) -> SyntaxError {
        parse(text, None).expect_err("invalid TOML")
    }

    fn get<'a, 's>(t: &'a Table<'s>, key: &str) -> &'a Item<'s> {
        &t.get(key).expect("key present").item
    }

    #[test]
    fn keys_values_and_their_spans() {
        let text = "a = 1\nb = \"x\"\nc = [1, 2.5, true]\nd = { e = 'y' }\n";
        let t = root(text);
        assert_eq!(get(&t, "a").value, Value::Integer(1));
        assert_eq!(&text[get(&t, "b").span.clone()], "\"x\"");
        assert_eq!(&text[get(&t, "c").span.clone()], "[1, 2.5, true]");
        assert_eq!(&text[get(&t, "d").span.clone()], "{ e = 'y' }");
        assert_eq!(&text[t.get("d").expect("d").key_span.clone()], "d");
    }

    #[test]
    fn headers_dotted_keys_and_arrays_of_tables() {
        let text = "[a.b]\nx = 1\n[a]\ny.z = 2\n[[t]]\nn = 1\n[t.k]\nm = 1\n[[t]]\nn = 2\n";
        let t = root(text);
        let Value::Table(a) = &get(&t, "a").value else {
            panic!("a is a table")
        };
        assert!(matches!(get(a, "b").value, Value::Table(_)));
        assert!(matches!(get(a, "y").value, Value::Table(_)));
        let Value::Array(arr) = &get(&t, "t").value else {
            panic!("t is an array")
        };
        assert_eq!(arr.items.len(), 2);
        assert_eq!(&text[arr.items[1].span.clone()], "[[t]]");
        let Value::Table(first) = &arr.items[0].value else {
            panic!("a table")
        };
        assert!(first.get("k").is_some());
    }

    #[test]
    fn multi_line_arrays_and_strings_are_one_expression() {
        let text = "a = [\n  1,\n  2,\n]\nb = \"\"\"\nx\n[y]\n\"\"\"\n";
        let t = root(text);
        let Value::Array(a) = &get(&t, "a").value else {
            panic!("an array")
        };
        assert_eq!(a.items.len(), 2);
        assert_eq!(get(&t, "b").value, Value::String("x\n[y]\n".into()));
    }

    #[test]
    fn what_toml_forbids() {
        assert!(
            error("a = 1\na = 2\n")
                .message
                .contains("duplicate key `a`")
        );
        assert!(error("[a]\n[a]\n").message.contains("duplicate key"));
        assert!(error("a = {}\n[a]\n").message.contains("duplicate key"));
        assert!(error("a = { b = 1 }\na.c = 1\n").message.contains("inline"));
        assert!(parse("[a]\nb = 1\n[c]\na.d = 2\n", None).is_ok());
        assert!(
            error("[a.b]\nx = 1\n[a]\nb.y = 2\n")
                .message
                .contains("duplicate key")
        );
        assert!(error("a = [1]\n[[a]]\n").message.contains("duplicate key"));
        assert!(
            error("x = 99999999999999999999\n")
                .message
                .contains("overflow")
        );
        assert!(error("x = 1979-13-45\n").span.start == 4);
        assert_eq!(error("name = demo\n").span, 7..11);
        let long_key = format!("{} = 1\n", vec!["a"; 100].join("."));
        assert!(error(&long_key).message.contains("too many parts"));
        let deep = format!("a = {}{}\n", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep, None).is_err());
    }

    #[test]
    fn tasks_are_handed_over_when_complete() {
        let text = "version = 1\n[[task]]\nid = \"a\"\n[task.env]\nX = \"1\"\n[[task]]\nid = \"b\"\n[f]\nx = 1\n";
        let mut seen = Vec::new();
        let mut on_task = |i: usize, item: Item<'_>| {
            let Value::Table(t) = item.value else {
                panic!("a table")
            };
            let id = match t.get("id").map(|e| &e.item.value) {
                Some(Value::String(s)) => Some(s.to_string()),
                _ => None,
            };
            seen.push((i, id, t.get("env").is_some()));
        };
        let t = parse(text, Some(&mut on_task)).expect("valid");
        assert_eq!(
            seen,
            vec![
                (0, Some("a".to_string()), true),
                (1, Some("b".to_string()), false)
            ]
        );
        let Value::Array(a) = &get(&t, "task").value else {
            panic!("an array")
        };
        assert!(a.items.is_empty());
        assert_eq!(a.taken, 2);
        assert!(t.get("f").is_some());
    }

    fn json(item: &Item<'_>) -> serde_json::Value {
        use serde_json::Value as J;
        match &item.value {
            Value::String(s) => J::String(s.to_string()),
            Value::Integer(i) => J::from(*i),
            Value::Float(f) => J::from(*f),
            Value::Boolean(b) => J::Bool(*b),
            Value::Datetime(d) => J::String(d.clone()),
            Value::Array(a) => J::Array(a.items.iter().map(json).collect()),
            Value::Table(t) => table_json(t),
        }
    }

    fn table_json(t: &Table<'_>) -> serde_json::Value {
        serde_json::Value::Object(
            t.entries
                .iter()
                .map(|(k, e)| (k.to_string(), json(&e.item)))
                .collect(),
        )
    }

    /// Lines that combine into tricky documents: headers, dotted keys and
    /// inline tables over the same few names.
    const LINES: &[&str] = &[
        "[a]",
        "[a.b]",
        "[a.b.c]",
        "[[a]]",
        "[[a.b]]",
        "[[task]]",
        "[task.e]",
        "[[task.e]]",
        "task.x = 1",
        "[b]",
        "a = 1",
        "b = 2",
        "a.b = 3",
        "b.c = 4",
        "a.b.c = 5",
        "c = { d = 1 }",
        "c.e = 1",
        "d = [1, 2]",
        "e = { f.g = 1, f.h = 2 }",
        "f = [{ x = 1 }, { y = 2 }]",
        "g = \"x\"",
        "h = 'it''s'",
        "i = 0x1F",
        "j = 1_000",
        "k = 1.5e3",
        "l = true",
        "m = [[1], [\"a\"]]",
        "\"q.r\" = 1",
        "n = \"\"\"",
        "two\nlines\"\"\"",
        "o = [",
        "  1,",
        "]",
        "# a comment",
        "",
        "p = ",
        "q = [1,,]",
        "r = {",
        "s = 1 2",
    ];

    /// Whatever the text, `parse` agrees with `toml_edit`: the same
    /// documents are valid, and they hold the same values.
    #[test]
    fn agrees_with_toml_edit() {
        use proptest::prelude::*;
        let lines = proptest::collection::vec(proptest::sample::select(LINES), 0..8);
        proptest!(ProptestConfig::with_cases(3000), |(picked in lines)| {
            let text = picked.join("\n") + "\n";
            let ours = parse(&text, None);
            let theirs = toml_edit::de::from_str::<serde_json::Value>(&text);
            match (&ours, &theirs) {
                (Ok(t), Ok(v)) => prop_assert_eq!(&table_json(t), v, "{}", text),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "{}\nours: {:?}\ntoml_edit: {:?}", text, ours.map(|t| table_json(&t)), theirs),
            }
            // Handing tasks over as they complete gives the same tables.
            let mut handed = Vec::new();
            let mut on_task = |_: usize, item: Item<'_>| handed.push(json(&item));
            if let (Ok(whole), Ok(_)) = (&ours, parse(&text, Some(&mut on_task))) {
                if let Some(Entry { item: Item { value: Value::Array(a), .. }, .. }) = whole.get("task") {
                    if a.of_tables {
                        let all: Vec<_> = a.items.iter().map(json).collect();
                        prop_assert_eq!(all, handed);
                    }
                }
            }
        });
    }

    /// Any text: an error or a tree, never a panic, and any error span
    /// lies within the text.
    #[test]
    fn never_panics() {
        use proptest::prelude::*;
        let punctuation = proptest::collection::vec(
            proptest::sample::select(
                &[
                    "[",
                    "]",
                    "[[",
                    "]]",
                    "{",
                    "}",
                    "=",
                    ".",
                    ",",
                    "\"",
                    "'",
                    "\"\"\"",
                    "\n",
                    "\r\n",
                    " ",
                    "#",
                    "a",
                    "task",
                    "1",
                    "1.5",
                    "0x",
                    "_",
                    "\\",
                    "é",
                    "1979-05-27",
                    "true",
                ][..],
            ),
            0..40,
        );
        proptest!(ProptestConfig::with_cases(3000), |(parts in punctuation, any in ".{0,60}")| {
            for text in [parts.concat(), any] {
                let mut on_task = |_: usize, _: Item<'_>| {};
                if let Err(e) = parse(&text, Some(&mut on_task)) {
                    prop_assert!(e.span.end <= text.len() && e.span.start <= e.span.end);
                }
            }
        });
    }

    #[test]
    fn crlf_lines() {
        let text = "a = 1\r\n[t]\r\nb = \"x\"\r\n";
        let t = root(text);
        let Value::Table(sub) = &get(&t, "t").value else {
            panic!("a table")
        };
        assert_eq!(&text[get(sub, "b").span.clone()], "\"x\"");
    }
}
