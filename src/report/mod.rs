//! Per-task output, diffs and the recap, as text or JSON lines.
//!
//! The executor sends [`Event`]s; a [`Reporter`] renders them. Every string passes
//! through the [`Redactor`] first, so a secret (a become password, a `no_log`
//! value) cannot reach the terminal or a JSON consumer even when a module echoes it.

mod json;
mod text;

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

pub use json::JsonReporter;
pub use text::TextReporter;

use crate::modules::Diff;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

/// The outcome of one task (or one loop item) on one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub host: String,
    pub status: Status,
    /// A one-line explanation: the change summary, the reason for no change, or the error.
    pub message: String,
    /// The loop item's label, for loop results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<Diff>,
    /// Set when the failure is ignored (`ignore_errors`) or rescued.
    pub ignored: bool,
    /// Whether `--check` only predicted this result.
    pub check_mode: bool,
}

/// Per-host counters for the recap.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub ok: u32,
    pub changed: u32,
    pub failed: u32,
    pub unreachable: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
    /// Remote commands run on the host (probes, changes, facts), for the JSON recap:
    /// on a distant host each one costs at least a round trip.
    pub commands: u32,
}

pub enum Event<'a> {
    PlayStart { name: &'a str, hosts: &'a [String] },
    TaskStart { name: &'a str, hosts: usize },
    Result(&'a HostResult),
    Warning(&'a str),
    Recap(&'a BTreeMap<String, Stats>),
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event<'_>);
    /// Called while a task waits for hosts, so a terminal can show progress.
    fn progress(&self, _done: usize, _total: usize) {}
    fn finish_progress(&self) {}
}

/// Replaces known secret values with `********` in everything that is printed.
#[derive(Default)]
pub struct Redactor {
    secrets: Mutex<Vec<String>>,
}

impl Redactor {
    /// Adds a value to hide. Values shorter than 4 characters are ignored, because hiding
    /// them would blank out ordinary words and numbers everywhere.
    pub fn add(&self, secret: &str) {
        if secret.len() < 4 {
            return;
        }
        let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_string());
            // Longer secrets first, so one that contains another is hidden whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "********");
            }
        }
        out
    }

    pub fn redact_result(&self, result: &HostResult) -> HostResult {
        HostResult {
            message: self.redact(&result.message),
            item: result.item.as_deref().map(|item| self.redact(item)),
            diffs: result
                .diffs
                .iter()
                .map(|diff| Diff {
                    header: self.redact(&diff.header),
                    before: self.redact(&diff.before),
                    after: self.redact(&diff.after),
                })
                .collect(),
            ..result.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_hides_longest_first() {
        let redactor = Redactor::default();
        redactor.add("hunter2");
        redactor.add("hunter2-extended");
        redactor.add("ab");
        assert_eq!(
            redactor.redact("pw=hunter2-extended and hunter2, ab"),
            "pw=******** and ********, ab"
        );
    }
}
