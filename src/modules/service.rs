//! `service` and `systemd` (`systemd_service`): start, stop, enable and mask systemd units.
//!
//! One `systemctl show` reads the unit's load, active and unit file state. The plan
//! runs `daemon-reload` first, then masking, enabling and the state change, in
//! the order Ansible's `systemd_service` uses.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::args::{bool_or, choice, opt_bool, opt_int, opt_str};
use super::command::resolve_aliases;
use super::common::{parse_key_values, quote, section_header, split_sections};
use super::{
    Action, Args, BuildContext, Change, ExecOutput, HostView, ModuleError, ModuleKind, ModuleSpec,
    Param, ParamKind, Plan,
};

const STATES: &[&str] = &["started", "stopped", "restarted", "reloaded"];

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "service",
    aliases: &["ansible.builtin.service", "ansible.legacy.service"],
    params: &[
        Param::new("name", ParamKind::Str).required(),
        Param::new("state", ParamKind::Str).choices(STATES),
        Param::new("enabled", ParamKind::Bool),
        Param::new("sleep", ParamKind::Int),
        Param::new("pattern", ParamKind::Str),
        Param::new("runlevel", ParamKind::Str),
        Param::new("arguments", ParamKind::Str).aliases(&["args"]),
        Param::new("use", ParamKind::Str),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build: build_service,
};

pub static SYSTEMD_SPEC: ModuleSpec = ModuleSpec {
    name: "systemd",
    aliases: &[
        "systemd_service",
        "ansible.builtin.systemd",
        "ansible.builtin.systemd_service",
        "ansible.legacy.systemd",
        "ansible.legacy.systemd_service",
    ],
    params: &[
        Param::new("name", ParamKind::Str).aliases(&["service", "unit"]),
        Param::new("state", ParamKind::Str).choices(STATES),
        Param::new("enabled", ParamKind::Bool),
        Param::new("force", ParamKind::Bool),
        Param::new("masked", ParamKind::Bool),
        Param::new("daemon_reload", ParamKind::Bool).aliases(&["daemon-reload"]),
        Param::new("daemon_reexec", ParamKind::Bool).aliases(&["daemon-reexec"]),
        Param::new("scope", ParamKind::Str).choices(&["system", "user", "global"]),
        Param::new("no_block", ParamKind::Bool),
    ],
    free_form: false,
    kind: ModuleKind::Remote,
    build: build_systemd,
};

/// Unit suffixes that `systemctl` accepts. A name without one is a `.service`.
const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".timer",
    ".target",
    ".mount",
    ".automount",
    ".path",
    ".slice",
    ".scope",
    ".swap",
    ".device",
];

/// The properties the probe reads and the result registers under `status`.
const PROPERTIES: &str =
    "Id,LoadState,ActiveState,SubState,UnitFileState,FragmentPath,NeedDaemonReload";

fn build_service(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let args = &resolve_aliases(&SPEC, args);
    if opt_str(args, "pattern")?.is_some() {
        return Err(ModuleError::InvalidArgument(
            "argument `pattern` is not supported: vpsforge manages systemd units, whose state `systemctl` reports".to_string(),
        ));
    }
    if opt_str(args, "arguments")?.is_some_and(|a| !a.trim().is_empty()) {
        return Err(ModuleError::InvalidArgument(
            "argument `arguments` is not supported: systemd units take no start arguments, so set them in the unit file".to_string(),
        ));
    }
    // Every host vpsforge manages runs systemd, so `use` can only select it.
    choice(args, "use", &["auto", "systemd"], "auto")?;
    // `runlevel` applies to OpenRC only, so it has no effect on systemd hosts, as in Ansible.
    opt_str(args, "runlevel")?;

    let sleep = opt_int(args, "sleep")?;
    if sleep.is_some_and(|s| s < 0) {
        return Err(ModuleError::InvalidArgument(
            "argument `sleep` must be zero or a positive number of seconds".to_string(),
        ));
    }
    let mut service = Service::from_args(args)?;
    service.sleep = sleep.filter(|s| *s > 0);
    if service.unit.is_none() {
        return Err(ModuleError::InvalidArgument(
            "missing required argument `name`".to_string(),
        ));
    }
    Ok(Box::new(service))
}

fn build_systemd(args: &Args, _context: &BuildContext) -> Result<Box<dyn Action>, ModuleError> {
    let args = &resolve_aliases(&SYSTEMD_SPEC, args);
    let scope = choice(args, "scope", &["system", "user", "global"], "system")?;
    if scope != "system" {
        return Err(ModuleError::InvalidArgument(format!(
            "`scope: {scope}` is not supported: vpsforge manages system units only, so drop `scope` or set it to `system`"
        )));
    }
    let mut service = Service::from_args(args)?;
    service.masked = opt_bool(args, "masked")?;
    service.daemon_reload = bool_or(args, "daemon_reload", false)?;
    service.daemon_reexec = bool_or(args, "daemon_reexec", false)?;
    service.force = bool_or(args, "force", false)?;
    service.no_block = bool_or(args, "no_block", false)?;

    let has_unit_work =
        service.state.is_some() || service.enabled.is_some() || service.masked.is_some();
    if has_unit_work && service.unit.is_none() {
        return Err(ModuleError::InvalidArgument(
            "argument `name` is missing: name the unit to change".to_string(),
        ));
    }
    if !has_unit_work && !service.daemon_reload && !service.daemon_reexec {
        return Err(ModuleError::InvalidArgument(
            "nothing to do: set at least one of `state`, `enabled`, `masked`, `daemon_reload` or `daemon_reexec`".to_string(),
        ));
    }
    Ok(Box::new(service))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Stopped => "stopped",
            State::Restarted => "restarted",
            State::Reloaded => "reloaded",
        }
    }
}

#[derive(Debug, Default)]
struct Service {
    /// The unit as `systemctl` names it, with `.service` added when no suffix was given.
    unit: Option<String>,
    state: Option<State>,
    enabled: Option<bool>,
    masked: Option<bool>,
    daemon_reload: bool,
    daemon_reexec: bool,
    force: bool,
    no_block: bool,
    /// Seconds between stop and start for `restarted`, from `service`'s `sleep`.
    sleep: Option<i64>,
}

impl Service {
    fn from_args(args: &Args) -> Result<Service, ModuleError> {
        let unit = opt_str(args, "name")?
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .map(|name| {
                if UNIT_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)) {
                    name
                } else {
                    format!("{name}.service")
                }
            });
        let state = match opt_str(args, "state")? {
            None => None,
            Some(_) => Some(match choice(args, "state", STATES, "started")?.as_str() {
                "started" => State::Started,
                "stopped" => State::Stopped,
                "restarted" => State::Restarted,
                _ => State::Reloaded,
            }),
        };
        Ok(Service {
            unit,
            state,
            enabled: opt_bool(args, "enabled")?,
            ..Service::default()
        })
    }

    fn systemctl(&self, verb: &str, unit: &str) -> String {
        let mut line = String::from("systemctl");
        if self.force && matches!(verb, "enable" | "disable" | "mask" | "unmask") {
            line.push_str(" --force");
        }
        if self.no_block && matches!(verb, "start" | "stop" | "restart" | "reload") {
            line.push_str(" --no-block");
        }
        format!("{line} {verb} -- {} </dev/null\n", quote(unit))
    }
}

/// The unit's properties as `systemctl show` prints them.
#[derive(Debug, Default)]
struct UnitStatus {
    properties: BTreeMap<String, String>,
}

impl UnitStatus {
    fn get(&self, name: &str) -> &str {
        self.properties.get(name).map_or("", |v| v.trim())
    }

    fn exists(&self) -> bool {
        !matches!(self.get("LoadState"), "not-found" | "")
    }

    fn is_running(&self) -> bool {
        matches!(self.get("ActiveState"), "active" | "activating")
    }

    fn is_stoppable(&self) -> bool {
        self.is_running() || self.get("ActiveState") == "deactivating"
    }

    fn is_masked(&self) -> bool {
        self.get("LoadState") == "masked"
            || matches!(self.get("UnitFileState"), "masked" | "masked-runtime")
    }

    /// Whether the unit counts as enabled the way Ansible's `systemd_service` counts it:
    /// `systemctl is-enabled` succeeds, except for `indirect` and `alias`.
    fn is_enabled(&self) -> bool {
        matches!(
            self.get("UnitFileState"),
            "enabled" | "enabled-runtime" | "static" | "generated" | "transient"
        )
    }
}

impl Action for Service {
    fn probe(&self) -> Option<String> {
        let mut script = String::new();
        script.push_str("if ! command -v systemctl >/dev/null 2>&1; then\n");
        script.push_str(&section_header("no-systemd"));
        script.push_str("exit 0\nfi\n");
        if let Some(unit) = &self.unit {
            script.push_str(&section_header("show"));
            script.push_str(&format!(
                "systemctl show -p {PROPERTIES} -- {} </dev/null 2>&1 || true\n",
                quote(unit)
            ));
        }
        Some(script)
    }

    fn plan(&self, probe: &ExecOutput, host: &HostView) -> Result<Plan, ModuleError> {
        let sections: BTreeMap<String, String> =
            split_sections(&probe.stdout).into_iter().collect();
        if sections.contains_key("no-systemd") {
            return Err(ModuleError::Failed(
                "`systemctl` was not found on the host: vpsforge manages services through systemd only".to_string(),
            ));
        }

        let mut steps = Steps::default();
        if self.daemon_reexec {
            steps.run(
                "re-execute the systemd manager",
                "systemctl daemon-reexec </dev/null\n",
            );
        }

        let Some(unit) = &self.unit else {
            if self.daemon_reload {
                steps.run(
                    "reload the systemd manager configuration",
                    "systemctl daemon-reload </dev/null\n",
                );
            }
            let apply = (!steps.changes.is_empty()).then(|| steps.script.clone());
            return Ok(Plan {
                changes: steps.changes,
                apply,
                ..Plan::default()
            });
        };

        let body = sections.get("show").ok_or_else(|| {
            ModuleError::Probe(format!(
                "the service probe printed no result (exit status {}): {}",
                probe.exit_code,
                probe.stderr.trim()
            ))
        })?;
        let status = UnitStatus {
            properties: parse_key_values(body),
        };
        if !status.properties.contains_key("LoadState") {
            return Err(ModuleError::Probe(format!(
                "`systemctl show` failed for `{unit}`: {}",
                body.trim()
            )));
        }

        // A reload requested with the task may load a unit file that an earlier task wrote.
        let reload_needed =
            self.daemon_reload && (status.get("NeedDaemonReload") == "yes" || !status.exists());
        if reload_needed {
            steps.run(
                "reload the systemd manager configuration",
                "systemctl daemon-reload </dev/null\n",
            );
        }

        let mut assumed = String::new();
        let needs_unit = self.state.is_some() || self.enabled.is_some();
        if !status.exists() && needs_unit && !reload_needed {
            match self.predicted_source(unit, host) {
                Some(source) => assumed = format!(", assuming {source} provides it"),
                None => {
                    return Err(ModuleError::Failed(format!(
                        "could not find the requested service `{unit}`: install the package that provides it first, or check the name"
                    )))
                }
            }
        }

        let result_enabled = self.plan_unit_file(unit, &status, &assumed, &mut steps);
        if let Some(state) = self.state {
            self.plan_state(state, unit, &status, &assumed, &mut steps);
        }

        let mut result = Map::new();
        result.insert("name".into(), json!(unit));
        if let Some(state) = self.state {
            result.insert("state".into(), json!(state.as_str()));
        }
        if let Some(enabled) = result_enabled {
            result.insert("enabled".into(), json!(enabled));
        }
        let properties: Map<String, Value> = status
            .properties
            .iter()
            .map(|(key, value)| (key.clone(), json!(value)))
            .collect();
        result.insert("status".into(), Value::Object(properties));

        if steps.changes.is_empty() {
            let mut plan = Plan::unchanged(steps.reasons.join(", "));
            plan.result = result;
            return Ok(plan);
        }
        Ok(Plan {
            changes: steps.changes,
            reason: None,
            apply: Some(steps.script),
            runs_in_check_mode: false,
            skipped_in_check_mode: false,
            result,
            predicts: Default::default(),
        })
    }
}

impl Service {
    /// Adds the mask and enable steps, and returns the `enabled` value to register.
    fn plan_unit_file(
        &self,
        unit: &str,
        status: &UnitStatus,
        assumed: &str,
        steps: &mut Steps,
    ) -> Option<bool> {
        let mut result_enabled = None;
        if let Some(masked) = self.masked {
            if masked != status.is_masked() {
                let verb = if masked { "mask" } else { "unmask" };
                steps.change(format!("{verb} `{unit}`"));
                steps.script.push_str(&self.systemctl(verb, unit));
            } else {
                steps.reasons.push(format!(
                    "`{unit}` is {}",
                    if masked { "masked" } else { "not masked" }
                ));
            }
        }

        if let Some(enabled) = self.enabled {
            let unit_file_state = status.get("UnitFileState");
            let currently = status.exists() && status.is_enabled();
            result_enabled = Some(enabled);
            if enabled == currently {
                steps.reasons.push(format!(
                    "`{unit}` is {} ({unit_file_state})",
                    if enabled { "enabled" } else { "disabled" }
                ));
            } else if !enabled && matches!(unit_file_state, "static" | "transient") {
                // `systemctl disable` leaves such a unit as it is, so a change would repeat forever.
                result_enabled = Some(true);
                steps.reasons.push(format!(
                    "`{unit}` is {unit_file_state} and cannot be disabled"
                ));
            } else {
                let verb = if enabled { "enable" } else { "disable" };
                steps.change(format!("{verb} `{unit}`{assumed}"));
                steps.script.push_str(&self.systemctl(verb, unit));
            }
        }
        result_enabled
    }

    /// Adds the step that brings the unit to `state`, or the reason none is needed.
    fn plan_state(
        &self,
        state: State,
        unit: &str,
        status: &UnitStatus,
        assumed: &str,
        steps: &mut Steps,
    ) {
        let running = status.is_running();
        match state {
            State::Started if running => steps
                .reasons
                .push(format!("`{unit}` is running ({})", status.get("SubState"))),
            State::Started => {
                steps.change(format!("start `{unit}`{assumed}"));
                steps.script.push_str(&self.systemctl("start", unit));
            }
            State::Stopped if status.is_stoppable() => {
                steps.change(format!("stop `{unit}`"));
                steps.script.push_str(&self.systemctl("stop", unit));
            }
            State::Stopped => steps.reasons.push(format!(
                "`{unit}` is stopped ({})",
                status.get("ActiveState")
            )),
            // As in Ansible, a unit that is not running is started instead.
            State::Restarted | State::Reloaded if !running => {
                steps.change(format!("start `{unit}`{assumed}"));
                steps.script.push_str(&self.systemctl("start", unit));
            }
            State::Restarted => {
                steps.change(format!("restart `{unit}`"));
                match self.sleep {
                    Some(seconds) => {
                        steps.script.push_str(&self.systemctl("stop", unit));
                        steps.script.push_str(&format!("sleep {seconds}\n"));
                        steps.script.push_str(&self.systemctl("start", unit));
                    }
                    None => steps.script.push_str(&self.systemctl("restart", unit)),
                }
            }
            State::Reloaded => {
                steps.change(format!("reload `{unit}`"));
                steps.script.push_str(&self.systemctl("reload", unit));
            }
        }
    }

    /// Returns what an earlier task in check mode would install that could provide
    /// the missing `unit`: its unit file, or a package.
    fn predicted_source(&self, unit: &str, host: &HostView) -> Option<String> {
        if !host.check_mode {
            return None;
        }
        let suffix = format!("/{unit}");
        if let Some(path) = host
            .predicted
            .files
            .keys()
            .find(|path| path.ends_with(&suffix))
        {
            return Some(format!(
                "the unit file `{path}` that an earlier task would write"
            ));
        }
        if host.predicted.packages.is_empty() {
            return None;
        }
        let base = unit.split(['.', '@']).next().unwrap_or(unit);
        let packages: Vec<&String> =
            match host.predicted.packages.iter().find(|p| p.as_str() == base) {
                Some(package) => vec![package],
                None => host.predicted.packages.iter().collect(),
            };
        let names = packages
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "a package that an earlier task would install ({names})"
        ))
    }
}

/// The changes a plan collects, the script lines that make them, and the reasons
/// for the parts that already match.
#[derive(Debug)]
struct Steps {
    changes: Vec<Change>,
    script: String,
    reasons: Vec<String>,
}

impl Default for Steps {
    fn default() -> Steps {
        Steps {
            changes: Vec::new(),
            script: String::from("set -e\n"),
            reasons: Vec::new(),
        }
    }
}

impl Steps {
    /// Records a change whose command the caller adds to `script`.
    fn change(&mut self, summary: String) {
        self.changes.push(Change {
            summary,
            diff: None,
        });
    }

    fn run(&mut self, summary: &str, command: &str) {
        self.change(summary.to_string());
        self.script.push_str(command);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Predictions;
    use std::process::Command;

    fn build_action(spec: &ModuleSpec, value: Value) -> Result<Box<dyn Action>, ModuleError> {
        let context = BuildContext {
            search_paths: &[],
            render_template: &|_| Ok(String::new()),
            facts: &Value::Null,
        };
        (spec.build)(&serde_json::from_value(value).unwrap(), &context)
    }

    fn make(spec: &ModuleSpec, value: Value) -> Box<dyn Action> {
        build_action(spec, value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan_with(
        action: &dyn Action,
        show: &str,
        check_mode: bool,
        predicted: &Predictions,
    ) -> Result<Plan, ModuleError> {
        let probe = ExecOutput {
            exit_code: 0,
            stdout: format!("==> show <==\n{show}"),
            stderr: String::new(),
        };
        let host = HostView {
            check_mode,
            facts: &Value::Null,
            predicted,
        };
        action.plan(&probe, &host)
    }

    fn plan_of(action: &dyn Action, show: &str) -> Plan {
        plan_with(action, show, false, &Predictions::default()).unwrap()
    }

    fn summaries(plan: &Plan) -> Vec<&str> {
        plan.changes.iter().map(|c| c.summary.as_str()).collect()
    }

    /// `systemctl show` output in Debian 12's format, for nginx after installation.
    const NGINX_RUNNING: &str = "Id=nginx.service\nNeedDaemonReload=no\nLoadState=loaded\nActiveState=active\nSubState=running\nFragmentPath=/lib/systemd/system/nginx.service\nUnitFileState=enabled\n";
    const NGINX_STOPPED_DISABLED: &str = "Id=nginx.service\nNeedDaemonReload=no\nLoadState=loaded\nActiveState=inactive\nSubState=dead\nFragmentPath=/lib/systemd/system/nginx.service\nUnitFileState=disabled\n";
    const MISSING: &str = "Id=nosuch.service\nNeedDaemonReload=no\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nFragmentPath=\nUnitFileState=\n";
    const STATIC_UNIT: &str = "Id=systemd-journald.service\nNeedDaemonReload=no\nLoadState=loaded\nActiveState=active\nSubState=running\nFragmentPath=/lib/systemd/system/systemd-journald.service\nUnitFileState=static\n";
    const MASKED: &str = "Id=nginx.service\nNeedDaemonReload=no\nLoadState=masked\nActiveState=inactive\nSubState=dead\nFragmentPath=\nUnitFileState=masked\n";

    #[test]
    fn started_and_enabled_is_unchanged() {
        let action = make(
            &SPEC,
            json!({"name": "nginx", "state": "started", "enabled": true}),
        );
        let plan = plan_of(action.as_ref(), NGINX_RUNNING);
        assert!(!plan.changed());
        assert_eq!(
            plan.reason.as_deref(),
            Some("`nginx.service` is enabled (enabled), `nginx.service` is running (running)")
        );
        assert_eq!(plan.result["status"]["ActiveState"], json!("active"));
        assert_eq!(plan.result["enabled"], json!(true));
        assert_eq!(plan.result["name"], json!("nginx.service"));
    }

    #[test]
    fn stopped_unit_is_enabled_then_started() {
        let action = make(
            &SPEC,
            json!({"name": "nginx", "state": "started", "enabled": "yes"}),
        );
        let plan = plan_of(action.as_ref(), NGINX_STOPPED_DISABLED);
        assert_eq!(
            summaries(&plan),
            vec!["enable `nginx.service`", "start `nginx.service`"]
        );
        let script = plan.apply.unwrap();
        let enable = script.find("systemctl enable -- nginx.service").unwrap();
        let start = script.find("systemctl start -- nginx.service").unwrap();
        assert!(enable < start, "{script}");
    }

    #[test]
    fn stop_and_disable() {
        let action = make(
            &SYSTEMD_SPEC,
            json!({"unit": "nginx.service", "state": "stopped", "enabled": false, "no_block": true, "force": true}),
        );
        let plan = plan_of(action.as_ref(), NGINX_RUNNING);
        assert_eq!(
            summaries(&plan),
            vec!["disable `nginx.service`", "stop `nginx.service`"]
        );
        let script = plan.apply.unwrap();
        assert!(
            script.contains("systemctl --force disable -- nginx.service"),
            "{script}"
        );
        assert!(
            script.contains("systemctl --no-block stop -- nginx.service"),
            "{script}"
        );
        assert!(!plan_of(action.as_ref(), NGINX_STOPPED_DISABLED).changed());
    }

    #[test]
    fn restarted_and_reloaded_always_change() {
        let restart = make(&SPEC, json!({"name": "nginx", "state": "restarted"}));
        let plan = plan_of(restart.as_ref(), NGINX_RUNNING);
        assert_eq!(summaries(&plan), vec!["restart `nginx.service`"]);

        let reload = make(&SPEC, json!({"name": "nginx", "state": "reloaded"}));
        assert_eq!(
            summaries(&plan_of(reload.as_ref(), NGINX_RUNNING)),
            vec!["reload `nginx.service`"]
        );
        assert_eq!(
            summaries(&plan_of(reload.as_ref(), NGINX_STOPPED_DISABLED)),
            vec!["start `nginx.service`"]
        );

        let sleepy = make(
            &SPEC,
            json!({"name": "nginx", "state": "restarted", "sleep": 2}),
        );
        let script = plan_of(sleepy.as_ref(), NGINX_RUNNING).apply.unwrap();
        assert!(
            script.contains("stop -- nginx.service </dev/null\nsleep 2\nsystemctl start"),
            "{script}"
        );
    }

    #[test]
    fn static_unit_counts_as_enabled() {
        let enable = make(&SPEC, json!({"name": "systemd-journald", "enabled": true}));
        assert!(!plan_of(enable.as_ref(), STATIC_UNIT).changed());

        let disable = make(&SPEC, json!({"name": "systemd-journald", "enabled": false}));
        let plan = plan_of(disable.as_ref(), STATIC_UNIT);
        assert!(!plan.changed());
        assert_eq!(
            plan.reason.as_deref(),
            Some("`systemd-journald.service` is static and cannot be disabled")
        );
    }

    #[test]
    fn indirect_counts_as_disabled() {
        let show =
            NGINX_STOPPED_DISABLED.replace("UnitFileState=disabled", "UnitFileState=indirect");
        let enable = make(&SPEC, json!({"name": "nginx", "enabled": true}));
        assert_eq!(
            summaries(&plan_of(enable.as_ref(), &show)),
            vec!["enable `nginx.service`"]
        );
    }

    #[test]
    fn masking() {
        let unmask = make(
            &SYSTEMD_SPEC,
            json!({"name": "nginx", "masked": false, "state": "started"}),
        );
        let plan = plan_of(unmask.as_ref(), MASKED);
        assert_eq!(
            summaries(&plan),
            vec!["unmask `nginx.service`", "start `nginx.service`"]
        );
        let mask = make(&SYSTEMD_SPEC, json!({"name": "nginx", "masked": true}));
        assert!(!plan_of(mask.as_ref(), MASKED).changed());
        assert_eq!(
            summaries(&plan_of(mask.as_ref(), MISSING)),
            vec!["mask `nginx.service`"]
        );
    }

    #[test]
    fn missing_unit_fails() {
        let action = make(&SPEC, json!({"name": "nosuch", "state": "started"}));
        let error =
            plan_with(action.as_ref(), MISSING, false, &Predictions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "could not find the requested service `nosuch.service`: install the package that provides it first, or check the name"
        );
        // Without a prediction, check mode fails the same way.
        assert!(plan_with(action.as_ref(), MISSING, true, &Predictions::default()).is_err());
    }

    #[test]
    fn check_mode_assumes_predicted_package() {
        let mut predicted = Predictions::default();
        predicted.packages.insert("curl".into());
        predicted.packages.insert("nginx".into());
        let action = make(
            &SPEC,
            json!({"name": "nginx", "state": "started", "enabled": true}),
        );
        let missing = MISSING.replace("nosuch", "nginx");
        let plan = plan_with(action.as_ref(), &missing, true, &predicted).unwrap();
        assert_eq!(
            summaries(&plan),
            vec![
                "enable `nginx.service`, assuming a package that an earlier task would install (`nginx`) provides it",
                "start `nginx.service`, assuming a package that an earlier task would install (`nginx`) provides it",
            ]
        );

        let mut predicted = Predictions::default();
        predicted
            .files
            .insert("/etc/systemd/system/app.service".into(), None);
        let action = action_for_app();
        let missing = MISSING.replace("nosuch", "app");
        let plan = plan_with(action.as_ref(), &missing, true, &predicted).unwrap();
        assert_eq!(
            summaries(&plan),
            vec!["start `app.service`, assuming the unit file `/etc/systemd/system/app.service` that an earlier task would write provides it"]
        );
    }

    fn action_for_app() -> Box<dyn Action> {
        make(&SPEC, json!({"name": "app", "state": "started"}))
    }

    #[test]
    fn daemon_reload_runs_first_when_needed() {
        let action = make(
            &SYSTEMD_SPEC,
            json!({"name": "app", "state": "restarted", "daemon_reload": true}),
        );
        let show = NGINX_RUNNING.replace("NeedDaemonReload=no", "NeedDaemonReload=yes");
        let plan = plan_of(action.as_ref(), &show);
        assert_eq!(
            summaries(&plan),
            vec![
                "reload the systemd manager configuration",
                "restart `app.service`"
            ]
        );
        let script = plan.apply.unwrap();
        assert!(script.find("daemon-reload").unwrap() < script.find("restart").unwrap());

        let started = action_started_with_reload();
        assert!(!plan_of(started.as_ref(), NGINX_RUNNING).changed());
        // A unit file written by an earlier task is loaded by the reload, so it is not an error.
        let plan = plan_of(started.as_ref(), MISSING);
        assert_eq!(
            summaries(&plan),
            vec![
                "reload the systemd manager configuration",
                "start `app.service`"
            ]
        );

        let alone = make(&SYSTEMD_SPEC, json!({"daemon_reload": true}));
        assert!(alone.probe().unwrap().find("systemctl show").is_none());
        let plan = plan_with(alone.as_ref(), "", false, &Predictions::default()).unwrap();
        assert_eq!(
            summaries(&plan),
            vec!["reload the systemd manager configuration"]
        );
    }

    fn action_started_with_reload() -> Box<dyn Action> {
        make(
            &SYSTEMD_SPEC,
            json!({"name": "app", "state": "started", "daemon_reload": true}),
        )
    }

    #[test]
    fn probe_failures_are_reported() {
        let action = make(&SPEC, json!({"name": "nginx", "state": "started"}));
        let error = plan_of_error(action.as_ref(), "==> show <==\nSystem has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n");
        assert!(
            error.contains(
                "`systemctl show` failed for `nginx.service`: System has not been booted"
            ),
            "{error}"
        );
        let error = plan_of_error(action.as_ref(), "==> no-systemd <==\n");
        assert!(error.contains("`systemctl` was not found"), "{error}");
    }

    fn plan_of_error(action: &dyn Action, stdout: &str) -> String {
        let probe = ExecOutput {
            stdout: stdout.to_string(),
            ..ExecOutput::default()
        };
        let predicted = Predictions::default();
        let host = HostView {
            check_mode: false,
            facts: &Value::Null,
            predicted: &predicted,
        };
        action.plan(&probe, &host).unwrap_err().to_string()
    }

    #[test]
    fn build_rejects_bad_arguments() {
        for (spec, value, fragment) in [
            (
                &SYSTEMD_SPEC,
                json!({"name": "x", "scope": "user", "state": "started"}),
                "`scope: user` is not supported",
            ),
            (&SYSTEMD_SPEC, json!({"name": "x"}), "nothing to do"),
            (
                &SYSTEMD_SPEC,
                json!({"state": "started"}),
                "argument `name` is missing",
            ),
            (
                &SPEC,
                json!({"state": "started"}),
                "missing required argument `name`",
            ),
            (
                &SPEC,
                json!({"name": "x", "state": "start"}),
                "must be one of",
            ),
            (
                &SPEC,
                json!({"name": "x", "pattern": "x"}),
                "`pattern` is not supported",
            ),
            (
                &SPEC,
                json!({"name": "x", "enabled": "maybe"}),
                "`enabled` must be a boolean",
            ),
        ] {
            let Err(error) = build_action(spec, value.clone()) else {
                panic!("{value}: accepted");
            };
            assert!(
                error.to_string().contains(fragment),
                "{value}: got `{error}`"
            );
        }
    }

    #[test]
    fn scripts_pass_sh_syntax_check() {
        let action = make(
            &SYSTEMD_SPEC,
            json!({"name": "it's odd", "state": "restarted", "enabled": true, "masked": false, "daemon_reload": true, "daemon_reexec": true}),
        );
        let plan = plan_of(action.as_ref(), MASKED);
        for script in [action.probe().unwrap(), plan.apply.unwrap()] {
            let status = Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&script)
                .status()
                .unwrap();
            assert!(status.success(), "{script}");
        }
    }
}
