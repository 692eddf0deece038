//! Version comparison for the `version` test and the `version_compare` filter.
//!
//! Loose comparison follows dpkg's algorithm (`[epoch:]upstream[-revision]`, digit
//! runs compared as numbers, `~` sorting before everything), which also orders plain
//! dotted versions (`3.0.11` < `3.5`) the way Ansible's loose comparison does.

use std::cmp::Ordering;

use minijinja::{Error, ErrorKind};

/// Compares `left` with `right` using the operator `op` (`<`, `lt`, `==`, `ne`, ...).
pub(super) fn compare(left: &str, right: &str, op: &str, strict: bool) -> Result<bool, Error> {
    if strict {
        check_strict(left)?;
        check_strict(right)?;
    }
    let ordering = compare_debian(left.trim(), right.trim());
    let result = match op {
        "<" | "lt" => ordering == Ordering::Less,
        "<=" | "le" => ordering != Ordering::Greater,
        ">" | "gt" => ordering == Ordering::Greater,
        ">=" | "ge" => ordering != Ordering::Less,
        "==" | "=" | "eq" => ordering == Ordering::Equal,
        "!=" | "<>" | "ne" => ordering != Ordering::Equal,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "invalid version operator `{other}`: use one of <, lt, <=, le, >, gt, >=, ge, ==, =, eq, !=, <>, ne"
                ),
            ))
        }
    };
    Ok(result)
}

/// Rejects versions that Python's `StrictVersion` rejects: `N.N[.N]` with an optional
/// `aN` or `bN` pre-release suffix.
fn check_strict(version: &str) -> Result<(), Error> {
    let valid = super::regex_cache::compile(
        r"^\d+\.\d+(\.\d+)?([ab]\d+)?$",
        super::regex_cache::RegexFlags::default(),
    )?
    .is_match(version);
    if valid {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "invalid strict version `{version}`: use `N.N[.N]`, or compare with strict=false"
            ),
        ))
    }
}

/// Compares two Debian package versions as `dpkg --compare-versions` does.
pub(super) fn compare_debian(left: &str, right: &str) -> Ordering {
    let (left_epoch, left_upstream, left_revision) = split_debian(left);
    let (right_epoch, right_upstream, right_revision) = split_debian(right);
    left_epoch
        .cmp(&right_epoch)
        .then_with(|| compare_fragment(left_upstream, right_upstream))
        .then_with(|| compare_fragment(left_revision, right_revision))
}

/// Splits `epoch:upstream-revision`; a missing epoch is 0 and a missing revision empty.
fn split_debian(version: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            (epoch.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, version),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// Compares one part of a Debian version: alternating non-digit runs (by dpkg's
/// character order) and digit runs (as numbers).
fn compare_fragment(left: &str, right: &str) -> Ordering {
    let mut left = left.as_bytes();
    let mut right = right.as_bytes();
    while !left.is_empty() || !right.is_empty() {
        let left_len = left.iter().take_while(|b| !b.is_ascii_digit()).count();
        let right_len = right.iter().take_while(|b| !b.is_ascii_digit()).count();
        let ordering = compare_non_digits(&left[..left_len], &right[..right_len]);
        if ordering != Ordering::Equal {
            return ordering;
        }
        left = &left[left_len..];
        right = &right[right_len..];

        let left_len = left.iter().take_while(|b| b.is_ascii_digit()).count();
        let right_len = right.iter().take_while(|b| b.is_ascii_digit()).count();
        let ordering = compare_digits(&left[..left_len], &right[..right_len]);
        if ordering != Ordering::Equal {
            return ordering;
        }
        left = &left[left_len..];
        right = &right[right_len..];
    }
    Ordering::Equal
}

fn compare_non_digits(left: &[u8], right: &[u8]) -> Ordering {
    let mut i = 0;
    while i < left.len() || i < right.len() {
        let ordering = char_order(left.get(i).copied()).cmp(&char_order(right.get(i).copied()));
        if ordering != Ordering::Equal {
            return ordering;
        }
        i += 1;
    }
    Ordering::Equal
}

/// dpkg's weight of a character: `~` before the end of the string, the end before
/// letters, and letters before every other character.
fn char_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_digits(left: &[u8], right: &[u8]) -> Ordering {
    let left = trim_zeros(left);
    let right = trim_zeros(right);
    left.len().cmp(&right.len()).then_with(|| left.cmp(right))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    &digits[zeros..]
}
