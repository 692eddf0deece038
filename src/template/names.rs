//! The filters, tests, functions and lookup plugins that the environment registers,
//! and the check that finds names a template uses but vpsforge lacks.
//!
//! minijinja has no API that lists its filters and tests, so the list is built from
//! the names vpsforge registers plus minijinja's builtins, each kept only if the
//! environment resolves it. A used name missing from the list is probed the same
//! way before it is reported, so a builtin added by a newer minijinja is never
//! reported as unknown.

use std::collections::BTreeSet;
use std::fmt;

use minijinja::{Environment, ErrorKind};

use super::lookup;
use super::syntax_tree::UsedNames;
use crate::diagnostic::did_you_mean;

/// Filter and test names of minijinja 3.1's builtins, from its `defaults.rs`.
const BUILTIN_CANDIDATES: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "boolean",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "defined",
    "dictsort",
    "divisibleby",
    "e",
    "endingwith",
    "eq",
    "equalto",
    "escape",
    "escaped",
    "even",
    "false",
    "filter",
    "first",
    "float",
    "format",
    "ge",
    "greaterthan",
    "groupby",
    "gt",
    "in",
    "indent",
    "int",
    "integer",
    "items",
    "iterable",
    "join",
    "last",
    "le",
    "length",
    "lessthan",
    "lines",
    "list",
    "lower",
    "lt",
    "map",
    "mapping",
    "max",
    "min",
    "ne",
    "none",
    "number",
    "odd",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "sameas",
    "select",
    "selectattr",
    "sequence",
    "slice",
    "sort",
    "split",
    "startingwith",
    "string",
    "sum",
    "test",
    "title",
    "tojson",
    "trim",
    "true",
    "undefined",
    "unique",
    "upper",
    "urlencode",
    "zip",
];

/// Names that a template calls like functions without the environment defining them.
const LANGUAGE_FUNCTIONS: &[&str] = &["super", "loop", "caller", "varargs", "kwargs"];

/// The names that a [`Templar`](super::Templar) registers, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisteredNames {
    pub filters: BTreeSet<String>,
    pub tests: BTreeSet<String>,
    /// Functions and other global values (`range`, `lookup`, `omit`).
    pub functions: BTreeSet<String>,
    /// Lookup plugins of `lookup`, `query` and `q`, without the `ansible.builtin.` prefix.
    pub lookups: BTreeSet<String>,
}

/// The kind of a name that a template uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Filter,
    Test,
    Function,
    Lookup,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Filter => "filter",
            NameKind::Test => "test",
            NameKind::Function => "function",
            NameKind::Lookup => "lookup plugin",
        })
    }
}

/// A filter, test, function or lookup plugin that a template uses but vpsforge lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub kind: NameKind,
    pub name: String,
    /// The closest registered name of the same kind, if one is close.
    pub suggestion: Option<String>,
}

impl UnknownName {
    /// Returns the error message, in the words a render of the template would use.
    pub fn message(&self) -> String {
        match self.kind {
            NameKind::Lookup => lookup::unknown_plugin_message(&self.name),
            kind => format!(
                "unknown {kind} `{}`: check its spelling; vpsforge implements only part of Ansible's {kind}s",
                self.name
            ),
        }
    }

    /// Returns "did you mean `x`?" when a registered name is close.
    pub fn help(&self) -> Option<String> {
        self.suggestion
            .as_ref()
            .map(|suggestion| format!("did you mean `{suggestion}`?"))
    }
}

impl RegisteredNames {
    /// Builds the list for `env`, where `own_filters` and `own_tests` are the names
    /// vpsforge registered itself.
    pub(super) fn collect(
        env: &Environment<'static>,
        own_filters: &BTreeSet<String>,
        own_tests: &BTreeSet<String>,
    ) -> RegisteredNames {
        let builtins = || BUILTIN_CANDIDATES.iter().map(|name| name.to_string());
        let filters = own_filters
            .iter()
            .cloned()
            .chain(builtins())
            .filter(|name| has_filter(env, name))
            .collect();
        let tests = own_tests
            .iter()
            .cloned()
            .chain(builtins())
            .filter(|name| has_test(env, name))
            .collect();
        let functions = env.globals().map(|(name, _)| name.to_string()).collect();
        let lookups = lookup::PLUGINS
            .iter()
            .map(|name| name.to_string())
            .collect();
        RegisteredNames {
            filters,
            tests,
            functions,
            lookups,
        }
    }

    /// Returns the names in `used` that `env` does not register, sorted by kind and name.
    pub(super) fn unknown(&self, env: &Environment<'static>, used: &UsedNames) -> Vec<UnknownName> {
        let mut unknown = Vec::new();
        let mut report = |kind, name: &String, known: &BTreeSet<String>| {
            let suggestion =
                did_you_mean(name, known.iter().map(String::as_str)).map(str::to_string);
            unknown.push(UnknownName {
                kind,
                name: name.clone(),
                suggestion,
            });
        };
        for name in &used.filters {
            if !self.filters.contains(name) && !has_filter(env, name) {
                report(NameKind::Filter, name, &self.filters);
            }
        }
        for name in &used.tests {
            if !self.tests.contains(name) && !has_test(env, name) {
                report(NameKind::Test, name, &self.tests);
            }
        }
        for name in &used.functions {
            if !self.functions.contains(name) && !LANGUAGE_FUNCTIONS.contains(&name.as_str()) {
                report(NameKind::Function, name, &self.functions);
            }
        }
        for name in &used.lookups {
            let plugin = name.strip_prefix("ansible.builtin.").unwrap_or(name);
            if !self.lookups.contains(plugin) {
                report(NameKind::Lookup, name, &self.lookups);
            }
        }
        unknown
    }
}

/// Returns whether `env` resolves the filter `name`, by rendering a use of it.
fn has_filter(env: &Environment<'static>, name: &str) -> bool {
    match env.render_str(&format!("{{{{ none | {name} }}}}"), ()) {
        Err(err) => !matches!(
            err.kind(),
            ErrorKind::UnknownFilter | ErrorKind::SyntaxError
        ),
        Ok(_) => true,
    }
}

/// Returns whether `env` resolves the test `name`, by rendering a use of it.
fn has_test(env: &Environment<'static>, name: &str) -> bool {
    match env.render_str(&format!("{{{{ none is {name} }}}}"), ()) {
        Err(err) => !matches!(err.kind(), ErrorKind::UnknownTest | ErrorKind::SyntaxError),
        Ok(_) => true,
    }
}
