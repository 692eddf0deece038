//! `lineinfile`: makes sure one line is present in a file, or that no line matches.
//!
//! The edit is computed on the controller from the probed content with the rules of
//! Ansible's `lineinfile` module, then written atomically.

use regex::bytes::{Captures, Regex};
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

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "lineinfile",
    aliases: &["ansible.builtin.lineinfile", "ansible.legacy.lineinfile"],
    params: &[
        Param::new("path", ParamKind::Str)
            .required()
            .aliases(&["dest", "destfile", "name"]),
        Param::new("state", ParamKind::Str).choices(&["absent", "present"]),
        Param::new("regexp", ParamKind::Str).aliases(&["regex"]),
        Param::new("search_string", ParamKind::Str),
        Param::new("line", ParamKind::Str).aliases(&["value"]),
        Param::new("insertafter", ParamKind::Str),
        Param::new("insertbefore", ParamKind::Str),
        Param::new("backrefs", ParamKind::Bool),
        Param::new("create", ParamKind::Bool),
        Param::new("backup", ParamKind::Bool),
        Param::new("firstmatch", ParamKind::Bool),
        Param::new("validate", ParamKind::Str),
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

/// The position of a new line when no line matches.
#[derive(Debug, Clone)]
enum Insert {
    /// After the last line matching the pattern (the first with `firstmatch`).
    After(Regex),
    Before(Regex),
    Bof,
    Eof,
}

#[derive(Debug, Clone)]
enum Matcher {
    Regexp(Regex),
    Search(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Edit {
    Present {
        line: Vec<u8>,
        matcher: Option<Matcher>,
        insert: Insert,
        backrefs: bool,
        firstmatch: bool,
        create: bool,
    },
    Absent {
        matcher: Option<Matcher>,
        line: Option<Vec<u8>>,
    },
}

struct LineInFile {
    path: String,
    edit: Edit,
    attrs: FileAttrs,
    backup: bool,
    validate: Option<String>,
}

fn compile(name: &str, pattern: &str) -> Result<Regex, ModuleError> {
    Regex::new(pattern).map_err(|error| {
        ModuleError::InvalidArgument(format!(
            "argument `{name}` is not a valid regular expression (look-around and backreferences are not supported): {error}"
        ))
    })
}

fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let path = req_str(args, "path")?;
    let state = choice(args, "state", &["absent", "present"], "present")?;
    let regexp = opt_str(args, "regexp")?;
    let search_string = opt_str(args, "search_string")?;
    let line = opt_str(args, "line")?;
    let insertafter = opt_str(args, "insertafter")?;
    let insertbefore = opt_str(args, "insertbefore")?;
    let backrefs = bool_or(args, "backrefs", false)?;

    for (first, second, both) in [
        (
            "insertbefore",
            "insertafter",
            insertbefore.is_some() && insertafter.is_some(),
        ),
        (
            "regexp",
            "search_string",
            regexp.is_some() && search_string.is_some(),
        ),
        (
            "backrefs",
            "search_string",
            backrefs && search_string.is_some(),
        ),
    ] {
        if both {
            return Err(ModuleError::InvalidArgument(format!(
                "arguments `{first}` and `{second}` are mutually exclusive: give only one"
            )));
        }
    }
    let matcher = match (&regexp, &search_string) {
        (Some(pattern), _) => Some(Matcher::Regexp(compile("regexp", pattern)?)),
        (None, Some(text)) => Some(Matcher::Search(text.clone().into_bytes())),
        (None, None) => None,
    };

    let edit = if state == "present" {
        if backrefs && regexp.is_none() {
            return Err(ModuleError::InvalidArgument(
                "argument `regexp` is required with `backrefs: true`".into(),
            ));
        }
        let Some(line) = line else {
            return Err(ModuleError::InvalidArgument(
                "argument `line` is required with `state: present`".into(),
            ));
        };
        let insert = match (insertafter.as_deref(), insertbefore.as_deref()) {
            (Some("EOF"), _) | (None, None) => Insert::Eof,
            (Some("BOF"), _) | (_, Some("BOF")) => Insert::Bof,
            (Some(pattern), _) => Insert::After(compile("insertafter", pattern)?),
            (None, Some(pattern)) => Insert::Before(compile("insertbefore", pattern)?),
        };
        Edit::Present {
            line: line.into_bytes(),
            matcher,
            insert,
            backrefs,
            firstmatch: bool_or(args, "firstmatch", false)?,
            create: bool_or(args, "create", false)?,
        }
    } else {
        if matcher.is_none() && line.is_none() {
            return Err(ModuleError::InvalidArgument(
                "one of `line`, `search_string` or `regexp` is required with `state: absent`"
                    .into(),
            ));
        }
        Edit::Absent {
            matcher,
            line: line.map(String::into_bytes),
        }
    };

    Ok(Box::new(LineInFile {
        path,
        edit,
        attrs: file_attrs(args)?,
        backup: bool_or(args, "backup", false)?,
        validate: opt_validate(args)?,
    }))
}

/// Splits content into lines that keep their `\n`, as Python's `readlines` does.
fn split_lines(content: &[u8]) -> Vec<Vec<u8>> {
    content
        .split_inclusive(|byte| *byte == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Strips trailing `\r` and `\n` bytes, as Python's `rstrip(b'\r\n')` does.
fn strip_eol(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|byte| *byte != b'\r' && *byte != b'\n')
        .map_or(0, |at| at + 1);
    &line[..end]
}

/// Searches a line without its final `\n`, because Python's `$` also matches just
/// before a final newline and Rust's does not.
fn search<'a>(regex: &Regex, line: &'a [u8]) -> Option<Captures<'a>> {
    regex.captures(line.strip_suffix(b"\n").unwrap_or(line))
}

fn ends_with_newline(lines: &[Vec<u8>]) -> bool {
    lines
        .last()
        .and_then(|line| line.last())
        .is_some_and(|byte| *byte == b'\n' || *byte == b'\r')
}

/// Expands a Python replacement template (`\1`, `\g<1>`, `\g<name>`, `\n`) with the
/// groups of a match; an unmatched group expands to nothing, as in Python 3.5+.
fn expand(template: &[u8], captures: &Captures) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut i = 0;
    while i < template.len() {
        let byte = template[i];
        if byte != b'\\' || i + 1 == template.len() {
            out.push(byte);
            i += 1;
            continue;
        }
        let next = template[i + 1];
        let group = |out: &mut Vec<u8>, name: &str| {
            let found = match name.parse::<usize>() {
                Ok(index) => captures.get(index),
                Err(_) => captures.name(name),
            };
            if let Some(found) = found {
                out.extend_from_slice(found.as_bytes());
            }
        };
        if next.is_ascii_digit() {
            let digits = template[i + 1..]
                .iter()
                .take(2)
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            group(
                &mut out,
                &String::from_utf8_lossy(&template[i + 1..i + 1 + digits]),
            );
            i += 1 + digits;
            continue;
        }
        if next == b'g' && template.get(i + 2) == Some(&b'<') {
            if let Some(close) = template[i + 3..].iter().position(|byte| *byte == b'>') {
                group(
                    &mut out,
                    &String::from_utf8_lossy(&template[i + 3..i + 3 + close]),
                );
                i += 4 + close;
                continue;
            }
        }
        let escaped = match next {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'\\' => Some(b'\\'),
            _ => None,
        };
        match escaped {
            Some(escaped) => out.push(escaped),
            None => out.extend_from_slice(&[b'\\', next]),
        }
        i += 2;
    }
    out
}

/// The outcome of an edit: the new lines and Ansible's message for it, empty when
/// nothing changed.
struct Outcome {
    lines: Vec<Vec<u8>>,
    message: String,
    found: usize,
}

/// Applies `state: present` with the rules of Ansible's `lineinfile` module.
fn present(
    mut lines: Vec<Vec<u8>>,
    line: &[u8],
    matcher: Option<&Matcher>,
    insert: &Insert,
    backrefs: bool,
    firstmatch: bool,
) -> Outcome {
    let mut matched_at: Option<usize> = None;
    let mut insert_at: Option<usize> = None;
    let mut captures: Option<Captures> = None;

    match matcher {
        Some(Matcher::Regexp(regex)) => {
            for (number, current) in lines.iter().enumerate() {
                if let Some(found) = search(regex, current) {
                    matched_at = Some(number);
                    captures = Some(found);
                    if firstmatch {
                        break;
                    }
                }
            }
        }
        Some(Matcher::Search(text)) => {
            for (number, current) in lines.iter().enumerate() {
                if contains(current, text) {
                    matched_at = Some(number);
                    if firstmatch {
                        break;
                    }
                }
            }
        }
        None => {}
    }
    let matched = matched_at.is_some();

    if !matched {
        for (number, current) in lines.iter().enumerate() {
            if strip_eol(current) == line {
                matched_at = Some(number);
            } else {
                match insert {
                    Insert::After(regex) if search(regex, current).is_some() => {
                        insert_at = Some(number + 1);
                        if firstmatch {
                            break;
                        }
                    }
                    Insert::Before(regex) if search(regex, current).is_some() => {
                        insert_at = Some(number);
                        if firstmatch {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    let with_newline = |text: &[u8]| {
        let mut text = text.to_vec();
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text
    };
    let added = |lines: Vec<Vec<u8>>| Outcome {
        lines,
        message: "line added".into(),
        found: 0,
    };
    let unchanged = |lines: Vec<Vec<u8>>| Outcome {
        lines,
        message: String::new(),
        found: 0,
    };

    if let Some(index) = matched_at {
        let new_line = match (&captures, backrefs) {
            (Some(found), true) => with_newline(&expand(line, found)),
            _ => with_newline(line),
        };
        if lines[index] != new_line {
            lines[index] = new_line;
            return Outcome {
                lines,
                message: "line replaced".into(),
                found: 0,
            };
        }
        return unchanged(lines);
    }
    if backrefs {
        // Without a match there are no groups to expand, so Ansible leaves the file alone.
        return unchanged(lines);
    }
    match (insert, insert_at) {
        (Insert::Bof, _) => {
            lines.insert(0, with_newline(line));
            added(lines)
        }
        (Insert::Eof, _) | (_, None) => {
            if !lines.is_empty() && !ends_with_newline(&lines) {
                lines.push(b"\n".to_vec());
            }
            lines.push(with_newline(line));
            added(lines)
        }
        (Insert::After(_), Some(index)) => {
            if index == lines.len() {
                if strip_eol(&lines[index - 1]) != line {
                    lines.push(with_newline(line));
                    return added(lines);
                }
            } else if strip_eol(&lines[index]) != line {
                lines.insert(index, with_newline(line));
                return added(lines);
            }
            unchanged(lines)
        }
        (Insert::Before(_), Some(index)) => {
            lines.insert(index, with_newline(line));
            added(lines)
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Applies `state: absent`: every matching line is removed.
fn absent(lines: Vec<Vec<u8>>, matcher: Option<&Matcher>, line: Option<&[u8]>) -> Outcome {
    let total = lines.len();
    let kept: Vec<Vec<u8>> = lines
        .into_iter()
        .filter(|current| {
            let matches = match matcher {
                Some(Matcher::Regexp(regex)) => search(regex, current).is_some(),
                Some(Matcher::Search(text)) => contains(current, text),
                None => line.is_some_and(|line| strip_eol(current) == line),
            };
            !matches
        })
        .collect();
    let found = total - kept.len();
    Outcome {
        lines: kept,
        message: if found > 0 {
            format!("{found} line(s) removed")
        } else {
            String::new()
        },
        found,
    }
}

impl LineInFile {
    fn result(&self, message: &str, found: Option<usize>) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert("msg".into(), Value::from(message));
        result.insert("backup".into(), Value::from(""));
        if let Some(found) = found {
            result.insert("found".into(), Value::from(found));
        }
        result
    }
}

impl Action for LineInFile {
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
                    "`{path}` would be created by an earlier task with unknown content, so its lines are checked on a real run"
                )))
            }
            BaseContent::Missing => None,
        };

        let outcome = match (&self.edit, &original) {
            (Edit::Absent { .. }, None) => {
                let mut plan = Plan::unchanged(format!("`{path}` does not exist"));
                plan.result = self.result("file not present", Some(0));
                return Ok(plan);
            }
            (Edit::Present { create: false, .. }, None) => {
                return Err(ModuleError::Failed(format!(
                    "destination `{path}` does not exist: set `create: true` to create it"
                )))
            }
            (
                Edit::Present {
                    line,
                    matcher,
                    insert,
                    backrefs,
                    firstmatch,
                    ..
                },
                original,
            ) => present(
                split_lines(original.as_deref().unwrap_or_default()),
                line,
                matcher.as_ref(),
                insert,
                *backrefs,
                *firstmatch,
            ),
            (Edit::Absent { matcher, line }, Some(original)) => {
                absent(split_lines(original), matcher.as_ref(), line.as_deref())
            }
        };
        let found = matches!(self.edit, Edit::Absent { .. }).then_some(outcome.found);
        let new_content = outcome.lines.concat();
        let before = original.clone().unwrap_or_default();

        if new_content == before && original.is_some() {
            // Attributes of a file that only an earlier task would create are not known yet.
            let attrs = if state.exists() {
                plan_attrs(path, &self.attrs, &state)?
            } else {
                AttrPlan::default()
            };
            if attrs.changes.is_empty() {
                let mut plan = Plan::unchanged(match self.edit {
                    Edit::Present { .. } => format!("`{path}` already has the line"),
                    Edit::Absent { .. } => format!("no line of `{path}` matches"),
                });
                plan.result = self.result("", found);
                return Ok(plan);
            }
            return Ok(Plan {
                changes: attrs.changes,
                apply: Some(format!("set -e\n{}", attrs.script)),
                result: self.result("ownership, perms or SE linux context changed", found),
                ..Plan::default()
            });
        }

        let probed = if state.exists() {
            state.clone()
        } else {
            PathState::default()
        };
        let mut changes = vec![Change {
            summary: format!("{} in `{path}`{note}", outcome.message),
            diff: content_diff(path, Some(&before), &new_content),
        }];
        if state.exists() {
            changes.extend(plan_attrs(path, &self.attrs, &state)?.changes);
        }
        let mut plan = Plan {
            changes,
            apply: Some(guarded_edit_script(
                path,
                &probed,
                &new_content,
                &self.attrs,
                self.validate.as_deref(),
                self.backup,
            )?),
            result: self.result(&outcome.message, found),
            ..Plan::default()
        };
        plan.predicts.files.insert(path.clone(), Some(new_content));
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
            result.insert("backup".into(), Value::from(backup));
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::common::test_support::{
        apply_twice, assert_syntax, build, plan, plan_with, run_sh,
    };
    use crate::modules::Predictions;
    use base64::Engine as _;
    use serde_json::json;

    /// Builds the probe output of an existing root-owned 0644 file with `content`.
    fn probe_of(path: &str, content: &str) -> String {
        format!(
            "==> file <==\nkind=regular file\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=644\nsize={}\nmtime=1733300000\ninode=2049:9\nsha1={}\nsha256={}\ncontent={}\n==> parent <==\nparent=1\n",
            content.len(),
            crate::modules::common::sha1_hex(content.as_bytes()),
            crate::modules::common::sha256_hex(content.as_bytes()),
            base64::engine::general_purpose::STANDARD.encode(content),
        )
        .replace("path", path)
    }

    const SSHD: &str = "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\nPasswordAuthentication yes\nUsePAM yes\n";

    #[test]
    fn lineinfile_edits_like_ansible() {
        let cases: Vec<(serde_json::Value, &str, &str)> = vec![
            // A matching line is replaced.
            (
                json!({"regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no"}),
                SSHD,
                "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPasswordAuthentication yes\nUsePAM yes\n",
            ),
            // No match: appended at the end.
            (
                json!({"regexp": "^MaxAuthTries", "line": "MaxAuthTries 3"}),
                SSHD,
                "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\nPasswordAuthentication yes\nUsePAM yes\nMaxAuthTries 3\n",
            ),
            // A line that is already present: no change.
            (json!({"line": "UsePAM yes"}), SSHD, SSHD),
            // insertafter a regex, last match wins.
            (
                json!({"line": "X11Forwarding no", "insertafter": "^Pass"}),
                SSHD,
                "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\nPasswordAuthentication yes\nX11Forwarding no\nUsePAM yes\n",
            ),
            // insertbefore BOF.
            (
                json!({"line": "# managed", "insertbefore": "BOF"}),
                "a\n",
                "# managed\na\n",
            ),
            // insertbefore a regex that matches nothing: appended.
            (json!({"line": "z", "insertbefore": "^nothing"}), "a\n", "a\nz\n"),
            // Only the last of several matches is replaced.
            (json!({"regexp": "^k=", "line": "k=3"}), "k=1\nk=2\n", "k=1\nk=3\n"),
            // firstmatch replaces the first.
            (json!({"regexp": "^k=", "line": "k=3", "firstmatch": true}), "k=1\nk=2\n", "k=3\nk=2\n"),
            // backrefs expand groups.
            (
                json!({"regexp": "^(PasswordAuthentication) yes", "line": "\\1 no", "backrefs": true}),
                SSHD,
                "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM yes\n",
            ),
            // backrefs and no match: no change.
            (json!({"regexp": "^(Nope) yes", "line": "\\g<1> no", "backrefs": true}), SSHD, SSHD),
            // search_string replaces a literal match.
            (
                json!({"search_string": "/*.conf", "line": "Include /etc/ssh/extra.conf"}),
                SSHD,
                "Include /etc/ssh/extra.conf\n#PermitRootLogin prohibit-password\nPasswordAuthentication yes\nUsePAM yes\n",
            ),
            // A file without a final newline gets one before the new line.
            (json!({"line": "b"}), "a", "a\nb\n"),
            // state absent removes every matching line.
            (json!({"regexp": "^k=", "state": "absent"}), "k=1\nx\nk=2\n", "x\n"),
            (json!({"line": "x", "state": "absent"}), "k=1\nx\nk=2\n", "k=1\nk=2\n"),
            (json!({"line": "y", "state": "absent"}), "k=1\nx\n", "k=1\nx\n"),
        ];
        for (mut args, before, after) in cases {
            args["path"] = json!("/etc/ssh/sshd_config");
            let action = build(&SPEC, args.clone()).unwrap();
            let plan = plan(action.as_ref(), &probe_of("/etc/ssh/sshd_config", before));
            assert_eq!(plan.changed(), before != after, "args {args}");
            if let Some(change) = plan.changes.first() {
                let diff = change.diff.clone().unwrap();
                assert_eq!(diff.header, "/etc/ssh/sshd_config", "args {args}");
                assert_eq!(diff.before, before, "args {args}");
                assert_eq!(diff.after, after, "args {args}");
            }
        }
    }

    #[test]
    fn lineinfile_summaries_and_guard() {
        let action = build(&SPEC, json!({"path": "/etc/ssh/sshd_config", "regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no"})).unwrap();
        let plan = plan(action.as_ref(), &probe_of("/etc/ssh/sshd_config", SSHD));
        assert_eq!(
            plan.changes[0].summary,
            "line replaced in `/etc/ssh/sshd_config`"
        );
        let script = plan.apply.unwrap();
        let sha = crate::modules::common::sha256_hex(SSHD.as_bytes());
        assert!(script.contains(&format!("!= {sha} ]")), "{script}");
        assert_eq!(plan.result["msg"], json!("line replaced"));
    }

    #[test]
    fn lineinfile_missing_file() {
        let missing = "==> file <==\nkind=absent\n==> parent <==\nparent=1\n";
        let action = build(&SPEC, json!({"path": "/etc/app.conf", "line": "a=1"})).unwrap();
        let error =
            plan_with(action.as_ref(), missing, false, &Predictions::default()).unwrap_err();
        assert!(error.to_string().contains("set `create: true`"), "{error}");

        let mut predicted = Predictions::default();
        predicted
            .files
            .insert("/etc/app.conf".into(), Some(b"a=0\n".to_vec()));
        let planned = plan_with(action.as_ref(), missing, true, &predicted).unwrap();
        assert_eq!(
            planned.changes[0].summary,
            "line added in `/etc/app.conf` (in the content an earlier task would write)"
        );

        let action = build(
            &SPEC,
            json!({"path": "/etc/app.conf", "line": "a=1", "create": true}),
        )
        .unwrap();
        let planned = plan(action.as_ref(), missing);
        assert_eq!(planned.changes[0].diff.clone().unwrap().after, "a=1\n");

        let action = build(
            &SPEC,
            json!({"path": "/etc/app.conf", "line": "a=1", "state": "absent"}),
        )
        .unwrap();
        assert!(!plan(action.as_ref(), missing).changed());
    }

    #[test]
    fn lineinfile_rejects_invalid_arguments() {
        for (args, needle) in [
            (json!({"path": "/x"}), "`line`"),
            (json!({"path": "/x", "state": "absent"}), "one of `line`"),
            (
                json!({"path": "/x", "line": "a", "backrefs": true}),
                "`regexp` is required",
            ),
            (
                json!({"path": "/x", "line": "a", "insertafter": "a", "insertbefore": "b"}),
                "mutually exclusive",
            ),
            (
                json!({"path": "/x", "line": "a", "regexp": "(?<=x)a"}),
                "`regexp`",
            ),
            (
                json!({"path": "/x", "line": "a", "regexp": "a", "search_string": "a"}),
                "mutually exclusive",
            ),
        ] {
            let error = build(&SPEC, args.clone()).err().unwrap();
            assert!(error.to_string().contains(needle), "args {args}: {error}");
        }
    }

    #[test]
    fn lineinfile_applies_for_real() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sshd_config");
        std::fs::write(&path, SSHD).unwrap();
        let action = build(
            &SPEC,
            json!({"path": path.to_str().unwrap(), "regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no", "mode": "0600"}),
        )
        .unwrap();
        assert_syntax(&action.probe().unwrap());
        let (first, second) = apply_twice(action.as_ref());
        assert!(first.changed());
        assert!(!second.changed(), "{:?}", second.changes);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("\nPermitRootLogin no\n"));
    }

    #[test]
    fn lineinfile_guard_stops_concurrent_edit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf");
        std::fs::write(&path, "a\n").unwrap();
        let action = build(&SPEC, json!({"path": path.to_str().unwrap(), "line": "b"})).unwrap();
        let planned = plan(action.as_ref(), &run_sh(&action.probe().unwrap()).stdout);
        std::fs::write(&path, "changed\n").unwrap();
        let output = run_sh(planned.apply.as_deref().unwrap());
        assert_eq!(output.exit_code, 4);
        assert!(
            output.stderr.contains("changed after it was read"),
            "{}",
            output.stderr
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "changed\n");
    }
}
