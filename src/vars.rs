//! Variable precedence: which source wins when the same name is set in several.
//!
//! vpsforge follows Ansible's documented order for the sources it supports. From
//! lowest to highest:
//!
//!  1. role defaults (`defaults/main.yml` of every role in the play, then of
//!     the task's own role)
//!  2. inventory variables, themselves ordered by the inventory (group vars from
//!     `all` to the most nested group, then host vars; inventory files, then
//!     `group_vars/`/`host_vars/` beside the inventory, then beside the playbook)
//!  3. facts (`ansible_facts` and the `ansible_*` names)
//!  4. play `vars`
//!  5. play `vars_files`
//!  6. role vars (`vars/main.yml` of every role in the play, then of the
//!     task's own role)
//!  7. block and task `vars`
//!  8. `set_fact` and `register` results
//!  9. role parameters (`- role: x` with `vars:` or extra keys)
//! 10. extra vars (`-e`), which always win
//!
//! A higher source replaces a variable whole: dictionaries are not merged, as with
//! Ansible's default `hash_behaviour=replace`.

use std::path::Path;

use serde_json::{Map, Value};

use crate::diagnostic::Diagnostic;
use crate::yaml;

/// The sources of one host's variables for one task, lowest precedence first.
#[derive(Default)]
pub struct VarStack<'a> {
    layers: Vec<&'a Map<String, Value>>,
}

impl<'a> VarStack<'a> {
    pub fn push(&mut self, layer: &'a Map<String, Value>) {
        self.layers.push(layer);
    }

    /// Returns the merged variables as one JSON object.
    pub fn resolve(&self) -> Map<String, Value> {
        let mut merged = Map::new();
        for layer in &self.layers {
            for (key, value) in layer.iter() {
                merged.insert(key.clone(), value.clone());
            }
        }
        merged
    }
}

/// Parses one `-e` argument: `@file.yaml`, a YAML or JSON mapping, or `key=value` pairs.
pub fn parse_extra_vars(argument: &str) -> Result<Map<String, Value>, Diagnostic> {
    if let Some(path) = argument.strip_prefix('@') {
        return load_vars_file(Path::new(path));
    }
    let trimmed = argument.trim_start();
    if trimmed.starts_with('{') {
        let source = crate::diagnostic::SourceFile::new("<extra vars>", argument);
        let node = yaml::parse(source)?;
        return match node.to_json() {
            Value::Object(map) => Ok(map),
            _ => Err(Diagnostic::new(format!(
                "extra vars `{argument}` are not a mapping"
            ))),
        };
    }
    let mut vars = Map::new();
    for pair in shell_words(argument)? {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Diagnostic::new(format!("invalid extra var `{pair}`"))
                .with_help("write `-e key=value`, `-e '{\"key\": 1}'` or `-e @vars.yaml`"));
        };
        vars.insert(key.to_string(), Value::String(value.to_string()));
    }
    Ok(vars)
}

/// Loads a YAML or JSON file that must contain a mapping (`vars_files`, `-e @file`).
pub fn load_vars_file(path: &Path) -> Result<Map<String, Value>, Diagnostic> {
    let node = yaml::load_file(path)?;
    match node.to_json() {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(node.error(format!(
            "`{}` must contain a mapping of variables",
            path.display()
        ))),
    }
}

/// Splits `key=value key2='a b'` on unquoted whitespace, removing the quotes.
fn shell_words(text: &str) -> Result<Vec<String>, Diagnostic> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    let mut in_word = false;
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => current.extend(chars.next()),
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, '\\') => {
                current.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(Diagnostic::new(format!(
            "unterminated quote in extra vars `{text}`"
        )));
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test data is an object"),
        }
    }

    #[test]
    fn later_layer_wins_whole() {
        let low = map(json!({"a": 1, "d": {"x": 1, "y": 2}}));
        let high = map(json!({"a": 2, "d": {"x": 3}}));
        let mut stack = VarStack::default();
        stack.push(&low);
        stack.push(&high);
        let merged = stack.resolve();
        assert_eq!(merged["a"], json!(2));
        assert_eq!(merged["d"], json!({"x": 3}));
    }

    #[test]
    fn extra_vars_forms() {
        assert_eq!(
            parse_extra_vars("a=1 b='two words'").unwrap(),
            map(json!({"a": "1", "b": "two words"}))
        );
        assert_eq!(
            parse_extra_vars("{\"n\": 3, \"l\": [1]}").unwrap(),
            map(json!({"n": 3, "l": [1]}))
        );
        assert_eq!(
            parse_extra_vars("novalue").unwrap_err().message,
            "invalid extra var `novalue`"
        );
    }

    #[test]
    fn extra_vars_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vars.yaml");
        std::fs::write(&path, "tls_profile: modern\nports: [80, 443]\n").unwrap();
        let vars = parse_extra_vars(&format!("@{}", path.display())).unwrap();
        assert_eq!(vars["tls_profile"], json!("modern"));
        assert_eq!(vars["ports"], json!([80, 443]));
    }
}
