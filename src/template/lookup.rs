//! The `lookup` and `query` functions with the `env`, `file` and `vars` plugins.
//!
//! Lookups run on the controller. `pipe` is rejected because running a local command
//! from a template would run it once per host and task, unseen by check mode.
//!
//! A relative path given to `file` is searched as Ansible does: in the role's
//! `files/` folder and the role folder, then in the playbook's `files/` folder and
//! the playbook folder. The folders come from the `role_path` and `playbook_dir`
//! variables, which the executor sets for every task. The current folder is tried
//! last, for templates rendered outside a playbook.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// The lookup plugins that `lookup`, `query` and `q` implement.
pub(super) const PLUGINS: &[&str] = &["env", "file", "vars"];

pub(super) fn register(env: &mut Environment<'static>) {
    env.add_function("lookup", lookup);
    env.add_function("query", query);
    env.add_function("q", query);
}

/// Returns the result itself for one term, and the results joined by commas for
/// several, or a list with `wantlist=True`, as in Ansible.
fn lookup(
    state: &State,
    plugin: String,
    terms: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let wantlist = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
    let Some(results) = run_handling_errors(state, &plugin, &terms.0, &kwargs)? else {
        return Ok(Value::from(()));
    };
    kwargs.assert_all_used()?;
    if wantlist {
        return Ok(Value::from(results));
    }
    if results.len() == 1 {
        return Ok(results.into_iter().next().unwrap_or_default());
    }
    let texts: Vec<String> = results
        .iter()
        .map(|result| match result.as_str() {
            Some(text) => text.to_string(),
            None => result.to_string(),
        })
        .collect();
    Ok(Value::from(texts.join(",")))
}

fn query(
    state: &State,
    plugin: String,
    terms: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let results = run_handling_errors(state, &plugin, &terms.0, &kwargs)?.unwrap_or_default();
    kwargs.assert_all_used()?;
    Ok(Value::from(results))
}

/// Runs a plugin and applies Ansible's `errors` argument: `strict` (the default)
/// raises the error, while `warn` and `ignore` return `None` in its place, and
/// `warn` logs it too.
fn run_handling_errors(
    state: &State,
    plugin: &str,
    terms: &[String],
    kwargs: &Kwargs,
) -> Result<Option<Vec<Value>>, Error> {
    let errors = kwargs.get::<Option<String>>("errors")?;
    // As in Ansible, `errors` covers failures of a plugin, not a plugin that is missing.
    let name = plugin.strip_prefix("ansible.builtin.").unwrap_or(plugin);
    if !PLUGINS.contains(&name) {
        return run(state, plugin, terms, kwargs).map(Some);
    }
    let errors = errors.as_deref().unwrap_or("strict");
    if !matches!(errors, "strict" | "warn" | "ignore") {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("invalid value `{errors}` for the `errors` argument of a lookup: use `strict`, `warn` or `ignore`"),
        ));
    }
    match (errors, run(state, plugin, terms, kwargs)) {
        (_, Ok(results)) => Ok(Some(results)),
        ("warn", Err(err)) => {
            tracing::warn!(plugin, error = %err, "lookup failed, continuing because of errors='warn'");
            Ok(None)
        }
        ("ignore", Err(_)) => Ok(None),
        (_, Err(err)) => Err(err),
    }
}

fn run(
    state: &State,
    plugin: &str,
    terms: &[String],
    kwargs: &Kwargs,
) -> Result<Vec<Value>, Error> {
    let plugin = plugin.strip_prefix("ansible.builtin.").unwrap_or(plugin);
    match plugin {
        "env" => {
            let default = kwargs.get::<Option<String>>("default")?.unwrap_or_default();
            Ok(terms
                .iter()
                .map(|name| Value::from(std::env::var(name).unwrap_or_else(|_| default.clone())))
                .collect())
        }
        "file" => {
            let rstrip = kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true);
            let lstrip = kwargs.get::<Option<bool>>("lstrip")?.unwrap_or(false);
            let folders = search_folders(state);
            terms
                .iter()
                .map(|path| read_file(path, &folders, lstrip, rstrip).map(Value::from))
                .collect()
        }
        "vars" => {
            let default = kwargs.get::<Option<Value>>("default")?;
            terms
                .iter()
                .map(|name| match (state.lookup(name), &default) {
                    (Some(value), _) if !value.is_undefined() => Ok(value),
                    (_, Some(default)) => Ok(default.clone()),
                    _ => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("lookup `vars` found no variable `{name}`: define it, or pass `default=...`"),
                    )),
                })
                .collect()
        }
        "pipe" => Err(Error::new(
            ErrorKind::InvalidOperation,
            "lookup plugin `pipe` is not supported: run the command in a task and `register` its output",
        )),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            unknown_plugin_message(other),
        )),
    }
}

/// Returns the folders a relative `file` lookup searches, in order.
fn search_folders(state: &State) -> Vec<PathBuf> {
    let folder = |name: &str| {
        let value = state.lookup(name)?;
        let text = value.as_str()?;
        (!text.is_empty()).then(|| PathBuf::from(text))
    };
    let mut folders = Vec::new();
    for base in [folder("role_path"), folder("playbook_dir")]
        .into_iter()
        .flatten()
    {
        folders.push(base.join("files"));
        folders.push(base);
    }
    folders
}

/// Reads a file, searching `folders` for a relative path, and strips whitespace as
/// Ansible's `file` lookup does (trailing by default).
fn read_file(path: &str, folders: &[PathBuf], lstrip: bool, rstrip: bool) -> Result<String, Error> {
    let relative = Path::new(path);
    let found = if relative.is_absolute() {
        relative.to_path_buf()
    } else {
        folders
            .iter()
            .map(|folder| folder.join(relative))
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| relative.to_path_buf())
    };
    let text = std::fs::read_to_string(&found).map_err(|err| {
        let searched = if relative.is_absolute() || folders.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = folders
                .iter()
                .map(|folder| format!("`{}`", folder.display()))
                .collect();
            format!(" (searched {} and the current folder)", list.join(", "))
        };
        Error::new(
            ErrorKind::InvalidOperation,
            format!("lookup `file` cannot read `{path}`: {err}{searched}"),
        )
    })?;
    let text = if rstrip { text.trim_end() } else { &text };
    let text = if lstrip { text.trim_start() } else { text };
    Ok(text.to_string())
}

/// Returns the error message for a lookup plugin that vpsforge does not implement.
pub(super) fn unknown_plugin_message(plugin: &str) -> String {
    format!("unknown lookup plugin `{plugin}`: the supported plugins are `env`, `file` and `vars`")
}
