//! Ansible's Jinja tests (`x is changed`, `x is version('1.2', '>=')`, ...) that
//! minijinja's builtins lack. Builtins kept as they are: `defined`, `undefined`,
//! `none`, `string`, `number`, `mapping`, `sequence`, `in`, `boolean`.

use std::collections::BTreeSet;

use minijinja::functions::Function;
use minijinja::value::{FunctionArgs, FunctionResult, Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::Value as Json;

use super::filters::{ansible_bool, to_data, undefined_error, version_compare};
use super::regex_cache::{self, RegexFlags};

pub(super) fn register(env: &mut Environment<'static>, names: &mut BTreeSet<String>) {
    add_test(env, names, "changed", is_changed);
    add_test(env, names, "change", is_changed);
    add_test(env, names, "failed", is_failed);
    add_test(env, names, "failure", is_failed);
    add_test(env, names, "succeeded", is_succeeded);
    add_test(env, names, "success", is_succeeded);
    add_test(env, names, "successful", is_succeeded);
    add_test(env, names, "skipped", is_skipped);
    add_test(env, names, "skip", is_skipped);
    add_test(env, names, "match", is_match);
    add_test(env, names, "search", is_search);
    add_test(env, names, "regex", is_regex);
    add_test(env, names, "version", version_compare);
    add_test(env, names, "version_compare", version_compare);
    add_test(env, names, "truthy", is_truthy);
    add_test(env, names, "falsy", is_falsy);
    add_test(env, names, "contains", contains);
    add_test(env, names, "subset", is_subset);
    add_test(env, names, "superset", is_superset);
}

/// Registers a test under its name and under Ansible's qualified name
/// (`ansible.builtin.version`).
fn add_test<F, Rv, Args>(
    env: &mut Environment<'static>,
    names: &mut BTreeSet<String>,
    name: &'static str,
    test: F,
) where
    F: Function<Rv, Args> + Clone,
    Rv: FunctionResult,
    Args: for<'a> FunctionArgs<'a>,
{
    names.insert(name.to_string());
    names.insert(format!("ansible.builtin.{name}"));
    env.add_test(name, test.clone());
    env.add_test(format!("ansible.builtin.{name}"), test);
}

/// Returns a registered task result as a mapping, or an error naming the test.
fn task_result(value: &Value, test: &str) -> Result<serde_json::Map<String, Json>, Error> {
    match to_data(value)? {
        Json::Object(result) => Ok(result),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "the `{test}` test takes a registered task result (a mapping), got {}",
                kind_name(&other)
            ),
        )),
    }
}

fn kind_name(data: &Json) -> &'static str {
    match data {
        Json::Null => "none",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    }
}

fn flag(result: &serde_json::Map<String, Json>, key: &str) -> Result<bool, Error> {
    match result.get(key) {
        Some(value) => ansible_bool(&Value::from(minijinja::value::Serde(value))),
        None => Ok(false),
    }
}

/// Checks whether a result is changed: its `changed` key is true or, for a loop
/// without that key, an item in `results` is changed.
fn is_changed(value: &Value) -> Result<bool, Error> {
    let result = task_result(value, "changed")?;
    if result.contains_key("changed") {
        return flag(&result, "changed");
    }
    let Some(Json::Array(items)) = result.get("results") else {
        return Ok(false);
    };
    for item in items {
        if let Json::Object(item) = item {
            if flag(item, "changed")? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn is_failed(value: &Value) -> Result<bool, Error> {
    flag(&task_result(value, "failed")?, "failed")
}

fn is_succeeded(value: &Value) -> Result<bool, Error> {
    Ok(!flag(&task_result(value, "succeeded")?, "failed")?)
}

fn is_skipped(value: &Value) -> Result<bool, Error> {
    flag(&task_result(value, "skipped")?, "skipped")
}

fn regex_test(
    value: &str,
    pattern: &str,
    kwargs: &Kwargs,
    match_type: &str,
) -> Result<bool, Error> {
    let flags = RegexFlags {
        ignorecase: kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
        multiline: kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let regex = regex_cache::compile(pattern, flags)?;
    match match_type {
        // Python's `re.match` anchors at the start only. The leftmost match starts at 0
        // exactly when some match does, so checking its start is equivalent.
        "match" => Ok(regex.find(value).is_some_and(|found| found.start() == 0)),
        "fullmatch" => {
            Ok(regex_cache::compile(&format!(r"\A(?:{pattern})\z"), flags)?.is_match(value))
        }
        "search" => Ok(regex.is_match(value)),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("invalid `match_type` `{other}`: use match, fullmatch or search"),
        )),
    }
}

fn is_match(value: String, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    regex_test(&value, &pattern, &kwargs, "match")
}

fn is_search(value: String, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    regex_test(&value, &pattern, &kwargs, "search")
}

fn is_regex(value: String, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let match_type = kwargs
        .get::<Option<String>>("match_type")?
        .unwrap_or_else(|| "search".into());
    regex_test(&value, &pattern, &kwargs, &match_type)
}

/// Jinja truthiness, or Ansible's `bool` conversion with `convert_bool=true`.
fn is_truthy(value: &Value, kwargs: Kwargs) -> Result<bool, Error> {
    let convert_bool = kwargs.get::<Option<bool>>("convert_bool")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    if value.is_undefined() {
        return Err(undefined_error(value));
    }
    if convert_bool
        && matches!(
            value.kind(),
            ValueKind::String | ValueKind::Number | ValueKind::Bool
        )
    {
        return ansible_bool(value);
    }
    Ok(value.is_true())
}

fn is_falsy(value: &Value, kwargs: Kwargs) -> Result<bool, Error> {
    Ok(!is_truthy(value, kwargs)?)
}

fn sequence(value: &Value, role: &str) -> Result<Vec<Json>, Error> {
    match to_data(value)? {
        Json::Array(items) => Ok(items),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "the {role} of this test must be a list, got {}",
                kind_name(&other)
            ),
        )),
    }
}

/// `list is contains(item)`: the list has an item equal to `item`.
fn contains(value: &Value, item: &Value) -> Result<bool, Error> {
    let items = sequence(value, "value")?;
    let item = to_data(item)?;
    Ok(items.contains(&item))
}

fn is_subset(value: &Value, other: &Value) -> Result<bool, Error> {
    let items = sequence(value, "value")?;
    let other = sequence(other, "argument")?;
    Ok(items.iter().all(|item| other.contains(item)))
}

fn is_superset(value: &Value, other: &Value) -> Result<bool, Error> {
    let items = sequence(value, "value")?;
    let other = sequence(other, "argument")?;
    Ok(other.iter().all(|item| items.contains(item)))
}
