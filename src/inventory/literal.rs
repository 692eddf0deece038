//! Python literals, as `ast.literal_eval` reads INI inventory values.
//!
//! Ansible's INI plugin passes every value through `ast.literal_eval` and keeps
//! the text as a string when that fails, so `port=22` is an integer, `ok=True`
//! a boolean, `name="a b"` a string and `ip=10.0.0.5` the string `10.0.0.5`.

use serde_json::{Map, Number, Value};

/// Parses `text` as one Python literal: numbers, strings, `True`, `False`, `None`,
/// lists, tuples, sets (as JSON arrays) and dicts. Returns `None` where Python
/// would raise, so that the caller keeps the text as a string.
pub(super) fn parse(text: &str) -> Option<Value> {
    let mut parser = Parser {
        chars: text.trim_start_matches([' ', '\t']).chars().collect(),
        at: 0,
    };
    let value = parser.expression()?;
    parser.skip_space();
    if parser.at < parser.chars.len() {
        return None;
    }
    Some(value)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    /// Skips whitespace and a `#` comment, which Python's tokenizer drops.
    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.at += 1;
            } else if c == '#' {
                self.at = self.chars.len();
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, expected: char) -> bool {
        self.skip_space();
        if self.peek() == Some(expected) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expression(&mut self) -> Option<Value> {
        self.skip_space();
        match self.peek()? {
            '+' | '-' => {
                let negative = self.peek() == Some('-');
                self.at += 1;
                let value = self.expression()?;
                negate(value, negative)
            }
            '[' => {
                self.at += 1;
                Some(Value::Array(self.items(']')?))
            }
            '(' => {
                self.at += 1;
                let start = self.at;
                let first = self.items(')')?;
                // `(x)` is a parenthesized value, `(x,)` and `()` are tuples.
                let text: String = self.chars[start..self.at].iter().collect();
                let trailing_comma = text.trim_end_matches(')').trim_end().ends_with(',');
                if first.len() == 1 && !trailing_comma {
                    first.into_iter().next()
                } else {
                    Some(Value::Array(first))
                }
            }
            '{' => {
                self.at += 1;
                self.dict_or_set()
            }
            '\'' | '"' => self.strings(),
            c if c.is_ascii_digit() || c == '.' => self.number(),
            c if c.is_alphabetic() || c == '_' => {
                let word = self.word();
                match word.as_str() {
                    "True" => Some(Value::Bool(true)),
                    "False" => Some(Value::Bool(false)),
                    "None" => Some(Value::Null),
                    "r" | "R" | "u" | "U" | "b" | "B" | "rb" | "br" | "Rb" | "bR" | "RB" | "BR"
                    | "rB" | "Br" => {
                        if matches!(self.peek(), Some('\'' | '"')) {
                            let raw = word.to_ascii_lowercase().contains('r');
                            self.string(raw).map(Value::String)
                        } else {
                            None
                        }
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn word(&mut self) -> String {
        let start = self.at;
        while matches!(self.peek(), Some(c) if c.is_alphanumeric() || c == '_') {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn items(&mut self, close: char) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.expression()?);
            if self.eat(close) {
                return Some(items);
            }
            if !self.eat(',') {
                return None;
            }
        }
    }

    fn dict_or_set(&mut self) -> Option<Value> {
        if self.eat('}') {
            return Some(Value::Object(Map::new()));
        }
        let first = self.expression()?;
        if !self.eat(':') {
            let mut items = vec![first];
            if self.eat('}') {
                return Some(Value::Array(items));
            }
            if !self.eat(',') {
                return None;
            }
            items.extend(self.items('}')?);
            return Some(Value::Array(items));
        }

        let mut map = Map::new();
        let mut key = first;
        loop {
            let value = self.expression()?;
            map.insert(key_text(&key)?, value);
            if self.eat('}') {
                return Some(Value::Object(map));
            }
            if !self.eat(',') {
                return None;
            }
            if self.eat('}') {
                return Some(Value::Object(map));
            }
            key = self.expression()?;
            if !self.eat(':') {
                return None;
            }
        }
    }

    /// Reads one or more adjacent string literals, which Python concatenates.
    fn strings(&mut self) -> Option<Value> {
        let mut text = self.string(false)?;
        loop {
            self.skip_space();
            match self.peek() {
                Some('\'' | '"') => text.push_str(&self.string(false)?),
                _ => return Some(Value::String(text)),
            }
        }
    }

    fn string(&mut self, raw: bool) -> Option<String> {
        let quote = self.peek()?;
        let triple = self.chars.get(self.at..self.at + 3) == Some(&[quote, quote, quote]);
        self.at += if triple { 3 } else { 1 };
        let mut text = String::new();
        loop {
            let c = self.peek()?;
            if c == quote {
                if !triple {
                    self.at += 1;
                    return Some(text);
                }
                if self.chars.get(self.at..self.at + 3) == Some(&[quote, quote, quote]) {
                    self.at += 3;
                    return Some(text);
                }
            }
            if c == '\n' && !triple {
                return None;
            }
            self.at += 1;
            if c != '\\' {
                text.push(c);
                continue;
            }
            let escaped = self.peek()?;
            self.at += 1;
            if raw {
                text.push('\\');
                text.push(escaped);
                continue;
            }
            match escaped {
                'n' => text.push('\n'),
                't' => text.push('\t'),
                'r' => text.push('\r'),
                '0' => text.push('\0'),
                'a' => text.push('\x07'),
                'b' => text.push('\x08'),
                'f' => text.push('\x0c'),
                'v' => text.push('\x0b'),
                '\\' | '\'' | '"' => text.push(escaped),
                '\n' => {}
                'x' => text.push(self.hex_char(2)?),
                'u' => text.push(self.hex_char(4)?),
                'U' => text.push(self.hex_char(8)?),
                other => {
                    text.push('\\');
                    text.push(other);
                }
            }
        }
    }

    fn hex_char(&mut self, digits: usize) -> Option<char> {
        let hex: String = self.chars.get(self.at..self.at + digits)?.iter().collect();
        self.at += digits;
        char::from_u32(u32::from_str_radix(&hex, 16).ok()?)
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        while matches!(self.peek(), Some(c) if c.is_alphanumeric() || c == '_' || c == '.') {
            let previous = self.chars[self.at];
            self.at += 1;
            // An exponent sign belongs to the number: `1e-3`.
            if matches!(previous, 'e' | 'E') && matches!(self.peek(), Some('+' | '-')) {
                let is_hex = self.chars[start..self.at]
                    .iter()
                    .any(|c| matches!(c, 'x' | 'X'));
                if !is_hex {
                    self.at += 1;
                }
            }
        }
        let text: String = self.chars[start..self.at].iter().collect();
        python_number(&text)
    }
}

fn negate(value: Value, negative: bool) -> Option<Value> {
    let Value::Number(number) = value else {
        return None;
    };
    if !negative {
        return Some(Value::Number(number));
    }
    if let Some(int) = number.as_i64() {
        return Some(Value::from(int.checked_neg()?));
    }
    Number::from_f64(-number.as_f64()?).map(Value::Number)
}

fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(true) => Some("True".to_string()),
        Value::Bool(false) => Some("False".to_string()),
        Value::Null => Some("None".to_string()),
        _ => None,
    }
}

/// Parses a Python number token: decimal integers without leading zeros, `0x`, `0o`
/// and `0b` integers, and floats, all with optional `_` between digits.
fn python_number(text: &str) -> Option<Value> {
    if text.starts_with('_') || text.ends_with('_') || text.contains("__") {
        return None;
    }
    let digits = text.replace('_', "");
    let lower = digits.to_ascii_lowercase();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return i64::from_str_radix(rest, radix).ok().map(Value::from);
        }
    }
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        let leading_zero = digits.len() > 1 && digits.starts_with('0');
        if leading_zero && digits.bytes().any(|b| b != b'0') {
            return None;
        }
        return digits.parse::<i64>().ok().map(Value::from);
    }
    let float_shape = lower
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
        && lower.bytes().filter(|b| *b == b'.').count() <= 1;
    if !float_shape {
        return None;
    }
    let float: f64 = lower.parse().ok()?;
    Number::from_f64(float).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literal_table() {
        let cases: Vec<(&str, Option<Value>)> = vec![
            ("22", Some(json!(22))),
            ("-1", Some(json!(-1))),
            ("1_000", Some(json!(1000))),
            ("0x1f", Some(json!(31))),
            ("0o17", Some(json!(15))),
            ("00", Some(json!(0))),
            ("0644", None),
            ("1.5", Some(json!(1.5))),
            ("1e3", Some(json!(1000.0))),
            ("2.5e-1", Some(json!(0.25))),
            ("True", Some(json!(true))),
            ("False", Some(json!(false))),
            ("None", Some(Value::Null)),
            ("yes", None),
            ("true", None),
            ("10.0.0.5", None),
            ("/usr/bin/python3", None),
            ("'quoted'", Some(json!("quoted"))),
            ("\"a b\"", Some(json!("a b"))),
            ("'a' 'b'", Some(json!("ab"))),
            ("'tab\\there'", Some(json!("tab\there"))),
            ("r'\\d+'", Some(json!("\\d+"))),
            ("'unterminated", None),
            ("[1, 'two', None]", Some(json!([1, "two", null]))),
            ("[1, 2,]", Some(json!([1, 2]))),
            ("(1, 2)", Some(json!([1, 2]))),
            ("(1)", Some(json!(1))),
            ("(1,)", Some(json!([1]))),
            ("{'a': 1, 'b': [True]}", Some(json!({"a": 1, "b": [true]}))),
            ("{}", Some(json!({}))),
            ("{1, 2}", Some(json!([1, 2]))),
            ("5 # five", Some(json!(5))),
            ("hello # world", None),
            ("1 2", None),
            ("1abc", None),
            ("  7", Some(json!(7))),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), expected, "literal {text:?}");
        }
    }
}
