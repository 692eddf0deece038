//! Inventories in Ansible's YAML and INI formats, with `group_vars/` and `host_vars/`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Diagnostics};

#[derive(Debug, Default, Clone)]
pub struct Inventory {
    /// Hosts in the order they first appear.
    pub hosts: Vec<Host>,
    pub groups: BTreeMap<String, Group>,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// Variables set on the host in the inventory file itself.
    pub vars: Map<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: Map<String, Value>,
}

impl Inventory {
    /// Loads inventory sources (files, or `a,b,` host lists) with the `group_vars/`
    /// and `host_vars/` folders beside each file.
    pub fn load(sources: &[String]) -> Result<Inventory, Diagnostics> {
        let _ = sources;
        Err(Diagnostics(vec![Diagnostic::new(
            "inventory loading is not built yet",
        )]))
    }

    /// Reads `group_vars/` and `host_vars/` beside a playbook; they rank above the inventory's own.
    pub fn add_playbook_vars(&mut self, playbook_dir: &Path) -> Result<(), Diagnostics> {
        let _ = playbook_dir;
        Ok(())
    }

    /// Returns the hosts a pattern selects, in inventory order: `all`, `*`, a group, a
    /// host, globs, `a:b` or `a,b` (union), `a:&b` (intersection), `a:!b` (difference).
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, Diagnostic> {
        let _ = pattern;
        Ok(Vec::new())
    }

    /// Returns the groups a host belongs to, directly or through children, `all` included.
    pub fn groups_of(&self, host: &str) -> Vec<String> {
        let _ = host;
        Vec::new()
    }

    /// Returns the inventory variables of a host, merged in Ansible's order: group vars
    /// from `all` down to the most nested child group, then host vars; for each, the
    /// inventory file, then `group_vars/`/`host_vars/` beside it, then beside the playbook.
    pub fn host_vars(&self, host: &str) -> Map<String, Value> {
        let _ = host;
        Map::new()
    }
}
