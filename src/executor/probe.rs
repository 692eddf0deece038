//! Reading host state for many tasks in one round trip.
//!
//! When a task needs its probe and the host's probe cache has no result, the
//! executor also renders the tasks that follow it and the remaining items of
//! its loop. It runs all their probe scripts as one batch script, and later
//! tasks then find their results in the cache. Any change made on
//! the host empties the cache, so a task never plans against state that an
//! earlier change may have made stale. The facts script and each change carry
//! probes the same way, and read-only commands travel as probes.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::host::HostState;
use super::task::{environment_exports, host_facts, item_vars};
use super::{PlayContext, Runner};
use crate::modules::{ExecOutput, ModuleKind};
use crate::playbook::{Task, TaskKind};
use crate::template::TemplateVars;
use crate::transport::{Become, Connection, TransportError};

/// The item range that reads every item of a loop.
const ALL_ITEMS: std::ops::Range<usize> = 0..usize::MAX;

/// The maximum number of probes in one batch, so that one round trip stays a reasonable size.
const MAX_BATCH: usize = 256;

/// Probe results of one host, by become user and script.
#[derive(Default)]
pub(super) struct ProbeCache {
    entries: HashMap<(Option<String>, String), ExecOutput>,
    /// The count of changes on the host's machine that the entries have seen.
    machine_changes: u64,
}

impl ProbeCache {
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Caches the outputs of `scripts`, run as `user`, in order.
    fn store(&mut self, user: Option<&str>, scripts: Vec<String>, outputs: Vec<ExecOutput>) {
        for (script, output) in scripts.into_iter().zip(outputs) {
            self.entries
                .insert((user.map(String::from), script), output);
        }
    }

    /// Returns the cached output of `script`. The entry stays: tasks with the same probe
    /// (several `ufw` rules read the same status) share one result until the host changes.
    fn get(&self, user: Option<&str>, script: &str) -> Option<ExecOutput> {
        self.entries
            .get(&(user.map(String::from), script.to_string()))
            .cloned()
    }
}

impl Runner<'_> {
    /// Empties the host's probe cache when another inventory name of the same machine
    /// has changed it since the cache was filled.
    fn forget_changed_machine(&self, state: &mut HostState) {
        let Some(machine) = &state.machine else {
            return;
        };
        let changes = self
            .machine_changes
            .lock()
            .map_or(0, |counts| counts.get(machine).copied().unwrap_or(0));
        if changes != state.probe_cache.machine_changes {
            tracing::debug!(host = %state.name, "another host changed this machine, probing again");
            state.probe_cache.clear();
            state.probe_cache.machine_changes = changes;
        }
    }

    /// Counts a change that has run on the host's machine, after the probes that ran after
    /// it have been cached. They stay valid unless another name of the machine changed it
    /// meanwhile.
    pub(super) fn count_machine_change(&self, state: &mut HostState) {
        let Some(machine) = &state.machine else {
            return;
        };
        let Ok(mut counts) = self.machine_changes.lock() else {
            return;
        };
        let count = counts.entry(machine.clone()).or_insert(0);
        let seen_all = *count == state.probe_cache.machine_changes;
        *count += 1;
        if seen_all {
            state.probe_cache.machine_changes = *count;
        }
    }

    /// Returns the output of `script`, from the cache or by running it in a batch
    /// with the probes of the tasks in `upcoming` and the rest of `task`'s loop.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn probe(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        connection: &Connection,
        task: &Task,
        script: String,
        r#become: Option<&Become>,
        upcoming: &[Task],
    ) -> Result<ExecOutput, TransportError> {
        self.forget_changed_machine(state);
        let user = r#become.map(|b| b.user.as_str());
        if let Some(output) = state.probe_cache.get(user, &script) {
            tracing::debug!(host = %state.name, "probe result taken from the batch");
            return Ok(output);
        }

        let mut scripts = vec![script.clone()];
        let this_task = std::slice::from_ref(task);
        // The items of the loop before this one have run already.
        let rest = state.loop_position.map_or(0, |(index, _)| index)..usize::MAX;
        if self.collect_probes(context, state, this_task, user, &mut scripts, rest) {
            self.collect_probes(context, state, upcoming, user, &mut scripts, ALL_ITEMS);
        }
        scripts.dedup();
        if scripts.len() == 1 {
            let output = connection.run_script(&script, r#become).await?;
            state
                .probe_cache
                .store(user, vec![script], vec![output.clone()]);
            return Ok(output);
        }

        tracing::debug!(host = %state.name, probes = scripts.len(), "running a probe batch");
        let batch = Batch::new(&scripts);
        let output = connection.run_script(&batch.script, r#become).await?;
        let outputs = match batch.parse(&output, scripts.len()) {
            Some(outputs) => outputs,
            None => {
                tracing::warn!(host = %state.name, "probe batch output was incomplete, probing alone");
                return connection.run_script(&script, r#become).await;
            }
        };
        state.probe_cache.store(user, scripts, outputs);
        Ok(state.probe_cache.get(user, &script).unwrap_or_default())
    }

    /// Runs a task's change and, after it in the same command, the probe of its loop's
    /// next item or, after the last item, the probes of the following tasks, which then
    /// read the changed host. Returns the change's own output.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply_and_probe(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        connection: &Connection,
        task: &Task,
        script: String,
        r#become: Option<&Become>,
        upcoming: &[Task],
    ) -> Result<ExecOutput, TransportError> {
        let user = r#become.map(|b| b.user.as_str());
        let mut scripts = vec![script];
        // Facts the change may have made stale are read again after it, in the same command.
        let refresh_facts = state.facts.is_some() && may_change_facts(task);
        if refresh_facts {
            scripts.push(crate::facts::SCRIPT.to_string());
        }
        let this_task = std::slice::from_ref(task);
        let read_upcoming = match state.loop_position {
            // Inside a loop only the next item is read: when every item changes, reading
            // all the rest after each change would cost time quadratic in the items.
            Some((index, count)) if task.r#loop.is_some() && index + 1 < count => {
                let next = index + 1..index + 2;
                self.collect_probes(context, state, this_task, user, &mut scripts, next);
                false
            }
            // The tasks after this one, even after a command: their probes run after it.
            _ => true,
        };
        if read_upcoming {
            self.collect_probes(context, state, upcoming, user, &mut scripts, ALL_ITEMS);
        }
        if scripts.len() == 1 {
            return connection.run_script(&scripts[0], r#become).await;
        }

        tracing::debug!(host = %state.name, probes = scripts.len() - 1, "running a change with a probe batch");
        let batch = Batch::new(&scripts);
        let output = connection.run_script(&batch.script, r#become).await?;
        let Some(mut outputs) = batch.parse(&output, scripts.len()) else {
            // The change may have run, so it is not tried again.
            return Err(TransportError::Exec(format!(
                "`{}`: the output of the change was cut short (exit status {}): {}",
                state.name,
                output.exit_code,
                output.stderr.trim()
            )));
        };
        let change = outputs.remove(0);
        if refresh_facts {
            let facts = outputs.remove(0);
            if facts.exit_code == 0 {
                state.facts = Some(crate::facts::as_vars(&crate::facts::parse(&facts.stdout)));
            } else {
                tracing::warn!(host = %state.name, "reading the facts again failed: {}", facts.stderr.trim());
            }
        }
        let skip = if refresh_facts { 2 } else { 1 };
        let probes = scripts.into_iter().skip(skip).collect();
        state.probe_cache.store(user, probes, outputs);
        Ok(change)
    }

    /// Runs the facts script and, in the same round trip, the probes of the play's tasks
    /// that need no become. Returns the facts script's own output.
    ///
    /// The facts are not known yet, so a task whose arguments or `when` need them is
    /// left out and probes when it runs. Facts run as the login user, because a batch
    /// through sudo would report root as the connected user.
    pub(super) async fn gather_with_probes(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        connection: &Connection,
    ) -> Result<ExecOutput, TransportError> {
        self.forget_changed_machine(state);
        let facts = crate::facts::SCRIPT;
        let mut scripts = vec![facts.to_string()];
        for section in &context.play.sections {
            if !self.collect_probes(
                context,
                state,
                &section.tasks,
                None,
                &mut scripts,
                ALL_ITEMS,
            ) {
                break;
            }
        }
        if scripts.len() == 1 {
            return connection.run_script(facts, None).await;
        }

        tracing::debug!(host = %state.name, probes = scripts.len() - 1, "gathering facts with a probe batch");
        let batch = Batch::new(&scripts);
        let output = connection.run_script(&batch.script, None).await?;
        let Some(mut outputs) = batch.parse(&output, scripts.len()) else {
            tracing::warn!(host = %state.name, "facts batch output was incomplete, gathering facts alone");
            return connection.run_script(facts, None).await;
        };
        let facts_output = outputs.remove(0);
        let probes = scripts.into_iter().skip(1).collect();
        state.probe_cache.store(None, probes, outputs);
        Ok(facts_output)
    }

    /// Adds the probe scripts of `tasks` that would run with the same become user.
    /// A task that cannot be rendered yet is left out: it probes when it runs.
    ///
    /// A read-only command (see [`is_query`]) is read ahead like a probe. Returns
    /// `false` where reading further ahead is wasted work: at a `command` or `shell`
    /// task that will run or may run, because vpsforge must assume it changes the host
    /// and empties the cache. A command whose `creates` or `removes` is known only
    /// from the host adds that probe and reading goes on, because on a converged host
    /// it usually does not run.
    fn collect_probes(
        &self,
        context: &PlayContext<'_>,
        state: &HostState,
        tasks: &[Task],
        user: Option<&str>,
        scripts: &mut Vec<String>,
        items: std::ops::Range<usize>,
    ) -> bool {
        for task in tasks {
            if scripts.len() >= MAX_BATCH {
                return false;
            }
            match &task.kind {
                TaskKind::Block { block, .. } => {
                    if !self.collect_probes(context, state, block, user, scripts, ALL_ITEMS) {
                        return false;
                    }
                }
                TaskKind::Meta(_) => {}
                TaskKind::Action {
                    module,
                    args,
                    arg_spans,
                } => {
                    let query = is_query(task);
                    // A command that may change the host, whose run cannot be ruled out here.
                    let changing_command = matches!(module.name, "command" | "shell") && !query;
                    if module.kind != ModuleKind::Remote
                        || task.delegate_to.is_some()
                        || !self.tags_allow(&task.tags)
                    {
                        continue;
                    }
                    let vars = self.task_vars(state, context, task);
                    let become_user = self.become_for(state, context, task, &vars).map(|b| b.user);
                    if become_user.as_deref() != user {
                        if changing_command {
                            return false;
                        }
                        continue;
                    }
                    let iterations: Vec<Map<String, Value>> = match &task.r#loop {
                        None => vec![vars],
                        Some(spec) => match self.loop_items(spec, task.loop_conversion, &vars) {
                            Ok(loop_items) => loop_items
                                .iter()
                                .enumerate()
                                .filter(|(index, _)| items.contains(index))
                                .map(|(index, item)| item_vars(task, &vars, index, item))
                                .collect(),
                            Err(_) if changing_command => return false,
                            Err(_) => continue,
                        },
                    };
                    let facts = host_facts(state);
                    for iteration in iterations {
                        let scope = self
                            .templar
                            .scope(TemplateVars::new(Value::Object(iteration)));
                        let applies = task.when.iter().try_fold(true, |applies, condition| {
                            Some(applies && scope.eval_condition(&condition.expr).ok()?)
                        });
                        match applies {
                            Some(true) => {}
                            Some(false) => continue,
                            None if changing_command => return false,
                            None => continue,
                        }
                        let rendered = self.render_args(task, args, arg_spans, &scope);
                        let action = rendered.as_ref().ok().and_then(|rendered| {
                            self.build_action(context, task, module, rendered, &scope, &facts)
                                .ok()
                        });
                        let exports = environment_exports(task, &scope).ok();
                        let (Ok(rendered), Some(action), Some(exports)) =
                            (rendered, action, exports)
                        else {
                            if changing_command {
                                return false;
                            }
                            continue;
                        };
                        if query {
                            if let Some(script) = query_script(action.as_ref(), state, &facts) {
                                let script = format!("{exports}{script}");
                                if !scripts.contains(&script) {
                                    scripts.push(script);
                                }
                            }
                            continue;
                        }
                        if let Some(probe) = action.probe().map(|probe| format!("{exports}{probe}"))
                        {
                            if !scripts.contains(&probe) {
                                scripts.push(probe);
                            }
                        }
                        let decided_by_files =
                            rendered.contains_key("creates") || rendered.contains_key("removes");
                        if changing_command && !decided_by_files {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }
}

/// Returns whether `task` is a read-only command: a `command` or `shell` task with
/// `changed_when: false` and `check_mode: false`. That pair declares that the command only
/// reads, since it runs even under `--check` and never reports a change, so vpsforge
/// runs it like a probe: read ahead in a batch, its result shared until the host
/// changes, and it empties no cache.
pub(super) fn is_query(task: &Task) -> bool {
    let TaskKind::Action { module, .. } = &task.kind else {
        return false;
    };
    let never_changes = match task.changed_when.as_deref() {
        Some([condition]) => matches!(condition.expr.trim(), "false" | "False"),
        _ => false,
    };
    matches!(module.name, "command" | "shell") && task.check_mode == Some(false) && never_changes
}

/// Returns whether a change by `task` can alter the gathered facts: packages (the
/// OpenSSL and Python versions), the time zone, and commands, which can do anything.
fn may_change_facts(task: &Task) -> bool {
    matches!(
        &task.kind,
        TaskKind::Action { module, .. }
            if matches!(module.name, "apt" | "package" | "timezone" | "command" | "shell")
    )
}

/// Returns the script a read-only command runs, when it does not depend on a probe.
fn query_script(
    action: &dyn crate::modules::Action,
    state: &HostState,
    facts: &Value,
) -> Option<String> {
    if action.probe().is_some() {
        return None;
    }
    let view = crate::modules::HostView {
        check_mode: false,
        facts,
        predicted: &state.predictions,
    };
    action.plan(&ExecOutput::default(), &view).ok()?.apply
}

/// A batch: one script that runs several scripts in turn, each in a subshell, and the
/// random marker that separates their outputs.
///
/// Each script's output goes straight to the batch's standard output and error, with a
/// marker line after it, so a batch costs no process per script beyond its subshell. The
/// marker is random per batch, so no file the probes read can contain it by accident.
pub(super) struct Batch {
    pub script: String,
    marker: String,
}

impl Batch {
    pub fn new(scripts: &[String]) -> Batch {
        let mut bytes = [0u8; 16];
        // Without the system's random source, the clock and the process ID still make
        // a marker that no file contains by accident.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            bytes = (nanos ^ u128::from(std::process::id())).to_le_bytes();
        }
        let marker: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let marker = format!("VPSFORGE-{marker}");
        let mut script = format!(
            "vf_m={marker}\nprintf '%s begin\\n' \"$vf_m\"\nprintf '%s begin\\n' \"$vf_m\" >&2\n"
        );
        for probe in scripts {
            script.push_str("(\n");
            script.push_str(probe);
            if !probe.ends_with('\n') {
                script.push('\n');
            }
            script.push_str(
                ") </dev/null\nvf_s=$?\nprintf '\\n%s %s\\n' \"$vf_m\" \"$vf_s\"\nprintf '\\n%s\\n' \"$vf_m\" >&2\n",
            );
        }
        script.push_str("printf '%s end\\n' \"$vf_m\"\n");
        Batch { script, marker }
    }

    /// Splits a batch's output into one `ExecOutput` per script, or `None` when it is
    /// incomplete.
    pub fn parse(&self, output: &ExecOutput, count: usize) -> Option<Vec<ExecOutput>> {
        let begin = format!("{} begin\n", self.marker);
        let after_stdout = format!("\n{} ", self.marker);
        let after_stderr = format!("\n{}\n", self.marker);

        let stdout = &output.stdout;
        let mut rest = &stdout[stdout.find(&begin)? + begin.len()..];
        let mut stderr_rest = {
            let stderr = &output.stderr;
            &stderr[stderr.find(&begin)? + begin.len()..]
        };
        let mut outputs = Vec::with_capacity(count);
        for _ in 0..count {
            let at = rest.find(&after_stdout)?;
            let out = &rest[..at];
            let status_line = &rest[at + after_stdout.len()..];
            let line_end = status_line.find('\n')?;
            let exit_code: i32 = status_line[..line_end].parse().ok()?;
            rest = &status_line[line_end + 1..];

            let at = stderr_rest.find(&after_stderr)?;
            let err = &stderr_rest[..at];
            stderr_rest = &stderr_rest[at + after_stderr.len()..];

            outputs.push(ExecOutput {
                exit_code,
                stdout: out.to_string(),
                stderr: err.to_string(),
            });
        }
        rest.starts_with(&format!("{} end\n", self.marker))
            .then_some(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(batch: &Batch) -> ExecOutput {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&batch.script)
            .output()
            .unwrap();
        ExecOutput {
            exit_code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[test]
    fn batch_runs_each_probe_apart() {
        let scripts = vec![
            "echo one; echo err >&2; exit 3".to_string(),
            "printf 'no newline'".to_string(),
            "exit 0".to_string(),
            "cat; echo after-stdin".to_string(),
            "printf '\\n\\n'; printf 'x' >&2".to_string(),
            "cd /; vf_m=other; echo VPSFORGE-0 0".to_string(),
            "pwd".to_string(),
        ];
        let batch = Batch::new(&scripts);
        let results = batch.parse(&run(&batch), scripts.len()).unwrap();
        let seen: Vec<(i32, &str, &str)> = results
            .iter()
            .map(|r| (r.exit_code, r.stdout.as_str(), r.stderr.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (3, "one\n", "err\n"),
                (0, "no newline", ""),
                (0, "", ""),
                // Probes must not read the batch's standard input.
                (0, "after-stdin\n", ""),
                (0, "\n\n", "x"),
                (0, "VPSFORGE-0 0\n", ""),
                // A probe's `cd` and variables stay in its subshell.
                (
                    0,
                    &format!("{}\n", std::env::current_dir().unwrap().display()),
                    ""
                ),
            ]
        );
    }

    #[test]
    fn markers_differ_between_batches() {
        let scripts = vec!["true".to_string()];
        assert_ne!(Batch::new(&scripts).marker, Batch::new(&scripts).marker);
    }

    #[test]
    fn incomplete_batch_is_rejected() {
        let scripts = vec!["echo a".to_string(), "echo b".to_string()];
        let batch = Batch::new(&scripts);
        let output = run(&batch);
        assert!(batch.parse(&output, 2).is_some());
        let cut = ExecOutput {
            stdout: output.stdout[..output.stdout.find(" end\n").unwrap()].to_string(),
            ..output.clone()
        };
        assert!(batch.parse(&cut, 2).is_none());
        assert!(batch.parse(&output, 3).is_none());
        let other = Batch::new(&scripts);
        assert!(
            other.parse(&output, 2).is_none(),
            "another batch's marker must not match"
        );
    }
}
