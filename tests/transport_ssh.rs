//! Runs the SSH transport against real OpenSSH servers started on 127.0.0.1.
//!
//! Each test starts its own `sshd` with a fresh host key, an authorized client key
//! and a free port. The tests expect to run as root, as sshd needs that to switch
//! to the logged-in user.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use vpsforge::modules::common::quote;
use vpsforge::secret::Secret;
use vpsforge::transport::{
    Become, ConnectOptions, Connection, ConnectionKind, HostKeyPolicy, TransportError,
};

/// An upper bound for anything that should finish quickly, so a hang fails the test.
const GUARD: Duration = Duration::from_secs(30);

fn ssh_keygen(args: &[&str]) {
    let status = Command::new("ssh-keygen")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen {args:?} failed");
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// A client key pair shared by the servers of one test.
struct ClientKey {
    _dir: TempDir,
    private: PathBuf,
    public: PathBuf,
}

impl ClientKey {
    fn generate() -> ClientKey {
        let dir = tempfile::tempdir().expect("temp dir");
        let private = dir.path().join("id_ed25519");
        ssh_keygen(&["-q", "-t", "ed25519", "-N", "", "-f", path_str(&private)]);
        ClientKey {
            public: dir.path().join("id_ed25519.pub"),
            private,
            _dir: dir,
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// An sshd process, killed by its PID when dropped.
struct Sshd {
    child: Child,
    port: u16,
    dir: TempDir,
    /// The host public key line: `ssh-ed25519 AAAA...`.
    host_key: String,
}

impl Sshd {
    fn start(client: &ClientKey) -> Sshd {
        Sshd::start_with(client, "ERROR", false, "")
    }

    /// Starts an sshd that logs at `log_level`, with `extra` lines at the end of its
    /// config. Levels above ERROR also send debug lines to the client's standard error,
    /// so only the jump host uses them.
    fn start_with(
        client: &ClientKey,
        log_level: &str,
        password_authentication: bool,
        extra: &str,
    ) -> Sshd {
        fs::create_dir_all("/run/sshd").expect("create /run/sshd for privilege separation");

        let dir = tempfile::tempdir().expect("temp dir");
        let host_key_path = dir.path().join("host_ed25519");
        ssh_keygen(&[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            path_str(&host_key_path),
        ]);
        let host_key = fs::read_to_string(dir.path().join("host_ed25519.pub"))
            .expect("host public key")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        fs::copy(&client.public, dir.path().join("authorized_keys")).expect("authorized_keys");
        // sshd reads authorized_keys as the user who logs in, who need not be root.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::set_permissions(
            dir.path().join("authorized_keys"),
            fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");

        let port = free_port();
        let config = dir.path().join("sshd_config");
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 HostKey {}\n\
                 AuthorizedKeysFile {}\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PidFile none\n\
                 PermitRootLogin yes\n\
                 PasswordAuthentication {}\n\
                 KbdInteractiveAuthentication no\n\
                 AllowTcpForwarding yes\n\
                 LogLevel {}\n\
                 {extra}",
                host_key_path.display(),
                dir.path().join("authorized_keys").display(),
                if password_authentication { "yes" } else { "no" },
                log_level
            ),
        )
        .expect("sshd_config");

        let log = fs::File::create(dir.path().join("sshd.log")).expect("log file");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", path_str(&config), "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");

        let sshd = Sshd {
            child,
            port,
            dir,
            host_key,
        };
        sshd.wait_until_listening();
        sshd
    }

    fn wait_until_listening(&self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("sshd did not listen on port {}: {}", self.port, self.log());
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Returns the known_hosts line for this server.
    fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, self.host_key)
    }

    fn fingerprint(&self) -> String {
        let output = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(self.dir.path().join("host_ed25519.pub"))
            .output()
            .expect("ssh-keygen -l runs");
        String::from_utf8(output.stdout)
            .expect("text")
            .split_whitespace()
            .nth(1)
            .expect("fingerprint field")
            .to_string()
    }

    fn options(
        &self,
        client: &ClientKey,
        known_hosts: &Path,
        empty_config: &Path,
    ) -> ConnectOptions {
        ConnectOptions {
            name: "test-host".to_string(),
            kind: ConnectionKind::Ssh,
            host: "127.0.0.1".to_string(),
            port: Some(self.port),
            user: Some("root".to_string()),
            identity_files: vec![client.private.clone()],
            password: None,
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts_files: vec![known_hosts.to_path_buf()],
            proxy_jump: None,
            ssh_config: Some(empty_config.to_path_buf()),
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Kill exactly the sshd this fixture started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client side of one test: a client key, a known_hosts file and an empty ssh config.
struct Client {
    key: ClientKey,
    dir: TempDir,
}

impl Client {
    fn new() -> Client {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("ssh_config"), "").expect("empty ssh config");
        Client {
            key: ClientKey::generate(),
            dir,
        }
    }

    fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    fn trust(&self, sshd: &Sshd) {
        let mut text = fs::read_to_string(self.known_hosts()).unwrap_or_default();
        text.push_str(&sshd.known_hosts_line());
        fs::write(self.known_hosts(), text).expect("write known_hosts");
    }

    fn options(&self, sshd: &Sshd) -> ConnectOptions {
        sshd.options(&self.key, &self.known_hosts(), &self.ssh_config())
    }
}

async fn connect(options: &ConnectOptions) -> Result<Connection, TransportError> {
    tokio::time::timeout(GUARD, Connection::connect(options))
        .await
        .expect("connect finishes")
}

#[tokio::test]
async fn exec_stdin_and_exit_codes() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    client.trust(&sshd);
    let connection = connect(&client.options(&sshd)).await.expect("connects");

    let output = connection
        .exec("cat; echo oops >&2; exit 5", b"hello\nworld")
        .await
        .expect("runs");
    assert_eq!(output.stdout, "hello\nworld");
    assert_eq!(output.stderr, "oops\n");
    assert_eq!(output.exit_code, 5);

    let output = connection.exec("true", b"").await.expect("runs");
    assert_eq!(output.exit_code, 0);
    assert_eq!(output.stdout, "");

    // More than one channel window of input, and output of the same size.
    let big = vec![b'x'; 3 << 20];
    let output = connection.exec("cat", &big).await.expect("runs");
    assert_eq!(output.stdout.len(), big.len());

    let output = connection.exec("exit 0", &big).await.expect("runs");
    assert_eq!(output.exit_code, 0);

    connection.close().await;
}

#[tokio::test]
async fn exec_reports_signal() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    client.trust(&sshd);
    let connection = connect(&client.options(&sshd)).await.expect("connects");

    let error = connection
        .exec("kill -KILL $$", b"")
        .await
        .expect_err("killed");
    assert!(
        error.to_string().contains("killed by signal SIGKILL"),
        "{error}"
    );
}

#[tokio::test]
async fn concurrent_execs_share_connection() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    client.trust(&sshd);
    let connection = Arc::new(connect(&client.options(&sshd)).await.expect("connects"));

    // Each command waits for the other's file, so they finish only if both run at once.
    let rendezvous = tempfile::tempdir().expect("temp dir");
    let script = |mine: &str, theirs: &str| {
        let dir = quote(path_str(rendezvous.path()));
        format!(
            "touch {dir}/{mine}; while [ ! -e {dir}/{theirs} ]; do sleep 0.02; done; echo {mine}"
        )
    };
    let first = {
        let connection = Arc::clone(&connection);
        let command = script("a", "b");
        tokio::spawn(async move { connection.exec(&command, b"").await })
    };
    let second = {
        let connection = Arc::clone(&connection);
        let command = script("b", "a");
        tokio::spawn(async move { connection.exec(&command, b"").await })
    };
    let (first, second) = tokio::time::timeout(GUARD, async { tokio::join!(first, second) })
        .await
        .expect("both commands finish");
    assert_eq!(first.expect("task").expect("runs").stdout, "a\n");
    assert_eq!(second.expect("task").expect("runs").stdout, "b\n");
}

#[tokio::test]
async fn commands_run_with_max_sessions_one() {
    let client = Client::new();
    let sshd = Sshd::start_with(&client.key, "ERROR", false, "MaxSessions 1\n");
    client.trust(&sshd);
    let connection = connect(&client.options(&sshd)).await.expect("connects");

    // The spare channel cannot open while a command uses the only session, and a
    // channel opened right after a command ends can reach sshd before it frees that
    // session, so each command must still find a channel.
    for round in 0..30 {
        let output =
            tokio::time::timeout(GUARD, connection.run_script(&format!("echo {round}"), None))
                .await
                .expect("the command finishes")
                .unwrap_or_else(|error| panic!("command {round} failed: {error}"));
        assert_eq!(output.stdout, format!("{round}\n"));
    }
    assert_eq!(connection.commands(), 30);
}

#[tokio::test]
async fn run_script_handles_odd_paths() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    client.trust(&sshd);
    let connection = connect(&client.options(&sshd)).await.expect("connects");

    let dir = tempfile::tempdir().expect("temp dir");
    let names = [
        "with space",
        "it's",
        "double\"quote",
        "new\nline",
        "$HOME `x`",
    ];
    for name in names {
        let path = dir.path().join(name);
        let path_text = path_str(&path);
        let script = format!(
            "printf '%s' {} > {}\ncat {}\n",
            quote("content of a file"),
            quote(path_text),
            quote(path_text)
        );
        let output = connection.run_script(&script, None).await.expect("runs");
        assert_eq!(output.exit_code, 0, "{name:?}: {}", output.stderr);
        assert_eq!(output.stdout, "content of a file", "{name:?}");
        assert_eq!(
            fs::read_to_string(&path).expect("file written under its exact name"),
            "content of a file"
        );
    }
}

#[tokio::test]
async fn run_script_become_root() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    client.trust(&sshd);
    let connection = connect(&client.options(&sshd)).await.expect("connects");
    if connection
        .exec("command -v sudo", b"")
        .await
        .expect("runs")
        .exit_code
        != 0
    {
        panic!("sudo is not installed; install it with `apt-get install -y sudo`");
    }

    let script = "id -u\necho \"$HOME\"\n";
    let without_password = Become {
        user: "root".to_string(),
        password: None,
    };
    let output = connection
        .run_script(script, Some(&without_password))
        .await
        .expect("runs");
    assert_eq!(output.stdout, "0\n/root\n");
    assert_eq!(output.exit_code, 0);

    // sudo does not ask root for a password, so this checks that the unread password
    // line is discarded instead of being run by the shell.
    let with_password = Become {
        user: "root".to_string(),
        password: Some(Secret::new("not-a-command")),
    };
    let output = connection
        .run_script(script, Some(&with_password))
        .await
        .expect("runs");
    assert_eq!(output.stdout, "0\n/root\n");
    assert_eq!(output.stderr, "");
    assert_eq!(output.exit_code, 0);

    let output = connection
        .run_script("exit 4\n", Some(&without_password))
        .await
        .expect("runs");
    assert_eq!(output.exit_code, 4);

    let missing_user = Become {
        user: "no-such-user-vpsforge".to_string(),
        password: None,
    };
    let error = connection
        .run_script(script, Some(&missing_user))
        .await
        .expect_err("unknown user");
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[tokio::test]
async fn strict_rejects_unknown_key() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);

    let Err(error) = connect(&client.options(&sshd)).await else {
        panic!("an unknown host key must be rejected");
    };
    let message = error.to_string();
    assert!(matches!(error, TransportError::HostKey(_)), "{message}");
    assert!(message.contains("ssh-ed25519"), "{message}");
    assert!(message.contains(&sshd.fingerprint()), "{message}");
    assert!(
        message.contains(&format!("ssh-keyscan -p {} 127.0.0.1", sshd.port)),
        "{message}"
    );
    assert!(message.contains("--accept-new-host-keys"), "{message}");
    assert!(!client.known_hosts().exists());
}

#[tokio::test]
async fn accept_new_records_key() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    let known_hosts = client.dir.path().join("new-folder").join("known_hosts");
    let mut options = client.options(&sshd);
    options.known_hosts_files = vec![known_hosts.clone()];
    options.host_key_policy = HostKeyPolicy::AcceptNew;

    let connection = connect(&options).await.expect("accepts the new key");
    assert_eq!(
        connection.exec("echo ok", b"").await.expect("runs").stdout,
        "ok\n"
    );
    connection.close().await;

    use std::os::unix::fs::PermissionsExt;
    let recorded = fs::read_to_string(&known_hosts).expect("known_hosts written");
    assert_eq!(recorded, sshd.known_hosts_line());
    let mode = fs::metadata(&known_hosts)
        .expect("file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let folder_mode = fs::metadata(known_hosts.parent().expect("folder"))
        .expect("folder")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(folder_mode, 0o700);

    options.host_key_policy = HostKeyPolicy::Strict;
    let connection = connect(&options).await.expect("the recorded key passes");
    connection.close().await;
}

#[tokio::test]
async fn changed_key_rejected_with_accept_new() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    let other = Sshd::start(&client.key);
    fs::write(
        client.known_hosts(),
        format!("# old key\n[127.0.0.1]:{} {}\n", sshd.port, other.host_key),
    )
    .expect("known_hosts");
    let mut options = client.options(&sshd);
    options.host_key_policy = HostKeyPolicy::AcceptNew;

    let Err(error) = connect(&options).await else {
        panic!("a changed host key must be rejected");
    };
    let message = error.to_string();
    assert!(matches!(error, TransportError::HostKey(_)), "{message}");
    assert!(message.contains("has changed"), "{message}");
    assert!(
        message.contains(&format!("`{}` line 2", client.known_hosts().display())),
        "{message}"
    );
    assert!(message.contains(&sshd.fingerprint()), "{message}");
    let unchanged = fs::read_to_string(client.known_hosts()).expect("known_hosts");
    assert_eq!(unchanged.lines().count(), 2);
}

#[tokio::test]
async fn hashed_entry_accepted() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    client.trust(&sshd);
    ssh_keygen(&["-H", "-f", path_str(&client.known_hosts())]);
    let hashed = fs::read_to_string(client.known_hosts()).expect("known_hosts");
    assert!(hashed.starts_with("|1|"), "{hashed}");

    let connection = connect(&client.options(&sshd))
        .await
        .expect("hashed entry matches");
    connection.close().await;
}

#[tokio::test]
async fn entry_without_port_not_used() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    fs::write(
        client.known_hosts(),
        format!("127.0.0.1 {}\n", sshd.host_key),
    )
    .expect("known_hosts");

    let Err(error) = connect(&client.options(&sshd)).await else {
        panic!("an entry for port 22 must not match port {}", sshd.port);
    };
    assert!(error.to_string().contains("is not known"), "{error}");
}

#[tokio::test]
async fn ssh_config_alias() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    let known_hosts = client.dir.path().join("alias_known_hosts");
    fs::write(&known_hosts, sshd.known_hosts_line()).expect("known_hosts");
    fs::write(
        client.ssh_config(),
        format!(
            "Host other\n    Port 1\n\nHost my-alias\n    HostName 127.0.0.1\n    Port {}\n    User root\n    IdentityFile {}\n    UserKnownHostsFile {}\n",
            sshd.port,
            client.key.private.display(),
            known_hosts.display()
        ),
    )
    .expect("ssh config");

    let options = ConnectOptions {
        host: "my-alias".to_string(),
        port: None,
        user: None,
        identity_files: Vec::new(),
        known_hosts_files: Vec::new(),
        ..client.options(&sshd)
    };
    let connection = connect(&options).await.expect("connects through the alias");
    let output = connection.exec("id -un", b"").await.expect("runs");
    assert_eq!(output.stdout, "root\n");
}

#[tokio::test]
async fn proxy_jump_one_hop() {
    let client = Client::new();
    // DEBUG1 logs the direct-tcpip request, which shows that the jump host forwarded.
    let jump = Sshd::start_with(&client.key, "DEBUG1", false, "");
    let target = Sshd::start(&client.key);
    client.trust(&target);

    let mut options = client.options(&target);
    options.proxy_jump = Some(format!("root@127.0.0.1:{}", jump.port));

    let Err(error) = connect(&options).await else {
        panic!("the jump host's unknown key must be rejected");
    };
    assert!(
        error
            .to_string()
            .contains(&format!("127.0.0.1:{}", jump.port)),
        "{error}"
    );

    client.trust(&jump);
    let connection = connect(&options)
        .await
        .expect("connects through the jump host");
    let output = connection.exec("echo through", b"").await.expect("runs");
    assert_eq!(output.stdout, "through\n");
    assert!(
        jump.log()
            .contains(&format!("target 127.0.0.1 port {}", target.port)),
        "the jump host did not forward: {}",
        jump.log()
    );
    connection.close().await;
}

#[tokio::test]
async fn connect_timeout_on_silent_server() {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let silent = tokio::spawn(async move {
        let mut open_streams = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open_streams.push(stream);
        }
    });

    let client = Client::new();
    let options = ConnectOptions {
        port: Some(port),
        connect_timeout: Duration::from_millis(500),
        ..client.options_for_port(port)
    };
    let result = tokio::time::timeout(Duration::from_secs(5), Connection::connect(&options))
        .await
        .expect("the connect timeout fires before the test guard");
    let Err(error) = result else {
        panic!("a silent server must time out");
    };
    assert!(matches!(error, TransportError::Unreachable(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains(&format!("`127.0.0.1:{port}` timed out")),
        "{error}"
    );
    silent.abort();
}

#[tokio::test]
async fn unreachable_port() {
    let port = free_port();
    let client = Client::new();
    let options = client.options_for_port(port);

    let Err(error) = connect(&options).await else {
        panic!("nothing listens on port {port}");
    };
    let message = error.to_string();
    assert!(matches!(error, TransportError::Unreachable(_)), "{message}");
    assert!(
        message.contains(&format!("`127.0.0.1:{port}`")),
        "{message}"
    );
    assert!(message.contains("refused"), "{message}");
}

impl Client {
    /// Options for a port without an sshd fixture behind it.
    fn options_for_port(&self, port: u16) -> ConnectOptions {
        ConnectOptions {
            name: "test-host".to_string(),
            kind: ConnectionKind::Ssh,
            host: "127.0.0.1".to_string(),
            port: Some(port),
            user: Some("root".to_string()),
            identity_files: vec![self.key.private.clone()],
            password: None,
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts_files: vec![self.known_hosts()],
            proxy_jump: None,
            ssh_config: Some(self.ssh_config()),
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::ZERO,
        }
    }
}

#[tokio::test]
async fn authentication_failure_lists_methods() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    client.trust(&sshd);

    let stranger = ClientKey::generate();
    let encrypted = client.dir.path().join("encrypted_key");
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "secret phrase",
        "-f",
        path_str(&encrypted),
    ]);

    let mut options = client.options(&sshd);
    options.identity_files = vec![encrypted.clone(), stranger.private.clone()];
    let Err(error) = connect(&options).await else {
        panic!("keys that are not authorized must fail");
    };
    let message = error.to_string();
    assert!(
        matches!(error, TransportError::Authentication(_)),
        "{message}"
    );
    assert!(
        message.contains(&format!("as `root` on `127.0.0.1:{}`", sshd.port)),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "key `{}` (encrypted, skipped)",
            encrypted.display()
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("key `{}`", stranger.private.display())),
        "{message}"
    );

    // The authorized key after the skipped ones still gets its turn.
    options.identity_files.push(client.key.private.clone());
    let connection = connect(&options).await.expect("the third key is accepted");
    connection.close().await;
}

/// Forwards TCP between a client and `target` until `frozen` is set, then drops all
/// traffic while keeping both sockets open, as a dead network path does.
async fn start_freezable_proxy(target: u16, frozen: Arc<std::sync::atomic::AtomicBool>) -> u16 {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let Ok((inbound, _)) = listener.accept().await else {
            return;
        };
        let outbound = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, target))
            .await
            .expect("proxy reaches sshd");
        let (mut in_read, mut in_write) = inbound.into_split();
        let (mut out_read, mut out_write) = outbound.into_split();
        let frozen_up = Arc::clone(&frozen);
        tokio::spawn(async move {
            let mut buffer = vec![0; 16384];
            while let Ok(n) = in_read.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                if !frozen_up.load(Ordering::SeqCst) {
                    let _ = out_write.write_all(&buffer[..n]).await;
                }
            }
        });
        let mut buffer = vec![0; 16384];
        while let Ok(n) = out_read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            if !frozen.load(Ordering::SeqCst) {
                let _ = in_write.write_all(&buffer[..n]).await;
            }
        }
    });
    port
}

#[tokio::test]
async fn keepalive_detects_dead_link() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key);
    let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let proxy_port = start_freezable_proxy(sshd.port, Arc::clone(&frozen)).await;

    // The proxy port is what the client connects to, so it is the known_hosts entry.
    fs::write(
        client.known_hosts(),
        format!("[127.0.0.1]:{proxy_port} {}\n", sshd.host_key),
    )
    .expect("known_hosts");
    let mut options = client.options(&sshd);
    options.port = Some(proxy_port);
    options.keepalive_interval = Duration::from_millis(300);

    let connection = connect(&options).await.expect("connects through the proxy");
    assert_eq!(
        connection.exec("echo up", b"").await.expect("runs").stdout,
        "up\n"
    );

    frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    let result = tokio::time::timeout(GUARD, connection.exec("echo up", b""))
        .await
        .expect("a dead link fails instead of hanging");
    let error = result.expect_err("the link is dead");
    assert!(matches!(error, TransportError::Exec(_)), "{error}");
}

const SUDO_USER: &str = "vpsforge-sudo";
const SUDO_PASSWORD: &str = "vpsforge-test-password";

/// Creates a user that logs in with `SUDO_PASSWORD` and needs it for sudo.
fn ensure_sudo_user() {
    let exists = Command::new("id")
        .arg(SUDO_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("id runs")
        .success();
    if !exists {
        let status = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", SUDO_USER])
            .status()
            .expect("useradd runs");
        assert!(status.success(), "useradd {SUDO_USER} failed");
    }

    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd runs");
    {
        use std::io::Write;
        let mut stdin = chpasswd.stdin.take().expect("chpasswd stdin");
        writeln!(stdin, "{SUDO_USER}:{SUDO_PASSWORD}").expect("write to chpasswd");
    }
    assert!(chpasswd.wait().expect("chpasswd finishes").success());

    fs::write(
        "/etc/sudoers.d/vpsforge-test",
        format!("{SUDO_USER} ALL=(ALL:ALL) ALL\n"),
    )
    .expect("sudoers drop-in");
}

#[tokio::test]
#[ignore = "needs sudo and a test user"]
async fn become_with_sudo_password() {
    ensure_sudo_user();
    let client = Client::new();
    let sshd = Sshd::start_with(&client.key, "ERROR", true, "");
    client.trust(&sshd);

    // Without identity files the login uses the password, although the client key would work.
    let mut options = client.options(&sshd);
    options.user = Some(SUDO_USER.to_string());
    options.identity_files = Vec::new();
    options.password = Some(Secret::new(SUDO_PASSWORD));
    let connection = connect(&options).await.expect("password login");
    assert_eq!(
        connection.exec("id -un", b"").await.expect("runs").stdout,
        format!("{SUDO_USER}\n")
    );

    let script = "id -u\n";
    let no_password = Become {
        user: "root".to_string(),
        password: None,
    };
    let error = connection
        .run_script(script, Some(&no_password))
        .await
        .expect_err("sudo needs a password");
    assert!(error.to_string().contains("pass `-K`"), "{error}");

    let wrong_password = Become {
        user: "root".to_string(),
        password: Some(Secret::new("wrong-password")),
    };
    let error = connection
        .run_script(script, Some(&wrong_password))
        .await
        .expect_err("sudo rejects the password");
    assert!(error.to_string().contains("rejected"), "{error}");
    assert!(!error.to_string().contains("wrong-password"), "{error}");

    let right_password = Become {
        user: "root".to_string(),
        password: Some(Secret::new(SUDO_PASSWORD)),
    };
    let output = connection
        .run_script(script, Some(&right_password))
        .await
        .expect("sudo accepts the password");
    assert_eq!(output.stdout, "0\n");
    assert_eq!(output.stderr, "");

    options.password = Some(Secret::new("wrong-password"));
    let Err(error) = connect(&options).await else {
        panic!("a wrong login password must fail");
    };
    assert!(
        matches!(error, TransportError::Authentication(_)),
        "{error}"
    );
    assert!(error.to_string().contains("password"), "{error}");
}
