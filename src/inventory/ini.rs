//! Ansible's INI inventory format, as ansible-core 2.19's `ini` plugin reads it.
//!
//! Host lines before any section belong to `ungrouped`. `[NAME]` lists hosts as
//! `name key=value ...`, `[NAME:vars]` sets group variables as `key=value`, and
//! `[NAME:children]` lists child groups. Every value goes through Python's
//! `ast.literal_eval` rules (see `literal`), and stays a string when they fail.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::{Map, Value};

use super::{literal, port_vars, range, Inventory};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, Span};

static SECTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$").expect("valid regex"));

static GROUP_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([^:\]\s]+)\s*(?:#.*)?$").expect("valid regex"));

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Hosts,
    Vars,
    Children,
    /// A section with an invalid header. Its lines are skipped so that one mistake
    /// gives one error.
    Invalid,
}

/// A group that a line refers to before the file declares it.
struct Reference {
    span: Span,
    message: String,
    help: String,
}

pub(super) fn load(inventory: &mut Inventory, file: &Arc<SourceFile>, errors: &mut Diagnostics) {
    let mut loader = Loader {
        declared: inventory.groups.keys().cloned().collect(),
        references: BTreeMap::new(),
        group: "ungrouped".to_string(),
        section: Section::Hosts,
        inventory,
        errors,
    };

    for (index, raw) in file.text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
        let span = Span::new(file.clone(), index + 1, indent + 1);

        if let Some(captures) = SECTION.captures(line) {
            let suffix = captures.get(2).map(|m| m.as_str());
            loader.section_header(&captures[1], suffix, line, &span);
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            loader.errors.push(
                Diagnostic::at(&span, format!("invalid section header `{line}`")).with_help(
                    "a section header is `[NAME]`, `[NAME:vars]` or `[NAME:children]`, with no spaces",
                ),
            );
            loader.section = Section::Invalid;
            continue;
        }

        match loader.section {
            Section::Hosts => {
                if let Err(error) = load_host_line(loader.inventory, &loader.group, line, &span) {
                    loader.errors.push(error);
                }
            }
            Section::Vars => loader.vars_line(line, &span),
            Section::Children => loader.children_line(line, &span),
            Section::Invalid => {}
        }
    }

    loader.report_undefined_groups();
}

/// The state of one INI file being read: the current section and the groups it
/// refers to, which must be declared somewhere in the file or in an earlier source.
struct Loader<'a> {
    inventory: &'a mut Inventory,
    errors: &'a mut Diagnostics,
    group: String,
    section: Section,
    declared: Vec<String>,
    references: BTreeMap<String, Reference>,
}

impl Loader<'_> {
    fn section_header(&mut self, group: &str, suffix: Option<&str>, line: &str, span: &Span) {
        self.group = group.to_string();
        self.section = match suffix {
            None => Section::Hosts,
            Some("vars") => Section::Vars,
            Some("children") => Section::Children,
            Some(other) => {
                let at = span.offset(0, group.chars().count() + 2);
                self.errors.push(
                    Diagnostic::at(&at, format!("unknown section type `{other}` in `{line}`"))
                        .with_help(format!(
                            "write `[{group}]` for hosts, `[{group}:vars]` for variables or `[{group}:children]` for child groups"
                        )),
                );
                Section::Invalid
            }
        };
        if self.section == Section::Invalid {
            return;
        }

        self.inventory.ensure_group(group);
        if self.section == Section::Vars {
            self.references.entry(group.to_string()).or_insert_with(|| Reference {
                span: span.clone(),
                message: format!(
                    "section `[{group}:vars]` sets variables of group `{group}`, which is not defined"
                ),
                help: format!(
                    "add a `[{group}]` section with its hosts, or a `[{group}:children]` section"
                ),
            });
        } else {
            self.declared.push(group.to_string());
        }
    }

    fn vars_line(&mut self, line: &str, span: &Span) {
        let group = &self.group;
        match line.split_once('=') {
            Some((key, value)) => {
                let value = parse_value(value.trim());
                self.inventory
                    .ensure_group(group)
                    .vars
                    .insert(key.trim().to_string(), value);
            }
            None => self.errors.push(
                Diagnostic::at(
                    span,
                    format!("expected `key=value` in `[{group}:vars]`, found `{line}`"),
                )
                .with_help("write one `name=value` line per variable"),
            ),
        }
    }

    fn children_line(&mut self, line: &str, span: &Span) {
        let group = &self.group;
        let Some(captures) = GROUP_NAME.captures(line) else {
            self.errors.push(
                Diagnostic::at(
                    span,
                    format!("invalid group name `{line}` in `[{group}:children]`"),
                )
                .with_help("list one group name per line, without spaces or `:`"),
            );
            return;
        };
        let child = captures[1].to_string();
        if let Err(message) = self.inventory.add_child(group, &child) {
            self.errors.push(Diagnostic::at(span, message));
            return;
        }
        self.references
            .entry(child.clone())
            .or_insert_with(|| Reference {
                span: span.clone(),
                message: format!("group `{child}` in `[{group}:children]` is not defined"),
                help: format!("add a `[{child}]` section, which may be empty, or remove this line"),
            });
    }

    /// Reports, in line order, every group referred to but never declared, which
    /// ansible-core rejects too.
    fn report_undefined_groups(self) {
        let mut undefined: Vec<Reference> = self
            .references
            .into_iter()
            .filter(|(name, _)| !self.declared.contains(name))
            .map(|(_, reference)| reference)
            .collect();
        undefined.sort_by_key(|reference| reference.span.line);
        for reference in undefined {
            self.errors
                .push(Diagnostic::at(&reference.span, reference.message).with_help(reference.help));
        }
    }
}

/// Parses `name[:port] key=value ...` and adds every host the name expands to.
fn load_host_line(
    inventory: &mut Inventory,
    group: &str,
    line: &str,
    span: &Span,
) -> Result<(), Diagnostic> {
    let tokens = split_words(line).map_err(|(col, message)| {
        Diagnostic::at(&span.offset(0, col), message)
            .with_help("close the quote before the end of the line")
    })?;
    let Some(first) = tokens.first() else {
        return Ok(());
    };
    let host_span = span.offset(0, first.col);
    let pattern = first.text.as_str();

    if pattern == "---" {
        return Err(Diagnostic::at(&host_span, "`---` is not a host name")
            .with_help("this file looks like YAML: give it a `.yml` extension"));
    }
    let (pattern_without_port, port) =
        range::split_port(pattern).map_err(|message| Diagnostic::at(&host_span, message))?;
    if pattern.ends_with(':') && port.is_none() {
        return Err(Diagnostic::at(
            &host_span,
            format!("invalid host `{pattern}`: a `:` after a host name must be followed by a port"),
        )
        .with_help("remove the `:`, or write a port number after it"));
    }
    let names = range::expand(&pattern_without_port)
        .map_err(|message| Diagnostic::at(&host_span, message))?;

    let mut vars = port_vars(port);
    for token in &tokens[1..] {
        let Some((key, value)) = token.text.split_once('=') else {
            return Err(Diagnostic::at(
                &span.offset(0, token.col),
                format!(
                    "expected `key=value` after host `{pattern}`, found `{}`",
                    token.text
                ),
            )
            .with_help("quote values that contain spaces, as in `key=\"two words\"`"));
        };
        vars.insert(key.to_string(), parse_value(value));
    }
    let vars: Map<String, Value> = vars;
    for name in names {
        inventory.add_host(group, &name, vars.clone());
    }
    Ok(())
}

fn parse_value(text: &str) -> Value {
    literal::parse(text).unwrap_or_else(|| Value::String(text.to_string()))
}

/// A word of a host line and its column offset (in characters) from the line start.
#[derive(Debug, PartialEq)]
struct Word {
    text: String,
    col: usize,
}

/// Splits a line into words as Python's `shlex.split(line, comments=True)` does:
/// whitespace separates words, quotes group them, a backslash escapes the next
/// character, and `#` outside quotes starts a comment.
fn split_words(line: &str) -> Result<Vec<Word>, (usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut at = 0;

    while at < chars.len() {
        let c = chars[at];
        if c.is_whitespace() {
            words.extend(current.take());
            at += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let word = current.get_or_insert_with(|| Word {
            text: String::new(),
            col: at,
        });
        match c {
            '\'' | '"' => {
                let open = at;
                at += 1;
                loop {
                    let Some(&inner) = chars.get(at) else {
                        return Err((open, format!("no closing quotation for the `{c}` here")));
                    };
                    at += 1;
                    if inner == c {
                        break;
                    }
                    let escapable = matches!(chars.get(at), Some('"' | '\\' | '$' | '`'));
                    if c == '"' && inner == '\\' && escapable {
                        word.text.push(chars[at]);
                        at += 1;
                    } else {
                        word.text.push(inner);
                    }
                }
            }
            '\\' => {
                if let Some(&next) = chars.get(at + 1) {
                    word.text.push(next);
                }
                at += 2;
            }
            _ => {
                word.text.push(c);
                at += 1;
            }
        }
    }
    words.extend(current);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_words_table() {
        let cases: &[(&str, &[&str])] = &[
            ("web1", &["web1"]),
            ("web1  a=1 b=2", &["web1", "a=1", "b=2"]),
            ("web1 msg=\"two words\"", &["web1", "msg=two words"]),
            ("web1 msg='it\"s'", &["web1", "msg=it\"s"]),
            ("web1 msg=\"say \\\"hi\\\"\"", &["web1", "msg=say \"hi\""]),
            ("web1 a=1 # comment", &["web1", "a=1"]),
            ("web1 pass=ab#c", &["web1", "pass=ab"]),
            ("web1 pass='ab#c'", &["web1", "pass=ab#c"]),
            ("web1 path=a\\ b", &["web1", "path=a b"]),
            ("web1 q=\"'inner'\"", &["web1", "q='inner'"]),
        ];
        for (line, expected) in cases {
            let words: Vec<String> = split_words(line)
                .unwrap()
                .into_iter()
                .map(|w| w.text)
                .collect();
            assert_eq!(words, *expected, "line {line:?}");
        }
        let columns: Vec<usize> = split_words("web1  a=1 b=2")
            .unwrap()
            .iter()
            .map(|w| w.col)
            .collect();
        assert_eq!(columns, [0, 6, 10]);
        assert_eq!(
            split_words("web1 msg=\"open").unwrap_err(),
            (9, "no closing quotation for the `\"` here".to_string())
        );
    }
}
