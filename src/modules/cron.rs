//! `cron`: jobs and variables in a user's crontab or in a file under `/etc/cron.d`.
//!
//! Entries are found the way Ansible finds them, so crontabs that Ansible managed
//! converge instead of gaining duplicates: a job is the line after a
//! `#Ansible: NAME` marker comment, and a variable is the first line that starts
//! with `NAME=`. The new table is computed on the controller and installed whole,
//! with `crontab -u USER -` or an atomic write of the cron.d file.

use serde_json::{Map, Value};

use super::args::{bool_or, choice, opt_bool, opt_str};
use super::common::{atomic_write_script, quote, section_header, split_sections, FileAttrs};
use super::{
    Action, Args, BuildContext, Change, Diff, ExecOutput, HostView, ModuleError, ModuleKind,
    ModuleSpec, Param, ParamKind, Plan,
};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "cron",
    aliases: &["ansible.builtin.cron", "ansible.legacy.cron"],
    params: &[
        Param::new("name", ParamKind::Str),
        Param::new("user", ParamKind::Str),
        Param::new("job", ParamKind::Str).aliases(&["value"]),
        Param::new("cron_file", ParamKind::Str),
        Param::new("state", ParamKind::Str).choices(&["present", "absent"]),
        Param::new("backup", ParamKind::Bool),
        Param::new("minute", ParamKind::Str),
        Param::new("hour", ParamKind::Str),
        Param::new("day", ParamKind::Str).aliases(&["dom"]),
        Param::new("month", ParamKind::Str),
        Param::new("weekday", ParamKind::Str).aliases(&["dow"]),
        Param::new("special_time", ParamKind::Str).choices(SPECIAL_TIMES),
        Param::new("disabled", ParamKind::Bool),
        Param::new("env", ParamKind::Bool),
        Param::new("insertafter", ParamKind::Str),
        Param::new("insertbefore", ParamKind::Str),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

const SPECIAL_TIMES: &[&str] = &[
    "reboot", "yearly", "annually", "monthly", "weekly", "daily", "hourly",
];

/// The comment Ansible writes on the line before each job it manages.
const MARKER: &str = "#Ansible: ";

/// Packages that provide the `crontab` command and `/etc/cron.d` on Debian and Ubuntu.
const CRON_PACKAGES: &[&str] = &["cron", "cronie", "systemd-cron", "bcron"];

#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// The crontab of this user, read and written with `crontab -u`, or without a user
    /// the crontab of the user the task runs as, as Ansible does.
    User(Option<String>),
    /// A system crontab file, whose lines carry the user field.
    File(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// A job with its full crontab line, as Ansible renders it.
    Job { line: String },
    /// A `NAME="value"` line, placed first or next to another variable.
    Env {
        line: String,
        insert_after: Option<String>,
        insert_before: Option<String>,
    },
    /// No name with `state: absent` and `cron_file`: the whole file goes.
    WholeFile,
}

#[derive(Debug, Clone)]
pub struct Cron {
    name: String,
    target: Target,
    entry: Entry,
    present: bool,
    backup: bool,
}

pub fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    Ok(Box::new(Cron::from_args(args)?))
}

fn invalid(message: impl Into<String>) -> ModuleError {
    ModuleError::InvalidArgument(message.into())
}

/// Returns a string argument, checking that it fits on one crontab line.
fn single_line(args: &Args, name: &str) -> Result<Option<String>, ModuleError> {
    let value = opt_str(args, name)?.map(|v| v.trim_matches(['\r', '\n']).to_string());
    if let Some(value) = &value {
        if value.contains(['\r', '\n']) {
            return Err(invalid(format!(
                "argument `{name}` must not contain a line break"
            )));
        }
    }
    Ok(value)
}

fn opt_alias(args: &Args, name: &str, alias: &str) -> Result<Option<String>, ModuleError> {
    match single_line(args, name)? {
        Some(value) => Ok(Some(value)),
        None => single_line(args, alias),
    }
}

impl Cron {
    pub fn from_args(args: &Args) -> Result<Cron, ModuleError> {
        let present = choice(args, "state", &["present", "absent"], "present")? == "present";
        let name = single_line(args, "name")?;
        let job = opt_alias(args, "job", "value")?;
        let named_user = single_line(args, "user")?;
        // A cron.d line needs a user field; root is what the file's owner runs as.
        let user = named_user.clone().unwrap_or_else(|| "root".to_string());
        if user.is_empty() || user.contains(char::is_whitespace) {
            return Err(invalid(format!(
                "argument `user` must be a user name, not `{user}`"
            )));
        }
        let env = bool_or(args, "env", false)?;
        let insert_after = single_line(args, "insertafter")?;
        let insert_before = single_line(args, "insertbefore")?;
        if insert_after.is_some() && insert_before.is_some() {
            return Err(invalid(
                "arguments `insertafter` and `insertbefore` are mutually exclusive; keep one",
            ));
        }
        if (insert_after.is_some() || insert_before.is_some()) && !env && present {
            return Err(invalid(
                "arguments `insertafter` and `insertbefore` are valid only with `env: true`",
            ));
        }

        let cron_file = single_line(args, "cron_file")?.filter(|f| !f.is_empty());
        let target = match &cron_file {
            Some(file) if file.starts_with('/') => Target::File(file.clone()),
            Some(file) => Target::File(format!("/etc/cron.d/{file}")),
            None => Target::User(named_user),
        };

        let times: Vec<String> = [
            ("minute", "minute"),
            ("hour", "hour"),
            ("day", "dom"),
            ("month", "month"),
            ("weekday", "dow"),
        ]
        .iter()
        .map(|(name, alias)| Ok(opt_alias(args, name, alias)?.unwrap_or_else(|| "*".into())))
        .collect::<Result<_, ModuleError>>()?;
        for (value, field) in times
            .iter()
            .zip(["minute", "hour", "day", "month", "weekday"])
        {
            if value.is_empty() || value.contains(char::is_whitespace) {
                return Err(invalid(format!(
                    "argument `{field}` must be one crontab field without spaces, not `{value}`"
                )));
            }
        }
        let special_time = match opt_str(args, "special_time")? {
            None => None,
            Some(_) => Some(choice(args, "special_time", SPECIAL_TIMES, "reboot")?),
        };
        if special_time.is_some() && times.iter().any(|t| t != "*") {
            return Err(invalid(
                "argument `special_time` cannot be combined with `minute`, `hour`, `day`, `month` or `weekday`; use one or the other",
            ));
        }
        let disabled = opt_bool(args, "disabled")?.unwrap_or(false);

        let name = match (name, present, &target) {
            (Some(name), _, _) => name,
            (None, false, Target::File(_)) => String::new(),
            (None, _, _) => {
                return Err(invalid(
                    "missing required argument `name`; it identifies the entry through the `#Ansible: NAME` marker",
                ))
            }
        };

        let entry = if name.is_empty() {
            Entry::WholeFile
        } else if env {
            if name.contains(char::is_whitespace) || name.contains('=') {
                return Err(invalid(format!(
                    "invalid variable name `{name}`: use no spaces and no `=`"
                )));
            }
            let value = match (&job, present) {
                (Some(value), _) => value.clone(),
                (None, false) => String::new(),
                (None, true) => {
                    return Err(invalid(
                        "missing required argument `job`: the value of the variable",
                    ))
                }
            };
            Entry::Env {
                line: format!("{name}=\"{value}\""),
                insert_after,
                insert_before,
            }
        } else {
            let line = match (&job, present) {
                (Some(job), _) => {
                    let user_field = match &target {
                        Target::File(_) => format!(" {user}"),
                        Target::User(_) => String::new(),
                    };
                    let prefix = if disabled { "#" } else { "" };
                    let schedule = match &special_time {
                        Some(special) => format!("@{special}"),
                        None => times.join(" "),
                    };
                    format!("{prefix}{schedule}{user_field} {job}")
                }
                (None, false) => String::new(),
                (None, true) => {
                    return Err(invalid(
                        "missing required argument `job`: the command to run",
                    ))
                }
            };
            Entry::Job { line }
        };

        Ok(Cron {
            name,
            target,
            entry,
            present,
            backup: bool_or(args, "backup", false)?,
        })
    }

    fn header(&self) -> String {
        match &self.target {
            Target::User(Some(user)) => format!("crontab {user}"),
            Target::User(None) => "crontab".to_string(),
            Target::File(path) => path.clone(),
        }
    }

    /// Applies the entry to the table lines and returns the change summaries, empty
    /// when the entry is already as requested.
    fn converge(&self, lines: &mut Vec<String>) -> Result<Vec<String>, ModuleError> {
        let name = &self.name;
        match (&self.entry, self.present) {
            (Entry::WholeFile, _) => Ok(Vec::new()),
            (Entry::Job { line }, true) => Ok(converge_job(lines, name, line)),
            (Entry::Job { .. }, false) => {
                if remove_job(lines, name) {
                    Ok(vec![format!("remove cron job `{name}`")])
                } else {
                    Ok(Vec::new())
                }
            }
            (
                Entry::Env {
                    line,
                    insert_after,
                    insert_before,
                },
                true,
            ) => converge_env(
                lines,
                name,
                line,
                insert_after.as_deref(),
                insert_before.as_deref(),
            ),
            (Entry::Env { .. }, false) => {
                let before = lines.len();
                lines.retain(|l| !is_env_line(l, name));
                if lines.len() == before {
                    Ok(Vec::new())
                } else {
                    Ok(vec![format!("remove variable `{name}`")])
                }
            }
        }
    }

    fn describe(&self) -> String {
        match &self.entry {
            Entry::Env { .. } => format!("variable `{}`", self.name),
            _ => format!("cron job `{}`", self.name),
        }
    }
}

fn is_env_line(line: &str, name: &str) -> bool {
    line.strip_prefix(name)
        .is_some_and(|rest| rest.starts_with('='))
}

fn marker(name: &str) -> String {
    format!("{MARKER}{name}")
}

fn converge_job(lines: &mut Vec<String>, name: &str, job: &str) -> Vec<String> {
    let name_marker = marker(name);
    let managed: Vec<usize> = (0..lines.len().saturating_sub(1))
        .filter(|&i| lines[i] == name_marker)
        .map(|i| i + 1)
        .collect();
    if !managed.is_empty() {
        // Every block with this name is rewritten, as Ansible does with duplicates.
        let stale = managed.iter().any(|&i| lines[i] != job);
        if !stale {
            return Vec::new();
        }
        for &i in &managed {
            lines[i] = job.to_string();
        }
        return vec![format!("update cron job `{name}`")];
    }

    // A job written by hand with the same line is adopted by inserting its marker.
    if let Some(index) = lines.iter().position(|l| l == job) {
        let marked = index > 0 && lines[index - 1].starts_with(MARKER);
        if !marked {
            lines.insert(index, name_marker);
            return vec![format!("mark the existing cron job as `{name}`")];
        }
    }

    lines.push(name_marker);
    lines.push(job.to_string());
    vec![format!("add cron job `{name}`")]
}

/// Removes every marker with this name and the job line after it.
fn remove_job(lines: &mut Vec<String>, name: &str) -> bool {
    let name_marker = marker(name);
    let mut remaining = Vec::with_capacity(lines.len());
    let mut skip_next = false;
    let mut removed = false;
    for line in lines.drain(..) {
        if skip_next {
            skip_next = false;
            continue;
        }
        if line == name_marker {
            skip_next = true;
            removed = true;
            continue;
        }
        remaining.push(line);
    }
    *lines = remaining;
    removed
}

fn converge_env(
    lines: &mut Vec<String>,
    name: &str,
    decl: &str,
    insert_after: Option<&str>,
    insert_before: Option<&str>,
) -> Result<Vec<String>, ModuleError> {
    match lines.iter().position(|l| is_env_line(l, name)) {
        Some(index) if lines[index] == decl => Ok(Vec::new()),
        Some(_) => {
            for line in lines.iter_mut().filter(|l| is_env_line(l, name)) {
                *line = decl.to_string();
            }
            Ok(vec![format!("update variable `{name}`")])
        }
        None => {
            let index = match (insert_after, insert_before) {
                (None, None) => 0,
                (Some(other), _) | (None, Some(other)) => {
                    let position = lines
                        .iter()
                        .position(|l| is_env_line(l, other))
                        .ok_or_else(|| {
                            ModuleError::Failed(format!(
                                "variable `{other}` named in `{}` was not found in the crontab; add it first or remove the argument",
                                if insert_after.is_some() { "insertafter" } else { "insertbefore" }
                            ))
                        })?;
                    if insert_after.is_some() {
                        position + 1
                    } else {
                        position
                    }
                }
            };
            lines.insert(index, decl.to_string());
            Ok(vec![format!("add variable `{name}`")])
        }
    }
}

/// Splits a crontab into lines, dropping the three header comments that some
/// `crontab -l` implementations print, as Ansible does.
fn table_lines(existing: &str) -> Vec<String> {
    existing
        .lines()
        .enumerate()
        .filter(|(index, line)| *index > 2 || !is_generated_header(line))
        .map(|(_, line)| line.to_string())
        .collect()
}

fn is_generated_header(line: &str) -> bool {
    line.starts_with("# DO NOT EDIT THIS FILE - edit the master and reinstall.")
        || (line.starts_with("# (/tmp/") && line.contains("installed on"))
        || (line.starts_with("# (") && line.contains("version"))
}

fn render(lines: &[String]) -> String {
    let joined = lines.join("\n");
    let trimmed = joined.trim_end_matches(['\r', '\n']);
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}\n")
    }
}

fn job_names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(MARKER))
        .map(String::from)
        .collect()
}

fn env_names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(name, _)| !name.is_empty() && !name.contains(char::is_whitespace))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The state of the table that the probe found.
#[derive(Debug, Clone, PartialEq)]
enum Probed {
    Present(String),
    Absent,
    /// The `crontab` command or the cron.d folder is missing.
    NoCron,
    Error(String),
}

fn parse_probe(output: &ExecOutput) -> Result<Probed, ModuleError> {
    let sections = split_sections(&output.stdout);
    let status = sections
        .iter()
        .find(|(name, _)| name == "status")
        .map(|(_, body)| super::common::parse_key_values(body))
        .ok_or_else(|| {
            ModuleError::Probe(format!(
                "the cron probe printed no `status` section: {}",
                output.stderr.trim()
            ))
        })?;
    match status.get("state").map(String::as_str) {
        Some("present") => {
            let body = sections
                .iter()
                .find(|(name, _)| name == "crontab")
                .map(|(_, body)| body.as_str())
                .unwrap_or("");
            // The probe prints one newline after the table so the next header starts
            // on its own line; dropping it restores the exact content.
            let content = body.strip_suffix('\n').unwrap_or(body);
            Ok(Probed::Present(content.to_string()))
        }
        Some("absent") => Ok(Probed::Absent),
        Some("no-cron") => Ok(Probed::NoCron),
        _ => Ok(Probed::Error(
            status.get("message").cloned().unwrap_or_default(),
        )),
    }
}

/// Returns `-u USER ` for `crontab`, or nothing for the user the task runs as.
fn crontab_user_option(user: Option<&str>) -> String {
    user.map(|user| format!("-u {} ", quote(user)))
        .unwrap_or_default()
}

impl Action for Cron {
    fn probe(&self) -> Option<String> {
        let mut script = String::new();
        match &self.target {
            Target::User(user) => {
                let user = crontab_user_option(user.as_deref());
                script.push_str("if command -v crontab >/dev/null 2>&1; then\n");
                script.push_str("exec 3>&1\n");
                script.push_str(&section_header("crontab"));
                script.push_str(&format!(
                    "vf_err=$(crontab {user}-l 2>&1 >&3)\nvf_rc=$?\nprintf '\\n'\n"
                ));
                script.push_str(&section_header("status"));
                script.push_str(
                    "if [ \"$vf_rc\" -eq 0 ]; then echo state=present; else case \"$vf_err\" in \"no crontab for \"*) echo state=absent ;; *) printf 'state=error\\nmessage=%s\\n' \"$(printf '%s\\n' \"$vf_err\" | head -n 1)\" ;; esac; fi\n",
                );
                script.push_str("else\n");
                script.push_str(&section_header("status"));
                script.push_str("echo state=no-cron\nfi\n");
            }
            Target::File(path) => {
                let path = quote(path);
                script.push_str(&format!("vf_path={path}\n"));
                script.push_str("if [ -f \"$vf_path\" ]; then\n");
                script.push_str(&section_header("crontab"));
                script.push_str("cat -- \"$vf_path\"\nprintf '\\n'\n");
                script.push_str(&section_header("status"));
                script.push_str("echo state=present\n");
                script.push_str("elif [ -e \"$vf_path\" ]; then\n");
                script.push_str(&section_header("status"));
                script.push_str(
                    "printf 'state=error\\nmessage=%s\\n' \"$vf_path is not a regular file\"\n",
                );
                script.push_str("elif [ -d \"$(dirname -- \"$vf_path\")\" ]; then\n");
                script.push_str(&section_header("status"));
                script.push_str("echo state=absent\nelse\n");
                script.push_str(&section_header("status"));
                script.push_str("echo state=no-cron\nfi\n");
            }
        }
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let mut note = "";
        let existing = match parse_probe(probe)? {
            Probed::Present(content) => Some(content),
            Probed::Absent => None,
            Probed::NoCron => {
                let predicted = host.check_mode
                    && CRON_PACKAGES
                        .iter()
                        .any(|p| host.predicted.packages.contains(*p));
                if !predicted {
                    return Err(self.no_cron_error());
                }
                note = " (cron would be installed by an earlier task)";
                None
            }
            Probed::Error(message) => match &self.target {
                Target::User(Some(user))
                    if host.check_mode && host.predicted.users.contains(user) =>
                {
                    note = " (the user would be created by an earlier task)";
                    None
                }
                Target::User(Some(user)) => {
                    return Err(ModuleError::Probe(format!(
                        "cannot read the crontab of `{user}`: {message}; check that the user exists and run the task with `become: true`"
                    )))
                }
                Target::User(None) => {
                    return Err(ModuleError::Probe(format!(
                        "cannot read the crontab of the user the task runs as: {message}"
                    )))
                }
                Target::File(path) => {
                    return Err(ModuleError::Probe(format!(
                        "cannot read `{path}`: {message}"
                    )))
                }
            },
        };
        // In check mode, a cron.d file that an earlier task would write is planned against.
        let existing = match (&self.target, existing) {
            (Target::File(path), None) if host.check_mode => host
                .predicted
                .files
                .get(path)
                .and_then(|content| content.as_ref())
                .map(|content| String::from_utf8_lossy(content).into_owned()),
            (_, existing) => existing,
        };
        let before = existing.clone().unwrap_or_default();
        let mut lines = table_lines(&before);
        let filtered_before = render_exact(&before, &lines);
        let mut summaries = self.converge(&mut lines)?;

        let remove_file = matches!(self.target, Target::File(_))
            && existing.is_some()
            && (matches!(self.entry, Entry::WholeFile)
                || (!self.present && !summaries.is_empty() && render(&lines).is_empty()));
        if summaries.is_empty() && !remove_file {
            if !before.is_empty() && !before.ends_with(['\n', '\r']) {
                summaries.push(format!(
                    "add the missing final newline to {}",
                    self.header()
                ));
            } else {
                return Ok(Plan {
                    result: self.result(&lines),
                    ..Plan::unchanged(self.unchanged_reason())
                });
            }
        }

        let after = if remove_file {
            String::new()
        } else {
            render(&lines)
        };
        if remove_file {
            summaries.push(format!("remove {}", self.header()));
        }
        let summary = format!("{}{note}", summaries.join(", "));
        let mut plan = Plan {
            changes: vec![Change {
                summary,
                diff: Some(Diff {
                    header: self.header(),
                    before: filtered_before,
                    after: after.clone(),
                }),
            }],
            apply: Some(self.apply_script(&after, remove_file)),
            result: self.result(if remove_file { &[] } else { &lines }),
            ..Plan::default()
        };
        if let (Target::File(path), false) = (&self.target, remove_file) {
            plan.predicts
                .files
                .insert(path.clone(), Some(after.into_bytes()));
        }
        Ok(plan)
    }

    fn finish(&self, plan: &Plan, output: &ExecOutput) -> Result<Map<String, Value>, ModuleError> {
        if output.exit_code != 0 {
            return Err(ModuleError::Failed(format!(
                "writing {} failed with exit status {}: {}",
                self.header(),
                output.exit_code,
                output.stderr.trim()
            )));
        }
        let mut result = plan.result.clone();
        if let Some(backup) = output
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix("backup="))
        {
            result.insert("backup_file".into(), Value::from(backup));
        }
        Ok(result)
    }
}

/// Renders the `before` text of the diff: the table without generated header comments,
/// keeping a missing final newline visible.
fn render_exact(before: &str, lines: &[String]) -> String {
    let mut text = lines.join("\n");
    if before.ends_with('\n') && !text.is_empty() {
        text.push('\n');
    }
    text
}

impl Cron {
    fn no_cron_error(&self) -> ModuleError {
        match &self.target {
            Target::User(_) => ModuleError::Failed(
                "the `crontab` command is not installed; install the `cron` package first".into(),
            ),
            Target::File(path) => ModuleError::Failed(format!(
                "the folder of `{path}` does not exist; install the `cron` package first"
            )),
        }
    }

    fn unchanged_reason(&self) -> String {
        let entry_text = self.describe();
        match (&self.entry, self.present) {
            (Entry::WholeFile, _) => format!("{} is absent", self.header()),
            (_, true) => format!("{entry_text} is up to date in {}", self.header()),
            (_, false) => format!("{entry_text} is absent from {}", self.header()),
        }
    }

    fn result(&self, lines: &[String]) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert("jobs".into(), Value::from(job_names(lines)));
        result.insert("envs".into(), Value::from(env_names(lines)));
        if let Target::File(path) = &self.target {
            result.insert("cron_file".into(), Value::from(path.clone()));
        }
        result.insert(
            "state".into(),
            Value::from(if self.present { "present" } else { "absent" }),
        );
        result
    }

    fn apply_script(&self, content: &str, remove_file: bool) -> String {
        match &self.target {
            Target::File(path) if remove_file => {
                let mut script = format!("set -e\nvf_target={}\n", quote(path));
                if self.backup {
                    script.push_str("if [ -f \"$vf_target\" ]; then vf_backup=\"$vf_target.$(date +%s)~\"; cp -p -- \"$vf_target\" \"$vf_backup\"; echo \"backup=$vf_backup\"; fi\n");
                }
                script.push_str("rm -f -- \"$vf_target\"\n");
                script
            }
            Target::File(path) => {
                let attrs = FileAttrs {
                    mode: Some("0644".into()),
                    ..FileAttrs::default()
                };
                atomic_write_script(path, content.as_bytes(), &attrs, None, self.backup)
            }
            Target::User(user) => {
                use base64::Engine as _;

                let user = crontab_user_option(user.as_deref());
                let mut script = String::from("set -e\n");
                if self.backup {
                    script.push_str(&format!(
                        "vf_backup=$(mktemp \"${{TMPDIR:-/tmp}}/crontab.XXXXXXXX\")\ncrontab {user}-l > \"$vf_backup\" 2>/dev/null || true\necho \"backup=$vf_backup\"\n"
                    ));
                }
                let encoded = base64::engine::general_purpose::STANDARD.encode(content);
                script.push_str(&format!(
                    "base64 -d <<'VPSFORGE_CONTENT_END' | crontab {user}-\n"
                ));
                for chunk in encoded.as_bytes().chunks(76) {
                    script.push_str(&String::from_utf8_lossy(chunk));
                    script.push('\n');
                }
                script.push_str("VPSFORGE_CONTENT_END\n");
                script
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Predictions;
    use serde_json::json;

    fn cron(args: Value) -> Cron {
        Cron::from_args(&serde_json::from_value(args).unwrap()).unwrap()
    }

    fn plan_with(
        cron: &Cron,
        stdout: &str,
        check_mode: bool,
        predicted: &Predictions,
    ) -> Result<Plan, ModuleError> {
        let host = HostView {
            check_mode,
            facts: &Value::Null,
            predicted,
        };
        let probe = ExecOutput {
            stdout: stdout.to_string(),
            ..ExecOutput::default()
        };
        cron.plan(&probe, &host)
    }

    fn plan(cron: &Cron, stdout: &str) -> Plan {
        plan_with(cron, stdout, false, &Predictions::default()).unwrap()
    }

    fn present(content: &str) -> String {
        format!("==> crontab <==\n{content}\n==> status <==\nstate=present\n")
    }

    const NO_CRONTAB: &str = "==> crontab <==\n\n==> status <==\nstate=absent\n";

    /// A root crontab as Debian 12 `crontab -l` prints it after Ansible managed it.
    const MANAGED: &str = "SHELL=/bin/sh\nMAILTO=\"ops@example.org\"\n# m h  dom mon dow   command\n#Ansible: backup\n30 2 * * * /usr/local/bin/backup.sh\n#Ansible: cleanup\n0 * * * * find /tmp -mtime +7 -delete\n";

    #[test]
    fn plans_follow_crontab() {
        // (arguments, crontab before or None for no crontab, summary or "" for none, crontab after)
        let cases: Vec<(Value, Option<&str>, &str, &str)> = vec![
            (
                json!({"name": "backup", "minute": "30", "hour": "2", "job": "/usr/local/bin/backup.sh"}),
                Some(MANAGED),
                "",
                MANAGED,
            ),
            (
                json!({"name": "backup", "minute": "45", "hour": "2", "job": "/usr/local/bin/backup.sh"}),
                Some(MANAGED),
                "update cron job `backup`",
                "SHELL=/bin/sh\nMAILTO=\"ops@example.org\"\n# m h  dom mon dow   command\n#Ansible: backup\n45 2 * * * /usr/local/bin/backup.sh\n#Ansible: cleanup\n0 * * * * find /tmp -mtime +7 -delete\n",
            ),
            (
                json!({"name": "backup", "minute": "30", "hour": "2", "job": "/usr/local/bin/backup.sh", "disabled": true}),
                Some(MANAGED),
                "update cron job `backup`",
                "SHELL=/bin/sh\nMAILTO=\"ops@example.org\"\n# m h  dom mon dow   command\n#Ansible: backup\n#30 2 * * * /usr/local/bin/backup.sh\n#Ansible: cleanup\n0 * * * * find /tmp -mtime +7 -delete\n",
            ),
            (
                json!({"name": "cleanup", "state": "absent"}),
                Some(MANAGED),
                "remove cron job `cleanup`",
                "SHELL=/bin/sh\nMAILTO=\"ops@example.org\"\n# m h  dom mon dow   command\n#Ansible: backup\n30 2 * * * /usr/local/bin/backup.sh\n",
            ),
            (
                json!({"name": "missing", "state": "absent"}),
                Some(MANAGED),
                "",
                MANAGED,
            ),
            (
                json!({"name": "reboot", "special_time": "reboot", "job": "/usr/local/bin/warm-cache"}),
                None,
                "add cron job `reboot`",
                "#Ansible: reboot\n@reboot /usr/local/bin/warm-cache\n",
            ),
            (
                json!({"name": "CRON_TZ", "env": true, "job": "UTC"}),
                Some(MANAGED),
                "add variable `CRON_TZ`",
                "CRON_TZ=\"UTC\"\nSHELL=/bin/sh\nMAILTO=\"ops@example.org\"\n# m h  dom mon dow   command\n#Ansible: backup\n30 2 * * * /usr/local/bin/backup.sh\n#Ansible: cleanup\n0 * * * * find /tmp -mtime +7 -delete\n",
            ),
            (
                json!({"name": "CRON_TZ", "env": true, "job": "UTC"}),
                Some("CRON_TZ=\"UTC\"\n#Ansible: a\n* * * * * true\n"),
                "",
                "CRON_TZ=\"UTC\"\n#Ansible: a\n* * * * * true\n",
            ),
            (
                json!({"name": "MAILTO", "env": true, "value": "root"}),
                Some(MANAGED),
                "update variable `MAILTO`",
                "SHELL=/bin/sh\nMAILTO=\"root\"\n# m h  dom mon dow   command\n#Ansible: backup\n30 2 * * * /usr/local/bin/backup.sh\n#Ansible: cleanup\n0 * * * * find /tmp -mtime +7 -delete\n",
            ),
            (
                json!({"name": "PATH", "env": true, "job": "/usr/bin:/bin", "insertafter": "SHELL"}),
                Some("SHELL=/bin/sh\nMAILTO=\"\"\n"),
                "add variable `PATH`",
                "SHELL=/bin/sh\nPATH=\"/usr/bin:/bin\"\nMAILTO=\"\"\n",
            ),
            (
                json!({"name": "MAILTO", "env": true, "state": "absent"}),
                Some("SHELL=/bin/sh\nMAILTO=\"\"\n"),
                "remove variable `MAILTO`",
                "SHELL=/bin/sh\n",
            ),
            (
                json!({"name": "hand", "minute": "5", "job": "/usr/bin/true"}),
                Some("5 * * * * /usr/bin/true\n"),
                "mark the existing cron job as `hand`",
                "#Ansible: hand\n5 * * * * /usr/bin/true\n",
            ),
            (
                json!({"name": "a", "job": "true"}),
                Some("#Ansible: a\n* * * * * true"),
                "add the missing final newline to crontab",
                "#Ansible: a\n* * * * * true\n",
            ),
            (
                json!({"name": "a", "job": "true"}),
                Some("# DO NOT EDIT THIS FILE - edit the master and reinstall.\n# (/tmp/crontab.XXXXa8Kx4 installed on Fri Dec  4 10:00:00 2026)\n# (Cron version -- $Id: crontab.c,v 2.13 1994/01/17 03:20:37 vixie Exp $)\n#Ansible: a\n* * * * * true\n"),
                "",
                "#Ansible: a\n* * * * * true\n",
            ),
        ];
        for (args, before, summary, after) in cases {
            let cron = cron(args.clone());
            let stdout = before
                .map(present)
                .unwrap_or_else(|| NO_CRONTAB.to_string());
            let plan = plan(&cron, &stdout);
            if summary.is_empty() {
                assert!(!plan.changed(), "args {args}: {:?}", plan.changes);
                assert!(plan.apply.is_none(), "args {args}");
                continue;
            }
            assert_eq!(plan.changes.len(), 1, "args {args}");
            assert_eq!(plan.changes[0].summary, summary, "args {args}");
            let diff = plan.changes[0].diff.clone().unwrap();
            // Without `user`, the crontab is the one of the user the task runs as.
            assert_eq!(diff.header, "crontab", "args {args}");
            assert_eq!(diff.after, after, "args {args}");
            let apply = plan.apply.clone().unwrap();
            assert!(
                apply.contains("| crontab -\n") && !apply.contains("crontab -u"),
                "args {args}: {apply}"
            );
            assert_eq!(sh_syntax_error(&apply), None, "args {args}");

            // The second run reads the new table and must change nothing.
            let second = super::tests::plan(&cron, &present(after));
            assert!(!second.changed(), "args {args}: {:?}", second.changes);
        }
    }

    #[test]
    fn user_crontab_apply_carries_table() {
        let cron = cron(
            json!({"name": "backup", "user": "deploy", "hour": "3", "job": "tar czf /srv/backup.tgz /srv/app"}),
        );
        let plan = plan(&cron, NO_CRONTAB);
        let apply = plan.apply.unwrap();
        // Decode the embedded table the way the host does, with `sh` and `base64 -d`,
        // replacing the crontab command by `cat`.
        let local = apply.replace("| crontab -u deploy -", "| cat");
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&local)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            "#Ansible: backup\n* 3 * * * tar czf /srv/backup.tgz /srv/app\n"
        );
        assert_eq!(plan.result.get("jobs"), Some(&json!(["backup"])));
    }

    #[test]
    fn cron_file_round_trip_in_temp_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certbot");
        let path_text = path.to_str().unwrap().to_string();
        let add = cron(json!({
            "name": "renew", "cron_file": path_text, "user": "root",
            "minute": "17", "hour": "*/12", "job": "certbot -q renew"
        }));
        let tz =
            cron(json!({"name": "CRON_TZ", "env": true, "job": "UTC", "cron_file": path_text}));
        let remove = cron(json!({"name": "renew", "cron_file": path_text, "state": "absent"}));
        let remove_tz = cron(
            json!({"name": "CRON_TZ", "env": true, "cron_file": path_text, "state": "absent"}),
        );

        let run = |script: &str| {
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            ExecOutput {
                exit_code: 0,
                stdout: String::from_utf8(output.stdout).unwrap(),
                stderr: String::new(),
            }
        };
        let predicted = Predictions::default();
        let host = HostView {
            check_mode: false,
            facts: &Value::Null,
            predicted: &predicted,
        };

        for action in [&add, &tz] {
            let plan = action.plan(&run(&action.probe().unwrap()), &host).unwrap();
            assert!(plan.changed());
            assert_eq!(plan.changes[0].diff.as_ref().unwrap().header, path_text);
            run(plan.apply.as_deref().unwrap());
            let again = action.plan(&run(&action.probe().unwrap()), &host).unwrap();
            assert!(!again.changed(), "{:?}", again.changes);
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "CRON_TZ=\"UTC\"\n#Ansible: renew\n17 */12 * * * root certbot -q renew\n"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );

        let plan = remove.plan(&run(&remove.probe().unwrap()), &host).unwrap();
        assert_eq!(plan.changes[0].summary, "remove cron job `renew`");
        run(plan.apply.as_deref().unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "CRON_TZ=\"UTC\"\n");

        // Removing the last entry removes the file.
        let plan = remove_tz
            .plan(&run(&remove_tz.probe().unwrap()), &host)
            .unwrap();
        assert_eq!(
            plan.changes[0].summary,
            format!("remove variable `CRON_TZ`, remove {path_text}")
        );
        run(plan.apply.as_deref().unwrap());
        assert!(!path.exists());
        let again = remove_tz
            .plan(&run(&remove_tz.probe().unwrap()), &host)
            .unwrap();
        assert!(!again.changed());
    }

    /// A stand-in for `crontab` that keeps each user's table in a file under
    /// `$VF_CRONTAB_DIR`, because the real command would change this machine's cron.
    const FAKE_CRONTAB: &str = r#"#!/bin/sh
user=$(id -un)
action=
while [ $# -gt 0 ]; do
  case "$1" in
    -u) user=$2; shift 2 ;;
    -l) action=list; shift ;;
    -) action=install; shift ;;
    *) shift ;;
  esac
done
table="$VF_CRONTAB_DIR/$user"
case "$action" in
  list) if [ -f "$table" ]; then cat "$table"; else echo "no crontab for $user" >&2; exit 1; fi ;;
  install) cat > "$table" ;;
esac
"#;

    #[test]
    fn user_crontab_round_trip() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let fake = bin.join("crontab");
        std::fs::write(&fake, FAKE_CRONTAB).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let run = |script: &str| {
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .env("PATH", &path)
                .env("VF_CRONTAB_DIR", dir.path())
                .env("TMPDIR", dir.path())
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            ExecOutput {
                exit_code: 0,
                stdout: String::from_utf8(output.stdout).unwrap(),
                stderr: String::new(),
            }
        };
        let predicted = Predictions::default();
        let host = HostView {
            check_mode: false,
            facts: &Value::Null,
            predicted: &predicted,
        };

        // A table written by hand, without a final newline.
        std::fs::write(
            dir.path().join("deploy"),
            "MAILTO=\"\"\n5 * * * * /usr/bin/true",
        )
        .unwrap();
        let tasks = [
            cron(json!({"name": "CRON_TZ", "env": true, "job": "UTC", "user": "deploy"})),
            cron(
                json!({"name": "sync", "minute": "*/5", "job": "rsync -a /srv/a/ /srv/b/", "user": "deploy"}),
            ),
            cron(
                json!({"name": "hand", "minute": "5", "job": "/usr/bin/true", "user": "deploy", "backup": true}),
            ),
            // Without `user`, the table of the user the task runs as.
            cron(json!({"name": "mine", "minute": "7", "job": "/bin/true"})),
        ];
        for task in &tasks {
            let plan = task.plan(&run(&task.probe().unwrap()), &host).unwrap();
            assert!(plan.changed(), "{task:?}");
            let output = run(plan.apply.as_deref().unwrap());
            let result = task.finish(&plan, &output).unwrap();
            assert_eq!(
                result.get("backup_file").is_some(),
                task.backup,
                "{result:?}"
            );
            let again = task.plan(&run(&task.probe().unwrap()), &host).unwrap();
            assert!(!again.changed(), "{:?}", again.changes);
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("deploy")).unwrap(),
            "CRON_TZ=\"UTC\"\nMAILTO=\"\"\n#Ansible: hand\n5 * * * * /usr/bin/true\n#Ansible: sync\n*/5 * * * * rsync -a /srv/a/ /srv/b/\n"
        );
        let me = String::from_utf8(
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(me.trim())).unwrap(),
            "#Ansible: mine\n7 * * * * /bin/true\n"
        );
    }

    #[test]
    fn predicted_cron_file_is_planned_against() {
        let cron = cron(json!({"name": "CRON_TZ", "env": true, "job": "UTC", "cron_file": "app"}));
        let mut predicted = Predictions::default();
        predicted.files.insert(
            "/etc/cron.d/app".into(),
            Some(b"CRON_TZ=\"UTC\"\n#Ansible: a\n* * * * * root true\n".to_vec()),
        );
        let stdout = "==> status <==\nstate=absent\n";
        let plan = plan_with(&cron, stdout, true, &predicted).unwrap();
        assert!(!plan.changed(), "{:?}", plan.changes);
        let plan = plan_with(&cron, stdout, false, &predicted).unwrap();
        assert!(plan.changed());
    }

    #[test]
    fn absent_without_name_removes_cron_file() {
        let cron = cron(json!({"cron_file": "certbot", "state": "absent"}));
        let plan = plan(&cron, &present("17 */12 * * * root certbot -q renew\n"));
        assert_eq!(plan.changes[0].summary, "remove /etc/cron.d/certbot");
        assert!(plan.apply.unwrap().contains("rm -f -- \"$vf_target\""));
        let none = super::tests::plan(&cron, "==> status <==\nstate=absent\n");
        assert!(!none.changed());
        assert_eq!(
            none.reason.as_deref(),
            Some("/etc/cron.d/certbot is absent")
        );
    }

    #[test]
    fn missing_crontab_command() {
        let cron = cron(json!({"name": "a", "job": "true"}));
        let stdout = "==> status <==\nstate=no-cron\n";
        let error = plan_with(&cron, stdout, false, &Predictions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the `crontab` command is not installed; install the `cron` package first"
        );
        let mut predicted = Predictions::default();
        predicted.packages.insert("cron".into());
        let plan = plan_with(&cron, stdout, true, &predicted).unwrap();
        assert_eq!(
            plan.changes[0].summary,
            "add cron job `a` (cron would be installed by an earlier task)"
        );
    }

    #[test]
    fn unknown_user_is_a_probe_error_unless_predicted() {
        let cron = cron(json!({"name": "a", "job": "true", "user": "deploy"}));
        let stdout = "==> crontab <==\n\n==> status <==\nstate=error\nmessage=crontab: user `deploy' unknown\n";
        let error = plan_with(&cron, stdout, false, &Predictions::default()).unwrap_err();
        assert!(
            error.to_string().contains("user `deploy' unknown"),
            "{error}"
        );
        let mut predicted = Predictions::default();
        predicted.users.insert("deploy".into());
        let plan = plan_with(&cron, stdout, true, &predicted).unwrap();
        assert!(plan.changed());
    }

    #[test]
    fn invalid_arguments_are_rejected() {
        for (args, fragment) in [
            (json!({"job": "true"}), "argument `name`"),
            (json!({"name": "a"}), "argument `job`"),
            (
                json!({"name": "a", "job": "x", "special_time": "daily", "hour": "2"}),
                "argument `special_time`",
            ),
            (
                json!({"name": "a", "job": "x", "special_time": "often"}),
                "argument `special_time`",
            ),
            (
                json!({"name": "a", "job": "x", "insertafter": "PATH"}),
                "`env: true`",
            ),
            (
                json!({"name": "A B", "env": true, "job": "x"}),
                "invalid variable name",
            ),
            (json!({"name": "a", "job": "x\ny"}), "argument `job`"),
            (
                json!({"name": "a", "job": "x", "minute": "1 2"}),
                "argument `minute`",
            ),
            (json!({"name": "a", "state": "gone"}), "argument `state`"),
        ] {
            let error = Cron::from_args(&serde_json::from_value(args.clone()).unwrap())
                .err()
                .unwrap_or_else(|| panic!("accepted {args}"));
            assert!(error.to_string().contains(fragment), "{args}: {error}");
        }
    }

    #[test]
    fn probes_are_valid_sh() {
        for args in [
            json!({"name": "a", "job": "true", "user": "it's"}),
            json!({"name": "a", "job": "true", "cron_file": "my job"}),
        ] {
            let probe = cron(args.clone()).probe().unwrap();
            assert_eq!(sh_syntax_error(&probe), None, "args {args}");
        }
    }

    #[test]
    fn user_probe_reports_crontab_state() {
        // `crontab` may be missing on this machine, so accept either status but
        // require that the probe always reports one.
        let probe = cron(json!({"name": "a", "job": "true", "user": "no-such-user-vf"}))
            .probe()
            .unwrap();
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&probe)
            .output()
            .unwrap();
        let parsed = parse_probe(&ExecOutput {
            stdout: String::from_utf8(output.stdout).unwrap(),
            ..ExecOutput::default()
        })
        .unwrap();
        assert!(
            matches!(parsed, Probed::NoCron | Probed::Error(_)),
            "{parsed:?}"
        );
    }

    fn sh_syntax_error(script: &str) -> Option<String> {
        let output = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        if output.status.success() {
            None
        } else {
            Some(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}
