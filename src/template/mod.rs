//! Jinja templating and expressions, with Ansible's filters and tests.
//!
//! Built on minijinja with strict undefined behaviour: a missing variable is an
//! error that names it, never an empty string. The syntax settings are those of
//! Ansible's `template` module (`trim_blocks` on, `lstrip_blocks` off, the final
//! newline kept), and they apply to task arguments as well, as in Ansible.

mod errors;
mod filters;
mod jinja_tests;
mod lookup;
mod python;
mod regex_cache;
mod version;
mod yaml;

#[cfg(test)]
mod tests;

use std::hash::{BuildHasher, Hasher};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

pub use errors::TemplateError;

/// The template environment shared by every host and task of a run.
pub struct Templar {
    env: Environment<'static>,
    omit: String,
}

impl Default for Templar {
    fn default() -> Self {
        Templar::new()
    }
}

impl Templar {
    pub fn new() -> Templar {
        let omit = omit_placeholder();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_debug(true);
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(false)
            .keep_trailing_newline(true)
            .build();
        // The default delimiters always build, so this only keeps minijinja's defaults
        // if a future version rejects the settings.
        if let Ok(syntax) = syntax {
            env.set_syntax(syntax);
        }

        // Templates are loaded by their own source text, so minijinja's template
        // cache keeps every distinct string compiled once for the whole run.
        env.set_loader(|source| Ok(Some(source.to_string())));
        env.set_formatter(python::format_value);

        filters::register(&mut env);
        jinja_tests::register(&mut env);
        lookup::register(&mut env);
        env.add_global("omit", omit.clone());

        Templar { env, omit }
    }

    /// Returns the placeholder string that the `omit` variable holds.
    pub fn omit_placeholder(&self) -> &str {
        &self.omit
    }

    /// Renders a template string with `vars` (a JSON object).
    pub fn render_str(&self, template: &str, vars: &Value) -> Result<String, TemplateError> {
        if !has_jinja_syntax(template) {
            return Ok(template.to_string());
        }

        let compiled = self
            .env
            .get_template(template)
            .map_err(|err| TemplateError::from_minijinja(&err, template, 0))?;
        compiled
            .render(context(vars))
            .map_err(|err| TemplateError::from_minijinja(&err, template, 0))
    }

    /// Renders every string inside `value`. A string that is one expression and nothing
    /// else (`"{{ ports }}"`) keeps the expression's type, as in Ansible.
    ///
    /// Mapping entries and list items whose rendered value is the `omit` placeholder
    /// are dropped, so `mode: "{{ m | default(omit) }}"` removes the argument.
    pub fn render_value(&self, value: &Value, vars: &Value) -> Result<Value, TemplateError> {
        let ctx = context(vars);
        self.render_value_with(value, &ctx)
    }

    fn render_value_with(
        &self,
        value: &Value,
        ctx: &minijinja::Value,
    ) -> Result<Value, TemplateError> {
        match value {
            Value::String(text) => self.render_string_value(text, ctx),
            Value::Array(items) => {
                let mut rendered = Vec::with_capacity(items.len());
                for item in items {
                    let item = self.render_value_with(item, ctx)?;
                    if !self.is_omit(&item) {
                        rendered.push(item);
                    }
                }
                Ok(Value::Array(rendered))
            }
            Value::Object(entries) => {
                let mut rendered = serde_json::Map::with_capacity(entries.len());
                for (key, item) in entries {
                    let key = self.render_string_value(key, ctx)?;
                    let key = match key {
                        Value::String(key) => key,
                        other => other.to_string(),
                    };
                    let item = self.render_value_with(item, ctx)?;
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
        if let Some((expr, offset)) = single_expression(text) {
            return self.eval_at(expr, ctx, offset, text);
        }
        if !has_jinja_syntax(text) {
            return Ok(Value::String(text.to_string()));
        }

        let compiled = self
            .env
            .get_template(text)
            .map_err(|err| TemplateError::from_minijinja(&err, text, 0))?;
        let rendered = compiled
            .render(ctx)
            .map_err(|err| TemplateError::from_minijinja(&err, text, 0))?;
        Ok(Value::String(rendered))
    }

    fn is_omit(&self, value: &Value) -> bool {
        value.as_str() == Some(self.omit.as_str())
    }

    /// Evaluates a bare expression (`when:`, `that:`, `var:`), as JSON.
    pub fn eval(&self, expr: &str, vars: &Value) -> Result<Value, TemplateError> {
        self.eval_at(expr, &context(vars), 0, expr)
    }

    /// Evaluates `expr`, which starts at byte `offset` of `source`, so that error
    /// positions point into `source`.
    fn eval_at(
        &self,
        expr: &str,
        ctx: &minijinja::Value,
        offset: usize,
        source: &str,
    ) -> Result<Value, TemplateError> {
        let value = self.eval_native(expr, ctx, offset, source)?;
        serde_json::to_value(&value).map_err(|err| {
            TemplateError::new(format!(
                "cannot convert the result of `{}` to data: {err}",
                expr.trim()
            ))
        })
    }

    // NOTE: compiled expressions borrow the environment, so they are not cached;
    // only templates are. Parsing an expression costs far less than converting the
    // variables of a host into minijinja values, which every call does.
    fn eval_native(
        &self,
        expr: &str,
        ctx: &minijinja::Value,
        offset: usize,
        source: &str,
    ) -> Result<minijinja::Value, TemplateError> {
        let compiled = self
            .env
            .compile_expression(expr)
            .map_err(|err| TemplateError::from_minijinja(&err, source, offset))?;
        let value = compiled
            .eval(ctx)
            .map_err(|err| TemplateError::from_minijinja(&err, source, offset))?;
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

        let start = match expr.find(&name) {
            Some(position) => offset + position,
            None => offset + (expr.len() - expr.trim_start().len()),
        };
        let len = if expr.contains(&name) {
            name.len()
        } else {
            trimmed.len()
        };
        TemplateError::undefined(&name, source, start..start + len)
    }

    /// Evaluates a condition with Jinja truthiness; a bare string like `'no'` is not coerced.
    ///
    /// A condition wrapped in one `{{ }}` is accepted, as Ansible does with a warning.
    pub fn eval_bool(&self, expr: &str, vars: &Value) -> Result<bool, TemplateError> {
        let (inner, offset) = single_expression(expr).unwrap_or((expr, 0));
        let value = self.eval_native(inner, &context(vars), offset, expr)?;
        Ok(value.is_true())
    }

    /// Renders a template file; `name` is used in error messages.
    pub fn render_file(
        &self,
        name: &str,
        text: &str,
        vars: &Value,
    ) -> Result<String, TemplateError> {
        self.render_str(text, vars).map_err(|mut err| {
            err.message = format!("{name}: {}", err.message);
            err
        })
    }
}

/// Converts the variables of a host into a minijinja context.
fn context(vars: &Value) -> minijinja::Value {
    match vars {
        Value::Object(_) => minijinja::Value::from(minijinja::value::Serde(vars)),
        _ => minijinja::Value::from(minijinja::value::Serde(serde_json::Map::new())),
    }
}

fn has_jinja_syntax(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Returns the expression inside `text` when `text` is exactly one `{{ expr }}`,
/// with the byte offset where the expression starts.
fn single_expression(text: &str) -> Option<(&str, usize)> {
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

    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("{#")
    {
        return None;
    }
    if inner.trim().is_empty() {
        return None;
    }
    Some((inner, inner_offset))
}

/// Returns a placeholder that no user value will equal by chance, like Ansible's
/// `__omit_place_holder__` followed by a random hash.
fn omit_placeholder() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(std::process::id() as usize);
    format!("__omit_place_holder__{:016x}", hasher.finish())
}
