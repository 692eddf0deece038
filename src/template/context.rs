//! The variables of a render, rendered lazily as Ansible does.
//!
//! A variable whose value contains a template (`app_dir: "/srv/{{ app_name }}"`) is
//! rendered with the same variables when a template looks it up. The result is
//! cached until the render call returns. Lists and mappings are not converted as a
//! whole: they are views into the JSON, so a lookup such as `hostvars[h].ip` only
//! converts the value it reaches.
//!
//! Variables that are the same on every host (`hostvars`, `groups`) come as a
//! separate shared map, which every render of a run reads in place. Copying them
//! into each host's variables would cost time and memory in proportion to the
//! square of the inventory size for every task.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use minijinja::value::{Enumerator, Object, ObjectRepr, Serde};
use minijinja::Environment;
use serde_json::Value;

use super::errors::TemplateError;
use super::render::{has_jinja_syntax, Renderer};
use crate::yaml::strip_unsafe;

/// The context of one render call.
pub(super) struct Context {
    vars: Arc<LazyVars>,
}

impl Context {
    /// Binds a host's `vars` and the run's `shared` variables. A shared variable
    /// takes precedence over a host variable of the same name.
    pub fn new(
        env: &Arc<Environment<'static>>,
        vars: Arc<serde_json::Map<String, Value>>,
        shared: Arc<serde_json::Map<String, Value>>,
    ) -> Context {
        Context {
            vars: Arc::new(LazyVars::new(Arc::clone(env), vars, shared)),
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
        if let Some(failure) = &state.failure {
            let prefix = format!("undefined variable `{}", failure.top);
            if err.message.starts_with(&prefix) {
                err.message = format!(
                    "failed to render variable `{}`: {}",
                    failure.name, failure.error.message
                );
            }
        }
        Err(err)
    }
}

#[derive(Debug, Default)]
struct LookupState {
    /// Values already converted or rendered in this render call, by path key.
    resolved: HashMap<String, minijinja::Value>,
    /// Values being rendered now, to detect a variable that refers to itself.
    rendering: HashSet<String>,
    /// Values that failed to render, which later lookups treat as undefined without
    /// rendering them again.
    failed: HashSet<String>,
    /// The first value that failed to render.
    failure: Option<Failure>,
}

#[derive(Debug)]
struct Failure {
    /// The top-level variable that contains the failed value.
    top: String,
    /// The failed value as a template would write it (`settings.root`).
    name: String,
    error: TemplateError,
}

/// The location of a value inside the variables: a top-level name, then keys and indexes.
#[derive(Debug, Clone)]
struct VarPath {
    top: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

impl VarPath {
    fn child(&self, segment: Segment) -> VarPath {
        let mut segments = self.segments.clone();
        segments.push(segment);
        VarPath {
            top: self.top.clone(),
            segments,
        }
    }

    /// Returns a key that no other path shares, for the lookup caches.
    fn cache_key(&self) -> String {
        let mut key = self.top.clone();
        for segment in &self.segments {
            match segment {
                Segment::Key(name) => {
                    key.push('\0');
                    key.push_str(name);
                }
                Segment::Index(index) => {
                    key.push('\u{1}');
                    key.push_str(&index.to_string());
                }
            }
        }
        key
    }

    /// Splits `hostvars.web1.x.y` into the host name and the path `x.y` inside it.
    fn split_host(&self) -> Option<(String, VarPath)> {
        if self.top != HOSTVARS {
            return None;
        }
        let (Segment::Key(host), Segment::Key(top)) =
            (self.segments.first()?, self.segments.get(1)?)
        else {
            return None;
        };
        let inner = VarPath {
            top: top.clone(),
            segments: self.segments[2..].to_vec(),
        };
        Some((host.clone(), inner))
    }

    /// Returns the path as a template would write it (`settings.root`, `ports[0]`).
    fn display(&self) -> String {
        let mut name = self.top.clone();
        for segment in &self.segments {
            match segment {
                Segment::Key(key) => {
                    name.push('.');
                    name.push_str(key);
                }
                Segment::Index(index) => name.push_str(&format!("[{index}]")),
            }
        }
        name
    }
}

impl LookupState {
    fn record_named_failure(&mut self, path: &VarPath, name: String, error: TemplateError) {
        self.failed.insert(path.cache_key());
        self.failure.get_or_insert(Failure {
            top: path.top.clone(),
            name,
            error,
        });
    }
}

/// The variable that maps each inventory host name to that host's variables.
const HOSTVARS: &str = "hostvars";

struct LazyVars {
    env: Arc<Environment<'static>>,
    vars: Arc<serde_json::Map<String, Value>>,
    /// The variables that are the same on every host of the run.
    shared: Arc<serde_json::Map<String, Value>>,
    state: Mutex<LookupState>,
    /// The variables of other hosts, by host name, for rendering the templates
    /// inside `hostvars[host]` with that host's variables, as Ansible does.
    other_hosts: Mutex<HashMap<String, Arc<LazyVars>>>,
    /// For the variables of another host, the context whose `hostvars` and `groups`
    /// they see when those are not among the shared variables, because those two
    /// are the same on every host.
    /// It is weak because that context owns this one in `other_hosts`.
    parent: Option<Weak<LazyVars>>,
    /// The path prefix (`hostvars.web1.`) that names these variables in error messages.
    prefix: String,
}

impl std::fmt::Debug for LazyVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyVars")
            .field("vars", &self.vars.len())
            .finish()
    }
}

impl LazyVars {
    fn new(
        env: Arc<Environment<'static>>,
        vars: Arc<serde_json::Map<String, Value>>,
        shared: Arc<serde_json::Map<String, Value>>,
    ) -> LazyVars {
        LazyVars {
            env,
            vars,
            shared,
            state: Mutex::new(LookupState::default()),
            other_hosts: Mutex::new(HashMap::new()),
            parent: None,
            prefix: String::new(),
        }
    }

    /// Returns the top-level variable `name`, from the shared variables first.
    fn top(&self, name: &str) -> Option<&Value> {
        self.shared.get(name).or_else(|| self.vars.get(name))
    }

    /// Returns `path` as a template of the rendering host would write it.
    fn display(&self, path: &VarPath) -> String {
        format!("{}{}", self.prefix, path.display())
    }

    /// Returns the variables of `host` from `hostvars`, built on first use. Only
    /// that host's mapping is copied, once per render call.
    fn host_context(self: &Arc<Self>, host: &str) -> Option<Arc<LazyVars>> {
        let mut other_hosts = self.other_hosts.lock().ok()?;
        if let Some(context) = other_hosts.get(host) {
            return Some(Arc::clone(context));
        }
        let vars = self.top(HOSTVARS)?.get(host)?.as_object()?.clone();
        let mut context = LazyVars::new(
            Arc::clone(&self.env),
            Arc::new(vars),
            Arc::clone(&self.shared),
        );
        context.parent = Some(Arc::downgrade(self));
        context.prefix = format!("{HOSTVARS}.{host}.");
        let context = Arc::new(context);
        other_hosts.insert(host.to_string(), Arc::clone(&context));
        Some(context)
    }

    /// Returns the JSON value at `path`.
    fn find(&self, path: &VarPath) -> Option<&Value> {
        let mut node = self.top(&path.top)?;
        for segment in &path.segments {
            node = match (segment, node) {
                (Segment::Key(key), Value::Object(entries)) => entries.get(key)?,
                (Segment::Index(index), Value::Array(items)) => items.get(*index)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Converts the value at `path` for a template: scalars directly, lists and
    /// mappings as views, and strings with templates by rendering them.
    fn lookup(self: &Arc<Self>, path: VarPath) -> Option<minijinja::Value> {
        if let Some(parent) = &self.parent {
            if matches!(path.top.as_str(), HOSTVARS | "groups") && self.top(&path.top).is_none() {
                return parent.upgrade()?.lookup(path);
            }
        }
        let raw = self.find(&path)?;
        match raw {
            Value::String(text) if strip_unsafe(text).is_some() => {
                strip_unsafe(text).map(minijinja::Value::from)
            }
            Value::String(text) if has_jinja_syntax(text) => match path.split_host() {
                Some((host, inner)) => {
                    let context = self.host_context(&host)?;
                    let value = context.lookup(inner);
                    if value.is_none() {
                        self.adopt_failure(&context, &path);
                    }
                    value
                }
                None => self.render(path, raw),
            },
            Value::Object(_) | Value::Array(_) => Some(minijinja::Value::from_object(JsonView {
                vars: Arc::clone(self),
                path,
            })),
            _ => Some(minijinja::Value::from(Serde(raw))),
        }
    }

    /// Records the failure of `context`, the variables of another host, as the failure
    /// of `path` here, so that [`Context::explain`] can report it.
    fn adopt_failure(&self, context: &LazyVars, path: &VarPath) {
        let failure = match context.state.lock() {
            Ok(state) => state
                .failure
                .as_ref()
                .map(|failure| (failure.name.clone(), failure.error.clone())),
            Err(_) => None,
        };
        if let (Some((name, error)), Ok(mut state)) = (failure, self.state.lock()) {
            state.record_named_failure(path, name, error);
        }
    }

    /// Renders the string at `path`, once per render call.
    fn render(self: &Arc<Self>, path: VarPath, raw: &Value) -> Option<minijinja::Value> {
        let key = path.cache_key();
        {
            let mut state = self.state.lock().ok()?;
            if let Some(value) = state.resolved.get(&key) {
                return Some(value.clone());
            }
            if state.failed.contains(&key) {
                return None;
            }
            if !state.rendering.insert(key.clone()) {
                let err = TemplateError::new(format!(
                    "variable `{}` refers to itself: break the cycle in its definition",
                    self.display(&path)
                ));
                state.record_named_failure(&path, self.display(&path), err);
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
        state.rendering.remove(&key);
        match rendered {
            Ok(rendered) => {
                let value = minijinja::Value::from(Serde(&rendered));
                state.resolved.insert(key, value.clone());
                Some(value)
            }
            Err(err) => {
                state.record_named_failure(&path, self.display(&path), err);
                None
            }
        }
    }
}

impl Object for LazyVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let path = VarPath {
            top: key.as_str()?.to_string(),
            segments: Vec::new(),
        };
        self.lookup(path)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let own = self
            .vars
            .keys()
            .filter(|name| !self.shared.contains_key(*name));
        let names: Vec<minijinja::Value> = self
            .shared
            .keys()
            .chain(own)
            .map(|name| minijinja::Value::from(name.as_str()))
            .collect();
        Enumerator::Iter(Box::new(names.into_iter()))
    }
}

/// A list or mapping inside the variables, converted one item at a time.
#[derive(Debug)]
struct JsonView {
    vars: Arc<LazyVars>,
    path: VarPath,
}

impl JsonView {
    fn with_node<T>(&self, f: impl FnOnce(&Arc<LazyVars>, &Value) -> Option<T>) -> Option<T> {
        let node = self.vars.find(&self.path)?;
        f(&self.vars, node)
    }
}

impl Object for JsonView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        self.with_node(|_, node| match node {
            Value::Array(_) => Some(ObjectRepr::Seq),
            _ => Some(ObjectRepr::Map),
        })
        .unwrap_or(ObjectRepr::Plain)
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        self.with_node(|vars, node| {
            let segment = match node {
                Value::Object(entries) => {
                    let name = key.as_str()?;
                    entries.get(name)?;
                    Segment::Key(name.to_string())
                }
                Value::Array(items) => {
                    let index = key.as_i64()?;
                    let index = if index < 0 {
                        i64::try_from(items.len()).ok()? + index
                    } else {
                        index
                    };
                    let index = usize::try_from(index).ok()?;
                    items.get(index)?;
                    Segment::Index(index)
                }
                _ => return None,
            };
            vars.lookup(self.path.child(segment))
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.with_node(|_, node| match node {
            Value::Object(entries) => {
                let keys: Vec<minijinja::Value> = entries
                    .keys()
                    .map(|key| minijinja::Value::from(key.as_str()))
                    .collect();
                Some(Enumerator::Iter(Box::new(keys.into_iter())))
            }
            Value::Array(items) => Some(Enumerator::Seq(items.len())),
            _ => None,
        })
        .unwrap_or(Enumerator::NonEnumerable)
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.with_node(|_, node| match node {
            Value::Object(entries) => Some(entries.len()),
            Value::Array(items) => Some(items.len()),
            _ => None,
        })
    }

    fn is_true(self: &Arc<Self>) -> bool {
        self.enumerator_len().is_some_and(|len| len > 0)
    }
}
