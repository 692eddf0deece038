//! SSH sessions on russh: the handshake with host-key verification, user
//! authentication, `ProxyJump` tunnels and one channel per command.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Disconnect, Preferred, Sig};
use ssh2_config::SshConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use super::known_hosts::{self, Entry, Verdict};
use super::ssh_config::{self, Target};
use super::{ConnectOptions, ExecOutput, HostKeyPolicy, TransportError};
use crate::secret::Secret;

/// Keepalives that may go unanswered before the session is closed as dead.
const KEEPALIVE_MAX: usize = 3;

/// Attempts to open a command's channel while the server rejects it, and the wait before
/// the second attempt, which doubles after each rejection (310 ms in all).
const CHANNEL_OPEN_ATTEMPTS: u32 = 6;
const CHANNEL_OPEN_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(10);

/// An authenticated SSH session to one host.
pub struct SshSession {
    name: String,
    handle: Handle<HostKeyChecker>,
    /// A session channel opened while the previous command ran, so the next command
    /// starts without waiting a round trip for its channel.
    spare: std::sync::Mutex<Option<Channel<client::Msg>>>,
    /// Set when the server rejected a spare channel. It then limits the sessions of a
    /// connection (`MaxSessions`), so a spare would take the next command's place.
    spare_rejected: std::sync::atomic::AtomicBool,
    /// Sessions to the `ProxyJump` hosts, in hop order. The target's traffic runs through
    /// them, so they live as long as this session.
    jumps: Vec<Handle<HostKeyChecker>>,
}

/// The russh client handler: it verifies the server's host key against known_hosts.
pub struct HostKeyChecker {
    host: String,
    port: u16,
    pattern: String,
    entries: Vec<Entry>,
    known_hosts_files: Vec<PathBuf>,
    policy: HostKeyPolicy,
}

/// The error type of [`HostKeyChecker`], so a rejected key keeps its own message.
#[derive(Debug)]
pub enum SessionError {
    Ssh(russh::Error),
    HostKey(String),
}

impl From<russh::Error> for SessionError {
    fn from(error: russh::Error) -> SessionError {
        SessionError::Ssh(error)
    }
}

impl client::Handler for HostKeyChecker {
    type Error = SessionError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, SessionError> {
        let address = format!("{}:{}", self.host, self.port);
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return Err(SessionError::HostKey(format!(
                "`{address}` presented a host certificate, which vpsforge does not verify; add its plain host key to known_hosts"
            )));
        };

        match known_hosts::check(&self.entries, &self.pattern, key) {
            Verdict::Known => Ok(true),
            Verdict::Revoked { file, line } => Err(SessionError::HostKey(format!(
                "the host key of `{address}` is revoked by `{}` line {line}: the server offered a {}",
                file.display(),
                known_hosts::describe(key)
            ))),
            Verdict::Changed { file, line } => Err(SessionError::HostKey(format!(
                "the host key of `{address}` has changed: the server offered a {}, but `{}` line {line} contains a different key of that type; \
                 this can be a man-in-the-middle attack, so verify the new key, then remove the old entry with `ssh-keygen -R '{}' -f {}`",
                known_hosts::describe(key),
                file.display(),
                self.pattern,
                file.display()
            ))),
            Verdict::Unknown => match self.policy {
                HostKeyPolicy::Strict => Err(SessionError::HostKey(format!(
                    "the host key of `{address}` is not known: the server offered a {}; verify the fingerprint, \
                     then run `ssh-keyscan -p {} {} >> {}` or pass `--accept-new-host-keys`",
                    known_hosts::describe(key),
                    self.port,
                    self.host,
                    display_known_hosts(self.known_hosts_files.first())
                ))),
                HostKeyPolicy::AcceptNew => {
                    let Some(file) = self.known_hosts_files.first() else {
                        return Err(SessionError::HostKey(format!(
                            "cannot record the host key of `{address}`: no known_hosts file is configured"
                        )));
                    };
                    known_hosts::append(file, &self.pattern, key).map_err(|error| {
                        SessionError::HostKey(format!(
                            "cannot record the host key of `{address}` in `{}`: {error}",
                            file.display()
                        ))
                    })?;
                    tracing::info!(
                        address = %address,
                        file = %file.display(),
                        key = %known_hosts::describe(key),
                        "recorded a new host key"
                    );
                    Ok(true)
                }
            },
        }
    }
}

impl SshSession {
    /// Connects to the target of `options`, through its `ProxyJump` hosts when set.
    pub async fn connect(options: &ConnectOptions) -> Result<SshSession, TransportError> {
        let config = ssh_config::load(options)?;
        let target = ssh_config::resolve(options, config.as_ref())?;
        let timeout = target.connect_timeout;
        let address = format!("{}:{}", target.host, target.port);

        let span = tracing::debug_span!("connect", host = %options.name, address = %address);
        let connecting = connect_chain(options, config.as_ref(), &target).instrument(span);
        match tokio::time::timeout(timeout, connecting).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Unreachable(format!(
                "connecting to `{address}` timed out after {} s; check that the host is up and that SSH listens on port {}, or raise the connect timeout",
                timeout.as_secs_f64(),
                target.port
            ))),
        }
    }

    /// Runs `command` on the spare channel or a new one, writing `stdin` to it while
    /// reading its output. The next spare channel opens while the command runs.
    pub async fn exec(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput, TransportError> {
        let spare = self.take_spare();
        let channel = match spare {
            Some(channel) => channel,
            None => self.open_channel().await?,
        };
        let (output, ()) = tokio::join!(self.run_on(channel, command, stdin), self.refill_spare());
        output
    }

    /// Opens a session channel, retrying for a short while when the server rejects it.
    /// With `MaxSessions 1`, sshd frees the previous command's session only after it has
    /// read our close of that channel, so an open sent right after the close can fail.
    async fn open_channel(&self) -> Result<Channel<client::Msg>, TransportError> {
        let mut delay = CHANNEL_OPEN_RETRY_DELAY;
        let mut attempt = 1;
        loop {
            match self.handle.channel_open_session().await {
                Ok(channel) => return Ok(channel),
                Err(russh::Error::ChannelOpenFailure(reason)) if attempt < CHANNEL_OPEN_ATTEMPTS => {
                    tracing::debug!(host = %self.name, ?reason, attempt, "the server rejected a channel open, retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(error) => {
                    return Err(TransportError::Exec(format!(
                        "`{}`: cannot open an SSH channel: {error}; the connection may have dropped, or the server's `MaxSessions` is lower than the commands vpsforge runs at once",
                        self.name
                    )))
                }
            }
        }
    }

    fn take_spare(&self) -> Option<Channel<client::Msg>> {
        self.spare.lock().ok().and_then(|mut spare| spare.take())
    }

    /// Opens a spare channel unless one is waiting. A failure is left to the next command,
    /// which opens its own channel and reports the error.
    async fn refill_spare(&self) {
        let empty = self
            .spare
            .lock()
            .map(|spare| spare.is_none())
            .unwrap_or(false);
        if !empty
            || self
                .spare_rejected
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        match self.handle.channel_open_session().await {
            Ok(channel) => {
                let extra = match self.spare.lock() {
                    Ok(mut spare) if spare.is_none() => {
                        *spare = Some(channel);
                        None
                    }
                    _ => Some(channel),
                };
                // Another command filled the slot meanwhile: two idle channels are one too many.
                if let Some(extra) = extra {
                    let _ = extra.close().await;
                }
            }
            Err(russh::Error::ChannelOpenFailure(reason)) => {
                tracing::debug!(host = %self.name, ?reason, "the server rejected a spare channel, opening channels on demand from now on");
                self.spare_rejected
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Err(error) => tracing::debug!(host = %self.name, %error, "cannot open a spare channel"),
        }
    }

    async fn run_on(
        &self,
        channel: Channel<client::Msg>,
        command: &str,
        stdin: &[u8],
    ) -> Result<ExecOutput, TransportError> {
        let name = &self.name;
        let (mut reader, writer) = channel.split();
        writer.exec(false, command).await.map_err(|error| {
            TransportError::Exec(format!("`{name}`: cannot start the command: {error}"))
        })?;

        // Standard input is written while the output is read, because a command that
        // writes much before it reads would otherwise block on a full channel window.
        let write = async {
            if !stdin.is_empty() {
                if let Err(error) = writer.data(stdin).await {
                    tracing::trace!(%error, "standard input not fully written");
                }
            }
            if let Err(error) = writer.eof().await {
                tracing::trace!(%error, "cannot send end of input");
            }
        };
        tokio::pin!(write);
        let mut written = false;

        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut exit_code = None;
        let mut signal = None;
        loop {
            tokio::select! {
                () = &mut write, if !written => written = true,
                message = reader.wait() => match message {
                    Some(ChannelMsg::Data { data }) => stdout.extend_from_slice(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => stderr.extend_from_slice(&data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => exit_code = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, core_dumped, error_message, .. }) => {
                        signal = Some((signal_name, core_dumped, error_message));
                    }
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
            }
        }

        let Some(exit_code) = exit_code else {
            return Err(TransportError::Exec(match signal {
                Some((signal, core_dumped, message)) => {
                    let core = if core_dumped { " (core dumped)" } else { "" };
                    let message = if message.is_empty() {
                        String::new()
                    } else {
                        format!(": {message}")
                    };
                    format!(
                        "`{name}`: the command was killed by signal SIG{}{core}{message}",
                        signal_name(&signal)
                    )
                }
                None => format!(
                    "`{name}`: the command ended without an exit status; the connection may have dropped"
                ),
            }));
        };

        Ok(ExecOutput {
            exit_code: i32::try_from(exit_code).unwrap_or(i32::MAX),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Sends a disconnect message to the target, then to each jump host from the last.
    pub async fn close(self) {
        if let Some(spare) = self.take_spare() {
            let _ = spare.close().await;
        }
        let handles = std::iter::once(self.handle).chain(self.jumps.into_iter().rev());
        for handle in handles {
            if let Err(error) = handle.disconnect(Disconnect::ByApplication, "", "en").await {
                tracing::debug!(host = %self.name, %error, "disconnect failed");
            }
        }
    }
}

async fn connect_chain(
    options: &ConnectOptions,
    config: Option<&SshConfig>,
    target: &Target,
) -> Result<SshSession, TransportError> {
    let mut hops = Vec::new();
    for jump in &target.jumps {
        let jump_options = ConnectOptions {
            host: jump.host.clone(),
            port: jump.port,
            user: jump.user.clone(),
            password: None,
            // A jump host's own ProxyJump is not followed, because the chain is given in full.
            proxy_jump: Some("none".to_string()),
            ..options.clone()
        };
        let jump_target = ssh_config::resolve(&jump_options, config)?;
        hops.push((jump_options, jump_target));
    }

    let mut jumps: Vec<Handle<HostKeyChecker>> = Vec::new();
    for (jump_options, jump_target) in &hops {
        let handle = open_hop(jumps.last(), jump_options, jump_target).await?;
        jumps.push(handle);
    }
    let handle = open_hop(jumps.last(), options, target).await?;

    Ok(SshSession {
        name: options.name.clone(),
        handle,
        spare: std::sync::Mutex::new(None),
        spare_rejected: std::sync::atomic::AtomicBool::new(false),
        jumps,
    })
}

/// Opens and authenticates one session, over TCP or through a `direct-tcpip` channel of
/// the previous hop.
async fn open_hop(
    through: Option<&Handle<HostKeyChecker>>,
    options: &ConnectOptions,
    target: &Target,
) -> Result<Handle<HostKeyChecker>, TransportError> {
    let address = format!("{}:{}", target.host, target.port);
    match through {
        None => {
            let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(|error| {
                    TransportError::Unreachable(format!(
                        "cannot connect to `{address}`: {error}; check the host name, the port and the network"
                    ))
                })?;
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
            handshake(stream, options, target).await
        }
        Some(jump) => {
            let channel = jump
                .channel_open_direct_tcpip(target.host.as_str(), u32::from(target.port), "127.0.0.1", 0)
                .await
                .map_err(|error| {
                    TransportError::Unreachable(format!(
                        "the jump host cannot connect to `{address}`: {error}; check the host name and port as the jump host sees them"
                    ))
                })?;
            handshake(channel.into_stream(), options, target).await
        }
    }
}

async fn handshake<S>(
    stream: S,
    options: &ConnectOptions,
    target: &Target,
) -> Result<Handle<HostKeyChecker>, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let address = format!("{}:{}", target.host, target.port);
    let pattern = known_hosts::host_pattern(&target.host, target.port);
    let entries =
        known_hosts::read_files_for(&target.known_hosts_files, &pattern).map_err(|error| {
            TransportError::HostKey(format!(
                "cannot read the known_hosts files for `{address}`: {error}"
            ))
        })?;

    let config = client::Config {
        preferred: Preferred {
            key: Cow::Owned(preferred_host_key_algorithms(
                &known_hosts::known_algorithms(&entries, &pattern),
            )),
            ..Preferred::default()
        },
        keepalive_interval: target.keepalive_interval,
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        ..client::Config::default()
    };
    let checker = HostKeyChecker {
        host: target.host.clone(),
        port: target.port,
        pattern,
        entries,
        known_hosts_files: target.known_hosts_files.clone(),
        policy: options.host_key_policy,
    };

    let mut handle = client::connect_stream(Arc::new(config), stream, checker)
        .await
        .map_err(|error| match error {
            SessionError::HostKey(message) => TransportError::HostKey(message),
            SessionError::Ssh(error) => TransportError::Unreachable(format!(
                "the SSH handshake with `{address}` failed: {error}"
            )),
        })?;
    authenticate(&mut handle, target, options.password.as_ref()).await?;
    Ok(handle)
}

/// Returns russh's default host key algorithms with the types known for this host first,
/// so that a server with several host keys presents one that can be verified.
fn preferred_host_key_algorithms(known: &[Algorithm]) -> Vec<Algorithm> {
    let defaults = Preferred::default().key.into_owned();
    let mut ordered: Vec<Algorithm> = Vec::new();
    for algorithm in &defaults {
        let is_known = known.iter().any(|known| match known {
            Algorithm::Rsa { .. } => matches!(algorithm, Algorithm::Rsa { .. }),
            other => other == algorithm,
        });
        if is_known {
            ordered.push(algorithm.clone());
        }
    }
    for algorithm in defaults {
        if !ordered.contains(&algorithm) {
            ordered.push(algorithm);
        }
    }
    ordered
}

/// Tries the identity files from the options, then ssh-agent, then the ssh config's
/// identity files and the default keys, then the password.
async fn authenticate(
    handle: &mut Handle<HostKeyChecker>,
    target: &Target,
    password: Option<&Secret>,
) -> Result<(), TransportError> {
    let mut attempt = Attempt {
        handle,
        user: &target.user,
        tried: Vec::new(),
        rsa_hash: None,
    };

    for path in &target.explicit_identities {
        if attempt.try_key_file(path).await? {
            return Ok(());
        }
    }
    if attempt.try_agent().await? {
        return Ok(());
    }
    for path in &target.config_identities {
        if attempt.try_key_file(path).await? {
            return Ok(());
        }
    }
    if let Some(password) = password {
        attempt.tried.push("password".to_string());
        let result = attempt
            .handle
            .authenticate_password(target.user.as_str(), password.expose())
            .await
            .map_err(|error| attempt.failed(target, &error.to_string()))?;
        if matches!(result, AuthResult::Success) {
            return Ok(());
        }
    }

    Err(attempt.failed(target, "the server accepted none of the credentials"))
}

struct Attempt<'a> {
    handle: &'a mut Handle<HostKeyChecker>,
    user: &'a str,
    /// The methods tried so far, for the failure message.
    tried: Vec<String>,
    /// The RSA signature hash the server supports, asked for once when the first RSA key is tried.
    rsa_hash: Option<Option<HashAlg>>,
}

impl Attempt<'_> {
    async fn rsa_hash(&mut self) -> Option<HashAlg> {
        if let Some(hash) = self.rsa_hash {
            return hash;
        }
        // `None` from russh means that the server did not list its signature algorithms,
        // so the original SHA-1 `ssh-rsa` is the only one it surely accepts.
        let hash = self
            .handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        self.rsa_hash = Some(hash);
        hash
    }

    async fn try_key_file(&mut self, path: &std::path::Path) -> Result<bool, TransportError> {
        let key = match russh::keys::load_secret_key(path, None) {
            Ok(key) => key,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                tracing::debug!(path = %path.display(), "skipping an encrypted key: no passphrase source");
                self.tried
                    .push(format!("key `{}` (encrypted, skipped)", path.display()));
                return Ok(false);
            }
            Err(error) => {
                tracing::debug!(path = %path.display(), %error, "skipping an unreadable key");
                self.tried
                    .push(format!("key `{}` (unreadable: {error})", path.display()));
                return Ok(false);
            }
        };

        let hash = if key.algorithm().is_rsa() {
            self.rsa_hash().await
        } else {
            None
        };
        self.tried.push(format!("key `{}`", path.display()));
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        let result = self
            .handle
            .authenticate_publickey(self.user, key)
            .await
            .map_err(|error| {
                TransportError::Authentication(format!(
                    "authentication as `{}` failed while trying key `{}`: {error}",
                    self.user,
                    path.display()
                ))
            })?;
        Ok(matches!(result, AuthResult::Success))
    }

    async fn try_agent(&mut self) -> Result<bool, TransportError> {
        if std::env::var_os("SSH_AUTH_SOCK").is_none() {
            return Ok(false);
        }
        let mut agent = match AgentClient::connect_env().await {
            Ok(agent) => agent,
            Err(error) => {
                tracing::debug!(%error, "ssh-agent is not reachable");
                self.tried.push("ssh-agent (not reachable)".to_string());
                return Ok(false);
            }
        };
        if let Some(binding) = self.handle.agent_session_binding() {
            if let Err(error) = agent.bind_session(binding, false).await {
                tracing::debug!(%error, "ssh-agent does not support session binding");
            }
        }
        let identities = match agent.request_identities().await {
            Ok(identities) => identities,
            Err(error) => {
                tracing::debug!(%error, "cannot list the ssh-agent keys");
                self.tried.push("ssh-agent (cannot list keys)".to_string());
                return Ok(false);
            }
        };

        let mut count = 0;
        for identity in identities {
            let AgentIdentity::PublicKey { key, .. } = identity else {
                continue;
            };
            count += 1;
            let hash = if key.algorithm().is_rsa() {
                self.rsa_hash().await
            } else {
                None
            };
            match self
                .handle
                .authenticate_publickey_with(self.user, key, hash, &mut agent)
                .await
            {
                Ok(AuthResult::Success) => return Ok(true),
                Ok(_) => {}
                Err(error) => tracing::debug!(%error, "ssh-agent could not sign"),
            }
        }
        self.tried.push(format!("ssh-agent ({count} keys)"));
        Ok(false)
    }

    fn failed(&self, target: &Target, reason: &str) -> TransportError {
        let tried = if self.tried.is_empty() {
            "no key or password was available".to_string()
        } else {
            format!("tried {}", self.tried.join(", "))
        };
        TransportError::Authentication(format!(
            "authentication as `{}` on `{}:{}` failed: {reason} ({tried}); set `ansible_ssh_private_key_file`, load a key into ssh-agent or set `ansible_password`",
            target.user, target.host, target.port
        ))
    }
}

fn signal_name(signal: &Sig) -> String {
    match signal {
        Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

fn display_known_hosts(file: Option<&PathBuf>) -> String {
    let Some(file) = file else {
        return "~/.ssh/known_hosts".to_string();
    };
    match dirs::home_dir() {
        Some(home) if file == &home.join(".ssh/known_hosts") => "~/.ssh/known_hosts".to_string(),
        _ => file.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferred_algorithms_put_known_first() {
        let ordered = preferred_host_key_algorithms(&[Algorithm::Ecdsa {
            curve: russh::keys::EcdsaCurve::NistP256,
        }]);
        assert_eq!(ordered[0].as_str(), "ecdsa-sha2-nistp256");
        assert_eq!(ordered.len(), Preferred::default().key.len());
    }

    #[test]
    fn preferred_algorithms_rsa_covers_sha2() {
        let ordered = preferred_host_key_algorithms(&[Algorithm::Rsa { hash: None }]);
        assert!(matches!(ordered[0], Algorithm::Rsa { .. }), "{ordered:?}");
        assert!(
            ordered
                .iter()
                .take_while(|a| matches!(a, Algorithm::Rsa { .. }))
                .count()
                >= 2
        );
    }

    #[test]
    fn preferred_algorithms_unchanged_without_known() {
        assert_eq!(
            preferred_host_key_algorithms(&[]),
            Preferred::default().key.into_owned()
        );
    }
}
