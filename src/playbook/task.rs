//! Loading of single tasks: keywords, the module and its arguments, blocks,
//! `meta` and static task includes.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::keywords::{
    add_tags, boolean, conditions, mapping, short_action, string, string_list, unsigned,
    INCLUDE_ACTIONS, META_ACTIONS, TASK_KEYWORDS, UNSUPPORTED_KEYWORDS,
};
use super::kv::parse_kv;
use super::load::{Loader, Scope};
use super::syntax::{
    check_expression, check_node, check_template, check_template_file, is_single_expression,
    is_template, value_has_template,
};
use super::{Condition, LoopConversion, MetaAction, Task, TaskKind};
use crate::diagnostic::{did_you_mean, Diagnostic, Span};
use crate::modules::{ModuleKind, ModuleSpec};
use crate::yaml::{Node, NodeValue};

/// The task key that names the task's action.
#[derive(Clone, Copy)]
enum ActionKey {
    Module(&'static ModuleSpec),
    Block,
    Meta,
    Include(&'static str),
}

/// Kind of a key in a task mapping.
enum TaskKey {
    Action(ActionKey),
    Keyword,
    Unknown,
}

/// The keywords of one task, before the enclosing scope is applied.
#[derive(Default)]
struct Keywords<'n> {
    name: Option<String>,
    when: Vec<Condition>,
    r#loop: Option<(String, &'n Node)>,
    loop_var: Option<String>,
    loop_label: Option<String>,
    index_var: Option<String>,
    register: Option<String>,
    notify: Vec<String>,
    listen: Vec<String>,
    tags: Vec<String>,
    r#become: Option<bool>,
    become_user: Option<String>,
    ignore_errors: Option<bool>,
    changed_when: Option<Vec<Condition>>,
    failed_when: Option<Vec<Condition>>,
    check_mode: Option<bool>,
    no_log: Option<bool>,
    until: Option<Condition>,
    retries: Option<u64>,
    delay: Option<u64>,
    vars: Map<String, Value>,
    args: Option<&'n Node>,
    environment: Map<String, Value>,
    delegate_to: Option<String>,
    run_once: bool,
    rescue: Option<&'n Node>,
    always: Option<&'n Node>,
}

/// Module arguments with the location of each.
type ModuleArgs = (Map<String, Value>, Vec<(String, Span)>);

impl Loader<'_> {
    /// Loads one task. An include returns the tasks it pulls in, so the result may
    /// contain any number of tasks. A task with errors returns none.
    pub(super) fn task(&mut self, node: &Node, scope: &Scope) -> Vec<Task> {
        let Some(entries) = node.as_map() else {
            self.errors
                .push(node.error(format!("a task must be a mapping, not {}", node.kind())));
            return Vec::new();
        };

        let errors_before = self.errors.len();
        let mut actions: Vec<(&Node, &Node, ActionKey)> = Vec::new();
        let mut keyword_entries: Vec<(&str, &Node, &Node)> = Vec::new();
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                self.errors
                    .push(key.error(format!("task keys must be strings, not {}", key.kind())));
                continue;
            };
            match self.classify(name) {
                TaskKey::Action(action) => actions.push((key, value, action)),
                TaskKey::Keyword => keyword_entries.push((name, key, value)),
                TaskKey::Unknown => self.unknown_task_key(key, name),
            }
        }

        if actions.len() > 1 {
            let first = actions[0].0.scalar_string();
            let second = actions[1].0.scalar_string();
            self.errors.push(
                actions[1]
                    .0
                    .error(format!("task has two modules: `{first}` and `{second}`"))
                    .with_help("split it into one task per module"),
            );
            return Vec::new();
        }
        let Some(&(action_key, action_value, action)) = actions.first() else {
            if self.errors.len() == errors_before {
                self.errors
                    .push(node.error("task has no module").with_help(
                        "add a module such as `command: ...`, an include, or a `block`",
                    ));
            }
            return Vec::new();
        };

        let keywords = self.keywords(&keyword_entries, action);
        let merged = merge_scope(scope, &keywords);
        if self.errors.len() > errors_before {
            return Vec::new();
        }

        match action {
            ActionKey::Module(spec) => {
                let Some((args, arg_spans)) =
                    self.module_args(spec, action_key, action_value, keywords.args)
                else {
                    return Vec::new();
                };
                let kind = TaskKind::Action {
                    module: spec,
                    args,
                    arg_spans,
                };
                let task = build_task(&keywords, &merged, kind, &node.span);
                self.check_template_source(&task);
                if spec.name == "assert" {
                    self.check_assert_conditions(keywords.args.unwrap_or(action_value));
                }
                vec![task]
            }
            ActionKey::Meta => {
                let Some(meta) = self.meta_action(action_value) else {
                    return Vec::new();
                };
                vec![build_task(
                    &keywords,
                    &merged,
                    TaskKind::Meta(meta),
                    &node.span,
                )]
            }
            ActionKey::Block => {
                if let Some((loop_keyword, loop_node)) = &keywords.r#loop {
                    self.errors.push(
                        loop_node
                            .error(format!("`{loop_keyword}` cannot be used on a `block`"))
                            .with_help("put the loop on the tasks inside the block"),
                    );
                    return Vec::new();
                }
                let block = self.task_list(action_value, "block", &merged);
                let rescue = keywords
                    .rescue
                    .map(|n| self.task_list(n, "rescue", &merged))
                    .unwrap_or_default();
                let always = keywords
                    .always
                    .map(|n| self.task_list(n, "always", &merged))
                    .unwrap_or_default();
                let kind = TaskKind::Block {
                    block,
                    rescue,
                    always,
                };
                vec![build_task(&keywords, &merged, kind, &node.span)]
            }
            ActionKey::Include(include) => {
                if let Some((loop_keyword, loop_node)) = &keywords.r#loop {
                    self.errors.push(
                        loop_node
                            .error(format!("`{loop_keyword}` cannot be used on `{include}`"))
                            .with_help("only static includes are supported: put the loop on the included tasks"),
                    );
                    return Vec::new();
                }
                match include {
                    "include_tasks" | "import_tasks" => {
                        self.include_tasks(include, action_key, action_value, &merged)
                    }
                    _ => self.include_role(include, action_value, &merged),
                }
            }
        }
    }

    fn classify(&self, name: &str) -> TaskKey {
        if name == "block" {
            return TaskKey::Action(ActionKey::Block);
        }
        if TASK_KEYWORDS.contains(&name) {
            return TaskKey::Keyword;
        }
        if META_ACTIONS.contains(&name) {
            return TaskKey::Action(ActionKey::Meta);
        }
        if let Some(include) = INCLUDE_ACTIONS.iter().find(|action| **action == name) {
            return TaskKey::Action(ActionKey::Include(short_action(include)));
        }
        self.options
            .modules
            .iter()
            .copied()
            .find(|spec| spec.name == name || spec.aliases.contains(&name))
            .map_or(TaskKey::Unknown, |spec| {
                TaskKey::Action(ActionKey::Module(spec))
            })
    }

    fn unknown_task_key(&mut self, key: &Node, name: &str) {
        if name.starts_with("with_") {
            self.errors
                .push(key.error(format!("`{name}` is not supported")).with_help(
                    "use `loop` with a filter, or `with_items`, `with_list` or `with_dict`",
                ));
            return;
        }
        if UNSUPPORTED_KEYWORDS.contains(&name) {
            self.errors
                .push(key.error(format!("`{name}` is not supported by vpsforge")));
            return;
        }
        let candidates = self
            .options
            .modules
            .iter()
            .flat_map(|spec| std::iter::once(spec.name).chain(spec.aliases.iter().copied()))
            .chain(TASK_KEYWORDS.iter().copied())
            .chain(INCLUDE_ACTIONS.iter().copied())
            .chain(META_ACTIONS.iter().copied());
        let mut error = key.error(format!("unknown module or task keyword `{name}`"));
        if let Some(suggestion) = did_you_mean(name, candidates) {
            error = error.with_help(format!("did you mean `{suggestion}`?"));
        }
        self.errors.push(error);
    }

    fn keywords<'n>(
        &mut self,
        entries: &[(&str, &'n Node, &'n Node)],
        action: ActionKey,
    ) -> Keywords<'n> {
        let mut keywords = Keywords::default();
        for &(name, key, value) in entries {
            match name {
                "name" => {
                    keywords.name = self.keep(string(value, "name"));
                    if let Some(text) = &keywords.name {
                        self.errors.extend(check_template(text, &value.span));
                    }
                }
                "when" => keywords.when = conditions(value, "when", &mut self.errors),
                "changed_when" => {
                    keywords.changed_when =
                        Some(conditions(value, "changed_when", &mut self.errors))
                }
                "failed_when" => {
                    keywords.failed_when = Some(conditions(value, "failed_when", &mut self.errors))
                }
                "until" => {
                    keywords.until = join_conditions(conditions(value, "until", &mut self.errors))
                }
                "loop" | "with_items" | "with_list" | "with_dict" => {
                    if let Some((previous, _)) = &keywords.r#loop {
                        self.errors.push(
                            key.error(format!("task has both `{previous}` and `{name}`"))
                                .with_help("keep one of them"),
                        );
                        continue;
                    }
                    check_node(value, &mut self.errors);
                    if let Err(error) = check_loop_shape(name, value) {
                        self.errors.push(error);
                        continue;
                    }
                    keywords.r#loop = Some((name.to_string(), value));
                }
                "loop_control" => self.loop_control(value, &mut keywords),
                "register" => keywords.register = self.variable_name(value, "register"),
                "notify" => keywords.notify = self.notify(value),
                "listen" => {
                    keywords.listen = self
                        .keep(string_list(value, "listen", false))
                        .unwrap_or_default()
                }
                "tags" => {
                    keywords.tags = self
                        .keep(string_list(value, "tags", true))
                        .unwrap_or_default()
                }
                "become" => keywords.r#become = self.keep(boolean(value, "become")),
                "become_user" => keywords.become_user = self.keep(string(value, "become_user")),
                "ignore_errors" => {
                    keywords.ignore_errors = self.keep(boolean(value, "ignore_errors"))
                }
                "check_mode" => keywords.check_mode = self.keep(boolean(value, "check_mode")),
                "no_log" => keywords.no_log = self.keep(boolean(value, "no_log")),
                "run_once" => {
                    keywords.run_once = self.keep(boolean(value, "run_once")).unwrap_or(false)
                }
                "retries" => keywords.retries = self.keep(unsigned(value, "retries")),
                "delay" => keywords.delay = self.keep(unsigned(value, "delay")),
                "vars" => {
                    keywords.vars = mapping(value, "vars", &mut self.errors).unwrap_or_default()
                }
                "environment" => {
                    keywords.environment =
                        mapping(value, "environment", &mut self.errors).unwrap_or_default()
                }
                "delegate_to" => {
                    keywords.delegate_to = self.keep(string(value, "delegate_to"));
                    if let Some(host) = &keywords.delegate_to {
                        self.errors.extend(check_template(host, &value.span));
                    }
                }
                "args" => keywords.args = Some(value),
                "rescue" | "always" => {
                    if !matches!(action, ActionKey::Block) {
                        self.errors.push(
                            key.error(format!("`{name}` needs a `block` in the same task"))
                                .with_help("put the tasks that may fail under `block:`"),
                        );
                    } else if name == "rescue" {
                        keywords.rescue = Some(value);
                    } else {
                        keywords.always = Some(value);
                    }
                }
                _ => self.unknown_task_key(key, name),
            }
        }
        if keywords.args.is_some() && !matches!(action, ActionKey::Module(_)) {
            if let Some((_, key, _)) = entries.iter().find(|(name, _, _)| *name == "args") {
                self.errors
                    .push(key.error("`args` needs a module in the same task"));
            }
        }
        keywords
    }

    fn loop_control(&mut self, node: &Node, keywords: &mut Keywords) {
        let Some(entries) = node.as_map() else {
            self.errors.push(node.error(format!(
                "`loop_control` must be a mapping, not {}",
                node.kind()
            )));
            return;
        };
        for (key, value) in entries {
            match key.as_str() {
                Some("loop_var") => keywords.loop_var = self.variable_name(value, "loop_var"),
                Some("index_var") => keywords.index_var = self.variable_name(value, "index_var"),
                Some("label") => {
                    keywords.loop_label = self.keep(string(value, "label"));
                    if let Some(label) = &keywords.loop_label {
                        self.errors.extend(check_template(label, &value.span));
                    }
                }
                Some(name @ ("pause" | "extended" | "extended_allitems" | "break_when")) => {
                    self.errors.push(key.error(format!(
                        "`loop_control.{name}` is not supported by vpsforge"
                    )))
                }
                _ => {
                    let name = key.scalar_string();
                    let mut error = key.error(format!("unknown `loop_control` keyword `{name}`"));
                    if let Some(suggestion) =
                        did_you_mean(&name, ["loop_var", "index_var", "label"])
                    {
                        error = error.with_help(format!("did you mean `{suggestion}`?"));
                    }
                    self.errors.push(error);
                }
            }
        }
    }

    fn variable_name(&mut self, node: &Node, keyword: &str) -> Option<String> {
        let name = self.keep(string(node, keyword))?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.errors.push(
                node.error(format!("`{keyword}` must be a variable name, not `{name}`"))
                    .with_help("use letters, digits and `_`, starting with a letter or `_`"),
            );
            return None;
        }
        Some(name)
    }

    /// Returns the `notify` names and records the static ones for the handler check.
    fn notify(&mut self, node: &Node) -> Vec<String> {
        let items: Vec<&Node> = match &node.value {
            NodeValue::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut names = Vec::new();
        for item in items {
            let Some(name) = self.keep(string(item, "notify")) else {
                continue;
            };
            if is_template(&name) {
                self.errors.extend(check_template(&name, &item.span));
            } else {
                self.play.notifies.push((name.clone(), item.span.clone()));
            }
            names.push(name);
        }
        names
    }

    fn meta_action(&mut self, node: &Node) -> Option<MetaAction> {
        let name = self.keep(string(node, "meta"))?;
        match name.as_str() {
            "flush_handlers" => Some(MetaAction::FlushHandlers),
            "end_play" => Some(MetaAction::EndPlay),
            "end_host" => Some(MetaAction::EndHost),
            "noop" => Some(MetaAction::Noop),
            _ => {
                self.errors.push(
                    node.error(format!("meta action `{name}` is not supported"))
                        .with_help("use `flush_handlers`, `end_play`, `end_host` or `noop`"),
                );
                None
            }
        }
    }

    /// Collects a module's arguments from its value and the `args` keyword, then
    /// checks them against the module's declared parameters.
    fn module_args(
        &mut self,
        spec: &'static ModuleSpec,
        key: &Node,
        value: &Node,
        args_keyword: Option<&Node>,
    ) -> Option<ModuleArgs> {
        let errors_before = self.errors.len();
        let mut raw: Vec<(String, Value, Span)> = Vec::new();

        if let Some(args_node) = args_keyword {
            self.collect_args(spec, args_node, "args", &mut raw);
        }
        self.collect_args(spec, value, key.as_str().unwrap_or(spec.name), &mut raw);

        let mut args = Map::new();
        let mut arg_spans: Vec<(String, Span)> = Vec::new();
        // Controller modules that declare no parameters, such as `set_fact`, take
        // variable names as argument names.
        let any_names = spec.params.is_empty() && spec.kind == ModuleKind::Controller;
        for (name, value, span) in raw {
            if any_names {
                arg_spans.retain(|(existing, _)| *existing != name);
                arg_spans.push((name.clone(), span));
                args.insert(name, value);
                continue;
            }
            let Some(canonical) = canonical_name(spec, &name) else {
                let candidates = spec.params.iter().flat_map(|param| {
                    std::iter::once(param.name).chain(param.aliases.iter().copied())
                });
                let mut error = Diagnostic::at(
                    &span,
                    format!("unknown argument `{name}` for module `{}`", spec.name),
                );
                if let Some(suggestion) = did_you_mean(&name, candidates) {
                    error = error.with_help(format!("did you mean `{suggestion}`?"));
                }
                self.errors.push(error);
                continue;
            };
            self.check_choice(spec, canonical, &value, &span);
            args.insert(canonical.to_string(), value);
            arg_spans.retain(|(existing, _)| existing != canonical);
            arg_spans.push((canonical.to_string(), span));
        }

        if !args.contains_key("_variable_params") {
            for param in spec.params.iter().filter(|param| param.required) {
                if !args.contains_key(param.name) {
                    self.errors.push(
                        key.error(format!(
                            "missing required argument `{}` for module `{}`",
                            param.name, spec.name
                        ))
                        .with_help(format!(
                            "add `{}: ...` to the module's arguments",
                            param.name
                        )),
                    );
                }
            }
        }

        (self.errors.len() == errors_before).then_some((args, arg_spans))
    }

    /// Adds the arguments written in `node` (a mapping, a `key=value` string or one
    /// template) to `raw`, later ones replacing earlier ones of the same name.
    fn collect_args(
        &mut self,
        spec: &ModuleSpec,
        node: &Node,
        written_as: &str,
        raw: &mut Vec<(String, Value, Span)>,
    ) {
        let mut push = |name: String, value: Value, span: Span| {
            raw.retain(|(existing, _, _)| *existing != name);
            raw.push((name, value, span));
        };
        match &node.value {
            NodeValue::Null => {}
            NodeValue::Map(entries) => {
                for (key, value) in entries {
                    check_node(value, &mut self.errors);
                    push(key.scalar_string(), value.to_json(), key.span.clone());
                }
            }
            NodeValue::String(text)
                if is_single_expression(text) && (!spec.free_form || written_as == "args") =>
            {
                self.errors.extend(check_template(text, &node.span));
                push(
                    "_variable_params".to_string(),
                    Value::String(text.clone()),
                    node.span.clone(),
                );
            }
            NodeValue::String(text) if written_as != "args" => {
                let declared =
                    |key: &str| key != "_raw_params" && canonical_name(spec, key).is_some();
                let split = parse_kv(text, |key| !spec.free_form || declared(key));
                for (name, value, offset) in split.pairs {
                    let span = string_offset(node, text, offset);
                    self.errors.extend(check_template(&value, &span));
                    push(name, Value::String(value), span);
                }
                if let Some(free_text) = split.raw {
                    let span = string_offset(node, text, split.raw_offset);
                    if spec.free_form {
                        self.errors.extend(check_template(&free_text, &node.span));
                        push("_raw_params".to_string(), Value::String(free_text), span);
                    } else {
                        self.errors.push(
                            Diagnostic::at(
                                &span,
                                format!(
                                    "module `{}` does not take free-form text `{free_text}`",
                                    spec.name
                                ),
                            )
                            .with_help("write the arguments as `key=value` pairs or as a mapping"),
                        );
                    }
                }
            }
            NodeValue::Int(_) | NodeValue::Float(_) | NodeValue::Bool(_)
                if spec.free_form && written_as != "args" =>
            {
                push(
                    "_raw_params".to_string(),
                    Value::String(node.scalar_string()),
                    node.span.clone(),
                );
            }
            _ if written_as == "args" => self.errors.push(
                node.error(format!(
                    "`args` must be a mapping or a single template, not {}",
                    node.kind()
                ))
                .with_help("write `args:` followed by `key: value` lines"),
            ),
            _ => self.errors.push(node.error(format!(
                "arguments of `{written_as}` must be a mapping or a `key=value` string, not {}",
                node.kind()
            ))),
        }
    }

    /// Checks the conditions of an `assert` task, which are expressions without braces
    /// and so escape the template check of other arguments.
    fn check_assert_conditions(&mut self, args: &Node) {
        let Some(that) = args.get("that") else {
            return;
        };
        let conditions = match &that.value {
            NodeValue::Seq(items) => items.iter().collect(),
            _ => vec![that],
        };
        for condition in conditions {
            if condition.is_unsafe() {
                continue;
            }
            if let Some(expr) = condition.as_str() {
                self.errors.extend(check_expression(expr, &condition.span));
            }
        }
    }

    /// Checks the file that a `template` task with a literal `src` renders: it must
    /// exist in one of the folders the executor searches, and compile.
    fn check_template_source(&mut self, task: &Task) {
        let TaskKind::Action {
            module,
            args,
            arg_spans,
        } = &task.kind
        else {
            return;
        };
        if module.name != "template" {
            return;
        }
        let Some(src) = args.get("src").and_then(Value::as_str) else {
            return;
        };
        if is_template(src) || crate::yaml::strip_unsafe(src).is_some() {
            return;
        }
        let span = arg_spans
            .iter()
            .find(|(name, _)| name == "src")
            .map_or(&task.span, |(_, span)| span);

        // NOTE: for a play from `import_playbook`, this searches beside the imported
        // file, as Ansible does, while the executor searches beside the playbook
        // given on the command line.
        let relative = Path::new(src);
        let candidates: Vec<PathBuf> = if relative.is_absolute() {
            vec![relative.to_path_buf()]
        } else {
            task.search_paths("templates", &self.play.playbook_dir)
                .into_iter()
                .map(|folder| folder.join(relative))
                .collect()
        };
        let Some(path) = candidates.iter().find(|path| path.is_file()) else {
            self.errors.push(
                Diagnostic::at(span, format!("template source `{src}` not found"))
                    .with_help(format!("looked in {}", list_paths(&candidates))),
            );
            return;
        };
        match std::fs::read_to_string(path) {
            Ok(text) => self.errors.extend(check_template_file(path, &text)),
            Err(err) => self.errors.push(Diagnostic::at(
                span,
                format!("cannot read template source `{}`: {err}", path.display()),
            )),
        }
    }

    fn check_choice(&mut self, spec: &ModuleSpec, name: &str, value: &Value, span: &Span) {
        let Some(param) = spec.params.iter().find(|param| param.name == name) else {
            return;
        };
        if param.choices.is_empty() || value_has_template(value) {
            return;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        if param.choices.contains(&text.as_str()) {
            return;
        }
        let listed = param
            .choices
            .iter()
            .map(|choice| format!("`{choice}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match did_you_mean(&text, param.choices.iter().copied()) {
            Some(suggestion) => format!("did you mean `{suggestion}`? expected one of {listed}"),
            None => format!("expected one of {listed}"),
        };
        self.errors.push(
            Diagnostic::at(
                span,
                format!(
                    "invalid value `{text}` for argument `{name}` of module `{}`",
                    spec.name
                ),
            )
            .with_help(help),
        );
    }

    /// Inlines a task file named by `include_tasks` or `import_tasks`.
    fn include_tasks(
        &mut self,
        include: &str,
        key: &Node,
        value: &Node,
        scope: &Scope,
    ) -> Vec<Task> {
        let file_node = match &value.value {
            NodeValue::Map(entries) => {
                for (entry_key, _) in entries {
                    let name = entry_key.scalar_string();
                    if name != "file" {
                        self.errors.push(
                            entry_key
                                .error(format!("`{include}` does not accept `{name}`"))
                                .with_help("give the file name as `file:`; use task keywords such as `when` and `vars` on the include itself"),
                        );
                    }
                }
                match value.get("file") {
                    Some(file) => file,
                    None => {
                        self.errors
                            .push(value.error(format!("`{include}` has no `file`")));
                        return Vec::new();
                    }
                }
            }
            _ => value,
        };
        let Some(file) = self.keep(string(file_node, include)) else {
            return Vec::new();
        };
        if is_template(&file) {
            self.errors.push(
                file_node
                    .error(format!(
                        "`{include}` needs a static file name, not `{file}`"
                    ))
                    .with_help(
                        "only static includes are supported: include each file with its own `when`",
                    ),
            );
            return Vec::new();
        }

        let mut candidates = vec![scope.dir.join(&file)];
        if let Some(role) = &scope.role {
            candidates.push(role.path.join("tasks").join(&file));
        }
        let Some(path) = candidates.iter().find(|path| path.is_file()).cloned() else {
            self.errors.push(
                file_node
                    .error(format!("task file `{file}` not found"))
                    .with_help(format!("looked in {}", list_paths(&candidates))),
            );
            return Vec::new();
        };
        self.task_file(&path, Some(&key.span), scope)
    }

    /// Loads the tasks of a task file with `scope` applied.
    pub(super) fn task_file(
        &mut self,
        path: &Path,
        from: Option<&Span>,
        scope: &Scope,
    ) -> Vec<Task> {
        if !self.enter(path, from) {
            return Vec::new();
        }
        let tasks = match self.read_yaml(path, from) {
            Some(root) => {
                let file_scope = Scope {
                    dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
                    ..scope.clone()
                };
                self.task_list(&root, "task file", &file_scope)
            }
            None => Vec::new(),
        };
        self.leave();
        tasks
    }
}

/// Returns the declared name of argument `name` (itself or the parameter it is an alias of).
fn canonical_name(spec: &ModuleSpec, name: &str) -> Option<&'static str> {
    if spec.free_form && name == "_raw_params" {
        return Some("_raw_params");
    }
    if name == "_variable_params" {
        return Some("_variable_params");
    }
    spec.params
        .iter()
        .find(|param| param.name == name || param.aliases.contains(&name))
        .map(|param| param.name)
}

/// Returns the location of character `offset` of a string scalar, skipping an
/// opening quote. Offsets past the first line keep the scalar's own location,
/// because folding makes them unreliable.
fn string_offset(node: &Node, text: &str, offset: usize) -> Span {
    if text.chars().take(offset).any(|c| c == '\n') {
        return node.span.clone();
    }
    let first = node
        .span
        .file
        .line_text(node.span.line)
        .and_then(|line| line.chars().nth(node.span.col - 1));
    match first {
        Some('"' | '\'') => node.span.offset(0, offset + 1),
        _ => node.span.offset(0, offset),
    }
}

pub(super) fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| format!("`{}`", path.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies a task's own keywords over those inherited from its play, role or block.
fn merge_scope(scope: &Scope, keywords: &Keywords) -> Scope {
    let mut merged = scope.clone();
    merged.when.extend(keywords.when.iter().cloned());
    let mut tags = keywords.tags.clone();
    add_tags(&mut tags, &scope.tags);
    merged.tags = tags;
    merged.r#become = keywords.r#become.or(scope.r#become);
    merged.become_user = keywords
        .become_user
        .clone()
        .or_else(|| scope.become_user.clone());
    merged.ignore_errors = keywords.ignore_errors.or(scope.ignore_errors);
    merged.no_log = keywords.no_log.or(scope.no_log);
    merged.check_mode = keywords.check_mode.or(scope.check_mode);
    for (name, value) in &keywords.vars {
        merged.vars.insert(name.clone(), value.clone());
    }
    for (name, value) in &keywords.environment {
        merged.environment.insert(name.clone(), value.clone());
    }
    merged
}

fn build_task(keywords: &Keywords, merged: &Scope, kind: TaskKind, span: &Span) -> Task {
    let (r#loop, loop_conversion) = match &keywords.r#loop {
        Some((name, node)) => convert_loop(name, node),
        None => (None, None),
    };
    let retries = keywords
        .retries
        .unwrap_or(if keywords.until.is_some() { 3 } else { 0 });
    Task {
        name: keywords.name.clone(),
        kind,
        when: merged.when.clone(),
        r#loop,
        loop_conversion,
        loop_var: keywords
            .loop_var
            .clone()
            .unwrap_or_else(|| "item".to_string()),
        loop_label: keywords.loop_label.clone(),
        index_var: keywords.index_var.clone(),
        register: keywords.register.clone(),
        notify: keywords.notify.clone(),
        listen: keywords.listen.clone(),
        tags: merged.tags.clone(),
        r#become: merged.r#become,
        become_user: merged.become_user.clone(),
        ignore_errors: merged.ignore_errors.unwrap_or(false),
        changed_when: keywords.changed_when.clone(),
        failed_when: keywords.failed_when.clone(),
        check_mode: merged.check_mode,
        no_log: merged.no_log.unwrap_or(false),
        until: keywords.until.clone(),
        retries: u32::try_from(retries).unwrap_or(u32::MAX),
        delay: keywords.delay.unwrap_or(5),
        vars: merged.vars.clone(),
        environment: merged.environment.clone(),
        delegate_to: keywords.delegate_to.clone(),
        run_once: keywords.run_once,
        role: merged.role.clone(),
        span: span.clone(),
    }
}

/// Converts `with_items` and `with_dict` values to `loop` items now when they
/// hold no template, and otherwise leaves the conversion to the executor.
fn convert_loop(keyword: &str, node: &Node) -> (Option<Value>, Option<LoopConversion>) {
    let value = node.to_json();
    let conversion = match keyword {
        "with_items" => LoopConversion::FlattenOnce,
        "with_dict" => LoopConversion::DictToItems,
        _ => return (Some(value), None),
    };
    if value_has_template(&value) {
        return (Some(value), Some(conversion));
    }
    let converted = match (conversion, value) {
        (LoopConversion::FlattenOnce, Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .flat_map(|item| match item {
                    Value::Array(inner) => inner,
                    other => vec![other],
                })
                .collect(),
        ),
        (LoopConversion::DictToItems, Value::Object(map)) => Value::Array(
            map.into_iter()
                .map(|(key, value)| serde_json::json!({"key": key, "value": value}))
                .collect(),
        ),
        (LoopConversion::FlattenOnce, Value::Null) => Value::Array(Vec::new()),
        (LoopConversion::FlattenOnce, Value::String(item)) => {
            Value::Array(vec![Value::String(item)])
        }
        (_, other) => return (Some(other), Some(conversion)),
    };
    (Some(converted), None)
}

/// Checks that a loop keyword has a value it can iterate: a list (a mapping for
/// `with_dict`) or a template that renders to one.
fn check_loop_shape(keyword: &str, node: &Node) -> Result<(), Diagnostic> {
    let valid = match (&node.value, keyword) {
        (NodeValue::String(text), _) if is_template(text) => true,
        (NodeValue::Map(_), "with_dict") => true,
        (_, "with_dict") => false,
        (NodeValue::Seq(_), _) => true,
        (NodeValue::String(_) | NodeValue::Null, "with_items") => true,
        _ => false,
    };
    if valid {
        return Ok(());
    }
    let expected = if keyword == "with_dict" {
        "a mapping"
    } else {
        "a list"
    };
    Err(node
        .error(format!(
            "`{keyword}` must be {expected} or a template, not {}",
            node.kind()
        ))
        .with_help(format!(
            "write {expected}, or a template such as `\"{{{{ my_items }}}}\"`"
        )))
}

/// Joins a list of conditions into one that holds when all of them hold, because
/// Ansible accepts a list for `until` and `Task::until` stores one condition.
fn join_conditions(mut conditions: Vec<Condition>) -> Option<Condition> {
    if conditions.len() <= 1 {
        return conditions.pop();
    }
    let expr = conditions
        .iter()
        .map(|condition| format!("({})", super::syntax::strip_braces(&condition.expr)))
        .collect::<Vec<_>>()
        .join(" and ");
    Some(Condition {
        expr,
        span: conditions[0].span.clone(),
    })
}
