//! Inventories in Ansible's YAML and INI formats, with `group_vars/` and `host_vars/`.
//!
//! Loading follows ansible-core 2.19: every source adds hosts and groups to one
//! inventory, then every group without a parent becomes a child of `all`, and
//! hosts in no other group go to `ungrouped`. Variables stay where they were
//! declared and are merged per host on request, in Ansible's precedence order.

mod ini;
mod literal;
mod pattern;
mod range;
#[cfg(test)]
mod tests;
mod vars_dirs;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile};

pub use vars_dirs::{DirVars, VarsFiles};

#[derive(Debug, Default, Clone)]
pub struct Inventory {
    /// Hosts in the order they first appear.
    pub hosts: Vec<Host>,
    pub groups: BTreeMap<String, Group>,
    /// Variables from `group_vars/` and `host_vars/` folders, kept apart from the
    /// inventory file's own because they rank between its group and host vars.
    pub vars_files: VarsFiles,
    /// The inventory file that first declared each host, for `inventory_file`.
    pub host_files: BTreeMap<String, PathBuf>,
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

/// Files skipped when a directory is an inventory source: ansible-core 2.19's
/// `INVENTORY_IGNORE_EXTS` default (older releases also skipped `.ini`).
const IGNORED_SUFFIXES: &[&str] = &[
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];

/// Entries of an inventory directory that are never inventory files.
const IGNORED_NAMES: &[&str] = &["group_vars", "host_vars", "vars_plugins"];

impl Inventory {
    /// Returns an inventory with only the implicit groups `all` and `ungrouped`.
    pub fn new() -> Inventory {
        let mut inventory = Inventory::default();
        inventory.ensure_group("all");
        inventory.ensure_group("ungrouped");
        inventory
    }

    /// Loads inventory sources (files, or `a,b,` host lists) with the `group_vars/`
    /// and `host_vars/` folders beside each file.
    pub fn load(sources: &[String]) -> Result<Inventory, Diagnostics> {
        let mut inventory = Inventory::new();
        let mut errors = Diagnostics::default();
        let mut vars_dirs: Vec<PathBuf> = Vec::new();

        for source in sources {
            let path = Path::new(source);
            if path.is_dir() {
                inventory.load_dir(path, &mut errors);
                vars_dirs.push(path.to_path_buf());
            } else if path.exists() {
                inventory.load_file(path, &mut errors);
                let parent = path
                    .parent()
                    .filter(|parent| !parent.as_os_str().is_empty());
                vars_dirs.push(parent.unwrap_or(Path::new(".")).to_path_buf());
            } else if source.contains(',') {
                inventory.load_host_list(source, &mut errors);
            } else {
                errors.push(
                    Diagnostic::new(format!("inventory source `{source}` not found")).with_help(
                        "give an inventory file or directory, or a host list such as `web1,web2,`",
                    ),
                );
            }
        }
        inventory.reconcile();

        let mut seen = BTreeSet::new();
        for dir in vars_dirs {
            if seen.insert(dir.clone()) {
                let loaded = DirVars::load(&dir, &inventory.group_names(), &inventory.host_names());
                match loaded {
                    Ok(vars) => inventory.vars_files.inventory.merge(vars),
                    Err(dir_errors) => errors.0.extend(dir_errors.0),
                }
            }
        }

        if errors.is_empty() {
            Ok(inventory)
        } else {
            Err(errors)
        }
    }

    /// Reads `group_vars/` and `host_vars/` beside a playbook; they rank above the inventory's own.
    pub fn add_playbook_vars(&mut self, playbook_dir: &Path) -> Result<(), Diagnostics> {
        let vars = DirVars::load(playbook_dir, &self.group_names(), &self.host_names())?;
        self.vars_files.playbook.merge(vars);
        Ok(())
    }

    /// Returns the host named `name`, if the inventory declares it.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|host| host.name == name)
    }

    /// Returns the hosts a pattern selects, in inventory order: `all`, `*`, a group, a
    /// host, globs, `a:b` or `a,b` (union), `a:&b` (intersection), `a:!b` (difference).
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, Diagnostic> {
        pattern::select(self, pattern)
    }

    /// Returns the groups a host belongs to, directly or through children, `all` included,
    /// in the order their variables apply: by depth, `ansible_group_priority`, then name.
    pub fn groups_of(&self, host: &str) -> Vec<String> {
        if !self.hosts.iter().any(|h| h.name == host) {
            return Vec::new();
        }
        let mut found: BTreeSet<String> = self
            .groups
            .values()
            .filter(|group| group.hosts.iter().any(|name| name == host))
            .map(|group| group.name.clone())
            .collect();
        found.insert("all".to_string());

        let mut pending: Vec<String> = found.iter().cloned().collect();
        while let Some(name) = pending.pop() {
            for parent in self.parents_of(&name) {
                if found.insert(parent.clone()) {
                    pending.push(parent);
                }
            }
        }
        self.sort_groups(found.into_iter().collect())
    }

    /// Returns the inventory variables of a host, merged in Ansible's order: group vars
    /// from `all` down to the most nested child group, then host vars; for each, the
    /// inventory file, then `group_vars/`/`host_vars/` beside it, then beside the playbook.
    pub fn host_vars(&self, host: &str) -> Map<String, Value> {
        let mut vars = Map::new();
        let Some(entry) = self.hosts.iter().find(|h| h.name == host) else {
            return vars;
        };
        let groups = self.groups_of(host);
        let files = &self.vars_files;

        for name in &groups {
            if let Some(group) = self.groups.get(name) {
                extend(&mut vars, &group.vars);
            }
        }
        extend_from(&mut vars, files.inventory.groups.get("all"));
        extend_from(&mut vars, files.playbook.groups.get("all"));
        for layer in [&files.inventory, &files.playbook] {
            for name in groups.iter().filter(|name| *name != "all") {
                extend_from(&mut vars, layer.groups.get(name));
            }
        }
        extend(&mut vars, &entry.vars);
        extend_from(&mut vars, files.inventory.hosts.get(host));
        extend_from(&mut vars, files.playbook.hosts.get(host));
        vars
    }

    /// Returns the variables Ansible derives from the inventory rather than reads:
    /// `inventory_hostname`, `inventory_hostname_short`, `group_names` (sorted,
    /// without `all`), `groups` (every group with all its hosts), and `inventory_file`
    /// and `inventory_dir` for hosts read from a file.
    pub fn magic_vars(&self, host: &str) -> Map<String, Value> {
        let mut vars = self.host_magic_vars(host);
        vars.insert("groups".into(), Value::Object(self.groups_map()));
        vars
    }

    /// Returns [`Inventory::magic_vars`] without `groups`, which is the same for every
    /// host and takes time in proportion to the inventory size to build.
    pub fn host_magic_vars(&self, host: &str) -> Map<String, Value> {
        let mut vars = Map::new();
        vars.insert("inventory_hostname".into(), Value::from(host));
        let short = host.split('.').next().unwrap_or(host);
        vars.insert("inventory_hostname_short".into(), Value::from(short));

        let mut group_names: Vec<String> = self
            .groups_of(host)
            .into_iter()
            .filter(|name| name != "all")
            .collect();
        group_names.sort();
        vars.insert("group_names".into(), Value::from(group_names));

        if let Some(file) = self.host_files.get(host) {
            vars.insert(
                "inventory_file".into(),
                Value::from(file.display().to_string()),
            );
            let dir = file.parent().unwrap_or(Path::new(""));
            vars.insert(
                "inventory_dir".into(),
                Value::from(dir.display().to_string()),
            );
        }
        vars
    }

    /// Returns the inventory in the shape of `ansible-inventory --list`: `_meta.hostvars`
    /// with each host's merged variables, then every non-empty group with its direct
    /// `hosts` and its `children`, starting from `all`.
    pub fn to_list_json(&self) -> Value {
        let hostvars: Map<String, Value> = self
            .hosts
            .iter()
            .map(|host| (host.name.clone(), Value::Object(self.host_vars(&host.name))))
            .collect();
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        let mut out = Map::new();
        out.insert("_meta".into(), Value::Object(meta));

        let mut seen = BTreeSet::new();
        self.list_group("all", &mut seen, &mut out);
        Value::Object(out)
    }

    /// Returns the `groups` variable: every group with all its hosts, in inventory order.
    /// It is the same for every host, so a caller can compute it once per play.
    pub fn groups_map(&self) -> Map<String, Value> {
        self.groups
            .keys()
            .map(|name| (name.clone(), Value::from(self.hosts_of_group(name))))
            .collect()
    }

    /// Returns every host in a group or its descendants, in inventory order.
    // NOTE: Ansible lists a group's own hosts before those of its child groups, so
    // `groups['site']` can order hosts differently there.
    pub fn hosts_of_group(&self, group: &str) -> Vec<String> {
        if group == "all" {
            return self.host_names();
        }
        let mut members: BTreeSet<&str> = BTreeSet::new();
        let mut pending = vec![group];
        let mut visited = BTreeSet::new();
        while let Some(name) = pending.pop() {
            if !visited.insert(name) {
                continue;
            }
            if let Some(entry) = self.groups.get(name) {
                members.extend(entry.hosts.iter().map(String::as_str));
                pending.extend(entry.children.iter().map(String::as_str));
            }
        }
        self.hosts
            .iter()
            .filter(|host| members.contains(host.name.as_str()))
            .map(|host| host.name.clone())
            .collect()
    }

    /// Adds a host to a group (creating both when new) and sets its inventory variables.
    /// A host listed again keeps its position, and later variables replace earlier ones.
    pub fn add_host(&mut self, group: &str, name: &str, vars: Map<String, Value>) {
        match self.hosts.iter_mut().find(|host| host.name == name) {
            Some(host) => extend(&mut host.vars, &vars),
            None => self.hosts.push(Host {
                name: name.to_string(),
                vars,
            }),
        }
        let entry = self.ensure_group(group);
        if !entry.hosts.iter().any(|host| host == name) {
            entry.hosts.push(name.to_string());
        }
    }

    /// Makes `child` a child group of `parent`, creating both when new. Fails when
    /// that would make a group its own ancestor, as Ansible does.
    pub fn add_child(&mut self, parent: &str, child: &str) -> Result<(), String> {
        if child == "all" {
            return Err("group `all` cannot be a child of another group".to_string());
        }
        if parent == child || self.is_descendant(child, parent) {
            return Err(format!(
                "adding group `{child}` as a child of `{parent}` creates a loop of child groups"
            ));
        }
        self.ensure_group(child);
        let entry = self.ensure_group(parent);
        if !entry.children.iter().any(|name| name == child) {
            entry.children.push(child.to_string());
        }
        Ok(())
    }

    /// Returns the group named `name`, created empty when new.
    pub fn ensure_group(&mut self, name: &str) -> &mut Group {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                ..Group::default()
            })
    }

    fn group_names(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|host| host.name.clone()).collect()
    }

    fn parents_of(&self, name: &str) -> Vec<String> {
        self.groups
            .values()
            .filter(|group| group.children.iter().any(|child| child == name))
            .map(|group| group.name.clone())
            .collect()
    }

    /// Returns whether `group` is reachable from `ancestor` through children.
    fn is_descendant(&self, ancestor: &str, group: &str) -> bool {
        let mut pending = vec![ancestor];
        let mut visited = BTreeSet::new();
        while let Some(name) = pending.pop() {
            if !visited.insert(name) {
                continue;
            }
            if let Some(entry) = self.groups.get(name) {
                for child in &entry.children {
                    if child == group {
                        return true;
                    }
                    pending.push(child);
                }
            }
        }
        false
    }

    /// Returns a group's depth: 0 for `all`, else one more than its deepest parent.
    fn depth(&self, name: &str) -> usize {
        if name == "all" {
            return 0;
        }
        self.parents_of(name)
            .iter()
            .map(|parent| self.depth(parent) + 1)
            .max()
            .unwrap_or(1)
    }

    fn priority(&self, name: &str) -> i64 {
        let value = self
            .groups
            .get(name)
            .and_then(|group| group.vars.get("ansible_group_priority"));
        match value {
            Some(Value::Number(number)) => number.as_i64().unwrap_or(1),
            Some(Value::String(text)) => text.trim().parse().unwrap_or(1),
            _ => 1,
        }
    }

    /// Sorts groups the way Ansible's `sort_groups` does: by depth, priority, then name.
    fn sort_groups(&self, names: Vec<String>) -> Vec<String> {
        let mut keyed: Vec<(usize, i64, String)> = names
            .into_iter()
            .map(|name| (self.depth(&name), self.priority(&name), name))
            .collect();
        keyed.sort();
        keyed.into_iter().map(|(_, _, name)| name).collect()
    }

    /// Links top-level groups under `all` and fills `ungrouped` with the hosts that are
    /// in no group but `all`, as Ansible's `reconcile_inventory` does after loading.
    /// `load` calls it; code that builds an inventory with `add_host` calls it last.
    pub fn reconcile(&mut self) {
        let orphans: Vec<String> = self
            .groups
            .keys()
            .filter(|name| *name != "all" && self.parents_of(name).is_empty())
            .cloned()
            .collect();
        for name in orphans {
            let all = self.ensure_group("all");
            all.children.push(name);
        }

        let grouped: BTreeSet<&str> = self
            .groups
            .values()
            .filter(|group| group.name != "all" && group.name != "ungrouped")
            .flat_map(|group| group.hosts.iter().map(String::as_str))
            .collect();
        let ungrouped: Vec<String> = self
            .hosts
            .iter()
            .filter(|host| !grouped.contains(host.name.as_str()))
            .map(|host| host.name.clone())
            .collect();
        self.ensure_group("ungrouped").hosts = ungrouped;
        self.ensure_group("all").hosts.clear();
    }

    fn list_group(&self, name: &str, seen: &mut BTreeSet<String>, out: &mut Map<String, Value>) {
        let Some(group) = self.groups.get(name) else {
            return;
        };
        let mut entry = Map::new();
        if name != "all" && !group.hosts.is_empty() {
            entry.insert("hosts".into(), Value::from(group.hosts.clone()));
        }
        let mut children = group.children.clone();
        children.sort();
        if !children.is_empty() {
            entry.insert("children".into(), Value::from(children.clone()));
        }
        if !entry.is_empty() {
            out.insert(name.to_string(), Value::Object(entry));
        }
        for child in children {
            if seen.insert(child.clone()) {
                self.list_group(&child, seen, out);
            }
        }
    }

    fn load_dir(&mut self, dir: &Path, errors: &mut Diagnostics) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) => {
                errors.push(Diagnostic::new(format!(
                    "cannot read inventory directory `{}`: {error}",
                    dir.display()
                )));
                return;
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let ignored = name.starts_with('.')
                || IGNORED_NAMES.contains(&name.as_str())
                || IGNORED_SUFFIXES.iter().any(|suffix| name.ends_with(suffix));
            if ignored {
                continue;
            }
            let path = dir.join(&name);
            if path.is_dir() {
                self.load_dir(&path, errors);
            } else {
                self.load_file(&path, errors);
            }
        }
    }

    fn load_file(&mut self, path: &Path, errors: &mut Diagnostics) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                errors.push(Diagnostic::new(format!(
                    "cannot read inventory `{}`: {error}",
                    path.display()
                )));
                return;
            }
        };
        let file = SourceFile::new(path, text);
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let before: BTreeSet<String> = self.host_names().into_iter().collect();

        match extension {
            "yml" | "yaml" | "json" => match crate::yaml::parse(file) {
                Ok(root) => yaml::load(self, &root, errors),
                Err(error) => errors.push(error),
            },
            "ini" => ini::load(self, &file, errors),
            _ => match crate::yaml::parse(file.clone()) {
                Ok(root) if yaml::looks_like_inventory(&root) => yaml::load(self, &root, errors),
                Err(error) if yaml::starts_like_yaml(&file.text) => errors.push(error),
                _ => ini::load(self, &file, errors),
            },
        }

        // Ansible sets `inventory_file` to the absolute path of the source.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        for host in self.host_names() {
            if !before.contains(&host) {
                self.host_files.insert(host, absolute.clone());
            }
        }
    }

    /// Loads a `web1,web2:2222,` host list into `ungrouped`, without ranges, as
    /// Ansible's `host_list` plugin does.
    fn load_host_list(&mut self, list: &str, errors: &mut Diagnostics) {
        for item in list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            match range::split_port(item) {
                Ok((name, port)) => self.add_host("ungrouped", &name, port_vars(port)),
                Err(message) => errors.push(
                    Diagnostic::new(format!("invalid host list `{list}`: {message}"))
                        .with_help("separate hosts with commas, as in `web1,web2:2222,`"),
                ),
            }
        }
    }
}

/// Returns the variables a `host:port` suffix sets.
fn port_vars(port: Option<u16>) -> Map<String, Value> {
    let mut vars = Map::new();
    if let Some(port) = port {
        vars.insert("ansible_port".into(), Value::from(port));
    }
    vars
}

/// Copies `source` over `target`. A key set in both takes the value from `source`
/// whole, as Ansible's default `hash_behaviour=replace` does.
fn extend(target: &mut Map<String, Value>, source: &Map<String, Value>) {
    for (key, value) in source {
        target.insert(key.clone(), value.clone());
    }
}

fn extend_from(target: &mut Map<String, Value>, source: Option<&Map<String, Value>>) {
    if let Some(source) = source {
        extend(target, source);
    }
}
