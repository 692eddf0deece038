//! Reading host state for many tasks in one round trip.
//!
//! When a task needs its probe and the host's probe cache has no result, the
//! executor also renders the tasks that follow it and the remaining items of
//! its loop. It runs all their probe scripts as one batch script, and later
//! tasks then find their results in the cache. Any change made on
//! the host empties the cache, so a task never plans against state that an
//! earlier change may have made stale.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::host::HostState;
use super::task::{environment_exports, host_facts, item_vars};
use super::{PlayContext, Runner};
use crate::modules::{ExecOutput, ModuleKind};
use crate::playbook::{Task, TaskKind};
use crate::template::TemplateVars;
use crate::transport::{Become, Connection, TransportError};

/// The maximum number of probes in one batch, so that one round trip stays a reasonable size.
const MAX_BATCH: usize = 256;

/// Probe results of one host, by become user and script.
#[derive(Default)]
pub(super) struct ProbeCache {
    entries: HashMap<(Option<String>, String), ExecOutput>,
}

impl ProbeCache {
    pub fn clear(&mut self) {
        self.entries.clear();
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
        let user = r#become.map(|b| b.user.as_str());
        if let Some(output) = state.probe_cache.get(user, &script) {
            tracing::debug!(host = %state.name, "probe result taken from the batch");
            return Ok(output);
        }

        let mut scripts = vec![script.clone()];
        let this_task = std::slice::from_ref(task);
        if self.collect_probes(context, state, this_task, user, &mut scripts) {
            self.collect_probes(context, state, upcoming, user, &mut scripts);
        }
        scripts.dedup();
        if scripts.len() == 1 {
            let output = connection.run_script(&script, r#become).await?;
            state
                .probe_cache
                .entries
                .insert((user.map(String::from), script), output.clone());
            return Ok(output);
        }

        tracing::debug!(host = %state.name, probes = scripts.len(), "running a probe batch");
        let output = connection
            .run_script(&batch_script(&scripts), r#become)
            .await?;
        let outputs = match parse_batch(&output.stdout, scripts.len()) {
            Some(outputs) => outputs,
            None => {
                tracing::warn!(host = %state.name, "probe batch output was incomplete, probing alone");
                return connection.run_script(&script, r#become).await;
            }
        };
        for (probe, result) in scripts.into_iter().zip(outputs) {
            state
                .probe_cache
                .entries
                .insert((user.map(String::from), probe), result);
        }
        Ok(state.probe_cache.get(user, &script).unwrap_or_default())
    }

    /// Runs a task's change and, after it in the same command, the probes of the rest
    /// of its loop and of the following tasks, which then read the changed host.
    /// Returns the change's own output.
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
        if self.collect_probes(
            context,
            state,
            std::slice::from_ref(task),
            user,
            &mut scripts,
        ) {
            self.collect_probes(context, state, upcoming, user, &mut scripts);
        }
        if scripts.len() == 1 {
            return connection.run_script(&scripts[0], r#become).await;
        }

        tracing::debug!(host = %state.name, probes = scripts.len() - 1, "running a change with a probe batch");
        let output = connection
            .run_script(&batch_script(&scripts), r#become)
            .await?;
        let Some(mut outputs) = parse_batch(&output.stdout, scripts.len()) else {
            // The change may have run, so it is not tried again.
            return Err(TransportError::Exec(format!(
                "`{}`: the output of the change was cut short (exit status {}): {}",
                state.name,
                output.exit_code,
                output.stderr.trim()
            )));
        };
        let change = outputs.remove(0);
        for (probe, result) in scripts.into_iter().skip(1).zip(outputs) {
            state
                .probe_cache
                .entries
                .insert((user.map(String::from), probe), result);
        }
        Ok(change)
    }

    /// Runs the facts script and, in the same round trip, the probes of the play's tasks
    /// that need no become. Returns the facts script's own output.
    ///
    /// The facts are not known yet, so a task whose arguments or `when` need them is
    /// left out and probes when it runs. Facts run as the login user, as before: a batch
    /// through sudo would report root as the connected user.
    pub(super) async fn gather_with_probes(
        &self,
        context: &PlayContext<'_>,
        state: &mut HostState,
        connection: &Connection,
    ) -> Result<ExecOutput, TransportError> {
        let facts = crate::facts::SCRIPT;
        let mut scripts = vec![facts.to_string()];
        for section in &context.play.sections {
            if !self.collect_probes(context, state, &section.tasks, None, &mut scripts) {
                break;
            }
        }
        if scripts.len() == 1 {
            return connection.run_script(facts, None).await;
        }

        tracing::debug!(host = %state.name, probes = scripts.len() - 1, "gathering facts with a probe batch");
        let output = connection.run_script(&batch_script(&scripts), None).await?;
        let Some(mut outputs) = parse_batch(&output.stdout, scripts.len()) else {
            tracing::warn!(host = %state.name, "facts batch output was incomplete, gathering facts alone");
            return connection.run_script(facts, None).await;
        };
        let facts_output = outputs.remove(0);
        for (probe, result) in scripts.into_iter().skip(1).zip(outputs) {
            state.probe_cache.entries.insert((None, probe), result);
        }
        Ok(facts_output)
    }

    /// Adds the probe scripts of `tasks` that would run with the same become user.
    /// A task that cannot be rendered yet is left out: it probes when it runs.
    /// Returns `false` where reading further ahead is wasted work: at a `command`
    /// or `shell` task, which vpsforge must assume changes the host, so the cache
    /// is emptied when it runs.
    fn collect_probes(
        &self,
        context: &PlayContext<'_>,
        state: &HostState,
        tasks: &[Task],
        user: Option<&str>,
        scripts: &mut Vec<String>,
    ) -> bool {
        for task in tasks {
            if scripts.len() >= MAX_BATCH {
                return false;
            }
            match &task.kind {
                TaskKind::Block { block, .. } => {
                    if !self.collect_probes(context, state, block, user, scripts) {
                        return false;
                    }
                }
                TaskKind::Meta(_) => {}
                TaskKind::Action {
                    module,
                    args,
                    arg_spans,
                } => {
                    if matches!(module.name, "command" | "shell") {
                        return false;
                    }
                    if module.kind != ModuleKind::Remote
                        || task.delegate_to.is_some()
                        || !self.tags_allow(&task.tags)
                    {
                        continue;
                    }
                    let vars = self.task_vars(state, context, task);
                    let become_user = self.become_for(state, context, task, &vars).map(|b| b.user);
                    if become_user.as_deref() != user {
                        continue;
                    }
                    let iterations: Vec<Map<String, Value>> = match &task.r#loop {
                        None => vec![vars],
                        Some(spec) => match self.loop_items(spec, task.loop_conversion, &vars) {
                            Ok(items) => items
                                .iter()
                                .enumerate()
                                .map(|(index, item)| item_vars(task, &vars, index, item))
                                .collect(),
                            Err(_) => continue,
                        },
                    };
                    let facts = host_facts(state);
                    for iteration in iterations {
                        let scope = self
                            .templar
                            .scope(TemplateVars::new(Value::Object(iteration)));
                        let applies = task.when.iter().all(|condition| {
                            scope.eval_condition(&condition.expr).unwrap_or(false)
                        });
                        if !applies {
                            continue;
                        }
                        let Ok(rendered) = self.render_args(task, args, arg_spans, &scope) else {
                            continue;
                        };
                        let Ok(action) =
                            self.build_action(context, task, module, &rendered, &scope, &facts)
                        else {
                            continue;
                        };
                        let Ok(exports) = environment_exports(task, &scope) else {
                            continue;
                        };
                        if let Some(probe) = action.probe().map(|probe| format!("{exports}{probe}"))
                        {
                            if !scripts.contains(&probe) {
                                scripts.push(probe);
                            }
                        }
                    }
                }
            }
        }
        true
    }
}

/// Returns one script that runs each probe in a subshell and prints, for each, a
/// header with its index and exit status, then its standard output and error in base64.
pub(super) fn batch_script(scripts: &[String]) -> String {
    let mut batch = String::from("vf_dir=$(mktemp -d) || exit 1\ntrap 'rm -rf \"$vf_dir\"' EXIT\n");
    for (index, script) in scripts.iter().enumerate() {
        batch.push_str("(\n");
        batch.push_str(script);
        if !script.ends_with('\n') {
            batch.push('\n');
        }
        batch.push_str(") >\"$vf_dir/out\" 2>\"$vf_dir/err\" </dev/null\n");
        batch.push_str(&format!(
            "printf 'VPSFORGE-PROBE %s %s\\n' {index} \"$?\"\nbase64 <\"$vf_dir/out\"\necho VPSFORGE-STDERR\nbase64 <\"$vf_dir/err\"\n"
        ));
    }
    batch.push_str("echo VPSFORGE-END\n");
    batch
}

/// Parses a batch's output into one `ExecOutput` per probe, or `None` when it is incomplete.
pub(super) fn parse_batch(output: &str, count: usize) -> Option<Vec<ExecOutput>> {
    // Each probe's part: exit status, base64 standard output, base64 standard error.
    let mut parts: Vec<(i32, String, String)> = Vec::with_capacity(count);
    let mut in_stderr = false;
    let mut ended = false;
    for line in output.lines() {
        if let Some(header) = line.strip_prefix("VPSFORGE-PROBE ") {
            let mut fields = header.split(' ');
            let index: usize = fields.next()?.parse().ok()?;
            if index != parts.len() {
                return None;
            }
            let exit_code: i32 = fields.next()?.parse().ok()?;
            parts.push((exit_code, String::new(), String::new()));
            in_stderr = false;
        } else if line == "VPSFORGE-STDERR" {
            in_stderr = true;
        } else if line == "VPSFORGE-END" {
            ended = true;
            break;
        } else {
            let part = parts.last_mut()?;
            if in_stderr {
                part.2.push_str(line);
            } else {
                part.1.push_str(line);
            }
        }
    }
    if !ended || parts.len() != count {
        return None;
    }
    let decode = |text: &str| -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    };
    parts
        .into_iter()
        .map(|(exit_code, stdout, stderr)| {
            Some(ExecOutput {
                exit_code,
                stdout: decode(&stdout)?,
                stderr: decode(&stderr)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_runs_each_probe_apart() {
        let scripts = vec![
            "echo one; echo err >&2; exit 3".to_string(),
            "printf 'no newline'".to_string(),
            "exit 0".to_string(),
            "cat; echo after-stdin".to_string(),
        ];
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(batch_script(&scripts))
            .output()
            .unwrap();
        let results = parse_batch(&String::from_utf8_lossy(&output.stdout), scripts.len()).unwrap();
        assert_eq!(results.len(), 4);
        assert_eq!(
            (
                results[0].exit_code,
                results[0].stdout.as_str(),
                results[0].stderr.as_str()
            ),
            (3, "one\n", "err\n")
        );
        assert_eq!(results[1].stdout, "no newline");
        assert_eq!(results[2].exit_code, 0);
        assert_eq!(results[2].stdout, "");
        assert_eq!(
            results[3].stdout, "after-stdin\n",
            "probes must not read the batch's standard input"
        );
    }

    #[test]
    fn incomplete_batch_is_rejected() {
        let scripts = vec!["echo a".to_string(), "echo b".to_string()];
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(batch_script(&scripts))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let truncated = &text[..text.find("VPSFORGE-END").unwrap()];
        assert!(parse_batch(truncated, 2).is_none());
        assert!(parse_batch(&text, 3).is_none());
    }
}
