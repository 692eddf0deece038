//! One task on one host: conditions, loops, retries, the module's probe, plan and apply.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::host::HostState;
use super::{PlayContext, Runner};
use crate::diagnostic::{Diagnostic, SourceFile, Span};
use crate::modules::{
    BuildContext, ExecOutput, HostView, ModuleError, ModuleKind, ModuleSpec, Plan,
};
use crate::playbook::{Condition, LoopConversion, Task, TaskKind};
use crate::report::{HostResult, Status};
use crate::template::{Scope, TemplateError, TemplateVars};
use crate::transport::Become;

/// The argument name under which the loader stores module arguments given as one
/// template (`args: "{{ x }}"`).
const VARIABLE_PARAMS: &str = "_variable_params";

const NO_LOG_MESSAGE: &str = "the output has been hidden due to no_log: true";

/// The result of one iteration: what is shown, and what `register` stores.
pub(super) struct Outcome {
    pub status: Status,
    pub message: String,
    pub diffs: Vec<crate::modules::Diff>,
    pub result: Map<String, Value>,
    pub check_mode: bool,
}

impl Outcome {
    fn failed(message: impl Into<String>) -> Outcome {
        let message = message.into();
        let mut result = Map::new();
        result.insert("failed".into(), json!(true));
        result.insert("changed".into(), json!(false));
        result.insert("msg".into(), json!(message));
        Outcome {
            status: Status::Failed,
            message,
            diffs: Vec::new(),
            result,
            check_mode: false,
        }
    }

    fn skipped(message: impl Into<String>) -> Outcome {
        let message = message.into();
        let mut result = Map::new();
        result.insert("skipped".into(), json!(true));
        result.insert("changed".into(), json!(false));
        result.insert("skip_reason".into(), json!(message));
        Outcome {
            status: Status::Skipped,
            message,
            diffs: Vec::new(),
            result,
            check_mode: false,
        }
    }
}

/// Returns the status that counts for the recap: failed beats changed beats ok; a task
/// whose every item was skipped is skipped.
pub(super) fn overall_status(results: &[HostResult]) -> Option<Status> {
    if results.is_empty() {
        return None;
    }
    let any = |status: Status| results.iter().any(|r| r.status == status);
    Some(if any(Status::Unreachable) {
        Status::Unreachable
    } else if any(Status::Failed) {
        Status::Failed
    } else if any(Status::Changed) {
        Status::Changed
    } else if results.iter().all(|r| r.status == Status::Skipped) {
        Status::Skipped
    } else {
        Status::Ok
    })
}

impl Runner<'_> {
    /// Runs one task on one host. `upcoming` are the tasks that follow it in the same list,
    /// whose probes may be read in the same round trip as this task's.
    pub(super) async fn run_task(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        task: &Task,
        upcoming: &[Task],
    ) -> Vec<HostResult> {
        use tracing::Instrument as _;

        let span = tracing::info_span!("task", host = %state.name, task = %task.display_name());
        self.run_task_in_span(context, state, task, upcoming)
            .instrument(span)
            .await
    }

    async fn run_task_in_span(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        task: &Task,
        upcoming: &[Task],
    ) -> Vec<HostResult> {
        let host = state.name.clone();
        let to_result = |outcome: &Outcome, item: Option<String>| HostResult {
            host: host.clone(),
            status: outcome.status,
            message: if task.no_log && outcome.status != Status::Skipped {
                NO_LOG_MESSAGE.to_string()
            } else {
                outcome.message.clone()
            },
            item: if task.no_log {
                item.map(|_| "(censored due to no_log)".to_string())
            } else {
                item
            },
            diffs: if task.no_log {
                Vec::new()
            } else {
                outcome.diffs.clone()
            },
            ignored: outcome.status == Status::Failed && task.ignore_errors,
            check_mode: outcome.check_mode,
        };

        if let Some(error) = state.setup_error.take() {
            let outcome = Outcome::failed(error);
            return vec![to_result(&outcome, None)];
        }

        let vars = self.task_vars(state, context, task);
        self.hide_secret_vars(&vars);
        let items = match &task.r#loop {
            None => None,
            Some(spec) => match self.loop_items(spec, task.loop_conversion, &vars) {
                Ok(items) => Some(items),
                Err(message) => {
                    let outcome = Outcome::failed(format!("{}: {message}", task.span));
                    return vec![to_result(&outcome, None)];
                }
            },
        };

        let mut results = Vec::new();
        let registered;
        match items {
            None => {
                let outcome = self
                    .run_iteration(context, state, task, vars, upcoming)
                    .await;
                results.push(to_result(&outcome, None));
                registered = outcome.result.clone();
                self.after_outcome(state, task, &outcome);
            }
            Some(items) => {
                let mut item_results = Vec::new();
                let mut any_changed = false;
                let mut any_failed = false;
                let count = items.len();
                for (index, item) in items.into_iter().enumerate() {
                    state.loop_position = Some((index, count));
                    let item_vars = item_vars(task, &vars, index, &item);
                    let label = self.item_label(task, &item, &item_vars);
                    let outcome = self
                        .run_iteration(context, state, task, item_vars, upcoming)
                        .await;
                    any_changed |= outcome.status == Status::Changed;
                    any_failed |= outcome.status == Status::Failed && !task.ignore_errors;
                    let mut result = outcome.result.clone();
                    result.insert(task.loop_var.clone(), item);
                    item_results.push(Value::Object(result));
                    results.push(to_result(&outcome, Some(label)));
                    self.after_outcome(state, task, &outcome);
                    if outcome.status == Status::Unreachable {
                        break;
                    }
                }
                state.loop_position = None;
                let mut aggregate = Map::new();
                aggregate.insert("changed".into(), json!(any_changed));
                aggregate.insert("failed".into(), json!(any_failed));
                aggregate.insert("msg".into(), json!("All items completed"));
                aggregate.insert("results".into(), Value::Array(item_results));
                if results.is_empty() {
                    aggregate.insert("skipped".into(), json!(true));
                    aggregate.insert("skipped_reason".into(), json!("no items in the list"));
                    results.push(to_result(&Outcome::skipped("no items in the loop"), None));
                }
                registered = aggregate;
            }
        }
        let failed = results
            .iter()
            .any(|r| r.status == Status::Failed && !r.ignored);
        if failed {
            // What a `rescue` section reads to learn which task failed and why.
            state.registered.insert(
                "ansible_failed_task".into(),
                json!({"name": task.display_name(), "action": module_name(task)}),
            );
            state.registered.insert(
                "ansible_failed_result".into(),
                Value::Object(registered.clone()),
            );
        }
        if let Some(name) = &task.register {
            state
                .registered
                .insert(name.clone(), Value::Object(registered));
        }
        results
    }

    fn after_outcome(&self, state: &mut HostState, task: &Task, outcome: &Outcome) {
        if outcome.status != Status::Changed {
            return;
        }
        for handler in &task.notify {
            state.notified.insert(handler.clone());
        }
    }

    pub(super) fn loop_items(
        &self,
        spec: &Value,
        conversion: Option<LoopConversion>,
        vars: &Map<String, Value>,
    ) -> Result<Vec<Value>, String> {
        let rendered = self
            .templar
            .render_value(spec, &Value::Object(vars.clone()))
            .map_err(|e| format!("cannot render the loop: {e}"))?;
        match (conversion, rendered) {
            (_, Value::Null) => Ok(Vec::new()),
            (Some(LoopConversion::DictToItems), Value::Object(map)) => Ok(map
                .into_iter()
                .map(|(key, value)| json!({"key": key, "value": value}))
                .collect()),
            (Some(LoopConversion::FlattenOnce), Value::Array(items)) => Ok(items
                .into_iter()
                .flat_map(|item| match item {
                    Value::Array(inner) => inner,
                    other => vec![other],
                })
                .collect()),
            (Some(LoopConversion::FlattenOnce), Value::String(item)) => {
                Ok(vec![Value::String(item)])
            }
            (Some(LoopConversion::DictToItems), other) => Err(format!(
                "with_dict needs a mapping, not {}",
                crate::modules::args::json_kind(&other)
            )),
            (_, Value::Array(items)) => Ok(items),
            (_, other) => Err(format!(
                "the loop must be a list, not {}",
                crate::modules::args::json_kind(&other)
            )),
        }
    }

    fn item_label(&self, task: &Task, item: &Value, vars: &Map<String, Value>) -> String {
        if let Some(label) = &task.loop_label {
            if let Ok(text) = self.templar.render_str(label, &Value::Object(vars.clone())) {
                return text;
            }
        }
        match item {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// Runs one iteration: `when`, then the module with `until` retries, then `changed_when`/`failed_when`.
    async fn run_iteration(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        task: &Task,
        vars: Map<String, Value>,
        upcoming: &[Task],
    ) -> Outcome {
        let scope = self
            .templar
            .scope(TemplateVars::new(Value::Object(vars.clone())));
        for condition in &task.when {
            match scope.eval_condition(&condition.expr) {
                Ok(true) => {}
                Ok(false) => {
                    return Outcome::skipped(format!(
                        "conditional result was false: {}",
                        condition.expr
                    ))
                }
                Err(error) => return Outcome::failed(condition_error(condition, "when", &error)),
            }
        }

        let attempts = if task.until.is_some() {
            task.retries.max(1) + 1
        } else {
            1
        };
        let mut outcome = Outcome::failed("task did not run");
        for attempt in 1..=attempts {
            outcome = self
                .execute(context, state, task, &vars, &scope, upcoming)
                .await;
            self.apply_result_conditions(task, &vars, &mut outcome);
            let Some(until) = &task.until else { break };
            if outcome.status == Status::Unreachable {
                break;
            }
            let mut until_vars = vars.clone();
            if let Some(name) = &task.register {
                until_vars.insert(name.clone(), Value::Object(outcome.result.clone()));
            }
            let until_scope = self
                .templar
                .scope(TemplateVars::new(Value::Object(until_vars)));
            match until_scope.eval_condition(&until.expr) {
                Ok(true) => break,
                Ok(false) if attempt < attempts => {
                    tracing::info!(
                        attempt,
                        retries = task.retries,
                        "until condition not met, retrying"
                    );
                    // The task waits for the host to change by itself, so the next
                    // attempt must read the host again rather than the cached probe.
                    state.probe_cache.clear();
                    tokio::time::sleep(std::time::Duration::from_secs(task.delay)).await;
                }
                Ok(false) => {
                    let mut failed = Outcome::failed(format!(
                        "retried {} times, the until condition never held: {}",
                        task.retries, until.expr
                    ));
                    failed.result.extend(outcome.result.clone());
                    failed.result.insert("failed".into(), json!(true));
                    failed.result.insert("attempts".into(), json!(attempt));
                    outcome = failed;
                }
                Err(error) => {
                    outcome = Outcome::failed(condition_error(until, "until", &error));
                    break;
                }
            }
        }
        outcome
    }

    fn apply_result_conditions(
        &self,
        task: &Task,
        vars: &Map<String, Value>,
        outcome: &mut Outcome,
    ) {
        if matches!(outcome.status, Status::Skipped | Status::Unreachable) {
            return;
        }
        let mut condition_vars = vars.clone();
        if let Some(name) = &task.register {
            condition_vars.insert(name.clone(), Value::Object(outcome.result.clone()));
        }
        let condition_vars = Value::Object(condition_vars);
        if let Some(conditions) = &task.changed_when {
            match self.all_hold(conditions, &condition_vars, "changed_when") {
                Ok(changed) => {
                    if outcome.status != Status::Failed {
                        outcome.status = if changed { Status::Changed } else { Status::Ok };
                    }
                    outcome.result.insert("changed".into(), json!(changed));
                }
                Err(message) => *outcome = Outcome::failed(message),
            }
        }
        if let Some(conditions) = &task.failed_when {
            match self.all_hold(conditions, &condition_vars, "failed_when") {
                Ok(true) => {
                    outcome.status = Status::Failed;
                    outcome.result.insert("failed".into(), json!(true));
                    outcome.message = format!("failed_when held: {}", join_conditions(conditions));
                }
                Ok(false) => {
                    if outcome.status == Status::Failed {
                        let changed = outcome
                            .result
                            .get("changed")
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        outcome.status = if changed { Status::Changed } else { Status::Ok };
                    }
                    outcome.result.insert("failed".into(), json!(false));
                }
                Err(message) => *outcome = Outcome::failed(message),
            }
        }
    }

    fn all_hold(
        &self,
        conditions: &[Condition],
        vars: &Value,
        keyword: &str,
    ) -> Result<bool, String> {
        let scope = self.templar.scope(TemplateVars::new(vars.clone()));
        for condition in conditions {
            match scope.eval_condition(&condition.expr) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(error) => return Err(condition_error(condition, keyword, &error)),
            }
        }
        Ok(true)
    }

    /// Renders the arguments and runs the module once.
    async fn execute(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        task: &Task,
        vars: &Map<String, Value>,
        scope: &Scope<'_>,
        upcoming: &[Task],
    ) -> Outcome {
        let TaskKind::Action {
            module,
            args,
            arg_spans,
        } = &task.kind
        else {
            return Outcome::failed("not a module task");
        };
        if let Some(target) = &task.delegate_to {
            return Outcome::failed(format!(
                "{}: `delegate_to: {target}` is not supported; run the task in a play for that host",
                task.span
            ));
        }
        let rendered = match self.render_args(task, args, arg_spans, scope) {
            Ok(rendered) => rendered,
            Err(message) => return Outcome::failed(message),
        };
        if task.no_log {
            hide_strings(&self.redactor, &Value::Object(rendered.clone()));
        } else {
            for (name, value) in &rendered {
                if name.contains("password") || name.contains("secret") || name.contains("token") {
                    hide_strings(&self.redactor, value);
                }
            }
        }

        if module.kind == ModuleKind::Controller {
            return self.run_controller_module(state, module, &rendered, scope);
        }

        let check_mode = task.check_mode.unwrap_or(self.options.check);
        let connection = match self.connection(state, context).await {
            Ok(connection) => connection,
            Err(result) => {
                return Outcome {
                    status: Status::Unreachable,
                    message: result.message,
                    diffs: Vec::new(),
                    result: Map::new(),
                    check_mode,
                }
            }
        };
        let r#become = self.become_for(state, context, task, vars);
        let exports = match environment_exports(task, scope) {
            Ok(exports) => exports,
            Err(message) => return Outcome::failed(message),
        };
        let plan = match self
            .plan_module(
                context,
                state,
                task,
                module,
                &rendered,
                scope,
                &connection,
                r#become.as_ref(),
                check_mode,
                upcoming,
                &exports,
            )
            .await
        {
            Ok(Ok(pair)) => pair,
            Ok(Err(outcome)) => return outcome,
            Err(message) => {
                return Outcome {
                    status: Status::Unreachable,
                    message,
                    diffs: Vec::new(),
                    result: Map::new(),
                    check_mode,
                }
            }
        };
        let (action, plan) = plan;
        self.finish_module(
            context,
            state,
            task,
            upcoming,
            action.as_ref(),
            plan,
            &connection,
            r#become.as_ref(),
            check_mode,
            &exports,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_module(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        task: &Task,
        module: &ModuleSpec,
        args: &Map<String, Value>,
        scope: &Scope<'_>,
        connection: &crate::transport::Connection,
        r#become: Option<&Become>,
        check_mode: bool,
        upcoming: &[Task],
        exports: &str,
    ) -> Result<Result<(Box<dyn crate::modules::Action>, Plan), Outcome>, String> {
        let facts = host_facts(state);
        let action = match self.build_action(context, task, module, args, scope, &facts) {
            Ok(action) => action,
            Err(message) => return Ok(Err(Outcome::failed(message))),
        };

        let probe_output = match action.probe() {
            None => ExecOutput::default(),
            Some(script) => match self
                .probe(
                    context,
                    state,
                    connection,
                    task,
                    format!("{exports}{script}"),
                    r#become,
                    upcoming,
                )
                .await
            {
                Ok(output) => output,
                Err(error) => return Err(error.to_string()),
            },
        };
        let view = HostView {
            check_mode,
            facts: &facts,
            predicted: &state.predictions,
        };
        match action.plan(&probe_output, &view) {
            Ok(plan) => Ok(Ok((action, plan))),
            Err(error) => Ok(Err(Outcome::failed(error.to_string()))),
        }
    }

    /// Renders a task's module arguments, dropping those that render to `omit`.
    pub(super) fn render_args(
        &self,
        task: &Task,
        args: &Map<String, Value>,
        arg_spans: &[(String, Span)],
        scope: &Scope<'_>,
    ) -> Result<Map<String, Value>, String> {
        let mut rendered = Map::new();
        if let Some(template) = args.get(VARIABLE_PARAMS) {
            match scope.render_value(template) {
                Ok(Value::Object(map)) => rendered.extend(map),
                Ok(other) => {
                    return Err(format!(
                        "{}: the module arguments must render to a mapping, not {}",
                        task.span,
                        crate::modules::args::json_kind(&other)
                    ))
                }
                Err(error) => {
                    return Err(format!(
                        "{}: cannot render the module arguments: {}",
                        task.span, error.message
                    ))
                }
            }
        }
        for (name, value) in args
            .iter()
            .filter(|(name, _)| name.as_str() != VARIABLE_PARAMS)
        {
            match scope.render_value(value) {
                Ok(Value::String(s)) if s == self.templar.omit_placeholder() => {}
                Ok(value) => {
                    rendered.insert(name.clone(), value);
                }
                Err(error) => {
                    let span = arg_spans
                        .iter()
                        .find(|(arg, _)| arg == name)
                        .map(|(_, span)| span.clone())
                        .unwrap_or_else(|| task.span.clone());
                    return Err(located(
                        &span,
                        &format!("cannot render argument `{name}`: {}", error.message),
                    ));
                }
            }
        }
        Ok(rendered)
    }

    /// Builds a module's action from rendered arguments, with file lookups for `src`.
    pub(super) fn build_action(
        &self,
        context: &PlayContext<'_>,
        task: &Task,
        module: &ModuleSpec,
        args: &Map<String, Value>,
        scope: &Scope<'_>,
        facts: &Value,
    ) -> Result<Box<dyn crate::modules::Action>, String> {
        let kind = if module.name == "template" {
            "templates"
        } else {
            "files"
        };
        let search_paths = task.search_paths(kind, &context.playbook_dir);
        let render_template = |path: &Path| -> Result<String, ModuleError> {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ModuleError::InvalidArgument(format!(
                    "cannot read template `{}`: {e}",
                    path.display()
                ))
            })?;
            scope
                .render_str(&text)
                .map_err(|e| ModuleError::InvalidArgument(template_file_error(path, &text, &e)))
        };
        let build_context = BuildContext {
            search_paths: &search_paths,
            render_template: &render_template,
            facts,
        };
        (module.build)(args, &build_context).map_err(|error| {
            let error = error.to_string();
            if error.contains('\n') {
                format!("{error}\n  = in the task at {}", task.span)
            } else {
                format!("{}: {error}", task.span)
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_module(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        task: &Task,
        upcoming: &[Task],
        action: &dyn crate::modules::Action,
        plan: Plan,
        connection: &crate::transport::Connection,
        r#become: Option<&Become>,
        check_mode: bool,
        exports: &str,
    ) -> Outcome {
        let diffs: Vec<crate::modules::Diff> =
            plan.changes.iter().filter_map(|c| c.diff.clone()).collect();
        let summary = plan
            .changes
            .iter()
            .map(|c| c.summary.clone())
            .collect::<Vec<_>>()
            .join("; ");
        let mut result = plan.result.clone();

        if check_mode && plan.skipped_in_check_mode {
            let mut outcome = Outcome::skipped(plan.reason.clone().unwrap_or_else(|| {
                "skipped in check mode: the outcome cannot be predicted".to_string()
            }));
            outcome.check_mode = true;
            return outcome;
        }
        if !plan.changed() {
            result.insert("changed".into(), json!(false));
            result.insert("failed".into(), json!(false));
            return Outcome {
                status: Status::Ok,
                message: plan.reason.clone().unwrap_or_default(),
                diffs: Vec::new(),
                result,
                check_mode,
            };
        }
        if check_mode && !plan.runs_in_check_mode {
            state.predictions.merge(plan.predicts.clone());
            result.insert("changed".into(), json!(true));
            result.insert("failed".into(), json!(false));
            return Outcome {
                status: Status::Changed,
                message: summary,
                diffs,
                result,
                check_mode: true,
            };
        }
        let Some(script) = &plan.apply else {
            result.insert("changed".into(), json!(true));
            return Outcome {
                status: Status::Changed,
                message: summary,
                diffs,
                result,
                check_mode,
            };
        };
        let script = format!("{exports}{script}");
        let output = if super::probe::is_query(task) {
            // A read-only command runs like a probe: from the cache or in a batch.
            self.probe(context, state, connection, task, script, r#become, upcoming)
                .await
        } else {
            // The host is about to change, so probes read ahead of their tasks may be
            // stale. The following tasks' probes run again after the change, in the
            // same command.
            state.probe_cache.clear();
            let output = self
                .apply_and_probe(context, state, connection, task, script, r#become, upcoming)
                .await;
            self.count_machine_change(state);
            output
        };
        let output = match output {
            Ok(output) => output,
            Err(error) => {
                return Outcome {
                    status: Status::Unreachable,
                    message: error.to_string(),
                    diffs,
                    result,
                    check_mode,
                }
            }
        };
        match action.finish(&plan, &output) {
            Ok(mut result) => {
                let failed = result
                    .get("failed")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                result.entry("changed").or_insert(json!(true));
                result.insert("failed".into(), json!(failed));
                if failed {
                    let message = result
                        .get("msg")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .unwrap_or_else(|| format!("failed: {summary}"));
                    return Outcome {
                        status: Status::Failed,
                        message,
                        diffs,
                        result,
                        check_mode,
                    };
                }
                let changed = result
                    .get("changed")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                Outcome {
                    status: if changed { Status::Changed } else { Status::Ok },
                    message: summary,
                    diffs,
                    result,
                    check_mode,
                }
            }
            Err(error) => {
                let mut outcome = Outcome::failed(format!("{summary}: {error}"));
                outcome.diffs = diffs;
                outcome
            }
        }
    }
}

fn module_name(task: &Task) -> &'static str {
    match &task.kind {
        TaskKind::Action { module, .. } => module.name,
        TaskKind::Block { .. } => "block",
        TaskKind::Meta(_) => "meta",
    }
}

/// Returns `export` lines for the task's `environment`, to put before its scripts.
pub(super) fn environment_exports(task: &Task, scope: &Scope<'_>) -> Result<String, String> {
    let mut exports = String::new();
    for (name, value) in &task.environment {
        let valid_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(format!(
                "{}: invalid environment variable name `{name}`",
                task.span
            ));
        }
        let value = scope.render_value(value).map_err(|e| {
            format!(
                "{}: cannot render environment variable `{name}`: {}",
                task.span, e.message
            )
        })?;
        let text = match value {
            Value::String(text) => text,
            other => other.to_string(),
        };
        exports.push_str(&format!(
            "export {name}={}\n",
            crate::modules::common::quote(&text)
        ));
    }
    Ok(exports)
}

/// Returns the variables of one loop iteration.
pub(super) fn item_vars(
    task: &Task,
    vars: &Map<String, Value>,
    index: usize,
    item: &Value,
) -> Map<String, Value> {
    let mut item_vars = vars.clone();
    item_vars.insert(task.loop_var.clone(), item.clone());
    item_vars.insert(
        "ansible_loop".into(),
        json!({"index": index + 1, "index0": index}),
    );
    if let Some(name) = &task.index_var {
        item_vars.insert(name.clone(), json!(index));
    }
    item_vars
}

/// Returns the host's facts as the `facts` modules see them (without the `ansible_` prefix).
pub(super) fn host_facts(state: &HostState) -> Value {
    state
        .facts
        .as_ref()
        .and_then(|f| f.get("ansible_facts"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn condition_error(condition: &Condition, keyword: &str, error: &TemplateError) -> String {
    located(
        &condition.span,
        &format!(
            "cannot evaluate {keyword} `{}`: {}",
            condition.expr, error.message
        ),
    )
}

/// Formats an error in a template file with its location, the line and a caret.
fn template_file_error(path: &Path, text: &str, error: &TemplateError) -> String {
    let file = SourceFile::new(path, text);
    match error.line {
        Some(line) => located(
            &Span::new(file, line, error.column.unwrap_or(1)),
            &error.message,
        ),
        None => format!("{}: {}", path.display(), error.message),
    }
}

/// Formats a run-time error like a load-time one: the message, `file:line:col`, the line and a caret.
fn located(span: &Span, message: &str) -> String {
    let rendered = Diagnostic::at(span, message).render();
    rendered
        .strip_prefix("error: ")
        .unwrap_or(&rendered)
        .trim_end()
        .to_string()
}

fn join_conditions(conditions: &[Condition]) -> String {
    conditions
        .iter()
        .map(|c| c.expr.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

fn hide_strings(redactor: &crate::report::Redactor, value: &Value) {
    match value {
        Value::String(s) => redactor.add(s),
        Value::Array(items) => items.iter().for_each(|v| hide_strings(redactor, v)),
        Value::Object(map) => map.values().for_each(|v| hide_strings(redactor, v)),
        _ => {}
    }
}
