//! Roles: lookup, `meta/main.yml` dependencies, variables, tasks and handlers.
//!
//! A role is expanded in place into the tasks of its play. Each task keeps an
//! `Arc<Role>` so that the executor can find the role's files and variables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::keywords::{add_tags, boolean, conditions, string, string_list};
use super::load::{Loader, Scope};
use super::syntax::{check_node, is_template};
use super::task::list_paths;
use super::{Role, Task};
use crate::diagnostic::did_you_mean;
use crate::yaml::{Node, NodeValue};

/// Where a role is listed, which decides whether it runs again when listed twice.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// The play's `roles:` or a role's `dependencies`: once per play and parameters.
    Once,
    /// `include_role` or `import_role`: every time.
    Always,
}

/// A role to run, as a `roles:` entry, a dependency or `include_role` names it.
struct RoleRequest<'n> {
    name: String,
    name_node: &'n Node,
    params: Map<String, Value>,
    tasks_from: String,
    listing: Listing,
}

const INCLUDE_ROLE_KEYS: &[&str] = &["name", "tasks_from"];

impl Loader<'_> {
    /// Loads the play's `roles:` list into the tasks of the roles section.
    pub(super) fn play_roles(&mut self, node: &Node, scope: &Scope) -> Vec<Task> {
        match &node.value {
            NodeValue::Null => Vec::new(),
            NodeValue::Seq(entries) => entries
                .iter()
                .flat_map(|entry| self.role_entry(entry, scope))
                .collect(),
            _ => {
                self.errors.push(node.error(format!(
                    "`roles` must be a list of roles, not {}",
                    node.kind()
                )));
                Vec::new()
            }
        }
    }

    /// Loads one `roles:` or `dependencies:` entry: `- name`, or `- role: name` with
    /// `when`, `tags`, `become`, `become_user`, `vars` and other keys as parameters.
    fn role_entry(&mut self, entry: &Node, scope: &Scope) -> Vec<Task> {
        if entry.as_str().is_some() {
            let request = RoleRequest {
                name: entry.scalar_string(),
                name_node: entry,
                params: Map::new(),
                tasks_from: "main".to_string(),
                listing: Listing::Once,
            };
            return self.run_role(request, scope);
        }
        let Some(entries) = entry.as_map() else {
            self.errors.push(entry.error(format!(
                "a role entry must be a name or a mapping, not {}",
                entry.kind()
            )));
            return Vec::new();
        };

        let mut role_scope = scope.clone();
        let mut name_node = None;
        let mut params = Map::new();
        for (key, value) in entries {
            match key.scalar_string().as_str() {
                "role" | "name" => name_node = Some(value),
                "when" => role_scope
                    .when
                    .extend(conditions(value, "when", &mut self.errors)),
                "tags" => {
                    let mut tags = self
                        .keep(string_list(value, "tags", true))
                        .unwrap_or_default();
                    add_tags(&mut tags, &scope.tags);
                    role_scope.tags = tags;
                }
                "become" => {
                    role_scope.r#become = self.keep(boolean(value, "become")).or(scope.r#become)
                }
                "become_user" => {
                    role_scope.become_user = self
                        .keep(string(value, "become_user"))
                        .or_else(|| scope.become_user.clone())
                }
                "vars" => match &value.value {
                    NodeValue::Map(vars) => {
                        for (var_key, var_value) in vars {
                            check_node(var_value, &mut self.errors);
                            params.insert(var_key.scalar_string(), var_value.to_json());
                        }
                    }
                    _ => self.errors.push(value.error(format!(
                        "role `vars` must be a mapping, not {}",
                        value.kind()
                    ))),
                },
                other => {
                    check_node(value, &mut self.errors);
                    params.insert(other.to_string(), value.to_json());
                }
            }
        }
        let Some(name_node) = name_node else {
            self.errors.push(
                entry
                    .error("role entry has no `role`")
                    .with_help("name the role with `- role: NAME`"),
            );
            return Vec::new();
        };
        let Some(name) = self.keep(string(name_node, "role")) else {
            return Vec::new();
        };
        let request = RoleRequest {
            name,
            name_node,
            params,
            tasks_from: "main".to_string(),
            listing: Listing::Once,
        };
        self.run_role(request, &role_scope)
    }

    /// Inlines the role named by an `include_role` or `import_role` task.
    pub(super) fn include_role(&mut self, include: &str, value: &Node, scope: &Scope) -> Vec<Task> {
        let Some(entries) = value.as_map() else {
            self.errors.push(
                value
                    .error(format!(
                        "`{include}` must be a mapping with `name`, not {}",
                        value.kind()
                    ))
                    .with_help(format!("write `{include}: {{name: ROLE}}`")),
            );
            return Vec::new();
        };
        let mut name_node = None;
        let mut tasks_from = "main".to_string();
        for (key, item) in entries {
            let key_name = key.scalar_string();
            match key_name.as_str() {
                "name" => name_node = Some(item),
                "tasks_from" => {
                    if let Some(file) = self.keep(string(item, "tasks_from")) {
                        if is_template(&file) {
                            self.errors.push(
                                item.error(format!(
                                    "`tasks_from` needs a static file name, not `{file}`"
                                ))
                                .with_help("only static includes are supported"),
                            );
                        }
                        tasks_from = file;
                    }
                }
                _ => {
                    let mut error = key.error(format!("`{include}` does not accept `{key_name}`"));
                    if let Some(suggestion) =
                        did_you_mean(&key_name, INCLUDE_ROLE_KEYS.iter().copied())
                    {
                        error = error.with_help(format!("did you mean `{suggestion}`?"));
                    }
                    self.errors.push(error);
                }
            }
        }
        let Some(name_node) = name_node else {
            self.errors
                .push(value.error(format!("`{include}` has no `name`")));
            return Vec::new();
        };
        let Some(name) = self.keep(string(name_node, "name")) else {
            return Vec::new();
        };
        if is_template(&name) {
            self.errors.push(
                name_node
                    .error(format!(
                        "`{include}` needs a static role name, not `{name}`"
                    ))
                    .with_help("only static includes are supported"),
            );
            return Vec::new();
        }
        let request = RoleRequest {
            name,
            name_node,
            params: Map::new(),
            tasks_from,
            listing: Listing::Always,
        };
        self.run_role(request, scope)
    }

    /// Expands a role: its dependencies first, then its tasks. Its handlers are
    /// added to the play the first time the role appears.
    fn run_role(&mut self, request: RoleRequest, scope: &Scope) -> Vec<Task> {
        let Some(path) = self.find_role(&request) else {
            return Vec::new();
        };
        let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
        let identity = (canonical.clone(), Value::Object(request.params.clone()));

        if !self.enter(&path, Some(&request.name_node.span)) {
            return Vec::new();
        }
        let meta = self.role_meta(&path);
        let already_run = self.play.roles_run.contains(&identity);
        if request.listing == Listing::Once && already_run && !meta.allow_duplicates {
            self.leave();
            return Vec::new();
        }
        self.play.roles_run.push(identity);

        let role = Arc::new(Role {
            name: request.name.clone(),
            path: path.clone(),
            defaults: self.vars_file(&path.join("defaults"), "main"),
            vars: self.vars_file(&path.join("vars"), "main"),
            params: request.params,
        });

        let mut tasks = Vec::new();
        if let Some(dependencies) = &meta.dependencies {
            tasks.extend(self.play_roles(dependencies, scope));
        }

        let role_scope = Scope {
            dir: path.join("tasks"),
            role: Some(role.clone()),
            ..scope.clone()
        };
        match find_yaml(&path.join("tasks"), &request.tasks_from) {
            Some(file) => tasks.extend(self.task_file(&file, None, &role_scope)),
            None if request.tasks_from != "main" => self.errors.push(
                request
                    .name_node
                    .error(format!(
                        "task file `{}` not found in role `{}`",
                        request.tasks_from, request.name
                    ))
                    .with_help(format!(
                        "looked for `{}.yml` and `.yaml` in `{}`",
                        request.tasks_from,
                        path.join("tasks").display()
                    )),
            ),
            None => {}
        }

        if !self.play.roles_with_handlers.contains(&canonical) {
            self.play.roles_with_handlers.push(canonical);
            if let Some(file) = find_yaml(&path.join("handlers"), "main") {
                let handler_scope = Scope {
                    dir: path.join("handlers"),
                    when: Vec::new(),
                    ..role_scope
                };
                let handlers = self.task_file(&file, None, &handler_scope);
                self.play.role_handlers.extend(handlers);
            }
        }

        self.leave();
        tasks
    }

    fn find_role(&mut self, request: &RoleRequest) -> Option<PathBuf> {
        let name = &request.name;
        if is_template(name) {
            self.errors.push(
                request
                    .name_node
                    .error(format!("role name `{name}` must not be a template"))
                    .with_help("name the role directly"),
            );
            return None;
        }
        let mut candidates = vec![self.play.playbook_dir.join("roles").join(name)];
        candidates.extend(self.options.roles_path.iter().map(|dir| dir.join(name)));
        candidates.push(self.play.playbook_dir.join(name));

        if let Some(found) = candidates.iter().find(|path| path.is_dir()) {
            return Some(found.clone());
        }
        self.errors.push(
            request
                .name_node
                .error(format!("role `{name}` not found"))
                .with_help(format!(
                    "create the role in one of the folders searched: {}",
                    list_paths(&candidates)
                )),
        );
        None
    }

    fn role_meta(&mut self, path: &Path) -> RoleMeta {
        let mut meta = RoleMeta::default();
        let Some(file) = find_yaml(&path.join("meta"), "main") else {
            return meta;
        };
        let Some(root) = self.read_yaml(&file, None) else {
            return meta;
        };
        match &root.value {
            NodeValue::Null => {}
            NodeValue::Map(entries) => {
                for (key, value) in entries {
                    match key.scalar_string().as_str() {
                        "dependencies" => meta.dependencies = Some(value.clone()),
                        "allow_duplicates" => {
                            meta.allow_duplicates = self
                                .keep(boolean(value, "allow_duplicates"))
                                .unwrap_or(false)
                        }
                        // Galaxy metadata and the other keys only describe the role, so loading ignores them.
                        _ => {}
                    }
                }
            }
            _ => self.errors.push(root.error(format!(
                "role metadata must be a mapping, not {}",
                root.kind()
            ))),
        }
        meta
    }

    /// Reads `dir/NAME.yml` (or `.yaml`) as a mapping of variables, empty when absent.
    fn vars_file(&mut self, dir: &Path, name: &str) -> Map<String, Value> {
        let Some(file) = find_yaml(dir, name) else {
            return Map::new();
        };
        let Some(root) = self.read_yaml(&file, None) else {
            return Map::new();
        };
        match (&root.value, root.to_json()) {
            (NodeValue::Null, _) => Map::new(),
            (NodeValue::Map(entries), Value::Object(vars)) => {
                for (_, value) in entries {
                    check_node(value, &mut self.errors);
                }
                vars
            }
            _ => {
                self.errors.push(root.error(format!(
                    "a variables file must be a mapping, not {}",
                    root.kind()
                )));
                Map::new()
            }
        }
    }
}

#[derive(Default)]
struct RoleMeta {
    dependencies: Option<Node>,
    allow_duplicates: bool,
}

/// Returns `dir/NAME.yml`, `dir/NAME.yaml` or `dir/NAME` (when NAME has an
/// extension), whichever exists first.
fn find_yaml(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut candidates = vec![
        dir.join(format!("{name}.yml")),
        dir.join(format!("{name}.yaml")),
    ];
    if name.ends_with(".yml") || name.ends_with(".yaml") {
        candidates.insert(0, dir.join(name));
    }
    candidates.into_iter().find(|path| path.is_file())
}
