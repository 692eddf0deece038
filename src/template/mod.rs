//! Jinja templating and expressions, with Ansible's filters and tests.
//!
//! Built on minijinja with strict undefined behaviour: a missing variable is an
//! error that names it, never an empty string.

use serde_json::Value;

/// The value of Ansible's `omit` variable: an argument rendered to it is dropped.
pub const OMIT_MARKER: &str = "__omit_place_holder__vpsforge";

/// A template or expression error, with the line and column inside the template when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
    /// 1-based line inside the template text.
    pub line: Option<usize>,
}

/// The template environment shared by every host and task of a run.
pub struct Templar {
    _private: (),
}

impl Default for Templar {
    fn default() -> Self {
        Templar::new()
    }
}

impl Templar {
    pub fn new() -> Templar {
        Templar { _private: () }
    }

    /// Renders a template string with `vars` (a JSON object).
    pub fn render_str(&self, template: &str, vars: &Value) -> Result<String, TemplateError> {
        let _ = vars;
        Ok(template.to_string())
    }

    /// Renders every string inside `value`. A string that is one expression and nothing
    /// else (`"{{ ports }}"`) keeps the expression's type, as in Ansible.
    pub fn render_value(&self, value: &Value, vars: &Value) -> Result<Value, TemplateError> {
        let _ = vars;
        Ok(value.clone())
    }

    /// Evaluates a bare expression (`when:`, `that:`, `var:`), as JSON.
    pub fn eval(&self, expr: &str, vars: &Value) -> Result<Value, TemplateError> {
        let _ = (expr, vars);
        Ok(Value::Null)
    }

    /// Evaluates a condition with Jinja truthiness; a bare string like `'no'` is not coerced.
    pub fn eval_bool(&self, expr: &str, vars: &Value) -> Result<bool, TemplateError> {
        let _ = (expr, vars);
        Ok(true)
    }

    /// Renders a template file; `name` is used in error messages.
    pub fn render_file(
        &self,
        name: &str,
        text: &str,
        vars: &Value,
    ) -> Result<String, TemplateError> {
        let _ = name;
        self.render_str(text, vars)
    }
}
