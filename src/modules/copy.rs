//! `copy`: writes a file from inline `content`, a local file or folder, or a file
//! already on the host, sending content only when the host's SHA-256 differs.
//!
//! The `template` module renders its source and then plans through [`CopyAction`].

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::args::{bool_or, opt_str, req_str};
use super::common::{
    atomic_copy_script, atomic_write_script, backup_file, content_diff, file_attrs, format_mode,
    insert_path_fields, opt_mode, opt_validate, parse_key_values, parse_path_state, plan_attrs,
    quote, resolve_mode, resolved_write_attrs, section, section_header, sha1_hex, sha256_hex,
    split_sections, FileAttrs, PathKind, PathProbe, PathState, CONTENT_LIMIT, FILE_ATTR_PARAMS,
};
use super::{
    Action, Args, BuildContext, Change, ExecOutput, HostView, ModuleError, ModuleKind, ModuleSpec,
    Param, ParamKind, Plan,
};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "copy",
    aliases: &["ansible.builtin.copy", "ansible.legacy.copy"],
    params: &[
        Param::new("src", ParamKind::Str),
        Param::new("content", ParamKind::Raw),
        Param::new("dest", ParamKind::Str).required(),
        Param::new("backup", ParamKind::Bool),
        Param::new("validate", ParamKind::Str),
        Param::new("force", ParamKind::Bool).aliases(&["thirsty"]),
        Param::new("follow", ParamKind::Bool),
        Param::new("local_follow", ParamKind::Bool),
        Param::new("remote_src", ParamKind::Bool),
        Param::new("directory_mode", ParamKind::Mode),
        Param::new("decrypt", ParamKind::Bool),
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

/// The source of the new content.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Bytes known on the controller: `content`, a local file or a rendered template.
    Bytes(Vec<u8>),
    /// A local folder: its folders and files relative to the destination folder.
    Tree {
        folders: Vec<String>,
        files: Vec<(String, Vec<u8>)>,
    },
    /// A file already on the host (`remote_src: true`).
    Remote(String),
}

/// A planned copy of one file or folder tree to `dest`.
#[derive(Debug, Clone)]
pub(crate) struct CopyAction {
    pub dest: String,
    pub source: Source,
    /// The value of `src`, registered as `src` in the result.
    pub src: Option<String>,
    /// The name the file gets when `dest` is a folder: the base name of `src`.
    pub file_name: Option<String>,
    pub attrs: FileAttrs,
    pub directory_mode: Option<String>,
    pub backup: bool,
    pub validate: Option<String>,
    pub force: bool,
    pub follow: bool,
}

fn build(args: &Args, context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let dest = req_str(args, "dest")?;
    let src = opt_str(args, "src")?;
    let content = match args.get("content") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone().into_bytes()),
        // Ansible writes a mapping or list given as `content` as JSON.
        Some(other) => Some(other.to_string().into_bytes()),
    };
    let remote_src = bool_or(args, "remote_src", false)?;
    if !bool_or(args, "local_follow", true)? {
        return Err(ModuleError::InvalidArgument(
            "argument `local_follow: false` is not supported: local symbolic links are always copied as the files they point to".into(),
        ));
    }
    // NOTE: `decrypt` is accepted, but a vault-encrypted `src` is copied as it is,
    // because vpsforge does not decrypt vault files.

    let (source, file_name) = match (src, content) {
        (Some(_), Some(_)) => {
            return Err(ModuleError::InvalidArgument(
                "arguments `src` and `content` are mutually exclusive: give one of them".into(),
            ))
        }
        (None, None) => {
            return Err(ModuleError::InvalidArgument(
                "one of the arguments `src` or `content` is required".into(),
            ))
        }
        (None, Some(bytes)) => {
            if dest.ends_with('/') {
                return Err(ModuleError::InvalidArgument(format!(
                    "argument `dest` must be a file path when `content` is given, not the folder `{dest}`"
                )));
            }
            (Source::Bytes(bytes), None)
        }
        (Some(src), None) if remote_src => {
            let name = base_name(&src);
            (Source::Remote(src), name)
        }
        (Some(src), None) => {
            let local = find_local_file(&src, context.search_paths)?;
            if local.is_dir() {
                let contents_only = src.ends_with('/');
                let prefix = if contents_only {
                    String::new()
                } else {
                    base_name(&src).unwrap_or_default()
                };
                (read_tree(&local, &prefix)?, None)
            } else {
                let bytes = std::fs::read(&local).map_err(|error| {
                    ModuleError::Failed(format!("cannot read `{}`: {error}", local.display()))
                })?;
                (Source::Bytes(bytes), base_name(&src))
            }
        }
    };

    let copy = CopyAction {
        dest,
        source,
        src: opt_str(args, "src")?,
        file_name,
        attrs: file_attrs(args)?,
        directory_mode: opt_mode(args, "directory_mode")?,
        backup: bool_or(args, "backup", false)?,
        validate: opt_validate(args)?,
        force: bool_or(args, "force", true)?,
        follow: bool_or(args, "follow", false)?,
    };
    Ok(Box::new(copy))
}

/// Returns the last component of `path`, ignoring a trailing `/`.
pub(crate) fn base_name(path: &str) -> Option<String> {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|name| !name.is_empty())
        .map(String::from)
}

/// Finds a relative `src` in the search paths (role `files/` or `templates/`, then
/// the playbook folder); an absolute one is used as it is.
pub(crate) fn find_local_file(src: &str, search_paths: &[PathBuf]) -> Result<PathBuf, ModuleError> {
    let path = Path::new(src);
    if path.is_absolute() {
        return if path.exists() {
            Ok(path.to_path_buf())
        } else {
            Err(ModuleError::Failed(format!(
                "could not find `src` file `{src}` on the controller: check the path"
            )))
        };
    }
    let candidates: Vec<PathBuf> = if search_paths.is_empty() {
        vec![path.to_path_buf()]
    } else {
        search_paths
            .iter()
            .map(|folder| folder.join(path))
            .collect()
    };
    candidates
        .iter()
        .find(|candidate| candidate.exists())
        .cloned()
        .ok_or_else(|| {
            ModuleError::Failed(format!(
                "could not find `src` file `{src}` in {}: put it in the role's `files/` or `templates/` folder or next to the playbook",
                candidates
                    .iter()
                    .map(|candidate| format!("`{}`", candidate.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Reads a local folder into relative folder and file lists under `prefix`.
/// Symbolic links are followed, as Ansible's `local_follow` default does.
fn read_tree(root: &Path, prefix: &str) -> Result<Source, ModuleError> {
    let mut folders = vec![prefix.to_string()];
    let mut files = Vec::new();
    let mut pending = vec![(root.to_path_buf(), prefix.to_string())];
    while let Some((folder, relative)) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&folder)
            .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
            .map_err(|error| {
                ModuleError::Failed(format!(
                    "cannot read folder `{}`: {error}",
                    folder.display()
                ))
            })?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = join(&relative, &name);
            let path = entry.path();
            if path.is_dir() {
                folders.push(child.clone());
                pending.push((path, child));
            } else {
                let bytes = std::fs::read(&path).map_err(|error| {
                    ModuleError::Failed(format!("cannot read `{}`: {error}", path.display()))
                })?;
                files.push((child, bytes));
            }
        }
    }
    folders.sort();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Source::Tree { folders, files })
}

fn join(folder: &str, name: &str) -> String {
    match (folder, name) {
        ("", name) => name.to_string(),
        (folder, "") => folder.to_string(),
        (folder, name) => format!("{}/{name}", folder.trim_end_matches('/')),
    }
}

fn parent_of(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((parent, _)) => parent.to_string(),
        None => ".".to_string(),
    }
}

/// The state of one destination file, as the probe reports it.
struct Target {
    path: String,
    state: PathState,
    parent_exists: bool,
}

impl CopyAction {
    fn file_probe() -> PathProbe {
        PathProbe {
            follow: true,
            checksums: true,
            content_limit: CONTENT_LIMIT,
        }
    }

    /// Returns the shell lines that set `vf_path` to the destination file and probe
    /// it: `dest` itself, or the source's base name inside it when `dest` is a folder.
    fn dest_script(&self) -> String {
        let mut script = format!("vf_dest={}\nvf_path=\"$vf_dest\"\n", quote(&self.dest));
        if let Some(name) = &self.file_name {
            script.push_str(&format!(
                "case \"$vf_dest\" in */) vf_path=\"$vf_dest\"{name} ;; *) if [ -d \"$vf_dest\" ]; then vf_path=\"$vf_dest/\"{name}; fi ;; esac\n",
                name = quote(name)
            ));
        }
        script.push_str(&section_header("dest"));
        script.push_str("printf 'path=%s\\n' \"$vf_path\"\n");
        script.push_str("if [ -d \"$(dirname -- \"$vf_path\")\" ]; then echo parent=1; fi\n");
        script.push_str(&section_header("file"));
        script.push_str(&Self::file_probe().script("vf_path"));
        script
    }

    fn parse_target(sections: &[(String, String)]) -> Result<Target, ModuleError> {
        let dest = parse_key_values(section(sections, "dest")?);
        let path = dest.get("path").cloned().ok_or_else(|| {
            ModuleError::Probe("the copy probe printed no destination `path` line".into())
        })?;
        Ok(Target {
            path,
            state: parse_path_state(section(sections, "file")?)?,
            parent_exists: dest.contains_key("parent"),
        })
    }

    /// Returns the destination of an entry of a source folder, relative to `dest`.
    fn tree_path(&self, relative: &str) -> String {
        join(&self.dest, relative)
    }

    /// Plans one file whose new content is known on the controller.
    fn plan_bytes(
        &self,
        target: &Target,
        content: &[u8],
        host: &HostView,
        create_parent: bool,
    ) -> Result<Plan, ModuleError> {
        let path = &target.path;
        let state = &target.state;
        if state.kind == PathKind::Directory {
            return Err(ModuleError::Failed(format!(
                "destination `{path}` is a directory: give a file path as `dest`, or a `src` whose name is used inside it"
            )));
        }
        let mut result = self.result(path, Some(sha1_hex(content)), content.len() as u64);
        if state.exists() && !self.force {
            insert_path_fields(&mut result, state);
            let mut plan = Plan::unchanged(format!("`{path}` exists and `force` is false"));
            plan.result = result;
            return Ok(plan);
        }

        let mut script = String::new();
        let mut note = String::new();
        if !target.parent_exists {
            let parent = parent_of(path);
            if create_parent {
                script.push_str(&self.mkdir_script(&parent)?);
            } else if host.check_mode && host.predicted.directories.contains(&parent) {
                note = format!(" (its folder `{parent}` would be created by an earlier task)");
            } else {
                return Err(ModuleError::Failed(format!(
                    "destination directory `{parent}` does not exist: create it first, for example with the `file` module and `state: directory`"
                )));
            }
        }

        if state.sha256.as_deref() == Some(sha256_hex(content).as_str()) {
            let reason = format!("`{path}` has the requested content and attributes");
            return self.plan_same_content(path, state, result, reason);
        }

        let write_path = self.write_path(target);
        let write_attrs = resolved_write_attrs(&self.attrs, Some(state))?;
        script.push_str(&atomic_write_script(
            &write_path,
            content,
            &write_attrs,
            self.validate.as_deref(),
            self.backup,
        ));
        let before = if state.exists() {
            state.content.as_deref()
        } else {
            Some(&b""[..])
        };
        let diff = before.and_then(|before| content_diff(path, Some(before), content));
        let verb = if state.exists() { "update" } else { "create" };
        let detail = if diff.is_some() {
            String::new()
        } else {
            format!(
                " ({} bytes, binary or too large to show a diff)",
                content.len()
            )
        };
        let mut changes = vec![Change {
            summary: format!("{verb} `{path}`{detail}{note}"),
            diff,
        }];
        if state.exists() {
            changes.extend(plan_attrs(path, &self.attrs, state)?.changes);
        }

        let after = self.written_state(state, &write_attrs, content.len() as u64);
        insert_path_fields(&mut result, &after);
        let mut plan = Plan {
            changes,
            apply: Some(script),
            result,
            ..Plan::default()
        };
        plan.predicts
            .files
            .insert(path.clone(), Some(content.to_vec()));
        Ok(plan)
    }

    /// Returns the path the content is written to: a symbolic link's final target
    /// with `follow: true`, else the destination itself, which replaces a link there.
    fn write_path(&self, target: &Target) -> String {
        match (&target.state.real_path, self.follow) {
            (Some(real_path), true) => real_path.clone(),
            _ => target.path.clone(),
        }
    }

    /// Predicts the attributes of the file after the write, for the result.
    fn written_state(&self, before: &PathState, attrs: &FileAttrs, size: u64) -> PathState {
        let mut after = if before.exists() {
            before.clone()
        } else {
            PathState {
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                ..PathState::default()
            }
        };
        after.kind = PathKind::File;
        after.size = size;
        if let Some(mode) = attrs
            .mode
            .as_deref()
            .and_then(|mode| u32::from_str_radix(mode, 8).ok())
        {
            after.mode = mode;
        }
        if let Some(owner) = &attrs.owner {
            after.owner = owner.clone();
        }
        if let Some(group) = &attrs.group {
            after.group = group.clone();
        }
        after
    }

    fn apply_requested_attrs(&self, result: &mut Map<String, Value>, state: &PathState) {
        if let Some(owner) = &self.attrs.owner {
            result.insert("owner".into(), Value::from(owner.clone()));
        }
        if let Some(group) = &self.attrs.group {
            result.insert("group".into(), Value::from(group.clone()));
        }
        if let Some(mode) = self
            .attrs
            .mode
            .as_deref()
            .and_then(|spec| resolve_mode(spec, state.mode, false).ok())
        {
            result.insert("mode".into(), Value::from(format_mode(mode)));
        }
    }

    fn mkdir_script(&self, folder: &str) -> Result<String, ModuleError> {
        let quoted = quote(folder);
        let mut script = format!("if [ ! -d {quoted} ]; then mkdir -p -- {quoted}");
        if let Some(spec) = &self.directory_mode {
            let mode = resolve_mode(spec, 0o755, true).map_err(|reason| {
                ModuleError::InvalidArgument(format!(
                    "argument `directory_mode` is invalid: {reason}"
                ))
            })?;
            script.push_str(&format!("; chmod {} -- {quoted}", format_mode(mode)));
        }
        if let Some(owner) = &self.attrs.owner {
            script.push_str(&format!("; chown {} -- {quoted}", quote(owner)));
        }
        if let Some(group) = &self.attrs.group {
            script.push_str(&format!("; chgrp {} -- {quoted}", quote(group)));
        }
        script.push_str("; fi\n");
        Ok(script)
    }

    fn plan_tree(
        &self,
        folders: &[String],
        files: &[(String, Vec<u8>)],
        sections: &[(String, String)],
        host: &HostView,
    ) -> Result<Plan, ModuleError> {
        let mut plan = Plan::default();
        let mut script = String::from("set -e\n");
        for folder in folders {
            let path = self.tree_path(folder);
            let state = parse_path_state(section(sections, &format!("folder {folder}"))?)?;
            match state.kind {
                PathKind::Directory => {}
                PathKind::Absent => {
                    plan.changes.push(Change {
                        summary: format!("create directory `{path}`"),
                        diff: None,
                    });
                    script.push_str(&self.mkdir_script(&path)?);
                    plan.predicts.directories.insert(path);
                }
                _ => {
                    return Err(ModuleError::Failed(format!(
                        "`{path}` exists and is not a directory, so the folder `src` cannot be copied into it"
                    )))
                }
            }
        }
        for (relative, content) in files {
            let target = Target {
                path: self.tree_path(relative),
                state: parse_path_state(section(sections, &format!("file {relative}"))?)?,
                parent_exists: true,
            };
            let file_plan = self.plan_bytes(&target, content, host, false)?;
            if let Some(apply) = &file_plan.apply {
                script.push_str(&format!("(\n{apply})\n"));
            }
            plan.changes.extend(file_plan.changes);
            plan.predicts.merge(file_plan.predicts);
        }

        plan.result = self.result(&self.dest, None, 0);
        plan.result.remove("size");
        if plan.changes.is_empty() {
            plan.reason = Some(format!(
                "the {} files under `{}` have the requested content and attributes",
                files.len(),
                self.dest
            ));
        } else {
            plan.apply = Some(script);
        }
        Ok(plan)
    }

    /// Plans a destination whose content already matches: attribute changes only.
    fn plan_same_content(
        &self,
        path: &str,
        state: &PathState,
        mut result: Map<String, Value>,
        reason: String,
    ) -> Result<Plan, ModuleError> {
        let attrs = plan_attrs(path, &self.attrs, state)?;
        insert_path_fields(&mut result, state);
        self.apply_requested_attrs(&mut result, state);
        if attrs.changes.is_empty() {
            let mut plan = Plan::unchanged(reason);
            plan.result = result;
            return Ok(plan);
        }
        Ok(Plan {
            changes: attrs.changes,
            apply: Some(format!("set -e\n{}", attrs.script)),
            result,
            ..Plan::default()
        })
    }

    /// Checks the source of a `remote_src` copy. Returns a plan when the source is
    /// missing but an earlier task would create it in check mode.
    fn check_remote_source(
        &self,
        src: &str,
        src_state: &PathState,
        path: &str,
        host: &HostView,
    ) -> Result<Option<Plan>, ModuleError> {
        match src_state.kind {
            PathKind::File => Ok(None),
            // NOTE: a folder `src` with `remote_src: true` is not copied yet.
            PathKind::Directory => Err(ModuleError::Failed(format!(
                "copying the directory `{src}` with `remote_src: true` is not supported: copy its files one by one"
            ))),
            _ if host.check_mode && host.predicted.files.contains_key(src) => {
                let summary =
                    format!("copy `{src}` to `{path}` (`{src}` would be created by an earlier task)");
                let script = atomic_copy_script(
                    src,
                    path,
                    &self.attrs,
                    self.validate.as_deref(),
                    self.backup,
                );
                let mut plan = Plan {
                    changes: vec![Change {
                        summary,
                        diff: None,
                    }],
                    apply: Some(script),
                    result: self.result(path, None, 0),
                    ..Plan::default()
                };
                plan.predicts.files.insert(path.to_string(), None);
                Ok(Some(plan))
            }
            _ => Err(ModuleError::Failed(format!(
                "source `{src}` not found on the host: check `src` or set `remote_src: false` to copy from the controller"
            ))),
        }
    }

    fn plan_remote(
        &self,
        src: &str,
        src_state: &PathState,
        target: &Target,
        host: &HostView,
    ) -> Result<Plan, ModuleError> {
        let path = &target.path;
        let state = &target.state;
        if let Some(plan) = self.check_remote_source(src, src_state, path, host)? {
            return Ok(plan);
        }
        if state.kind == PathKind::Directory {
            return Err(ModuleError::Failed(format!(
                "destination `{path}` is a directory: give a file path as `dest`"
            )));
        }
        let mut result = self.result(path, src_state.sha1.clone(), src_state.size);
        if state.exists() && !self.force {
            insert_path_fields(&mut result, state);
            let mut plan = Plan::unchanged(format!("`{path}` exists and `force` is false"));
            plan.result = result;
            return Ok(plan);
        }
        if !target.parent_exists {
            return Err(ModuleError::Failed(format!(
                "destination directory `{}` does not exist: create it first",
                parent_of(path)
            )));
        }
        if state.exists() && state.sha256 == src_state.sha256 {
            let reason = format!("`{path}` has the content of `{src}`");
            return self.plan_same_content(path, state, result, reason);
        }
        let write_attrs = resolved_write_attrs(&self.attrs, Some(state))?;
        let after = self.written_state(state, &write_attrs, src_state.size);
        insert_path_fields(&mut result, &after);
        let verb = if state.exists() { "update" } else { "create" };
        let mut plan = Plan {
            changes: vec![Change {
                summary: format!("{verb} `{path}` from `{src}` on the host"),
                diff: None,
            }],
            apply: Some(atomic_copy_script(
                src,
                &self.write_path(target),
                &write_attrs,
                self.validate.as_deref(),
                self.backup,
            )),
            result,
            ..Plan::default()
        };
        plan.predicts.files.insert(path.clone(), None);
        Ok(plan)
    }

    fn result(&self, dest: &str, checksum: Option<String>, size: u64) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert("dest".into(), Value::from(dest));
        if let Some(src) = &self.src {
            result.insert("src".into(), Value::from(src.clone()));
        }
        if let Some(checksum) = checksum {
            result.insert("checksum".into(), Value::from(checksum));
        }
        result.insert("size".into(), Value::from(size));
        result
    }
}

impl Action for CopyAction {
    fn probe(&self) -> Option<String> {
        match &self.source {
            Source::Bytes(_) => Some(self.dest_script()),
            Source::Remote(src) => {
                let mut script = self.dest_script();
                script.push_str(&format!("vf_src={}\n", quote(src)));
                script.push_str(&section_header("src"));
                script.push_str(
                    &PathProbe {
                        content_limit: 0,
                        ..Self::file_probe()
                    }
                    .script("vf_src"),
                );
                Some(script)
            }
            Source::Tree { folders, files } => {
                let folder_probe = PathProbe {
                    follow: true,
                    checksums: false,
                    content_limit: 0,
                };
                let mut script = String::new();
                for folder in folders {
                    script.push_str(&format!("vf_path={}\n", quote(&self.tree_path(folder))));
                    script.push_str(&section_header(&format!("folder {folder}")));
                    script.push_str(&folder_probe.script("vf_path"));
                }
                for (relative, _) in files {
                    script.push_str(&format!("vf_path={}\n", quote(&self.tree_path(relative))));
                    script.push_str(&section_header(&format!("file {relative}")));
                    script.push_str(&Self::file_probe().script("vf_path"));
                }
                Some(script)
            }
        }
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let sections = split_sections(&probe.stdout);
        match &self.source {
            Source::Bytes(content) => {
                let target = Self::parse_target(&sections)?;
                let create_parent = self.dest.ends_with('/');
                self.plan_bytes(&target, content, host, create_parent)
            }
            Source::Remote(src) => {
                let target = Self::parse_target(&sections)?;
                let src_state = parse_path_state(section(&sections, "src")?)?;
                self.plan_remote(src, &src_state, &target, host)
            }
            Source::Tree { folders, files } => self.plan_tree(folders, files, &sections, host),
        }
    }

    fn finish(&self, plan: &Plan, output: &ExecOutput) -> Result<Map<String, Value>, ModuleError> {
        if output.exit_code != 0 {
            return Err(ModuleError::Failed(format!(
                "writing `{}` failed with exit status {}: {}",
                self.dest,
                output.exit_code,
                output.stderr.trim()
            )));
        }
        let mut result = plan.result.clone();
        if let Some(backup) = backup_file(&output.stdout) {
            result.insert("backup_file".into(), Value::from(backup));
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::common::test_support::{
        apply_twice, assert_syntax, build, build_with, plan, plan_with, run_sh,
    };
    use crate::modules::Predictions;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    /// The `/etc/motd` in these probes contains "hello\n".
    const MOTD: &str = "==> dest <==\npath=/etc/motd\nparent=1\n==> file <==\nkind=regular file\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=644\nsize=6\nmtime=1733300000\ninode=2049:131100\nsha1=f572d396fae9206628714fb2ce00f72e94f2258f\nsha256=5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\ncontent=aGVsbG8K\n";
    const NO_PARENT: &str = "==> dest <==\npath=/srv/app/motd\n==> file <==\nkind=absent\n";

    fn summaries(plan: &Plan) -> Vec<String> {
        plan.changes
            .iter()
            .map(|change| change.summary.clone())
            .collect()
    }

    #[test]
    fn copy_plans_from_probe_output() {
        let cases = [
            (json!({"dest": "/etc/motd", "content": "hello\n"}), vec![]),
            (
                json!({"dest": "/etc/motd", "content": "hello\n", "mode": "0600"}),
                vec!["mode of `/etc/motd` 0644 -> 0600"],
            ),
            (
                json!({"dest": "/etc/motd", "content": "hello\n", "mode": "u=rw,g=r,o=r", "owner": "root"}),
                vec![],
            ),
            (
                json!({"dest": "/etc/motd", "content": "welcome\n"}),
                vec!["update `/etc/motd`"],
            ),
            (
                json!({"dest": "/etc/motd", "content": "welcome\n", "force": false}),
                vec![],
            ),
        ];
        for (args, expected) in cases {
            let action = build(&SPEC, args.clone()).unwrap();
            let plan = plan(action.as_ref(), MOTD);
            assert_eq!(summaries(&plan), expected, "args {args}");
            assert_eq!(plan.apply.is_some(), plan.changed(), "args {args}");
        }
    }

    #[test]
    fn copy_diff_shows_old_and_new_content() {
        let action = build(
            &SPEC,
            json!({"dest": "/etc/motd", "content": "welcome\n", "backup": true}),
        )
        .unwrap();
        let plan = plan(action.as_ref(), MOTD);
        let diff = plan.changes[0].diff.clone().unwrap();
        assert_eq!(diff.header, "/etc/motd");
        assert_eq!(diff.before, "hello\n");
        assert_eq!(diff.after, "welcome\n");
        assert_eq!(plan.result["checksum"], json!(sha1_hex(b"welcome\n")));
        assert_eq!(plan.result["mode"], json!("0644"));
        let script = plan.apply.unwrap();
        assert!(script.contains("vf_target=/etc/motd"), "{script}");
        assert!(script.contains("backup="), "{script}");
        assert_eq!(
            plan.predicts.files.get("/etc/motd"),
            Some(&Some(b"welcome\n".to_vec()))
        );
    }

    #[test]
    fn copy_binary_content_has_summary_only() {
        let action = build(&SPEC, json!({"dest": "/etc/motd", "content": "a\u{0}b"})).unwrap();
        let plan = plan(action.as_ref(), MOTD);
        assert_eq!(
            summaries(&plan),
            vec!["update `/etc/motd` (3 bytes, binary or too large to show a diff)"]
        );
        assert!(plan.changes[0].diff.is_none());
    }

    #[test]
    fn copy_needs_destination_folder() {
        let action = build(&SPEC, json!({"dest": "/srv/app/motd", "content": "x"})).unwrap();
        let error =
            plan_with(action.as_ref(), NO_PARENT, false, &Predictions::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("destination directory `/srv/app` does not exist"),
            "{error}"
        );

        let mut predicted = Predictions::default();
        predicted.directories.insert("/srv/app".into());
        let plan = plan_with(action.as_ref(), NO_PARENT, true, &predicted).unwrap();
        assert_eq!(
            summaries(&plan),
            vec!["create `/srv/app/motd` (its folder `/srv/app` would be created by an earlier task)"]
        );
    }

    #[test]
    fn copy_rejects_invalid_arguments() {
        for (args, needle) in [
            (json!({"dest": "/x"}), "`src` or `content`"),
            (
                json!({"dest": "/x", "content": "a", "src": "b"}),
                "mutually exclusive",
            ),
            (json!({"dest": "/x/", "content": "a"}), "`dest`"),
            (
                json!({"dest": "/x", "content": "a", "validate": "visudo -c"}),
                "`%s`",
            ),
            (
                json!({"dest": "/x", "content": "a", "mode": "0999"}),
                "`mode`",
            ),
            (
                json!({"dest": "/x", "src": "no-such-file-here"}),
                "could not find",
            ),
        ] {
            let error = build(&SPEC, args.clone()).err().unwrap();
            assert!(error.to_string().contains(needle), "args {args}: {error}");
        }
    }

    #[test]
    fn copy_probe_is_valid_sh() {
        let action = build(&SPEC, json!({"dest": "/etc/it's here", "content": "x"})).unwrap();
        assert_syntax(&action.probe().unwrap());
        let action = build(
            &SPEC,
            json!({"dest": "/etc/", "src": "/etc/hostname", "remote_src": true}),
        )
        .unwrap();
        assert_syntax(&action.probe().unwrap());
    }

    #[test]
    fn copy_content_applies_for_real() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("app.conf");
        let args =
            json!({"dest": dest.to_str().unwrap(), "content": "port = 80\n", "mode": "0640"});
        let action = build(&SPEC, args).unwrap();
        let (first, second) = apply_twice(action.as_ref());
        assert!(first.changed());
        assert!(!second.changed(), "{:?}", second.changes);
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "port = 80\n");
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o640
        );

        let args =
            json!({"dest": dest.to_str().unwrap(), "content": "port = 8080\n", "backup": true});
        let action = build(&SPEC, args).unwrap();
        let first = plan(action.as_ref(), &run_sh(&action.probe().unwrap()).stdout);
        let output = run_sh(first.apply.as_deref().unwrap());
        let result = action.finish(&first, &output).unwrap();
        let backup = result["backup_file"].as_str().unwrap();
        assert_eq!(std::fs::read_to_string(backup).unwrap(), "port = 80\n");
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn copy_local_folder_applies_for_real() {
        let source = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(source.path().join("site/css")).unwrap();
        std::fs::write(source.path().join("site/index.html"), "<h1>hi</h1>\n").unwrap();
        std::fs::write(source.path().join("site/css/main.css"), "body {}\n").unwrap();
        let dest = tempfile::tempdir().unwrap();
        let search = vec![source.path().to_path_buf()];

        let with_folder = json!({"src": "site", "dest": dest.path().join("www").to_str().unwrap()});
        let action = build_with(&SPEC, with_folder, &search).unwrap();
        let (first, second) = apply_twice(action.as_ref());
        assert_eq!(first.changes.len(), 4, "{:?}", summaries(&first));
        assert!(!second.changed(), "{:?}", second.changes);
        assert_eq!(
            std::fs::read_to_string(dest.path().join("www/site/css/main.css")).unwrap(),
            "body {}\n"
        );

        let contents_only =
            json!({"src": "site/", "dest": dest.path().join("flat").to_str().unwrap()});
        let action = build_with(&SPEC, contents_only, &search).unwrap();
        let (first, second) = apply_twice(action.as_ref());
        assert!(first.changed());
        assert!(!second.changed());
        assert!(dest.path().join("flat/index.html").exists());
    }

    #[test]
    fn copy_remote_src_into_folder() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("original.txt");
        std::fs::write(&src, "data\n").unwrap();
        std::fs::create_dir(dir.path().join("into")).unwrap();
        let args = json!({
            "src": src.to_str().unwrap(),
            "dest": dir.path().join("into").to_str().unwrap(),
            "remote_src": true,
        });
        let action = build(&SPEC, args).unwrap();
        let (first, second) = apply_twice(action.as_ref());
        assert!(first.changed());
        assert!(!second.changed(), "{:?}", second.changes);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("into/original.txt")).unwrap(),
            "data\n"
        );
    }

    #[test]
    fn copy_follow_writes_through_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.conf");
        let link = dir.path().join("link.conf");
        std::fs::write(&real, "old\n").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();

        let args = json!({"dest": link.to_str().unwrap(), "content": "new\n", "follow": true});
        let action = build(&SPEC, args).unwrap();
        let (first, second) = apply_twice(action.as_ref());
        assert!(first.changed());
        assert!(!second.changed());
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");

        let args = json!({"dest": link.to_str().unwrap(), "content": "newer\n"});
        let action = build(&SPEC, args).unwrap();
        let (first, _) = apply_twice(action.as_ref());
        assert!(first.changed());
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_file());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
    }
}
