//! Load-time syntax checks of template strings and conditions.
//!
//! Templates are only compiled here, never rendered, because variables come from
//! the host at run time. Compiling with a plain `minijinja::Environment` catches
//! syntax errors; unknown filters and undefined variables are run-time errors.

use crate::diagnostic::{Diagnostic, Span};
use crate::yaml::{Node, NodeValue};

/// Returns whether `text` contains a Jinja variable, statement or comment.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Returns whether a JSON value contains a template anywhere.
pub(super) fn value_has_template(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => is_template(s),
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
    Some(template_error(&error, span))
}

/// Compiles a condition (`when`, `failed_when`, ...) as a Jinja expression.
pub(super) fn check_expression(expr: &str, span: &Span) -> Option<Diagnostic> {
    let env = minijinja::Environment::new();
    let error = env.compile_expression(strip_braces(expr)).err()?;
    Some(template_error(&error, span))
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
        NodeValue::String(text) => errors.extend(check_template(text, &node.span)),
        NodeValue::Seq(items) => items.iter().for_each(|item| check_node(item, errors)),
        NodeValue::Map(entries) => entries
            .iter()
            .for_each(|(_, value)| check_node(value, errors)),
        _ => {}
    }
}

fn template_error(error: &minijinja::Error, span: &Span) -> Diagnostic {
    let detail = error
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| error.kind().to_string());
    let span = error
        .line()
        .and_then(|line| line_in_block_scalar(span, line))
        .unwrap_or_else(|| span.clone());
    Diagnostic::at(&span, format!("invalid template syntax: {detail}"))
}

/// Maps line `line` of a literal block scalar (`key: |`) to its place in the file.
///
/// Only literal blocks keep the template's lines one to one with the file; plain,
/// quoted and folded scalars are folded, so their errors stay at the scalar's start.
fn line_in_block_scalar(span: &Span, line: usize) -> Option<Span> {
    let indicator = span.file.line_text(span.line)?.chars().nth(span.col - 1)?;
    if indicator != '|' {
        return None;
    }
    let file_line = span.line + line;
    let text = span.file.line_text(file_line)?;
    let indent = text.chars().take_while(|c| *c == ' ').count();
    Some(Span::new(span.file.clone(), file_line, indent + 1))
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
