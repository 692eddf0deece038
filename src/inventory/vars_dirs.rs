//! `group_vars/` and `host_vars/` folders, read the way ansible-core's
//! `host_group_vars` plugin reads them.
//!
//! For a group or host `NAME`, the files `NAME`, `NAME.yml`, `NAME.yaml` and
//! `NAME.json` load in that order, and a folder `NAME/` loads every such file
//! inside it, recursively, in sorted order. Files for names the inventory does
//! not contain are not read, as in Ansible.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::yaml::NodeValue;

/// The variables of `group_vars/` and `host_vars/` beside the inventory and beside
/// the playbook, which rank differently.
#[derive(Debug, Default, Clone)]
pub struct VarsFiles {
    pub inventory: DirVars,
    pub playbook: DirVars,
}

/// Variables read from one kind of location, by group name and by host name.
#[derive(Debug, Default, Clone)]
pub struct DirVars {
    pub groups: BTreeMap<String, Map<String, Value>>,
    pub hosts: BTreeMap<String, Map<String, Value>>,
}

const EXTENSIONS: &[&str] = &["", ".yml", ".yaml", ".json"];

impl DirVars {
    /// Reads `dir/group_vars/GROUP` and `dir/host_vars/HOST` for the given names.
    pub fn load(dir: &Path, groups: &[String], hosts: &[String]) -> Result<DirVars, Diagnostics> {
        let mut errors = Diagnostics::default();
        let vars = DirVars {
            groups: load_entities(&dir.join("group_vars"), groups, &mut errors),
            hosts: load_entities(&dir.join("host_vars"), hosts, &mut errors),
        };
        if errors.is_empty() {
            Ok(vars)
        } else {
            Err(errors)
        }
    }

    /// Adds `other` on top of these variables: a key set in both takes `other`'s value.
    pub fn merge(&mut self, other: DirVars) {
        for (target, source) in [
            (&mut self.groups, other.groups),
            (&mut self.hosts, other.hosts),
        ] {
            for (name, vars) in source {
                let entry = target.entry(name).or_default();
                for (key, value) in vars {
                    entry.insert(key, value);
                }
            }
        }
    }
}

fn load_entities(
    dir: &Path,
    names: &[String],
    errors: &mut Diagnostics,
) -> BTreeMap<String, Map<String, Value>> {
    let mut loaded = BTreeMap::new();
    if !dir.is_dir() {
        return loaded;
    }
    for name in names {
        let mut vars = Map::new();
        for file in files_for(dir, name) {
            match read_vars_file(&file) {
                Ok(file_vars) => vars.extend(file_vars),
                Err(error) => errors.push(error),
            }
        }
        if !vars.is_empty() {
            loaded.insert(name.clone(), vars);
        }
    }
    loaded
}

/// Returns the files that hold variables for `name`, in load order.
fn files_for(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for extension in EXTENSIONS {
        let path = dir.join(format!("{name}{extension}"));
        if path.is_dir() && extension.is_empty() {
            collect_dir(&path, &mut files);
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
}

fn collect_dir(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            !name.starts_with('.') && !name.ends_with('~')
        })
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_dir(&path, files);
            continue;
        }
        let extension = path.extension().and_then(|e| e.to_str());
        let accepted = match extension {
            None => true,
            Some(extension) => EXTENSIONS.contains(&format!(".{extension}").as_str()),
        };
        if accepted {
            files.push(path);
        }
    }
}

fn read_vars_file(path: &Path) -> Result<Map<String, Value>, Diagnostic> {
    let root = crate::yaml::load_file(path)?;
    match &root.value {
        NodeValue::Null => Ok(Map::new()),
        NodeValue::Map(_) => match root.to_json() {
            Value::Object(vars) => Ok(vars),
            _ => Ok(Map::new()),
        },
        _ => Err(root
            .error(format!(
                "variables file `{}` must contain a mapping of variable names to values, not {}",
                path.display(),
                root.kind()
            ))
            .with_help("write one `name: value` line per variable")),
    }
}
