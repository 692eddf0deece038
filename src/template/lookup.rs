//! The `lookup` and `query` functions with the `env`, `file` and `vars` plugins.
//!
//! Lookups run on the controller. `pipe` is rejected because running a local command
//! from a template would run it once per host and task, unseen by check mode.

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, State, Value};

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
    let results = run(state, &plugin, &terms.0, &kwargs)?;
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
    let results = run(state, &plugin, &terms.0, &kwargs)?;
    kwargs.assert_all_used()?;
    Ok(Value::from(results))
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
            terms
                .iter()
                .map(|path| read_file(path, lstrip, rstrip).map(Value::from))
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
            format!("unknown lookup plugin `{other}`: the supported plugins are `env`, `file` and `vars`"),
        )),
    }
}

/// Reads a file relative to the current working directory, stripping whitespace as
/// Ansible's `file` lookup does (trailing by default).
fn read_file(path: &str, lstrip: bool, rstrip: bool) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("lookup `file` cannot read `{path}`: {err}"),
        )
    })?;
    let text = if rstrip { text.trim_end() } else { &text };
    let text = if lstrip { text.trim_start() } else { text };
    Ok(text.to_string())
}
