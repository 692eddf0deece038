//! Play and task keywords, and conversions of their YAML values.

use serde_json::{Map, Value};

use super::syntax::{check_expression, check_node};
use super::Condition;
use crate::diagnostic::Diagnostic;
use crate::modules::args::to_bool;
use crate::yaml::{Node, NodeValue};

pub(super) const PLAY_KEYWORDS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "roles",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "become",
    "become_user",
    "become_method",
    "gather_facts",
    "serial",
    "tags",
    "remote_user",
    "any_errors_fatal",
    "max_fail_percentage",
    "environment",
    "ignore_errors",
    "no_log",
    "check_mode",
];

pub(super) const TASK_KEYWORDS: &[&str] = &[
    "name",
    "when",
    "loop",
    "with_items",
    "with_list",
    "with_dict",
    "loop_control",
    "register",
    "notify",
    "listen",
    "tags",
    "become",
    "become_user",
    "ignore_errors",
    "changed_when",
    "failed_when",
    "check_mode",
    "no_log",
    "until",
    "retries",
    "delay",
    "vars",
    "args",
    "environment",
    "delegate_to",
    "run_once",
    "block",
    "rescue",
    "always",
];

/// Ansible keywords that vpsforge recognises but does not run, so the user gets a
/// clear "not supported" instead of "unknown".
pub(super) const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "async",
    "poll",
    "local_action",
    "action",
    "delegate_facts",
    "throttle",
    "connection",
    "strategy",
    "vars_prompt",
    "collections",
    "module_defaults",
    "become_flags",
    "become_exe",
    "order",
    "force_handlers",
    "debugger",
    "diff",
    "timeout",
    "port",
];

/// Actions that pull in other tasks or roles, with their fully qualified names.
pub(super) const INCLUDE_ACTIONS: &[&str] = &[
    "include_tasks",
    "import_tasks",
    "include_role",
    "import_role",
    "ansible.builtin.include_tasks",
    "ansible.builtin.import_tasks",
    "ansible.builtin.include_role",
    "ansible.builtin.import_role",
];

pub(super) const META_ACTIONS: &[&str] = &["meta", "ansible.builtin.meta"];

/// Returns the short name of an include action or `meta`.
pub(super) fn short_action(name: &str) -> &str {
    name.strip_prefix("ansible.builtin.").unwrap_or(name)
}

/// Returns a boolean keyword value (`yes`, `true`, `on`, ... as Ansible accepts).
pub(super) fn boolean(node: &Node, keyword: &str) -> Result<bool, Diagnostic> {
    match &node.value {
        NodeValue::Bool(b) => Ok(*b),
        NodeValue::String(_) | NodeValue::Int(_) => to_bool(&node.to_json()).ok_or_else(|| {
            node.error(format!(
                "`{keyword}` must be a boolean, not `{}`",
                node.scalar_string()
            ))
            .with_help("use `true` or `false`")
        }),
        _ => Err(node
            .error(format!(
                "`{keyword}` must be a boolean, not {}",
                node.kind()
            ))
            .with_help("use `true` or `false`")),
    }
}

/// Returns a scalar keyword value as a string (`become_user: 0` is `"0"`).
pub(super) fn string(node: &Node, keyword: &str) -> Result<String, Diagnostic> {
    match &node.value {
        NodeValue::String(_) | NodeValue::Int(_) | NodeValue::Float(_) | NodeValue::Bool(_) => {
            Ok(node.scalar_string())
        }
        _ => Err(node.error(format!("`{keyword}` must be a string, not {}", node.kind()))),
    }
}

/// Returns a list of strings from a list or a single string. With `split_commas`,
/// a string is split on commas as Ansible does for `tags: a,b`.
pub(super) fn string_list(
    node: &Node,
    keyword: &str,
    split_commas: bool,
) -> Result<Vec<String>, Diagnostic> {
    match &node.value {
        NodeValue::Null => Ok(Vec::new()),
        NodeValue::Seq(items) => items.iter().map(|item| string(item, keyword)).collect(),
        NodeValue::Map(_) => Err(node.error(format!(
            "`{keyword}` must be a string or a list of strings, not a mapping"
        ))),
        _ if split_commas => Ok(node
            .scalar_string()
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(String::from)
            .collect()),
        _ => Ok(vec![node.scalar_string()]),
    }
}

/// Returns an unsigned integer keyword value (`retries`, `delay`).
pub(super) fn unsigned(node: &Node, keyword: &str) -> Result<u64, Diagnostic> {
    let parsed = match &node.value {
        NodeValue::Int(i) => u64::try_from(*i).ok(),
        NodeValue::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        node.error(format!(
            "`{keyword}` must be a non-negative integer, not `{}`",
            node.scalar_string()
        ))
    })
}

/// Returns a mapping keyword value (`vars`, `environment`) as JSON, checking the
/// syntax of the templates inside.
pub(super) fn mapping(
    node: &Node,
    keyword: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<Map<String, Value>> {
    match &node.value {
        NodeValue::Null => Some(Map::new()),
        NodeValue::Map(entries) => {
            for (_, value) in entries {
                check_node(value, errors);
            }
            match node.to_json() {
                Value::Object(map) => Some(map),
                _ => Some(Map::new()),
            }
        }
        _ => {
            errors.push(node.error(format!(
                "`{keyword}` must be a mapping, not {}",
                node.kind()
            )));
            None
        }
    }
}

/// Returns the conditions of `when`, `changed_when`, `failed_when` or `until`: a
/// string, a boolean or a list of them that must all hold.
pub(super) fn conditions(
    node: &Node,
    keyword: &str,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Condition> {
    let items: Vec<&Node> = match &node.value {
        NodeValue::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut conditions = Vec::new();
    for item in items {
        let expr = match &item.value {
            NodeValue::String(s) => s.clone(),
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Int(_) | NodeValue::Float(_) => item.scalar_string(),
            _ => {
                errors.push(item.error(format!(
                    "`{keyword}` must be a condition string, a boolean or a list of them, not {}",
                    item.kind()
                )));
                continue;
            }
        };
        let expression_errors = check_expression(&expr, &item.span);
        if !expression_errors.is_empty() {
            errors.extend(expression_errors);
            continue;
        }
        conditions.push(Condition {
            expr,
            span: item.span.clone(),
        });
    }
    conditions
}

/// Adds `extra` tags to `tags`, skipping those already present.
pub(super) fn add_tags(tags: &mut Vec<String>, extra: &[String]) {
    for tag in extra {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
}
