//! `sysctl`: manage kernel parameters in a sysctl file and in the running kernel.
//!
//! The probe reads the file and the live value in one round trip. The file is
//! edited here on the controller, as Ansible's `ansible.posix.sysctl` edits it,
//! and written back atomically, so the plan can show the diff. Values compare
//! word by word, so `32768 60999` equals `32768\t60999`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Map};

use super::args::{bool_or, choice, opt_str, req_str};
use super::command::resolve_aliases;
use super::common::{atomic_write_script, quote, section_header, split_sections, FileAttrs};
use super::{
    Action, Args, BuildContext, Change, Diff, ExecOutput, HostView, ModuleError, ModuleKind,
    ModuleSpec, Param, ParamKind, Plan, Predictions,
};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "sysctl",
    aliases: &["ansible.posix.sysctl"],
    params: &[
        Param::new("name", ParamKind::Str)
            .required()
            .aliases(&["key"]),
        Param::new("value", ParamKind::Str).aliases(&["val"]),
        Param::new("state", ParamKind::Str).choices(&["present", "absent"]),
        Param::new("ignoreerrors", ParamKind::Bool),
        Param::new("reload", ParamKind::Bool),
        Param::new("sysctl_file", ParamKind::Str),
        Param::new("sysctl_set", ParamKind::Bool),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

const DEFAULT_FILE: &str = "/etc/sysctl.conf";

fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let args = &resolve_aliases(&SPEC, args);
    let name = req_str(args, "name")?.trim().to_string();
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '=') {
        return Err(ModuleError::InvalidArgument(format!(
            "invalid kernel parameter name `{name}` in argument `name`: use a dotted name such as `net.ipv4.ip_forward`"
        )));
    }
    let present = choice(args, "state", &["present", "absent"], "present")? == "present";
    let value = match opt_str(args, "value")? {
        Some(value) => Some(normalize_value(&value)),
        None if present => {
            return Err(ModuleError::InvalidArgument(
                "argument `value` is missing: `state: present` needs the value to set".to_string(),
            ))
        }
        None => None,
    };
    if value.as_deref().is_some_and(|v| v.contains('\n')) {
        return Err(ModuleError::InvalidArgument(format!(
            "argument `value` of `{name}` contains a line break: sysctl values are one line"
        )));
    }
    let file = opt_str(args, "sysctl_file")?
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_FILE.to_string());
    if !file.starts_with('/') {
        return Err(ModuleError::InvalidArgument(format!(
            "argument `sysctl_file` must be an absolute path, not `{file}`"
        )));
    }
    Ok(Box::new(Sysctl {
        name,
        value,
        present,
        file,
        reload: bool_or(args, "reload", true)?,
        sysctl_set: bool_or(args, "sysctl_set", false)?,
        ignore_errors: bool_or(args, "ignoreerrors", false)?,
    }))
}

/// Converts a value the way Ansible does: booleans become `1` or `0`, and text is trimmed.
fn normalize_value(value: &str) -> String {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => "1".to_string(),
        "false" | "no" => "0".to_string(),
        _ => value.trim().to_string(),
    }
}

/// Compares values word by word, ignoring how much whitespace separates them.
fn values_equal(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

#[derive(Debug)]
struct Sysctl {
    name: String,
    /// Normalized; `None` only with `state: absent`.
    value: Option<String>,
    present: bool,
    file: String,
    reload: bool,
    sysctl_set: bool,
    ignore_errors: bool,
}

impl Sysctl {
    /// Returns the value the file sets for `name`: the first `name = value` line, as
    /// Ansible reads it (later duplicates are dropped when the file is rewritten).
    fn file_value<'a>(&self, content: &'a str) -> Option<&'a str> {
        content.lines().find_map(|line| {
            let (key, value) = parse_line(line)?;
            (key == self.name).then_some(value)
        })
    }

    /// Returns the file with `name` set to the desired value, or removed for `absent`.
    /// Other lines stay as written, and repeated lines for `name` are dropped.
    fn edit(&self, content: &str) -> String {
        let mut out = String::new();
        let mut seen = false;
        for line in content.split_inclusive('\n') {
            match parse_line(line) {
                Some((key, _)) if key == self.name => {
                    if !seen && self.present {
                        out.push_str(&self.entry());
                    }
                    seen = true;
                }
                _ => out.push_str(line),
            }
        }
        if !seen && self.present {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&self.entry());
        }
        out
    }

    fn entry(&self) -> String {
        format!("{}={}\n", self.name, self.value.as_deref().unwrap_or(""))
    }

    fn sysctl_flags(&self) -> &'static str {
        if self.ignore_errors {
            "-e "
        } else {
            ""
        }
    }
}

/// Splits a `key = value` line. Comments (`#`, `;`), blank lines and lines
/// without `=` are not entries.
fn parse_line(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
        return None;
    }
    let (key, value) = trimmed.split_once('=')?;
    Some((key.trim(), value.trim()))
}

/// The probed state: the file (`None` when absent) and the live value.
#[derive(Debug)]
struct Probed {
    file: Option<String>,
    live: Option<String>,
}

fn parse_probe(output: &ExecOutput) -> Result<Probed, ModuleError> {
    let sections: BTreeMap<String, String> = split_sections(&output.stdout).into_iter().collect();
    let (Some(file), Some(live)) = (sections.get("file"), sections.get("live")) else {
        return Err(ModuleError::Probe(format!(
            "the sysctl probe printed no result (exit status {}): {}",
            output.exit_code,
            output.stderr.trim()
        )));
    };
    let file = match file.split_once('\n') {
        Some(("present", encoded)) => {
            let compact: String = encoded.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| {
                    ModuleError::Probe(format!("the sysctl file could not be decoded: {e}"))
                })?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => None,
    };
    let live = match live.split_once('\n') {
        Some(("found", value)) => Some(value.strip_suffix('\n').unwrap_or(value).to_string()),
        _ => None,
    };
    Ok(Probed { file, live })
}

impl Action for Sysctl {
    fn probe(&self) -> Option<String> {
        let file = quote(&self.file);
        let mut script = String::new();
        script.push_str(&section_header("file"));
        script.push_str(&format!(
            "if [ -f {file} ]; then echo present; base64 < {file}; else echo absent; fi\n"
        ));
        script.push_str(&section_header("live"));
        script.push_str(&format!(
            "if vf_value=$(sysctl -n -- {} 2>/dev/null); then echo found; printf '%s\\n' \"$vf_value\"; else echo missing; fi\n",
            quote(&self.name)
        ));
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let probed = parse_probe(probe)?;
        let mut before = probed.file.clone();
        let mut from_prediction = false;
        if host.check_mode {
            if let Some(Some(content)) = host.predicted.files.get(&self.file) {
                before = Some(String::from_utf8_lossy(content).into_owned());
                from_prediction = true;
            }
        }
        let before_text = before.clone().unwrap_or_default();
        let in_file = self.file_value(&before_text);

        let mut result = Map::new();
        result.insert("name".into(), json!(self.name));
        result.insert("value".into(), json!(self.value));
        result.insert(
            "state".into(),
            json!(if self.present { "present" } else { "absent" }),
        );
        result.insert("sysctl_file".into(), json!(self.file));

        let write_file = match (&self.value, in_file) {
            _ if !self.present => in_file.is_some(),
            (Some(value), Some(current)) => !values_equal(current, value),
            (_, None) => true,
            (None, Some(_)) => false,
        };

        let live_differs = match (&self.value, &probed.live) {
            (Some(value), Some(live)) => !values_equal(live, value),
            _ => true,
        };
        if self.present
            && probed.live.is_none()
            && (self.reload || self.sysctl_set)
            && !self.ignore_errors
        {
            return Err(ModuleError::Failed(format!(
                "unknown kernel parameter `{}`: `sysctl -n` cannot read it on the host; check the name, or set `ignoreerrors: true` to write it to `{}` anyway",
                self.name, self.file
            )));
        }
        let set_live = self.present && self.sysctl_set && live_differs;
        // As in Ansible, `reload` also repairs a live value that differs from the file.
        let reload_live = self.present && self.reload && live_differs;

        let mut changes = Vec::new();
        let mut script = String::from("set -e\n");
        let value = self.value.as_deref().unwrap_or("");
        let shown_live = probed.live.as_deref().map(str::trim).unwrap_or("unknown");

        if set_live {
            changes.push(Change {
                summary: format!(
                    "set `{}` from `{shown_live}` to `{value}` in the running kernel",
                    self.name
                ),
                diff: None,
            });
            script.push_str(&format!(
                "sysctl {}-w {}={} >/dev/null\n",
                self.sysctl_flags(),
                quote(&self.name),
                quote(value)
            ));
        }

        let after_text = self.edit(&before_text);
        if write_file {
            let action = if !self.present {
                "remove".to_string()
            } else if in_file.is_some() {
                format!("set `{}` to `{value}`", self.name)
            } else {
                format!("add `{}={value}`", self.name)
            };
            let note = if from_prediction {
                " (as an earlier task would write it)"
            } else {
                ""
            };
            let summary = if self.present {
                format!("{action} in `{}`{note}", self.file)
            } else {
                format!("{action} `{}` from `{}`{note}", self.name, self.file)
            };
            changes.push(Change {
                summary,
                diff: Some(Diff {
                    header: self.file.clone(),
                    before: before_text.clone(),
                    after: after_text.clone(),
                }),
            });
            script.push_str(&format!(
                "(\n{})\n",
                atomic_write_script(
                    &self.file,
                    after_text.as_bytes(),
                    &FileAttrs::default(),
                    None,
                    false
                )
            ));
        } else if reload_live && !set_live {
            changes.push(Change {
                summary: format!(
                    "apply `{}={value}` from `{}` to the running kernel (now `{shown_live}`)",
                    self.name, self.file
                ),
                diff: None,
            });
        }

        if changes.is_empty() {
            let reason = if self.present {
                format!("`{}` is `{value}` in `{}`", self.name, self.file)
            } else {
                format!("`{}` is not set in `{}`", self.name, self.file)
            };
            let reason = if self.present && (self.reload || self.sysctl_set) {
                format!("{reason} and in the running kernel")
            } else {
                reason
            };
            let mut plan = Plan::unchanged(reason);
            plan.result = result;
            return Ok(plan);
        }

        if self.reload {
            script.push_str(&format!(
                "sysctl {}-p {} >/dev/null\n",
                self.sysctl_flags(),
                quote(&self.file)
            ));
        }

        let mut predicts = Predictions::default();
        if write_file {
            predicts
                .files
                .insert(self.file.clone(), Some(after_text.into_bytes()));
        }
        Ok(Plan {
            changes,
            reason: None,
            apply: Some(script),
            runs_in_check_mode: false,
            skipped_in_check_mode: false,
            result,
            predicts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn make(value: Value) -> Result<Box<dyn Action>, ModuleError> {
        let context = BuildContext {
            search_paths: &[],
            render_template: &|_| Ok(String::new()),
            facts: &Value::Null,
        };
        build(&serde_json::from_value(value).unwrap(), &context)
    }

    fn action(value: Value) -> Box<dyn Action> {
        make(value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds probe output as the probe script prints it.
    fn probe_output(file: Option<&str>, live: Option<&str>) -> ExecOutput {
        let mut stdout = String::from("==> file <==\n");
        match file {
            Some(content) => {
                stdout.push_str("present\n");
                stdout.push_str(&base64::engine::general_purpose::STANDARD.encode(content));
                stdout.push('\n');
            }
            None => stdout.push_str("absent\n"),
        }
        stdout.push_str("==> live <==\n");
        match live {
            Some(value) => stdout.push_str(&format!("found\n{value}\n")),
            None => stdout.push_str("missing\n"),
        }
        ExecOutput {
            stdout,
            ..ExecOutput::default()
        }
    }

    fn plan_with(
        action: &dyn Action,
        probe: &ExecOutput,
        check_mode: bool,
        predicted: &Predictions,
    ) -> Result<Plan, ModuleError> {
        let host = HostView {
            check_mode,
            facts: &Value::Null,
            predicted,
        };
        action.plan(probe, &host)
    }

    fn plan_of(action: &dyn Action, file: Option<&str>, live: Option<&str>) -> Plan {
        plan_with(
            action,
            &probe_output(file, live),
            false,
            &Predictions::default(),
        )
        .unwrap()
    }

    fn summaries(plan: &Plan) -> Vec<&str> {
        plan.changes.iter().map(|c| c.summary.as_str()).collect()
    }

    /// The first lines of Debian 12's `/etc/sysctl.conf` (from procps), with its `ip_forward` comment.
    const DEBIAN_CONF: &str = "#\n# /etc/sysctl.conf - Configuration file for setting system variables\n# See /etc/sysctl.d/ for additional system variables.\n# See sysctl.conf (5) for information.\n#\n\n#kernel.domainname = example.com\n\n# Uncomment the following to stop low-level messages on console\n#kernel.printk = 3 4 1 3\n\n# Uncomment the next line to enable packet forwarding for IPv4\n#net.ipv4.ip_forward=1\n";

    #[test]
    fn adds_missing_entry_with_diff() {
        let action = action(json!({"name": "net.ipv4.ip_forward", "value": 1}));
        let plan = plan_of(action.as_ref(), Some(DEBIAN_CONF), Some("0"));
        assert_eq!(
            summaries(&plan),
            vec!["add `net.ipv4.ip_forward=1` in `/etc/sysctl.conf`"]
        );
        let diff = plan.changes[0].diff.clone().unwrap();
        assert_eq!(diff.header, "/etc/sysctl.conf");
        assert_eq!(diff.before, DEBIAN_CONF);
        assert_eq!(diff.after, format!("{DEBIAN_CONF}net.ipv4.ip_forward=1\n"));
        let script = plan.apply.unwrap();
        assert!(script.contains("sysctl -p /etc/sysctl.conf"), "{script}");
        assert!(!script.contains("sysctl -w"), "{script}");
    }

    #[test]
    fn matching_entry_and_live_value_is_unchanged() {
        let action =
            action(json!({"name": "net.ipv4.ip_local_port_range", "value": "32768   60999"}));
        let file = "net.ipv4.ip_local_port_range = 32768 60999\n";
        let plan = plan_of(action.as_ref(), Some(file), Some("32768\t60999"));
        assert!(!plan.changed());
        assert_eq!(
            plan.reason.as_deref(),
            Some("`net.ipv4.ip_local_port_range` is `32768   60999` in `/etc/sysctl.conf` and in the running kernel")
        );
    }

    #[test]
    fn changed_entry_is_replaced_once() {
        let action = action(json!({"name": "vm.swappiness", "value": "10"}));
        let file = "# tuning\nvm.swappiness = 60\nkernel.panic=10\nvm.swappiness=30\n";
        let plan = plan_of(action.as_ref(), Some(file), Some("60"));
        assert_eq!(
            summaries(&plan),
            vec!["set `vm.swappiness` to `10` in `/etc/sysctl.conf`"]
        );
        assert_eq!(
            plan.changes[0].diff.as_ref().unwrap().after,
            "# tuning\nvm.swappiness=10\nkernel.panic=10\n"
        );
    }

    #[test]
    fn live_value_differs_from_file() {
        let file = "vm.swappiness=10\n";
        let reload = action(json!({"name": "vm.swappiness", "value": "10"}));
        let plan = plan_of(reload.as_ref(), Some(file), Some("60"));
        assert_eq!(
            summaries(&plan),
            vec![
                "apply `vm.swappiness=10` from `/etc/sysctl.conf` to the running kernel (now `60`)"
            ]
        );
        assert_eq!(
            plan.apply.as_deref(),
            Some("set -e\nsysctl -p /etc/sysctl.conf >/dev/null\n")
        );

        let no_reload = action(json!({"name": "vm.swappiness", "value": "10", "reload": false}));
        assert!(!plan_of(no_reload.as_ref(), Some(file), Some("60")).changed());

        let set = action(
            json!({"name": "vm.swappiness", "value": "10", "reload": false, "sysctl_set": true}),
        );
        let plan = plan_of(set.as_ref(), Some(file), Some("60"));
        assert_eq!(
            summaries(&plan),
            vec!["set `vm.swappiness` from `60` to `10` in the running kernel"]
        );
        assert_eq!(
            plan.apply.as_deref(),
            Some("set -e\nsysctl -w vm.swappiness=10 >/dev/null\n")
        );
    }

    #[test]
    fn absent_removes_entry() {
        let action = action(
            json!({"name": "vm.swappiness", "state": "absent", "sysctl_file": "/etc/sysctl.d/90-tune.conf"}),
        );
        let plan = plan_of(
            action.as_ref(),
            Some("vm.swappiness=10\nkernel.panic=10"),
            Some("10"),
        );
        assert_eq!(
            summaries(&plan),
            vec!["remove `vm.swappiness` from `/etc/sysctl.d/90-tune.conf`"]
        );
        assert_eq!(
            plan.changes[0].diff.as_ref().unwrap().after,
            "kernel.panic=10"
        );
        assert!(!plan_of(action.as_ref(), Some("kernel.panic=10\n"), Some("10")).changed());
        assert!(!plan_of(action.as_ref(), None, Some("10")).changed());
    }

    #[test]
    fn unknown_parameter_fails_unless_ignored() {
        let strict = action(json!({"name": "net.no.such", "value": "1"}));
        let error = plan_with(
            strict.as_ref(),
            &probe_output(None, None),
            false,
            &Predictions::default(),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unknown kernel parameter `net.no.such`"),
            "{error}"
        );

        let lenient = action(json!({"name": "net.no.such", "value": "1", "ignoreerrors": true}));
        let plan = plan_of(lenient.as_ref(), None, None);
        assert_eq!(
            summaries(&plan),
            vec!["add `net.no.such=1` in `/etc/sysctl.conf`"]
        );
        assert!(plan
            .apply
            .unwrap()
            .contains("sysctl -e -p /etc/sysctl.conf"));
    }

    #[test]
    fn check_mode_reads_predicted_file() {
        let mut predicted = Predictions::default();
        predicted.files.insert(
            "/etc/sysctl.d/99-app.conf".into(),
            Some(b"vm.swappiness=10\n".to_vec()),
        );
        let action = action(
            json!({"name": "vm.swappiness", "value": "10", "sysctl_file": "/etc/sysctl.d/99-app.conf", "reload": false}),
        );
        let plan = plan_with(
            action.as_ref(),
            &probe_output(None, Some("60")),
            true,
            &predicted,
        )
        .unwrap();
        assert!(!plan.changed());
    }

    #[test]
    fn booleans_become_digits() {
        for (input, expected) in [
            ("yes", "1"),
            ("False", "0"),
            (" 5 ", "5"),
            ("4096 87380 6291456", "4096 87380 6291456"),
        ] {
            assert_eq!(normalize_value(input), expected, "{input}");
        }
        let action = action(json!({"name": "net.ipv4.ip_forward", "value": true, "reload": false}));
        let plan = plan_of(action.as_ref(), Some("net.ipv4.ip_forward=1\n"), Some("1"));
        assert!(!plan.changed());
    }

    #[test]
    fn build_rejects_bad_arguments() {
        for (value, fragment) in [
            (
                json!({"name": "vm.swappiness"}),
                "argument `value` is missing",
            ),
            (
                json!({"name": "vm swappiness", "value": 1}),
                "invalid kernel parameter name",
            ),
            (
                json!({"name": "a", "value": 1, "sysctl_file": "sysctl.conf"}),
                "must be an absolute path",
            ),
            (
                json!({"name": "a", "value": 1, "state": "gone"}),
                "must be one of",
            ),
            (json!({"value": 1}), "missing required argument `name`"),
        ] {
            let Err(error) = make(value.clone()) else {
                panic!("{value}: accepted");
            };
            assert!(
                error.to_string().contains(fragment),
                "{value}: got `{error}`"
            );
        }
        assert!(make(json!({"key": "vm.swappiness", "val": "10"})).is_ok());
    }

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

    /// Edits a sysctl file in a temporary folder for real; the kernel is left alone
    /// because `reload` and `sysctl_set` are off.
    #[test]
    fn file_edit_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("99-test.conf");
        std::fs::write(&path, "# keep me\nkernel.panic = 10\n").unwrap();
        let action = action(json!({
            "name": "vm.swappiness",
            "value": "10",
            "sysctl_file": path.to_str().unwrap(),
            "reload": false,
        }));
        let predicted = Predictions::default();

        let probe = run_sh(&action.probe().unwrap());
        let plan = plan_with(action.as_ref(), &probe, false, &predicted).unwrap();
        assert!(plan.changed());
        let output = run_sh(plan.apply.as_deref().unwrap());
        assert_eq!(output.exit_code, 0, "{}", output.stderr);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# keep me\nkernel.panic = 10\nvm.swappiness=10\n"
        );

        let probe = run_sh(&action.probe().unwrap());
        let plan = plan_with(action.as_ref(), &probe, false, &predicted).unwrap();
        assert!(!plan.changed(), "{:?}", plan.changes);
    }
}
