//! Runs plays across hosts: Ansible's linear strategy, handlers, loops, check mode.
//!
//! Every task runs on all active hosts of the batch before the next task starts.
//! Hosts work in parallel, at most `forks` at a time, over one connection each
//! that stays open for the whole run. A host that fails or cannot be reached
//! leaves the play; the others go on, and the recap reports it.

mod controller;
mod host;
mod probe;
mod task;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::inventory::Inventory;
use crate::playbook::{MetaAction, Play, Playbook, SectionKind, Serial, Task, TaskKind};
use crate::report::{Event, HostResult, Redactor, Reporter, Stats, Status};
use crate::secret::Secret;
use crate::template::Templar;
use crate::transport::HostKeyPolicy;

use host::HostState;

/// Settings of one `apply` run, from the command line.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    pub limit: Option<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub extra_vars: Map<String, Value>,
    pub forks: usize,
    pub remote_user: Option<String>,
    pub r#become: bool,
    pub become_password: Option<Secret>,
    pub host_key_policy: HostKeyPolicy,
    pub known_hosts: Vec<PathBuf>,
    /// Zero means not set: the ssh config's `ConnectTimeout` applies, else the transport's default.
    pub connect_timeout: Duration,
    pub verbose: u8,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            check: false,
            diff: false,
            limit: None,
            tags: Vec::new(),
            skip_tags: Vec::new(),
            extra_vars: Map::new(),
            forks: 20,
            remote_user: None,
            r#become: false,
            become_password: None,
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts: Vec::new(),
            connect_timeout: Duration::ZERO,
            verbose: 0,
        }
    }
}

/// The outcome of a run, for the exit code.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub stats: BTreeMap<String, Stats>,
}

impl RunSummary {
    pub fn failed(&self) -> bool {
        self.stats
            .values()
            .any(|s| s.failed > 0 || s.unreachable > 0)
    }

    pub fn changed(&self) -> bool {
        self.stats.values().any(|s| s.changed > 0)
    }
}

/// Applies the playbooks in order to the inventory's hosts.
pub async fn run(
    playbooks: &[Playbook],
    inventory: &Inventory,
    options: &RunOptions,
    reporter: Arc<dyn Reporter>,
    redactor: Arc<Redactor>,
) -> RunSummary {
    let runner = Runner {
        inventory,
        options,
        reporter,
        redactor,
        templar: Templar::new().with_shared_vars(host::shared_vars(inventory)),
        forks: Arc::new(Semaphore::new(options.forks.max(1))),
        machine_changes: Default::default(),
    };
    if let Some(password) = &options.become_password {
        runner.redactor.add(password.expose());
    }
    runner.hide_secret_vars(&options.extra_vars);

    let mut states: BTreeMap<String, HostState> = BTreeMap::new();
    for playbook in playbooks {
        let playbook_dir = playbook
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."));
        for play in &playbook.plays {
            runner.run_play(play, &playbook_dir, &mut states).await;
        }
    }

    let stats: BTreeMap<String, Stats> = states
        .into_iter()
        .map(|(name, state)| {
            let mut stats = state.stats;
            stats.commands = state.connection.as_ref().map_or(0, |c| c.commands());
            (name, stats)
        })
        .collect();
    runner.reporter.event(Event::Recap(&stats));
    for state_name in stats.keys() {
        tracing::debug!(host = %state_name, "run finished");
    }
    RunSummary { stats }
}

struct Runner<'a> {
    inventory: &'a Inventory,
    options: &'a RunOptions,
    reporter: Arc<dyn Reporter>,
    redactor: Arc<Redactor>,
    templar: Templar,
    forks: Arc<Semaphore>,
    /// How many changes ran on each machine (`HostState::machine`), so that a host whose
    /// machine another inventory name has changed empties its probe cache.
    machine_changes: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

/// State shared by the tasks of one play.
struct PlayContext<'a> {
    play: &'a Play,
    playbook_dir: PathBuf,
    /// Set when `any_errors_fatal` or `max_fail_percentage` ends the play for every host.
    aborted: std::sync::atomic::AtomicBool,
    /// Defaults and vars of every role in the play, visible to all its tasks as with
    /// Ansible's default `private_role_vars = false`.
    role_defaults: Map<String, Value>,
    role_vars: Map<String, Value>,
}

impl PlayContext<'_> {
    fn is_aborted(&self) -> bool {
        self.aborted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Runner<'_> {
    async fn run_play(
        &self,
        play: &Play,
        playbook_dir: &std::path::Path,
        states: &mut BTreeMap<String, HostState>,
    ) {
        let name = play.name.clone().unwrap_or_else(|| play.hosts.clone());
        let hosts = match self.select_hosts(play) {
            Ok(hosts) => hosts,
            Err(message) => {
                self.reporter.event(Event::PlayStart {
                    name: &name,
                    hosts: &[],
                });
                self.reporter.event(Event::Warning(&message));
                return;
            }
        };
        for host in &hosts {
            if !states.contains_key(host) {
                let state = HostState::new(host, self.inventory);
                self.hide_secret_vars(&state.inventory_vars);
                states.insert(host.clone(), state);
            }
        }
        // Hosts that failed or were unreachable in an earlier play stay out, as in Ansible.
        let hosts: Vec<String> = hosts
            .into_iter()
            .filter(|h| states.get(h).is_some_and(|s| !s.failed && !s.unreachable))
            .collect();
        self.reporter.event(Event::PlayStart {
            name: &name,
            hosts: &hosts,
        });
        if hosts.is_empty() {
            self.reporter
                .event(Event::Warning("no hosts left to run this play on"));
            return;
        }

        let (role_defaults, role_vars) = play_role_vars(play);
        let context = PlayContext {
            play,
            playbook_dir: playbook_dir.to_path_buf(),
            aborted: std::sync::atomic::AtomicBool::new(false),
            role_defaults,
            role_vars,
        };
        // The play's hosts are the same for every host, so every render shares them.
        for name in ["ansible_play_hosts", "play_hosts", "ansible_play_hosts_all"] {
            self.templar
                .set_shared_var(name, Value::from(hosts.clone()));
        }
        for batch in batches(&hosts, &play.serial) {
            if context.is_aborted() {
                break;
            }
            self.templar
                .set_shared_var("ansible_play_batch", Value::from(batch.clone()));
            let mut batch_states: Vec<HostState> =
                batch.iter().filter_map(|h| states.remove(h)).collect();
            for state in &mut batch_states {
                // `meta: end_host` and `end_play` end the current play only.
                state.ended = false;
            }
            self.run_batch(&context, &mut batch_states).await;
            // When every host of a rolling batch failed, Ansible stops the play.
            if !play.serial.is_empty() && batch_states.iter().all(|s| s.failed || s.unreachable) {
                context
                    .aborted
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            for state in batch_states {
                states.insert(state.name.clone(), state);
            }
        }
    }

    fn select_hosts(&self, play: &Play) -> Result<Vec<String>, String> {
        let pattern = self
            .templar
            .render_str(&play.hosts, &Value::Object(self.options.extra_vars.clone()))
            .map_err(|e| format!("invalid host pattern `{}`: {e}", play.hosts))?;
        let mut hosts = self
            .inventory
            .select(&pattern)
            .map_err(|e| format!("no hosts matched `{pattern}`: {}", e.message))?;
        if let Some(limit) = &self.options.limit {
            let allowed: BTreeSet<String> = self
                .inventory
                .select(limit)
                .map_err(|e| format!("no hosts matched the limit `{limit}`: {}", e.message))?
                .into_iter()
                .collect();
            hosts.retain(|h| allowed.contains(h));
        }
        if hosts.is_empty() {
            return Err(format!("no hosts matched `{pattern}`, skipping this play"));
        }
        Ok(hosts)
    }

    async fn run_batch(&self, context: &PlayContext<'_>, states: &mut [HostState]) {
        let play = context.play;
        let all: BTreeSet<usize> = (0..states.len()).collect();

        self.load_vars_files(context, states);
        if play.gather_facts {
            self.gather_facts(context, states, &all).await;
        }

        for (index, section) in play.sections.iter().enumerate() {
            let active: BTreeSet<usize> = all
                .iter()
                .copied()
                .filter(|i| states[*i].active())
                .collect();
            let failed = self
                .run_list(context, &section.tasks, states, &active)
                .await;
            self.mark_failed(states, &failed);
            // Ansible flushes handlers after pre_tasks, after roles and tasks together, and
            // after post_tasks, so role tasks and play tasks share one flush.
            let next = play.sections.get(index + 1).map(|s| s.kind);
            let roles_then_tasks =
                section.kind == SectionKind::Roles && next == Some(SectionKind::Tasks);
            if !roles_then_tasks {
                self.flush_handlers(context, states, false).await;
            }
        }
        // Handlers notified before a host failed still run for it, so a changed
        // configuration is never left unloaded.
        self.flush_handlers(context, states, true).await;
    }

    fn mark_failed(&self, states: &mut [HostState], failed: &BTreeSet<usize>) {
        for index in failed {
            let state = &mut states[*index];
            if !state.failed && !state.unreachable {
                state.failed = true;
                state.stats.failed += 1;
            }
        }
    }

    fn load_vars_files(&self, context: &PlayContext<'_>, states: &mut [HostState]) {
        for state in states.iter_mut() {
            state.vars_files = Map::new();
            state.play_vars = context.play.vars.clone();
            for file in &context.play.vars_files {
                let vars = Value::Object(self.base_vars(state, context));
                let path = match self.templar.render_str(file, &vars) {
                    Ok(path) => context.playbook_dir.join(path),
                    Err(error) => {
                        state.setup_error =
                            Some(format!("cannot render vars_files entry `{file}`: {error}"));
                        continue;
                    }
                };
                match crate::vars::load_vars_file(&path) {
                    Ok(vars) => {
                        self.hide_secret_vars(&vars);
                        state.vars_files.extend(vars);
                    }
                    Err(error) => state.setup_error = Some(error.to_string()),
                }
            }
        }
    }

    async fn gather_facts(
        &self,
        context: &PlayContext<'_>,
        states: &mut [HostState],
        members: &BTreeSet<usize>,
    ) {
        self.reporter.event(Event::TaskStart {
            name: "Gathering Facts",
            hosts: members.len(),
        });
        let results = self
            .on_hosts(states, members, |state| async move {
                if state.facts.is_some() {
                    return vec![ok_result(&state.name, "facts already gathered")];
                }
                match self.connection(state, context).await {
                    Err(result) => vec![result],
                    Ok(connection) => {
                        match self.gather_with_probes(context, state, &connection).await {
                            Ok(output) if output.exit_code == 0 => {
                                state.facts = Some(crate::facts::as_vars(&crate::facts::parse(
                                    &output.stdout,
                                )));
                                vec![ok_result(&state.name, "")]
                            }
                            Ok(output) => vec![failed_result(
                                &state.name,
                                format!(
                                    "gathering facts failed with exit status {}: {}",
                                    output.exit_code,
                                    output.stderr.trim()
                                ),
                            )],
                            Err(error) => {
                                state.unreachable = true;
                                vec![HostResult {
                                    status: Status::Unreachable,
                                    ..failed_result(&state.name, error.to_string())
                                }]
                            }
                        }
                    }
                }
            })
            .await;
        let failed = self.report_results(states, results);
        self.mark_failed(states, &failed);
    }

    /// Runs `tasks` in order on the hosts in `members`, returning the hosts that failed.
    fn run_list<'s>(
        &'s self,
        context: &'s PlayContext<'s>,
        tasks: &'s [Task],
        states: &'s mut [HostState],
        members: &'s BTreeSet<usize>,
    ) -> futures::future::LocalBoxFuture<'s, BTreeSet<usize>> {
        Box::pin(async move {
            let mut active = members.clone();
            let mut failed = BTreeSet::new();
            for (position, task) in tasks.iter().enumerate() {
                let upcoming = &tasks[position + 1..];
                if context.is_aborted() {
                    break;
                }
                active.retain(|i| states[*i].active());
                if active.is_empty() {
                    break;
                }
                match &task.kind {
                    TaskKind::Block {
                        block,
                        rescue,
                        always,
                    } => {
                        let block_failed = self.run_list(context, block, states, &active).await;
                        let mut still_failed = block_failed.clone();
                        if !rescue.is_empty() && !block_failed.is_empty() {
                            let rescue_failed =
                                self.run_list(context, rescue, states, &block_failed).await;
                            for index in block_failed.difference(&rescue_failed) {
                                states[*index].stats.rescued += 1;
                            }
                            still_failed = rescue_failed;
                        }
                        if !always.is_empty() {
                            let entered: BTreeSet<usize> = active
                                .iter()
                                .copied()
                                .filter(|i| !states[*i].unreachable)
                                .collect();
                            still_failed
                                .extend(self.run_list(context, always, states, &entered).await);
                        }
                        for index in still_failed {
                            active.remove(&index);
                            failed.insert(index);
                        }
                    }
                    TaskKind::Meta(action) => {
                        self.run_meta(context, *action, task, states, &active).await;
                    }
                    TaskKind::Action { .. } => {
                        if !self.tags_allow(&task.tags) {
                            continue;
                        }
                        self.reporter.event(Event::TaskStart {
                            name: &task_title(task),
                            hosts: active.len(),
                        });
                        let targets: BTreeSet<usize> = if task.run_once {
                            active.iter().take(1).copied().collect()
                        } else {
                            active.clone()
                        };
                        let results = self
                            .on_hosts(states, &targets, |state| async move {
                                self.run_task(context, state, task, upcoming).await
                            })
                            .await;
                        if task.run_once {
                            share_run_once_result(task, states, &targets, &active);
                        }
                        let newly_failed = self.report_results(states, results);
                        if !newly_failed.is_empty()
                            && self.fails_play(context, states, newly_failed.len())
                        {
                            context
                                .aborted
                                .store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        for index in newly_failed {
                            active.remove(&index);
                            failed.insert(index);
                        }
                    }
                }
            }
            failed
        })
    }

    async fn run_meta(
        &self,
        context: &PlayContext<'_>,
        action: MetaAction,
        task: &Task,
        states: &mut [HostState],
        active: &BTreeSet<usize>,
    ) {
        match action {
            MetaAction::FlushHandlers => self.flush_handlers(context, states, false).await,
            MetaAction::Noop => {}
            MetaAction::EndPlay | MetaAction::EndHost => {
                for index in active {
                    let state = &mut states[*index];
                    let vars = Value::Object(self.task_vars(state, context, task));
                    let applies = task.when.iter().all(|c| {
                        self.templar
                            .scope(crate::template::TemplateVars::new(vars.clone()))
                            .eval_condition(&c.expr)
                            .unwrap_or(false)
                    });
                    if applies {
                        state.ended = true;
                    }
                }
            }
        }
    }

    /// Runs the handlers notified so far, in definition order, and clears the notifications.
    async fn flush_handlers(
        &self,
        context: &PlayContext<'_>,
        states: &mut [HostState],
        include_failed: bool,
    ) {
        for handler in &context.play.handlers {
            let mut topics = vec![handler.display_name()];
            topics.extend(handler.listen.iter().cloned());
            let notified: BTreeSet<usize> = (0..states.len())
                .filter(|i| {
                    let state = &states[*i];
                    let eligible =
                        state.active() || (include_failed && state.failed && !state.unreachable);
                    eligible && topics.iter().any(|t| state.notified.contains(t))
                })
                .collect();
            if notified.is_empty() {
                continue;
            }
            for index in &notified {
                // A host that already failed runs its handlers, but must not be marked active again.
                let state = &mut states[*index];
                state.running_handlers_after_failure = state.failed;
            }
            self.reporter.event(Event::TaskStart {
                name: &format!("RUNNING HANDLER [{}]", handler.display_name()),
                hosts: notified.len(),
            });
            let results = self
                .on_hosts(states, &notified, |state| async move {
                    self.run_task(context, state, handler, &[]).await
                })
                .await;
            let failed = self.report_results(states, results);
            for index in &notified {
                let state = &mut states[*index];
                state.running_handlers_after_failure = false;
                for topic in &topics {
                    state.notified.remove(topic);
                }
            }
            self.mark_failed(states, &failed);
        }
    }

    /// Runs `work` on each host of `members` concurrently, at most `forks` at a time,
    /// and returns the results by host index.
    async fn on_hosts<'s, F, Fut>(
        &'s self,
        states: &'s mut [HostState],
        members: &BTreeSet<usize>,
        work: F,
    ) -> Vec<(usize, Vec<HostResult>)>
    where
        F: Fn(&'s mut HostState) -> Fut,
        Fut: std::future::Future<Output = Vec<HostResult>> + 's,
    {
        let total = members.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let done = &done;
        let futures = states
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| members.contains(i))
            .map(|(index, state)| {
                let future = work(state);
                let forks = self.forks.clone();
                async move {
                    let _permit = forks.acquire_owned().await;
                    let results = future.await;
                    let finished = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    self.reporter.progress(finished, total);
                    (index, results)
                }
            });
        let results = futures::future::join_all(futures).await;
        self.reporter.finish_progress();
        results
    }

    /// Prints results in host order, counts them, and returns the hosts that failed.
    fn report_results(
        &self,
        states: &mut [HostState],
        results: Vec<(usize, Vec<HostResult>)>,
    ) -> BTreeSet<usize> {
        let mut failed = BTreeSet::new();
        for (index, host_results) in results {
            let state = &mut states[index];
            for result in &host_results {
                self.reporter.event(Event::Result(result));
            }
            match task::overall_status(&host_results) {
                Some(Status::Ok) => state.stats.ok += 1,
                Some(Status::Changed) => {
                    state.stats.ok += 1;
                    state.stats.changed += 1;
                }
                Some(Status::Skipped) => state.stats.skipped += 1,
                Some(Status::Unreachable) => {
                    state.unreachable = true;
                    state.stats.unreachable += 1;
                }
                Some(Status::Failed) => {
                    if host_results
                        .iter()
                        .all(|r| r.status != Status::Failed || r.ignored)
                    {
                        state.stats.ignored += 1;
                        state.stats.ok += 1;
                    } else {
                        failed.insert(index);
                    }
                }
                None => {}
            }
        }
        failed
    }

    /// Returns whether failures end the play for every host: `any_errors_fatal`, or more
    /// failed hosts in the batch than `max_fail_percentage` allows.
    fn fails_play(
        &self,
        context: &PlayContext<'_>,
        states: &[HostState],
        new_failures: usize,
    ) -> bool {
        if context.play.any_errors_fatal {
            return true;
        }
        let Some(max_percent) = context.play.max_fail_percentage else {
            return false;
        };
        let failed = states.iter().filter(|s| s.failed || s.unreachable).count() + new_failures;
        let percent = failed as f64 * 100.0 / states.len().max(1) as f64;
        percent > max_percent
    }

    /// Applies `--tags` and `--skip-tags`, with Ansible's `always` and `never` tags.
    fn tags_allow(&self, tags: &[String]) -> bool {
        let has = |name: &str| tags.iter().any(|t| t == name);
        let selected =
            if self.options.tags.is_empty() || self.options.tags.iter().any(|t| t == "all") {
                !has("never") || self.options.tags.iter().any(|t| tags.contains(t))
            } else {
                has("always")
                    || self.options.tags.iter().any(|t| {
                        tags.contains(t)
                            || (t == "tagged" && !tags.is_empty())
                            || (t == "untagged" && tags.is_empty())
                    })
            };
        let skipped = self.options.skip_tags.iter().any(|t| {
            tags.contains(t)
                || (t == "tagged" && !tags.is_empty())
                || (t == "untagged" && tags.is_empty())
        });
        selected && !skipped
    }

    /// Adds the string values of variables whose names suggest a secret to the redactor.
    fn hide_secret_vars(&self, vars: &Map<String, Value>) {
        for (name, value) in vars {
            let lower = name.to_ascii_lowercase();
            let secret = [
                "password",
                "passwd",
                "secret",
                "token",
                "private_key",
                "api_key",
            ]
            .iter()
            .any(|word| lower.contains(word))
                && !lower.ends_with("_file");
            if let (true, Value::String(text)) = (secret, value) {
                if !text.contains("{{") {
                    self.redactor.add(text);
                }
            }
        }
    }
}

/// Copies the registered result of a `run_once` task to the other hosts, as Ansible does.
fn share_run_once_result(
    task: &Task,
    states: &mut [HostState],
    ran: &BTreeSet<usize>,
    active: &BTreeSet<usize>,
) {
    let (Some(name), Some(first)) = (&task.register, ran.iter().next()) else {
        return;
    };
    let Some(result) = states[*first].registered.get(name).cloned() else {
        return;
    };
    for index in active {
        states[*index]
            .registered
            .insert(name.clone(), result.clone());
    }
}

/// Merges the defaults and the vars of every role in a play, in the order they run.
fn play_role_vars(play: &Play) -> (Map<String, Value>, Map<String, Value>) {
    let mut defaults = Map::new();
    let mut vars = Map::new();
    let mut seen: Vec<*const crate::playbook::Role> = Vec::new();
    fn visit(
        tasks: &[Task],
        seen: &mut Vec<*const crate::playbook::Role>,
        defaults: &mut Map<String, Value>,
        vars: &mut Map<String, Value>,
    ) {
        for task in tasks {
            if let Some(role) = &task.role {
                let pointer = std::sync::Arc::as_ptr(role);
                if !seen.contains(&pointer) {
                    seen.push(pointer);
                    defaults.extend(role.defaults.clone());
                    vars.extend(role.vars.clone());
                }
            }
            if let TaskKind::Block {
                block,
                rescue,
                always,
            } = &task.kind
            {
                visit(block, seen, defaults, vars);
                visit(rescue, seen, defaults, vars);
                visit(always, seen, defaults, vars);
            }
        }
    }
    for section in &play.sections {
        visit(&section.tasks, &mut seen, &mut defaults, &mut vars);
    }
    (defaults, vars)
}

/// Splits hosts into rolling batches for `serial`; the last size repeats.
fn batches(hosts: &[String], serial: &[Serial]) -> Vec<Vec<String>> {
    if serial.is_empty() {
        return vec![hosts.to_vec()];
    }
    let mut batches = Vec::new();
    let mut rest = hosts;
    let mut sizes = serial.iter();
    let mut last = serial[0];
    while !rest.is_empty() {
        let spec = sizes.next().copied().unwrap_or(last);
        last = spec;
        let size = match spec {
            Serial::Count(n) => n.max(1),
            Serial::Percent(p) => ((hosts.len() as f64 * p / 100.0).floor() as usize).max(1),
        };
        let take = size.min(rest.len());
        batches.push(rest[..take].to_vec());
        rest = &rest[take..];
    }
    batches
}

fn task_title(task: &Task) -> String {
    match &task.role {
        Some(role) => format!("{} : {}", role.name, task.display_name()),
        None => task.display_name(),
    }
}

fn ok_result(host: &str, message: impl Into<String>) -> HostResult {
    HostResult {
        host: host.to_string(),
        status: Status::Ok,
        message: message.into(),
        item: None,
        diffs: Vec::new(),
        ignored: false,
        check_mode: false,
    }
}

fn failed_result(host: &str, message: impl Into<String>) -> HostResult {
    HostResult {
        status: Status::Failed,
        ..ok_result(host, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn batches_follow_serial() {
        let sizes = |b: Vec<Vec<String>>| b.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(batches(&names(5), &[])), vec![5]);
        assert_eq!(
            sizes(batches(&names(5), &[Serial::Count(2)])),
            vec![2, 2, 1]
        );
        assert_eq!(
            sizes(batches(&names(6), &[Serial::Count(1), Serial::Count(3)])),
            vec![1, 3, 2]
        );
        assert_eq!(
            sizes(batches(&names(10), &[Serial::Percent(30.0)])),
            vec![3, 3, 3, 1]
        );
    }
}
