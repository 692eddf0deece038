//! Playbooks, plays, tasks, blocks and roles, checked before any host is contacted.
//!
//! Loading resolves everything that does not depend on a host: module names and
//! argument names (against the module registry), role paths and their
//! dependencies, block keywords, and the syntax of every template string. Roles
//! are expanded in place, so the executor receives plain task lists. Values that
//! contain templates stay unrendered until the executor has the host's variables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostics, Span};
use crate::modules::ModuleSpec;

mod keywords;
mod kv;
mod load;
mod role;
mod syntax;
mod task;

pub use syntax::is_template;

#[derive(Debug)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

#[derive(Debug)]
pub struct Play {
    pub name: Option<String>,
    /// The host pattern, possibly a template.
    pub hosts: String,
    pub vars: Map<String, Value>,
    /// Paths relative to the playbook folder, possibly templates.
    pub vars_files: Vec<String>,
    /// Pre-tasks, then role tasks (dependencies first), then tasks, then post-tasks, each
    /// section followed by a handler flush as Ansible does.
    pub sections: Vec<Section>,
    /// Role handlers first, then the play's own, in definition order.
    pub handlers: Vec<Task>,
    pub r#become: Option<bool>,
    pub become_user: Option<String>,
    /// `remote_user`: the SSH user unless the inventory sets `ansible_user`.
    pub remote_user: Option<String>,
    pub gather_facts: bool,
    /// Batch sizes for rolling updates: numbers or percentages, the last one repeating.
    pub serial: Vec<Serial>,
    pub tags: Vec<String>,
    /// Whether a failure on one host ends the play for all hosts.
    pub any_errors_fatal: bool,
    /// The percentage of failed hosts in a batch above which the play stops.
    pub max_fail_percentage: Option<f64>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub kind: SectionKind,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    PreTasks,
    Roles,
    Tasks,
    PostTasks,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Serial {
    Count(usize),
    Percent(f64),
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: Option<String>,
    pub kind: TaskKind,
    /// Conditions from enclosing blocks and roles come first; all must hold.
    pub when: Vec<Condition>,
    /// `loop`, or `with_items`/`with_list` converted to it: a list or a template string.
    pub r#loop: Option<Value>,
    /// A conversion the executor applies to `loop` after rendering it. Set only when
    /// the loop contains templates, because static values are converted at load time.
    pub loop_conversion: Option<LoopConversion>,
    pub loop_var: String,
    /// `loop_control.label`, a template shown in place of the item.
    pub loop_label: Option<String>,
    /// `loop_control.index_var`: the name of the variable set to the 0-based loop index.
    pub index_var: Option<String>,
    pub register: Option<String>,
    pub notify: Vec<String>,
    /// Topics a handler also responds to.
    pub listen: Vec<String>,
    /// Own tags plus those of enclosing blocks, roles and the play.
    pub tags: Vec<String>,
    pub r#become: Option<bool>,
    pub become_user: Option<String>,
    pub ignore_errors: bool,
    pub changed_when: Option<Vec<Condition>>,
    pub failed_when: Option<Vec<Condition>>,
    /// `check_mode: true` forces check mode for the task, `false` applies even under `--check`.
    pub check_mode: Option<bool>,
    pub no_log: bool,
    pub until: Option<Condition>,
    pub retries: u32,
    pub delay: u64,
    /// Task and block `vars`, block ones first.
    pub vars: Map<String, Value>,
    /// Environment variables for the remote command; values may be templates.
    pub environment: Map<String, Value>,
    /// `delegate_to`, stored as written; the executor decides whether it supports it.
    pub delegate_to: Option<String>,
    pub run_once: bool,
    pub role: Option<Arc<Role>>,
    pub span: Span,
}

/// Conversion of a rendered `with_items` or `with_dict` value into loop items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopConversion {
    /// `with_items`: list items that are lists are spliced in, one level deep.
    FlattenOnce,
    /// `with_dict`: a mapping becomes a list of `{key, value}` mappings.
    DictToItems,
}

/// A `when`-style expression with where it was written, for error messages.
#[derive(Debug, Clone)]
pub struct Condition {
    pub expr: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum TaskKind {
    Action {
        module: &'static ModuleSpec,
        /// Arguments as written, after `key=value` strings are split and aliases replaced by
        /// the canonical names; strings may be templates. When the arguments are one
        /// template string (`apt: "{{ apt_args }}"` or `args: "{{ x }}"`), that string is
        /// stored as `_variable_params` and must render to a mapping.
        args: Map<String, Value>,
        /// The source location of each argument.
        arg_spans: Vec<(String, Span)>,
    },
    Block {
        block: Vec<Task>,
        rescue: Vec<Task>,
        always: Vec<Task>,
    },
    /// `meta: flush_handlers` and the other meta actions vpsforge supports.
    Meta(MetaAction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaAction {
    FlushHandlers,
    EndPlay,
    EndHost,
    Noop,
}

#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub path: PathBuf,
    /// `defaults/main.yml`: the lowest precedence.
    pub defaults: Map<String, Value>,
    /// `vars/main.yml`: above play vars.
    pub vars: Map<String, Value>,
    /// Parameters given where the role is listed (`- role: x` with `vars:` or extra keys).
    pub params: Map<String, Value>,
}

impl std::fmt::Debug for ModuleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModuleSpec({})", self.name)
    }
}

impl Task {
    /// Returns the name shown in output: the task name, else `module` plus a short argument summary.
    pub fn display_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match &self.kind {
            TaskKind::Action { module, .. } => module.name.to_string(),
            TaskKind::Block { .. } => "block".to_string(),
            TaskKind::Meta(action) => format!("meta: {action:?}"),
        }
    }

    /// Folders searched for a relative `src` of `copy` (`files`) or `template` (`templates`).
    pub fn search_paths(&self, kind: &str, playbook_dir: &Path) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        if let Some(role) = &self.role {
            paths.push(role.path.join(kind));
            paths.push(role.path.clone());
        }
        paths.push(playbook_dir.join(kind));
        paths.push(playbook_dir.to_path_buf());
        paths
    }
}

/// Options that change what a playbook load accepts.
pub struct LoadOptions<'a> {
    /// The modules task names are checked against; production passes `modules::registry()`.
    pub modules: &'a [&'static ModuleSpec],
    /// Extra folders to look for roles in, after `roles/` beside the playbook.
    pub roles_path: Vec<PathBuf>,
}

/// Loads and checks a playbook, collecting every error instead of stopping at the first.
///
/// Reads the playbook and every file it pulls in (imported playbooks, included
/// task files, roles). Nothing here contacts a host or renders a template.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Playbook, Diagnostics> {
    load::load_playbook(path, options)
}
