//! Ansible's YAML inventory format: top-level groups, each a mapping with `hosts`
//! (host name to variables), `vars` and `children` (nested groups of the same shape).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::{port_vars, range, Inventory};
use crate::diagnostic::{did_you_mean, Diagnostics};
use crate::yaml::{Node, NodeValue};

static YAML_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_.-]+:$").expect("valid regex"));

const GROUP_KEYS: [&str; 3] = ["hosts", "vars", "children"];

/// Returns whether a parsed file has the shape of a YAML inventory: a mapping whose
/// values are all mappings or null. Files of another shape are read as INI.
pub(super) fn looks_like_inventory(root: &Node) -> bool {
    match &root.value {
        NodeValue::Null => true,
        NodeValue::Map(entries) => entries
            .iter()
            .all(|(_, value)| matches!(value.value, NodeValue::Map(_) | NodeValue::Null)),
        _ => false,
    }
}

/// Returns whether the first line that is not blank or a comment is `---` or a
/// bare mapping key such as `all:`, which no INI inventory contains. A file without
/// an extension that starts so and fails to parse reports its YAML error.
pub(super) fn starts_like_yaml(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim_end)
        .find(|line| !line.trim().is_empty() && !line.trim_start().starts_with(['#', ';']));
    match first {
        Some(line) => line == "---" || YAML_KEY.is_match(line),
        None => false,
    }
}

pub(super) fn load(inventory: &mut Inventory, root: &Node, errors: &mut Diagnostics) {
    let entries = match &root.value {
        NodeValue::Null => return,
        NodeValue::Map(entries) => entries,
        _ => {
            errors.push(
                root.error(format!(
                    "a YAML inventory must be a mapping of group names, not {}",
                    root.kind()
                ))
                .with_help("start the file with `all:` and list hosts under `all: hosts:`"),
            );
            return;
        }
    };
    for (key, value) in entries {
        let Some(name) = group_name(key, errors) else {
            continue;
        };
        if name == "plugin" {
            errors.push(
                key.error("inventory plugins are not supported")
                    .with_help("list the hosts and groups in a static YAML or INI inventory"),
            );
            continue;
        }
        load_group(inventory, name, value, errors);
    }
}

fn group_name<'a>(key: &'a Node, errors: &mut Diagnostics) -> Option<&'a str> {
    match key.as_str() {
        Some(name) if !name.trim().is_empty() => Some(name),
        _ => {
            errors.push(
                key.error(format!("a group name must be a string, not {}", key.kind()))
                    .with_help("quote the name if it looks like a number or a boolean"),
            );
            None
        }
    }
}

fn load_group(inventory: &mut Inventory, name: &str, data: &Node, errors: &mut Diagnostics) {
    inventory.ensure_group(name);
    let entries = match &data.value {
        NodeValue::Null => return,
        NodeValue::Map(entries) => entries,
        _ => {
            errors.push(
                data.error(format!(
                    "group `{name}` must be a mapping with `hosts`, `vars` or `children`, not {}",
                    data.kind()
                ))
                .with_help("write the hosts under `hosts:`, one `name:` per line"),
            );
            return;
        }
    };

    for (key, value) in entries {
        match key.as_str() {
            Some("hosts") => load_hosts(inventory, name, value, errors),
            Some("vars") => match &value.value {
                NodeValue::Null => {}
                NodeValue::Map(_) => {
                    if let Value::Object(vars) = value.to_json() {
                        inventory.ensure_group(name).vars.extend(vars);
                    }
                }
                _ => errors.push(
                    value
                        .error(format!(
                            "`vars` of group `{name}` must be a mapping, not {}",
                            value.kind()
                        ))
                        .with_help("write one `name: value` line per variable"),
                ),
            },
            Some("children") => load_children(inventory, name, value, errors),
            _ => {
                let found = key.scalar_string();
                let help = match did_you_mean(&found, GROUP_KEYS) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => "a group takes only `hosts`, `vars` and `children`".to_string(),
                };
                errors.push(
                    key.error(format!("unknown key `{found}` in group `{name}`"))
                        .with_help(help),
                );
            }
        }
    }
}

fn load_hosts(inventory: &mut Inventory, group: &str, hosts: &Node, errors: &mut Diagnostics) {
    let entries = match &hosts.value {
        NodeValue::Null => return,
        NodeValue::Map(entries) => entries,
        _ => {
            errors.push(
                hosts
                    .error(format!(
                        "`hosts` of group `{group}` must be a mapping of host names to variables, not {}",
                        hosts.kind()
                    ))
                    .with_help("write each host as a key ending in `:`, such as `web1:`"),
            );
            return;
        }
    };

    for (key, value) in entries {
        let Some(pattern) = key.as_str() else {
            errors.push(
                key.error(format!("a host name must be a string, not {}", key.kind()))
                    .with_help("quote the name if it looks like a number or a boolean"),
            );
            continue;
        };
        let mut vars = match &value.value {
            NodeValue::Null => Map::new(),
            NodeValue::Map(_) => match value.to_json() {
                Value::Object(vars) => vars,
                _ => Map::new(),
            },
            _ => {
                errors.push(
                    value
                        .error(format!(
                            "variables of host `{pattern}` must be a mapping, not {}",
                            value.kind()
                        ))
                        .with_help(
                            "write one `name: value` line per variable, indented under the host",
                        ),
                );
                continue;
            }
        };
        let expanded = range::split_port(pattern).and_then(|(pattern, port)| {
            range::expand(&pattern).map(|names| (names, port_vars(port)))
        });
        match expanded {
            Ok((names, port)) => {
                // A port in the name is set first, so an explicit `ansible_port` wins.
                let mut host_vars = port;
                host_vars.append(&mut vars);
                for name in names {
                    inventory.add_host(group, &name, host_vars.clone());
                }
            }
            Err(message) => errors.push(key.error(message)),
        }
    }
}

fn load_children(
    inventory: &mut Inventory,
    parent: &str,
    children: &Node,
    errors: &mut Diagnostics,
) {
    let entries = match &children.value {
        NodeValue::Null => return,
        NodeValue::Map(entries) => entries,
        _ => {
            errors.push(
                children
                    .error(format!(
                        "`children` of group `{parent}` must be a mapping of group names, not {}",
                        children.kind()
                    ))
                    .with_help("write each child group as a key ending in `:`, such as `web:`"),
            );
            return;
        }
    };
    for (key, value) in entries {
        let Some(child) = group_name(key, errors) else {
            continue;
        };
        if let Err(message) = inventory.add_child(parent, child) {
            errors.push(key.error(message));
            continue;
        }
        load_group(inventory, child, value, errors);
    }
}
