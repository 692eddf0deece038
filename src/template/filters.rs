//! Ansible's filters that minijinja's builtins lack or define differently.
//!
//! Builtins kept as they are: `default`/`d` (with the second `boolean` argument),
//! `join`, `lower`, `upper`, `length`/`count`, `first`, `last`, `map`, `select`,
//! `reject`, `selectattr`, `unique`, `split`, `trim`, `replace`, `list`, `sort`.

use std::collections::BTreeMap;

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use serde_json::Value as Json;

use super::regex_cache::{self, GroupRef, RegexFlags};
use super::{python, version, yaml};

pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", to_bool);
    env.add_filter("int", to_int);
    env.add_filter("float", to_float);
    env.add_filter("string", to_string);

    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("from_json", from_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_yaml);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("from_yaml_all", from_yaml_all);

    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", regex_escape);

    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);

    env.add_filter("ternary", ternary);
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);

    env.add_filter("quote", quote);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("hash", hash);
    env.add_filter("checksum", checksum);

    env.add_filter("comment", comment);
    env.add_filter("extract", extract);
    env.add_filter("type_debug", type_debug);

    env.add_filter("union", union);
    env.add_filter("intersect", intersect);
    env.add_filter("difference", difference);
    env.add_filter("symmetric_difference", symmetric_difference);

    env.add_filter("mandatory", mandatory);
    env.add_filter("flatten", flatten);
    env.add_filter("splitlines", splitlines);
    env.add_filter("version_compare", version_compare);
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

/// Writes JSON with Python's `json.dumps` separators (`", "` and `": "`).
struct PythonCompactFormatter;

impl serde_json::ser::Formatter for PythonCompactFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

fn sort_keys(data: &Json) -> Json {
    match data {
        Json::Object(entries) => {
            let sorted: BTreeMap<&String, Json> = entries
                .iter()
                .map(|(key, item)| (key, sort_keys(item)))
                .collect();
            Json::Object(
                sorted
                    .into_iter()
                    .map(|(key, item)| (key.clone(), item))
                    .collect(),
            )
        }
        Json::Array(items) => Json::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

fn dump_json(data: &Json, indent: Option<usize>) -> Result<String, Error> {
    let mut bytes = Vec::new();
    let written = match indent {
        Some(width) => {
            let indent = " ".repeat(width);
            let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
            serde::Serialize::serialize(data, &mut serializer)
        }
        None => {
            let mut serializer =
                serde_json::Serializer::with_formatter(&mut bytes, PythonCompactFormatter);
            serde::Serialize::serialize(data, &mut serializer)
        }
    };
    written.map_err(|err| Error::new(ErrorKind::BadSerialization, err.to_string()))?;
    String::from_utf8(bytes).map_err(|err| Error::new(ErrorKind::BadSerialization, err.to_string()))
}

fn to_json(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?;
    let sorted = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let data = to_data(value)?;
    let data = if sorted { sort_keys(&data) } else { data };
    dump_json(&data, indent)
}

/// Writes JSON indented by 4 with sorted keys, as Ansible's `to_nice_json` does.
fn to_nice_json(value: &Value, indent: Option<usize>, kwargs: Kwargs) -> Result<String, Error> {
    let indent = positional_or_keyword(indent, &kwargs, "indent")?.unwrap_or(4);
    let sorted = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let data = to_data(value)?;
    let data = if sorted { sort_keys(&data) } else { data };
    dump_json(&data, Some(indent))
}

fn from_json(text: String) -> Result<Value, Error> {
    let data: Json = serde_json::from_str(&text)
        .map_err(|err| invalid(format!("`from_json` got invalid JSON: {err}")))?;
    Ok(from_data(&data))
}

fn to_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    // Ansible passes these to PyYAML; they change layout only, so they are accepted
    // and ignored.
    for option in [
        "indent",
        "width",
        "default_flow_style",
        "allow_unicode",
        "sort_keys",
    ] {
        let _ = kwargs.get::<Option<Value>>(option)?;
    }
    kwargs.assert_all_used()?;
    yaml::to_yaml(&to_data(value)?).map_err(|err| invalid(format!("cannot write YAML: {err}")))
}

fn from_yaml(text: String) -> Result<Value, Error> {
    let data = yaml::from_yaml(&text)
        .map_err(|err| invalid(format!("`from_yaml` got invalid YAML: {err}")))?;
    Ok(from_data(&data))
}

fn from_yaml_all(text: String) -> Result<Value, Error> {
    let documents = yaml::from_yaml_all(&text)
        .map_err(|err| invalid(format!("`from_yaml_all` got invalid YAML: {err}")))?;
    Ok(from_data(&Json::Array(documents)))
}

fn regex_flags(kwargs: &Kwargs) -> Result<RegexFlags, Error> {
    Ok(RegexFlags {
        ignorecase: kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
        multiline: kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false),
    })
}

/// Replaces every match of `pattern`; the replacement uses Python's `\1` syntax.
fn regex_replace(
    value: String,
    pattern: Option<String>,
    replacement: Option<String>,
    ignorecase: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let pattern = positional_or_keyword(pattern, &kwargs, "pattern")?.unwrap_or_default();
    let replacement =
        positional_or_keyword(replacement, &kwargs, "replacement")?.unwrap_or_default();
    let mut flags = regex_flags(&kwargs)?;
    flags.ignorecase |= ignorecase.unwrap_or(false);
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let mandatory_count = kwargs.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
    kwargs.assert_all_used()?;

    let regex = regex_cache::compile(&pattern, flags)?;
    if mandatory_count > 0 {
        let found = regex.find_iter(&value).count();
        if found != mandatory_count {
            return Err(invalid(format!(
                "`regex_replace` expected {mandatory_count} matches of `{pattern}` but found {found}"
            )));
        }
    }
    let replacement = regex_cache::python_replacement(&replacement);
    Ok(regex
        .replacen(&value, count, replacement.as_str())
        .into_owned())
}

/// Returns the first match of `pattern`, or none. Extra arguments (`'\\1'`,
/// `'\\g<name>'`) return those groups as a list instead.
fn regex_search(
    value: String,
    pattern: String,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let flags = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let regex = regex_cache::compile(&pattern, flags)?;
    let Some(captures) = regex.captures(&value) else {
        return Ok(Value::from(()));
    };
    if groups.0.is_empty() {
        return Ok(Value::from(captures.get(0).map_or("", |m| m.as_str())));
    }

    let mut selected = Vec::with_capacity(groups.0.len());
    for reference in &groups.0 {
        let group = match regex_cache::group_reference(reference) {
            Some(GroupRef::Index(index)) => captures.get(index),
            Some(GroupRef::Name(name)) => captures.name(&name),
            None => {
                return Err(invalid(format!(
                    "invalid group reference `{reference}` for `regex_search`: use `\\\\1` or `\\\\g<name>`"
                )))
            }
        };
        selected.push(group.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(selected))
}

/// Returns all matches as Python's `re.findall` does: whole matches without groups,
/// the group with one group, and lists of groups with several.
fn regex_findall(value: String, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let flags = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let regex = regex_cache::compile(&pattern, flags)?;
    let group_count = regex.captures_len() - 1;
    let found: Vec<Value> = regex
        .captures_iter(&value)
        .map(|captures| {
            let text = |i: usize| captures.get(i).map_or("", |m| m.as_str()).to_string();
            match group_count {
                0 => Value::from(text(0)),
                1 => Value::from(text(1)),
                n => Value::from((1..=n).map(text).collect::<Vec<_>>()),
            }
        })
        .collect();
    Ok(Value::from(found))
}

fn regex_escape(value: String) -> String {
    regex::escape(&value)
}

fn b64encode(value: String) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
}

fn b64decode(value: String) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|err| invalid(format!("`b64decode` got invalid base64: {err}")))?;
    String::from_utf8(bytes).map_err(|_| invalid("`b64decode` result is not UTF-8 text"))
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

#[derive(Clone, Copy, PartialEq)]
enum ListMerge {
    Replace,
    Keep,
    Append,
    Prepend,
    AppendUnique,
    PrependUnique,
}

impl ListMerge {
    fn parse(name: &str) -> Result<ListMerge, Error> {
        match name {
            "replace" => Ok(ListMerge::Replace),
            "keep" => Ok(ListMerge::Keep),
            "append" => Ok(ListMerge::Append),
            "prepend" => Ok(ListMerge::Prepend),
            "append_rp" => Ok(ListMerge::AppendUnique),
            "prepend_rp" => Ok(ListMerge::PrependUnique),
            other => Err(invalid(format!(
                "invalid `list_merge` value `{other}`: use replace, keep, append, prepend, append_rp or prepend_rp"
            ))),
        }
    }

    fn merge(self, old: &[Json], new: &[Json]) -> Vec<Json> {
        match self {
            ListMerge::Replace => new.to_vec(),
            ListMerge::Keep => old.to_vec(),
            ListMerge::Append => old.iter().chain(new).cloned().collect(),
            ListMerge::Prepend => new.iter().chain(old).cloned().collect(),
            // The `_rp` variants drop the items of the old list that the new one repeats.
            ListMerge::AppendUnique => old
                .iter()
                .filter(|item| !new.contains(item))
                .chain(new)
                .cloned()
                .collect(),
            ListMerge::PrependUnique => new
                .iter()
                .chain(old.iter().filter(|item| !new.contains(item)))
                .cloned()
                .collect(),
        }
    }
}

fn merge_into(
    target: &mut serde_json::Map<String, Json>,
    source: &serde_json::Map<String, Json>,
    recursive: bool,
    lists: ListMerge,
) {
    for (key, new) in source {
        match (target.get_mut(key), new) {
            (Some(Json::Object(old)), Json::Object(new)) if recursive => {
                merge_into(old, new, recursive, lists)
            }
            (Some(Json::Array(old)), Json::Array(new)) => {
                let merged = lists.merge(old, new);
                *old = merged;
            }
            _ => {
                target.insert(key.clone(), new.clone());
            }
        }
    }
}

/// Merges mappings left to right; later keys win. Lists of mappings among the
/// arguments are merged item by item, as in Ansible.
fn combine(value: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let lists = ListMerge::parse(
        &kwargs
            .get::<Option<String>>("list_merge")?
            .unwrap_or_else(|| "replace".into()),
    )?;
    kwargs.assert_all_used()?;

    let mut sources = Vec::new();
    for item in std::iter::once(value).chain(others.0.iter()) {
        match to_data(item)? {
            Json::Array(items) => sources.extend(items),
            data => sources.push(data),
        }
    }

    let mut merged = serde_json::Map::new();
    for source in &sources {
        let Json::Object(source) = source else {
            return Err(invalid(format!(
                "`combine` takes mappings, got `{}`",
                python::repr(source)
            )));
        };
        merge_into(&mut merged, source, recursive, lists);
    }
    Ok(from_data(&Json::Object(merged)))
}

fn key_value_names(
    key_name: Option<String>,
    value_name: Option<String>,
    kwargs: &Kwargs,
) -> Result<(String, String), Error> {
    let key_name =
        positional_or_keyword(key_name, kwargs, "key_name")?.unwrap_or_else(|| "key".into());
    let value_name =
        positional_or_keyword(value_name, kwargs, "value_name")?.unwrap_or_else(|| "value".into());
    kwargs.assert_all_used()?;
    Ok((key_name, value_name))
}

fn dict2items(
    value: &Value,
    key_name: Option<String>,
    value_name: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let (key_name, value_name) = key_value_names(key_name, value_name, &kwargs)?;
    let Json::Object(entries) = to_data(value)? else {
        return Err(invalid(format!(
            "`dict2items` takes a mapping, got {}",
            value.kind()
        )));
    };
    let items: Vec<Json> = entries
        .into_iter()
        .map(|(key, item)| {
            let mut pair = serde_json::Map::new();
            pair.insert(key_name.clone(), Json::String(key));
            pair.insert(value_name.clone(), item);
            Json::Object(pair)
        })
        .collect();
    Ok(from_data(&Json::Array(items)))
}

fn items2dict(
    value: &Value,
    key_name: Option<String>,
    value_name: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let (key_name, value_name) = key_value_names(key_name, value_name, &kwargs)?;
    let Json::Array(items) = to_data(value)? else {
        return Err(invalid(format!(
            "`items2dict` takes a list of mappings, got {}",
            value.kind()
        )));
    };
    let mut entries = serde_json::Map::new();
    for item in &items {
        let (Some(key), Some(value)) = (item.get(&key_name), item.get(&value_name)) else {
            return Err(invalid(format!(
                "`items2dict` item `{}` has no `{key_name}` or no `{value_name}` key",
                python::repr(item)
            )));
        };
        let key = match key {
            Json::String(key) => key.clone(),
            other => other.to_string(),
        };
        entries.insert(key, value.clone());
    }
    Ok(from_data(&Json::Object(entries)))
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

fn hash(value: String, algorithm: Option<String>) -> Result<String, Error> {
    use sha2::Digest as _;
    let algorithm = algorithm.unwrap_or_else(|| "sha1".into());
    match algorithm.as_str() {
        "sha1" => Ok(hex::encode(<sha1::Sha1 as sha1::Digest>::digest(
            value.as_bytes(),
        ))),
        "sha256" => Ok(hex::encode(sha2::Sha256::digest(value.as_bytes()))),
        "sha512" => Ok(hex::encode(sha2::Sha512::digest(value.as_bytes()))),
        "md5" => Ok(format!("{:x}", md5::compute(value.as_bytes()))),
        other => Err(invalid(format!(
            "unsupported hash algorithm `{other}`: use sha1, sha256, sha512 or md5"
        ))),
    }
}

fn checksum(value: String) -> Result<String, Error> {
    hash(value, None)
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

/// Flattens nested lists, `levels` deep when given, dropping nulls unless
/// `skip_nulls=false`.
fn flatten(value: &Value, levels: Option<usize>, kwargs: Kwargs) -> Result<Value, Error> {
    let levels = positional_or_keyword(levels, &kwargs, "levels")?;
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let Json::Array(items) = to_data(value)? else {
        return Err(invalid(format!(
            "`flatten` takes a list, got {}",
            value.kind()
        )));
    };

    fn walk(items: &[Json], levels: Option<usize>, skip_nulls: bool, flat: &mut Vec<Json>) {
        for item in items {
            match item {
                Json::Null if skip_nulls => {}
                Json::String(s) if skip_nulls && (s == "None" || s == "null") => {}
                Json::Array(inner) if levels != Some(0) => {
                    walk(inner, levels.map(|n| n - 1), skip_nulls, flat);
                }
                other => flat.push(other.clone()),
            }
        }
    }

    let mut flat = Vec::new();
    walk(&items, levels, skip_nulls, &mut flat);
    Ok(from_data(&Json::Array(flat)))
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

/// Returns `container[item]`, then looks up `morekeys` in that, for
/// `groups['web'] | map('extract', hostvars, 'ansible_host')`.
fn extract(item: &Value, container: &Value, morekeys: Option<Value>) -> Result<Value, Error> {
    let mut found = container.get_item(item)?;
    if found.is_undefined() {
        return Err(invalid(format!(
            "`extract` found no item `{item}` in the container"
        )));
    }
    let keys = match morekeys {
        None => Vec::new(),
        Some(keys) if keys.kind() == ValueKind::Seq => keys.try_iter()?.collect(),
        Some(key) => vec![key],
    };
    for key in keys {
        found = found.get_item(&key)?;
        if found.is_undefined() {
            return Err(invalid(format!(
                "`extract` found no key `{key}` under `{item}`"
            )));
        }
    }
    Ok(found)
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

fn list_items(value: &Value, filter: &str) -> Result<Vec<Json>, Error> {
    match to_data(value)? {
        Json::Array(items) => Ok(items),
        other => Err(invalid(format!(
            "`{filter}` takes lists, got `{}`",
            python::repr(&other)
        ))),
    }
}

/// Removes repeated items, keeping the first of each.
fn dedup(items: impl IntoIterator<Item = Json>) -> Vec<Json> {
    let mut unique: Vec<Json> = Vec::new();
    for item in items {
        if !unique.contains(&item) {
            unique.push(item);
        }
    }
    unique
}

fn union(value: &Value, other: &Value) -> Result<Value, Error> {
    let left = list_items(value, "union")?;
    let right = list_items(other, "union")?;
    Ok(from_data(&Json::Array(dedup(
        left.into_iter().chain(right),
    ))))
}

fn intersect(value: &Value, other: &Value) -> Result<Value, Error> {
    let left = list_items(value, "intersect")?;
    let right = list_items(other, "intersect")?;
    let common = left.into_iter().filter(|item| right.contains(item));
    Ok(from_data(&Json::Array(dedup(common))))
}

fn difference(value: &Value, other: &Value) -> Result<Value, Error> {
    let left = list_items(value, "difference")?;
    let right = list_items(other, "difference")?;
    let only_left = left.into_iter().filter(|item| !right.contains(item));
    Ok(from_data(&Json::Array(dedup(only_left))))
}

fn symmetric_difference(value: &Value, other: &Value) -> Result<Value, Error> {
    let left = list_items(value, "symmetric_difference")?;
    let right = list_items(other, "symmetric_difference")?;
    let only_left = left.iter().filter(|item| !right.contains(item));
    let only_right = right.iter().filter(|item| !left.contains(item));
    let items = only_left.chain(only_right).cloned();
    Ok(from_data(&Json::Array(dedup(items))))
}
