//! A reader and writer for OpenSSH `known_hosts` files.
//!
//! The known_hosts helpers of russh 0.65 match neither wildcard nor negated
//! patterns, ignore `@revoked` markers, fail on the first key that does not
//! parse and leave comment lines out of their line numbers. So this module
//! parses the format itself: plain and hashed (`|1|salt|hash`) host fields,
//! `[host]:port` for ports other than 22, markers, and several keys per host.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;

/// One key line of a known_hosts file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: PathBuf,
    /// The 1-based line number, for messages.
    pub line: usize,
    pub marker: Marker,
    hosts: String,
    pub key: PublicKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    /// `@revoked`: the key must never be accepted.
    Revoked,
    /// `@cert-authority`: a CA key, which this transport does not use.
    CertAuthority,
}

/// The outcome of looking a server key up in the known_hosts files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    /// No entry for this host contains this key or another key of its type.
    Unknown,
    /// An entry for this host contains a different key of the same type.
    Changed {
        file: PathBuf,
        line: usize,
    },
    Revoked {
        file: PathBuf,
        line: usize,
    },
}

/// Returns the host field OpenSSH writes and looks up: `host` on port 22, `[host]:port` otherwise.
pub fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Reads the entries of `files` in order. Missing files are skipped, and lines that do
/// not parse are skipped with a debug log, as OpenSSH does.
pub fn read_files(files: &[PathBuf]) -> io::Result<Vec<Entry>> {
    read_files_matching(files, None)
}

/// Reads the entries of `files` that [`check`] and [`known_algorithms`] use for
/// `pattern`: those whose host field names it, and every `@revoked` key. A session
/// keeps its entries as long as it lives, and one known_hosts file may list every
/// host of a large inventory. Reading all of them for every session would cost time
/// and memory in proportion to the square of the host count.
pub fn read_files_for(files: &[PathBuf], pattern: &str) -> io::Result<Vec<Entry>> {
    read_files_matching(files, Some(pattern))
}

fn read_files_matching(files: &[PathBuf], pattern: Option<&str>) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for file in files {
        match fs::read_to_string(file) {
            Ok(text) => entries.extend(parse_matching(file, &text, pattern)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(entries)
}

/// Parses the text of one known_hosts file.
pub fn parse(file: &Path, text: &str) -> Vec<Entry> {
    parse_matching(file, text, None)
}

/// Parses the lines of one known_hosts file that are `@revoked` or name `pattern`,
/// or every line when `pattern` is `None`. Other lines are skipped before their key
/// is decoded.
fn parse_matching(file: &Path, text: &str, pattern: Option<&str>) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }

        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            _ => Marker::None,
        };
        if marker != Marker::None {
            first = fields.next().unwrap_or_default();
        }
        if let Some(pattern) = pattern {
            if marker != Marker::Revoked && !hosts_match(first, pattern) {
                continue;
            }
        }
        let (Some(_key_type), Some(key_base64)) = (fields.next(), fields.next()) else {
            tracing::debug!(file = %file.display(), line = index + 1, "skipping a known_hosts line without a key");
            continue;
        };
        let key = match russh::keys::parse_public_key_base64(key_base64) {
            Ok(key) => key,
            Err(error) => {
                tracing::debug!(file = %file.display(), line = index + 1, %error, "skipping a known_hosts line with an invalid key");
                continue;
            }
        };

        entries.push(Entry {
            file: file.to_path_buf(),
            line: index + 1,
            marker,
            hosts: first.to_string(),
            key,
        });
    }
    entries
}

impl Entry {
    /// Tells whether this entry's host field names `pattern` (as built by [`host_pattern`]).
    pub fn matches(&self, pattern: &str) -> bool {
        hosts_match(&self.hosts, pattern)
    }
}

/// Tells whether the host field `hosts` of a known_hosts line names `pattern`.
fn hosts_match(hosts: &str, pattern: &str) -> bool {
    if let Some(hashed) = hosts.strip_prefix("|1|") {
        return hashed_matches(hashed, pattern);
    }

    let mut matched = false;
    for item in hosts.split(',') {
        if let Some(negated) = item.strip_prefix('!') {
            if glob_matches(negated, pattern) {
                return false;
            }
        } else if glob_matches(item, pattern) {
            matched = true;
        }
    }
    matched
}

/// Looks up `key` for the host field `pattern` among `entries`.
pub fn check(entries: &[Entry], pattern: &str, key: &PublicKey) -> Verdict {
    let for_host: Vec<&Entry> = entries
        .iter()
        .filter(|entry| entry.marker != Marker::CertAuthority && entry.matches(pattern))
        .collect();

    if let Some(revoked) = entries
        .iter()
        .find(|entry| entry.marker == Marker::Revoked && entry.key.key_data() == key.key_data())
    {
        return Verdict::Revoked {
            file: revoked.file.clone(),
            line: revoked.line,
        };
    }
    if for_host
        .iter()
        .any(|entry| entry.marker == Marker::None && entry.key.key_data() == key.key_data())
    {
        return Verdict::Known;
    }
    match for_host
        .iter()
        .find(|entry| entry.marker == Marker::None && entry.key.algorithm() == key.algorithm())
    {
        Some(conflict) => Verdict::Changed {
            file: conflict.file.clone(),
            line: conflict.line,
        },
        None => Verdict::Unknown,
    }
}

/// Returns the key types known for `pattern`, in file order, so the handshake can ask the
/// server for a key that can be verified.
pub fn known_algorithms(entries: &[Entry], pattern: &str) -> Vec<russh::keys::Algorithm> {
    let mut algorithms = Vec::new();
    for entry in entries {
        if entry.marker == Marker::None && entry.matches(pattern) {
            let algorithm = entry.key.algorithm();
            if !algorithms.contains(&algorithm) {
                algorithms.push(algorithm);
            }
        }
    }
    algorithms
}

/// Appends `key` for `pattern` to `file`, creating the file with mode 0600 and its folder
/// with mode 0700 when they are missing.
pub fn append(file: &Path, pattern: &str, key: &PublicKey) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    if let Some(parent) = file
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        if !parent.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
    }

    let mut bare = key.clone();
    bare.set_comment("");
    let encoded = bare
        .to_openssh()
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;

    let needs_newline = match fs::read(file) {
        Ok(existing) => !existing.is_empty() && !existing.ends_with(b"\n"),
        Err(_) => false,
    };
    let mut handle = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(file)?;
    let prefix = if needs_newline { "\n" } else { "" };
    writeln!(handle, "{prefix}{pattern} {}", encoded.trim_end())
}

/// Returns the key type and SHA256 fingerprint, as `ssh-keygen -l` shows them.
pub fn describe(key: &PublicKey) -> String {
    format!(
        "{} key with fingerprint {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

fn hashed_matches(hashed: &str, pattern: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (BASE64.decode(salt), BASE64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(pattern.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Matches OpenSSH host patterns, where `*` is any run of characters and `?` is one
/// character. Host names compare case-insensitively.
fn glob_matches(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();

    let (mut g, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && (glob[g] == '?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == '*' {
            backtrack = Some((g, t));
            g += 1;
        } else if let Some((star, matched)) = backtrack {
            g = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIFvqm9gmlvT69zRq5oGeYy+/d5vHOehoaffGD6WostLq";
    const ED25519_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIPiiM+VWmAprjm9+PnTG3gIXVNxU3hkpbJm+b3C8o5bb";
    const ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBO+BVLrzGv3FdpcKpjabZbOcFzy+W1eGeGP94+o617LjKCpo3m9Jt/fr5S0ysBPWBviS4XJ16haiNTa/NX4tQ1o=";

    fn key(base64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(base64).expect("test key parses")
    }

    /// Builds a hashed host field the way `ssh-keygen -H` does.
    fn hashed(salt: &[u8], pattern: &str) -> String {
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt).expect("any salt length");
        mac.update(pattern.as_bytes());
        let hash = mac.finalize().into_bytes();
        format!("|1|{}|{}", BASE64.encode(salt), BASE64.encode(hash))
    }

    #[test]
    fn host_pattern_brackets_non_default_port() {
        assert_eq!(host_pattern("example.org", 22), "example.org");
        assert_eq!(host_pattern("127.0.0.1", 2222), "[127.0.0.1]:2222");
    }

    #[test]
    fn check_cases() {
        let salt = b"0123456789abcdefghij";
        let text = format!(
            "# comment\n\
             \n\
             plain.example ssh-ed25519 {ED25519_A}\n\
             [plain.example]:2222 ssh-ed25519 {ED25519_B}\n\
             {} ssh-ed25519 {ED25519_A} hashed entry\n\
             *.wild.example,!bad.wild.example ssh-ed25519 {ED25519_A}\n\
             multi.example ssh-ed25519 {ED25519_A}\n\
             multi.example ecdsa-sha2-nistp256 {ECDSA}\n\
             garbage line\n\
             @revoked * ssh-ed25519 {ED25519_B}\n",
            hashed(salt, "hashed.example")
        );
        let entries = parse(Path::new("/kh"), &text);

        let changed_line_3 = Verdict::Changed {
            file: PathBuf::from("/kh"),
            line: 3,
        };
        let revoked = Verdict::Revoked {
            file: PathBuf::from("/kh"),
            line: 10,
        };
        let cases = [
            ("plain.example", ED25519_A, Verdict::Known),
            ("PLAIN.example", ED25519_A, Verdict::Known),
            ("plain.example", ECDSA, Verdict::Unknown),
            (
                "[plain.example]:2222",
                ED25519_A,
                Verdict::Changed {
                    file: PathBuf::from("/kh"),
                    line: 4,
                },
            ),
            ("[plain.example]:2222", ED25519_B, revoked.clone()),
            ("hashed.example", ED25519_A, Verdict::Known),
            ("other.example", ED25519_A, Verdict::Unknown),
            ("a.wild.example", ED25519_A, Verdict::Known),
            ("bad.wild.example", ED25519_A, Verdict::Unknown),
            ("multi.example", ECDSA, Verdict::Known),
            ("multi.example", ED25519_A, Verdict::Known),
        ];
        for (pattern, server_key, expected) in cases {
            assert_eq!(
                check(&entries, pattern, &key(server_key)),
                expected,
                "{pattern} with {server_key}"
            );
        }

        let without_revocation: Vec<Entry> = entries
            .iter()
            .filter(|entry| entry.marker != Marker::Revoked)
            .cloned()
            .collect();
        assert_eq!(
            check(&without_revocation, "plain.example", &key(ED25519_B)),
            changed_line_3
        );
    }

    #[test]
    fn read_files_for_keeps_host_and_revoked() {
        let salt = b"0123456789abcdefghij";
        let text = format!(
            "[127.0.0.1]:2201 ssh-ed25519 {ED25519_A}\n\
             [127.0.0.1]:2202 ssh-ed25519 {ED25519_B}\n\
             [127.0.0.1]:2202 ecdsa-sha2-nistp256 {ECDSA}\n\
             *:2202 ssh-ed25519 {ED25519_A}\n\
             @revoked other.example ssh-ed25519 {ED25519_B}\n\
             {} ssh-ed25519 {ED25519_A}\n\
             {} ssh-ed25519 {ED25519_A}\n",
            hashed(salt, "[127.0.0.1]:2201"),
            hashed(salt, "[127.0.0.1]:2202"),
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, &text).expect("write known_hosts");
        let all = read_files(std::slice::from_ref(&file)).expect("read all");

        let entries = read_files_for(&[file], "[127.0.0.1]:2202").expect("read for host");

        assert_eq!(all.len(), 7);
        let lines: Vec<usize> = entries.iter().map(|entry| entry.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 7]);
        for server_key in [ED25519_A, ED25519_B, ECDSA] {
            assert_eq!(
                check(&entries, "[127.0.0.1]:2202", &key(server_key)),
                check(&all, "[127.0.0.1]:2202", &key(server_key)),
                "{server_key}"
            );
        }
        assert_eq!(
            known_algorithms(&entries, "[127.0.0.1]:2202"),
            known_algorithms(&all, "[127.0.0.1]:2202")
        );
    }

    #[test]
    fn parse_skips_invalid_lines() {
        let text = format!("host-only\nhost ssh-ed25519 not-base64!\nok ssh-ed25519 {ED25519_A}\n");
        let entries = parse(Path::new("/kh"), &text);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].line, 3);
    }

    #[test]
    fn known_algorithms_in_file_order() {
        let text = format!(
            "multi.example ecdsa-sha2-nistp256 {ECDSA}\nmulti.example ssh-ed25519 {ED25519_A}\nother ssh-ed25519 {ED25519_B}\n"
        );
        let entries = parse(Path::new("/kh"), &text);
        let algorithms = known_algorithms(&entries, "multi.example");
        let names: Vec<&str> = algorithms.iter().map(|a| a.as_str()).collect();
        assert_eq!(names, ["ecdsa-sha2-nistp256", "ssh-ed25519"]);
    }

    #[test]
    fn append_creates_private_file_and_reads_back() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("ssh").join("known_hosts");
        append(&file, "[127.0.0.1]:2222", &key(ED25519_A)).expect("first append");
        append(&file, "other", &key(ED25519_B)).expect("second append");

        let file_mode = fs::metadata(&file).expect("file").permissions().mode() & 0o777;
        let dir_mode = fs::metadata(file.parent().expect("parent"))
            .expect("dir")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(file_mode, 0o600);
        assert_eq!(dir_mode, 0o700);

        let entries = read_files(std::slice::from_ref(&file)).expect("read back");
        assert_eq!(
            check(&entries, "[127.0.0.1]:2222", &key(ED25519_A)),
            Verdict::Known
        );
        assert_eq!(check(&entries, "other", &key(ED25519_B)), Verdict::Known);
    }

    #[test]
    fn glob_cases() {
        let cases = [
            ("*", "anything", true),
            ("web?", "web1", true),
            ("web?", "web10", false),
            ("*.example.org", "a.example.org", true),
            ("*.example.org", "example.org", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (glob, text, expected) in cases {
            assert_eq!(glob_matches(glob, text), expected, "{glob} vs {text}");
        }
    }
}
