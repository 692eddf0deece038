//! Typed access to rendered module arguments, with Ansible's conversions.

use serde_json::Value;

use super::{Args, ModuleError};

/// Interprets a value as a boolean the way Ansible does: `yes`/`no`, `on`/`off`,
/// `true`/`false`, `1`/`0` and `y`/`n` in any case.
pub fn to_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "on" | "true" | "1" | "y" | "t" => Some(true),
            "no" | "off" | "false" | "0" | "n" | "f" | "" => Some(false),
            _ => None,
        },
        Value::Null => Some(false),
        _ => None,
    }
}

/// Returns a string argument; numbers and booleans are converted to text.
pub fn opt_str(args: &Args, name: &str) -> Result<Option<String>, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(ModuleError::InvalidArgument(format!(
            "argument `{name}` must be a string, not {}",
            json_kind(other)
        ))),
    }
}

pub fn req_str(args: &Args, name: &str) -> Result<String, ModuleError> {
    opt_str(args, name)?
        .ok_or_else(|| ModuleError::InvalidArgument(format!("missing required argument `{name}`")))
}

pub fn opt_bool(args: &Args, name: &str) -> Result<Option<bool>, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => to_bool(value).map(Some).ok_or_else(|| {
            ModuleError::InvalidArgument(format!(
                "argument `{name}` must be a boolean (yes/no, true/false), not `{}`",
                display(value)
            ))
        }),
    }
}

pub fn bool_or(args: &Args, name: &str, default: bool) -> Result<bool, ModuleError> {
    Ok(opt_bool(args, name)?.unwrap_or(default))
}

pub fn opt_int(args: &Args, name: &str) -> Result<Option<i64>, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(other) => Err(ModuleError::InvalidArgument(format!(
            "argument `{name}` must be an integer, not `{}`",
            display(other)
        ))),
    }
}

/// Returns a list argument. A string is split on commas, as Ansible does for `name: a,b`.
pub fn opt_list(args: &Args, name: &str) -> Result<Option<Vec<String>>, ModuleError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(ModuleError::InvalidArgument(format!(
                    "argument `{name}` must be a list of strings, but has `{}`",
                    display(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
        )),
        Some(other) => Err(ModuleError::InvalidArgument(format!(
            "argument `{name}` must be a list, not {}",
            json_kind(other)
        ))),
    }
}

/// Returns a string argument that must be one of `choices`, or `default` when absent.
pub fn choice(
    args: &Args,
    name: &str,
    choices: &[&str],
    default: &str,
) -> Result<String, ModuleError> {
    let value = opt_str(args, name)?.unwrap_or_else(|| default.to_string());
    if choices.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(ModuleError::InvalidArgument(format!(
            "argument `{name}` must be one of {}, not `{value}`",
            choices
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn to_bool_follows_ansible() {
        for (input, expected) in [
            (json!("yes"), Some(true)),
            (json!("no"), Some(false)),
            (json!("No"), Some(false)),
            (json!("on"), Some(true)),
            (json!(1), Some(true)),
            (json!(0), Some(false)),
            (json!("maybe"), None),
        ] {
            assert_eq!(to_bool(&input), expected, "input {input}");
        }
    }

    #[test]
    fn list_splits_comma_string() {
        let args: Args = serde_json::from_value(json!({"name": "nginx, curl"})).unwrap();
        assert_eq!(
            opt_list(&args, "name").unwrap(),
            Some(vec!["nginx".to_string(), "curl".to_string()])
        );
    }
}
