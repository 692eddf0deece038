//! Load-time syntax checks of template strings and conditions.
//!
//! Templates are only compiled here, never rendered, because variables come from
//! the host at run time. Compiling with a plain `minijinja::Environment` catches
//! syntax errors, and the names of filters, tests, functions and lookup plugins
//! are checked against those the [`Templar`] registers. Undefined variables are
//! run-time errors.

use std::path::Path;
use std::sync::LazyLock;

use crate::diagnostic::{Diagnostic, SourceFile, Span};
use crate::template::{Templar, UnknownName};
use crate::yaml::{Node, NodeValue};

/// The template environment whose names the checks compare against, the same that
/// the executor renders with.
static TEMPLAR: LazyLock<Templar> = LazyLock::new(Templar::new);

/// Returns whether `text` contains a Jinja variable, statement or comment.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Returns whether a JSON value contains a template, or an `!unsafe` string, anywhere.
/// Either is known only once the template layer has handled it.
pub(super) fn value_has_template(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => is_template(s) || crate::yaml::strip_unsafe(s).is_some(),
        serde_json::Value::Array(items) => items.iter().any(value_has_template),
        serde_json::Value::Object(map) => map.values().any(value_has_template),
        _ => false,
    }
}

/// Returns whether `text` is one `{{ ... }}` expression and nothing else.
pub(super) fn is_single_expression(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.starts_with("{{")
        && trimmed.ends_with("}}")
        && trimmed[2..trimmed.len() - 2].find("{{").is_none()
        && trimmed[2..trimmed.len() - 2].find("}}").is_none()
}

/// Compiles a template string, reporting a syntax error, or each unknown filter,
/// test, function and lookup plugin, at `span`.
pub(super) fn check_template(text: &str, span: &Span) -> Vec<Diagnostic> {
    if !is_template(text) {
        return Vec::new();
    }
    let env = minijinja::Environment::new();
    if let Err(error) = env.template_from_str(text) {
        return vec![template_error(&error, text, 0, span)];
    }
    let unknown = TEMPLAR.unknown_names(text).unwrap_or_default();
    unknown
        .iter()
        .map(|name| unknown_name_error(name, span))
        .collect()
}

/// Compiles a condition (`when`, `failed_when`, ...) as a Jinja expression, and
/// checks the names it uses as [`check_template`] does.
pub(super) fn check_expression(expr: &str, span: &Span) -> Vec<Diagnostic> {
    let env = minijinja::Environment::new();
    let inner = strip_braces(expr);
    let Err(error) = env.compile_expression(inner) else {
        let unknown = TEMPLAR
            .unknown_names_in_expression(inner)
            .unwrap_or_default();
        return unknown
            .iter()
            .map(|name| unknown_name_error(name, span))
            .collect();
    };
    let base = expr.find(inner).unwrap_or(0);
    let mut diagnostic = template_error(&error, expr, base, span);
    if inner.contains("{{") {
        diagnostic = diagnostic
            .with_help("a condition is already an expression: write `x == 1`, not `{{ x }} == 1`");
    }
    vec![diagnostic]
}

/// Checks a template file that a `template` task renders: its syntax, then the names
/// it uses. Errors point into the file itself.
pub(super) fn check_template_file(path: &Path, text: &str) -> Vec<Diagnostic> {
    let file = SourceFile::new(path, text);
    let env = minijinja::Environment::new();
    if let Err(error) = env.template_from_str(text) {
        let line = error.line().unwrap_or(1);
        let column = error
            .range()
            .and_then(|range| {
                let before = text.get(..range.start)?;
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                Some(before[line_start..].chars().count() + 1)
            })
            .unwrap_or(1);
        let detail = error
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| error.kind().to_string());
        let span = Span::new(file, line, column);
        return vec![Diagnostic::at(
            &span,
            format!("invalid template syntax: {detail}"),
        )];
    }
    let unknown = TEMPLAR.unknown_names(text).unwrap_or_default();
    unknown
        .iter()
        .map(|name| {
            let (line, column) = locate_name(text, &name.name);
            unknown_name_error(name, &Span::new(file.clone(), line, column))
        })
        .collect()
}

fn unknown_name_error(name: &UnknownName, span: &Span) -> Diagnostic {
    let diagnostic = Diagnostic::at(span, name.message());
    match name.help() {
        Some(help) => diagnostic.with_help(help),
        None => diagnostic,
    }
}

/// Returns the 1-based line and column of the first occurrence of `name` as a whole
/// word in `text`, or 1:1 when there is none.
///
/// NOTE: minijinja's syntax tree has no span for a filter or test name, so a word
/// in plain text before the real use is reported instead.
fn locate_name(text: &str, name: &str) -> (usize, usize) {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let found = text.match_indices(name).find(|(start, _)| {
        let before = text[..*start].chars().next_back();
        let after = text[start + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    });
    let Some((start, _)) = found else {
        return (1, 1);
    };
    let before = &text[..start];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// Removes one surrounding `{{ }}`, which Ansible tolerates around conditions.
pub(super) fn strip_braces(expr: &str) -> &str {
    let trimmed = expr.trim();
    if is_single_expression(trimmed) {
        trimmed[2..trimmed.len() - 2].trim()
    } else {
        trimmed
    }
}

/// Checks every string inside a YAML value, reporting each syntax error.
pub(super) fn check_node(node: &Node, errors: &mut Vec<Diagnostic>) {
    match &node.value {
        NodeValue::String(_) if node.is_unsafe() => {}
        NodeValue::String(text) => errors.extend(check_template(text, &node.span)),
        NodeValue::Seq(items) => items.iter().for_each(|item| check_node(item, errors)),
        NodeValue::Map(entries) => entries
            .iter()
            .for_each(|(_, value)| check_node(value, errors)),
        _ => {}
    }
}

/// Builds the report of a syntax error in `text`, whose compiled part starts at byte `base`.
fn template_error(error: &minijinja::Error, text: &str, base: usize, span: &Span) -> Diagnostic {
    let detail = error
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| error.kind().to_string());
    let offset = error.range().map(|range| base + range.start);
    let span = error
        .line()
        .and_then(|line| line_in_block_scalar(span, text, line, offset))
        .or_else(|| column_in_line(span, text, offset?))
        .unwrap_or_else(|| span.clone());
    Diagnostic::at(&span, format!("invalid template syntax: {detail}"))
}

/// Maps line `line` of a literal block scalar (`key: |`) to its place in the file.
///
/// A block scalar's span is the start of its content, on the line after the `|`
/// indicator. Only literal blocks keep the template's lines one to one with the
/// file. Plain, quoted and folded scalars are folded, so errors in them stay on
/// the scalar's first line.
fn line_in_block_scalar(
    span: &Span,
    text: &str,
    line: usize,
    offset: Option<usize>,
) -> Option<Span> {
    let previous = span.file.line_text(span.line.checked_sub(1)?)?.trim_end();
    let indicator = previous.rsplit(char::is_whitespace).next()?;
    let literal = indicator.starts_with('|')
        && indicator[1..]
            .chars()
            .all(|c| matches!(c, '-' | '+') || c.is_ascii_digit());
    if !literal {
        return None;
    }
    let file_line = span.line + line.checked_sub(1)?;
    let line_text = span.file.line_text(file_line)?;
    let indent = line_text.chars().take_while(|c| *c == ' ').count();
    let column = offset
        .and_then(|offset| {
            let before = text.get(..offset)?;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            Some(before[line_start..].chars().count())
        })
        .unwrap_or(0);
    Some(Span::new(span.file.clone(), file_line, indent + column + 1))
}

/// Moves the span to byte `offset` of `text` when the scalar is written on one
/// line exactly as `text` (plain, or quoted without escapes).
fn column_in_line(span: &Span, text: &str, offset: usize) -> Option<Span> {
    if text.contains('\n') {
        return None;
    }
    let line = span.file.line_text(span.line)?;
    let from_scalar: String = line.chars().skip(span.col - 1).collect();
    let quote = usize::from(from_scalar.starts_with(['"', '\'']));
    let written: String = from_scalar.chars().skip(quote).collect();
    if !written.starts_with(text) {
        return None;
    }
    let chars_before = text.get(..offset)?.chars().count();
    Some(span.offset(0, quote + chars_before))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;

    #[test]
    fn single_expression_cases() {
        for (text, expected) in [
            ("{{ x }}", true),
            ("  {{ x | default([]) }} ", true),
            ("{{ a }}{{ b }}", false),
            ("prefix {{ x }}", false),
            ("x", false),
        ] {
            assert_eq!(is_single_expression(text), expected, "{text:?}");
        }
    }

    #[test]
    fn strip_braces_removes_one_pair() {
        assert_eq!(strip_braces("{{ x is defined }}"), "x is defined");
        assert_eq!(strip_braces("x == 1"), "x == 1");
    }

    #[test]
    fn check_expression_finds_errors() {
        let span = Span::new(SourceFile::new("a.yaml", "when: x ==\n"), 1, 7);
        assert!(check_expression("x == 1", &span).is_empty());
        assert!(check_expression("{{ x is defined }}", &span).is_empty());
        assert_eq!(check_expression("x ==", &span).len(), 1);
    }

    #[test]
    fn check_expression_finds_unknown_names() {
        let span = Span::new(SourceFile::new("a.yaml", "when: x is chaged\n"), 1, 7);
        let errors = check_expression("x is chaged or y | boool", &span);
        let messages: Vec<(&str, Option<&str>)> = errors
            .iter()
            .map(|error| (error.message.as_str(), error.help.as_deref()))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    "unknown filter `boool`: check its spelling; vpsforge implements only part of Ansible's filters",
                    Some("did you mean `bool`?")
                ),
                (
                    "unknown test `chaged`: check its spelling; vpsforge implements only part of Ansible's tests",
                    Some("did you mean `changed`?")
                ),
            ]
        );
    }

    #[test]
    fn locate_name_finds_whole_words() {
        let cases = [
            ("{{ a | uper }}", "uper", (1, 8)),
            ("upper\n{{ a | upper | up }}", "up", (2, 16)),
            ("{{ x.up }}\n{{ up }}", "up", (2, 4)),
            ("nothing", "up", (1, 1)),
        ];
        for (text, name, expected) in cases {
            assert_eq!(locate_name(text, name), expected, "{text:?}");
        }
    }
}
