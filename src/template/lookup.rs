//! The `lookup` and `query` functions with the `env` and `file` plugins.
//!
//! Lookups run on the controller. `pipe` is rejected because running a local command
//! from a template would run it once per host and task, unseen by check mode.

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, Value};

pub(super) fn register(env: &mut Environment<'static>) {
    env.add_function("lookup", lookup);
    env.add_function("query", query);
    env.add_function("q", query);
}

/// Returns the results joined by commas, or as a list with `wantlist=True`, as in Ansible.
fn lookup(plugin: String, terms: Rest<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let wantlist = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
    let results = run(&plugin, &terms.0, &kwargs)?;
    kwargs.assert_all_used()?;
    if wantlist {
        return Ok(Value::from(results));
    }
    match results.len() {
        1 => Ok(Value::from(results.into_iter().next().unwrap_or_default())),
        _ => Ok(Value::from(results.join(","))),
    }
}

fn query(plugin: String, terms: Rest<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let results = run(&plugin, &terms.0, &kwargs)?;
    kwargs.assert_all_used()?;
    Ok(Value::from(results))
}

fn run(plugin: &str, terms: &[String], kwargs: &Kwargs) -> Result<Vec<String>, Error> {
    let plugin = plugin.strip_prefix("ansible.builtin.").unwrap_or(plugin);
    match plugin {
        "env" => {
            let default = kwargs.get::<Option<String>>("default")?.unwrap_or_default();
            Ok(terms
                .iter()
                .map(|name| std::env::var(name).unwrap_or_else(|_| default.clone()))
                .collect())
        }
        "file" => {
            let rstrip = kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true);
            let lstrip = kwargs.get::<Option<bool>>("lstrip")?.unwrap_or(false);
            terms
                .iter()
                .map(|path| read_file(path, lstrip, rstrip))
                .collect()
        }
        "pipe" => Err(Error::new(
            ErrorKind::InvalidOperation,
            "lookup plugin `pipe` is not supported: run the command in a task and `register` its output",
        )),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("unknown lookup plugin `{other}`: the supported plugins are `env` and `file`"),
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
