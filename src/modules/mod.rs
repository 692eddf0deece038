//! Modules: the units of desired state, with Ansible's names and arguments.
//!
//! Each module has the same shape. Its [`ModuleSpec`] declares the arguments, so
//! that playbooks are checked before any host is contacted. At run time the
//! executor renders the task's arguments and calls `build`, which returns an
//! [`Action`]. The action names a probe script that reads the host state it
//! needs and turns the probe output into a [`Plan`]: changes with diffs, or no
//! change and why. The executor runs the plan's apply script unless it is in
//! check mode. Planners are pure functions of the probe output, so they are
//! tested with data and no host.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Map, Value};

pub mod apt;
pub mod args;
pub mod blockinfile;
pub mod command;
pub mod common;
pub mod controller;
pub mod copy;
pub mod cron;
pub mod file;
pub mod group;
pub mod lineinfile;
pub mod package;
pub mod service;
pub mod shell;
pub mod stat;
pub mod sysctl;
pub mod template;
pub mod timezone;
pub mod ufw;
pub mod user;

pub type Args = Map<String, Value>;

/// Turns rendered arguments into an action for one host.
pub type BuildFn = fn(&Args, &BuildContext) -> Result<Box<dyn Action>, ModuleError>;

/// The declared shape of a module.
pub struct ModuleSpec {
    /// Short name, as in `apt`.
    pub name: &'static str,
    /// Other accepted names: fully qualified (`ansible.builtin.apt`) and legacy ones.
    pub aliases: &'static [&'static str],
    /// Declared arguments. A controller module with none (`set_fact`) accepts any argument name.
    pub params: &'static [Param],
    /// Whether the module takes a free-form string (`command: ls -l`, `shell: ...`),
    /// which is stored as the `_raw_params` argument.
    pub free_form: bool,
    pub kind: ModuleKind,
    pub build: BuildFn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// Reads and changes a host through probe and apply scripts.
    Remote,
    /// Runs on the controller only (`debug`, `assert`, `fail`, `set_fact`, `meta`):
    /// the executor evaluates these itself, and `build` is not called.
    Controller,
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
    pub kind: ParamKind,
    /// Allowed values, empty for any.
    pub choices: &'static [&'static str],
}

impl Param {
    pub const fn new(name: &'static str, kind: ParamKind) -> Param {
        Param {
            name,
            aliases: &[],
            required: false,
            kind,
            choices: &[],
        }
    }

    pub const fn required(mut self) -> Param {
        self.required = true;
        self
    }

    pub const fn aliases(mut self, aliases: &'static [&'static str]) -> Param {
        self.aliases = aliases;
        self
    }

    pub const fn choices(mut self, choices: &'static [&'static str]) -> Param {
        self.choices = choices;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Str,
    Bool,
    Int,
    /// A list, or a comma-separated string that is split into one.
    List,
    Dict,
    /// A file mode: an octal string such as `"0644"`, a symbolic mode, or an integer.
    Mode,
    /// Anything; the module checks it.
    Raw,
}

/// Context a module's `build` may use besides its arguments.
pub struct BuildContext<'a> {
    /// Folders searched for a relative `src` (role `files/` or `templates/`, then the playbook folder).
    pub search_paths: &'a [PathBuf],
    /// Renders a template file with the task's variables (for the `template` module).
    pub render_template: &'a dyn Fn(&std::path::Path) -> Result<String, ModuleError>,
    /// The host's gathered facts, or `Null` when `gather_facts: false`.
    pub facts: &'a Value,
}

/// A module instance with rendered arguments, for one host.
pub trait Action: Send + Sync {
    /// Returns a POSIX shell script whose standard output [`Action::plan`] reads, or
    /// `None` when the module needs no host state. The script must not change the host.
    fn probe(&self) -> Option<String>;

    /// Compares the probed state with the desired state.
    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError>;

    /// Turns the apply script's output into the registered result. By default a
    /// non-zero exit status is a failure that shows standard error.
    fn finish(&self, plan: &Plan, output: &ExecOutput) -> Result<Map<String, Value>, ModuleError> {
        if output.exit_code != 0 {
            return Err(ModuleError::Failed(format!(
                "exit status {}: {}",
                output.exit_code,
                output.stderr.trim()
            )));
        }
        Ok(plan.result.clone())
    }
}

/// The output of a remote command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Host state a planner may use besides its probe.
pub struct HostView<'a> {
    pub check_mode: bool,
    pub facts: &'a Value,
    /// Changes that earlier tasks would have made in check mode and did not.
    pub predicted: &'a Predictions,
}

/// State that check mode predicts but does not create, so that later tasks plan
/// against it: a service from a package that would be installed, a link to a file
/// that would be written.
#[derive(Debug, Clone, Default)]
pub struct Predictions {
    pub packages: BTreeSet<String>,
    /// Paths that would be created or rewritten, with the content when known.
    pub files: BTreeMap<String, Option<Vec<u8>>>,
    pub directories: BTreeSet<String>,
    pub users: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

impl Predictions {
    pub fn merge(&mut self, other: Predictions) {
        self.packages.extend(other.packages);
        self.files.extend(other.files);
        self.directories.extend(other.directories);
        self.users.extend(other.users);
        self.groups.extend(other.groups);
    }
}

/// The planned effect of one action.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Empty when the host is already in the desired state.
    pub changes: Vec<Change>,
    /// The reason nothing changes, or the reason the apply step is skipped in check mode.
    pub reason: Option<String>,
    /// The script that makes the changes; `None` when nothing changes.
    pub apply: Option<String>,
    /// Whether the apply step runs even in check mode: never true for scripts that change the host.
    pub runs_in_check_mode: bool,
    /// Whether check mode cannot predict the outcome (`command` without `creates`), so the
    /// task is reported as skipped there.
    pub skipped_in_check_mode: bool,
    /// Registered result fields (`stat`, `path`, `state`, ...), merged with `changed` and `failed`.
    pub result: Map<String, Value>,
    /// Objects the apply step will create, for later tasks in check mode.
    pub predicts: Predictions,
}

impl Plan {
    pub fn unchanged(reason: impl Into<String>) -> Plan {
        Plan {
            reason: Some(reason.into()),
            ..Plan::default()
        }
    }

    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// One change, with a diff where the module can show one.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub summary: String,
    pub diff: Option<Diff>,
}

/// Before and after text of a file, a line set, a cron entry, ...
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diff {
    /// The changed object, usually a path (`/etc/nginx/nginx.conf`) or `crontab root`.
    pub header: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModuleError {
    /// An argument value is invalid after rendering (wrong type, not a choice).
    #[error("{0}")]
    InvalidArgument(String),
    /// The probe output is not what the module expects, which means the host lacks a tool.
    #[error("{0}")]
    Probe(String),
    /// The module ran and failed.
    #[error("{0}")]
    Failed(String),
}

/// Returns every module vpsforge supports, in no particular order.
pub fn registry() -> &'static [&'static ModuleSpec] {
    REGISTRY
}

static REGISTRY: &[&ModuleSpec] = &[
    &controller::DEBUG,
    &controller::SET_FACT,
    &controller::ASSERT,
    &controller::FAIL,
    &stat::SPEC,
    &file::SPEC,
    &copy::SPEC,
    &template::SPEC,
    &lineinfile::SPEC,
    &blockinfile::SPEC,
    &cron::SPEC,
    &group::SPEC,
    &ufw::SPEC,
    &user::SPEC,
    &command::SPEC,
    &shell::SPEC,
    &apt::SPEC,
    &package::SPEC,
    &service::SPEC,
    &service::SYSTEMD_SPEC,
    &timezone::SPEC,
    &sysctl::SPEC,
];

/// Looks up a module by its short, fully qualified or legacy name.
pub fn find(name: &str) -> Option<&'static ModuleSpec> {
    registry()
        .iter()
        .copied()
        .find(|spec| spec.name == name || spec.aliases.contains(&name))
}
