//! Loading of playbook files and plays, and the state shared while loading one play.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::keywords::{
    add_tags, boolean, mapping, string, string_list, PLAY_KEYWORDS, UNSUPPORTED_KEYWORDS,
};
use super::syntax::{check_template, is_template};
use super::{
    Condition, LoadOptions, Play, Playbook, Role, Section, SectionKind, Serial, Task, TaskKind,
};
use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics, Span};
use crate::yaml::{self, Node, NodeValue};

/// Loads a playbook and everything it pulls in, collecting every error.
pub(super) fn load_playbook(path: &Path, options: &LoadOptions) -> Result<Playbook, Diagnostics> {
    let mut loader = Loader {
        options,
        errors: Vec::new(),
        stack: Vec::new(),
        play: PlayState::default(),
    };
    let plays = loader.playbook_file(path, None);
    if loader.errors.is_empty() {
        Ok(Playbook {
            path: path.to_path_buf(),
            plays,
        })
    } else {
        Err(Diagnostics(in_source_order(loader.errors)))
    }
}

/// Sorts errors by line within each file, keeping files in the order they were
/// first reported, so the report reads top to bottom.
fn in_source_order(mut errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut files: Vec<PathBuf> = Vec::new();
    for error in &errors {
        if let Some(span) = &error.span {
            if !files.iter().any(|file| file == span.path()) {
                files.push(span.path().to_path_buf());
            }
        }
    }
    errors.sort_by_key(|error| {
        error.span.as_ref().map(|span| {
            let file = files.iter().position(|file| file == span.path());
            (file, span.line, span.col)
        })
    });
    errors
}

pub(super) struct Loader<'a> {
    pub options: &'a LoadOptions<'a>,
    pub errors: Vec<Diagnostic>,
    /// Files being loaded, innermost last, so that a file including itself is caught.
    pub stack: Vec<PathBuf>,
    pub play: PlayState,
}

/// State of the loader while it loads one play.
#[derive(Default)]
pub(super) struct PlayState {
    /// The folder of the file that defines the play, where `roles/` is searched.
    pub playbook_dir: PathBuf,
    /// Roles already run in this play, by path and parameters, because a role runs
    /// once per play unless its meta sets `allow_duplicates`.
    pub roles_run: Vec<(PathBuf, Value)>,
    /// Roles whose handlers are already in `role_handlers`.
    pub roles_with_handlers: Vec<PathBuf>,
    pub role_handlers: Vec<Task>,
    /// Every static `notify` value of the play with its location, checked against
    /// the handlers once the whole play is loaded.
    pub notifies: Vec<(String, Span)>,
}

/// Keywords that enclosing plays, roles and blocks pass down to their tasks.
#[derive(Clone, Default)]
pub(super) struct Scope {
    /// The folder of the file being read, where includes are resolved first.
    pub dir: PathBuf,
    pub role: Option<Arc<Role>>,
    pub when: Vec<Condition>,
    pub tags: Vec<String>,
    pub r#become: Option<bool>,
    pub become_user: Option<String>,
    pub ignore_errors: Option<bool>,
    pub no_log: Option<bool>,
    pub check_mode: Option<bool>,
    pub vars: Map<String, Value>,
    pub environment: Map<String, Value>,
}

impl Loader<'_> {
    /// Reads a YAML file, reporting a read or parse error at `from` when given.
    pub(super) fn read_yaml(&mut self, path: &Path, from: Option<&Span>) -> Option<Node> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                let message = format!("failed to read `{}`: {error}", path.display());
                self.errors.push(match from {
                    Some(span) => Diagnostic::at(span, message),
                    None => Diagnostic::new(message),
                });
                return None;
            }
        };
        match yaml::parse(crate::diagnostic::SourceFile::new(path, text)) {
            Ok(node) => Some(node),
            Err(error) => {
                self.errors.push(error);
                None
            }
        }
    }

    /// Marks `path` as being loaded, or reports an include cycle at `from`.
    pub(super) fn enter(&mut self, path: &Path, from: Option<&Span>) -> bool {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canonical) {
            let message = format!("`{}` includes itself", path.display());
            self.errors.push(match from {
                Some(span) => Diagnostic::at(span, message)
                    .with_help("remove the include that leads back to this file"),
                None => Diagnostic::new(message),
            });
            return false;
        }
        self.stack.push(canonical);
        true
    }

    pub(super) fn leave(&mut self) {
        self.stack.pop();
    }

    fn playbook_file(&mut self, path: &Path, from: Option<&Span>) -> Vec<Play> {
        if !self.enter(path, from) {
            return Vec::new();
        }
        let plays = self.playbook_node(path, from);
        self.leave();
        plays
    }

    fn playbook_node(&mut self, path: &Path, from: Option<&Span>) -> Vec<Play> {
        let Some(root) = self.read_yaml(path, from) else {
            return Vec::new();
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let Some(items) = root.as_seq() else {
            self.errors.push(
                root.error(format!(
                    "a playbook must be a list of plays, not {}",
                    root.kind()
                ))
                .with_help("start each play with `- hosts: ...`"),
            );
            return Vec::new();
        };

        let mut plays = Vec::new();
        for item in items {
            let import = item
                .as_map()
                .and_then(|entries| {
                    entries.iter().find(|(key, _)| {
                        matches!(
                            key.as_str(),
                            Some("import_playbook" | "ansible.builtin.import_playbook")
                        )
                    })
                })
                .map(|(key, value)| (key.clone(), value.clone()));
            match import {
                Some((key, value)) => plays.extend(self.import_playbook(item, &key, &value, &dir)),
                None => plays.extend(self.play_node(item, &dir)),
            }
        }
        plays
    }

    fn import_playbook(&mut self, item: &Node, key: &Node, value: &Node, dir: &Path) -> Vec<Play> {
        let mut vars = Map::new();
        let mut tags = Vec::new();
        for (entry_key, entry_value) in item.as_map().unwrap_or_default() {
            match entry_key.as_str() {
                Some("import_playbook" | "ansible.builtin.import_playbook" | "name") => {}
                Some("vars") => {
                    vars = mapping(entry_value, "vars", &mut self.errors).unwrap_or_default()
                }
                Some("tags") => match string_list(entry_value, "tags", true) {
                    Ok(list) => tags = list,
                    Err(error) => self.errors.push(error),
                },
                _ => self.errors.push(
                    entry_key
                        .error(format!(
                            "`import_playbook` does not accept `{}`",
                            entry_key.scalar_string()
                        ))
                        .with_help("only `name`, `vars` and `tags` may be given with it"),
                ),
            }
        }

        let file = match string(value, "import_playbook") {
            Ok(file) => file,
            Err(error) => {
                self.errors.push(error);
                return Vec::new();
            }
        };
        if is_template(&file) {
            self.errors.push(
                value
                    .error(format!(
                        "`import_playbook` needs a static file name, not `{file}`"
                    ))
                    .with_help("only static imports are supported"),
            );
            return Vec::new();
        }

        let path = dir.join(&file);
        if !path.is_file() {
            self.errors.push(
                value
                    .error(format!("playbook `{file}` not found"))
                    .with_help(format!("looked for `{}`", path.display())),
            );
            return Vec::new();
        }
        let mut plays = self.playbook_file(&path, Some(&key.span));
        for play in &mut plays {
            for (name, value) in &vars {
                play.vars.insert(name.clone(), value.clone());
            }
            add_tags(&mut play.tags, &tags);
            for section in &mut play.sections {
                add_tags_to_tasks(&mut section.tasks, &tags);
            }
        }
        plays
    }

    fn play_node(&mut self, node: &Node, dir: &Path) -> Option<Play> {
        let Some(entries) = node.as_map() else {
            self.errors.push(
                node.error(format!("a play must be a mapping, not {}", node.kind()))
                    .with_help("start the play with `- hosts: ...`"),
            );
            return None;
        };
        self.play = PlayState {
            playbook_dir: dir.to_path_buf(),
            ..PlayState::default()
        };

        let mut play = Play {
            name: None,
            hosts: String::new(),
            vars: Map::new(),
            vars_files: Vec::new(),
            sections: Vec::new(),
            handlers: Vec::new(),
            r#become: None,
            become_user: None,
            gather_facts: true,
            serial: Vec::new(),
            tags: Vec::new(),
            remote_user: None,
            any_errors_fatal: false,
            max_fail_percentage: None,
            span: node.span.clone(),
        };
        let mut scope = Scope {
            dir: dir.to_path_buf(),
            ..Scope::default()
        };
        let mut hosts_given = false;
        let mut task_lists: Vec<(&str, &Node)> = Vec::new();

        for (key, value) in entries {
            let name = key.scalar_string();
            match name.as_str() {
                "name" => {
                    play.name = self.keep(string(value, "name"));
                    if let Some(name) = &play.name {
                        self.errors.extend(check_template(name, &value.span));
                    }
                }
                "hosts" => {
                    hosts_given = true;
                    match string_list(value, "hosts", false) {
                        Ok(patterns) if patterns.iter().all(|p| p.trim().is_empty()) => {
                            self.errors.push(
                                value
                                    .error("`hosts` is empty")
                                    .with_help("use `all` or the name of an inventory group"),
                            )
                        }
                        Ok(patterns) => play.hosts = patterns.join(","),
                        Err(error) => self.errors.push(error),
                    }
                    self.errors.extend(check_template(&play.hosts, &value.span));
                }
                "vars" => play.vars = mapping(value, "vars", &mut self.errors).unwrap_or_default(),
                "vars_files" => play.vars_files = self.vars_files(value, dir),
                "become" => play.r#become = self.keep(boolean(value, "become")),
                "become_user" => play.become_user = self.keep(string(value, "become_user")),
                "become_method" => {
                    if let Some(method) = self.keep(string(value, "become_method")) {
                        if method != "sudo" {
                            self.errors.push(
                                value
                                    .error(format!("become method `{method}` is not supported"))
                                    .with_help("vpsforge becomes another user with `sudo` only"),
                            );
                        }
                    }
                }
                "gather_facts" => {
                    play.gather_facts = self.keep(boolean(value, "gather_facts")).unwrap_or(true)
                }
                "serial" => play.serial = self.serial(value),
                "tags" => {
                    play.tags = self
                        .keep(string_list(value, "tags", true))
                        .unwrap_or_default()
                }
                "remote_user" => play.remote_user = self.keep(string(value, "remote_user")),
                "any_errors_fatal" => {
                    play.any_errors_fatal = self
                        .keep(boolean(value, "any_errors_fatal"))
                        .unwrap_or(false)
                }
                "max_fail_percentage" => play.max_fail_percentage = self.percentage(value),
                "environment" => {
                    scope.environment =
                        mapping(value, "environment", &mut self.errors).unwrap_or_default()
                }
                "ignore_errors" => scope.ignore_errors = self.keep(boolean(value, "ignore_errors")),
                "no_log" => scope.no_log = self.keep(boolean(value, "no_log")),
                "check_mode" => scope.check_mode = self.keep(boolean(value, "check_mode")),
                "roles" | "pre_tasks" | "tasks" | "post_tasks" | "handlers" => {
                    task_lists.push((key.as_str().unwrap_or_default(), value))
                }
                _ => self.unknown_keyword(key, "play", PLAY_KEYWORDS),
            }
        }
        if !hosts_given {
            self.errors.push(
                Diagnostic::at(&node.span, "play has no `hosts`")
                    .with_help("add `hosts: all` or the name of an inventory group"),
            );
        }
        scope.tags = play.tags.clone();

        // NOTE: Ansible flushes handlers once after roles and tasks together, but
        // they are separate sections here, so an executor that flushes after every
        // section runs role-notified handlers before `tasks`.
        let find = |wanted: &str| {
            task_lists
                .iter()
                .find(|(k, _)| *k == wanted)
                .map(|(_, v)| *v)
        };
        let order = [
            ("pre_tasks", SectionKind::PreTasks),
            ("roles", SectionKind::Roles),
            ("tasks", SectionKind::Tasks),
            ("post_tasks", SectionKind::PostTasks),
        ];
        for (keyword, kind) in order {
            let Some(value) = find(keyword) else {
                continue;
            };
            let tasks = if kind == SectionKind::Roles {
                self.play_roles(value, &scope)
            } else {
                self.task_list(value, keyword, &scope)
            };
            if !tasks.is_empty() {
                play.sections.push(Section { kind, tasks });
            }
        }

        let own_handlers = match find("handlers") {
            Some(value) => self.task_list(value, "handlers", &scope),
            None => Vec::new(),
        };
        play.handlers = std::mem::take(&mut self.play.role_handlers);
        play.handlers.extend(own_handlers);
        self.check_notifies(&play.handlers);
        for section in &mut play.sections {
            unqualify_notifies(&mut section.tasks, &play.handlers);
        }
        let handlers_snapshot = play.handlers.clone();
        unqualify_notifies(&mut play.handlers, &handlers_snapshot);
        Some(play)
    }

    /// Pushes the error of `result`, if any, and returns its value.
    pub(super) fn keep<T>(&mut self, result: Result<T, Diagnostic>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(error);
                None
            }
        }
    }

    /// Reports a key that is neither a known nor an unsupported keyword.
    pub(super) fn unknown_keyword(&mut self, key: &Node, context: &str, known: &[&str]) {
        let name = key.scalar_string();
        if UNSUPPORTED_KEYWORDS.contains(&name.as_str()) {
            self.errors
                .push(key.error(format!("`{name}` is not supported by vpsforge")));
            return;
        }
        let mut error = key.error(format!("unknown {context} keyword `{name}`"));
        if let Some(suggestion) = did_you_mean(&name, known.iter().copied()) {
            error = error.with_help(format!("did you mean `{suggestion}`?"));
        }
        self.errors.push(error);
    }

    fn vars_files(&mut self, node: &Node, dir: &Path) -> Vec<String> {
        let Some(items) = node.as_seq() else {
            self.errors.push(node.error(format!(
                "`vars_files` must be a list of file names, not {}",
                node.kind()
            )));
            return Vec::new();
        };
        let mut files = Vec::new();
        for item in items {
            let Some(file) = self.keep(string(item, "vars_files")) else {
                continue;
            };
            if is_template(&file) {
                self.errors.extend(check_template(&file, &item.span));
            } else if !dir.join(&file).is_file() {
                self.errors.push(
                    item.error(format!("vars file `{file}` not found"))
                        .with_help(format!("looked for `{}`", dir.join(&file).display())),
                );
            }
            files.push(file);
        }
        files
    }

    fn serial(&mut self, node: &Node) -> Vec<Serial> {
        let items: Vec<&Node> = match &node.value {
            NodeValue::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut batches = Vec::new();
        for item in items {
            let parsed = match &item.value {
                NodeValue::Int(count) if *count > 0 => {
                    usize::try_from(*count).ok().map(Serial::Count)
                }
                NodeValue::String(text) => parse_serial(text),
                _ => None,
            };
            match parsed {
                Some(batch) => batches.push(batch),
                None => self.errors.push(
                    item.error(format!("invalid `serial` value `{}`", item.scalar_string()))
                        .with_help("use a positive number of hosts, a percentage such as `30%`, or a list of them"),
                ),
            }
        }
        batches
    }

    fn percentage(&mut self, node: &Node) -> Option<f64> {
        let parsed = match &node.value {
            NodeValue::Int(i) => Some(*i as f64),
            NodeValue::Float(f) => Some(*f),
            NodeValue::String(s) => s.trim().trim_end_matches('%').parse().ok(),
            _ => None,
        };
        match parsed {
            Some(value) if (0.0..=100.0).contains(&value) => Some(value),
            _ => {
                self.errors.push(
                    node.error(format!(
                        "invalid `max_fail_percentage` value `{}`",
                        node.scalar_string()
                    ))
                    .with_help("use a number from 0 to 100"),
                );
                None
            }
        }
    }

    /// Loads a list of tasks (`tasks`, `handlers`, `block`, a task file).
    pub(super) fn task_list(&mut self, node: &Node, keyword: &str, scope: &Scope) -> Vec<Task> {
        match &node.value {
            NodeValue::Null => Vec::new(),
            NodeValue::Seq(items) => items
                .iter()
                .flat_map(|item| self.task(item, scope))
                .collect(),
            _ => {
                self.errors.push(node.error(format!(
                    "`{keyword}` must be a list of tasks, not {}",
                    node.kind()
                )));
                Vec::new()
            }
        }
    }

    fn check_notifies(&mut self, handlers: &[Task]) {
        let mut names: Vec<String> = Vec::new();
        collect_handler_names(handlers, &mut names);
        for (notify, span) in std::mem::take(&mut self.play.notifies) {
            if names.contains(&notify) {
                continue;
            }
            let mut error = Diagnostic::at(&span, format!("unknown handler `{notify}`"));
            error = match did_you_mean(&notify, names.iter().map(String::as_str)) {
                Some(suggestion) => error.with_help(format!("did you mean `{suggestion}`?")),
                None => error.with_help(format!(
                    "add a handler named `{notify}` or with `listen: {notify}` to the play"
                )),
            };
            self.errors.push(error);
        }
    }
}

/// Rewrites `notify: ROLE : NAME` to `NAME` when ROLE has a handler NAME, so the
/// executor matches handlers by name and topic only.
fn unqualify_notifies(tasks: &mut [Task], handlers: &[Task]) {
    for task in tasks {
        for notify in &mut task.notify {
            let Some((role, name)) = notify.split_once(" : ") else {
                continue;
            };
            let defined = handlers.iter().any(|handler| {
                handler.name.as_deref() == Some(name.trim())
                    && handler.role.as_ref().is_some_and(|r| r.name == role.trim())
            });
            if defined {
                *notify = name.trim().to_string();
            }
        }
        if let TaskKind::Block {
            block,
            rescue,
            always,
        } = &mut task.kind
        {
            unqualify_notifies(block, handlers);
            unqualify_notifies(rescue, handlers);
            unqualify_notifies(always, handlers);
        }
    }
}

/// Adds the tags of an `import_playbook` entry to every task of the imported plays.
fn add_tags_to_tasks(tasks: &mut [Task], tags: &[String]) {
    for task in tasks {
        add_tags(&mut task.tags, tags);
        if let TaskKind::Block {
            block,
            rescue,
            always,
        } = &mut task.kind
        {
            add_tags_to_tasks(block, tags);
            add_tags_to_tasks(rescue, tags);
            add_tags_to_tasks(always, tags);
        }
    }
}

/// Collects the names a `notify` may use: handler names, `listen` topics, and
/// Ansible's role-qualified `ROLE : NAME` form for role handlers.
fn collect_handler_names(handlers: &[Task], names: &mut Vec<String>) {
    for handler in handlers {
        if let Some(name) = &handler.name {
            names.push(name.clone());
            if let Some(role) = &handler.role {
                names.push(format!("{} : {name}", role.name));
            }
        }
        names.extend(handler.listen.iter().cloned());
        if let TaskKind::Block {
            block,
            rescue,
            always,
        } = &handler.kind
        {
            collect_handler_names(block, names);
            collect_handler_names(rescue, names);
            collect_handler_names(always, names);
        }
    }
}

fn parse_serial(text: &str) -> Option<Serial> {
    let text = text.trim();
    if let Some(percent) = text.strip_suffix('%') {
        let value: f64 = percent.trim().parse().ok()?;
        return (value > 0.0 && value <= 100.0).then_some(Serial::Percent(value));
    }
    let count: usize = text.parse().ok()?;
    (count > 0).then_some(Serial::Count(count))
}
