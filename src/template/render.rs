//! Rendering of strings, JSON trees and expressions against a minijinja context,
//! shared by the [`Templar`](super::Templar) and by variables that contain templates.

use minijinja::Environment;
use serde_json::Value;

use super::errors::{self, TemplateError};
use super::syntax_tree;
use crate::yaml::strip_unsafe;

/// A renderer over one environment. `omit` is the placeholder whose mapping entries
/// and list items are dropped, or `None` to keep them (inside variables).
pub(super) struct Renderer<'a> {
    pub env: &'a Environment<'static>,
    pub omit: Option<&'a str>,
}

impl Renderer<'_> {
    /// Renders a template string; templates are cached by their text.
    pub fn render_template(
        &self,
        text: &str,
        ctx: &minijinja::Value,
    ) -> Result<String, TemplateError> {
        let rewrite = syntax_tree::rewrite_guarded(text, self.env.syntax(), false);
        let convert = |err: minijinja::Error| {
            TemplateError::from_minijinja(&err, text, 0, rewrite.as_deref())
        };
        let compiled = self
            .env
            .get_template(
                rewrite
                    .as_ref()
                    .map_or(text, |rewrite| rewrite.text.as_str()),
            )
            .map_err(convert)?;
        compiled.render(ctx).map_err(convert)
    }

    pub fn render_value(
        &self,
        value: &Value,
        ctx: &minijinja::Value,
    ) -> Result<Value, TemplateError> {
        match value {
            Value::String(text) => self.render_string_value(text, ctx),
            Value::Array(items) => {
                let mut rendered = Vec::with_capacity(items.len());
                for item in items {
                    let item = self.render_value(item, ctx)?;
                    if !self.is_omit(&item) {
                        rendered.push(item);
                    }
                }
                Ok(Value::Array(rendered))
            }
            Value::Object(entries) => {
                let mut rendered = serde_json::Map::with_capacity(entries.len());
                for (key, item) in entries {
                    let key = match self.render_string_value(key, ctx)? {
                        Value::String(key) => key,
                        other => other.to_string(),
                    };
                    let item = self.render_value(item, ctx)?;
                    if !self.is_omit(&item) {
                        rendered.insert(key, item);
                    }
                }
                Ok(Value::Object(rendered))
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(value.clone()),
        }
    }

    fn render_string_value(
        &self,
        text: &str,
        ctx: &minijinja::Value,
    ) -> Result<Value, TemplateError> {
        if let Some(literal) = strip_unsafe(text) {
            return Ok(Value::String(literal.to_string()));
        }
        // Only a string that is the expression and nothing else keeps the expression's
        // type: `"{{ x }}\n"` renders to text with its newline, as in Ansible.
        if text.trim() == text {
            if let Some((expr, offset)) = single_expression(text) {
                return self.eval(expr, ctx, offset, text);
            }
        }
        if !has_jinja_syntax(text) {
            return Ok(Value::String(text.to_string()));
        }
        Ok(Value::String(self.render_template(text, ctx)?))
    }

    fn is_omit(&self, value: &Value) -> bool {
        self.omit.is_some() && value.as_str() == self.omit
    }

    /// Evaluates `expr`, which starts at byte `offset` of `source`, as JSON. Error
    /// positions point into `source`.
    pub fn eval(
        &self,
        expr: &str,
        ctx: &minijinja::Value,
        offset: usize,
        source: &str,
    ) -> Result<Value, TemplateError> {
        let value = self.eval_native(expr, ctx, offset, source)?;
        serde_json::to_value(&value).map_err(|err| {
            TemplateError::new(format!(
                "cannot convert the result of `{}` to JSON: {err}",
                expr.trim()
            ))
        })
    }

    // NOTE: compiled expressions borrow the environment, so they are not cached and
    // every call parses the expression again. Only templates are cached.
    pub fn eval_native(
        &self,
        expr: &str,
        ctx: &minijinja::Value,
        offset: usize,
        source: &str,
    ) -> Result<minijinja::Value, TemplateError> {
        let rewrite = syntax_tree::rewrite_guarded(expr, self.env.syntax(), true);
        let convert = |err: minijinja::Error| {
            TemplateError::from_minijinja(&err, source, offset, rewrite.as_deref())
        };
        let compiled = self
            .env
            .compile_expression(
                rewrite
                    .as_ref()
                    .map_or(expr, |rewrite| rewrite.text.as_str()),
            )
            .map_err(convert)?;
        let value = compiled.eval(ctx).map_err(convert)?;
        if value.is_undefined() {
            return Err(self.undefined_result_error(expr, ctx, offset, source));
        }
        Ok(value)
    }

    /// Builds the error for an expression whose result is undefined, naming the
    /// variable that caused it (`missing` in `flag and missing`).
    fn undefined_result_error(
        &self,
        expr: &str,
        ctx: &minijinja::Value,
        offset: usize,
        source: &str,
    ) -> TemplateError {
        // Evaluation returns the undefined value without saying where it came from,
        // but printing it fails with an error that does, so print it once more.
        let printed = self.env.render_str(&format!("{{{{ ({expr}) }}}}"), ctx);
        let name = printed
            .err()
            .and_then(|err| err.detail().and_then(errors::undefined_name_from_detail));
        let trimmed = expr.trim();
        let name = name.unwrap_or_else(|| trimmed.to_string());

        let (start, len) = match expr.find(&name) {
            Some(position) => (offset + position, name.len()),
            None => (
                offset + (expr.len() - expr.trim_start().len()),
                trimmed.len(),
            ),
        };
        TemplateError::undefined(&name, source, start..start + len)
    }
}

/// Returns whether `text` contains a Jinja variable, statement or comment.
pub fn has_jinja_syntax(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Returns whether any string inside `value` contains Jinja syntax or is marked
/// `!unsafe`, because rendering is what strips that mark.
pub(super) fn contains_template(value: &Value) -> bool {
    let needs_rendering = |text: &str| has_jinja_syntax(text) || strip_unsafe(text).is_some();
    match value {
        Value::String(text) => needs_rendering(text),
        Value::Array(items) => items.iter().any(contains_template),
        Value::Object(entries) => entries
            .iter()
            .any(|(key, item)| needs_rendering(key) || contains_template(item)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Returns the expression inside `text` when `text` is exactly one `{{ expr }}`,
/// with the byte offset where the expression starts.
pub(super) fn single_expression(text: &str) -> Option<(&str, usize)> {
    let leading = text.len() - text.trim_start().len();
    let trimmed = text.trim();
    let inner = trimmed.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner_offset = leading + 2;

    // Whitespace-control markers (`{{- x -}}`) do not belong to the expression.
    let (inner, inner_offset) = match inner.strip_prefix('-') {
        Some(rest) => (rest, inner_offset + 1),
        None => (inner, inner_offset),
    };
    let inner = inner.strip_suffix('-').unwrap_or(inner);

    if has_jinja_syntax(inner) || inner.contains("}}") {
        return None;
    }
    if inner.trim().is_empty() {
        return None;
    }
    Some((inner, inner_offset))
}
