//! Filters that convert between data and text: JSON, YAML, base64 and hashes.

use std::collections::BTreeMap;

use base64::Engine as _;
use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind, Value};
use serde_json::Value as Json;

use super::{from_data, invalid, positional_or_keyword, to_data};
use crate::template::yaml;

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

pub(super) fn to_json(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?;
    let sorted = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let data = to_data(value)?;
    let data = if sorted { sort_keys(&data) } else { data };
    dump_json(&data, indent)
}

/// Writes JSON indented by 4 with sorted keys, as Ansible's `to_nice_json` does.
pub(super) fn to_nice_json(
    value: &Value,
    indent: Option<usize>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let indent = positional_or_keyword(indent, &kwargs, "indent")?.unwrap_or(4);
    let sorted = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let data = to_data(value)?;
    let data = if sorted { sort_keys(&data) } else { data };
    dump_json(&data, Some(indent))
}

pub(super) fn from_json(text: String) -> Result<Value, Error> {
    let data: Json = serde_json::from_str(&text)
        .map_err(|err| invalid(format!("`from_json` got invalid JSON: {err}")))?;
    Ok(from_data(&data))
}

pub(super) fn to_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
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

pub(super) fn from_yaml(text: String) -> Result<Value, Error> {
    let data = yaml::from_yaml(&text)
        .map_err(|err| invalid(format!("`from_yaml` got invalid YAML: {err}")))?;
    Ok(from_data(&data))
}

pub(super) fn from_yaml_all(text: String) -> Result<Value, Error> {
    let documents = yaml::from_yaml_all(&text)
        .map_err(|err| invalid(format!("`from_yaml_all` got invalid YAML: {err}")))?;
    Ok(from_data(&Json::Array(documents)))
}

pub(super) fn b64encode(value: String) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
}

pub(super) fn b64decode(value: String) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|err| invalid(format!("`b64decode` got invalid base64: {err}")))?;
    String::from_utf8(bytes).map_err(|_| invalid("`b64decode` result is not UTF-8 text"))
}

pub(super) fn hash(value: String, algorithm: Option<String>) -> Result<String, Error> {
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

pub(super) fn checksum(value: String) -> Result<String, Error> {
    hash(value, None)
}
