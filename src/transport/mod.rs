//! Transport: the only way the rest of vpsforge reaches a host.
//!
//! A [`Connection`] is opened once per host and reused for the whole run. Modules
//! never build commands for it directly: the executor hands it whole scripts,
//! which run under `sh` with the script on standard input, so the remote command
//! line is fixed and only the script needs quoting.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::modules::ExecOutput;
use crate::secret::Secret;

/// Where and how to connect, after inventory variables and `~/.ssh/config` are merged.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The inventory name, used in messages.
    pub name: String,
    /// `ansible_connection`: `ssh` (default) or `local`.
    pub kind: ConnectionKind,
    /// `ansible_host`, or the inventory name.
    pub host: String,
    /// `ansible_port`; `None` takes the ssh config's `Port`, then 22.
    pub port: Option<u16>,
    /// `ansible_user` or `-u`; `None` takes the ssh config's `User`, then the local user.
    pub user: Option<String>,
    /// `ansible_ssh_private_key_file`, tried before the ssh config's `IdentityFile`s.
    pub identity_files: Vec<PathBuf>,
    pub password: Option<Secret>,
    pub host_key_policy: HostKeyPolicy,
    /// Extra known_hosts files, read before the defaults (`~/.ssh/known_hosts` and the
    /// ssh config's `UserKnownHostsFile`).
    pub known_hosts_files: Vec<PathBuf>,
    /// `ProxyJump` from the inventory (`ansible_ssh_common_args` is not parsed).
    pub proxy_jump: Option<String>,
    /// The ssh config file to read; `None` for `~/.ssh/config` when it exists.
    pub ssh_config: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub keepalive_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    Ssh,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Unknown keys are rejected (the default).
    Strict,
    /// Unknown keys are recorded in the first known_hosts file; changed keys are still rejected.
    AcceptNew,
}

/// Privilege escalation through sudo.
#[derive(Debug, Clone)]
pub struct Become {
    pub user: String,
    pub password: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    HostKey(String),
    #[error("{0}")]
    Authentication(String),
    #[error("{0}")]
    Exec(String),
}

/// An open connection to one host, shared by all tasks of a run. Methods take `&self`
/// so that several commands can run at once on separate channels.
pub struct Connection {
    name: String,
}

impl Connection {
    /// Opens a connection: reads the ssh config, verifies the host key, authenticates.
    pub async fn connect(options: &ConnectOptions) -> Result<Connection, TransportError> {
        Err(TransportError::Unreachable(format!(
            "{}: the transport is not built yet",
            options.name
        )))
    }

    /// Runs `command` through the remote user's shell with `stdin` as its standard input.
    pub async fn exec(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput, TransportError> {
        let _ = (command, stdin);
        Err(TransportError::Exec(format!(
            "{}: not connected",
            self.name
        )))
    }

    /// Runs a POSIX shell script, as the `become` user through sudo when given. The script
    /// travels on standard input, so its size is not limited by the command line.
    pub async fn run_script(
        &self,
        script: &str,
        r#become: Option<&Become>,
    ) -> Result<ExecOutput, TransportError> {
        let _ = r#become;
        self.exec("sh", script.as_bytes()).await
    }

    /// Closes the connection politely; dropping it also closes it.
    pub async fn close(self) {}
}
