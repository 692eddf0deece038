//! `debug`, `set_fact`, `assert` and `fail`: modules the executor evaluates itself.

use serde_json::{json, Map, Value};

use super::host::HostState;
use super::task::Outcome;
use super::Runner;
use crate::modules::ModuleSpec;
use crate::report::Status;
use crate::template::Scope;

impl Runner<'_> {
    pub(super) fn run_controller_module(
        &self,
        state: &mut HostState,
        module: &ModuleSpec,
        args: &Map<String, Value>,
        scope: &Scope<'_>,
    ) -> Outcome {
        match module.name {
            "debug" => self.debug(args, scope),
            "set_fact" => {
                let mut facts = args.clone();
                facts.remove("cacheable");
                for (name, value) in &facts {
                    state.registered.insert(name.clone(), value.clone());
                }
                ok(String::new(), json!({"ansible_facts": facts}))
            }
            "assert" => self.assert(args, scope),
            "fail" => {
                let message = args
                    .get("msg")
                    .map(display)
                    .unwrap_or_else(|| "Failed as requested from task".to_string());
                failed(message)
            }
            other => failed(format!("module `{other}` cannot run on the controller")),
        }
    }

    fn debug(&self, args: &Map<String, Value>, scope: &Scope<'_>) -> Outcome {
        let verbosity = args.get("verbosity").and_then(Value::as_u64).unwrap_or(0);
        if verbosity > u64::from(self.options.verbose) {
            return Outcome {
                status: Status::Skipped,
                message: format!(
                    "verbosity threshold not met: needs -{}",
                    "v".repeat(verbosity as usize)
                ),
                diffs: Vec::new(),
                result: Map::from_iter([("skipped".to_string(), json!(true))]),
                check_mode: false,
            };
        }
        if let Some(Value::String(expr)) = args.get("var") {
            return match scope.eval(expr) {
                Ok(value) => ok(
                    format!("{expr}: {}", display(&value)),
                    json!({ expr.clone(): value }),
                ),
                Err(error) => failed(format!("cannot evaluate `{expr}`: {}", error.message)),
            };
        }
        let message = args
            .get("msg")
            .map(display)
            .unwrap_or_else(|| "Hello world!".to_string());
        ok(
            message.clone(),
            json!({"msg": args.get("msg").cloned().unwrap_or(json!(message))}),
        )
    }

    fn assert(&self, args: &Map<String, Value>, scope: &Scope<'_>) -> Outcome {
        let conditions: Vec<String> = match args.get("that") {
            Some(Value::Array(items)) => items.iter().map(display).collect(),
            Some(Value::Bool(b)) => vec![b.to_string()],
            Some(other) => vec![display(other)],
            None => Vec::new(),
        };
        for condition in &conditions {
            match scope.eval_condition(condition) {
                Ok(true) => {}
                Ok(false) => {
                    let message = args
                        .get("fail_msg")
                        .map(display)
                        .unwrap_or_else(|| format!("assertion failed: {condition}"));
                    let mut outcome = failed(message);
                    outcome.result.insert("assertion".into(), json!(condition));
                    return outcome;
                }
                Err(error) => {
                    return failed(format!(
                        "cannot evaluate assertion `{condition}`: {}",
                        error.message
                    ))
                }
            }
        }
        let quiet = args
            .get("quiet")
            .and_then(crate::modules::args::to_bool)
            .unwrap_or(false);
        let message = match (quiet, args.get("success_msg")) {
            (true, _) => String::new(),
            (false, Some(text)) => display(text),
            (false, None) => "All assertions passed".to_string(),
        };
        ok(message.clone(), json!({"msg": message}))
    }
}

fn ok(message: String, result: Value) -> Outcome {
    let mut map = match result {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    map.insert("changed".into(), json!(false));
    map.insert("failed".into(), json!(false));
    Outcome {
        status: Status::Ok,
        message,
        diffs: Vec::new(),
        result: map,
        check_mode: false,
    }
}

fn failed(message: String) -> Outcome {
    let mut result = Map::new();
    result.insert("failed".into(), json!(true));
    result.insert("changed".into(), json!(false));
    result.insert("msg".into(), json!(message));
    Outcome {
        status: Status::Failed,
        message,
        diffs: Vec::new(),
        result,
        check_mode: false,
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}
