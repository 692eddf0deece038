//! `stat`: reads the state of a path and registers it with Ansible's keys.

use serde_json::{Map, Value};

use super::args::{bool_or, choice, req_str};
use super::common::{parse_path_state, quote, PathKind, PathProbe, PathState};
use super::{
    Action, Args, BuildContext, ExecOutput, HostView, ModuleError, ModuleKind, ModuleSpec, Param,
    ParamKind, Plan,
};

const ALGORITHMS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "stat",
    aliases: &["ansible.builtin.stat", "ansible.legacy.stat"],
    params: &[
        Param::new("path", ParamKind::Str)
            .required()
            .aliases(&["dest", "name"]),
        Param::new("follow", ParamKind::Bool),
        Param::new("get_checksum", ParamKind::Bool),
        Param::new("checksum_algorithm", ParamKind::Str)
            .aliases(&["checksum", "checksum_algo"])
            .choices(ALGORITHMS),
        // These are accepted so that Ansible playbooks load. `get_mime` and `get_attributes`
        // only add keys that vpsforge does not report.
        Param::new("get_mime", ParamKind::Bool).aliases(&["mime", "mime_type", "mime-type"]),
        Param::new("get_attributes", ParamKind::Bool).aliases(&["attr", "attributes"]),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

struct Stat {
    path: String,
    follow: bool,
    /// The checksum command's algorithm, or `None` with `get_checksum: false`.
    algorithm: Option<String>,
}

fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let path = req_str(args, "path")?;
    let follow = bool_or(args, "follow", false)?;
    let algorithm = choice(args, "checksum_algorithm", ALGORITHMS, "sha1")?;
    let algorithm = bool_or(args, "get_checksum", true)?.then_some(algorithm);
    Ok(Box::new(Stat {
        path,
        follow,
        algorithm,
    }))
}

impl Action for Stat {
    fn probe(&self) -> Option<String> {
        let probe = PathProbe {
            follow: self.follow,
            checksums: false,
            content_limit: 0,
        };
        let mut script = format!("vf_path={}\n", quote(&self.path));
        script.push_str(&probe.script("vf_path"));
        if let Some(algorithm) = &self.algorithm {
            let link_guard = if self.follow {
                ""
            } else {
                " && [ ! -L \"$vf_path\" ]"
            };
            script.push_str(&format!(
                "if [ -f \"$vf_path\" ]{link_guard} && [ -r \"$vf_path\" ]; then printf 'checksum=%s\\n' \"$({algorithm}sum < \"$vf_path\" | cut -d' ' -f1)\"; fi\n"
            ));
        }
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, _host: &HostView) -> Result<Plan, ModuleError> {
        let state = parse_path_state(&probe.stdout)?;
        let checksum = super::common::parse_key_values(&probe.stdout)
            .get("checksum")
            .cloned();
        let mut result = Map::new();
        result.insert(
            "stat".into(),
            Value::Object(stat_fields(&self.path, &state, checksum)),
        );
        let mut plan = Plan::unchanged(if state.exists() {
            format!("`{}` exists", self.path)
        } else {
            format!("`{}` does not exist", self.path)
        });
        plan.result = result;
        Ok(plan)
    }
}

/// Builds Ansible's `stat` dictionary. A missing path has only `exists: false`.
fn stat_fields(path: &str, state: &PathState, checksum: Option<String>) -> Map<String, Value> {
    let mut stat = Map::new();
    stat.insert("exists".into(), Value::Bool(state.exists()));
    if !state.exists() {
        return stat;
    }

    let mode = state.mode;
    let other = match &state.kind {
        PathKind::Other(name) => name.as_str(),
        _ => "",
    };
    let (device, inode) = state.inode.split_once(':').unwrap_or(("", ""));
    stat.insert("path".into(), Value::from(path));
    stat.insert("mode".into(), Value::from(state.mode_string()));
    stat.insert(
        "isdir".into(),
        Value::Bool(state.kind == PathKind::Directory),
    );
    stat.insert("isreg".into(), Value::Bool(state.kind == PathKind::File));
    stat.insert("islnk".into(), Value::Bool(state.kind == PathKind::Link));
    stat.insert(
        "ischr".into(),
        Value::Bool(other == "character special file"),
    );
    stat.insert("isblk".into(), Value::Bool(other == "block special file"));
    stat.insert("isfifo".into(), Value::Bool(other == "fifo"));
    stat.insert("issock".into(), Value::Bool(other == "socket"));
    stat.insert("uid".into(), Value::from(state.uid));
    stat.insert("gid".into(), Value::from(state.gid));
    stat.insert("pw_name".into(), Value::from(state.owner.clone()));
    stat.insert("gr_name".into(), Value::from(state.group.clone()));
    stat.insert("size".into(), Value::from(state.size));
    stat.insert("mtime".into(), Value::from(state.mtime as f64));
    if let Ok(inode) = inode.parse::<u64>() {
        stat.insert("inode".into(), Value::from(inode));
    }
    if let Ok(device) = device.parse::<u64>() {
        stat.insert("dev".into(), Value::from(device));
    }
    for (key, bit) in [
        ("rusr", 0o400),
        ("wusr", 0o200),
        ("xusr", 0o100),
        ("rgrp", 0o040),
        ("wgrp", 0o020),
        ("xgrp", 0o010),
        ("roth", 0o004),
        ("woth", 0o002),
        ("xoth", 0o001),
        ("isuid", 0o4000),
        ("isgid", 0o2000),
    ] {
        stat.insert(key.into(), Value::Bool(mode & bit != 0));
    }
    if state.kind == PathKind::Link {
        stat.insert(
            "lnk_source".into(),
            Value::from(state.real_path.clone().unwrap_or_default()),
        );
        stat.insert(
            "lnk_target".into(),
            Value::from(state.link_target.clone().unwrap_or_default()),
        );
    }
    if let Some(checksum) = checksum {
        stat.insert("checksum".into(), Value::from(checksum));
    }
    stat
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Predictions;
    use serde_json::json;

    fn build_stat(args: Value) -> Result<Box<dyn Action>, ModuleError> {
        let args: Args = serde_json::from_value(args).unwrap();
        let render = |_: &std::path::Path| Ok(String::new());
        let context = BuildContext {
            search_paths: &[],
            render_template: &render,
            facts: &Value::Null,
        };
        build(&args, &context)
    }

    fn plan_for(action: &dyn Action, stdout: &str) -> Plan {
        let predicted = Predictions::default();
        let host = HostView {
            check_mode: false,
            facts: &Value::Null,
            predicted: &predicted,
        };
        let output = ExecOutput {
            exit_code: 0,
            stdout: stdout.to_string(),
            stderr: String::new(),
        };
        action.plan(&output, &host).unwrap()
    }

    #[test]
    fn stat_of_regular_file() {
        let action = build_stat(json!({"path": "/etc/hosts"})).unwrap();
        let probe = "kind=regular file\nuid=0\ngid=0\nowner=root\ngroup=root\nmode=644\nsize=186\nmtime=1733300000\ninode=2049:131090\nchecksum=6e4bd4d1e5e7a3c3f3e3bb1a1e1e9f54d0c1a7b2\n";
        let plan = plan_for(action.as_ref(), probe);
        assert!(!plan.changed());
        let stat = &plan.result["stat"];
        assert_eq!(stat["exists"], json!(true));
        assert_eq!(stat["isreg"], json!(true));
        assert_eq!(stat["isdir"], json!(false));
        assert_eq!(stat["mode"], json!("0644"));
        assert_eq!(stat["pw_name"], json!("root"));
        assert_eq!(stat["size"], json!(186));
        assert_eq!(stat["inode"], json!(131090));
        assert_eq!(
            stat["checksum"],
            json!("6e4bd4d1e5e7a3c3f3e3bb1a1e1e9f54d0c1a7b2")
        );
    }

    #[test]
    fn stat_of_missing_path() {
        let action = build_stat(json!({"path": "/nope"})).unwrap();
        let plan = plan_for(action.as_ref(), "kind=absent\n");
        assert_eq!(plan.result["stat"], json!({"exists": false}));
        assert_eq!(plan.reason.as_deref(), Some("`/nope` does not exist"));
    }

    #[test]
    fn stat_rejects_unknown_algorithm() {
        let error = build_stat(json!({"path": "/x", "checksum_algorithm": "crc32"}))
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("`checksum_algorithm`"),
            "{error}"
        );
    }

    #[test]
    fn stat_probe_runs_against_temp_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("conf");
        std::fs::write(&file, "hello\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();

        for (path, follow, isreg, islnk) in [
            (&file, false, true, false),
            (&link, false, false, true),
            (&link, true, true, false),
        ] {
            let action = build_stat(json!({
                "path": path.to_str().unwrap(),
                "follow": follow,
                "checksum_algorithm": "sha256",
            }))
            .unwrap();
            let output = run_sh(&action.probe().unwrap());
            let plan = plan_for(action.as_ref(), &output);
            let stat = &plan.result["stat"];
            assert_eq!(stat["isreg"], json!(isreg), "{path:?} follow {follow}");
            assert_eq!(stat["islnk"], json!(islnk), "{path:?} follow {follow}");
            if isreg {
                assert_eq!(
                    stat["checksum"],
                    json!(crate::modules::common::sha256_hex(b"hello\n"))
                );
            } else {
                assert_eq!(stat["lnk_target"], json!(file.to_str().unwrap()));
            }
        }
    }

    fn run_sh(script: &str) -> String {
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
        String::from_utf8(output.stdout).unwrap()
    }
}
