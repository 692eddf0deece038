//! `package`: the generic package module, which hands the task to `apt`.
//!
//! vpsforge manages Debian and Ubuntu hosts, so apt is the only backend. The
//! gathered fact `ansible_pkg_mgr` (or `pkg_mgr`) is checked when present. With
//! no facts, apt is assumed, and the error for a missing dpkg mentions that.

use serde_json::Value;

use super::apt::Apt;
use super::args::choice;
use super::{Action, Args, BuildContext, ModuleError, ModuleKind, ModuleSpec, Param, ParamKind};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "package",
    aliases: &["ansible.builtin.package", "ansible.legacy.package"],
    params: &[
        Param::new("name", ParamKind::List).required(),
        Param::new("state", ParamKind::Str).required().choices(&[
            "present",
            "installed",
            "absent",
            "removed",
            "latest",
        ]),
        Param::new("use", ParamKind::Str),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build,
};

fn build(args: &Args, context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let requested = choice(args, "use", &["auto", "apt"], "auto")?;
    if requested == "auto" {
        if let Some(manager) = package_manager(context.facts) {
            if manager != "apt" {
                return Err(ModuleError::InvalidArgument(format!(
                    "the host's package manager is `{manager}`, but vpsforge's `package` module supports only `apt`"
                )));
            }
        }
    }

    let mut apt_args = Args::new();
    for name in ["name", "state"] {
        if let Some(value) = args.get(name) {
            apt_args.insert(name.to_string(), value.clone());
        }
    }
    let mut apt = Apt::from_args(&apt_args)?;
    apt.via_package = true;
    Ok(Box::new(apt))
}

/// Returns the package manager the gathered facts name, if any.
fn package_manager(facts: &Value) -> Option<&str> {
    facts
        .get("ansible_pkg_mgr")
        .or_else(|| facts.get("pkg_mgr"))
        .or_else(|| facts.get("ansible_facts").and_then(|f| f.get("pkg_mgr")))
        .and_then(Value::as_str)
        .filter(|manager| !manager.is_empty() && *manager != "unknown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::{ExecOutput, HostView, Predictions};
    use serde_json::json;

    fn build_with(value: Value, facts: &Value) -> Result<Box<dyn Action>, ModuleError> {
        let context = BuildContext {
            search_paths: &[],
            render_template: &|_| Ok(String::new()),
            facts,
        };
        build(&serde_json::from_value(value).unwrap(), &context)
    }

    #[test]
    fn package_plans_like_apt() {
        let facts = json!({"ansible_pkg_mgr": "apt"});
        let action = build_with(json!({"name": "nginx", "state": "present"}), &facts)
            .unwrap_or_else(|e| panic!("{e}"));
        let probe = ExecOutput {
            stdout: "==> dpkg <==\n==> policy <==\nnginx:\n  Installed: (none)\n  Candidate: 1.22.1-9\n==> cache <==\nmtime=1\nnow=2\n".to_string(),
            ..ExecOutput::default()
        };
        let predicted = Predictions::default();
        let host = HostView {
            check_mode: true,
            facts: &facts,
            predicted: &predicted,
        };
        let plan = action.plan(&probe, &host).unwrap();
        assert_eq!(plan.changes[0].summary, "install `nginx` (1.22.1-9)");
        assert!(plan.predicts.packages.contains("nginx"));
    }

    #[test]
    fn package_rejects_other_managers() {
        let facts = json!({"ansible_facts": {"pkg_mgr": "dnf"}});
        let Err(error) = build_with(json!({"name": "nginx", "state": "present"}), &facts) else {
            panic!("dnf accepted");
        };
        assert_eq!(
            error.to_string(),
            "the host's package manager is `dnf`, but vpsforge's `package` module supports only `apt`"
        );

        let Err(error) = build_with(
            json!({"name": "nginx", "state": "present", "use": "yum"}),
            &Value::Null,
        ) else {
            panic!("use: yum accepted");
        };
        assert!(error.to_string().contains("argument `use`"), "{error}");
    }

    #[test]
    fn package_without_facts_assumes_apt() {
        let action = build_with(json!({"name": "nginx", "state": "absent"}), &Value::Null)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(action.probe().unwrap().contains("dpkg-query"));
    }
}
