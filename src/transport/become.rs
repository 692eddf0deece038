//! Privilege escalation with sudo: the command line and standard input for a
//! script run as another user, and the reading of sudo's own failures.

use crate::modules::common::quote;

use super::{Become, ExecOutput, TransportError};

/// Builds the command and standard input that run `script` through sudo as `become.user`.
///
/// Without a password, `sudo -n` fails at once instead of waiting for a prompt. With a
/// password, `-k` makes sudo ask for it even when a cached credential exists, and the
/// password line goes first on standard input. sudo skips the prompt for root and for
/// `NOPASSWD` rules though, which would leave the password line for the shell to run.
/// So a marker line follows the password, and the shell under sudo discards every line
/// up to the marker before it reads the script. `read` takes one byte at a time from a
/// pipe, so the script after the marker stays unread for `exec sh`.
///
/// NOTE: after a wrong password, sudo reads up to two more lines as new attempts (three
/// in all by default), so the marker and the first script line can reach sudo as
/// password guesses and show up as failed attempts in its log.
pub fn sudo_invocation(script: &str, r#become: &Become) -> (String, Vec<u8>) {
    let user = quote(&r#become.user);
    let Some(password) = &r#become.password else {
        return match super::inline_script(script) {
            Some(quoted) => (
                format!("sudo -n -H -u {user} -- sh -c {quoted}"),
                Vec::new(),
            ),
            None => (
                format!("sudo -n -H -u {user} -- sh"),
                script.as_bytes().to_vec(),
            ),
        };
    };

    let marker = input_marker();
    let skip_to_script =
        format!("while IFS= read -r line; do [ \"$line\" = {marker} ] && break; done; exec sh");
    let command = format!(
        "sudo -k -S -p '' -H -u {user} -- sh -c {}",
        quote(&skip_to_script)
    );

    let mut stdin = Vec::with_capacity(password.expose().len() + marker.len() + script.len() + 2);
    stdin.extend_from_slice(password.expose().as_bytes());
    stdin.push(b'\n');
    stdin.extend_from_slice(marker.as_bytes());
    stdin.push(b'\n');
    stdin.extend_from_slice(script.as_bytes());
    (command, stdin)
}

/// Returns a marker line that differs per call, so that no password equals it by chance.
fn input_marker() -> String {
    use std::hash::{BuildHasher, Hasher};

    let nonce = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("vpsforge-script-{nonce:016x}")
}

/// Turns sudo's own failures into errors that tell the user what to do. Other results, including
/// failures of the script itself, are returned unchanged.
pub fn check_sudo_output(
    name: &str,
    r#become: &Become,
    output: ExecOutput,
) -> Result<ExecOutput, TransportError> {
    if output.exit_code == 0 {
        return Ok(output);
    }

    let stderr = output.stderr.as_str();
    let user = &r#become.user;
    if stderr.contains("sudo: a password is required") {
        return Err(TransportError::Exec(format!(
            "`{name}`: sudo needs a password to become `{user}`; pass `-K` or set `ansible_become_password`"
        )));
    }
    if stderr.contains("incorrect password attempt") || stderr.contains("Sorry, try again") {
        return Err(TransportError::Exec(format!(
            "`{name}`: sudo rejected the become password for `{user}`; check `ansible_become_password` or the password given to `-K`"
        )));
    }
    if stderr.contains("is not in the sudoers file") || stderr.contains("is not allowed to execute")
    {
        return Err(TransportError::Exec(format!(
            "`{name}`: sudo does not allow the remote user to become `{user}`: {}",
            stderr.trim()
        )));
    }
    if output.exit_code == 127 && stderr.contains("sudo") && stderr.contains("not found") {
        return Err(TransportError::Exec(format!(
            "`{name}`: sudo is not installed; install it on the host or remove `become`"
        )));
    }
    if stderr.starts_with("sudo: unknown user") {
        return Err(TransportError::Exec(format!(
            "`{name}`: the become user `{user}` does not exist on the host"
        )));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn become_as(user: &str, password: Option<&str>) -> Become {
        Become {
            user: user.to_string(),
            password: password.map(Secret::new),
        }
    }

    fn failed(stderr: &str) -> ExecOutput {
        ExecOutput {
            exit_code: 1,
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn sudo_invocation_without_password() {
        let (command, stdin) = sudo_invocation("echo hi\n", &become_as("root", None));
        assert_eq!(
            command,
            format!("sudo -n -H -u root -- sh -c {}", quote("echo hi\n"))
        );
        assert!(
            stdin.is_empty(),
            "a short script travels on the command line"
        );

        let long = format!("echo {}\n", "x".repeat(200 * 1024));
        let (command, stdin) = sudo_invocation(&long, &become_as("root", None));
        assert_eq!(command, "sudo -n -H -u root -- sh");
        assert_eq!(
            stdin,
            long.as_bytes(),
            "a long script travels on standard input"
        );
    }

    #[test]
    fn sudo_invocation_with_password() {
        let (command, stdin) = sudo_invocation("id\n", &become_as("web user", Some("pw")));
        let stdin = String::from_utf8(stdin).expect("text");
        let (password, rest) = stdin.split_once('\n').expect("password line");
        let (marker, script) = rest.split_once('\n').expect("marker line");
        assert_eq!(password, "pw");
        assert!(marker.starts_with("vpsforge-script-"), "{marker}");
        assert_eq!(script, "id\n");
        assert!(
            command.starts_with("sudo -k -S -p '' -H -u web' user' -- sh -c "),
            "{command}"
        );
        assert!(command.contains(marker), "{command}");
    }

    #[test]
    fn check_sudo_output_cases() {
        let root = become_as("root", Some("hunter2"));
        let cases = [
            (
                "sudo: a password is required\n",
                "`h`: sudo needs a password to become `root`; pass `-K` or set `ansible_become_password`",
            ),
            (
                "Sorry, try again.\nsudo: 1 incorrect password attempt\n",
                "`h`: sudo rejected the become password for `root`; check `ansible_become_password` or the password given to `-K`",
            ),
            (
                "sudo: unknown user nobody2\n",
                "`h`: the become user `root` does not exist on the host",
            ),
        ];
        for (stderr, expected) in cases {
            let error = check_sudo_output("h", &root, failed(stderr)).expect_err(stderr);
            assert_eq!(error.to_string(), expected);
            assert!(!error.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn check_sudo_output_passes_script_failures() {
        let output = failed("grep: /etc/missing: No such file or directory\n");
        let passed = check_sudo_output("h", &become_as("root", None), output.clone());
        assert_eq!(passed.expect("not a sudo failure"), output);
    }
}
