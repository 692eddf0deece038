//! Jinja templating and expressions, with Ansible's filters and tests.
//!
//! Built on minijinja with strict undefined behaviour: a missing variable is an
//! error that names it, never an empty string. As in Ansible, `default` and
//! `is defined` also accept a lookup on a missing parent (`missing.attr`). The syntax settings are those of
//! Ansible's `template` module (`trim_blocks` on, `lstrip_blocks` off, the final
//! newline kept), and they apply to task arguments as well, as in Ansible.
//!
//! Variables whose values contain templates are rendered when a template reads
//! them, as Ansible does. Values print as Python prints them (`True`, `None`,
//! `['a']`), because Ansible runs Jinja on Python. To render many strings against
//! the same variables (one task on one host), bind them once with [`Templar::scope`].
//! Variables that are the same on every host (`hostvars`, `groups`) are set once
//! with [`Templar::with_shared_vars`] and read in place by every render.

mod context;
mod errors;
mod filters;
mod jinja_tests;
mod lookup;
mod names;
mod python;
mod regex_cache;
mod render;
mod syntax_tree;
mod version;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Rest;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;

use context::Context;
use render::Renderer;

pub use render::has_jinja_syntax;

pub use errors::TemplateError;
pub use names::{NameKind, RegisteredNames, UnknownName};

/// Prefix that marks a template name coming from `{% include %}` and its kin.
const INCLUDE_MARKER: &str = "\0vpsforge-include:";

/// The template environment shared by every host and task of a run.
pub struct Templar {
    env: Arc<Environment<'static>>,
    omit: String,
    /// The variables that every render reads, whatever its own variables. A render
    /// takes a reference to the map as it is when the render starts.
    shared: RwLock<Arc<serde_json::Map<String, Value>>>,
    /// The filters and tests that vpsforge registers, beside minijinja's builtins.
    own_names: OwnNames,
    registered: OnceLock<RegisteredNames>,
}

#[derive(Default)]
struct OwnNames {
    filters: BTreeSet<String>,
    tests: BTreeSet<String>,
}

impl Default for Templar {
    fn default() -> Self {
        Templar::new()
    }
}

impl Templar {
    pub fn new() -> Templar {
        let omit = omit_placeholder();
        let mut own_names = OwnNames::default();
        Templar {
            env: Arc::new(build_environment(&omit, &mut own_names)),
            omit,
            shared: RwLock::default(),
            own_names,
            registered: OnceLock::new(),
        }
    }

    /// Sets variables that every render reads in place, such as `hostvars` and
    /// `groups`, which are the same on every host of a run. A shared variable
    /// takes precedence over a render's own variable of the same name, as
    /// Ansible's magic variables do.
    pub fn with_shared_vars(self, vars: serde_json::Map<String, Value>) -> Templar {
        *self.shared.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(vars);
        self
    }

    /// Sets one shared variable (see [`Templar::with_shared_vars`]) for the renders
    /// that start from now on, such as `ansible_play_hosts` at the start of a play.
    pub fn set_shared_var(&self, name: &str, value: Value) {
        let mut shared = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        // The map is copied only while a render still has a reference to the old one.
        Arc::make_mut(&mut shared).insert(name.to_string(), value);
    }

    fn shared_vars(&self) -> Arc<serde_json::Map<String, Value>> {
        Arc::clone(&self.shared.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Returns the filters, tests, functions and lookup plugins that templates can use.
    pub fn registered_names(&self) -> &RegisteredNames {
        self.registered.get_or_init(|| {
            RegisteredNames::collect(&self.env, &self.own_names.filters, &self.own_names.tests)
        })
    }

    /// Returns the filters, tests, functions and lookup plugins that `template` uses
    /// but vpsforge lacks, or the template's syntax error.
    pub fn unknown_names(&self, template: &str) -> Result<Vec<UnknownName>, TemplateError> {
        let used = syntax_tree::used_names(template, self.env.syntax(), false)
            .map_err(|err| TemplateError::from_minijinja(&err, template, 0, None))?;
        Ok(self.registered_names().unknown(&self.env, &used))
    }

    /// Works like [`Templar::unknown_names`] for a bare expression (`when:`). An
    /// expression wrapped in one `{{ }}` is accepted too.
    pub fn unknown_names_in_expression(
        &self,
        expr: &str,
    ) -> Result<Vec<UnknownName>, TemplateError> {
        let (inner, offset) = render::single_expression(expr).unwrap_or((expr, 0));
        let used = syntax_tree::used_names(inner, self.env.syntax(), true)
            .map_err(|err| TemplateError::from_minijinja(&err, expr, offset, None))?;
        Ok(self.registered_names().unknown(&self.env, &used))
    }

    /// Returns the placeholder string that the `omit` variable holds.
    pub fn omit_placeholder(&self) -> &str {
        &self.omit
    }

    fn renderer(&self) -> Renderer<'_> {
        Renderer {
            env: &self.env,
            omit: Some(&self.omit),
        }
    }

    /// Renders a template string with `vars` (a JSON object). A string marked
    /// `!unsafe` (see [`crate::yaml::UNSAFE_PREFIX`]) is returned without its mark,
    /// unrendered.
    pub fn render_str(&self, template: &str, vars: &Value) -> Result<String, TemplateError> {
        if let Some(literal) = crate::yaml::strip_unsafe(template) {
            return Ok(literal.to_string());
        }
        if !has_jinja_syntax(template) {
            return Ok(template.to_string());
        }
        self.scope(TemplateVars::from_json(vars))
            .render_str(template)
    }

    /// Renders every string inside `value`. A string that is one expression and nothing
    /// else (`"{{ ports }}"`) keeps the expression's type, as in Ansible.
    ///
    /// Mapping entries and list items whose rendered value is the `omit` placeholder
    /// are dropped, so `mode: "{{ m | default(omit) }}"` removes the argument.
    pub fn render_value(&self, value: &Value, vars: &Value) -> Result<Value, TemplateError> {
        if !render::contains_template(value) {
            return Ok(value.clone());
        }
        self.scope(TemplateVars::from_json(vars))
            .render_value(value)
    }

    /// Evaluates a bare expression (`when:`, `that:`, `var:`), as JSON. An expression
    /// wrapped in one `{{ }}` is accepted too.
    pub fn eval(&self, expr: &str, vars: &Value) -> Result<Value, TemplateError> {
        self.scope(TemplateVars::from_json(vars)).eval(expr)
    }

    /// Evaluates a condition with Jinja truthiness; a bare string like `'no'` is not coerced.
    ///
    /// A condition wrapped in one `{{ }}` is accepted, as Ansible does with a warning.
    pub fn eval_bool(&self, expr: &str, vars: &Value) -> Result<bool, TemplateError> {
        self.scope(TemplateVars::from_json(vars)).eval_bool(expr)
    }

    /// Renders a template file; `name` is used in error messages.
    pub fn render_file(
        &self,
        name: &str,
        text: &str,
        vars: &Value,
    ) -> Result<String, TemplateError> {
        self.scope(TemplateVars::from_json(vars))
            .render_file(name, text)
    }

    /// Binds `vars` for several renders. The methods above copy their `vars` on
    /// every call, which a scope avoids.
    pub fn scope(&self, vars: TemplateVars) -> Scope<'_> {
        Scope {
            templar: self,
            vars,
        }
    }
}

/// Variables for templates, shared between renders without copying.
#[derive(Debug, Clone, Default)]
pub struct TemplateVars(Arc<serde_json::Map<String, Value>>);

impl TemplateVars {
    /// Takes the variables of a JSON object; any other JSON value gives no variables.
    pub fn new(vars: Value) -> TemplateVars {
        match vars {
            Value::Object(entries) => TemplateVars(Arc::new(entries)),
            _ => TemplateVars::default(),
        }
    }

    fn from_json(vars: &Value) -> TemplateVars {
        match vars {
            Value::Object(entries) => TemplateVars(Arc::new(entries.clone())),
            _ => TemplateVars::default(),
        }
    }
}

impl From<Value> for TemplateVars {
    fn from(vars: Value) -> TemplateVars {
        TemplateVars::new(vars)
    }
}

/// A [`Templar`] with bound variables, for the arguments and conditions of one task
/// on one host. Its methods work like the [`Templar`] methods of the same names.
pub struct Scope<'t> {
    templar: &'t Templar,
    vars: TemplateVars,
}

impl Scope<'_> {
    fn context(&self) -> Context {
        Context::new(
            &self.templar.env,
            Arc::clone(&self.vars.0),
            self.templar.shared_vars(),
        )
    }

    pub fn render_str(&self, template: &str) -> Result<String, TemplateError> {
        if let Some(literal) = crate::yaml::strip_unsafe(template) {
            return Ok(literal.to_string());
        }
        if !has_jinja_syntax(template) {
            return Ok(template.to_string());
        }
        let context = self.context();
        let rendered = self
            .templar
            .renderer()
            .render_template(template, &context.value());
        context.explain(rendered)
    }

    pub fn render_value(&self, value: &Value) -> Result<Value, TemplateError> {
        let context = self.context();
        let rendered = self
            .templar
            .renderer()
            .render_value(value, &context.value());
        context.explain(rendered)
    }

    pub fn eval(&self, expr: &str) -> Result<Value, TemplateError> {
        let (inner, offset) = render::single_expression(expr).unwrap_or((expr, 0));
        let context = self.context();
        let value = self
            .templar
            .renderer()
            .eval(inner, &context.value(), offset, expr);
        context.explain(value)
    }

    pub fn eval_bool(&self, expr: &str) -> Result<bool, TemplateError> {
        let (inner, offset) = render::single_expression(expr).unwrap_or((expr, 0));
        let context = self.context();
        let value = self
            .templar
            .renderer()
            .eval_native(inner, &context.value(), offset, expr);
        context.explain(value.map(|value| value.is_true()))
    }

    /// Evaluates a task condition (`when`, `changed_when`, `until`, `assert`'s `that`)
    /// as Ansible does: a result that is a string is read as a boolean (`'false'`,
    /// `'no'`, `'0'` and `''` are false), because Ansible templates a bare variable
    /// before it evaluates the condition. Other values use Jinja truthiness.
    pub fn eval_condition(&self, expr: &str) -> Result<bool, TemplateError> {
        Ok(match self.eval(expr)? {
            Value::String(text) => crate::modules::args::to_bool(&Value::String(text.clone()))
                .unwrap_or(!text.is_empty()),
            Value::Null => false,
            Value::Bool(flag) => flag,
            Value::Number(number) => number.as_f64() != Some(0.0),
            Value::Array(items) => !items.is_empty(),
            Value::Object(map) => !map.is_empty(),
        })
    }

    pub fn render_file(&self, name: &str, text: &str) -> Result<String, TemplateError> {
        self.render_str(text).map_err(|mut err| {
            err.message = format!("{name}: {}", err.message);
            err
        })
    }
}

/// Builds the minijinja environment with Ansible's syntax settings, filters, tests
/// and lookups.
fn build_environment(omit: &str, own_names: &mut OwnNames) -> Environment<'static> {
    let mut env = Environment::new();
    // Strict mode also rejects attribute access on an undefined parent, which Ansible
    // allows under `default` and `is defined`: the renderer rewrites those lookups
    // into calls of `lookup_chain` (see `syntax_tree::rewrite_guarded`).
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_function(syntax_tree::CHAIN_FUNCTION, lookup_chain);
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
    env.set_loader(|source| match source.strip_prefix(INCLUDE_MARKER) {
        Some(name) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "cannot load template `{name}`: include, import and extends are not supported, so put its content in this template"
            ),
        )),
        None => Ok(Some(source.to_string())),
    });

    // `{% include %}`, `{% import %}` and `{% extends %}` name other templates. The
    // path join callback marks those names, so the loader rejects them instead of
    // rendering the name itself as template text.
    env.set_path_join_callback(|name, _parent| format!("{INCLUDE_MARKER}{name}").into());

    // minijinja picks HTML or JSON escaping from a template name's extension, and
    // here the name is the text itself, which may well end in `.yml`.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(python::format_value);
    // Python string and dict methods (`s.startswith('x')`, `d.items()`, `d.get(k)`)
    // are common in Ansible templates.
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);

    filters::register(&mut env, &mut own_names.filters);
    jinja_tests::register(&mut env, &mut own_names.tests);
    lookup::register(&mut env);
    env.add_global("omit", omit.to_string());

    env
}

/// Follows `keys` from `root`, returning undefined as soon as a step is missing or
/// undefined, as Ansible's chained undefined values do.
fn lookup_chain(root: minijinja::Value, keys: Rest<minijinja::Value>) -> minijinja::Value {
    let mut value = root;
    for key in keys.iter() {
        if value.is_undefined() || value.is_none() {
            return minijinja::Value::UNDEFINED;
        }
        value = value.get_item(key).unwrap_or(minijinja::Value::UNDEFINED);
    }
    value
}

/// Returns a placeholder that no user value will equal by chance, like Ansible's
/// `__omit_place_holder__` followed by a random hash.
fn omit_placeholder() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(std::process::id() as usize);
    format!("__omit_place_holder__{:016x}", hasher.finish())
}
