//! Conversion of minijinja errors into [`TemplateError`]s that name the undefined
//! variable and point at a position inside the template text.

use std::ops::Range;

use minijinja::ErrorKind;

use super::syntax_tree::Rewrite;

/// A template or expression error, with the line and column inside the template when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
    /// 1-based line inside the template text.
    pub line: Option<usize>,
    /// 1-based column (in characters) inside the template text, when the byte range is known.
    pub column: Option<usize>,
    /// Byte range of the failing expression inside the template text.
    pub range: Option<Range<usize>>,
}

impl TemplateError {
    /// Creates an error without a position.
    pub fn new(message: impl Into<String>) -> TemplateError {
        TemplateError {
            message: message.into(),
            line: None,
            column: None,
            range: None,
        }
    }

    /// Creates the error for the undefined variable `name`, found at `range` of `source`.
    pub(super) fn undefined(name: &str, source: &str, range: Range<usize>) -> TemplateError {
        let mut err = TemplateError::new(undefined_message(name));
        err.set_range(source, range);
        err
    }

    /// Converts a minijinja error raised while rendering `source`. `offset` is where
    /// the compiled text starts inside `source`, for expressions cut out of a string.
    ///
    /// When the renderer compiled `rewrite`, the rewritten form of `source`, error
    /// positions are mapped back into `source`.
    pub(super) fn from_minijinja(
        err: &minijinja::Error,
        source: &str,
        offset: usize,
        rewrite: Option<&Rewrite>,
    ) -> TemplateError {
        let original = |position: usize| match rewrite {
            Some(rewrite) => rewrite.original_offset(position),
            None => position,
        };
        let range = err
            .range()
            .map(|range| original(range.start) + offset..original(range.end) + offset)
            .filter(|range| range.end <= source.len() && source.is_char_boundary(range.start));

        let message = match err.kind() {
            ErrorKind::UndefinedError => {
                let name = err
                    .detail()
                    .and_then(undefined_name_from_detail)
                    .or_else(|| {
                        range
                            .clone()
                            .and_then(|r| undefined_name_from_source(source, r))
                    });
                match name {
                    Some(name) => undefined_message(&name),
                    None => "undefined variable: define it, or give it a value with `default(...)`"
                        .to_string(),
                }
            }
            _ => describe(err),
        };

        let mut converted = TemplateError::new(message);
        match range {
            Some(range) => converted.set_range(source, range),
            None => {
                // Without a byte range, minijinja's line counts from the compiled text,
                // which starts on the line of `offset`.
                let first_line = source[..offset.min(source.len())].matches('\n').count();
                converted.line = err.line().map(|line| line + first_line);
            }
        }
        converted
    }

    fn set_range(&mut self, source: &str, range: Range<usize>) {
        let before = &source[..range.start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        self.line = Some(before.matches('\n').count() + 1);
        self.column = Some(before[line_start..].chars().count() + 1);
        self.range = Some(range);
    }
}

fn undefined_message(name: &str) -> String {
    format!(
        "undefined variable `{name}`: define it, or give it a value with `{name} | default(...)`"
    )
}

/// Describes an error other than an undefined value as `kind: detail`, leaving out the
/// kind where the detail alone describes the error.
fn describe(err: &minijinja::Error) -> String {
    let detail = err.detail().map(str::to_string);
    let unknown = |what: &str, detail: &str| {
        let name = detail
            .trim_start_matches(what)
            .trim_start()
            .trim_end_matches(" is unknown");
        format!("unknown {what} `{name}`: check its spelling; vpsforge implements only part of Ansible's {what}s")
    };
    if detail.as_deref().is_some_and(|detail| {
        detail.starts_with("tried to use % operator on unsupported types string")
    }) {
        return "Python's `%` string formatting is not supported: write `'%02d' | format(value)` instead"
            .to_string();
    }
    match (err.kind(), detail) {
        (ErrorKind::UnknownFilter, Some(detail)) => unknown("filter", &detail),
        (ErrorKind::UnknownTest, Some(detail)) => unknown("test", &detail),
        (ErrorKind::UnknownFunction, Some(detail)) => unknown("function", &detail),
        (ErrorKind::InvalidOperation, Some(detail)) => detail,
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    }
}

/// Extracts `foo.bar` from a minijinja detail such as "`foo.bar` is undefined".
pub(super) fn undefined_name_from_detail(detail: &str) -> Option<String> {
    let end = detail.find("` is undefined")?;
    let start = detail[..end].rfind('`')?;
    Some(detail[start + 1..end].to_string())
}

/// Returns the variable part of the failing expression (`foo` in `foo | mandatory`).
fn undefined_name_from_source(source: &str, range: Range<usize>) -> Option<String> {
    let expr = source.get(range)?;
    let name = expr.split('|').next().unwrap_or(expr).trim();
    (!name.is_empty()).then(|| name.to_string())
}
