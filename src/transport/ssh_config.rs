//! Merges [`ConnectOptions`] with the matching `~/.ssh/config` entries into the
//! settings one SSH connection uses. Options set in `ConnectOptions` (inventory
//! variables and flags) win over the ssh config.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2_config::{ParseRule, SshConfig};

use super::{ConnectOptions, TransportError};

/// Used when neither the options nor the ssh config set `ConnectTimeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings for one SSH hop, after merging.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Identity files from `ConnectOptions`, tried before the agent.
    pub explicit_identities: Vec<PathBuf>,
    /// `IdentityFile`s from the ssh config, then the default key files, tried after the agent.
    pub config_identities: Vec<PathBuf>,
    pub known_hosts_files: Vec<PathBuf>,
    pub jumps: Vec<Jump>,
    pub connect_timeout: Duration,
    /// `None` disables keepalives.
    pub keepalive_interval: Option<Duration>,
}

/// One `ProxyJump` hop: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Reads the ssh config named in `options` (or `~/.ssh/config` when it exists).
pub fn load(options: &ConnectOptions) -> Result<Option<SshConfig>, TransportError> {
    let path = match &options.ssh_config {
        Some(path) => path.clone(),
        None => match dirs::home_dir() {
            Some(home) if home.join(".ssh/config").is_file() => home.join(".ssh/config"),
            _ => return Ok(None),
        },
    };
    parse_file(&path).map(Some)
}

fn parse_file(path: &Path) -> Result<SshConfig, TransportError> {
    let file = File::open(path).map_err(|error| {
        TransportError::Config(format!(
            "cannot read the ssh config `{}`: {error}",
            path.display()
        ))
    })?;
    let mut config = SshConfig::default();
    if let Some(home) = dirs::home_dir() {
        config = config.home_dir(home);
    }
    config
        .parse(
            &mut BufReader::new(file),
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|error| {
            TransportError::Config(format!(
                "invalid ssh config `{}`: {error}; fix the file or pass another with `ssh_config`",
                path.display()
            ))
        })
}

/// Merges `options` with the ssh config entries for `options.host`.
pub fn resolve(
    options: &ConnectOptions,
    config: Option<&SshConfig>,
) -> Result<Target, TransportError> {
    let params = config.map(|config| config.query(&options.host));
    let params = params.as_ref();
    let home = dirs::home_dir();

    let host = params
        .and_then(|params| params.host_name.clone())
        .unwrap_or_else(|| options.host.clone());
    let port = options
        .port
        .or_else(|| params.and_then(|params| params.port))
        .unwrap_or(22);
    let user = match options
        .user
        .clone()
        .or_else(|| params.and_then(|params| params.user.clone()))
    {
        Some(user) => user,
        None => local_user().ok_or_else(|| {
            TransportError::Config(format!(
                "no user to connect to `{}` as; set `ansible_user` or `User` in the ssh config",
                options.name
            ))
        })?,
    };

    let mut config_identities: Vec<PathBuf> = params
        .and_then(|params| params.identity_file.clone())
        .unwrap_or_default();
    if let Some(home) = &home {
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let path = home.join(".ssh").join(name);
            if path.is_file() {
                config_identities.push(path);
            }
        }
    }
    config_identities.retain(|path| !options.identity_files.contains(path));
    config_identities.dedup();

    let mut known_hosts_files = options.known_hosts_files.clone();
    if let Some(files) =
        params.and_then(|params| params.unsupported_fields.get("userknownhostsfile"))
    {
        for file in files {
            known_hosts_files.push(expand_tilde(file, home.as_deref()));
        }
    }
    if let Some(home) = &home {
        known_hosts_files.push(home.join(".ssh/known_hosts"));
    }
    known_hosts_files.dedup();

    let jump_spec = match &options.proxy_jump {
        Some(spec) => Some(spec.clone()),
        None => params
            .and_then(|params| params.proxy_jump.as_ref())
            .map(|hops| hops.join(",")),
    };
    let jumps = match jump_spec {
        Some(spec) => parse_jumps(&spec)?,
        None => Vec::new(),
    };

    // A zero duration in `ConnectOptions` means "not set", so that the ssh config applies.
    let connect_timeout = non_zero(options.connect_timeout)
        .or_else(|| params.and_then(|params| params.connect_timeout))
        .and_then(non_zero)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let keepalive_interval = non_zero(options.keepalive_interval)
        .or_else(|| params.and_then(|params| params.server_alive_interval))
        .and_then(non_zero);

    Ok(Target {
        host,
        port,
        user,
        explicit_identities: options.identity_files.clone(),
        config_identities,
        known_hosts_files,
        jumps,
        connect_timeout,
        keepalive_interval,
    })
}

/// Parses a `ProxyJump` value: comma-separated `[user@]host[:port]` hops, or `none`.
pub fn parse_jumps(spec: &str) -> Result<Vec<Jump>, TransportError> {
    let spec = spec.trim();
    if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }

    let mut jumps = Vec::new();
    for hop in spec.split(',').map(str::trim) {
        let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
        let (user, rest) = match hop.rsplit_once('@') {
            Some((user, rest)) => (Some(user.to_string()), rest),
            None => (None, hop),
        };
        let (host, port) = split_host_port(rest).ok_or_else(|| {
            TransportError::Config(format!(
                "invalid ProxyJump hop `{hop}`; write it as `[user@]host[:port]`"
            ))
        })?;
        jumps.push(Jump { user, host, port });
    }
    Ok(jumps)
}

fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let (host, rest) = bracketed.split_once(']')?;
        let port = match rest.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if rest.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse().ok()?)),
        None => (text, None),
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port))
}

fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

fn non_zero(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

fn local_user() -> Option<String> {
    for variable in ["USER", "LOGNAME"] {
        if let Ok(user) = std::env::var(variable) {
            if !user.is_empty() {
                return Some(user);
            }
        }
    }

    // SAFETY: `passwd` is a C struct of integers and pointers, for which all zeros is a
    // valid value, and getpwuid_r overwrites it before it is read.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16384];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes the entry and its strings into `entry` and `buffer`, which
    // outlive every use of the pointers below, and sets `result` to null on failure.
    let status = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    if status != 0 || result.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: `pw_name` points into `buffer` and is NUL-terminated by getpwuid_r.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{ConnectionKind, HostKeyPolicy};

    fn options(host: &str) -> ConnectOptions {
        ConnectOptions {
            name: host.to_string(),
            kind: ConnectionKind::Ssh,
            host: host.to_string(),
            port: None,
            user: None,
            identity_files: Vec::new(),
            password: None,
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts_files: Vec::new(),
            proxy_jump: None,
            ssh_config: None,
            connect_timeout: Duration::ZERO,
            keepalive_interval: Duration::ZERO,
        }
    }

    fn config(text: &str) -> SshConfig {
        SshConfig::default()
            .home_dir("/home/tester")
            .parse(
                &mut text.as_bytes(),
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
            .expect("test config parses")
    }

    const CONFIG: &str = "\
Host web
    HostName 10.0.0.5
    Port 2200
    User deploy
    IdentityFile ~/.ssh/web_key
    ProxyJump jumper@bastion:2022
    UserKnownHostsFile ~/.ssh/web_known_hosts
    ConnectTimeout 7
    ServerAliveInterval 15
";

    #[test]
    fn resolve_takes_ssh_config_values() {
        let config = config(CONFIG);
        let target = resolve(&options("web"), Some(&config)).expect("resolves");
        assert_eq!(target.host, "10.0.0.5");
        assert_eq!(target.port, 2200);
        assert_eq!(target.user, "deploy");
        assert_eq!(
            target.config_identities.first(),
            Some(&PathBuf::from("/home/tester/.ssh/web_key"))
        );
        assert_eq!(
            target.jumps,
            vec![Jump {
                user: Some("jumper".into()),
                host: "bastion".into(),
                port: Some(2022),
            }]
        );
        assert_eq!(
            target.known_hosts_files.first(),
            Some(&dirs::home_dir().expect("home").join(".ssh/web_known_hosts"))
        );
        assert_eq!(target.connect_timeout, Duration::from_secs(7));
        assert_eq!(target.keepalive_interval, Some(Duration::from_secs(15)));
    }

    #[test]
    fn resolve_explicit_options_win() {
        let config = config(CONFIG);
        let mut explicit = options("web");
        explicit.port = Some(22);
        explicit.user = Some("admin".into());
        explicit.identity_files = vec![PathBuf::from("/keys/admin")];
        explicit.known_hosts_files = vec![PathBuf::from("/kh/first")];
        explicit.proxy_jump = Some("none".into());
        explicit.connect_timeout = Duration::from_secs(3);
        explicit.keepalive_interval = Duration::from_secs(4);

        let target = resolve(&explicit, Some(&config)).expect("resolves");
        assert_eq!(target.host, "10.0.0.5");
        assert_eq!(target.port, 22);
        assert_eq!(target.user, "admin");
        assert_eq!(
            target.explicit_identities,
            vec![PathBuf::from("/keys/admin")]
        );
        assert_eq!(target.known_hosts_files[0], PathBuf::from("/kh/first"));
        assert!(target.jumps.is_empty());
        assert_eq!(target.connect_timeout, Duration::from_secs(3));
        assert_eq!(target.keepalive_interval, Some(Duration::from_secs(4)));
    }

    #[test]
    fn resolve_without_config_uses_defaults() {
        let mut plain = options("db.example");
        plain.user = Some("root".into());
        let target = resolve(&plain, None).expect("resolves");
        assert_eq!(target.host, "db.example");
        assert_eq!(target.port, 22);
        assert_eq!(target.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(target.keepalive_interval, None);
    }

    #[test]
    fn parse_jumps_cases() {
        let jump = |user: Option<&str>, host: &str, port: Option<u16>| Jump {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        };
        let cases = [
            ("bastion", vec![jump(None, "bastion", None)]),
            (
                "ops@bastion:2022",
                vec![jump(Some("ops"), "bastion", Some(2022))],
            ),
            ("[::1]:2022", vec![jump(None, "::1", Some(2022))]),
            (
                "a@one, two:23",
                vec![jump(Some("a"), "one", None), jump(None, "two", Some(23))],
            ),
            ("none", vec![]),
        ];
        for (spec, expected) in cases {
            assert_eq!(parse_jumps(spec).expect(spec), expected, "{spec}");
        }
        for invalid in ["host:notaport", "user@", "[::1"] {
            assert!(
                parse_jumps(invalid).is_err(),
                "{invalid} should be rejected"
            );
        }
    }
}
