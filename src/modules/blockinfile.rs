//! `blockinfile`: keeps a block of lines between two marker lines in a file.
//!
//! The edit is computed on the controller from the probed content with the rules of
//! Ansible's `blockinfile` module, so blocks that Ansible wrote are recognised by the
//! same default markers, then written atomically.

use regex::bytes::Regex;
use serde_json::{Map, Value};

use super::args::{bool_or, choice, opt_str, req_str};
use super::common::{
    backup_file, base_content, content_diff, edit_probe, file_attrs, guarded_edit_script,
    opt_validate, parse_edit_probe, plan_attrs, AttrPlan, BaseContent, FileAttrs, PathKind,
    PathState, FILE_ATTR_PARAMS,
};
use super::{
    Action, Args, BuildContext, Change, ExecOutput, HostView, ModuleError, ModuleKind, ModuleSpec,
    Param, ParamKind, Plan,
};

const DEFAULT_MARKER: &str = "# {mark} ANSIBLE MANAGED BLOCK";

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "blockinfile",
    aliases: &["ansible.builtin.blockinfile", "ansible.legacy.blockinfile"],
    params: &[
        Param::new("path", ParamKind::Str)
            .required()
            .aliases(&["dest", "destfile", "name"]),
        Param::new("state", ParamKind::Str).choices(&["absent", "present"]),
        Param::new("marker", ParamKind::Str),
        Param::new("block", ParamKind::Str).aliases(&["content"]),
        Param::new("insertafter", ParamKind::Str),
        Param::new("insertbefore", ParamKind::Str),
        Param::new("create", ParamKind::Bool),
        Param::new("backup", ParamKind::Bool),
        Param::new("validate", ParamKind::Str),
        Param::new("marker_begin", ParamKind::Str),
        Param::new("marker_end", ParamKind::Str),
        Param::new("append_newline", ParamKind::Bool),
        Param::new("prepend_newline", ParamKind::Bool),
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

/// The position of a new block when the file has no complete pair of markers.
#[derive(Debug, Clone)]
enum Insert {
    /// After the last line matching the pattern, or at the end when none does.
    After(Pattern),
    /// Before the last line matching the pattern, or at the end when none does.
    Before(Pattern),
    Bof,
    Eof,
}

#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    /// Whether the pattern sets the `m` flag, which makes Ansible search the whole
    /// file instead of each line.
    multiline: bool,
}

struct BlockInFile {
    path: String,
    present: bool,
    /// The block with a final newline, or empty.
    block: Vec<u8>,
    begin: Vec<u8>,
    end: Vec<u8>,
    insert: Insert,
    create: bool,
    append_newline: bool,
    prepend_newline: bool,
    attrs: FileAttrs,
    backup: bool,
    validate: Option<String>,
}

fn compile(name: &str, pattern: &str) -> Result<Pattern, ModuleError> {
    let regex = Regex::new(pattern).map_err(|error| {
        ModuleError::InvalidArgument(format!(
            "argument `{name}` is not a valid regular expression (look-around and backreferences are not supported): {error}"
        ))
    })?;
    let multiline = pattern
        .strip_prefix("(?")
        .and_then(|rest| rest.split([')', ':']).next())
        .is_some_and(|flags| flags.split('-').next().unwrap_or("").contains('m'));
    Ok(Pattern { regex, multiline })
}

fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let path = req_str(args, "path")?;
    let present = choice(args, "state", &["absent", "present"], "present")? == "present";
    let marker = opt_str(args, "marker")?.unwrap_or_else(|| DEFAULT_MARKER.to_string());
    let marker_begin = opt_str(args, "marker_begin")?.unwrap_or_else(|| "BEGIN".to_string());
    let marker_end = opt_str(args, "marker_end")?.unwrap_or_else(|| "END".to_string());
    let mut block = opt_str(args, "block")?.unwrap_or_default().into_bytes();
    if !block.is_empty() && !block.ends_with(b"\n") {
        block.push(b'\n');
    }
    let insertafter = opt_str(args, "insertafter")?;
    let insertbefore = opt_str(args, "insertbefore")?;
    let insert =
        match (insertafter.as_deref(), insertbefore.as_deref()) {
            (Some(_), Some(_)) => return Err(ModuleError::InvalidArgument(
                "arguments `insertafter` and `insertbefore` are mutually exclusive: give only one"
                    .into(),
            )),
            (None, None) | (Some("EOF"), None) => Insert::Eof,
            (Some(pattern), None) => Insert::After(compile("insertafter", pattern)?),
            (None, Some("BOF")) => Insert::Bof,
            (None, Some(pattern)) => Insert::Before(compile("insertbefore", pattern)?),
        };
    let marker_line = |mark: &str| format!("{}\n", marker.replace("{mark}", mark)).into_bytes();

    Ok(Box::new(BlockInFile {
        path,
        present,
        block,
        begin: marker_line(&marker_begin),
        end: marker_line(&marker_end),
        insert,
        create: bool_or(args, "create", false)?,
        append_newline: bool_or(args, "append_newline", false)?,
        prepend_newline: bool_or(args, "prepend_newline", false)?,
        attrs: file_attrs(args)?,
        backup: bool_or(args, "backup", false)?,
        validate: opt_validate(args)?,
    }))
}

/// Searches a line without its final `\n`, because Python's `$` also matches just
/// before a final newline and Rust's does not.
fn line_matches(regex: &Regex, line: &[u8]) -> bool {
    regex.is_match(line.strip_suffix(b"\n").unwrap_or(line))
}

impl BlockInFile {
    /// Returns the new content, with the rules of Ansible's `blockinfile` module.
    fn edit(&self, original: &[u8]) -> Vec<u8> {
        let mut lines: Vec<Vec<u8>> = original
            .split_inclusive(|byte| *byte == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        let block_lines: Vec<Vec<u8>> = if self.present && !self.block.is_empty() {
            let mut block_lines = vec![self.begin.clone()];
            block_lines.extend(
                self.block
                    .split_inclusive(|byte| *byte == b'\n')
                    .map(<[u8]>::to_vec),
            );
            block_lines.push(self.end.clone());
            block_lines
        } else {
            Vec::new()
        };

        let begin_at = lines.iter().rposition(|line| *line == self.begin);
        let end_at = lines.iter().rposition(|line| *line == self.end);
        let mut at = match (begin_at, end_at) {
            (Some(begin), Some(end)) => {
                let (first, last) = (begin.min(end), begin.max(end));
                lines.drain(first..=last);
                first
            }
            _ => self.insertion_point(original, &lines),
        };

        if at > 0 && !lines[at - 1].ends_with(b"\n") {
            lines[at - 1].push(b'\n');
        }
        if self.prepend_newline && self.present && at != 0 && lines[at - 1] != b"\n" {
            lines.insert(at, b"\n".to_vec());
            at += 1;
        }
        let after_block = at + block_lines.len();
        lines.splice(at..at, block_lines);
        if self.append_newline
            && self.present
            && after_block < lines.len()
            && lines[after_block] != b"\n"
        {
            lines.insert(after_block, b"\n".to_vec());
        }
        lines.concat()
    }

    /// Finds the line index a new block goes to when the file has no marker pair.
    fn insertion_point(&self, original: &[u8], lines: &[Vec<u8>]) -> usize {
        let (pattern, after) = match &self.insert {
            Insert::Bof => return 0,
            Insert::Eof => return lines.len(),
            Insert::After(pattern) => (pattern, true),
            Insert::Before(pattern) => (pattern, false),
        };
        let found = if pattern.multiline {
            pattern.regex.find(original).map(|found| {
                let offset = if after { found.end() } else { found.start() };
                original[..offset]
                    .iter()
                    .filter(|byte| **byte == b'\n')
                    .count()
            })
        } else {
            lines
                .iter()
                .rposition(|line| line_matches(&pattern.regex, line))
        };
        match found {
            None => lines.len(),
            Some(index) if after => index + 1,
            Some(index) => index,
        }
    }

    fn result(&self, message: &str) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert("msg".into(), Value::from(message));
        result
    }
}

impl Action for BlockInFile {
    fn probe(&self) -> Option<String> {
        Some(edit_probe(&self.path))
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let (state, _) = parse_edit_probe(&probe.stdout)?;
        let path = &self.path;
        if state.kind == PathKind::Directory {
            return Err(ModuleError::Failed(format!(
                "path `{path}` is a directory: give the path of a file"
            )));
        }
        let mut note = "";
        let original = match base_content(path, &state, host)? {
            BaseContent::Existing(content) => Some(content),
            BaseContent::Predicted(content) => {
                note = " (in the content an earlier task would write)";
                Some(content)
            }
            BaseContent::PredictedUnknown => {
                return Ok(Plan::unchanged(format!(
                    "`{path}` would be created by an earlier task with unknown content, so its block is checked on a real run"
                )))
            }
            BaseContent::Missing if !self.present => {
                let mut plan = Plan::unchanged(format!("`{path}` does not exist"));
                plan.result = self.result(&format!("File {path} not present"));
                return Ok(plan);
            }
            BaseContent::Missing if !self.create => {
                return Err(ModuleError::Failed(format!(
                    "path `{path}` does not exist: set `create: true` to create it"
                )))
            }
            BaseContent::Missing => None,
        };

        let before = original.clone().unwrap_or_default();
        let after = self.edit(&before);
        if original.as_ref() == Some(&after) {
            // Attributes of a file that only an earlier task would create are not known yet.
            let attrs = if state.exists() {
                plan_attrs(path, &self.attrs, &state)?
            } else {
                AttrPlan::default()
            };
            if attrs.changes.is_empty() {
                let mut plan = Plan::unchanged(if self.present && !self.block.is_empty() {
                    format!("`{path}` has the block")
                } else {
                    format!("`{path}` has no block")
                });
                plan.result = self.result("");
                return Ok(plan);
            }
            return Ok(Plan {
                changes: attrs.changes,
                apply: Some(format!("set -e\n{}", attrs.script)),
                result: self.result("ownership, perms or SE linux context changed"),
                ..Plan::default()
            });
        }

        let (message, summary) = if original.is_none() {
            ("File created", format!("create `{path}` with the block"))
        } else if !self.present || self.block.is_empty() {
            ("Block removed", format!("remove the block from `{path}`"))
        } else {
            ("Block inserted", format!("write the block in `{path}`"))
        };
        let probed = if state.exists() {
            state.clone()
        } else {
            PathState::default()
        };
        let mut changes = vec![Change {
            summary: format!("{summary}{note}"),
            diff: content_diff(path, Some(&before), &after),
        }];
        if state.exists() {
            changes.extend(plan_attrs(path, &self.attrs, &state)?.changes);
        }
        let mut plan = Plan {
            changes,
            apply: Some(guarded_edit_script(
                path,
                &probed,
                &after,
                &self.attrs,
                self.validate.as_deref(),
                self.backup,
            )?),
            result: self.result(message),
            ..Plan::default()
        };
        plan.predicts.files.insert(path.clone(), Some(after));
        Ok(plan)
    }

    fn finish(&self, plan: &Plan, output: &ExecOutput) -> Result<Map<String, Value>, ModuleError> {
        if output.exit_code != 0 {
            return Err(ModuleError::Failed(format!(
                "editing `{}` failed with exit status {}: {}",
                self.path,
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
        apply_twice, assert_syntax, build, plan, plan_with,
    };
    use crate::modules::Predictions;
    use base64::Engine as _;
    use serde_json::json;

    fn probe_of(content: &str) -> String {
        format!(
            "==> file <==\nkind=regular file\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=644\nsize={}\nmtime=1733300000\ninode=2049:9\nsha256={}\ncontent={}\n==> parent <==\nparent=1\n",
            content.len(),
            crate::modules::common::sha256_hex(content.as_bytes()),
            base64::engine::general_purpose::STANDARD.encode(content),
        )
    }

    const HOSTS: &str = "127.0.0.1 localhost\n::1 localhost\n";
    const WITH_BLOCK: &str = "127.0.0.1 localhost\n# BEGIN ANSIBLE MANAGED BLOCK\n10.0.0.2 db\n# END ANSIBLE MANAGED BLOCK\n::1 localhost\n";

    #[test]
    fn blockinfile_edits_like_ansible() {
        let cases: Vec<(serde_json::Value, &str, &str)> = vec![
            (
                json!({"block": "10.0.0.2 db"}),
                HOSTS,
                "127.0.0.1 localhost\n::1 localhost\n# BEGIN ANSIBLE MANAGED BLOCK\n10.0.0.2 db\n# END ANSIBLE MANAGED BLOCK\n",
            ),
            // A block that Ansible wrote is replaced in place.
            (json!({"block": "10.0.0.2 db\n"}), WITH_BLOCK, WITH_BLOCK),
            (
                json!({"block": "10.0.0.3 db"}),
                WITH_BLOCK,
                "127.0.0.1 localhost\n# BEGIN ANSIBLE MANAGED BLOCK\n10.0.0.3 db\n# END ANSIBLE MANAGED BLOCK\n::1 localhost\n",
            ),
            (json!({"state": "absent"}), WITH_BLOCK, HOSTS),
            (json!({"block": ""}), WITH_BLOCK, HOSTS),
            (json!({"state": "absent"}), HOSTS, HOSTS),
            (
                json!({"block": "x", "insertbefore": "BOF", "marker": "<!-- {mark} -->"}),
                HOSTS,
                "<!-- BEGIN -->\nx\n<!-- END -->\n127.0.0.1 localhost\n::1 localhost\n",
            ),
            (
                json!({"block": "x", "insertafter": "^127", "marker_begin": "start", "marker_end": "stop"}),
                HOSTS,
                "127.0.0.1 localhost\n# start ANSIBLE MANAGED BLOCK\nx\n# stop ANSIBLE MANAGED BLOCK\n::1 localhost\n",
            ),
            (
                json!({"block": "x", "insertbefore": "^::1", "prepend_newline": true, "append_newline": true}),
                HOSTS,
                "127.0.0.1 localhost\n\n# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\n\n::1 localhost\n",
            ),
            // No final newline before the block: one is added.
            (
                json!({"block": "x"}),
                "a",
                "a\n# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\n",
            ),
            // A multiline pattern is searched in the whole file.
            (
                json!({"block": "x", "insertafter": "(?m)^127.*\\n::1"}),
                "127.0.0.1 localhost\n::1 localhost\nz\n",
                "127.0.0.1 localhost\n::1 localhost\n# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\nz\n",
            ),
        ];
        for (mut args, before, after) in cases {
            args["path"] = json!("/etc/hosts");
            let action = build(&SPEC, args.clone()).unwrap();
            let plan = plan(action.as_ref(), &probe_of(before));
            assert_eq!(plan.changed(), before != after, "args {args}");
            if let Some(change) = plan.changes.first() {
                let diff = change.diff.clone().unwrap();
                assert_eq!(diff.before, before, "args {args}");
                assert_eq!(diff.after, after, "args {args}");
            }
        }
    }

    #[test]
    fn blockinfile_missing_file() {
        let missing = "==> file <==\nkind=absent\n==> parent <==\n";
        let action = build(&SPEC, json!({"path": "/etc/app.conf", "block": "a"})).unwrap();
        let error =
            plan_with(action.as_ref(), missing, false, &Predictions::default()).unwrap_err();
        assert!(error.to_string().contains("set `create: true`"), "{error}");

        let action = build(
            &SPEC,
            json!({"path": "/etc/app.conf", "block": "a", "create": true}),
        )
        .unwrap();
        let planned = plan(action.as_ref(), missing);
        assert_eq!(
            planned.changes[0].summary,
            "create `/etc/app.conf` with the block"
        );
        assert!(planned.apply.unwrap().contains("mkdir -p"));

        let mut predicted = Predictions::default();
        predicted.files.insert("/etc/app.conf".into(), None);
        let planned = plan_with(action.as_ref(), missing, true, &predicted).unwrap();
        assert!(!planned.changed());
    }

    #[test]
    fn blockinfile_rejects_invalid_arguments() {
        for (args, needle) in [
            (
                json!({"path": "/x", "insertafter": "a", "insertbefore": "b"}),
                "mutually exclusive",
            ),
            (
                json!({"path": "/x", "insertafter": "(?=a)"}),
                "`insertafter`",
            ),
            (json!({"path": "/x", "state": "gone"}), "`state`"),
        ] {
            let error = build(&SPEC, args.clone()).err().unwrap();
            assert!(error.to_string().contains(needle), "args {args}: {error}");
        }
    }

    #[test]
    fn blockinfile_applies_for_real() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, HOSTS).unwrap();
        let action = build(
            &SPEC,
            json!({"path": path.to_str().unwrap(), "block": "10.0.0.2 db\n10.0.0.3 cache", "backup": true}),
        )
        .unwrap();
        assert_syntax(&action.probe().unwrap());
        let (first, second) = apply_twice(action.as_ref());
        assert!(first.changed());
        assert!(!second.changed(), "{:?}", second.changes);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .ends_with("# BEGIN ANSIBLE MANAGED BLOCK\n10.0.0.2 db\n10.0.0.3 cache\n# END ANSIBLE MANAGED BLOCK\n"));
    }
}
