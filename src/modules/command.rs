//! `command`: run a program with its arguments, without a shell.
//!
//! This file also contains the runner that `shell` shares. Both modules report a
//! change whenever the program runs, because only `changed_when` in the task can
//! tell what the program did. `creates` and `removes` are globbed on the host by
//! the probe, and when they decide, nothing runs.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::args::{bool_or, opt_list, opt_str};
use super::common::{quote, section_header, split_sections};
use super::{
    Action, Args, BuildContext, Change, ExecOutput, HostView, ModuleError, ModuleKind, ModuleSpec,
    Param, ParamKind, Plan,
};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "command",
    aliases: &["ansible.builtin.command", "ansible.legacy.command"],
    params: &[
        Param::new("_raw_params", ParamKind::Str),
        Param::new("cmd", ParamKind::Str),
        Param::new("argv", ParamKind::List),
        Param::new("chdir", ParamKind::Str),
        Param::new("creates", ParamKind::Str),
        Param::new("removes", ParamKind::Str),
        Param::new("stdin", ParamKind::Str),
        Param::new("stdin_add_newline", ParamKind::Bool),
        Param::new("strip_empty_ends", ParamKind::Bool),
        Param::new("expand_argument_vars", ParamKind::Bool),
    ],
    free_form: true,
    kind: ModuleKind::Remote,
    build,
};

fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let args = &resolve_aliases(&SPEC, args);
    let command = opt_str(args, "_raw_params")?
        .filter(|s| !s.trim().is_empty())
        .or(opt_str(args, "cmd")?.filter(|s| !s.trim().is_empty()));
    let argv = opt_list(args, "argv")?.filter(|list| !list.is_empty());
    let words = match (command, argv) {
        (Some(_), Some(_)) => {
            return Err(ModuleError::InvalidArgument(
                "only one of a command string (free form or `cmd`) and `argv` may be given"
                    .to_string(),
            ))
        }
        (None, None) => {
            return Err(ModuleError::InvalidArgument(
                "no command given: write it after `command:`, or set `cmd` or `argv`".to_string(),
            ))
        }
        (Some(command), None) => split_words(&command).map_err(|reason| {
            ModuleError::InvalidArgument(format!("cannot split command `{command}`: {reason}"))
        })?,
        (None, Some(argv)) => argv,
    };
    if words.is_empty() {
        return Err(ModuleError::InvalidArgument(
            "the command has no words: give a program to run".to_string(),
        ));
    }

    let program = Program::Argv {
        words,
        expand_vars: bool_or(args, "expand_argument_vars", true)?,
    };
    Ok(Box::new(Run::from_args(args, program)?))
}

/// Returns `args` with each argument given under an alias (`pkg`, `update-cache`)
/// stored under its canonical name as well, so that `build` functions read one name.
/// An argument given under its canonical name wins over its aliases.
// NOTE: this is shared by every module in this crate and belongs beside the other
// argument helpers in `args.rs`, which this change does not own.
pub(crate) fn resolve_aliases(spec: &ModuleSpec, args: &Args) -> Args {
    let mut resolved = args.clone();
    for param in spec.params {
        if resolved.contains_key(param.name) {
            continue;
        }
        if let Some(value) = param.aliases.iter().find_map(|alias| args.get(*alias)) {
            resolved.insert(param.name.to_string(), value.clone());
        }
    }
    resolved
}

/// The program a [`Run`] starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Program {
    /// A program and its arguments, as `command` runs them. With `expand_vars`,
    /// `$NAME`, `${NAME}` and a leading `~` are expanded on the host as Python's
    /// `os.path.expandvars` and `expanduser` do: unset variables stay as written.
    Argv {
        words: Vec<String>,
        expand_vars: bool,
    },
    /// A script that `executable -c` runs, as `shell` does.
    Shell { script: String, executable: String },
}

/// Runs one program on the host: the action behind both `command` and `shell`.
#[derive(Debug)]
pub(crate) struct Run {
    program: Program,
    chdir: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    /// Data for the program's standard input, with the newline already added.
    stdin: Option<String>,
    strip_empty_ends: bool,
}

/// Starts the line the apply script adds to standard error after the program ends.
/// [`Action::finish`] reads the last such line, so program output that happens to
/// contain this text cannot be mistaken for it.
const RESULT_MARKER: &str = "vpsforge-command-result:";

impl Run {
    /// Reads the arguments common to `command` and `shell`.
    pub(crate) fn from_args(args: &Args, program: Program) -> Result<Run, ModuleError> {
        let add_newline = bool_or(args, "stdin_add_newline", true)?;
        let stdin = opt_str(args, "stdin")?.map(|mut data| {
            if add_newline {
                data.push('\n');
            }
            data
        });
        Ok(Run {
            program,
            chdir: opt_str(args, "chdir")?.filter(|s| !s.is_empty()),
            creates: opt_str(args, "creates")?.filter(|s| !s.is_empty()),
            removes: opt_str(args, "removes")?.filter(|s| !s.is_empty()),
            stdin,
            strip_empty_ends: bool_or(args, "strip_empty_ends", true)?,
        })
    }

    /// Returns the `cmd` field of the result: the word list for `command`, the
    /// script for `shell`, as Ansible registers them.
    fn cmd_value(&self) -> Value {
        match &self.program {
            Program::Argv { words, .. } => json!(words),
            Program::Shell { script, .. } => json!(script),
        }
    }

    fn display(&self) -> String {
        match &self.program {
            Program::Argv { words, .. } => words.join(" "),
            Program::Shell { script, .. } => script.clone(),
        }
    }

    /// Names of the variables and users whose values the argument words need.
    fn expansions(&self) -> (Vec<String>, Vec<String>) {
        let mut variables = Vec::new();
        let mut users = Vec::new();
        if let Program::Argv {
            words,
            expand_vars: true,
        } = &self.program
        {
            for word in words {
                for piece in scan_variables(word) {
                    if let Piece::Variable { name, .. } = piece {
                        if !variables.contains(&name) {
                            variables.push(name);
                        }
                    }
                }
            }
            // `~` needs HOME, and `~user` the password database: both come from the host.
            for word in words {
                if let Some(user) = tilde_user(word) {
                    let key = user.to_string();
                    if !users.contains(&key) {
                        users.push(key);
                    }
                }
            }
        }
        (variables, users)
    }

    fn apply_script(&self, environment: &Environment) -> String {
        let mut script = String::new();
        if let Some(dir) = &self.chdir {
            script.push_str(&format!(
                "if ! cd -- {}; then printf '\\n%s error=chdir\\n' {} >&2; exit 1; fi\n",
                quote(dir),
                quote(RESULT_MARKER)
            ));
        }
        let program = match &self.program {
            Program::Argv { words, expand_vars } => words
                .iter()
                .map(|word| {
                    if *expand_vars {
                        quote(&expand_word(word, environment))
                    } else {
                        quote(word)
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            Program::Shell { script, executable } => {
                format!("{} -c {}", quote(executable), quote(script))
            }
        };
        script.push_str("vf_start=$(date '+%s %N %Y-%m-%d %H:%M:%S')\n");
        // The script itself arrives on standard input, so the program must not inherit it.
        match &self.stdin {
            Some(data) => script.push_str(&format!(
                "printf '%s' {} | ( exec {program} )\n",
                quote(data)
            )),
            None => script.push_str(&format!("( exec {program} ) </dev/null\n")),
        }
        script.push_str("vf_rc=$?\n");
        script.push_str("vf_end=$(date '+%s %N %Y-%m-%d %H:%M:%S')\n");
        script.push_str(&format!(
            "printf '\\n%s rc=%s;start=%s;end=%s\\n' {} \"$vf_rc\" \"$vf_start\" \"$vf_end\" >&2\n",
            quote(RESULT_MARKER)
        ));
        script.push_str("exit \"$vf_rc\"\n");
        script
    }

    fn skipped_result(&self, msg: String, stdout: String) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert("cmd".into(), self.cmd_value());
        result.insert("rc".into(), json!(0));
        result.insert("stdout_lines".into(), json!(lines(&stdout)));
        result.insert("stdout".into(), json!(stdout));
        result.insert("stderr".into(), json!(""));
        result.insert("stderr_lines".into(), json!([]));
        result.insert("start".into(), Value::Null);
        result.insert("end".into(), Value::Null);
        result.insert("delta".into(), Value::Null);
        result.insert("msg".into(), json!(msg));
        result
    }
}

impl Action for Run {
    fn probe(&self) -> Option<String> {
        let (variables, users) = self.expansions();
        if self.creates.is_none()
            && self.removes.is_none()
            && variables.is_empty()
            && users.is_empty()
        {
            return None;
        }
        let mut script = String::new();
        for name in &variables {
            // Only names that are valid shell identifiers reach here, so `$name` is safe.
            script.push_str(&format!(
                "if [ \"${{{name}+set}}\" = set ]; then\n{}printf '%s\\n' \"${name}\"\nfi\n",
                section_header(&format!("variable {name}"))
            ));
        }
        for user in &users {
            let tilde = format!("~{user}");
            script.push_str(&section_header(&format!("home {user}")));
            // An unquoted `~user` is expanded by the shell from the password database, and
            // stays as written for an unknown user, as Python's `expanduser` does.
            script.push_str(&format!("printf '%s\\n' {tilde}\n"));
        }
        if let Some(dir) = &self.chdir {
            script.push_str(&section_header("chdir"));
            script.push_str(&format!(
                "if cd -- {} 2>/dev/null; then echo ok; else echo missing; fi\n",
                quote(dir)
            ));
        }
        for (name, pattern) in [("creates", &self.creates), ("removes", &self.removes)] {
            if let Some(pattern) = pattern {
                script.push_str(&section_header(name));
                script.push_str(&format!(
                    "vf_found=absent; for vf_path in {}; do if [ -e \"$vf_path\" ] || [ -L \"$vf_path\" ]; then vf_found=present; break; fi; done; echo \"$vf_found\"\n",
                    glob_word(pattern)
                ));
            }
        }
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let sections: BTreeMap<String, String> =
            split_sections(&probe.stdout).into_iter().collect();
        let mut environment = Environment::default();
        for (name, body) in &sections {
            let value = body.strip_suffix('\n').unwrap_or(body).to_string();
            if let Some(variable) = name.strip_prefix("variable ") {
                environment.variables.insert(variable.to_string(), value);
            } else if let Some(user) = name.strip_prefix("home ") {
                if value != format!("~{user}") {
                    environment.homes.insert(user.to_string(), value);
                }
            }
        }

        if let (Some(dir), Some(state)) = (&self.chdir, sections.get("chdir")) {
            if state.trim() != "ok" {
                return Err(ModuleError::Failed(format!(
                    "unable to change directory to `{dir}` before running the command: it does not exist or is not accessible"
                )));
            }
        }

        let would = if host.check_mode { "Would" } else { "Did" };
        if let Some(pattern) = &self.creates {
            match sections.get("creates").map(|s| s.trim()) {
                Some("present") => {
                    let mut plan = Plan::unchanged(format!("`{pattern}` exists"));
                    plan.result = self.skipped_result(
                        format!("{would} not run command since '{pattern}' exists"),
                        format!("skipped, since {pattern} exists"),
                    );
                    return Ok(plan);
                }
                Some("absent") => {}
                _ => return Err(probe_error("creates", probe)),
            }
        }
        if let Some(pattern) = &self.removes {
            match sections.get("removes").map(|s| s.trim()) {
                Some("absent") => {
                    let mut plan = Plan::unchanged(format!("`{pattern}` does not exist"));
                    plan.result = self.skipped_result(
                        format!("{would} not run command since '{pattern}' does not exist"),
                        format!("skipped, since {pattern} does not exist"),
                    );
                    return Ok(plan);
                }
                Some("present") => {}
                _ => return Err(probe_error("removes", probe)),
            }
        }

        let mut result = Map::new();
        result.insert("cmd".into(), self.cmd_value());
        let decided_by_files = self.creates.is_some() || self.removes.is_some();
        if host.check_mode {
            result.insert("rc".into(), json!(0));
            result.insert(
                "msg".into(),
                json!("Command would have run if not in check mode"),
            );
        }
        let summary = match (&self.creates, &self.removes) {
            (Some(pattern), _) => format!(
                "run `{}` because `{pattern}` does not exist",
                self.display()
            ),
            (None, Some(pattern)) => format!("run `{}` because `{pattern}` exists", self.display()),
            (None, None) => format!("run `{}`", self.display()),
        };
        Ok(Plan {
            changes: vec![Change {
                summary,
                diff: None,
            }],
            reason: (host.check_mode && !decided_by_files).then(|| {
                "check mode cannot predict what the command does, so it does not run".to_string()
            }),
            apply: Some(self.apply_script(&environment)),
            runs_in_check_mode: false,
            skipped_in_check_mode: !decided_by_files,
            result,
            predicts: Default::default(),
        })
    }

    /// Registers the command's result even when its exit status is not zero.
    ///
    /// Contract with the executor: a non-zero exit status is returned as `Ok` with
    /// `failed: true` and a `msg` that shows the status and standard error, next to
    /// `rc`, `stdout` and `stderr`, because `failed_when`, `ignore_errors` and
    /// `register` need those fields. `Err` is kept for failures that produced no
    /// command result, such as a `chdir` that does not exist.
    fn finish(&self, plan: &Plan, output: &ExecOutput) -> Result<Map<String, Value>, ModuleError> {
        let (stderr, report) = split_report(&output.stderr);
        let report = report.ok_or_else(|| {
            ModuleError::Failed(format!(
                "the command runner exited with status {} before the command finished: {}",
                output.exit_code,
                output.stderr.trim()
            ))
        })?;
        if report.error.as_deref() == Some("chdir") {
            let dir = self.chdir.clone().unwrap_or_default();
            return Err(ModuleError::Failed(format!(
                "unable to change directory to `{dir}` before running the command: {}",
                stderr.trim()
            )));
        }

        let rc = report.rc.unwrap_or(output.exit_code);
        let (stdout, stderr) = if self.strip_empty_ends {
            (
                output.stdout.trim_end_matches(['\r', '\n']).to_string(),
                stderr.trim_end_matches(['\r', '\n']).to_string(),
            )
        } else {
            (output.stdout.clone(), stderr.to_string())
        };

        let mut result = plan.result.clone();
        result.insert("cmd".into(), self.cmd_value());
        result.insert("rc".into(), json!(rc));
        result.insert("stdout_lines".into(), json!(lines(&stdout)));
        result.insert("stderr_lines".into(), json!(lines(&stderr)));
        result.insert("stdout".into(), json!(stdout));
        result.insert("stderr".into(), json!(stderr));
        match (&report.start, &report.end) {
            (Some(start), Some(end)) => {
                result.insert("start".into(), json!(start.local));
                result.insert("end".into(), json!(end.local));
                result.insert("delta".into(), json!(format_delta(start, end)));
            }
            _ => {
                result.insert("start".into(), Value::Null);
                result.insert("end".into(), Value::Null);
                result.insert("delta".into(), Value::Null);
            }
        }
        if rc != 0 {
            let detail = if stderr.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", stderr.trim())
            };
            result.insert("failed".into(), json!(true));
            result.insert(
                "msg".into(),
                json!(format!("non-zero return code {rc}{detail}")),
            );
        } else {
            result.insert("msg".into(), json!(""));
        }
        Ok(result)
    }
}

fn probe_error(section: &str, probe: &ExecOutput) -> ModuleError {
    ModuleError::Probe(format!(
        "the `{section}` check printed no result (exit status {}): {}",
        probe.exit_code,
        probe.stderr.trim()
    ))
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// Values read from the host for argument expansion.
#[derive(Debug, Default)]
struct Environment {
    variables: BTreeMap<String, String>,
    /// Home folders by user name; the empty name is the running user (`~`).
    homes: BTreeMap<String, String>,
}

/// One piece of an argument word for variable expansion.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    /// `$NAME` or `${NAME}`: `written` is the original text, kept when the variable is unset.
    Variable {
        name: String,
        written: &'a str,
    },
}

/// Splits `word` the way Python's `os.path.expandvars` matches `\$(\w+|\{[^}]*\})`.
/// Names that are not shell identifiers cannot be set in the environment, so they stay text.
fn scan_variables(word: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let bytes = word.as_bytes();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let (name, end) = if bytes.get(i + 1) == Some(&b'{') {
            match word[i + 2..].find('}') {
                Some(close) => (&word[i + 2..i + 2 + close], i + 3 + close),
                None => {
                    i += 1;
                    continue;
                }
            }
        } else {
            let len = word[i + 1..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&word[i + 1..i + 1 + len], i + 1 + len)
        };
        let is_identifier = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !is_identifier {
            i = end.max(i + 1);
            continue;
        }
        if text_start < i {
            pieces.push(Piece::Text(&word[text_start..i]));
        }
        pieces.push(Piece::Variable {
            name: name.to_string(),
            written: &word[i..end],
        });
        text_start = end;
        i = end;
    }
    if text_start < word.len() {
        pieces.push(Piece::Text(&word[text_start..]));
    }
    pieces
}

/// Returns the user of a leading `~` or `~user` (empty for `~`), when the name is one
/// the shell can expand unquoted.
fn tilde_user(word: &str) -> Option<&str> {
    let rest = word.strip_prefix('~')?;
    let user = rest.split('/').next().unwrap_or("");
    user.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        .then_some(user)
}

/// Expands variables, then a leading `~`, in the order Ansible's `run_command` does.
fn expand_word(word: &str, environment: &Environment) -> String {
    let mut expanded = String::new();
    for piece in scan_variables(word) {
        match piece {
            Piece::Text(text) => expanded.push_str(text),
            Piece::Variable { name, written } => match environment.variables.get(&name) {
                Some(value) => expanded.push_str(value),
                None => expanded.push_str(written),
            },
        }
    }
    if let Some(user) = tilde_user(&expanded) {
        if let Some(home) = environment.homes.get(user) {
            let rest = &expanded[1 + user.len()..];
            let home = home.trim_end_matches('/');
            let joined = format!("{home}{rest}");
            return if joined.is_empty() {
                "/".to_string()
            } else {
                joined
            };
        }
    }
    expanded
}

/// Returns `pattern` as a shell word that globs like Python's `glob.glob`: the
/// wildcards `*`, `?` and `[...]` stay active and every other character is quoted.
fn glob_word(pattern: &str) -> String {
    let mut word = String::new();
    for c in pattern.chars() {
        if c.is_ascii_alphanumeric() || "*?[]/._-+,:@%^!=".contains(c) {
            word.push(c);
        } else {
            word.push_str(&quote(&c.to_string()));
        }
    }
    word
}

/// Splits a command line into words like Python's `shlex.split` (POSIX mode, no
/// comments), which is what Ansible's `command` does before running a program.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            '\\' => {
                let escaped = chars.next().ok_or("no escaped character after `\\`")?;
                current.push(escaped);
                in_word = true;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("no closing quotation".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        // Inside double quotes a backslash escapes only `"` and itself.
                        Some('\\') => match chars.next() {
                            Some(next @ ('"' | '\\')) => current.push(next),
                            Some(next) => {
                                current.push('\\');
                                current.push(next);
                            }
                            None => return Err("no closing quotation".to_string()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("no closing quotation".to_string()),
                    }
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// The line the apply script adds to standard error after the program ends.
#[derive(Debug, Default, PartialEq)]
struct Report {
    rc: Option<i32>,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    error: Option<String>,
}

#[derive(Debug, PartialEq)]
struct Timestamp {
    seconds: i64,
    nanos: i64,
    /// Local time as Python prints a `datetime`: `2024-05-01 12:00:00.123456`.
    local: String,
}

/// Separates the program's standard error from the runner's report line.
fn split_report(stderr: &str) -> (&str, Option<Report>) {
    let needle = format!("\n{RESULT_MARKER} ");
    let Some(at) = stderr.rfind(&needle) else {
        return (stderr, None);
    };
    let line = stderr[at + needle.len()..].lines().next().unwrap_or("");
    let mut report = Report::default();
    for field in line.split(';') {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key.trim() {
            "rc" => report.rc = value.trim().parse().ok(),
            "start" => report.start = parse_timestamp(value),
            "end" => report.end = parse_timestamp(value),
            "error" => report.error = Some(value.trim().to_string()),
            _ => {}
        }
    }
    (&stderr[..at], Some(report))
}

/// Parses `date '+%s %N %Y-%m-%d %H:%M:%S'` output.
fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let mut fields = text.split_whitespace();
    let seconds = fields.next()?.parse().ok()?;
    let nanos_text = fields.next()?;
    let nanos = nanos_text.parse().unwrap_or(0);
    let day = fields.next()?;
    let time = fields.next()?;
    Some(Timestamp {
        seconds,
        nanos,
        local: format!("{day} {time}.{:06}", nanos / 1000),
    })
}

/// Formats a duration as Python prints a `timedelta`: `0:00:01.250000`.
fn format_delta(start: &Timestamp, end: &Timestamp) -> String {
    let micros =
        ((end.seconds - start.seconds) * 1_000_000 + (end.nanos - start.nanos) / 1000).max(0);
    let seconds = micros / 1_000_000;
    format!(
        "{}:{:02}:{:02}.{:06}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        micros % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Predictions;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn args(value: Value) -> Args {
        serde_json::from_value(value).unwrap()
    }

    fn context() -> BuildContext<'static> {
        BuildContext {
            search_paths: &[],
            render_template: &|_| Ok(String::new()),
            facts: &Value::Null,
        }
    }

    /// Runs `script` the way the transport does: `sh` reading the script on standard input.
    fn run_sh(script: &str) -> ExecOutput {
        let mut child = Command::new("sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        ExecOutput {
            exit_code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn syntax_ok(script: &str) -> bool {
        Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap()
            .success()
    }

    /// Probes, plans and applies an action for real, returning the plan and the result.
    fn run_action(action: &dyn Action, check_mode: bool) -> (Plan, Option<Map<String, Value>>) {
        let probe = action.probe().map(|s| run_sh(&s)).unwrap_or_default();
        let predicted = Predictions::default();
        let host = HostView {
            check_mode,
            facts: &Value::Null,
            predicted: &predicted,
        };
        let plan = action.plan(&probe, &host).unwrap();
        if check_mode || !plan.changed() {
            return (plan, None);
        }
        let output = run_sh(plan.apply.as_deref().unwrap());
        let result = action.finish(&plan, &output).unwrap();
        (plan, Some(result))
    }

    #[test]
    fn split_words_matches_python_shlex() {
        for (line, expected) in [
            ("ls -l /tmp", vec!["ls", "-l", "/tmp"]),
            ("echo 'a b' \"c d\"", vec!["echo", "a b", "c d"]),
            ("echo a\\ b", vec!["echo", "a b"]),
            (
                "echo \"x\\\"y\" \"\\$HOME\"",
                vec!["echo", "x\"y", "\\$HOME"],
            ),
            ("echo #not-a-comment", vec!["echo", "#not-a-comment"]),
            ("echo ''", vec!["echo", ""]),
            ("  spaced\targs\n", vec!["spaced", "args"]),
            ("a'b'\"c\"", vec!["abc"]),
        ] {
            assert_eq!(split_words(line).unwrap(), expected, "line {line:?}");
        }
        assert!(split_words("echo 'open").is_err());
        assert!(split_words("echo \"open").is_err());
        assert!(split_words("echo \\").is_err());
    }

    #[test]
    fn expand_word_keeps_unset_variables() {
        let mut environment = Environment::default();
        environment.variables.insert("HOME".into(), "/root".into());
        environment.homes.insert(String::new(), "/root/".into());
        environment.homes.insert("www".into(), "/var/www".into());
        for (word, expected) in [
            ("$HOME/x", "/root/x"),
            ("${HOME}.bak", "/root.bak"),
            ("$UNSET-$HOME", "$UNSET-/root"),
            ("${UNSET}", "${UNSET}"),
            ("$1 $$", "$1 $$"),
            ("~/bin", "/root/bin"),
            ("~www/html", "/var/www/html"),
            ("~nobody/x", "~nobody/x"),
            ("a~b", "a~b"),
        ] {
            assert_eq!(expand_word(word, &environment), expected, "word {word:?}");
        }
    }

    #[test]
    fn build_rejects_bad_arguments() {
        for (value, fragment) in [
            (json!({"_raw_params": "ls", "argv": ["ls"]}), "only one of"),
            (json!({}), "no command given"),
            (json!({"cmd": "echo 'x"}), "no closing quotation"),
            (json!({"cmd": "ls", "chdir": ["a"]}), "`chdir`"),
        ] {
            let Err(error) = build(&args(value.clone()), &context()) else {
                panic!("{value}: accepted");
            };
            assert!(
                error.to_string().contains(fragment),
                "{value}: got `{error}`"
            );
        }
    }

    #[test]
    fn probe_scripts_pass_sh_syntax_check() {
        for value in [
            json!({"cmd": "ls"}),
            json!({"cmd": "touch $HOME/x ~/y", "creates": "/tmp/a b/*.log", "chdir": "/tmp"}),
            json!({"argv": ["echo", "${PATH}"], "removes": "it's [ab]?"}),
        ] {
            let action = build(&args(value.clone()), &context()).unwrap();
            if let Some(script) = action.probe() {
                assert!(syntax_ok(&script), "{value}: {script}");
            }
            let probe = action.probe().map(|s| run_sh(&s)).unwrap_or_default();
            let predicted = Predictions::default();
            let host = HostView {
                check_mode: false,
                facts: &Value::Null,
                predicted: &predicted,
            };
            if let Ok(plan) = action.plan(&probe, &host) {
                if let Some(apply) = &plan.apply {
                    assert!(syntax_ok(apply), "{value}: {apply}");
                }
            }
        }
    }

    #[test]
    fn command_runs_and_registers_output() {
        let dir = tempfile::tempdir().unwrap();
        let value = json!({
            "cmd": "sh -c 'printf \"%s\\n\" \"$0\" one; echo warn >&2' 'it is'",
            "chdir": dir.path().to_str().unwrap(),
        });
        let action = build(&args(value), &context()).unwrap();
        let (plan, result) = run_action(action.as_ref(), false);
        assert!(plan.changed());
        assert!(!plan.skipped_in_check_mode || plan.apply.is_some());
        let result = result.unwrap();
        assert_eq!(result["rc"], json!(0));
        assert_eq!(result["stdout"], json!("it is\none"));
        assert_eq!(result["stdout_lines"], json!(["it is", "one"]));
        assert_eq!(result["stderr"], json!("warn"));
        assert!(result.get("failed").is_none());
        assert!(
            result["start"].as_str().unwrap().len() == 26,
            "{}",
            result["start"]
        );
        assert!(result["delta"].as_str().unwrap().starts_with("0:00:0"));
    }

    #[test]
    fn command_does_not_read_the_script() {
        let action = build(&args(json!({"cmd": "cat"})), &context()).unwrap();
        let (_, result) = run_action(action.as_ref(), false);
        let result = result.unwrap();
        assert_eq!(result["stdout"], json!(""));
        assert_eq!(result["rc"], json!(0));
    }

    #[test]
    fn command_passes_stdin() {
        let action = build(&args(json!({"cmd": "cat", "stdin": "hello"})), &context()).unwrap();
        let (_, result) = run_action(action.as_ref(), false);
        assert_eq!(result.unwrap()["stdout"], json!("hello"));

        let value = json!({"cmd": "od -c", "stdin": "x", "stdin_add_newline": false, "strip_empty_ends": false});
        let action = build(&args(value), &context()).unwrap();
        let (_, result) = run_action(action.as_ref(), false);
        assert!(!result.unwrap()["stdout"].as_str().unwrap().contains("\\n"));
    }

    #[test]
    fn command_does_not_use_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        let value = json!({"argv": ["echo", format!("x; touch {}", marker.display()), "$NO_SUCH_VAR_VF", "*"]});
        let action = build(&args(value), &context()).unwrap();
        let (_, result) = run_action(action.as_ref(), false);
        let result = result.unwrap();
        assert!(!marker.exists());
        assert_eq!(
            result["stdout"],
            json!(format!("x; touch {} $NO_SUCH_VAR_VF *", marker.display()))
        );
    }

    #[test]
    fn command_expands_home() {
        let action = build(&args(json!({"cmd": "echo $HOME ~"})), &context()).unwrap();
        let (_, result) = run_action(action.as_ref(), false);
        let home = std::env::var("HOME").unwrap();
        let home = home.trim_end_matches('/');
        assert_eq!(result.unwrap()["stdout"], json!(format!("{home} {home}")));
    }

    #[test]
    fn nonzero_status_is_registered_as_failed() {
        let action = build(
            &args(json!({"cmd": "sh -c 'echo out; echo bad >&2; exit 3'"})),
            &context(),
        )
        .unwrap();
        let (_, result) = run_action(action.as_ref(), false);
        let result = result.unwrap();
        assert_eq!(result["rc"], json!(3));
        assert_eq!(result["failed"], json!(true));
        assert_eq!(result["msg"], json!("non-zero return code 3: bad"));
        assert_eq!(result["stdout"], json!("out"));
    }

    #[test]
    fn missing_chdir_fails() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let run = Run::from_args(
            &args(json!({"chdir": missing.to_str().unwrap()})),
            Program::Argv {
                words: vec!["true".into()],
                expand_vars: false,
            },
        )
        .unwrap();
        let output = run_sh(&run.apply_script(&Environment::default()));
        let error = run.finish(&Plan::default(), &output).unwrap_err();
        assert!(
            error.to_string().contains("unable to change directory"),
            "{error}"
        );

        let action = build(
            &args(json!({"cmd": "true", "chdir": missing.to_str().unwrap(), "creates": "x"})),
            &context(),
        )
        .unwrap();
        let probe = run_sh(&action.probe().unwrap());
        let predicted = Predictions::default();
        let host = HostView {
            check_mode: true,
            facts: &Value::Null,
            predicted: &predicted,
        };
        let error = action.plan(&probe, &host).unwrap_err();
        assert!(
            error.to_string().contains("unable to change directory"),
            "{error}"
        );
    }

    #[test]
    fn creates_and_removes_decide_for_real() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("made it.log");
        let pattern = format!("{}/*.log", dir.path().display());
        let value = json!({
            "cmd": format!("touch '{}'", target.display()),
            "creates": pattern,
        });
        let action = build(&args(value), &context()).unwrap();

        let (plan, _) = run_action(action.as_ref(), true);
        assert!(plan.changed(), "check mode predicts the run");
        assert!(!plan.skipped_in_check_mode);
        assert!(!target.exists());

        let (plan, result) = run_action(action.as_ref(), false);
        assert!(plan.changed());
        assert_eq!(result.unwrap()["rc"], json!(0));
        assert!(target.exists());

        let (plan, _) = run_action(action.as_ref(), false);
        assert!(!plan.changed());
        assert_eq!(plan.reason, Some(format!("`{pattern}` exists")));
        assert_eq!(
            plan.result["msg"],
            json!(format!("Did not run command since '{pattern}' exists"))
        );

        let removes =
            json!({"cmd": "true", "removes": format!("{}/nothing*", dir.path().display())});
        let action = build(&args(removes), &context()).unwrap();
        let (plan, _) = run_action(action.as_ref(), true);
        assert!(!plan.changed());
        assert_eq!(
            plan.result["stdout"],
            json!(format!(
                "skipped, since {}/nothing* does not exist",
                dir.path().display()
            ))
        );
    }

    #[test]
    fn check_mode_skips_without_creates() {
        let action = build(&args(json!({"cmd": "rm -rf /nonexistent"})), &context()).unwrap();
        let (plan, _) = run_action(action.as_ref(), true);
        assert!(plan.changed());
        assert!(plan.skipped_in_check_mode);
        assert_eq!(plan.changes[0].summary, "run `rm -rf /nonexistent`");
    }

    #[test]
    fn report_line_is_the_last_marker() {
        let stderr = format!("noise\n{RESULT_MARKER} rc=9\nreal\n{RESULT_MARKER} rc=2;start=1 500000 2024-01-01 00:00:00;end=2 750000000 2024-01-01 00:00:01\n");
        let (program_stderr, report) = split_report(&stderr);
        let report = report.unwrap();
        assert_eq!(program_stderr, format!("noise\n{RESULT_MARKER} rc=9\nreal"));
        assert_eq!(report.rc, Some(2));
        let start = report.start.unwrap();
        assert_eq!(start.local, "2024-01-01 00:00:00.000500");
        assert_eq!(format_delta(&start, &report.end.unwrap()), "0:00:01.749500");
    }
}
