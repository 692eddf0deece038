//! Runs the local transport (`ansible_connection: local`) through `Connection`.

use std::time::Duration;

use vpsforge::secret::Secret;
use vpsforge::transport::{Become, ConnectOptions, Connection, ConnectionKind, HostKeyPolicy};

fn local_options() -> ConnectOptions {
    ConnectOptions {
        name: "localhost".to_string(),
        kind: ConnectionKind::Local,
        host: "localhost".to_string(),
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

#[tokio::test]
async fn local_run_script_without_become() {
    let connection = Connection::connect(&local_options()).await.expect("local");
    let output = connection
        .run_script("echo \"$0\"\necho oops >&2\nexit 2\n", None)
        .await
        .expect("runs");
    assert_eq!(output.stdout, "sh\n");
    assert_eq!(output.stderr, "oops\n");
    assert_eq!(output.exit_code, 2);
}

#[tokio::test]
async fn local_run_script_become_root() {
    let connection = Connection::connect(&local_options()).await.expect("local");
    let r#become = Become {
        user: "root".to_string(),
        password: Some(Secret::new("unused-password")),
    };
    let output = connection
        .run_script("id -u\n", Some(&r#become))
        .await
        .expect("runs");
    assert_eq!(output.stderr, "");
    assert_eq!(output.stdout, "0\n");
}

#[test]
fn become_debug_hides_password() {
    let r#become = Become {
        user: "root".to_string(),
        password: Some(Secret::new("hunter2")),
    };
    let debug = format!("{become:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    let mut options = local_options();
    options.password = Some(Secret::new("hunter2"));
    let debug = format!("{options:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
}
