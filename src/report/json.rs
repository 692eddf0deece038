use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::{Event, Redactor, Reporter, Stats};

/// One JSON object per line: a `task` event per host result, `play` and `warning`
/// events, and a final `recap` event with the counters of every host.
pub struct JsonReporter {
    redactor: Arc<Redactor>,
    show_diff: bool,
    out: Mutex<Box<dyn Write + Send>>,
    current: Mutex<(String, String)>,
}

impl JsonReporter {
    pub fn new(
        redactor: Arc<Redactor>,
        show_diff: bool,
        out: Box<dyn Write + Send>,
    ) -> JsonReporter {
        JsonReporter {
            redactor,
            show_diff,
            out: Mutex::new(out),
            current: Mutex::new((String::new(), String::new())),
        }
    }

    fn emit(&self, value: serde_json::Value) {
        let line = self.redactor.redact(&value.to_string());
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

impl Reporter for JsonReporter {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::PlayStart { name, hosts } => {
                self.current.lock().unwrap_or_else(|e| e.into_inner()).0 = name.to_string();
                self.emit(json!({"event": "play", "play": name, "hosts": hosts}));
            }
            Event::TaskStart { name, .. } => {
                self.current.lock().unwrap_or_else(|e| e.into_inner()).1 = name.to_string();
            }
            Event::Result(result) => {
                let (play, task) = self
                    .current
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let mut value = json!({
                    "event": "task",
                    "play": play,
                    "task": task,
                    "host": result.host,
                    "status": result.status,
                    "changed": result.status == super::Status::Changed,
                    "msg": result.message,
                    "check_mode": result.check_mode,
                });
                if let Some(item) = &result.item {
                    value["item"] = json!(item);
                }
                if result.ignored {
                    value["ignored"] = json!(true);
                }
                if self.show_diff && !result.diffs.is_empty() {
                    value["diff"] = json!(result.diffs);
                }
                self.emit(value);
            }
            Event::Warning(message) => self.emit(json!({"event": "warning", "msg": message})),
            Event::Recap(stats) => {
                let hosts: BTreeMap<&String, &Stats> = stats.iter().collect();
                self.emit(json!({"event": "recap", "hosts": hosts}));
            }
        }
    }
}
