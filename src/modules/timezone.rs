//! `timezone`: set the host's time zone.
//!
//! The probe reads the `/etc/localtime` link, `/etc/timezone` and the zone
//! `timedatectl` reports, and checks that the requested zone exists under
//! `/usr/share/zoneinfo`. The link decides the current zone, because timedated
//! reads it only when it starts and keeps reporting the old zone for as long as
//! it runs after someone relinks `/etc/localtime` by hand. The apply step uses
//! `timedatectl set-timezone` when timedated agrees with the link, and otherwise
//! relinks `/etc/localtime` and rewrites `/etc/timezone`, because timedated
//! ignores a request for the zone it believes is already set.

use std::collections::BTreeMap;

use serde_json::{json, Map};

use super::args::req_str;
use super::command::resolve_aliases;
use super::common::{
    atomic_write_script, parse_key_values, quote, section_header, split_sections, FileAttrs,
};
use super::{
    Action, Args, BuildContext, Change, Diff, ExecOutput, HostView, ModuleError, ModuleKind,
    ModuleSpec, Param, ParamKind, Plan,
};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "timezone",
    aliases: &[
        "community.general.timezone",
        "community.general.system.timezone",
    ],
    params: &[
        Param::new("name", ParamKind::Str),
        Param::new("hwclock", ParamKind::Str)
            .aliases(&["rtc"])
            .choices(&["local", "UTC"]),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

const ZONEINFO: &str = "/usr/share/zoneinfo";

fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let args = &resolve_aliases(&SPEC, args);
    if args.get("hwclock").is_some_and(|value| !value.is_null()) {
        return Err(ModuleError::InvalidArgument(
            "argument `hwclock` is not supported: vpsforge sets only the time zone, so remove `hwclock` (VPS hosts usually have no hardware clock to set)".to_string(),
        ));
    }
    let name = req_str(args, "name")?.trim().to_string();
    let valid = !name.is_empty()
        && !name.starts_with('/')
        && !name
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-/".contains(c));
    if !valid {
        return Err(ModuleError::InvalidArgument(format!(
            "invalid time zone `{name}` in argument `name`: use a name from the tz database such as `Etc/UTC` or `Europe/Berlin`"
        )));
    }
    Ok(Box::new(Timezone { name }))
}

#[derive(Debug)]
struct Timezone {
    name: String,
}

impl Timezone {
    fn zone_path(&self) -> String {
        format!("{ZONEINFO}/{}", self.name)
    }
}

impl Action for Timezone {
    fn probe(&self) -> Option<String> {
        let mut script = String::new();
        script.push_str(&section_header("current"));
        script.push_str(
            "if vf_zone=$(timedatectl show -p Timezone --value 2>/dev/null </dev/null) && [ -n \"$vf_zone\" ]; then\n\
             \techo timedatectl=yes; echo \"timezone=$vf_zone\"\n\
             else\n\
             \techo timedatectl=no\n\
             fi\n\
             if [ -L /etc/localtime ]; then echo \"localtime=$(readlink /etc/localtime)\"; fi\n\
             if [ -f /etc/timezone ]; then echo \"etc_timezone=$(head -n 1 /etc/timezone)\"; fi\n",
        );
        script.push_str(&section_header("zone"));
        script.push_str(&format!(
            "if [ -f {} ]; then echo exists; else echo missing; fi\n",
            quote(&self.zone_path())
        ));
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let sections: BTreeMap<String, String> =
            split_sections(&probe.stdout).into_iter().collect();
        let (Some(current), Some(zone)) = (sections.get("current"), sections.get("zone")) else {
            return Err(ModuleError::Probe(format!(
                "the time zone probe printed no result (exit status {}): {}",
                probe.exit_code,
                probe.stderr.trim()
            )));
        };
        let values = parse_key_values(current);
        let before = current_zone(&values);
        let timedated_zone = values.get("timezone").map(|zone| zone.trim());
        let use_timedatectl = values.get("timedatectl").map(String::as_str) == Some("yes")
            && (linked_zone(&values).is_none() || timedated_zone == before.as_deref());

        let mut summary_note = "";
        if zone.trim() != "exists" {
            if host.check_mode && host.predicted.packages.contains("tzdata") {
                summary_note =
                    ", assuming `tzdata`, which an earlier task would install, provides it";
            } else {
                return Err(ModuleError::Failed(format!(
                    "unknown time zone `{}`: `{}` does not exist on the host, so check the name or install `tzdata`",
                    self.name,
                    self.zone_path()
                )));
            }
        }

        let mut result = Map::new();
        result.insert("name".into(), json!(self.name));
        if before.as_deref() == Some(self.name.as_str()) {
            let mut plan = Plan::unchanged(format!("the time zone is `{}`", self.name));
            plan.result = result;
            return Ok(plan);
        }

        let shown_before = before.clone().unwrap_or_else(|| "unknown".to_string());
        let apply = if use_timedatectl {
            format!(
                "set -e\ntimedatectl set-timezone {} </dev/null\n",
                quote(&self.name)
            )
        } else {
            let zone_path = quote(&self.zone_path());
            // Link through a temporary name and rename it, so `/etc/localtime` never goes missing.
            let mut script = format!(
                "set -e\nln -sfn {zone_path} /etc/.localtime.vpsforge\nmv -f -T /etc/.localtime.vpsforge /etc/localtime\n"
            );
            script.push_str(&format!(
                "(\n{})\n",
                atomic_write_script(
                    "/etc/timezone",
                    format!("{}\n", self.name).as_bytes(),
                    &FileAttrs::default(),
                    None,
                    false
                )
            ));
            script
        };
        Ok(Plan {
            changes: vec![Change {
                summary: format!(
                    "set the time zone from `{shown_before}` to `{}`{summary_note}",
                    self.name
                ),
                diff: Some(Diff {
                    header: "timezone".to_string(),
                    before: format!("{shown_before}\n"),
                    after: format!("{}\n", self.name),
                }),
            }],
            reason: None,
            apply: Some(apply),
            runs_in_check_mode: false,
            skipped_in_check_mode: false,
            result,
            predicts: Default::default(),
        })
    }
}

/// Returns the zone the probe found: the `/etc/localtime` link target below
/// `zoneinfo/`, else the output of timedatectl, else the first line of `/etc/timezone`.
fn current_zone(values: &BTreeMap<String, String>) -> Option<String> {
    if let Some(zone) = linked_zone(values) {
        return Some(zone);
    }
    if let Some(zone) = values.get("timezone").filter(|z| !z.trim().is_empty()) {
        return Some(zone.trim().to_string());
    }
    values
        .get("etc_timezone")
        .map(|zone| zone.trim().to_string())
        .filter(|zone| !zone.is_empty())
}

/// Returns the zone that the `/etc/localtime` link points at, below `zoneinfo/`.
fn linked_zone(values: &BTreeMap<String, String>) -> Option<String> {
    let target = values.get("localtime")?;
    let (_, zone) = target.trim().split_once("zoneinfo/")?;
    (!zone.is_empty()).then(|| zone.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Predictions;
    use serde_json::Value;
    use std::process::Command;

    fn make(value: Value) -> Result<Box<dyn Action>, ModuleError> {
        let context = BuildContext {
            search_paths: &[],
            render_template: &|_| Ok(String::new()),
            facts: &Value::Null,
        };
        build(&serde_json::from_value(value).unwrap(), &context)
    }

    fn plan_with(
        name: &str,
        stdout: &str,
        check_mode: bool,
        predicted: &Predictions,
    ) -> Result<Plan, ModuleError> {
        let action = make(json!({ "name": name })).unwrap_or_else(|e| panic!("{e}"));
        let probe = ExecOutput {
            stdout: stdout.to_string(),
            ..ExecOutput::default()
        };
        let host = HostView {
            check_mode,
            facts: &Value::Null,
            predicted,
        };
        action.plan(&probe, &host)
    }

    fn plan_of(name: &str, stdout: &str) -> Plan {
        plan_with(name, stdout, false, &Predictions::default()).unwrap()
    }

    const UTC_TIMEDATECTL: &str =
        "==> current <==\ntimedatectl=yes\ntimezone=Etc/UTC\n==> zone <==\nexists\n";
    const UTC_LINK_ONLY: &str = "==> current <==\ntimedatectl=no\nlocaltime=/usr/share/zoneinfo/Etc/UTC\netc_timezone=Etc/UTC\n==> zone <==\nexists\n";

    #[test]
    fn same_zone_is_unchanged() {
        let plan = plan_of("Etc/UTC", UTC_TIMEDATECTL);
        assert!(!plan.changed());
        assert_eq!(plan.reason.as_deref(), Some("the time zone is `Etc/UTC`"));
        assert!(!plan_of("Etc/UTC", UTC_LINK_ONLY).changed());
    }

    #[test]
    fn new_zone_uses_timedatectl() {
        let plan = plan_of("Asia/Shanghai", UTC_TIMEDATECTL);
        assert_eq!(
            plan.changes[0].summary,
            "set the time zone from `Etc/UTC` to `Asia/Shanghai`"
        );
        assert_eq!(
            plan.changes[0].diff,
            Some(Diff {
                header: "timezone".into(),
                before: "Etc/UTC\n".into(),
                after: "Asia/Shanghai\n".into(),
            })
        );
        assert_eq!(
            plan.apply.as_deref(),
            Some("set -e\ntimedatectl set-timezone Asia/Shanghai </dev/null\n")
        );
    }

    #[test]
    fn without_timedatectl_relinks_localtime() {
        let plan = plan_of("Asia/Shanghai", UTC_LINK_ONLY);
        let script = plan.apply.unwrap();
        assert!(
            script.contains("ln -sfn /usr/share/zoneinfo/Asia/Shanghai /etc/.localtime.vpsforge"),
            "{script}"
        );
        assert!(script.contains("vf_target=/etc/timezone"), "{script}");
        let status = Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn link_wins_over_stale_timedated() {
        // timedated still reports the zone it read at start after a manual relink.
        let probe = "==> current <==\ntimedatectl=yes\ntimezone=Etc/UTC\nlocaltime=/usr/share/zoneinfo/Asia/Tokyo\n==> zone <==\nexists\n";
        let plan = plan_of("Etc/UTC", probe);
        assert_eq!(
            plan.changes[0].summary,
            "set the time zone from `Asia/Tokyo` to `Etc/UTC`"
        );
        let script = plan.apply.unwrap();
        assert!(
            script.contains("ln -sfn /usr/share/zoneinfo/Etc/UTC /etc/.localtime.vpsforge"),
            "{script}"
        );
    }

    #[test]
    fn agreeing_timedated_is_used() {
        let probe = "==> current <==\ntimedatectl=yes\ntimezone=Etc/UTC\nlocaltime=/usr/share/zoneinfo/Etc/UTC\n==> zone <==\nexists\n";
        let plan = plan_of("Asia/Tokyo", probe);
        assert_eq!(
            plan.apply.as_deref(),
            Some("set -e\ntimedatectl set-timezone Asia/Tokyo </dev/null\n")
        );
    }

    #[test]
    fn relative_link_is_read() {
        let probe = "==> current <==\ntimedatectl=no\nlocaltime=../usr/share/zoneinfo/Europe/Berlin\n==> zone <==\nexists\n";
        assert!(!plan_of("Europe/Berlin", probe).changed());
    }

    #[test]
    fn missing_zone_fails_unless_tzdata_predicted() {
        let probe = "==> current <==\ntimedatectl=yes\ntimezone=Etc/UTC\n==> zone <==\nmissing\n";
        let error = plan_with("Mars/Olympus", probe, false, &Predictions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown time zone `Mars/Olympus`: `/usr/share/zoneinfo/Mars/Olympus` does not exist on the host, so check the name or install `tzdata`"
        );
        let mut predicted = Predictions::default();
        predicted.packages.insert("tzdata".into());
        let plan = plan_with("Asia/Tokyo", probe, true, &predicted).unwrap();
        assert!(plan.changes[0]
            .summary
            .ends_with("assuming `tzdata`, which an earlier task would install, provides it"));
    }

    #[test]
    fn build_rejects_bad_arguments() {
        for (value, fragment) in [
            (
                json!({"name": "Etc/UTC", "hwclock": "UTC"}),
                "`hwclock` is not supported",
            ),
            (json!({"name": "../../etc/passwd"}), "invalid time zone"),
            (json!({"name": "/etc/passwd"}), "invalid time zone"),
            (json!({"name": "Europe/Ber lin"}), "invalid time zone"),
            (json!({}), "missing required argument `name`"),
        ] {
            let Err(error) = make(value.clone()) else {
                panic!("{value}: accepted");
            };
            assert!(
                error.to_string().contains(fragment),
                "{value}: got `{error}`"
            );
        }
    }

    #[test]
    fn probe_reads_this_host() {
        let action = make(json!({"name": "Etc/UTC"})).unwrap_or_else(|e| panic!("{e}"));
        let script = action.probe().unwrap();
        let output = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let sections: BTreeMap<String, String> = split_sections(&stdout).into_iter().collect();
        assert!(sections.contains_key("current"), "{stdout}");
        let zone = sections["zone"].trim();
        let expected = if std::path::Path::new("/usr/share/zoneinfo/Etc/UTC").exists() {
            "exists"
        } else {
            "missing"
        };
        assert_eq!(zone, expected);
    }
}
