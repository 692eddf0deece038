//! YAML conversion for the `to_yaml`, `to_nice_yaml`, `from_yaml` and
//! `from_yaml_all` filters, through saphyr.

use saphyr::{LoadableYamlNode, Mapping, Scalar, Yaml, YamlEmitter, YamlOwned};
use serde_json::Value;

/// Emits `value` as a YAML document without the `---` marker, ending in a newline.
// NOTE: saphyr's emitter always indents by 2 spaces, so `to_nice_yaml` output is
// equivalent YAML to Ansible's but not indented by 4 as Ansible's is.
pub(super) fn to_yaml(value: &Value) -> Result<String, String> {
    let document = to_node(value);
    let mut text = String::new();
    let mut emitter = YamlEmitter::new(&mut text);
    emitter.multiline(true);
    emitter.dump(&document).map_err(|err| err.to_string())?;

    let body = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("--- "))
        .unwrap_or(&text);
    let mut body = body.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Ok(body)
}

fn to_node(value: &Value) -> Yaml<'static> {
    match value {
        Value::Null => Yaml::Value(Scalar::Null),
        Value::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        Value::Number(number) => match number.as_i64() {
            Some(i) => Yaml::Value(Scalar::Integer(i)),
            None => Yaml::Value(Scalar::FloatingPoint(
                number.as_f64().unwrap_or(f64::NAN).into(),
            )),
        },
        Value::String(s) => Yaml::Value(Scalar::String(s.clone().into())),
        Value::Array(items) => Yaml::Sequence(items.iter().map(to_node).collect()),
        Value::Object(entries) => {
            let mut mapping = Mapping::new();
            for (key, item) in entries {
                mapping.insert(
                    Yaml::Value(Scalar::String(key.clone().into())),
                    to_node(item),
                );
            }
            Yaml::Mapping(mapping)
        }
    }
}

/// Parses every document of `text`.
pub(super) fn from_yaml_all(text: &str) -> Result<Vec<Value>, String> {
    let documents = YamlOwned::load_from_str(text).map_err(|err| err.to_string())?;
    documents.iter().map(to_json).collect()
}

/// Parses the first document of `text`; an empty text is null.
pub(super) fn from_yaml(text: &str) -> Result<Value, String> {
    Ok(from_yaml_all(text)?
        .into_iter()
        .next()
        .unwrap_or(Value::Null))
}

fn to_json(node: &YamlOwned) -> Result<Value, String> {
    use saphyr::ScalarOwned;
    let value = match node {
        YamlOwned::Value(scalar) => match scalar {
            ScalarOwned::Null => Value::Null,
            ScalarOwned::Boolean(b) => Value::Bool(*b),
            ScalarOwned::Integer(i) => Value::from(*i),
            ScalarOwned::FloatingPoint(f) => {
                serde_json::Number::from_f64(f.into_inner()).map_or(Value::Null, Value::Number)
            }
            ScalarOwned::String(s) => Value::String(s.clone()),
        },
        YamlOwned::Representation(text, _, _) => Value::String(text.clone()),
        YamlOwned::Sequence(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        YamlOwned::Mapping(entries) => {
            let mut map = serde_json::Map::new();
            for (key, item) in entries {
                let key = match to_json(key)? {
                    Value::String(key) => key,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                map.insert(key, to_json(item)?);
            }
            Value::Object(map)
        }
        YamlOwned::Tagged(_, inner) => to_json(inner)?,
        YamlOwned::Alias(_) => return Err("YAML aliases are not supported".to_string()),
        YamlOwned::BadValue => Value::Null,
    };
    Ok(value)
}
