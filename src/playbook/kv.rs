//! Splitting of `key=value` argument strings, as Ansible's `parse_kv` does.
//!
//! `apt: name=nginx state=present` and `command: ls -l chdir=/tmp` are split into
//! tokens with shell-like quoting. Jinja blocks (`{{ a b }}`) stay in one token,
//! so a template with spaces is not cut apart.

/// One whitespace-separated token of an argument string.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    /// The token as written, quotes and escapes included.
    pub text: String,
    /// Character offset of the token in the argument string.
    pub offset: usize,
}

/// An argument string split into `key=value` pairs and the remaining free-form text.
#[derive(Debug, Default, PartialEq)]
pub(super) struct KeyValues {
    /// `(key, value, offset of the key in the string)`, in order of appearance.
    pub pairs: Vec<(String, String, usize)>,
    /// Tokens that are not split out, joined with single spaces.
    pub raw: Option<String>,
    /// Offset of the first raw token.
    pub raw_offset: usize,
}

/// Splits `text` into tokens on unquoted whitespace outside Jinja blocks.
pub(super) fn split_args(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut jinja_depth = 0usize;
    let mut i = 0;

    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();

        if c == '\\' && quote != Some('\'') {
            if current.is_empty() {
                start = i;
            }
            current.push(c);
            if let Some(escaped) = next {
                current.push(escaped);
                i += 1;
            }
            i += 1;
            continue;
        }

        if quote.is_none() && c == '{' && matches!(next, Some('{' | '%' | '#')) {
            jinja_depth += 1;
        } else if jinja_depth > 0 && matches!(c, '}' | '%' | '#') && next == Some('}') {
            jinja_depth -= 1;
            if current.is_empty() {
                start = i;
            }
            current.push(c);
            current.push('}');
            i += 2;
            continue;
        }

        if jinja_depth == 0 {
            match quote {
                Some(q) if c == q => quote = None,
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_whitespace() => {
                    if !current.is_empty() {
                        tokens.push(Token {
                            text: std::mem::take(&mut current),
                            offset: start,
                        });
                    }
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }

        if current.is_empty() {
            start = i;
        }
        current.push(c);
        i += 1;
    }

    if !current.is_empty() {
        tokens.push(Token {
            text: current,
            offset: start,
        });
    }
    tokens
}

/// Splits an argument string into `key=value` pairs and free-form text.
///
/// With `split_key` returning false for a key, a `key=value` token stays in the
/// free-form text, which is how `command: echo a=b` keeps `a=b` for the command.
/// The free-form text keeps its original spacing and newlines, so a multi-line
/// `shell: |` script runs as written.
pub(super) fn parse_kv(text: &str, split_key: impl Fn(&str) -> bool) -> KeyValues {
    let chars: Vec<char> = text.chars().collect();
    let mut result = KeyValues::default();
    let mut raw = String::new();
    let mut cursor = 0;

    for token in split_args(text) {
        let gap: String = chars[cursor..token.offset].iter().collect();
        cursor = token.offset + token.text.chars().count();

        if let Some((key, value)) = split_pair(&token.text) {
            if split_key(&key) {
                result.pairs.push((key, value, token.offset));
                // The spaces before a removed pair go with it, but a line break stays.
                if gap.contains('\n') {
                    raw.push_str(&gap);
                }
                continue;
            }
        }
        if raw.trim().is_empty() {
            result.raw_offset = token.offset;
        }
        raw.push_str(&gap);
        if find_unescaped_equals(&token.text).is_none() {
            raw.push_str(&token.text.replace("\\=", "="));
        } else {
            raw.push_str(&token.text);
        }
    }

    let trimmed = raw.trim();
    if !trimmed.is_empty() {
        result.raw = Some(trimmed.to_string());
    }
    result
}

/// Splits a `key=value` token whose key is a plain name, unquoting and decoding the value.
fn split_pair(token: &str) -> Option<(String, String)> {
    let position = find_unescaped_equals(token)?;
    let key = token[..position].trim();
    let valid_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if !valid_key {
        return None;
    }
    let value = unquote(token[position + 1..].trim());
    Some((key.to_string(), decode_escapes(&value)))
}

/// Returns the byte position of the first `=` not preceded by a backslash.
fn find_unescaped_equals(token: &str) -> Option<usize> {
    let bytes = token.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b'=' && (i == 0 || bytes[i - 1] != b'\\'))
}

/// Removes one pair of matching surrounding quotes.
fn unquote(value: &str) -> String {
    let mut chars = value.chars();
    match (chars.next(), value.chars().last()) {
        (Some(first), Some(last))
            if value.chars().count() >= 2 && first == last && (first == '"' || first == '\'') =>
        {
            value[1..value.len() - 1].to_string()
        }
        _ => value.to_string(),
    }
}

/// Decodes `\n`, `\t`, `\r` and escaped quotes, backslashes, spaces and `=` in values.
///
/// NOTE: Ansible decodes every Python string escape here (`\u00e9`, `\x41`), but
/// this keeps other escapes as written.
fn decode_escapes(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other @ ('\\' | '"' | '\'' | '=' | ' ')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &KeyValues) -> Vec<(&str, &str)> {
        kv.pairs
            .iter()
            .map(|(k, v, _)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Input, expected pairs, expected free-form text.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);

    #[test]
    fn parse_kv_cases() {
        let cases: &[Case] = &[
            (
                "name=nginx state=present",
                &[("name", "nginx"), ("state", "present")],
                None,
            ),
            (
                "dest='/tmp/a b' mode=0644",
                &[("dest", "/tmp/a b"), ("mode", "0644")],
                None,
            ),
            (r#"line="say \"hi\"""#, &[("line", r#"say "hi""#)], None),
            (
                "msg={{ a ~ ' ' ~ b }} x=1",
                &[("msg", "{{ a ~ ' ' ~ b }}"), ("x", "1")],
                None,
            ),
            ("path=a\\=b", &[("path", "a=b")], None),
            ("text=a\\nb", &[("text", "a\nb")], None),
            ("just words", &[], Some("just words")),
            ("", &[], None),
        ];
        for (input, expected_pairs, expected_raw) in cases {
            let kv = parse_kv(input, |_| true);
            assert_eq!(pairs(&kv), *expected_pairs, "pairs of {input:?}");
            assert_eq!(kv.raw.as_deref(), *expected_raw, "raw of {input:?}");
        }
    }

    #[test]
    fn parse_kv_free_form_keeps_other_keys() {
        let kv = parse_kv("echo a=b 'c d' chdir=/srv creates=/x", |key| {
            matches!(key, "chdir" | "creates")
        });
        assert_eq!(pairs(&kv), vec![("chdir", "/srv"), ("creates", "/x")]);
        assert_eq!(kv.raw.as_deref(), Some("echo a=b 'c d'"));
        assert_eq!(kv.raw_offset, 0);
    }

    #[test]
    fn parse_kv_keeps_script_layout() {
        let script = "chdir=/srv\nif true; then\n  echo  'a  b'\nfi\n";
        let kv = parse_kv(script, |key| key == "chdir");
        assert_eq!(pairs(&kv), vec![("chdir", "/srv")]);
        assert_eq!(kv.raw.as_deref(), Some("if true; then\n  echo  'a  b'\nfi"));
        assert_eq!(kv.raw_offset, 11);
    }

    #[test]
    fn parse_kv_removes_pair_between_words() {
        let kv = parse_kv("ls chdir=/x -l", |key| key == "chdir");
        assert_eq!(kv.raw.as_deref(), Some("ls -l"));
    }

    #[test]
    fn split_args_offsets() {
        let tokens = split_args("  a=1  b='x y'");
        assert_eq!(
            tokens,
            vec![
                Token {
                    text: "a=1".into(),
                    offset: 2
                },
                Token {
                    text: "b='x y'".into(),
                    offset: 7
                },
            ]
        );
    }
}
