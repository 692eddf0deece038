//! Transport: the only way the rest of vpsforge reaches a host.
//!
//! A [`Connection`] is opened once per host and reused for the whole run. Modules
//! never build commands for it directly: the executor hands it whole scripts,
//! which run under `sh` with the script on standard input, so the remote command
//! line is fixed and only the script needs quoting.

mod r#become;
pub mod known_hosts;
mod local;
mod ssh;
pub mod ssh_config;

use std::path::PathBuf;
use std::time::Duration;

use tracing::Instrument;

pub use crate::modules::ExecOutput;
use crate::secret::Secret;

/// Connection settings, after inventory variables and `~/.ssh/config` are merged.
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
    /// Covers the TCP connect, the SSH handshake and authentication. Zero takes the ssh
    /// config's `ConnectTimeout`, then 10 seconds.
    pub connect_timeout: Duration,
    /// The interval of SSH keepalives. Three unanswered keepalives close the connection.
    /// Zero takes the ssh config's `ServerAliveInterval`, and keepalives are off when neither
    /// is set.
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
    /// An ssh config that cannot be read or parsed, or settings that leave no user.
    #[error("{0}")]
    Config(String),
}

/// An open connection to one host, shared by all tasks of a run. Methods take `&self`
/// so that several commands can run at once on separate channels.
pub struct Connection {
    name: String,
    inner: Inner,
    /// Remote commands started so far; each costs at least one round trip.
    commands: std::sync::atomic::AtomicU32,
}

enum Inner {
    Ssh(Box<ssh::SshSession>),
    Local,
}

impl Connection {
    /// Opens a connection: reads the ssh config, verifies the host key, authenticates.
    pub async fn connect(options: &ConnectOptions) -> Result<Connection, TransportError> {
        let inner = match options.kind {
            ConnectionKind::Local => Inner::Local,
            ConnectionKind::Ssh => Inner::Ssh(Box::new(ssh::SshSession::connect(options).await?)),
        };
        Ok(Connection {
            name: options.name.clone(),
            inner,
            commands: Default::default(),
        })
    }

    /// Returns how many remote commands this connection has started.
    pub fn commands(&self) -> u32 {
        self.commands.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `command` through the remote user's shell with `stdin` as its standard input.
    pub async fn exec(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput, TransportError> {
        // Commands and their input may hold file contents, so debug logs only their sizes.
        let span = tracing::debug_span!(
            "exec",
            host = %self.name,
            command_len = command.len(),
            stdin_len = stdin.len()
        );
        self.commands
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async {
            let output = match &self.inner {
                Inner::Ssh(session) => session.exec(command, stdin).await,
                Inner::Local => local::exec(&self.name, command, stdin).await,
            }?;
            tracing::debug!(exit_code = output.exit_code, "finished");
            Ok(output)
        }
        .instrument(span)
        .await
    }

    /// Runs a POSIX shell script, as the `become` user through sudo when given. The script
    /// travels on standard input, so its size is not limited by the command line.
    pub async fn run_script(
        &self,
        script: &str,
        r#become: Option<&Become>,
    ) -> Result<ExecOutput, TransportError> {
        let Some(r#become) = r#become else {
            return match inline_script(script) {
                Some(quoted) => self.exec(&format!("sh -c {quoted}"), b"").await,
                None => self.exec("sh", script.as_bytes()).await,
            };
        };
        let (command, stdin) = r#become::sudo_invocation(script, r#become);
        let output = self.exec(&command, &stdin).await?;
        r#become::check_sudo_output(&self.name, r#become, output)
    }

    /// Closes the connection politely; dropping it also closes it.
    pub async fn close(self) {
        if let Inner::Ssh(session) = self.inner {
            session.close().await;
        }
    }
}

/// The longest quoted script sent on the command line. Linux limits one argument
/// to 128 KiB (`MAX_ARG_STRLEN`), so longer scripts go on standard input.
const MAX_INLINE_SCRIPT: usize = 100 * 1024;

/// Returns the script quoted for `sh -c`, or `None` when it is too long for the command
/// line. A script on the command line saves a round trip: OpenSSH's sshd opens a
/// session channel with no window for input until the command has started, so input
/// waits for a window adjustment.
pub(crate) fn inline_script(script: &str) -> Option<String> {
    let quoted = crate::modules::common::quote(script);
    (quoted.len() <= MAX_INLINE_SCRIPT).then_some(quoted)
}
