//! `group`: local groups, created and changed with `groupadd`, `groupmod` and `groupdel`.

use serde_json::{Map, Value};

use super::args::{bool_or, choice, opt_int, req_str};
use super::common::{quote, section_header, split_sections};
use super::{
    Action, Args, BuildContext, Change, ExecOutput, HostView, ModuleError, ModuleKind, ModuleSpec,
    Param, ParamKind, Plan,
};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "group",
    aliases: &["ansible.builtin.group", "ansible.legacy.group"],
    params: &[
        Param::new("name", ParamKind::Str).required(),
        Param::new("gid", ParamKind::Int),
        Param::new("state", ParamKind::Str).choices(&["present", "absent"]),
        Param::new("system", ParamKind::Bool),
        Param::new("non_unique", ParamKind::Bool),
        Param::new("force", ParamKind::Bool),
        Param::new("local", ParamKind::Bool),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

/// The marker the probe prints when `getent group` finds nothing.
const ABSENT: &str = "vf-absent";

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    name: String,
    gid: Option<u32>,
    present: bool,
    system: bool,
    non_unique: bool,
    force: bool,
}

pub fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    Ok(Box::new(Group::from_args(args)?))
}

impl Group {
    pub fn from_args(args: &Args) -> Result<Group, ModuleError> {
        let name = req_str(args, "name")?;
        validate_name(&name)?;
        let gid = match opt_int(args, "gid")? {
            None => None,
            Some(gid) => Some(u32::try_from(gid).map_err(|_| {
                ModuleError::InvalidArgument(format!(
                    "argument `gid` must be between 0 and {}, not `{gid}`",
                    u32::MAX
                ))
            })?),
        };
        let present = choice(args, "state", &["present", "absent"], "present")? == "present";
        let non_unique = bool_or(args, "non_unique", false)?;
        if non_unique && gid.is_none() {
            return Err(ModuleError::InvalidArgument(
                "argument `non_unique` requires `gid`; set `gid` or remove `non_unique`".into(),
            ));
        }
        if bool_or(args, "local", false)? {
            return Err(ModuleError::InvalidArgument(
                "argument `local` is not supported; remove it to manage the group with `groupadd`"
                    .into(),
            ));
        }
        Ok(Group {
            name,
            gid,
            present,
            system: bool_or(args, "system", false)?,
            non_unique,
            force: bool_or(args, "force", false)?,
        })
    }

    fn result(&self, gid: Option<u32>) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert("name".into(), Value::from(self.name.clone()));
        result.insert(
            "state".into(),
            Value::from(if self.present { "present" } else { "absent" }),
        );
        if self.present {
            result.insert("system".into(), Value::from(self.system));
            if let Some(gid) = gid {
                result.insert("gid".into(), Value::from(gid));
            }
        }
        result
    }
}

/// Rejects names that `groupadd` rejects too, so the error comes before any host is touched.
pub(crate) fn validate_name(name: &str) -> Result<(), ModuleError> {
    let valid = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if valid {
        Ok(())
    } else {
        Err(ModuleError::InvalidArgument(format!(
            "invalid name `{name}`: use letters, digits, `_`, `-`, `.` and not a leading `-`"
        )))
    }
}

/// One line of `getent group`: `name:x:gid:members`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Parses one `getent group` line, or returns `None` for the absent marker or a malformed line.
pub fn parse_group_line(line: &str) -> Option<GroupEntry> {
    let fields: Vec<&str> = line.trim_end().split(':').collect();
    if fields.len() < 4 {
        return None;
    }
    Some(GroupEntry {
        name: fields[0].to_string(),
        gid: fields[2].parse().ok()?,
        members: fields[3]
            .split(',')
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect(),
    })
}

fn section<'a>(sections: &'a [(String, String)], name: &str) -> Option<&'a str> {
    sections
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, body)| body.as_str())
}

impl Action for Group {
    fn probe(&self) -> Option<String> {
        let mut script = section_header("group");
        script.push_str(&format!(
            "getent group {} || echo {ABSENT}\n",
            quote(&self.name)
        ));
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, _host: &HostView) -> Result<Plan, ModuleError> {
        let sections = split_sections(&probe.stdout);
        let body = section(&sections, "group").ok_or_else(|| {
            ModuleError::Probe(format!(
                "the group probe printed no `group` section: {}",
                probe.stderr.trim()
            ))
        })?;
        let current = body.lines().find_map(parse_group_line);
        let name = quote(&self.name);

        match (self.present, current) {
            (false, None) => Ok(Plan::unchanged(format!("group `{}` is absent", self.name))),
            (false, Some(entry)) => {
                let force = if self.force { "-f " } else { "" };
                Ok(Plan {
                    changes: vec![Change {
                        summary: format!("remove group `{}` (gid {})", self.name, entry.gid),
                        diff: None,
                    }],
                    apply: Some(format!("set -e\ngroupdel {force}{name}\n")),
                    result: self.result(None),
                    ..Plan::default()
                })
            }
            (true, None) => {
                let mut command = String::from("groupadd");
                if let Some(gid) = self.gid {
                    command.push_str(&format!(" -g {gid}"));
                    if self.non_unique {
                        command.push_str(" -o");
                    }
                }
                if self.system {
                    command.push_str(" -r");
                }
                let gid_text = self
                    .gid
                    .map(|gid| format!(" with gid {gid}"))
                    .unwrap_or_default();
                let mut plan = Plan {
                    changes: vec![Change {
                        summary: format!("create group `{}`{gid_text}", self.name),
                        diff: None,
                    }],
                    apply: Some(format!(
                        "set -e\n{command} {name}\n{}getent group {name}\n",
                        section_header("group")
                    )),
                    result: self.result(self.gid),
                    ..Plan::default()
                };
                plan.predicts.groups.insert(self.name.clone());
                Ok(plan)
            }
            (true, Some(entry)) => match self.gid {
                Some(gid) if gid != entry.gid => {
                    let non_unique = if self.non_unique { " -o" } else { "" };
                    Ok(Plan {
                        changes: vec![Change {
                            summary: format!(
                                "change gid of group `{}` from {} to {gid}",
                                self.name, entry.gid
                            ),
                            diff: None,
                        }],
                        apply: Some(format!("set -e\ngroupmod -g {gid}{non_unique} {name}\n")),
                        result: self.result(Some(gid)),
                        ..Plan::default()
                    })
                }
                _ => Ok(Plan {
                    result: self.result(Some(entry.gid)),
                    ..Plan::unchanged(format!("group `{}` exists (gid {})", self.name, entry.gid))
                }),
            },
        }
    }

    fn finish(&self, plan: &Plan, output: &ExecOutput) -> Result<Map<String, Value>, ModuleError> {
        if output.exit_code != 0 {
            return Err(ModuleError::Failed(format!(
                "changing group `{}` failed with exit status {}: {}",
                self.name,
                output.exit_code,
                output.stderr.trim()
            )));
        }
        let mut result = plan.result.clone();
        let sections = split_sections(&output.stdout);
        if let Some(entry) =
            section(&sections, "group").and_then(|b| b.lines().find_map(parse_group_line))
        {
            result.insert("gid".into(), Value::from(entry.gid));
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Predictions;
    use serde_json::json;

    fn group(args: Value) -> Group {
        Group::from_args(&serde_json::from_value(args).unwrap()).unwrap()
    }

    fn plan(group: &Group, stdout: &str) -> Plan {
        let predicted = Predictions::default();
        let host = HostView {
            check_mode: false,
            facts: &Value::Null,
            predicted: &predicted,
        };
        let probe = ExecOutput {
            stdout: stdout.to_string(),
            ..ExecOutput::default()
        };
        group.plan(&probe, &host).unwrap()
    }

    #[test]
    fn plans_follow_probe() {
        // (arguments, probe output, expected summaries, expected command in the apply script)
        let cases: &[(Value, &str, &[&str], &str)] = &[
            (
                json!({"name": "deploy"}),
                "==> group <==\nvf-absent\n",
                &["create group `deploy`"],
                "groupadd deploy",
            ),
            (
                json!({"name": "deploy", "gid": 1500, "system": true}),
                "==> group <==\nvf-absent\n",
                &["create group `deploy` with gid 1500"],
                "groupadd -g 1500 -r deploy",
            ),
            (
                json!({"name": "deploy"}),
                "==> group <==\ndeploy:x:1001:\n",
                &[],
                "",
            ),
            (
                json!({"name": "deploy", "gid": "1001"}),
                "==> group <==\ndeploy:x:1001:alice,bob\n",
                &[],
                "",
            ),
            (
                json!({"name": "deploy", "gid": 1600, "non_unique": true}),
                "==> group <==\ndeploy:x:1001:\n",
                &["change gid of group `deploy` from 1001 to 1600"],
                "groupmod -g 1600 -o deploy",
            ),
            (
                json!({"name": "deploy", "state": "absent"}),
                "==> group <==\ndeploy:x:1001:\n",
                &["remove group `deploy` (gid 1001)"],
                "groupdel deploy",
            ),
            (
                json!({"name": "deploy", "state": "absent", "force": true}),
                "==> group <==\ndeploy:x:1001:\n",
                &["remove group `deploy` (gid 1001)"],
                "groupdel -f deploy",
            ),
            (
                json!({"name": "deploy", "state": "absent"}),
                "==> group <==\nvf-absent\n",
                &[],
                "",
            ),
        ];
        for (args, stdout, summaries, command) in cases {
            let plan = plan(&group(args.clone()), stdout);
            let actual: Vec<&str> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
            assert_eq!(&actual, summaries, "args {args}");
            if command.is_empty() {
                assert!(plan.apply.is_none(), "args {args}");
                assert!(plan.reason.is_some(), "args {args}");
            } else {
                let apply = plan.apply.unwrap_or_default();
                assert!(apply.contains(command), "args {args}: {apply}");
                assert_eq!(sh_syntax_error(&apply), None, "args {args}");
            }
        }
    }

    #[test]
    fn unchanged_reports_gid() {
        let plan = plan(
            &group(json!({"name": "www-data"})),
            "==> group <==\nwww-data:x:33:\n",
        );
        assert_eq!(
            plan.reason.as_deref(),
            Some("group `www-data` exists (gid 33)")
        );
        assert_eq!(plan.result.get("gid"), Some(&json!(33)));
    }

    #[test]
    fn create_predicts_group() {
        let plan = plan(
            &group(json!({"name": "deploy"})),
            "==> group <==\nvf-absent\n",
        );
        assert!(plan.predicts.groups.contains("deploy"));
    }

    #[test]
    fn finish_reads_assigned_gid() {
        let group = group(json!({"name": "deploy"}));
        let plan = plan(&group, "==> group <==\nvf-absent\n");
        let output = ExecOutput {
            stdout: "==> group <==\ndeploy:x:1002:\n".into(),
            ..ExecOutput::default()
        };
        let result = group.finish(&plan, &output).unwrap();
        assert_eq!(result.get("gid"), Some(&json!(1002)));
        assert_eq!(result.get("state"), Some(&json!("present")));
    }

    #[test]
    fn invalid_arguments_are_rejected() {
        for (args, fragment) in [
            (json!({"name": "a b"}), "invalid name `a b`"),
            (json!({"name": "-x"}), "invalid name `-x`"),
            (json!({"name": "x", "gid": -1}), "argument `gid`"),
            (json!({"name": "x", "state": "gone"}), "argument `state`"),
            (
                json!({"name": "x", "non_unique": true}),
                "argument `non_unique`",
            ),
            (json!({"name": "x", "local": true}), "argument `local`"),
        ] {
            let error = Group::from_args(&serde_json::from_value(args.clone()).unwrap())
                .err()
                .unwrap_or_else(|| panic!("accepted {args}"));
            assert!(error.to_string().contains(fragment), "{args}: {error}");
        }
    }

    #[test]
    fn probe_reads_local_groups() {
        // Reading the `root` group and a missing one changes nothing on this machine.
        for (name, expected) in [("root", Some(0)), ("no-such-group-vf", None)] {
            let probe = group(json!({ "name": name })).probe().unwrap();
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(&probe)
                .output()
                .unwrap();
            let stdout = String::from_utf8(output.stdout).unwrap();
            let sections = split_sections(&stdout);
            let body = section(&sections, "group").unwrap();
            let gid = body
                .lines()
                .find_map(parse_group_line)
                .map(|entry| entry.gid);
            assert_eq!(gid, expected, "group {name}: {stdout}");
        }
    }

    #[test]
    fn probe_is_valid_sh() {
        let probe = group(json!({"name": "deploy$1"})).probe().unwrap();
        assert_eq!(sh_syntax_error(&probe), None);
    }

    pub(crate) fn sh_syntax_error(script: &str) -> Option<String> {
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
