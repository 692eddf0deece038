//! `ansible_connection: local`: commands run on the controller through `sh -c`.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{ExecOutput, TransportError};

/// Runs `command` through `sh -c` with `stdin` as its standard input.
pub async fn exec(name: &str, command: &str, stdin: &[u8]) -> Result<ExecOutput, TransportError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| TransportError::Exec(format!("`{name}`: cannot start `sh`: {error}")))?;

    let mut input = child.stdin.take();
    let write = async move {
        if let Some(input) = input.as_mut() {
            // A command may exit without reading all of its input; its exit status is
            // what matters then, so a broken pipe is not an error.
            if let Err(error) = input.write_all(stdin).await {
                tracing::trace!(%error, "standard input not fully written");
            }
        }
        drop(input);
    };
    let (output, ()) = tokio::join!(child.wait_with_output(), write);
    let output = output.map_err(|error| {
        TransportError::Exec(format!("`{name}`: waiting for `sh` failed: {error}"))
    })?;

    let exit_code = match (output.status.code(), output.status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => {
            return Err(TransportError::Exec(format!(
                "`{name}`: the command was killed by signal {signal}"
            )));
        }
        (None, None) => {
            return Err(TransportError::Exec(format!(
                "`{name}`: the command ended without an exit status"
            )));
        }
    };
    Ok(ExecOutput {
        exit_code,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exec_returns_streams_and_status() {
        let output = exec("local", "cat; echo err >&2; exit 3", b"in put")
            .await
            .expect("runs");
        assert_eq!(output.stdout, "in put");
        assert_eq!(output.stderr, "err\n");
        assert_eq!(output.exit_code, 3);
    }

    #[tokio::test]
    async fn exec_ignores_unread_stdin() {
        let big = vec![b'x'; 1 << 20];
        let output = exec("local", "exit 0", &big).await.expect("runs");
        assert_eq!(output.exit_code, 0);
    }

    #[tokio::test]
    async fn exec_reports_signal() {
        let error = exec("local", "kill -9 $$", b"").await.expect_err("killed");
        assert_eq!(
            error.to_string(),
            "`local`: the command was killed by signal 9"
        );
    }
}
