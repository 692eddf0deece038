//! YAML documents as trees of [`Node`]s that remember where each value came from.
//!
//! Playbooks, inventories and variable files are all loaded through here, so that
//! any later error (an unknown module argument, a template error) can point at the
//! exact `file:line:col`.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YamlSpan, Tag};

use crate::diagnostic::{Diagnostic, SourceFile, Span};

/// Prefix of a string that YAML tagged `!unsafe` and that contains Jinja syntax,
/// which templates never render.
///
/// The character is in Unicode's private use area, and the loader rejects it in
/// any other string, so user data cannot carry the mark by accident. The mark stays
/// in [`Node::to_json`], and the template layer strips it instead of rendering.
///
/// Code that reads a variable without rendering it (the executor's connection and
/// become settings) receives the mark too, so it calls [`strip_unsafe`].
pub const UNSAFE_PREFIX: char = '\u{10FFFD}';

/// Returns the text of a string tagged `!unsafe` without its mark, or `None` for
/// any other string.
pub fn strip_unsafe(text: &str) -> Option<&str> {
    text.strip_prefix(UNSAFE_PREFIX)
}

#[derive(Debug, Clone)]
pub struct Node {
    pub value: NodeValue,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    /// Mappings keep their source order, which matters for handlers and diffs.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Returns the text of a string node, without the mark of an `!unsafe` string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(strip_unsafe(s).unwrap_or(s)),
            _ => None,
        }
    }

    /// Returns whether the node is a string tagged `!unsafe`.
    pub fn is_unsafe(&self) -> bool {
        matches!(&self.value, NodeValue::String(s) if s.starts_with(UNSAFE_PREFIX))
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            NodeValue::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// Looks up `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Returns a short name of the node's type for error messages ("a mapping", "a string").
    pub fn kind(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// Converts the tree to JSON, dropping locations. Non-string map keys become strings,
    /// and `!unsafe` strings keep their [`UNSAFE_PREFIX`].
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Returns a scalar as text, the way YAML wrote it for strings and numbers.
    pub fn scalar_string(&self) -> String {
        match &self.value {
            NodeValue::Null => String::new(),
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Int(i) => i.to_string(),
            NodeValue::Float(f) => f.to_string(),
            NodeValue::String(s) => strip_unsafe(s).unwrap_or(s).to_string(),
            NodeValue::Seq(_) | NodeValue::Map(_) => self.to_json().to_string(),
        }
    }

    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.span, message)
    }
}

/// Parses the first YAML document of `source`. An empty document is `Null` at 1:1.
///
/// Plain scalars are resolved the way PyYAML (and so Ansible) does, with YAML 1.1
/// rules: `yes`/`no`/`on`/`off` are booleans and `0644` is an octal integer.
/// Anchors, aliases and `<<` merge keys are expanded.
pub fn parse(source: Arc<SourceFile>) -> Result<Node, Diagnostic> {
    let text = source.text.clone();
    let mut loader = Loader {
        source: source.clone(),
        anchors: HashMap::new(),
    };
    let mut events = Parser::new_from_str(&text).peekable();
    loop {
        match loader.next_event(&mut events)? {
            None => return Ok(Node::null_at(&source)),
            Some((Event::StreamEnd, _)) => return Ok(Node::null_at(&source)),
            Some((Event::DocumentStart(_), _)) => break,
            Some(_) => continue,
        }
    }
    let first = loader.next_event(&mut events)?;
    match first {
        None | Some((Event::DocumentEnd, _)) | Some((Event::StreamEnd, _)) => {
            Ok(Node::null_at(&source))
        }
        Some((event, span)) => loader.node(event, span, &mut events),
    }
}

type Events<'a> = std::iter::Peekable<Parser<'a, saphyr_parser::StrInput<'a>>>;

struct Loader {
    source: Arc<SourceFile>,
    anchors: HashMap<usize, Node>,
}

impl Loader {
    fn next_event<'a>(
        &self,
        events: &mut Events<'a>,
    ) -> Result<Option<(Event<'a>, YamlSpan)>, Diagnostic> {
        match events.next() {
            None => Ok(None),
            Some(Ok(pair)) => Ok(Some(pair)),
            Some(Err(error)) => {
                let marker = error.marker();
                let span = Span::new(self.source.clone(), marker.line().max(1), marker.col() + 1);
                Err(
                    Diagnostic::at(&span, format!("invalid YAML: {}", error.info())).with_help(
                        "check the indentation and quoting on this line and the one above",
                    ),
                )
            }
        }
    }

    fn span(&self, span: &YamlSpan) -> Span {
        Span::new(
            self.source.clone(),
            span.start.line().max(1),
            span.start.col() + 1,
        )
    }

    fn node<'a>(
        &mut self,
        event: Event<'a>,
        yaml_span: YamlSpan,
        events: &mut Events<'a>,
    ) -> Result<Node, Diagnostic> {
        let span = self.span(&yaml_span);
        match event {
            Event::Alias(id) => self
                .anchors
                .get(&id)
                .cloned()
                .ok_or_else(|| Diagnostic::at(&span, "alias refers to an unknown anchor")),
            Event::Scalar(value, style, anchor, tag) => {
                let node = Node {
                    value: resolve_scalar(&value, style, tag.as_deref(), &span)?,
                    span,
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    match self.next_event(events)? {
                        Some((Event::SequenceEnd, _)) => break,
                        Some((event, item_span)) => {
                            items.push(self.node(event, item_span, events)?)
                        }
                        None => {
                            return Err(Diagnostic::at(&span, "invalid YAML: unterminated list"))
                        }
                    }
                }
                let node = Node {
                    value: NodeValue::Seq(items),
                    span,
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<(Node, Node)> = Vec::new();
                let mut merged: Vec<(Node, Node)> = Vec::new();
                loop {
                    let key = match self.next_event(events)? {
                        Some((Event::MappingEnd, _)) => break,
                        Some((event, key_span)) => self.node(event, key_span, events)?,
                        None => {
                            return Err(Diagnostic::at(&span, "invalid YAML: unterminated mapping"))
                        }
                    };
                    let value = match self.next_event(events)? {
                        Some((event, value_span)) => self.node(event, value_span, events)?,
                        None => {
                            return Err(Diagnostic::at(
                                &span,
                                "invalid YAML: mapping key without a value",
                            ))
                        }
                    };
                    if key.as_str() == Some("<<") {
                        collect_merge(&value, &mut merged)?;
                        continue;
                    }
                    insert_entry(&mut entries, key, value);
                }
                for (key, value) in merged {
                    let present = entries
                        .iter()
                        .any(|(k, _)| k.scalar_string() == key.scalar_string());
                    if !present {
                        entries.push((key, value));
                    }
                }
                let node = Node {
                    value: NodeValue::Map(entries),
                    span,
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            other => Err(Diagnostic::at(
                &span,
                format!("invalid YAML: unexpected {other:?}"),
            )),
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }
}

/// Inserts a mapping entry; a repeated key replaces the earlier value, as PyYAML does.
fn insert_entry(entries: &mut Vec<(Node, Node)>, key: Node, value: Node) {
    let name = key.scalar_string();
    if let Some(existing) = entries.iter_mut().find(|(k, _)| k.scalar_string() == name) {
        *existing = (key, value);
    } else {
        entries.push((key, value));
    }
}

fn collect_merge(value: &Node, merged: &mut Vec<(Node, Node)>) -> Result<(), Diagnostic> {
    match &value.value {
        NodeValue::Map(entries) => {
            for (key, item) in entries {
                if !merged
                    .iter()
                    .any(|(k, _)| k.scalar_string() == key.scalar_string())
                {
                    merged.push((key.clone(), item.clone()));
                }
            }
            Ok(())
        }
        NodeValue::Seq(items) => items
            .iter()
            .try_for_each(|item| collect_merge(item, merged)),
        _ => Err(value.error("a `<<` merge key needs a mapping or a list of mappings")),
    }
}

fn resolve_scalar(
    value: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    span: &Span,
) -> Result<NodeValue, Diagnostic> {
    if value.contains(UNSAFE_PREFIX) {
        return Err(Diagnostic::at(
            span,
            "string contains the character U+10FFFD, which vpsforge reserves to mark `!unsafe` strings",
        )
        .with_help("remove the character from the file"));
    }
    if let Some(tag) = tag {
        let name = format!("{}{}", tag.handle, tag.suffix);
        return match name.as_str() {
            // Only text that a template would change needs the mark, so plain unsafe
            // values such as passwords stay exactly as written for code that reads
            // them without rendering.
            "!unsafe" if crate::template::has_jinja_syntax(value) => {
                Ok(NodeValue::String(format!("{UNSAFE_PREFIX}{value}")))
            }
            "!unsafe" => Ok(NodeValue::String(value.to_string())),
            "!!str" | "tag:yaml.org,2002:str" => Ok(NodeValue::String(value.to_string())),
            "!vault" => Err(
                Diagnostic::at(span, "`!vault` values are not supported").with_help(
                    "pass the secret with `-e @secrets.yaml` from a file you decrypt yourself",
                ),
            ),
            "!!int" | "!!float" | "!!bool" | "!!null" => Ok(resolve_plain(value)),
            _ => Ok(NodeValue::String(value.to_string())),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(NodeValue::String(value.to_string()));
    }
    Ok(resolve_plain(value))
}

/// Resolves a plain scalar with YAML 1.1 rules, as PyYAML does.
fn resolve_plain(value: &str) -> NodeValue {
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return NodeValue::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return NodeValue::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return NodeValue::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return NodeValue::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return NodeValue::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return NodeValue::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = parse_int(value) {
        return NodeValue::Int(int);
    }
    let float_like = value.contains('.')
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E' | '_'))
        && value.chars().any(|c| c.is_ascii_digit());
    if float_like {
        if let Ok(float) = value.replace('_', "").parse::<f64>() {
            return NodeValue::Float(float);
        }
    }
    NodeValue::String(value.to_string())
}

fn parse_int(value: &str) -> Option<i64> {
    let (negative, digits) = match value.as_bytes().first()? {
        b'-' => (true, &value[1..]),
        b'+' => (false, &value[1..]),
        _ => (false, value),
    };
    if digits.is_empty() || digits.starts_with('_') {
        return None;
    }
    let digits = digits.replace('_', "");
    let parsed = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(binary) = digits.strip_prefix("0b") {
        i64::from_str_radix(binary, 2).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if negative { -parsed } else { parsed })
}

impl Node {
    fn null_at(source: &Arc<SourceFile>) -> Node {
        Node {
            value: NodeValue::Null,
            span: Span::new(source.clone(), 1, 1),
        }
    }
}

/// Reads and parses a YAML file.
pub fn load_file(path: &std::path::Path) -> Result<Node, Diagnostic> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::new(format!("cannot read `{}`: {e}", path.display())))?;
    parse(SourceFile::new(path, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Node, Diagnostic> {
        parse(SourceFile::new("test.yaml", text))
    }

    #[test]
    fn scalars_follow_yaml_1_1() {
        let node = load(
            "a: yes\nb: 'yes'\nc: 0644\nd: 12\ne: 1.5\nf: ~\ng: off\nh: 0x1f\ni: text\nj: 1.2.3\n",
        )
        .unwrap();
        let json = node.to_json();
        assert_eq!(json["a"], serde_json::json!(true));
        assert_eq!(json["b"], serde_json::json!("yes"));
        assert_eq!(json["c"], serde_json::json!(420));
        assert_eq!(json["d"], serde_json::json!(12));
        assert_eq!(json["e"], serde_json::json!(1.5));
        assert_eq!(json["f"], serde_json::Value::Null);
        assert_eq!(json["g"], serde_json::json!(false));
        assert_eq!(json["h"], serde_json::json!(31));
        assert_eq!(json["i"], serde_json::json!("text"));
        assert_eq!(json["j"], serde_json::json!("1.2.3"));
    }

    #[test]
    fn spans_point_at_values() {
        let node = load("- hosts: all\n  tasks:\n    - apt: name=nginx\n").unwrap();
        let task = &node.as_seq().unwrap()[0]
            .get("tasks")
            .unwrap()
            .as_seq()
            .unwrap()[0];
        let apt = task.get("apt").unwrap();
        assert_eq!((apt.span.line, apt.span.col), (3, 12));
        let key = &task.as_map().unwrap()[0].0;
        assert_eq!((key.span.line, key.span.col), (3, 7));
    }

    #[test]
    fn anchors_and_merge_keys_expand() {
        let node = load("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: [*b]\n").unwrap();
        let json = node.to_json();
        assert_eq!(json["other"], serde_json::json!({"y": 3, "x": 1}));
        assert_eq!(json["list"][0]["x"], serde_json::json!(1));
    }

    #[test]
    fn syntax_error_has_location() {
        let error = load("a: [1, 2\nb: 3\n").unwrap_err();
        let span = error.span.clone().unwrap();
        assert!(
            error.message.starts_with("invalid YAML: "),
            "{}",
            error.message
        );
        assert!(span.line >= 1);
        assert!(error.render().contains("test.yaml:"), "{}", error.render());
    }

    #[test]
    fn empty_document_is_null() {
        assert!(matches!(load("").unwrap().value, NodeValue::Null));
        assert!(matches!(
            load("# only a comment\n").unwrap().value,
            NodeValue::Null
        ));
    }

    #[test]
    fn unsafe_tag_marks_string() {
        let node = load("raw: !unsafe \"{{ not_a_template }}\"\nplain: \"{{ x }}\"\n").unwrap();
        let raw = node.get("raw").unwrap();
        assert!(raw.is_unsafe());
        assert_eq!(raw.as_str(), Some("{{ not_a_template }}"));
        assert_eq!(raw.scalar_string(), "{{ not_a_template }}");
        let json = node.to_json();
        let text = json["raw"].as_str().unwrap();
        assert_eq!(strip_unsafe(text), Some("{{ not_a_template }}"));
        assert!(!node.get("plain").unwrap().is_unsafe());

        let node = load("password: !unsafe \"s3cr%t\"\n").unwrap();
        assert_eq!(node.to_json()["password"], serde_json::json!("s3cr%t"));
        assert_eq!(strip_unsafe(json["plain"].as_str().unwrap()), None);
    }

    #[test]
    fn unsafe_mark_rejected_in_input() {
        for text in [
            "a: \"\u{10FFFD}{{ x }}\"\n",
            "a: !unsafe \"\u{10FFFD}x\"\n",
            "\u{10FFFD}: 1\n",
        ] {
            let error = load(text).unwrap_err();
            assert!(
                error.message.contains("U+10FFFD"),
                "{text:?}: {}",
                error.message
            );
        }
    }

    #[test]
    fn vault_tag_is_rejected() {
        let error = load("password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n").unwrap_err();
        assert_eq!(error.message, "`!vault` values are not supported");
    }
}
