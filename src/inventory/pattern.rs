//! Host patterns, evaluated as ansible-core's `InventoryManager.get_hosts` does.
//!
//! A pattern with a comma splits on commas only, otherwise on `:` outside
//! brackets. Terms apply in three passes whatever their order: unions first, then
//! `&` intersections, then `!` exclusions; a pattern with no union term starts
//! from `all`. Each term names groups or hosts, by exact name, by glob, or by
//! regular expression after `~`, and may end in a subscript such as `web[0]`
//! or `web[1:3]` that picks hosts by position.
//!
//! The result is in inventory order without duplicates, where Ansible keeps the
//! order of the union terms (`db:web` lists `db` hosts first).

use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::Regex;

use super::Inventory;
use crate::diagnostic::{did_you_mean, Diagnostic};

// Ansible's term syntax: anything but whitespace, `:`, `[` and `]`, or a whole
// bracketed expression, so that `web[1:2]` stays one term.
static TERM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").expect("valid regex"));

static SUBSCRIPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]+)?)\]$").expect("valid regex")
});

pub(super) fn select(inventory: &Inventory, pattern: &str) -> Result<Vec<String>, Diagnostic> {
    let terms = split_terms(pattern);
    if terms.is_empty() {
        // Ansible reads an empty pattern as `all`, but a blank `hosts:` is more likely a mistake.
        return Err(
            Diagnostic::new(format!("host pattern `{pattern}` is empty"))
                .with_help("write `all` to select every host, or a group or host name"),
        );
    }
    let mut unions = Vec::new();
    let mut intersections = Vec::new();
    let mut exclusions = Vec::new();
    for term in &terms {
        if let Some(rest) = term.strip_prefix('!') {
            exclusions.push(rest);
        } else if let Some(rest) = term.strip_prefix('&') {
            intersections.push(rest);
        } else {
            unions.push(term.as_str());
        }
    }
    if unions.is_empty() {
        unions.push("all");
    }

    let mut selected: BTreeSet<String> = BTreeSet::new();
    for term in unions {
        selected.extend(match_term(inventory, term)?);
    }
    for term in intersections {
        let matched: BTreeSet<String> = match_term(inventory, term)?.into_iter().collect();
        selected.retain(|host| matched.contains(host));
    }
    for term in exclusions {
        let matched: BTreeSet<String> = match_term(inventory, term)?.into_iter().collect();
        selected.retain(|host| !matched.contains(host));
    }

    Ok(inventory
        .hosts
        .iter()
        .filter(|host| selected.contains(&host.name))
        .map(|host| host.name.clone())
        .collect())
}

fn split_terms(pattern: &str) -> Vec<String> {
    let terms: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if pattern.trim().parse::<Ipv6Addr>().is_ok() {
        vec![pattern.to_string()]
    } else {
        TERM.find_iter(pattern)
            .map(|m| m.as_str().to_string())
            .collect()
    };
    terms
        .into_iter()
        .map(|term| term.trim().to_string())
        .filter(|term| !term.is_empty())
        .collect()
}

/// Returns the hosts one term selects, in inventory order.
fn match_term(inventory: &Inventory, term: &str) -> Result<Vec<String>, Diagnostic> {
    let (name, subscript) = split_subscript(term);
    let hosts = if name == "all" || name == "*" {
        inventory
            .hosts
            .iter()
            .map(|host| host.name.clone())
            .collect()
    } else {
        match_name(inventory, name)?
    };
    Ok(match subscript {
        None => hosts,
        Some(subscript) => subscript.apply(hosts),
    })
}

fn match_name(inventory: &Inventory, name: &str) -> Result<Vec<String>, Diagnostic> {
    let matcher = Matcher::new(name)?;
    let groups: Vec<&String> = inventory
        .groups
        .keys()
        .filter(|group| matcher.matches(group))
        .collect();
    let mut members: BTreeSet<String> = groups
        .iter()
        .flat_map(|group| inventory.hosts_of_group(group))
        .collect();

    // Ansible also tries host names when no group matched, or when the term is a
    // regular expression or has a character that is special in a glob or a domain.
    let try_hosts =
        groups.is_empty() || name.starts_with('~') || name.contains(['.', '?', '*', '[']);
    let mut host_matched = false;
    if try_hosts {
        for host in &inventory.hosts {
            if matcher.matches(&host.name) {
                host_matched = true;
                members.insert(host.name.clone());
            }
        }
    }

    if groups.is_empty() && !host_matched {
        let candidates = inventory
            .groups
            .keys()
            .map(String::as_str)
            .chain(inventory.hosts.iter().map(|host| host.name.as_str()));
        let help = match did_you_mean(name, candidates) {
            Some(close) => format!("did you mean `{close}`?"),
            None => "run `vpsforge inventory --list` to see the hosts and groups".to_string(),
        };
        return Err(
            Diagnostic::new(format!("host pattern `{name}` matches no host or group"))
                .with_help(help),
        );
    }

    Ok(inventory
        .hosts
        .iter()
        .filter(|host| members.contains(&host.name))
        .map(|host| host.name.clone())
        .collect())
}

enum Matcher {
    Exact(String),
    Regex(Regex),
}

impl Matcher {
    fn new(name: &str) -> Result<Matcher, Diagnostic> {
        if let Some(expression) = name.strip_prefix('~') {
            // Python's `re.match` anchors at the start only. The expression is
            // compiled alone first so that an error shows the user's text.
            return Regex::new(expression)
                .and_then(|_| Regex::new(&format!("^(?:{expression})")))
                .map(Matcher::Regex)
                .map_err(|error| {
                    Diagnostic::new(format!(
                        "invalid regular expression in host pattern `{name}`: {}",
                        regex_reason(&error)
                    ))
                    .with_help("write a regular expression after `~`, such as `~web\\d+`")
                });
        }
        if !name.contains(['*', '?', '[']) {
            return Ok(Matcher::Exact(name.to_string()));
        }
        Regex::new(&glob_to_regex(name))
            .map(Matcher::Regex)
            .map_err(|error| {
                Diagnostic::new(format!(
                    "invalid glob in host pattern `{name}`: {}",
                    regex_reason(&error)
                ))
            })
    }

    fn matches(&self, candidate: &str) -> bool {
        match self {
            Matcher::Exact(name) => name == candidate,
            Matcher::Regex(regex) => regex.is_match(candidate),
        }
    }
}

/// Returns the reason of a regex error, which is its last line. The lines above
/// repeat the expression with a caret that cannot point into the playbook.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let reason = text.lines().last().unwrap_or_default();
    reason.trim_start_matches("error: ").to_string()
}

/// Translates a shell glob to an anchored regular expression, as Python's
/// `fnmatch.translate` does: `*`, `?`, `[abc]` and `[!abc]`.
fn glob_to_regex(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::from("^");
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        at += 1;
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                let mut end = at;
                if chars.get(end) == Some(&'!') {
                    end += 1;
                }
                if chars.get(end) == Some(&']') {
                    end += 1;
                }
                while end < chars.len() && chars[end] != ']' {
                    end += 1;
                }
                if end >= chars.len() {
                    out.push_str("\\[");
                    continue;
                }
                let mut class: String = chars[at..end].iter().collect();
                at = end + 1;
                class = class.replace('\\', "\\\\").replace('[', "\\[");
                if let Some(rest) = class.strip_prefix('!') {
                    class = format!("^{rest}");
                } else if class.starts_with('^') {
                    class = format!("\\{class}");
                }
                out.push('[');
                out.push_str(&class);
                out.push(']');
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out.push('$');
    out
}

/// A position subscript on a term: `[2]`, `[-1]`, `[1:3]` (inclusive) or `[1:]`.
#[derive(Debug, PartialEq)]
struct Subscript {
    start: i64,
    end: Option<i64>,
}

impl Subscript {
    fn apply(&self, hosts: Vec<String>) -> Vec<String> {
        let len = hosts.len() as i64;
        match self.end {
            // Ansible treats an end of 0 as no end, so `[0:0]` picks one host.
            Some(end) if end != 0 => {
                let end = if end == -1 { len - 1 } else { end };
                let start = self.start.clamp(0, len) as usize;
                let stop = end.saturating_add(1).clamp(0, len) as usize;
                hosts
                    .get(start..stop.max(start))
                    .map(<[String]>::to_vec)
                    .unwrap_or_default()
            }
            _ => {
                let index = if self.start < 0 {
                    len.saturating_add(self.start)
                } else {
                    self.start
                };
                usize::try_from(index)
                    .ok()
                    .and_then(|index| hosts.get(index).cloned())
                    .into_iter()
                    .collect()
            }
        }
    }
}

fn split_subscript(term: &str) -> (&str, Option<Subscript>) {
    if term.starts_with('~') {
        return (term, None);
    }
    let Some(captures) = SUBSCRIPT.captures(term) else {
        return (term, None);
    };
    let name = captures.get(1).map_or(term, |m| m.as_str());
    // A number too large for `i64` is past the last host, so it selects nothing.
    let number = |index: usize| {
        captures
            .get(index)
            .map(|m| m.as_str().parse::<i64>().unwrap_or(i64::MAX))
    };
    let subscript = match number(2) {
        Some(index) => Subscript {
            start: index,
            end: None,
        },
        None => Subscript {
            start: number(3).unwrap_or(0),
            end: Some(number(5).unwrap_or(-1)),
        },
    };
    (name, Some(subscript))
}
