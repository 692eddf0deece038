//! Load-time syntax checks of template strings and conditions.
//!
//! Templates are only compiled here, never rendered, because variables come from
//! the host at run time. Compiling with a plain `minijinja::Environment` catches
//! syntax errors. Unknown filters and undefined variables are run-time errors.

use crate::diagnostic::{Diagnostic, Span};
use crate::yaml::{Node, NodeValue};

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

/// Compiles a template string, reporting a syntax error at `span`.
pub(super) fn check_template(text: &str, span: &Span) -> Option<Diagnostic> {
    if !is_template(text) {
        return None;
    }
    let env = minijinja::Environment::new();
    let error = env.template_from_str(text).err()?;
    Some(template_error(&error, text, 0, span))
}

/// Compiles a condition (`when`, `failed_when`, ...) as a Jinja expression.
pub(super) fn check_expression(expr: &str, span: &Span) -> Option<Diagnostic> {
    let env = minijinja::Environment::new();
    let inner = strip_braces(expr);
    let error = env.compile_expression(inner).err()?;
    let base = expr.find(inner).unwrap_or(0);
    let mut diagnostic = template_error(&error, expr, base, span);
    if inner.contains("{{") {
        diagnostic = diagnostic
            .with_help("a condition is already an expression: write `x == 1`, not `{{ x }} == 1`");
    }
    Some(diagnostic)
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
        assert!(check_expression("x == 1", &span).is_none());
        assert!(check_expression("{{ x is defined }}", &span).is_none());
        assert!(check_expression("x ==", &span).is_some());
    }
}
