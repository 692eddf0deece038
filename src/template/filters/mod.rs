//! Ansible's filters that minijinja's builtins lack or define differently.
//!
//! Builtins kept as they are: `default`/`d` (with the second `boolean` argument),
//! `join`, `lower`, `upper`, `length`/`count`, `first`, `last`, `map`, `select`,
//! `reject`, `selectattr`, `unique`, `split`, `trim`, `replace`, `list`, `sort`.

mod collections;
mod crypt;
mod encoding;
mod patterns;
mod random;

use std::collections::BTreeSet;

use minijinja::functions::Function;
use minijinja::value::{FunctionArgs, FunctionResult, Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use serde_json::Value as Json;

use super::{python, version};

pub(super) fn register(env: &mut Environment<'static>, names: &mut BTreeSet<String>) {
    add_filter(env, names, "bool", to_bool);
    add_filter(env, names, "int", to_int);
    add_filter(env, names, "float", to_float);
    add_filter(env, names, "string", to_string);

    add_filter(env, names, "to_json", encoding::to_json);
    add_filter(env, names, "to_nice_json", encoding::to_nice_json);
    add_filter(env, names, "from_json", encoding::from_json);
    add_filter(env, names, "to_yaml", encoding::to_yaml);
    add_filter(env, names, "to_nice_yaml", encoding::to_yaml);
    add_filter(env, names, "from_yaml", encoding::from_yaml);
    add_filter(env, names, "from_yaml_all", encoding::from_yaml_all);

    add_filter(env, names, "regex_replace", patterns::regex_replace);
    add_filter(env, names, "regex_search", patterns::regex_search);
    add_filter(env, names, "regex_findall", patterns::regex_findall);
    add_filter(env, names, "regex_escape", patterns::regex_escape);

    add_filter(env, names, "b64encode", encoding::b64encode);
    add_filter(env, names, "b64decode", encoding::b64decode);

    add_filter(env, names, "ternary", ternary);
    add_filter(env, names, "combine", collections::combine);
    add_filter(env, names, "dict2items", collections::dict2items);
    add_filter(env, names, "items2dict", collections::items2dict);

    add_filter(env, names, "quote", quote);
    add_filter(env, names, "basename", basename);
    add_filter(env, names, "dirname", dirname);
    add_filter(env, names, "hash", encoding::hash);
    add_filter(env, names, "checksum", encoding::checksum);
    add_filter(env, names, "password_hash", crypt::password_hash);
    add_filter(env, names, "random", random::random);
    env.add_function("dict", collections::dict);
    add_filter(env, names, "shuffle", random::shuffle);

    add_filter(env, names, "comment", comment);
    add_filter(env, names, "extract", collections::extract);
    add_filter(env, names, "type_debug", type_debug);

    add_filter(env, names, "union", collections::union);
    add_filter(env, names, "intersect", collections::intersect);
    add_filter(env, names, "difference", collections::difference);
    add_filter(
        env,
        names,
        "symmetric_difference",
        collections::symmetric_difference,
    );

    add_filter(env, names, "mandatory", mandatory);
    add_filter(env, names, "flatten", collections::flatten);
    add_filter(env, names, "splitlines", splitlines);
    add_filter(env, names, "version_compare", version_compare);
}

/// Registers a filter under its name and under Ansible's qualified name
/// (`ansible.builtin.to_json`).
fn add_filter<F, Rv, Args>(
    env: &mut Environment<'static>,
    names: &mut BTreeSet<String>,
    name: &'static str,
    filter: F,
) where
    F: Function<Rv, Args> + Clone,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    names.insert(name.to_string());
    names.insert(format!("ansible.builtin.{name}"));
    env.add_filter(name, filter.clone());
    env.add_filter(format!("ansible.builtin.{name}"), filter);
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// Returns the error for using the undefined `value`.
///
/// Attribute lookup on an undefined value is the public minijinja call whose error
/// remembers where the value came from, so the message can name the variable.
pub(super) fn undefined_error(value: &Value) -> Error {
    match value.get_attr("") {
        Err(err) => err,
        Ok(_) => Error::from(ErrorKind::UndefinedError),
    }
}

/// Converts a template value into JSON data, rejecting an undefined value.
pub(super) fn to_data(value: &Value) -> Result<Json, Error> {
    if value.is_undefined() {
        return Err(undefined_error(value));
    }
    serde_json::to_value(value)
        .map_err(|err| Error::new(ErrorKind::BadSerialization, err.to_string()))
}

fn from_data(data: &Json) -> Value {
    Value::from(minijinja::value::Serde(data))
}

/// Returns a positional argument, or else the keyword argument `name`.
fn positional_or_keyword<'a, T>(
    positional: Option<T>,
    kwargs: &'a Kwargs,
    name: &'a str,
) -> Result<Option<T>, Error>
where
    T: minijinja::value::ArgType<'a, Output = T>,
{
    match positional {
        Some(value) => Ok(Some(value)),
        None => kwargs.get::<Option<T>>(name),
    }
}

/// Converts `value` with Ansible's `boolean()`. The strings `yes`, `on`, `true`, `1`,
/// `y` and `t` (in any case) and the number 1 are true. Everything else is false,
/// `no` included.
pub(super) fn ansible_bool(value: &Value) -> Result<bool, Error> {
    match value.kind() {
        ValueKind::Undefined => Err(undefined_error(value)),
        ValueKind::Bool => Ok(value.is_true()),
        ValueKind::None => Ok(false),
        ValueKind::Number => {
            Ok(value.as_i64() == Some(1) || f64::try_from(value.clone()).ok() == Some(1.0))
        }
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default().trim().to_lowercase();
            Ok(matches!(
                text.as_str(),
                "yes" | "on" | "true" | "1" | "y" | "t"
            ))
        }
        _ => Ok(false),
    }
}

fn to_bool(value: &Value) -> Result<bool, Error> {
    ansible_bool(value)
}

/// Converts to an integer; like Jinja, a value that does not convert becomes the
/// default, which is 0 unless given.
fn to_int(
    state: &State,
    value: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        None if !kwargs.has("default") => Some(Value::from(0)),
        other => other,
    };
    minijinja::filters::int(state, value, default, base, kwargs)
}

/// Converts to a float; like Jinja, a value that does not convert becomes the default,
/// which is 0.0 unless given.
fn to_float(
    state: &State,
    value: &Value,
    default: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        None if !kwargs.has("default") => Some(Value::from(0.0)),
        other => other,
    };
    minijinja::filters::float(state, value, default, kwargs)
}

/// Converts to a string as Python's `str()` does (`True`, `None`, `['a']`).
fn to_string(value: &Value) -> Result<String, Error> {
    match value.kind() {
        ValueKind::Undefined => Err(undefined_error(value)),
        ValueKind::String => Ok(value.as_str().unwrap_or_default().to_string()),
        ValueKind::Bool | ValueKind::None | ValueKind::Seq | ValueKind::Map => {
            Ok(python::repr(&to_data(value)?))
        }
        _ => Ok(value.to_string()),
    }
}

/// Returns `true_value` for a truthy value, `false_value` otherwise, and `none_value`
/// (when given) for none.
fn ternary(
    value: &Value,
    true_value: Value,
    false_value: Value,
    none_value: Option<Value>,
) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(undefined_error(value));
    }
    if let (true, Some(none_value)) = (value.is_none(), none_value) {
        return Ok(none_value);
    }
    Ok(if value.is_true() {
        true_value
    } else {
        false_value
    })
}

/// Quotes a value for a POSIX shell.
fn quote(value: &Value) -> Result<String, Error> {
    let text = to_string(value)?;
    Ok(crate::modules::common::quote(&text))
}

/// Returns the last path component, like Python's `os.path.basename` (`/a/b/` gives ``).
fn basename(path: String) -> String {
    match path.rsplit_once('/') {
        Some((_, name)) => name.to_string(),
        None => path,
    }
}

/// Returns the path without its last component, like Python's `os.path.dirname`
/// (`/etc` gives `/`, `file` gives ``).
fn dirname(path: String) -> String {
    let Some(slash) = path.rfind('/') else {
        return String::new();
    };
    let head = &path[..=slash];
    let trimmed = head.trim_end_matches('/');
    if trimmed.is_empty() {
        head.to_string()
    } else {
        trimmed.to_string()
    }
}

/// Fails when the value is undefined, with `msg` when given.
fn mandatory(value: &Value, msg: Option<String>) -> Result<Value, Error> {
    if !value.is_undefined() {
        return Ok(value.clone());
    }
    Err(match msg {
        Some(msg) => invalid(msg),
        None => undefined_error(value),
    })
}

fn splitlines(value: String) -> Vec<String> {
    value.lines().map(str::to_string).collect()
}

pub(super) fn version_compare(
    value: String,
    other: String,
    op: Option<String>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let op = positional_or_keyword(op, &kwargs, "operator")?.unwrap_or_else(|| "eq".into());
    let version_type = kwargs.get::<Option<String>>("version_type")?;
    let strict = kwargs.get::<Option<bool>>("strict")?.unwrap_or(false)
        || version_type.as_deref() == Some("strict");
    kwargs.assert_all_used()?;
    version::compare(&value, &other, &op, strict)
}

/// Wraps text in a comment block, as Ansible's `comment` filter does for
/// `{{ ansible_managed | comment }}`. Styles: `plain` (`#`), `c` (`//`), `cblock`
/// (`/* */`), `erlang` (`%`) and `xml` (`<!-- -->`).
fn comment(value: String, style: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    let style = positional_or_keyword(style, &kwargs, "style")?.unwrap_or_else(|| "plain".into());
    let decoration = kwargs.get::<Option<String>>("decoration")?;
    kwargs.assert_all_used()?;

    let (begin, prefix, end) = match style.as_str() {
        "plain" => (None, "# ", None),
        "c" => (None, "// ", None),
        "cblock" => (Some("/*"), " * ", Some(" */")),
        "erlang" => (None, "% ", None),
        "xml" => (Some("<!--"), " - ", Some("-->")),
        other => {
            return Err(invalid(format!(
                "invalid comment style `{other}`: use plain, c, cblock, erlang or xml"
            )))
        }
    };
    let prefix = decoration.as_deref().unwrap_or(prefix);
    let bare = prefix.trim_end();

    let mut lines = Vec::new();
    lines.extend(begin.map(str::to_string));
    lines.push(bare.to_string());
    for line in value.lines() {
        if line.is_empty() {
            lines.push(bare.to_string());
        } else {
            lines.push(format!("{prefix}{line}"));
        }
    }
    lines.push(bare.to_string());
    lines.extend(end.map(str::to_string));
    Ok(lines.join("\n"))
}

/// Returns the Python type name of a value, as Ansible's `type_debug` does.
fn type_debug(value: &Value) -> Result<&'static str, Error> {
    let name = match value.kind() {
        ValueKind::Undefined => return Err(undefined_error(value)),
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    };
    Ok(name)
}
