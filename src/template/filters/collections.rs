//! Filters over lists and mappings: merging, conversion between shapes, flattening
//! and set operations.

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Error, Value};
use serde_json::Value as Json;

use super::{from_data, invalid, positional_or_keyword, to_data};
use crate::template::python;

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
pub(super) fn combine(value: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
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

pub(super) fn dict2items(
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

pub(super) fn items2dict(
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

/// Flattens nested lists, `levels` deep when given, dropping nulls unless
/// `skip_nulls=false`.
pub(super) fn flatten(
    value: &Value,
    levels: Option<usize>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
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

/// Returns `container[item]`, then looks up `morekeys` in that, for
/// `groups['web'] | map('extract', hostvars, 'ansible_host')`.
pub(super) fn extract(
    item: &Value,
    container: &Value,
    morekeys: Option<Value>,
) -> Result<Value, Error> {
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

pub(super) fn union(value: &Value, other: &Value) -> Result<Value, Error> {
    let left = list_items(value, "union")?;
    let right = list_items(other, "union")?;
    Ok(from_data(&Json::Array(dedup(
        left.into_iter().chain(right),
    ))))
}

pub(super) fn intersect(value: &Value, other: &Value) -> Result<Value, Error> {
    let left = list_items(value, "intersect")?;
    let right = list_items(other, "intersect")?;
    let common = left.into_iter().filter(|item| right.contains(item));
    Ok(from_data(&Json::Array(dedup(common))))
}

pub(super) fn difference(value: &Value, other: &Value) -> Result<Value, Error> {
    let left = list_items(value, "difference")?;
    let right = list_items(other, "difference")?;
    let only_left = left.into_iter().filter(|item| !right.contains(item));
    Ok(from_data(&Json::Array(dedup(only_left))))
}

pub(super) fn symmetric_difference(value: &Value, other: &Value) -> Result<Value, Error> {
    let left = list_items(value, "symmetric_difference")?;
    let right = list_items(other, "symmetric_difference")?;
    let only_left = left.iter().filter(|item| !right.contains(item));
    let only_right = right.iter().filter(|item| !left.contains(item));
    let items = only_left.chain(only_right).cloned();
    Ok(from_data(&Json::Array(dedup(items))))
}

/// The `dict()` function, which also takes a list of key-value pairs as Python's
/// does, for `dict(keys | zip(values))`.
pub(super) fn dict(value: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let pairs = match value {
        Some(pairs) if matches!(pairs.kind(), ValueKind::Seq | ValueKind::Iterable) => pairs,
        other => return minijinja::functions::dict(other, kwargs),
    };

    let mut entries = serde_json::Map::new();
    for pair in pairs.try_iter()? {
        let items: Vec<Value> = match pair.kind() {
            ValueKind::Seq | ValueKind::Iterable => pair.try_iter()?.collect(),
            _ => Vec::new(),
        };
        let [key, item] = items.as_slice() else {
            return Err(invalid(format!(
                "`dict` takes pairs of key and value, got `{pair}`"
            )));
        };
        let key = match key.as_str() {
            Some(key) => key.to_string(),
            None => key.to_string(),
        };
        entries.insert(key, to_data(item)?);
    }
    for name in kwargs.args() {
        let item: Value = kwargs.get(name)?;
        entries.insert(name.to_string(), to_data(&item)?);
    }
    Ok(from_data(&Json::Object(entries)))
}
