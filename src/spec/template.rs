//! Placeholder templates of `command` functions: `{0}`, `{name}`, `{item}`,
//! `{item.stem}`, `{vars.NAME}`, with `{{` and `}}` for literal braces.
//!
//! A template is parsed once, when the job is checked; rendering only looks
//! values up. Substitution stays inside one argv element: a value is never
//! split or re-parsed.

use std::fmt;

use serde_json::Value;

/// One parsed argv element.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text copied as is.
    Literal(String),
    /// `{0}`, `{1}`...: a positional argument.
    Positional(usize),
    /// `{name}`: a keyword argument.
    Keyword(String),
    /// `{item}` or `{item.FIELD}`: the map item.
    Item(ItemField),
    /// `{vars.NAME}`: a variable.
    Var(String),
}

/// Which part of a map item a placeholder takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemField {
    /// `{item}`: the whole item.
    Whole,
    /// `{item.name}`: the file name, `a.b.jpg`.
    Name,
    /// `{item.stem}`: the file name without its last extension, `a.b`.
    Stem,
    /// `{item.ext}`: the last extension without the dot, `jpg`.
    Ext,
    /// `{item.dir}`: the folder, `.` when there is none.
    Dir,
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    /// Byte offset in the template text where the problem starts.
    pub offset: usize,
    pub message: String,
}

/// The values a template is rendered with.
pub struct Bindings<'a> {
    pub args: &'a [Value],
    pub kwargs: &'a serde_json::Map<String, Value>,
    pub item: Option<&'a Value>,
    pub vars: &'a std::collections::BTreeMap<String, String>,
}

/// A placeholder with no value at render time.
#[derive(Debug, Clone, PartialEq)]
pub struct Unbound(pub String);

impl fmt::Display for Unbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "placeholder `{{{}}}` has no value", self.0)
    }
}

impl Template {
    /// Parses one argv element.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(TemplateError {
                        offset: at,
                        message: "a lone `}`: write `}}` for a literal brace".into(),
                    });
                }
                '{' => {
                    let start = at + 1;
                    let mut end = None;
                    for (i, n) in chars.by_ref() {
                        if n == '}' {
                            end = Some(i);
                            break;
                        }
                    }
                    let Some(end) = end else {
                        return Err(TemplateError {
                            offset: at,
                            message: "an unclosed `{`: write `{{` for a literal brace".into(),
                        });
                    };
                    let name = &text[start..end];
                    let part = parse_placeholder(name).map_err(|message| TemplateError {
                        offset: at,
                        message,
                    })?;
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() || parts.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// A template that renders as the empty string.
    pub fn empty() -> Template {
        Template {
            parts: vec![Part::Literal(String::new())],
        }
    }

    /// The pieces of the template.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Fills the placeholders.
    pub fn render(&self, b: &Bindings<'_>) -> Result<String, Unbound> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Positional(i) => match b.args.get(*i) {
                    Some(v) => push_value(&mut out, v),
                    None => return Err(Unbound(i.to_string())),
                },
                Part::Keyword(k) => match b.kwargs.get(k) {
                    Some(v) => push_value(&mut out, v),
                    None => return Err(Unbound(k.clone())),
                },
                Part::Item(field) => match b.item {
                    Some(v) => out.push_str(&item_field(v, *field)),
                    None => return Err(Unbound(field.placeholder().into())),
                },
                Part::Var(name) => match b.vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => return Err(Unbound(format!("vars.{name}"))),
                },
            }
        }
        Ok(out)
    }
}

impl ItemField {
    /// The placeholder as written, without braces.
    pub fn placeholder(self) -> &'static str {
        match self {
            ItemField::Whole => "item",
            ItemField::Name => "item.name",
            ItemField::Stem => "item.stem",
            ItemField::Ext => "item.ext",
            ItemField::Dir => "item.dir",
        }
    }
}

fn parse_placeholder(name: &str) -> Result<Part, String> {
    if name.is_empty() {
        return Err("an empty placeholder `{}`: write `{{}}` for literal braces".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return name
            .parse()
            .map(Part::Positional)
            .map_err(|_| format!("placeholder `{{{name}}}` is out of range"));
    }
    if let Some(var) = name.strip_prefix("vars.") {
        if is_identifier(var) {
            return Ok(Part::Var(var.to_string()));
        }
        return Err(format!("`{{{name}}}` is not a valid variable name"));
    }
    let field = match name {
        "item" => Some(ItemField::Whole),
        "item.name" => Some(ItemField::Name),
        "item.stem" => Some(ItemField::Stem),
        "item.ext" => Some(ItemField::Ext),
        "item.dir" => Some(ItemField::Dir),
        _ => None,
    };
    if let Some(field) = field {
        return Ok(Part::Item(field));
    }
    if name.starts_with("item.") {
        return Err(format!(
            "unknown placeholder `{{{name}}}`: expected `{{item}}`, `{{item.name}}`, \
             `{{item.stem}}`, `{{item.ext}}` or `{{item.dir}}`"
        ));
    }
    if is_identifier(name) {
        return Ok(Part::Keyword(name.to_string()));
    }
    Err(format!(
        "unknown placeholder `{{{name}}}`: expected `{{0}}`, `{{NAME}}`, `{{item}}` or \
         `{{vars.NAME}}` (write `{{{{` for a literal brace)"
    ))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// A value as text: strings as they are, anything else as compact JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => out.push_str(s),
        other => out.push_str(&other.to_string()),
    }
}

/// One field of a map item, treating the item as a path.
pub fn item_field(item: &Value, field: ItemField) -> String {
    let text = value_text(item);
    if field == ItemField::Whole {
        return text;
    }
    let (dir, name) = match text.rfind('/') {
        Some(i) if i > 0 => (&text[..i], &text[i + 1..]),
        Some(_) => ("/", &text[1..]),
        None => (".", text.as_str()),
    };
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    match field {
        ItemField::Whole => text.clone(),
        ItemField::Name => name.to_string(),
        ItemField::Stem => stem.to_string(),
        ItemField::Ext => ext.to_string(),
        ItemField::Dir => dir.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, args: &[Value], item: Option<&Value>) -> String {
        let kwargs = serde_json::Map::from_iter([("w".to_string(), json!(200))]);
        let vars = [("width".to_string(), "400".to_string())].into();
        let b = Bindings {
            args,
            kwargs: &kwargs,
            item,
            vars: &vars,
        };
        Template::parse(t).unwrap().render(&b).unwrap()
    }

    #[test]
    fn fills_every_kind_of_placeholder() {
        let item = json!("images/a.b.jpg");
        assert_eq!(render("{0}-{1}", &[json!("x"), json!(3)], None), "x-3");
        assert_eq!(render("--w={w}", &[], None), "--w=200");
        assert_eq!(render("{vars.width}", &[], None), "400");
        assert_eq!(render("{item}", &[], Some(&item)), "images/a.b.jpg");
        assert_eq!(render("{item.name}", &[], Some(&item)), "a.b.jpg");
        assert_eq!(render("t/{item.stem}.png", &[], Some(&item)), "t/a.b.png");
        assert_eq!(render("{item.ext}", &[], Some(&item)), "jpg");
        assert_eq!(render("{item.dir}", &[], Some(&item)), "images");
        assert_eq!(render("{item.dir}", &[], Some(&json!("a.txt"))), ".");
        assert_eq!(render("{{0}} }}", &[], None), "{0} }");
        assert_eq!(render("{0}", &[json!(["a", "b"])], None), r#"["a","b"]"#);
        assert_eq!(render("{0}", &[json!(null)], None), "null");
        assert_eq!(render("", &[], None), "");
    }

    #[test]
    fn rejects_bad_braces_with_their_offset() {
        assert_eq!(Template::parse("ab{0").unwrap_err().offset, 2);
        assert_eq!(Template::parse("a}b").unwrap_err().offset, 1);
        assert!(Template::parse("{item.size}").is_err());
        assert!(Template::parse("{}").is_err());
        assert!(Template::parse("{a b}").is_err());
    }

    #[test]
    fn reports_unbound_placeholders() {
        let t = Template::parse("{2}").unwrap();
        let vars = Default::default();
        let kwargs = Default::default();
        let b = Bindings {
            args: &[json!(1)],
            kwargs: &kwargs,
            item: None,
            vars: &vars,
        };
        assert_eq!(t.render(&b), Err(Unbound("2".into())));
    }
}
