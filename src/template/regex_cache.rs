//! Compiled regular expressions shared by the regex filters and tests, and the
//! translation of Python's replacement syntax into the `regex` crate's.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use minijinja::{Error, ErrorKind};
use regex::{Regex, RegexBuilder};

/// Flags that Ansible's regex filters and tests take as keyword arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(super) struct RegexFlags {
    pub ignorecase: bool,
    pub multiline: bool,
}

static CACHE: LazyLock<Mutex<HashMap<(String, RegexFlags), Regex>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Compiles `pattern`, reusing an earlier compilation of the same pattern and flags.
pub(super) fn compile(pattern: &str, flags: RegexFlags) -> Result<Regex, Error> {
    let key = (pattern.to_string(), flags);
    if let Ok(cache) = CACHE.lock() {
        if let Some(regex) = cache.get(&key) {
            return Ok(regex.clone());
        }
    }

    let regex = RegexBuilder::new(pattern)
        .case_insensitive(flags.ignorecase)
        .multi_line(flags.multiline)
        .build()
        .map_err(|err| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "invalid regex `{pattern}`: {}; look-around and backreferences are not supported",
                    error_cause(&err.to_string())
                ),
            )
        })?;

    if let Ok(mut cache) = CACHE.lock() {
        cache.insert(key, regex.clone());
    }
    Ok(regex)
}

/// Returns the last non-empty line of a `regex` error, which states the cause; the
/// lines before it repeat the pattern with a caret.
fn error_cause(message: &str) -> String {
    message
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| line.trim_start_matches("error: ").to_string())
        .unwrap_or_else(|| message.to_string())
}

/// Converts a Python replacement string (`\1`, `\g<1>`, `\g<name>`, `\n`) into the
/// `regex` crate's syntax (`${1}`, `${name}`), escaping a literal `$` as `$$`.
pub(super) fn python_replacement(replacement: &str) -> String {
    let mut converted = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => converted.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut group = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        // Python reads at most two digits as a group number.
                        if group.len() == 2 {
                            break;
                        }
                        group.push(d);
                        chars.next();
                    }
                    converted.push_str(&format!("${{{group}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                        converted.push_str(&format!("${{{name}}}"));
                    } else {
                        converted.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    converted.push('\n');
                }
                Some('t') => {
                    chars.next();
                    converted.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    converted.push('\\');
                }
                _ => converted.push('\\'),
            },
            c => converted.push(c),
        }
    }
    converted
}

/// Returns the group that a Python group reference (`\1`, `\g<name>`) names, for
/// `regex_search`'s extra arguments.
pub(super) fn group_reference(reference: &str) -> Option<GroupRef> {
    if let Some(number) = reference.strip_prefix('\\') {
        if let Ok(index) = number.parse::<usize>() {
            return Some(GroupRef::Index(index));
        }
    }
    let name = reference.strip_prefix("\\g<")?.strip_suffix('>')?;
    match name.parse::<usize>() {
        Ok(index) => Some(GroupRef::Index(index)),
        Err(_) => Some(GroupRef::Name(name.to_string())),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum GroupRef {
    Index(usize),
    Name(String),
}
