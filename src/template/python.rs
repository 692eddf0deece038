//! Printing of values the way Ansible's Jinja (running on Python) prints them:
//! `True`, `False`, `None`, and lists and dicts in Python's `repr` form.

use std::fmt::Write as _;

use minijinja::value::ValueKind;
use minijinja::{Error, Output, State, Value};

/// Writes `value` into template output as Python's `str()` would.
pub(super) fn format_value(
    out: &mut Output,
    _state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::String => out.write_str(value.as_str().unwrap_or_default())?,
        ValueKind::Bool | ValueKind::None | ValueKind::Seq | ValueKind::Map => {
            let json = serde_json::to_value(value).map_err(|err| {
                Error::new(
                    minijinja::ErrorKind::BadSerialization,
                    format!("cannot print the value: {err}"),
                )
            })?;
            out.write_str(&repr(&json))?;
        }
        _ => write!(out, "{value}")?,
    }
    Ok(())
}

/// Returns Python's `repr()` of a JSON value.
pub(super) fn repr(value: &serde_json::Value) -> String {
    let mut text = String::new();
    write_repr(&mut text, value);
    text
}

fn write_repr(text: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Null => text.push_str("None"),
        serde_json::Value::Bool(true) => text.push_str("True"),
        serde_json::Value::Bool(false) => text.push_str("False"),
        serde_json::Value::Number(number) => {
            let _ = write!(text, "{number}");
        }
        serde_json::Value::String(s) => write_string_repr(text, s),
        serde_json::Value::Array(items) => {
            text.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                write_repr(text, item);
            }
            text.push(']');
        }
        serde_json::Value::Object(entries) => {
            text.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                write_string_repr(text, key);
                text.push_str(": ");
                write_repr(text, item);
            }
            text.push('}');
        }
    }
}

/// Quotes a string as Python does: single quotes unless the string contains a single
/// quote and no double quote.
fn write_string_repr(text: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    text.push(quote);
    for c in s.chars() {
        match c {
            '\\' => text.push_str("\\\\"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            '\t' => text.push_str("\\t"),
            c if c == quote => {
                text.push('\\');
                text.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(text, "\\x{:02x}", c as u32);
            }
            c => text.push(c),
        }
    }
    text.push(quote);
}
