//! The `junit` format: one `<testsuites>` holding one `<testsuite>` named
//! after the job, with one `<testcase>` per record, valid against the
//! JUnit 10 schema (`junit-10.xsd`).
//!
//! The suite's header carries counts known only at the end, so testcases
//! are spooled (to an unlinked file next to the destination, or to memory
//! for standard output) and the document is assembled by `finish`. The
//! `@shared` record becomes the suite's `<properties>`, one per value.
//!
//! Each testcase's class is its task and its name `task[index] name`,
//! the map item named by what it ran on. A failure's message is the
//! error; its text is the error and the end of stderr, which CI servers
//! show as the test's details (`<system-err>` still holds all of it).
//!
//! Status mapping: `failed`, `timeout` and `crashed` are `<failure>`s,
//! `skipped` and `cancelled` are `<skipped>`; `errors` is always 0. Under
//! `reproducible` every `time` and the `timestamp` are left out (the schema
//! makes them optional).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::columns::tail_lines;
use super::item_name::label;
use super::record::{Record, Status};
use super::record_json::rfc3339_millis;
use super::writer::{RecordWriter, WriterOptions, write_whole};

/// Lines of stderr in a failure's text.
const TAIL_LINES: usize = 20;
/// Bytes of stderr looked at for those lines.
const TAIL_BYTES: usize = 8192;

/// Where testcases wait until the suite's header can be written.
#[derive(Debug)]
pub struct Spool {
    store: SpoolStore,
}

#[derive(Debug)]
enum SpoolStore {
    Memory(Vec<u8>),
    /// `path` is kept only if the file could not be unlinked right away;
    /// it is then removed on drop.
    /// Buffered: a testcase is a hundred bytes, and a write each was a
    /// system call per record.
    File {
        file: BufWriter<File>,
        path: Option<PathBuf>,
    },
}

impl Spool {
    /// A spool in memory.
    pub fn memory() -> Spool {
        Spool {
            store: SpoolStore::Memory(Vec::new()),
        }
    }

    /// A spool in a hidden file in `dest`'s folder, unlinked at once so
    /// that nothing is left behind even if the process is killed.
    pub fn file_next_to(dest: &Path) -> io::Result<Spool> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = dest.with_file_name(format!(".{name}.{}.testcases", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let path = fs::remove_file(&path).err().map(|_| path);
        Ok(Spool {
            store: SpoolStore::File {
                file: BufWriter::with_capacity(64 * 1024, file),
                path,
            },
        })
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.store {
            SpoolStore::Memory(buf) => {
                buf.extend_from_slice(bytes);
                Ok(())
            }
            SpoolStore::File { file, .. } => file.write_all(bytes),
        }
    }

    /// Everything spooled, in one piece when it is in memory.
    fn copy_to(&mut self, head: &[u8], tail: &[u8], out: &mut dyn Write) -> io::Result<()> {
        match &mut self.store {
            SpoolStore::Memory(buf) => {
                let mut doc = Vec::with_capacity(head.len() + buf.len() + tail.len());
                doc.extend_from_slice(head);
                doc.append(buf);
                doc.extend_from_slice(tail);
                write_whole(out, &doc)
            }
            SpoolStore::File { file, .. } => {
                file.flush()?;
                let file = file.get_mut();
                file.seek(SeekFrom::Start(0))?;
                out.write_all(head)?;
                io::copy(&mut Read::by_ref(file), out)?;
                write_whole(out, tail)
            }
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let SpoolStore::File {
            path: Some(path), ..
        } = &self.store
        {
            // Best effort: a leftover spool file is harmless.
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes a JUnit XML report; see the module documentation.
#[derive(Debug)]
pub struct JunitWriter<W> {
    out: W,
    spool: Spool,
    opts: WriterOptions,
    tests: u64,
    failures: u64,
    skipped: u64,
    /// The `@shared` values, as `(name, compact JSON)`.
    properties: Vec<(String, String)>,
    /// The earliest start and the latest end of any record.
    span: Option<(SystemTime, SystemTime)>,
    finished: bool,
}

impl<W: Write + Send> JunitWriter<W> {
    /// A writer to `out` that spools testcases in `spool` until `finish`.
    pub fn new(out: W, spool: Spool, opts: WriterOptions) -> JunitWriter<W> {
        JunitWriter {
            out,
            spool,
            opts,
            tests: 0,
            failures: 0,
            skipped: 0,
            properties: Vec::new(),
            span: None,
            finished: false,
        }
    }

    /// Gives back the output.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn note_time(&mut self, record: &Record) {
        let Some(start) = record.started else { return };
        let took = record
            .duration_ms
            .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
            .unwrap_or_default();
        let end = start.checked_add(took).unwrap_or(start);
        self.span = Some(match self.span {
            None => (start, end),
            Some((first, last)) => (first.min(start), last.max(end)),
        });
    }

    fn header(&self) -> String {
        let job = attr(&self.opts.job_name);
        let (tests, failures, skipped) = (self.tests, self.failures, self.skipped);
        let mut time = String::new();
        let mut timestamp = String::new();
        if let (false, Some((first, last))) = (self.opts.reproducible, self.span) {
            let secs = last.duration_since(first).unwrap_or_default().as_secs_f64();
            time = format!(r#" time="{secs:.3}""#);
            if let Some(t) = rfc3339_millis(first) {
                timestamp = format!(r#" timestamp="{t}""#);
            }
        }
        let mut head = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <testsuites name=\"{job}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\"{time}>\n\
             \x20 <testsuite name=\"{job}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
             skipped=\"{skipped}\"{time}{timestamp}>\n"
        );
        if !self.properties.is_empty() {
            head.push_str("    <properties>\n");
            for (name, value) in &self.properties {
                head.push_str(&format!(
                    "      <property name=\"{}\" value=\"{}\"/>\n",
                    attr(name),
                    attr(value)
                ));
            }
            head.push_str("    </properties>\n");
        }
        head
    }
}

/// One `<testcase>` element, indented for its place in the document: the
/// task as its class, `task[index] name` as its name (so a CI server lists
/// a map's items by what they ran on), and for a failure the error as its
/// message and the error, with the end of stderr, as its text, which is
/// what CI servers show as a test's details.
fn testcase(r: &Record, opts: &WriterOptions) -> String {
    let name = opts.names.of_record(r);
    let name = label(&r.task, r.index, name.as_deref());
    let mut xml = format!(
        r#"    <testcase classname="{}" name="{}""#,
        attr(&r.task),
        attr(&name)
    );
    if let (false, Some(ms)) = (opts.reproducible, r.duration_ms) {
        if ms.is_finite() && ms >= 0.0 {
            xml.push_str(&format!(r#" time="{:.3}""#, ms / 1000.0));
        }
    }
    let mut children = String::new();
    let message = attr(r.error.as_deref().unwrap_or(r.status.as_str()));
    match r.status {
        Status::Ok => {}
        Status::Failed | Status::Timeout | Status::Crashed => {
            let mut details = r.error.clone().unwrap_or_default();
            if let Some(signal) = r.signal {
                details.push_str(&format!("\nsignal: {signal}"));
            }
            // A testcase has no attribute for where it ran; the failure's
            // details are where it helps (which node was lost).
            if let (false, Some(host)) = (opts.reproducible, &r.host) {
                details.push_str(&format!("\nhost: {host}"));
            }
            if !r.stderr.trim().is_empty() {
                let tail = tail_lines(&r.stderr, TAIL_LINES, TAIL_BYTES);
                let shown = match r.stderr.trim_end().lines().count() > tail.len() {
                    true => format!("last {} lines of stderr", tail.len()),
                    false => "stderr".to_string(),
                };
                details.push_str(&format!("\n\n{shown}:\n{}", tail.join("\n")));
            }
            children.push_str(&format!(
                "      <failure message=\"{message}\" type=\"{}\">{}</failure>\n",
                r.status.as_str(),
                text(details.trim_start())
            ));
        }
        Status::Skipped | Status::Cancelled => {
            children.push_str(&format!(
                "      <skipped message=\"{message}\" type=\"{}\"/>\n",
                r.status.as_str()
            ));
        }
    }
    if !r.stdout.is_empty() {
        children.push_str(&format!(
            "      <system-out>{}</system-out>\n",
            text(&r.stdout)
        ));
    }
    if !r.stderr.is_empty() {
        children.push_str(&format!(
            "      <system-err>{}</system-err>\n",
            text(&r.stderr)
        ));
    }
    if children.is_empty() {
        xml.push_str("/>\n");
    } else {
        xml.push_str(">\n");
        xml.push_str(&children);
        xml.push_str("    </testcase>\n");
    }
    xml
}

/// `s` escaped for a double-quoted attribute. Whitespace other than spaces
/// is written as character references, which attribute normalization
/// would otherwise turn into spaces.
fn attr(s: &str) -> String {
    escape(s, true)
}

/// `s` escaped for element content.
fn text(s: &str) -> String {
    escape(s, false)
}

fn escape(s: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attr => out.push_str("&quot;"),
            '\n' if in_attr => out.push_str("&#10;"),
            '\t' if in_attr => out.push_str("&#9;"),
            // A parser turns a raw CR into LF, even in element content.
            '\r' => out.push_str("&#13;"),
            '\n' | '\t' => out.push(c),
            // Not allowed anywhere in an XML 1.0 document, not even as a
            // character reference.
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

impl<W: Write + Send> RecordWriter for JunitWriter<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other(
                "a record was written after the report was finished",
            ));
        }
        if record.is_shared() {
            match &record.value {
                Value::Object(values) => {
                    for (name, value) in values {
                        self.properties.push((name.clone(), value.to_string()));
                    }
                }
                other => self
                    .properties
                    .push((record.task.clone(), other.to_string())),
            }
            return Ok(());
        }
        self.spool.append(testcase(record, &self.opts).as_bytes())?;
        self.tests += 1;
        match record.status {
            Status::Ok => {}
            Status::Failed | Status::Timeout | Status::Crashed => self.failures += 1,
            Status::Skipped | Status::Cancelled => self.skipped += 1,
        }
        self.note_time(record);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Test cases wait in the spool until the document is assembled.
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let head = self.header();
        self.spool.copy_to(
            head.as_bytes(),
            b"  </testsuite>\n</testsuites>\n",
            &mut self.out,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use quick_xml::events::Event;
    use quick_xml::{Reader, XmlVersion};

    use super::*;
    use crate::report::testing::{assorted, sample};

    const XSD: &str = "/work/shared/junit/junit-10.xsd";

    fn opts(reproducible: bool) -> WriterOptions {
        WriterOptions {
            reproducible,
            job_name: "thumb<nails> & \"co\"".into(),
            ..Default::default()
        }
    }

    fn run(records: &[Record], reproducible: bool) -> String {
        let mut w = JunitWriter::new(Vec::new(), Spool::memory(), opts(reproducible));
        for r in records {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
        w.finish().unwrap();
        String::from_utf8(w.into_inner()).unwrap()
    }

    type Element = (String, Vec<(String, String)>);

    /// Every element as (name, attributes) and all text, read by a real
    /// XML parser (which fails on anything malformed).
    fn parse(xml: &str) -> (Vec<Element>, String) {
        let mut reader = Reader::from_str(xml);
        let mut elements = Vec::new();
        let mut content = String::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.name().as_ref().to_string();
                    let attrs = e
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            let key = a.key.as_ref().to_string();
                            (
                                key,
                                a.normalized_value(XmlVersion::Implicit1_0)
                                    .unwrap()
                                    .into_owned(),
                            )
                        })
                        .collect();
                    elements.push((name, attrs));
                }
                Event::Text(t) => content.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => match r.resolve_char_ref().unwrap() {
                    Some(c) => content.push(c),
                    None => content.push_str(match &*r {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unknown entity {other}"),
                    }),
                },
                Event::Eof => break,
                _ => {}
            }
        }
        (elements, content)
    }

    fn get<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Validates against the schema when xmllint is there.
    fn validate(xml: &str) {
        if !Path::new(XSD).exists() || Command::new("xmllint").arg("--version").output().is_err() {
            eprintln!("xmllint or the schema is missing; not validating");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.xml");
        fs::write(&path, xml).unwrap();
        let out = Command::new("xmllint")
            .args(["--noout", "--schema", XSD])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn zero_records() {
        for reproducible in [false, true] {
            let xml = run(&[], reproducible);
            validate(&xml);
            let (elements, _) = parse(&xml);
            let names: Vec<_> = elements.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["testsuites", "testsuite"]);
            assert_eq!(get(&elements[1].1, "tests"), Some("0"));
            assert_eq!(get(&elements[1].1, "name"), Some("thumb<nails> & \"co\""));
        }
    }

    #[test]
    fn one_record() {
        let xml = run(&[sample()], false);
        validate(&xml);
        let (elements, _) = parse(&xml);
        let case = &elements[2];
        assert_eq!(case.0, "testcase");
        assert_eq!(get(&case.1, "name"), Some("thumbs[3]"));
        assert_eq!(get(&case.1, "time"), Some("0.041"));
        assert_eq!(get(&elements[1].1, "time"), Some("0.041"));
        assert_eq!(
            get(&elements[1].1, "timestamp"),
            Some("2026-11-27T10:00:00.000Z")
        );
    }

    #[test]
    fn a_crash_on_another_machine_names_it_unless_reproducible() {
        let mut r = sample();
        r.status = Status::Crashed;
        r.error = Some("the worker died: its node node2 was lost".into());
        r.host = Some("node2".into());
        let xml = run(&[r.clone()], false);
        validate(&xml);
        assert!(xml.contains("\nhost: node2</failure>"), "{xml}");
        assert!(!run(&[r], true).contains("node2</failure>"));
    }

    #[test]
    fn many_records_counted_and_escaped() {
        let records = assorted();
        for reproducible in [false, true] {
            let xml = run(&records, reproducible);
            validate(&xml);
            let (elements, content) = parse(&xml);
            let suite = &elements[1].1;
            assert_eq!(get(suite, "tests"), Some("8"));
            assert_eq!(get(suite, "failures"), Some("3"));
            assert_eq!(get(suite, "errors"), Some("0"));
            assert_eq!(get(suite, "skipped"), Some("2"));
            assert_eq!(get(suite, "time").is_none(), reproducible);
            let cases: Vec<_> = elements.iter().filter(|(n, _)| n == "testcase").collect();
            assert_eq!(get(&cases[1].1, "name"), Some("thumbs[0]"));
            assert_eq!(get(&cases[5].1, "name"), Some("later"));
            assert_eq!(get(&cases[0].1, "time").is_none(), reproducible);
            assert_eq!(get(&cases[5].1, "time"), None, "never ran");
            let failure = elements.iter().find(|(n, _)| n == "failure").unwrap();
            assert_eq!(
                get(&failure.1, "message"),
                Some("<Failed> & 'why' \"\u{fffd}\u{7f}\u{fffd}\r\t]]>")
            );
            assert_eq!(get(&failure.1, "type"), Some("failed"));
            let skipped: Vec<_> = elements.iter().filter(|(n, _)| n == "skipped").collect();
            assert_eq!(get(&skipped[1].1, "type"), Some("cancelled"));
            // Text content keeps newlines and carriage returns.
            assert!(content.contains("done, \"quoted\"\nnext line\n"));
            assert!(content.contains("bad\u{fffd}byte <tag> & \r\n"));
            let props: Vec<_> = elements
                .iter()
                .filter(|(n, _)| n == "property")
                .map(|(_, a)| (get(a, "name").unwrap(), get(a, "value").unwrap()))
                .collect();
            assert_eq!(props.len(), 2);
            assert!(props.contains(&("log", r#"["a","b"]"#)));
        }
    }

    #[test]
    fn reproducible_output_does_not_depend_on_timing() {
        let mut other = assorted();
        for r in &mut other {
            r.duration_ms = r.duration_ms.map(|ms| ms * 3.0);
            r.started = None;
        }
        assert_eq!(run(&assorted(), true), run(&other, true));
    }

    #[test]
    fn spooled_to_a_file_next_to_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out/report.xml");
        let mut w = crate::report::open_writer(
            crate::report::Format::Junit,
            crate::report::Destination::File(dest.clone()),
            opts(false),
        )
        .unwrap();
        for r in assorted() {
            w.write(&r).unwrap();
        }
        w.finish().unwrap();
        drop(w);
        let xml = fs::read_to_string(&dest).unwrap();
        validate(&xml);
        assert_eq!(xml, run(&assorted(), false));
        let left: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "the spool file is gone");
    }

    #[test]
    fn reproducible_snapshot() {
        insta::assert_snapshot!(run(&assorted(), true));
    }
}
