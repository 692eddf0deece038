//! The regular expression filters, with Python's `re` semantics where they differ.

use minijinja::value::{Kwargs, Rest};
use minijinja::{Error, Value};

use super::{invalid, positional_or_keyword};
use crate::template::regex_cache::{self, GroupRef, RegexFlags};

fn regex_flags(kwargs: &Kwargs) -> Result<RegexFlags, Error> {
    Ok(RegexFlags {
        ignorecase: kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
        multiline: kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false),
    })
}

/// Replaces every match of `pattern`; the replacement uses Python's `\1` syntax.
pub(super) fn regex_replace(
    value: String,
    pattern: Option<String>,
    replacement: Option<String>,
    ignorecase: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let pattern = positional_or_keyword(pattern, &kwargs, "pattern")?.unwrap_or_default();
    let replacement =
        positional_or_keyword(replacement, &kwargs, "replacement")?.unwrap_or_default();
    let mut flags = regex_flags(&kwargs)?;
    flags.ignorecase |= ignorecase.unwrap_or(false);
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let mandatory_count = kwargs.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
    kwargs.assert_all_used()?;

    let regex = regex_cache::compile(&pattern, flags)?;
    if mandatory_count > 0 {
        let found = regex.find_iter(&value).count();
        if found != mandatory_count {
            return Err(invalid(format!(
                "`regex_replace` expected {mandatory_count} matches of `{pattern}` but found {found}"
            )));
        }
    }
    let replacement = regex_cache::python_replacement(&replacement);
    Ok(regex
        .replacen(&value, count, replacement.as_str())
        .into_owned())
}

/// Returns the first match of `pattern`, or none. Extra arguments (`'\\1'`,
/// `'\\g<name>'`) return those groups as a list instead.
pub(super) fn regex_search(
    value: String,
    pattern: String,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let flags = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let regex = regex_cache::compile(&pattern, flags)?;
    let Some(captures) = regex.captures(&value) else {
        return Ok(Value::from(()));
    };
    if groups.0.is_empty() {
        return Ok(Value::from(captures.get(0).map_or("", |m| m.as_str())));
    }

    let mut selected = Vec::with_capacity(groups.0.len());
    for reference in &groups.0 {
        let group = match regex_cache::group_reference(reference) {
            Some(GroupRef::Index(index)) => captures.get(index),
            Some(GroupRef::Name(name)) => captures.name(&name),
            None => {
                return Err(invalid(format!(
                    "invalid group reference `{reference}` for `regex_search`: use `\\\\1` or `\\\\g<name>`"
                )))
            }
        };
        selected.push(group.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(selected))
}

/// Returns all matches as Python's `re.findall` does: whole matches without groups,
/// the group with one group, and lists of groups with several.
pub(super) fn regex_findall(
    value: String,
    pattern: String,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let flags = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let regex = regex_cache::compile(&pattern, flags)?;
    let group_count = regex.captures_len() - 1;
    let found: Vec<Value> = regex
        .captures_iter(&value)
        .map(|captures| {
            let text = |i: usize| captures.get(i).map_or("", |m| m.as_str()).to_string();
            match group_count {
                0 => Value::from(text(0)),
                1 => Value::from(text(1)),
                n => Value::from((1..=n).map(text).collect::<Vec<_>>()),
            }
        })
        .collect();
    Ok(Value::from(found))
}

pub(super) fn regex_escape(value: String) -> String {
    regex::escape(&value)
}
