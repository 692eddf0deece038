//! `file`: makes a path a file, directory, symbolic or hard link, or absent, and
//! sets its owner, group and mode.

use serde_json::{Map, Value};

use super::args::{bool_or, opt_str, req_str};
use super::common::{
    chmod_spec, file_attrs, format_mode, insert_path_fields, parse_key_values, parse_path_state,
    plan_attrs, quote, resolve_mode, section, section_header, split_sections, FileAttrs, PathKind,
    PathProbe, PathState, FILE_ATTR_PARAMS,
};
use super::{
    Action, Args, BuildContext, Change, Diff, ExecOutput, HostView, ModuleError, ModuleKind,
    ModuleSpec, Param, ParamKind, Plan,
};

const STATES: &[&str] = &["absent", "directory", "file", "hard", "link", "touch"];

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "file",
    aliases: &["ansible.builtin.file", "ansible.legacy.file"],
    params: &[
        Param::new("path", ParamKind::Str)
            .required()
            .aliases(&["dest", "name"]),
        Param::new("state", ParamKind::Str).choices(STATES),
        Param::new("src", ParamKind::Str),
        Param::new("force", ParamKind::Bool),
        Param::new("follow", ParamKind::Bool),
        Param::new("recurse", ParamKind::Bool),
        FILE_ATTR_PARAMS[0],
        FILE_ATTR_PARAMS[1],
        FILE_ATTR_PARAMS[2],
        FILE_ATTR_PARAMS[3],
        FILE_ATTR_PARAMS[4],
        FILE_ATTR_PARAMS[5],
        FILE_ATTR_PARAMS[6],
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Absent,
    Directory,
    File,
    Hard,
    Link,
    Touch,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Absent => "absent",
            State::Directory => "directory",
            State::File => "file",
            State::Hard => "hard",
            State::Link => "link",
            State::Touch => "touch",
        }
    }
}

struct File {
    path: String,
    /// `None` when the task gives no `state`: the current kind of the path, or `file`.
    state: Option<State>,
    src: Option<String>,
    force: bool,
    follow: bool,
    recurse: bool,
    attrs: FileAttrs,
}

fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let path = req_str(args, "path")?;
    let state = match opt_str(args, "state")?.as_deref() {
        None => None,
        Some("absent") => Some(State::Absent),
        Some("directory") => Some(State::Directory),
        Some("file") => Some(State::File),
        Some("hard") => Some(State::Hard),
        Some("link") => Some(State::Link),
        Some("touch") => Some(State::Touch),
        Some(other) => {
            return Err(ModuleError::InvalidArgument(format!(
                "argument `state` must be one of {}, not `{other}`",
                STATES
                    .iter()
                    .map(|state| format!("`{state}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    let src = opt_str(args, "src")?;
    let recurse = bool_or(args, "recurse", false)?;
    if matches!(state, Some(State::Link | State::Hard)) && src.is_none() {
        return Err(ModuleError::InvalidArgument(format!(
            "argument `src` is required with `state: {}`: set it to the path the link points to",
            state.map_or("link", State::name)
        )));
    }
    // Ansible resolves a relative hard link source against the module's working
    // folder, which vpsforge does not reproduce, so only absolute sources are taken.
    if state == Some(State::Hard) && src.as_deref().is_some_and(|src| !src.starts_with('/')) {
        return Err(ModuleError::InvalidArgument(
            "argument `src` must be an absolute path with `state: hard`".to_string(),
        ));
    }
    if src.is_some() && !matches!(state, Some(State::Link | State::Hard)) {
        return Err(ModuleError::InvalidArgument(
            "argument `src` is only used with `state: link` or `state: hard`: set the state or remove `src`"
                .to_string(),
        ));
    }
    if recurse && !matches!(state, None | Some(State::Directory)) {
        return Err(ModuleError::InvalidArgument(
            "argument `recurse` requires `state: directory`".to_string(),
        ));
    }
    Ok(Box::new(File {
        path: trim_trailing_slashes(&path),
        state,
        src,
        force: bool_or(args, "force", false)?,
        follow: bool_or(args, "follow", true)?,
        recurse,
        attrs: file_attrs(args)?,
    }))
}

fn trim_trailing_slashes(path: &str) -> String {
    match path.trim_end_matches('/') {
        "" if path.starts_with('/') => "/".to_string(),
        trimmed => trimmed.to_string(),
    }
}

/// One line of the recursive probe: an owner, group, mode and type that entries
/// below the directory have.
#[derive(Debug, Clone, PartialEq)]
struct TreeEntry {
    owner: String,
    group: String,
    uid: String,
    gid: String,
    mode: u32,
    is_dir: bool,
}

fn parse_tree(text: &str) -> Result<Vec<TreeEntry>, ModuleError> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let invalid = || {
                ModuleError::Probe(format!(
                    "the recursive probe printed `{line}`, which is not `COUNT OWNER GROUP UID GID MODE TYPE`"
                ))
            };
            if fields.len() != 7 {
                return Err(invalid());
            }
            Ok(TreeEntry {
                owner: fields[1].to_string(),
                group: fields[2].to_string(),
                uid: fields[3].to_string(),
                gid: fields[4].to_string(),
                mode: u32::from_str_radix(fields[5], 8).map_err(|_| invalid())?,
                is_dir: fields[6] == "d",
            })
        })
        .collect()
}

impl File {
    /// Returns the link source resolved against the link's folder, which is how a
    /// relative symbolic link resolves.
    fn resolved_src(&self) -> Option<String> {
        let src = self.src.as_deref()?;
        if src.starts_with('/') {
            return Some(src.to_string());
        }
        let parent = std::path::Path::new(&self.path)
            .parent()
            .map(|parent| parent.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = if parent.is_empty() {
            ".".to_string()
        } else {
            parent
        };
        Some(normalize(&format!("{parent}/{src}")))
    }

    fn plan_absent(&self, current: &PathState) -> Plan {
        if !current.exists() {
            return Plan::unchanged(format!("`{}` is absent", self.path));
        }
        let what = if current.kind == PathKind::Directory {
            "directory "
        } else {
            ""
        };
        let mut plan = self.changed_plan(
            vec![Change {
                summary: format!("remove {what}`{}`", self.path),
                diff: Some(state_diff(&self.path, kind_name(current), "absent")),
            }],
            format!("rm -rf -- {}\n", quote(&self.path)),
        );
        plan.result = self.result(State::Absent, None);
        plan
    }

    fn plan_directory(
        &self,
        current: &PathState,
        target: &PathState,
        tree: Option<&str>,
    ) -> Result<Plan, ModuleError> {
        let existing = match (&current.kind, &target.kind) {
            (PathKind::Absent, _) => None,
            (PathKind::Directory, _) => Some(current),
            (PathKind::Link, PathKind::Directory) if self.follow => Some(target),
            _ => {
                return Err(ModuleError::Failed(format!(
                    "`{}` exists as a {}, not a directory: remove it or choose another path",
                    self.path,
                    kind_name(current)
                )))
            }
        };

        let Some(existing) = existing else {
            let mut plan = self.create_directories()?;
            plan.predicts.directories.insert(self.path.clone());
            plan.result = self.result(State::Directory, None);
            return Ok(plan);
        };

        let attrs = plan_attrs(&self.path, &self.attrs, existing)?;
        let mut changes = attrs.changes;
        let mut script = attrs.script;
        if self.recurse {
            let entries = parse_tree(tree.unwrap_or_default())?;
            let (tree_changes, tree_script) = self.plan_tree(&entries)?;
            changes.extend(tree_changes);
            script.push_str(&tree_script);
        }
        if changes.is_empty() {
            let mut plan = Plan::unchanged(format!(
                "`{}` is a directory with the requested attributes",
                self.path
            ));
            plan.result = self.result(State::Directory, Some(existing));
            return Ok(plan);
        }
        let mut plan = self.changed_plan(changes, script);
        plan.result = self.result(State::Directory, Some(existing));
        Ok(plan)
    }

    /// Creates each missing folder of the path in turn and gives each new folder the
    /// requested attributes, as Ansible does.
    fn create_directories(&self) -> Result<Plan, ModuleError> {
        let mode = match &self.attrs.mode {
            Some(spec) => Some(format_mode(resolve_mode(spec, 0o755, true).map_err(
                |reason| {
                    ModuleError::InvalidArgument(format!("argument `mode` is invalid: {reason}"))
                },
            )?)),
            None => None,
        };
        let mut script = String::new();
        let mut prefix = String::new();
        for part in self.path.split('/') {
            if part.is_empty() {
                if prefix.is_empty() && self.path.starts_with('/') {
                    prefix.push('/');
                }
                continue;
            }
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            prefix.push_str(part);
            let folder = quote(&prefix);
            script.push_str(&format!("if [ ! -d {folder} ]; then mkdir -- {folder}"));
            if let Some(owner) = &self.attrs.owner {
                script.push_str(&format!("; chown {} -- {folder}", quote(owner)));
            }
            if let Some(group) = &self.attrs.group {
                script.push_str(&format!("; chgrp {} -- {folder}", quote(group)));
            }
            if let Some(mode) = &mode {
                script.push_str(&format!("; chmod {mode} -- {folder}"));
            }
            script.push_str("; fi\n");
        }
        Ok(self.changed_plan(
            vec![Change {
                summary: format!("create directory `{}`", self.path),
                diff: Some(state_diff(&self.path, "absent", "directory")),
            }],
            script,
        ))
    }

    /// Compares the entries below the directory with the requested attributes and
    /// returns the recursive `chown`, `chgrp` and `chmod` that fix them.
    fn plan_tree(&self, entries: &[TreeEntry]) -> Result<(Vec<Change>, String), ModuleError> {
        let path = quote(&self.path);
        let mut changes = Vec::new();
        let mut script = String::new();
        if let Some(owner) = &self.attrs.owner {
            if entries
                .iter()
                .any(|entry| entry.owner != *owner && entry.uid != *owner)
            {
                changes.push(Change {
                    summary: format!("owner of entries under `{}` -> {owner}", self.path),
                    diff: None,
                });
                script.push_str(&format!("chown -R {} -- {path}\n", quote(owner)));
            }
        }
        if let Some(group) = &self.attrs.group {
            if entries
                .iter()
                .any(|entry| entry.group != *group && entry.gid != *group)
            {
                changes.push(Change {
                    summary: format!("group of entries under `{}` -> {group}", self.path),
                    diff: None,
                });
                script.push_str(&format!("chgrp -R {} -- {path}\n", quote(group)));
            }
        }
        if let Some(spec) = &self.attrs.mode {
            let mut differs = false;
            for entry in entries {
                let wanted = resolve_mode(spec, entry.mode, entry.is_dir).map_err(|reason| {
                    ModuleError::InvalidArgument(format!("argument `mode` is invalid: {reason}"))
                })?;
                differs |= wanted != entry.mode;
            }
            if differs {
                changes.push(Change {
                    summary: format!("mode of entries under `{}` -> {spec}", self.path),
                    diff: None,
                });
                script.push_str(&format!(
                    "chmod -R {} -- {path}\n",
                    quote(&chmod_spec(spec))
                ));
            }
        }
        Ok((changes, script))
    }

    fn plan_file(
        &self,
        current: &PathState,
        target: &PathState,
        host: &HostView,
    ) -> Result<Plan, ModuleError> {
        let existing = match (&current.kind, &target.kind) {
            (PathKind::File | PathKind::Other(_), _) => current,
            (PathKind::Link, PathKind::File) if self.follow => target,
            (PathKind::Absent, _)
                if host.check_mode && host.predicted.files.contains_key(&self.path) =>
            {
                let mut plan = Plan::unchanged(format!(
                    "`{}` would be created by an earlier task, so its attributes are checked on a real run",
                    self.path
                ));
                plan.result = self.result(State::File, None);
                return Ok(plan);
            }
            (PathKind::Absent, _) => {
                return Err(ModuleError::Failed(format!(
                    "file `{}` is absent, cannot continue: use `state: touch` to create it",
                    self.path
                )))
            }
            _ => {
                return Err(ModuleError::Failed(format!(
                    "`{}` is a {}, not a file: use `state: {}` or choose another path",
                    self.path,
                    kind_name(current),
                    kind_name(current)
                )))
            }
        };
        let attrs = plan_attrs(&self.path, &self.attrs, existing)?;
        if attrs.changes.is_empty() {
            let mut plan = Plan::unchanged(format!(
                "`{}` is a file with the requested attributes",
                self.path
            ));
            plan.result = self.result(State::File, Some(existing));
            return Ok(plan);
        }
        let mut plan = self.changed_plan(attrs.changes, attrs.script);
        plan.result = self.result(State::File, Some(existing));
        Ok(plan)
    }

    fn plan_touch(&self, current: &PathState, target: &PathState) -> Result<Plan, ModuleError> {
        let path = quote(&self.path);
        if !current.exists() {
            let mut script = format!("touch -- {path}\n");
            if let Some(owner) = &self.attrs.owner {
                script.push_str(&format!("chown {} -- {path}\n", quote(owner)));
            }
            if let Some(group) = &self.attrs.group {
                script.push_str(&format!("chgrp {} -- {path}\n", quote(group)));
            }
            if let Some(spec) = &self.attrs.mode {
                let mode = resolve_mode(spec, 0o644, false).map_err(|reason| {
                    ModuleError::InvalidArgument(format!("argument `mode` is invalid: {reason}"))
                })?;
                script.push_str(&format!("chmod {} -- {path}\n", format_mode(mode)));
            }
            let mut plan = self.changed_plan(
                vec![Change {
                    summary: format!("create `{}`", self.path),
                    diff: Some(state_diff(&self.path, "absent", "file")),
                }],
                script,
            );
            plan.predicts
                .files
                .insert(self.path.clone(), Some(Vec::new()));
            plan.result = self.result(State::File, None);
            return Ok(plan);
        }

        let existing = if current.kind == PathKind::Link && self.follow && target.exists() {
            target
        } else {
            current
        };
        let attrs = plan_attrs(&self.path, &self.attrs, existing)?;
        let mut changes = vec![Change {
            summary: format!(
                "update the access and modification times of `{}`",
                self.path
            ),
            diff: None,
        }];
        changes.extend(attrs.changes);
        let mut plan = self.changed_plan(changes, format!("touch -- {path}\n{}", attrs.script));
        plan.result = self.result(existing_state(existing), Some(existing));
        Ok(plan)
    }

    fn plan_link(
        &self,
        current: &PathState,
        src: &PathState,
        directory_is_empty: bool,
        host: &HostView,
    ) -> Result<Plan, ModuleError> {
        let link_src = self.src.clone().unwrap_or_default();
        let resolved = self.resolved_src().unwrap_or_default();
        let path = quote(&self.path);
        let mut note = "";
        if !src.exists() && !self.force {
            let predicted = host.check_mode
                && (host.predicted.files.contains_key(&resolved)
                    || host.predicted.directories.contains(&resolved));
            if !predicted {
                return Err(ModuleError::Failed(format!(
                    "src file `{resolved}` does not exist: create it first, or set `force: true` to create the link `{}` anyway",
                    self.path
                )));
            }
            note = " (its source would be created by an earlier task)";
        }

        if current.kind == PathKind::Link && current.link_target.as_deref() == Some(&link_src) {
            return self.plan_link_attrs(current);
        }

        let mut script = String::new();
        let summary = match &current.kind {
            PathKind::Absent => format!("link `{}` -> {link_src}{note}", self.path),
            PathKind::Link => format!(
                "link `{}` -> {link_src}, was -> {}{note}",
                self.path,
                current.link_target.as_deref().unwrap_or_default()
            ),
            PathKind::Directory if self.force && directory_is_empty => {
                script.push_str(&format!("rmdir -- {path}\n"));
                format!(
                    "replace the empty directory `{}` with a link -> {link_src}{note}",
                    self.path
                )
            }
            PathKind::Directory if self.force => {
                return Err(ModuleError::Failed(format!(
                    "the directory `{}` is not empty, refusing to convert it to a link",
                    self.path
                )))
            }
            other if self.force => format!(
                "replace the {} `{}` with a link -> {link_src}{note}",
                kind_name_of(other),
                self.path
            ),
            other => {
                return Err(ModuleError::Failed(format!(
                "refusing to convert from {} to symlink for `{}`: set `force: true` to replace it",
                kind_name_of(other),
                self.path
            )))
            }
        };
        script.push_str(&format!("ln -sfn -- {} {path}\n", quote(&link_src)));
        script.push_str(&self.link_owner_script());
        let mut plan = self.changed_plan(
            vec![Change {
                summary,
                diff: Some(state_diff(&self.path, kind_name(current), "link")),
            }],
            script,
        );
        plan.predicts.files.insert(self.path.clone(), None);
        plan.result = self.result(State::Link, None);
        plan.result.insert("src".into(), Value::from(link_src));
        Ok(plan)
    }

    fn plan_link_attrs(&self, current: &PathState) -> Result<Plan, ModuleError> {
        let link_attrs = FileAttrs {
            mode: None,
            ..self.attrs.clone()
        };
        let attrs = plan_attrs(&self.path, &link_attrs, current)?;
        let mut plan = if attrs.changes.is_empty() {
            Plan::unchanged(format!(
                "`{}` is a link -> {}",
                self.path,
                current.link_target.as_deref().unwrap_or_default()
            ))
        } else {
            self.changed_plan(attrs.changes, attrs.script)
        };
        plan.result = self.result(State::Link, Some(current));
        plan.result.insert(
            "src".into(),
            Value::from(self.src.clone().unwrap_or_default()),
        );
        Ok(plan)
    }

    fn link_owner_script(&self) -> String {
        let path = quote(&self.path);
        let mut script = String::new();
        if let Some(owner) = &self.attrs.owner {
            script.push_str(&format!("chown -h {} -- {path}\n", quote(owner)));
        }
        if let Some(group) = &self.attrs.group {
            script.push_str(&format!("chgrp -h {} -- {path}\n", quote(group)));
        }
        script
    }

    fn plan_hard(
        &self,
        current: &PathState,
        src: &PathState,
        host: &HostView,
    ) -> Result<Plan, ModuleError> {
        let resolved = self.resolved_src().unwrap_or_default();
        let path = quote(&self.path);
        let mut note = "";
        if !src.exists() {
            if !(host.check_mode && host.predicted.files.contains_key(&resolved)) {
                return Err(ModuleError::Failed(format!(
                    "src file `{resolved}` does not exist: a hard link needs an existing file"
                )));
            }
            note = " (its source would be created by an earlier task)";
        }

        if current.exists() && src.exists() && current.inode == src.inode {
            let attrs = plan_attrs(&self.path, &self.attrs, current)?;
            let mut plan = if attrs.changes.is_empty() {
                Plan::unchanged(format!("`{}` is a hard link to `{resolved}`", self.path))
            } else {
                self.changed_plan(attrs.changes, attrs.script)
            };
            plan.result = self.result(State::Hard, Some(current));
            return Ok(plan);
        }
        if current.kind == PathKind::Directory {
            return Err(ModuleError::Failed(format!(
                "refusing to convert from directory to hard link for `{}`",
                self.path
            )));
        }
        if current.exists() && !self.force {
            return Err(ModuleError::Failed(format!(
                "refusing to convert from {} to hard link for `{}`: set `force: true` to replace it",
                kind_name(current),
                self.path
            )));
        }

        let mut script = format!("ln -f -- {} {path}\n", quote(&resolved));
        let attrs = FileAttrs {
            mode: self.attrs.mode.as_ref().map(|spec| chmod_spec(spec)),
            ..self.attrs.clone()
        };
        if let Some(owner) = &attrs.owner {
            script.push_str(&format!("chown {} -- {path}\n", quote(owner)));
        }
        if let Some(group) = &attrs.group {
            script.push_str(&format!("chgrp {} -- {path}\n", quote(group)));
        }
        if let Some(mode) = &attrs.mode {
            script.push_str(&format!("chmod {} -- {path}\n", quote(mode)));
        }
        let mut plan = self.changed_plan(
            vec![Change {
                summary: format!("hard link `{}` to `{resolved}`{note}", self.path),
                diff: Some(state_diff(&self.path, kind_name(current), "hard")),
            }],
            script,
        );
        plan.predicts.files.insert(self.path.clone(), None);
        plan.result = self.result(State::Hard, None);
        Ok(plan)
    }

    fn changed_plan(&self, changes: Vec<Change>, script: String) -> Plan {
        Plan {
            changes,
            apply: Some(format!("set -e\n{script}")),
            ..Plan::default()
        }
    }

    /// Builds the registered result: `path`, `state` and, when the path exists, its
    /// attributes with the requested ones applied.
    fn result(&self, state: State, existing: Option<&PathState>) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert("path".into(), Value::from(self.path.clone()));
        if let Some(existing) = existing {
            insert_path_fields(&mut result, existing);
            if let Some(owner) = &self.attrs.owner {
                result.insert("owner".into(), Value::from(owner.clone()));
            }
            if let Some(group) = &self.attrs.group {
                result.insert("group".into(), Value::from(group.clone()));
            }
            if let Some(spec) = &self.attrs.mode {
                if let Ok(mode) =
                    resolve_mode(spec, existing.mode, existing.kind == PathKind::Directory)
                {
                    result.insert("mode".into(), Value::from(format_mode(mode)));
                }
            }
        }
        result.insert("state".into(), Value::from(state.name()));
        result
    }
}

impl Action for File {
    fn probe(&self) -> Option<String> {
        let lstat = PathProbe {
            follow: false,
            checksums: false,
            content_limit: 0,
        };
        let follow = PathProbe {
            follow: true,
            ..lstat
        };
        let mut script = format!("vf_path={}\n", quote(&self.path));
        script.push_str(&section_header("path"));
        script.push_str(&lstat.script("vf_path"));
        script.push_str(&section_header("target"));
        script.push_str(&follow.script("vf_path"));
        script.push_str(&section_header("empty"));
        script.push_str("if [ -d \"$vf_path\" ] && [ ! -L \"$vf_path\" ]; then if [ -z \"$(ls -A -- \"$vf_path\")\" ]; then echo empty=1; else echo empty=0; fi; fi\n");
        if let Some(src) = self.resolved_src() {
            script.push_str(&format!("vf_src={}\n", quote(&src)));
            script.push_str(&section_header("src"));
            script.push_str(&follow.script("vf_src"));
        }
        if self.recurse {
            script.push_str(&section_header("tree"));
            script.push_str("if [ -d \"$vf_path\" ]; then find \"$vf_path\" -mindepth 1 ! -type l -printf '%u %g %U %G %m %y\\n' | sort | uniq -c; fi\n");
        }
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let sections = split_sections(&probe.stdout);
        let current = parse_path_state(section(&sections, "path")?)?;
        let target = parse_path_state(section(&sections, "target")?)?;
        let directory_is_empty = parse_key_values(section(&sections, "empty")?)
            .get("empty")
            .is_some_and(|value| value == "1");
        let src = match self.src {
            Some(_) => parse_path_state(section(&sections, "src")?)?,
            None => PathState::default(),
        };
        let tree = if self.recurse {
            Some(section(&sections, "tree")?)
        } else {
            None
        };

        let state = self.state.unwrap_or(if self.recurse {
            State::Directory
        } else {
            match current.kind {
                PathKind::Directory => State::Directory,
                PathKind::Link if !self.follow => State::Link,
                PathKind::Link if target.kind == PathKind::Directory => State::Directory,
                _ => State::File,
            }
        });
        match state {
            State::Absent => Ok(self.plan_absent(&current)),
            State::Directory => self.plan_directory(&current, &target, tree),
            State::File => self.plan_file(&current, &target, host),
            State::Touch => self.plan_touch(&current, &target),
            State::Link => self.plan_link(&current, &src, directory_is_empty, host),
            State::Hard => self.plan_hard(&current, &src, host),
        }
    }
}

fn existing_state(state: &PathState) -> State {
    match state.kind {
        PathKind::Directory => State::Directory,
        PathKind::Link => State::Link,
        _ => State::File,
    }
}

fn kind_name(state: &PathState) -> &'static str {
    kind_name_of(&state.kind)
}

fn kind_name_of(kind: &PathKind) -> &'static str {
    match kind {
        PathKind::Absent => "absent",
        PathKind::File => "file",
        PathKind::Directory => "directory",
        PathKind::Link => "link",
        PathKind::Other(_) => "special file",
    }
}

/// Returns a diff of the path's state, as Ansible's `file` module shows it.
fn state_diff(path: &str, before: &str, after: &str) -> Diff {
    Diff {
        header: path.to_string(),
        before: format!("path: {path}\nstate: {before}\n"),
        after: format!("path: {path}\nstate: {after}\n"),
    }
}

/// Removes `.` and `..` components as text, without reading the file system.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::common::test_support::{
        apply_twice, assert_syntax, build, plan, plan_with, run_sh,
    };
    use crate::modules::Predictions;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    const ETC_NGINX: &str = "==> path <==\nkind=directory\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=755\nsize=4096\nmtime=1733300000\ninode=2049:1835010\n==> target <==\nkind=directory\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=755\nsize=4096\nmtime=1733300000\ninode=2049:1835010\n==> empty <==\nempty=0\n";
    const ABSENT: &str = "==> path <==\nkind=absent\n==> target <==\nkind=absent\n==> empty <==\n";
    const HOSTS_FILE: &str = "==> path <==\nkind=regular file\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=644\nsize=186\nmtime=1733300000\ninode=2049:131090\n==> target <==\nkind=regular file\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=644\nsize=186\nmtime=1733300000\ninode=2049:131090\n==> empty <==\n";

    fn summaries(plan: &Plan) -> Vec<String> {
        plan.changes
            .iter()
            .map(|change| change.summary.clone())
            .collect()
    }

    #[test]
    fn file_plans_from_probe_output() {
        let cases = [
            (
                json!({"path": "/etc/nginx", "state": "directory"}),
                ETC_NGINX,
                vec![],
            ),
            (
                json!({"path": "/etc/nginx", "state": "directory", "mode": "0750"}),
                ETC_NGINX,
                vec!["mode of `/etc/nginx` 0755 -> 0750"],
            ),
            (
                json!({"path": "/etc/nginx", "state": "directory", "mode": "u=rwx,g=rx,o=rx"}),
                ETC_NGINX,
                vec![],
            ),
            (
                json!({"path": "/srv/app/data", "state": "directory"}),
                ABSENT,
                vec!["create directory `/srv/app/data`"],
            ),
            (
                json!({"path": "/etc/hosts", "owner": "root", "mode": "0644"}),
                HOSTS_FILE,
                vec![],
            ),
            (
                json!({"path": "/etc/hosts", "owner": "www-data", "mode": "u=rw,go="}),
                HOSTS_FILE,
                vec![
                    "owner of `/etc/hosts` root -> www-data",
                    "mode of `/etc/hosts` 0644 -> 0600",
                ],
            ),
            (
                json!({"path": "/etc/hosts", "state": "absent"}),
                HOSTS_FILE,
                vec!["remove `/etc/hosts`"],
            ),
            (json!({"path": "/nope", "state": "absent"}), ABSENT, vec![]),
            (
                json!({"path": "/etc/hosts", "state": "touch"}),
                HOSTS_FILE,
                vec!["update the access and modification times of `/etc/hosts`"],
            ),
        ];
        for (args, probe, expected) in cases {
            let action = build(&SPEC, args.clone()).unwrap();
            let plan = plan(action.as_ref(), probe);
            assert_eq!(summaries(&plan), expected, "args {args}");
            assert_eq!(plan.apply.is_some(), plan.changed(), "args {args}");
        }
    }

    #[test]
    fn file_creates_each_missing_directory() {
        let action = build(
            &SPEC,
            json!({"path": "/srv/app", "state": "directory", "mode": "0750", "owner": "app"}),
        )
        .unwrap();
        let plan = plan(action.as_ref(), ABSENT);
        let script = plan.apply.unwrap();
        assert!(
            script.contains(
                "if [ ! -d /srv ]; then mkdir -- /srv; chown app -- /srv; chmod 0750 -- /srv; fi"
            ),
            "{script}"
        );
        assert!(script.contains("mkdir -- /srv/app;"), "{script}");
        assert!(plan.predicts.directories.contains("/srv/app"));
    }

    #[test]
    fn file_state_file_fails_when_absent() {
        let action = build(&SPEC, json!({"path": "/etc/missing.conf", "state": "file"})).unwrap();
        let error = plan_with(action.as_ref(), ABSENT, false, &Predictions::default()).unwrap_err();
        assert!(
            error.to_string().contains("`/etc/missing.conf` is absent"),
            "{error}"
        );
    }

    #[test]
    fn file_link_to_predicted_source_in_check_mode() {
        let action = build(
            &SPEC,
            json!({"path": "/etc/nginx/sites-enabled/app", "src": "/etc/nginx/sites-available/app", "state": "link"}),
        )
        .unwrap();
        let probe = format!("{ABSENT}==> src <==\nkind=absent\n");
        let error = plan_with(action.as_ref(), &probe, true, &Predictions::default()).unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");

        let mut predicted = Predictions::default();
        predicted
            .files
            .insert("/etc/nginx/sites-available/app".to_string(), None);
        let plan = plan_with(action.as_ref(), &probe, true, &predicted).unwrap();
        assert_eq!(
            summaries(&plan),
            vec!["link `/etc/nginx/sites-enabled/app` -> /etc/nginx/sites-available/app (its source would be created by an earlier task)"]
        );
    }

    #[test]
    fn file_refuses_to_replace_file_with_link() {
        let action = build(
            &SPEC,
            json!({"path": "/etc/hosts", "src": "/tmp/x", "state": "link"}),
        )
        .unwrap();
        let probe = format!("{HOSTS_FILE}==> src <==\nkind=regular file\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=644\nsize=1\nmtime=1\ninode=1:2\n");
        let error = plan_with(action.as_ref(), &probe, false, &Predictions::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("refusing to convert from file to symlink"),
            "{error}"
        );
    }

    #[test]
    fn file_rejects_invalid_arguments() {
        for (args, needle) in [
            (json!({"path": "/x", "state": "link"}), "`src`"),
            (json!({"path": "/x", "state": "present"}), "`state`"),
            (json!({"path": "/x", "mode": "u=banana"}), "`mode`"),
            (
                json!({"path": "/x", "state": "file", "recurse": true}),
                "`recurse`",
            ),
        ] {
            let error = build(&SPEC, args.clone()).err().unwrap();
            assert!(error.to_string().contains(needle), "args {args}: {error}");
        }
    }

    #[test]
    fn file_probe_is_valid_sh() {
        let action = build(
            &SPEC,
            json!({"path": "/srv/a b", "src": "../x", "state": "link"}),
        )
        .unwrap();
        assert_syntax(&action.probe().unwrap());
        let action = build(
            &SPEC,
            json!({"path": "/srv", "recurse": true, "mode": "u=rwX"}),
        )
        .unwrap();
        assert_syntax(&action.probe().unwrap());
    }

    #[test]
    fn file_states_apply_for_real() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_string();
        std::fs::write(dir.path().join("source"), "x").unwrap();

        for args in [
            json!({"path": format!("{root}/a/b/c"), "state": "directory", "mode": "0750"}),
            json!({"path": format!("{root}/a"), "state": "directory", "recurse": true, "mode": "u=rwX,g=,o="}),
            json!({"path": format!("{root}/link"), "state": "link", "src": "source"}),
            json!({"path": format!("{root}/hard"), "state": "hard", "src": format!("{root}/source")}),
            json!({"path": format!("{root}/source"), "mode": "0600"}),
            json!({"path": format!("{root}/a/b"), "state": "absent"}),
        ] {
            let action = build(&SPEC, args.clone()).unwrap();
            let (first, second) = apply_twice(action.as_ref());
            assert!(first.changed(), "first run of {args}");
            assert!(
                !second.changed(),
                "second run of {args}: {:?}",
                second.changes
            );
        }

        let mode = |path: &str| {
            std::fs::metadata(format!("{root}/{path}"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("a"), 0o700);
        assert_eq!(mode("source"), 0o600);
        assert!(!dir.path().join("a/b").exists());
        assert_eq!(
            std::fs::read_link(dir.path().join("link"))
                .unwrap()
                .to_str(),
            Some("source")
        );
        assert_eq!(
            run_sh(&format!("stat -c %h {root}/source")).stdout.trim(),
            "2"
        );
    }

    #[test]
    fn file_touch_always_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stamp");
        let action = build(
            &SPEC,
            json!({"path": path.to_str().unwrap(), "state": "touch", "mode": "0640"}),
        )
        .unwrap();
        let (first, second) = apply_twice(action.as_ref());
        assert_eq!(
            summaries(&first),
            vec![format!("create `{}`", path.display())]
        );
        assert!(second.changed());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }
}
