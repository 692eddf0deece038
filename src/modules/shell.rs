//! `shell`: run a command line through `/bin/sh -c` (or `executable`), so that
//! pipes, redirections and variables work. It shares the runner of `command`.

use super::args::opt_str;
use super::command::{resolve_aliases, Program, Run};
use super::{Action, Args, BuildContext, ModuleError, ModuleKind, ModuleSpec, Param, ParamKind};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "shell",
    aliases: &["ansible.builtin.shell", "ansible.legacy.shell"],
    params: &[
        Param::new("_raw_params", ParamKind::Str),
        Param::new("cmd", ParamKind::Str),
        Param::new("chdir", ParamKind::Str),
        Param::new("creates", ParamKind::Str),
        Param::new("removes", ParamKind::Str),
        Param::new("executable", ParamKind::Str),
        Param::new("stdin", ParamKind::Str),
        Param::new("stdin_add_newline", ParamKind::Bool),
        Param::new("strip_empty_ends", ParamKind::Bool),
    ],
    free_form: true,
    kind: ModuleKind::Remote,
    build,
};

fn build(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let args = &resolve_aliases(&SPEC, args);
    let script = opt_str(args, "_raw_params")?
        .filter(|s| !s.trim().is_empty())
        .or(opt_str(args, "cmd")?.filter(|s| !s.trim().is_empty()))
        .ok_or_else(|| {
            ModuleError::InvalidArgument(
                "no command given: write it after `shell:` or set `cmd`".to_string(),
            )
        })?;
    let executable = opt_str(args, "executable")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".to_string());
    Ok(Box::new(Run::from_args(
        args,
        Program::Shell { script, executable },
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::{ExecOutput, HostView, Predictions};
    use serde_json::{json, Value};
    use std::io::Write;
    use std::process::{Command, Stdio};

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

    fn run(value: Value) -> serde_json::Map<String, Value> {
        let context = BuildContext {
            search_paths: &[],
            render_template: &|_| Ok(String::new()),
            facts: &Value::Null,
        };
        let args: Args = serde_json::from_value(value).unwrap();
        let action = build(&args, &context).unwrap();
        let probe = action.probe().map(|s| run_sh(&s)).unwrap_or_default();
        let predicted = Predictions::default();
        let host = HostView {
            check_mode: false,
            facts: &Value::Null,
            predicted: &predicted,
        };
        let plan = action.plan(&probe, &host).unwrap();
        let output = run_sh(plan.apply.as_deref().unwrap());
        action.finish(&plan, &output).unwrap()
    }

    #[test]
    fn shell_runs_pipes_and_variables() {
        let dir = tempfile::tempdir().unwrap();
        let result = run(json!({
            "_raw_params": "v=2; printf 'a\\nb\\n' | wc -l; echo $v > out; cat out >&2",
            "chdir": dir.path().to_str().unwrap(),
        }));
        assert_eq!(result["stdout"].as_str().unwrap().trim(), "2");
        assert_eq!(result["stderr"], json!("2"));
        assert_eq!(
            result["cmd"],
            json!("v=2; printf 'a\\nb\\n' | wc -l; echo $v > out; cat out >&2")
        );
        assert!(dir.path().join("out").exists());
    }

    #[test]
    fn shell_uses_executable() {
        let result = run(json!({"cmd": "echo \"$0\"", "executable": "/bin/sh"}));
        assert_eq!(result["stdout"], json!("/bin/sh"));
    }

    #[test]
    fn shell_exit_status_is_registered() {
        let result = run(json!({"cmd": "echo oops >&2; exit 4"}));
        assert_eq!(result["rc"], json!(4));
        assert_eq!(result["failed"], json!(true));
        assert_eq!(result["stderr_lines"], json!(["oops"]));
    }
}
