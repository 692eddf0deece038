//! The variables of a render, rendered lazily as Ansible does.
//!
//! A variable whose value contains a template (`app_dir: "/srv/{{ app_name }}"`) is
//! rendered with the same variables when a template looks it up. The result is
//! cached until the render call returns.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Serde};
use minijinja::Environment;
use serde_json::Value;

use super::errors::TemplateError;
use super::render::{contains_template, Renderer};

/// The context of one render call.
pub(super) struct Context {
    vars: Arc<LazyVars>,
}

impl Context {
    pub fn new(
        env: &Arc<Environment<'static>>,
        vars: Arc<serde_json::Map<String, Value>>,
    ) -> Context {
        Context {
            vars: Arc::new(LazyVars {
                env: Arc::clone(env),
                vars,
                state: Mutex::new(LookupState::default()),
            }),
        }
    }

    pub fn value(&self) -> minijinja::Value {
        minijinja::Value::from_dyn_object(Arc::clone(&self.vars))
    }

    /// Replaces an "undefined variable `x`" error with the reason why variable `x`
    /// failed to render, when that is what happened.
    pub fn explain<T>(&self, result: Result<T, TemplateError>) -> Result<T, TemplateError> {
        let Err(mut err) = result else {
            return result;
        };
        let Ok(state) = self.vars.state.lock() else {
            return Err(err);
        };
        if let Some((name, cause)) = &state.failure {
            if err
                .message
                .starts_with(&format!("undefined variable `{name}`"))
            {
                err.message = format!("failed to render variable `{name}`: {}", cause.message);
            }
        }
        Err(err)
    }
}

#[derive(Debug, Default)]
struct LookupState {
    /// Variables already converted or rendered in this render call.
    resolved: HashMap<String, minijinja::Value>,
    /// Variables being rendered now, to detect a variable that refers to itself.
    rendering: HashSet<String>,
    /// Variables that failed to render, which later lookups treat as undefined
    /// without rendering them again.
    failed: HashSet<String>,
    /// The first variable that failed to render, with its error.
    failure: Option<(String, TemplateError)>,
}

struct LazyVars {
    env: Arc<Environment<'static>>,
    vars: Arc<serde_json::Map<String, Value>>,
    state: Mutex<LookupState>,
}

impl std::fmt::Debug for LazyVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyVars")
            .field("vars", &self.vars.len())
            .finish()
    }
}

impl LookupState {
    fn record_failure(&mut self, name: &str, err: TemplateError) {
        self.failed.insert(name.to_string());
        self.failure.get_or_insert((name.to_string(), err));
    }
}

impl Object for LazyVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let name = key.as_str()?;
        let raw = self.vars.get(name)?;

        {
            let mut state = self.state.lock().ok()?;
            if let Some(value) = state.resolved.get(name) {
                return Some(value.clone());
            }
            if state.failed.contains(name) {
                return None;
            }
            if !contains_template(raw) {
                let value = minijinja::Value::from(Serde(raw));
                state.resolved.insert(name.to_string(), value.clone());
                return Some(value);
            }
            if !state.rendering.insert(name.to_string()) {
                let err = TemplateError::new(format!(
                    "variable `{name}` refers to itself: break the cycle in its definition"
                ));
                state.record_failure(name, err);
                return None;
            }
        }

        // The lock is released while rendering, because the template may look up
        // further variables of this same context.
        let renderer = Renderer {
            env: &self.env,
            omit: None,
        };
        let context = minijinja::Value::from_dyn_object(Arc::clone(self));
        let rendered = renderer.render_value(raw, &context);

        let mut state = self.state.lock().ok()?;
        state.rendering.remove(name);
        match rendered {
            Ok(rendered) => {
                let value = minijinja::Value::from(Serde(&rendered));
                state.resolved.insert(name.to_string(), value.clone());
                Some(value)
            }
            Err(err) => {
                state.record_failure(name, err);
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names: Vec<minijinja::Value> = self
            .vars
            .keys()
            .map(|name| minijinja::Value::from(name.as_str()))
            .collect();
        Enumerator::Iter(Box::new(names.into_iter()))
    }
}
