//! Per-host state across a run: connection, facts, registered variables, counters.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{PlayContext, Runner};
use crate::inventory::Inventory;
use crate::modules::args::to_bool;
use crate::modules::Predictions;
use crate::playbook::Task;
use crate::report::{HostResult, Stats, Status};
use crate::secret::Secret;
use crate::transport::{Become, ConnectOptions, Connection, ConnectionKind};
use crate::vars::VarStack;

pub(super) struct HostState {
    pub name: String,
    pub inventory_vars: Map<String, Value>,
    pub magic_vars: Map<String, Value>,
    /// Facts as variables (`ansible_facts`, `ansible_*`), once gathered.
    pub facts: Option<Map<String, Value>>,
    pub play_vars: Map<String, Value>,
    pub vars_files: Map<String, Value>,
    /// `set_fact` and `register` results.
    pub registered: Map<String, Value>,
    pub predictions: Predictions,
    pub notified: BTreeSet<String>,
    pub stats: Stats,
    pub failed: bool,
    pub unreachable: bool,
    /// Set by `meta: end_host` or `end_play`.
    pub ended: bool,
    pub running_handlers_after_failure: bool,
    /// A problem found while preparing the play for this host (a bad `vars_files` entry),
    /// reported as the failure of its first task.
    pub setup_error: Option<String>,
    pub connection: Option<Arc<Connection>>,
    pub connect_error: Option<String>,
    /// Probe results read ahead of their tasks; emptied whenever the host changes.
    pub probe_cache: super::probe::ProbeCache,
    /// The item being run and the item count while a task's loop runs.
    pub loop_position: Option<(usize, usize)>,
    /// The machine the connection reaches, shared by inventory names that reach the same
    /// one; set when the connection opens.
    pub machine: Option<String>,
}

impl HostState {
    pub fn new(name: &str, inventory: &Inventory) -> HostState {
        // `groups` is one of the shared variables of the run's templar.
        let magic_vars = inventory.host_magic_vars(name);
        HostState {
            name: name.to_string(),
            inventory_vars: inventory.host_vars(name),
            magic_vars,
            facts: None,
            play_vars: Map::new(),
            vars_files: Map::new(),
            registered: Map::new(),
            predictions: Predictions::default(),
            notified: BTreeSet::new(),
            stats: Stats::default(),
            failed: false,
            unreachable: false,
            ended: false,
            running_handlers_after_failure: false,
            setup_error: None,
            connection: None,
            connect_error: None,
            probe_cache: Default::default(),
            loop_position: None,
            machine: None,
        }
    }

    pub fn active(&self) -> bool {
        self.running_handlers_after_failure || (!self.failed && !self.unreachable && !self.ended)
    }
}

impl Runner<'_> {
    /// Returns the variables of a host outside any task: inventory, facts, play vars,
    /// registered values and extra vars, in precedence order.
    pub(super) fn base_vars(
        &self,
        state: &HostState,
        context: &PlayContext<'_>,
    ) -> Map<String, Value> {
        let empty = Map::new();
        let run_vars = self.run_vars(context);
        let mut stack = VarStack::default();
        stack.push(&state.inventory_vars);
        stack.push(state.facts.as_ref().unwrap_or(&empty));
        stack.push(&state.play_vars);
        stack.push(&state.vars_files);
        stack.push(&state.registered);
        stack.push(&self.options.extra_vars);
        stack.push(&state.magic_vars);
        stack.push(&run_vars);
        stack.resolve()
    }

    /// Returns the variables of a task on a host, in Ansible's precedence order.
    pub(super) fn task_vars(
        &self,
        state: &HostState,
        context: &PlayContext<'_>,
        task: &Task,
    ) -> Map<String, Value> {
        let empty = Map::new();
        let run_vars = self.run_vars(context);
        let mut role_vars = Map::new();
        if let Some(role) = &task.role {
            role_vars.insert("role_name".into(), json!(role.name));
            role_vars.insert("role_path".into(), json!(role.path.display().to_string()));
        }
        let mut stack = VarStack::default();
        stack.push(&context.role_defaults);
        stack.push(task.role.as_ref().map_or(&empty, |r| &r.defaults));
        stack.push(&state.inventory_vars);
        stack.push(state.facts.as_ref().unwrap_or(&empty));
        stack.push(&state.play_vars);
        stack.push(&state.vars_files);
        stack.push(&context.role_vars);
        stack.push(task.role.as_ref().map_or(&empty, |r| &r.vars));
        stack.push(&task.vars);
        stack.push(&state.registered);
        stack.push(task.role.as_ref().map_or(&empty, |r| &r.params));
        stack.push(&self.options.extra_vars);
        stack.push(&state.magic_vars);
        stack.push(&run_vars);
        stack.push(&role_vars);
        stack.resolve()
    }

    fn run_vars(&self, context: &PlayContext<'_>) -> Map<String, Value> {
        let mut vars = Map::new();
        vars.insert("ansible_check_mode".into(), json!(self.options.check));
        vars.insert("ansible_diff_mode".into(), json!(self.options.diff));
        let playbook_dir = std::path::absolute(&context.playbook_dir)
            .unwrap_or_else(|_| context.playbook_dir.clone());
        vars.insert(
            "playbook_dir".into(),
            json!(playbook_dir.display().to_string()),
        );
        vars.insert(
            "ansible_version".into(),
            json!({"full": "2.17.0", "major": 2, "minor": 17, "string": "2.17.0"}),
        );
        vars.insert("vpsforge_version".into(), json!(env!("CARGO_PKG_VERSION")));
        vars.insert(
            "ansible_managed".into(),
            json!("Managed by vpsforge: do not edit by hand"),
        );
        vars
    }

    /// Returns the host's connection, opening it on first use.
    pub(super) async fn connection(
        &self,
        state: &mut HostState,
        context: &PlayContext<'_>,
    ) -> Result<Arc<Connection>, HostResult> {
        if let Some(connection) = &state.connection {
            return Ok(connection.clone());
        }
        let unreachable = |name: &str, message: String| HostResult {
            host: name.to_string(),
            status: Status::Unreachable,
            message,
            item: None,
            diffs: Vec::new(),
            ignored: false,
            check_mode: false,
        };
        if let Some(error) = &state.connect_error {
            return Err(unreachable(&state.name, error.clone()));
        }
        let vars = self.base_vars(state, context);
        let options = self.connect_options(&state.name, &vars, context);
        let span = tracing::debug_span!("connect", host = %state.name);
        match tracing::Instrument::instrument(Connection::connect(&options), span).await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                state.connection = Some(connection.clone());
                state.machine = Some(machine_key(&options));
                Ok(connection)
            }
            Err(error) => {
                let message = error.to_string();
                state.connect_error = Some(message.clone());
                state.unreachable = true;
                Err(unreachable(&state.name, message))
            }
        }
    }

    fn connect_options(
        &self,
        name: &str,
        vars: &Map<String, Value>,
        context: &PlayContext<'_>,
    ) -> ConnectOptions {
        let text = |key: &str| match vars.get(key) {
            // Connection values are used as written, so an `!unsafe` mark is only removed.
            Some(Value::String(s)) if !s.is_empty() => {
                Some(crate::yaml::strip_unsafe(s).unwrap_or(s).to_string())
            }
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let kind = match text("ansible_connection").as_deref() {
            Some("local") => ConnectionKind::Local,
            _ => ConnectionKind::Ssh,
        };
        let password = text("ansible_password").or_else(|| text("ansible_ssh_pass"));
        if let Some(password) = &password {
            self.redactor.add(password);
        }
        ConnectOptions {
            name: name.to_string(),
            kind,
            host: text("ansible_host").unwrap_or_else(|| name.to_string()),
            port: text("ansible_port").and_then(|p| p.parse().ok()),
            user: text("ansible_user")
                .or_else(|| self.options.remote_user.clone())
                .or_else(|| context.play.remote_user.clone()),
            identity_files: text("ansible_ssh_private_key_file")
                .map(|p| vec![expand_home(&p)])
                .unwrap_or_default(),
            password: password.map(Secret::new),
            host_key_policy: self.options.host_key_policy,
            known_hosts_files: self.options.known_hosts.clone(),
            proxy_jump: text("ansible_ssh_proxy_jump").or_else(|| text("vpsforge_proxy_jump")),
            ssh_config: text("ansible_ssh_config_file").map(|p| expand_home(&p)),
            connect_timeout: text("ansible_ssh_timeout")
                .and_then(|t| t.parse().ok())
                .map(Duration::from_secs)
                .unwrap_or(self.options.connect_timeout),
            keepalive_interval: Duration::from_secs(15),
        }
    }

    /// Returns how to escalate for a task, or `None` to run as the connecting user.
    pub(super) fn become_for(
        &self,
        state: &HostState,
        context: &PlayContext<'_>,
        task: &Task,
        vars: &Map<String, Value>,
    ) -> Option<Become> {
        let enabled = task
            .r#become
            .or(context.play.r#become)
            .or_else(|| vars.get("ansible_become").and_then(to_bool))
            .unwrap_or(self.options.r#become);
        if !enabled {
            return None;
        }
        let user = task
            .become_user
            .clone()
            .or_else(|| context.play.become_user.clone())
            .or_else(|| {
                vars.get("ansible_become_user")
                    .and_then(|v| v.as_str().map(String::from))
            })
            .unwrap_or_else(|| "root".to_string());
        // Connected as root already: sudo to root adds nothing, and minimal hosts may lack it.
        let connected_uid = state
            .facts
            .as_ref()
            .and_then(|f| f.get("ansible_user_uid"))
            .and_then(Value::as_u64);
        let connected_as_root = connected_uid == Some(0)
            || (connected_uid.is_none()
                && vars.get("ansible_user").and_then(Value::as_str) == Some("root"));
        if user == "root" && connected_as_root {
            return None;
        }
        let password = self.options.become_password.clone().or_else(|| {
            [
                "ansible_become_password",
                "ansible_become_pass",
                "ansible_sudo_pass",
            ]
            .iter()
            .find_map(|key| vars.get(*key).and_then(Value::as_str))
            .map(|p| crate::yaml::strip_unsafe(p).unwrap_or(p))
            .map(|p| {
                self.redactor.add(p);
                Secret::new(p)
            })
        });
        Some(Become { user, password })
    }
}

/// Returns the variables that are the same on every host of a run: `groups`,
/// and `hostvars` with each inventory host's inventory and magic variables by
/// host name. The executor's templar shares them with every render instead of
/// copying them into each task's variables. The play's host lists
/// (`ansible_play_hosts`, `ansible_play_batch`) join them when a play starts.
///
/// NOTE: facts and `set_fact` results of other hosts are not in `hostvars`,
/// unlike in Ansible, because the shared variables are built once, before any
/// host is contacted.
pub(super) fn shared_vars(inventory: &Inventory) -> Map<String, Value> {
    let mut hostvars = Map::new();
    for host in inventory.hosts_of_group("all") {
        let mut vars = inventory.host_vars(&host);
        vars.extend(inventory.host_magic_vars(&host));
        hostvars.insert(host, Value::Object(vars));
    }
    let mut shared = Map::new();
    shared.insert("hostvars".into(), Value::Object(hostvars));
    shared.insert("groups".into(), Value::Object(inventory.groups_map()));
    shared
}

fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => dirs::home_dir()
            .map(|h| h.join(rest))
            .unwrap_or_else(|| PathBuf::from(path)),
        None => PathBuf::from(path),
    }
}

/// Returns a key that is the same for inventory hosts that reach the same machine: every
/// local host is the controller, and SSH hosts with the same address and port are one server.
///
/// NOTE: names that the ssh config resolves to one `HostName`, or a name and an IP address
/// of one server, get different keys, so their probe caches are not emptied by each other's
/// changes.
fn machine_key(options: &ConnectOptions) -> String {
    match options.kind {
        ConnectionKind::Local => "local".to_string(),
        ConnectionKind::Ssh => format!(
            "ssh:{}:{}",
            options.host.to_ascii_lowercase(),
            options.port.unwrap_or(22)
        ),
    }
}
