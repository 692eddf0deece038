//! Host name ranges (`web[01:03].example.com`, `db-[a:c]`) and `host:port` suffixes,
//! following ansible-core's `expand_hostname_range` and `parse_address`.

use std::sync::LazyLock;

use regex::Regex;

static BRACKETED_PORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[(.+)\]:([0-9]+)$").expect("valid regex"));

// A host, possibly with complete `[...]` ranges, then `:PORT`. IPv6 addresses
// without brackets never match because the host part excludes bare colons.
static HOST_PORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^((?:[^:\[\]]|\[[^\]]*\])+):([0-9]+)$").expect("valid regex"));

/// Splits `host:port` or `[host]:port` into the host pattern and the port.
pub(super) fn split_port(pattern: &str) -> Result<(String, Option<u16>), String> {
    let captures = BRACKETED_PORT
        .captures(pattern)
        .or_else(|| HOST_PORT.captures(pattern));
    let Some(captures) = captures else {
        return Ok((pattern.to_string(), None));
    };
    let port = &captures[2];
    match port.parse::<u16>() {
        Ok(number) if number > 0 => Ok((captures[1].to_string(), Some(number))),
        _ => Err(format!(
            "invalid port `{port}` in `{pattern}`: a port is a number from 1 to 65535"
        )),
    }
}

/// Expands every `[begin:end]` or `[begin:end:step]` range in a host name, leftmost first.
///
/// Numeric bounds with a leading zero keep their width (`[01:10]` gives `01` … `10`).
/// Letter bounds run through `a`…`z` then `A`…`Z`, as Python's `string.ascii_letters`.
pub(super) fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let Some(close) = pattern[open..].find(']').map(|offset| open + offset) else {
        return Err(format!(
            "unclosed `[` in host range `{pattern}`: write a range as `[begin:end]`"
        ));
    };
    let head = &pattern[..open];
    let range = &pattern[open + 1..close];
    let tail = &pattern[close + 1..];

    let items = range_items(range).map_err(|reason| format!("{reason} in `{pattern}`"))?;
    let mut names = Vec::new();
    for item in items {
        let name = format!("{head}{item}{tail}");
        if name.contains('[') {
            names.extend(expand(&name)?);
        } else {
            names.push(name);
        }
    }
    Ok(names)
}

const ASCII_LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn range_items(range: &str) -> Result<Vec<String>, String> {
    let bounds: Vec<&str> = range.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(format!(
            "host range `[{range}]` must be `[begin:end]` or `[begin:end:step]`"
        ));
    }
    let begin = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(format!("host range `[{range}]` has no end value"));
    }
    let step = match bounds.get(2) {
        None => 1,
        Some(step) => match step.parse::<usize>() {
            Ok(step) if step > 0 => step,
            _ => {
                return Err(format!(
                    "host range `[{range}]` has an invalid step `{step}`: use a positive number"
                ))
            }
        },
    };

    let letters = (ASCII_LETTERS.find(begin), ASCII_LETTERS.find(end));
    if let (Some(first), Some(last)) = letters {
        if begin.len() == 1 && end.len() == 1 {
            if first > last {
                return Err(format!("host range `[{range}]` must have begin <= end"));
            }
            let items = ASCII_LETTERS[first..=last]
                .chars()
                .step_by(step)
                .map(String::from)
                .collect();
            return Ok(items);
        }
    }

    let width = if begin.len() > 1 && begin.starts_with('0') {
        if begin.len() != end.len() {
            return Err(format!(
                "host range `[{range}]` must give begin and end with the same number of digits"
            ));
        }
        begin.len()
    } else {
        0
    };
    let (Ok(first), Ok(last)) = (begin.parse::<u64>(), end.parse::<u64>()) else {
        return Err(format!(
            "host range `[{range}]` needs two numbers or two single letters"
        ));
    };
    if first > last {
        return Err(format!("host range `[{range}]` must have begin <= end"));
    }
    Ok((first..=last)
        .step_by(step)
        .map(|number| format!("{number:0width$}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_table() {
        let cases: &[(&str, &[&str])] = &[
            ("web1", &["web1"]),
            (
                "web[01:03].example.com",
                &[
                    "web01.example.com",
                    "web02.example.com",
                    "web03.example.com",
                ],
            ),
            ("db-[a:c]", &["db-a", "db-b", "db-c"]),
            ("h[1:10:4]", &["h1", "h5", "h9"]),
            ("h[:2]", &["h0", "h1", "h2"]),
            ("h[8:11]", &["h8", "h9", "h10", "h11"]),
            ("n[y:B]", &["ny", "nz", "nA", "nB"]),
            ("r[1:2]c[a:b]", &["r1ca", "r1cb", "r2ca", "r2cb"]),
        ];
        for (pattern, expected) in cases {
            assert_eq!(expand(pattern).unwrap(), *expected, "pattern {pattern}");
        }
    }

    #[test]
    fn expand_errors() {
        let cases = [
            (
                "web[1:3",
                "unclosed `[` in host range `web[1:3`: write a range as `[begin:end]`",
            ),
            (
                "web[1]",
                "host range `[1]` must be `[begin:end]` or `[begin:end:step]` in `web[1]`",
            ),
            ("web[1:]", "host range `[1:]` has no end value in `web[1:]`"),
            (
                "web[01:100]",
                "host range `[01:100]` must give begin and end with the same number of digits in `web[01:100]`",
            ),
            ("web[c:a]", "host range `[c:a]` must have begin <= end in `web[c:a]`"),
            ("web[5:1]", "host range `[5:1]` must have begin <= end in `web[5:1]`"),
            (
                "web[1:x]",
                "host range `[1:x]` needs two numbers or two single letters in `web[1:x]`",
            ),
            (
                "web[1:3:0]",
                "host range `[1:3:0]` has an invalid step `0`: use a positive number in `web[1:3:0]`",
            ),
        ];
        for (pattern, message) in cases {
            assert_eq!(expand(pattern).unwrap_err(), message, "pattern {pattern}");
        }
    }

    #[test]
    fn split_port_table() {
        let cases: &[(&str, &str, Option<u16>)] = &[
            ("web1", "web1", None),
            ("web1:2222", "web1", Some(2222)),
            ("10.0.0.5:22", "10.0.0.5", Some(22)),
            ("web[1:3]:2200", "web[1:3]", Some(2200)),
            ("web[1:3]", "web[1:3]", None),
            ("fe80::1", "fe80::1", None),
            ("[fe80::1]:2222", "fe80::1", Some(2222)),
        ];
        for (pattern, host, port) in cases {
            assert_eq!(
                split_port(pattern).unwrap(),
                (host.to_string(), *port),
                "pattern {pattern}"
            );
        }
        assert_eq!(
            split_port("web1:70000").unwrap_err(),
            "invalid port `70000` in `web1:70000`: a port is a number from 1 to 65535"
        );
    }
}
