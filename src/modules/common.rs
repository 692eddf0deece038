//! Shell snippets shared by modules: quoting, probing paths, atomic file writes.

/// Quotes `word` for a POSIX shell. Every value placed in a remote script goes through here.
pub fn quote(word: &str) -> String {
    let bytes: Vec<u8> = shell_quote::Sh::quote_vec(word);
    String::from_utf8(bytes).unwrap_or_else(|_| format!("'{}'", word.replace('\'', r"'\''")))
}

/// Owner, group and mode to set on a written file; `None` leaves that attribute alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileAttrs {
    pub owner: Option<String>,
    pub group: Option<String>,
    /// An octal (`0644`) or symbolic (`u=rw,g=r,o=r`) mode, as `chmod` takes it.
    pub mode: Option<String>,
}

/// Returns a script that writes `content` to `path` atomically.
///
/// The content travels base64-encoded inside the script, so one round trip carries
/// both. It goes to a temporary file in the target folder (so the rename stays on
/// one filesystem), gets its owner and mode, is checked by `validate` (with `%s`
/// replaced by the temporary path) when given, and only then replaces `path`. With
/// `backup`, the old file is copied to `path.<epoch>~` first and its name printed on
/// the line `backup=PATH`. A failed validation removes the temporary file and exits
/// with status 3 leaving `path` untouched.
pub fn atomic_write_script(
    path: &str,
    content: &[u8],
    attrs: &FileAttrs,
    validate: Option<&str>,
    backup: bool,
) -> String {
    use base64::Engine as _;

    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    let mut lines = base64_lines(&encoded);
    lines.push('\n');
    let target = quote(path);
    let mut script = String::new();
    script.push_str("set -e\n");
    script.push_str(&format!("vf_target={target}\n"));
    script.push_str("vf_dir=$(dirname -- \"$vf_target\")\n");
    script.push_str("vf_tmp=$(mktemp \"$vf_dir/.vpsforge.XXXXXXXX\")\n");
    script.push_str("trap 'rm -f \"$vf_tmp\"' EXIT\n");
    script.push_str("base64 -d > \"$vf_tmp\" <<'VPSFORGE_CONTENT_END'\n");
    script.push_str(&lines);
    script.push_str("VPSFORGE_CONTENT_END\n");
    // Keep the current attributes of an existing file unless the task sets them.
    script.push_str("if [ -e \"$vf_target\" ]; then chown --reference=\"$vf_target\" \"$vf_tmp\" 2>/dev/null || true; chmod --reference=\"$vf_target\" \"$vf_tmp\"; else chmod 0644 \"$vf_tmp\"; fi\n");
    if let Some(owner) = &attrs.owner {
        script.push_str(&format!("chown {} \"$vf_tmp\"\n", quote(owner)));
    }
    if let Some(group) = &attrs.group {
        script.push_str(&format!("chgrp {} \"$vf_tmp\"\n", quote(group)));
    }
    if let Some(mode) = &attrs.mode {
        script.push_str(&format!("chmod {} \"$vf_tmp\"\n", quote(mode)));
    }
    if let Some(command) = validate {
        let command = command.replace("%s", "\"$vf_tmp\"");
        script.push_str(&format!(
            "if ! ( {command} ) >&2; then echo 'validation command failed, the file was not changed' >&2; exit 3; fi\n"
        ));
    }
    if backup {
        script.push_str("if [ -f \"$vf_target\" ]; then vf_backup=\"$vf_target.$(date +%s)~\"; cp -p -- \"$vf_target\" \"$vf_backup\"; echo \"backup=$vf_backup\"; fi\n");
    }
    script.push_str("mv -f -- \"$vf_tmp\" \"$vf_target\"\n");
    script.push_str("trap - EXIT\n");
    script
}

fn base64_lines(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 + 1);
    for (i, ch) in encoded.chars().enumerate() {
        if i > 0 && i % 76 == 0 {
            out.push('\n');
        }
        out.push(ch);
    }
    out
}

/// Parses `key=value` lines, as probe scripts print them. Later keys win; other lines are ignored.
pub fn parse_key_values(output: &str) -> std::collections::BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.to_string()))
        .collect()
}

/// Splits probe output into sections that start with a line `==> NAME <==` (as `tail`
/// prints them), so one probe script can report several things.
pub fn split_sections(output: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in output.split_inclusive('\n') {
        let trimmed = line.trim_end_matches('\n');
        if let Some(name) = trimmed
            .strip_prefix("==> ")
            .and_then(|rest| rest.strip_suffix(" <=="))
        {
            sections.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
        }
    }
    sections
}

/// Returns a shell line that prints the `==> NAME <==` header of a section.
pub fn section_header(name: &str) -> String {
    format!("printf '%s\\n' {}\n", quote(&format!("==> {name} <==")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_handles_specials() {
        for word in [
            "plain",
            "with space",
            "it's",
            "new\nline",
            "$HOME",
            "",
            "a\"b",
            "`x`",
        ] {
            let script = format!("printf %s {}", quote(word));
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8(output.stdout).unwrap(),
                word,
                "word {word:?}"
            );
        }
    }

    #[test]
    fn sections_round_trip_through_sh() {
        let script = format!(
            "{}echo one\n{}printf 'two\\nthree\\n'\n",
            section_header("a"),
            section_header("b c")
        );
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let sections = split_sections(&String::from_utf8(output.stdout).unwrap());
        assert_eq!(
            sections,
            vec![
                ("a".to_string(), "one\n".to_string()),
                ("b c".to_string(), "two\nthree\n".to_string())
            ]
        );
    }

    #[test]
    fn key_values_keep_equals_in_value() {
        let map = parse_key_values("a=1\nb=x=y\nnoise\n");
        assert_eq!(map.get("a").map(String::as_str), Some("1"));
        assert_eq!(map.get("b").map(String::as_str), Some("x=y"));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn atomic_write_creates_file_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a file's name");
        let attrs = FileAttrs {
            mode: Some("0600".into()),
            ..FileAttrs::default()
        };
        let script = atomic_write_script(
            path.to_str().unwrap(),
            b"hello\nworld\n",
            &attrs,
            None,
            false,
        );
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(&path).unwrap(), b"hello\nworld\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file left behind"
        );
    }

    #[test]
    fn atomic_write_keeps_old_file_when_validation_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf");
        std::fs::write(&path, "old\n").unwrap();
        let script = atomic_write_script(
            path.to_str().unwrap(),
            b"new\n",
            &FileAttrs::default(),
            Some("grep -q old %s"),
            false,
        );
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file left behind"
        );
    }
}
