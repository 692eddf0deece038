//! Running helper commands and managing the detached processes a lab starts.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Runs `program` with `args` and returns its standard output, or an error with its standard error.
pub fn run_output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to run `{program}`: is it installed?"))?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

pub fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    run_output(program, args).map(drop)
}

/// Returns a command that runs this vpsforge executable again.
///
/// It runs `/proc/self/exe`, which works even after a rebuild replaced the file,
/// whereas the path from `current_exe` then ends in " (deleted)" and cannot be run.
pub fn vpsforge_command() -> Command {
    let mut command = Command::new("/proc/self/exe");
    if let Ok(path) = std::env::current_exe() {
        command.arg0(path);
    }
    command
}

/// Starts `command` in its own session with output appended to `log`, and returns its PID.
///
/// The new session keeps the process alive after the calling `vpsforge` exits
/// and keeps the terminal's Ctrl-C away from it.
pub fn spawn_detached(mut command: Command, log: &Path) -> anyhow::Result<u32> {
    let output = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("failed to open log file `{}`", log.display()))?;
    let errors = output.try_clone()?;
    command.stdin(Stdio::null()).stdout(output).stderr(errors);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .spawn()
        .with_context(|| format!("failed to start `{program}`"))?;
    Ok(child.id())
}

/// Returns whether `pid` is alive and its command line contains `marker`.
///
/// The marker check keeps a recycled PID from being mistaken for, and signalled as,
/// a process the lab started.
pub fn is_running(pid: u32, marker: &str) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    if is_zombie(pid) {
        return false;
    }
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    cmdline.contains(marker)
}

fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The state letter follows the command name, which is in brackets and may contain spaces.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z")
}

pub fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill has no memory effects, and a stale PID yields ESRCH, which is ignored.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Sends SIGTERM to `pid`, waits up to `grace` for it to exit, then sends SIGKILL.
///
/// Returns false when the process was still alive after SIGKILL and a further second.
pub fn stop(pid: u32, marker: &str, grace: Duration) -> bool {
    if !is_running(pid, marker) {
        return true;
    }
    signal(pid, libc::SIGTERM);
    if wait_exit(pid, marker, grace) {
        return true;
    }
    tracing::warn!(pid, marker, "process ignored SIGTERM, sending SIGKILL");
    signal(pid, libc::SIGKILL);
    wait_exit(pid, marker, Duration::from_secs(1))
}

pub fn wait_exit(pid: u32, marker: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !is_running(pid, marker) {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    !is_running(pid, marker)
}

/// Opens `path` and takes an exclusive lock on it, waiting for other holders.
///
/// The lock lasts until the returned file is dropped. Child processes do not
/// inherit it, because std opens files with close-on-exec.
pub fn lock_file(path: &Path) -> anyhow::Result<File> {
    let file =
        File::create(path).with_context(|| format!("failed to open `{}`", path.display()))?;
    // SAFETY: flock only reads the descriptor, which stays open as long as `file`.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!(
            "failed to lock `{}`: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(file)
}

/// Returns the last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_last_lines() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("log");
        fs::write(&path, "a\nb\nc\nd\n").expect("write log");

        assert_eq!(log_tail(&path, 2), "c\nd");
        assert_eq!(log_tail(&path, 10), "a\nb\nc\nd");
        assert_eq!(log_tail(&dir.path().join("missing"), 2), "");
    }

    #[test]
    fn own_process_is_running_with_marker() {
        let pid = std::process::id();
        assert!(is_running(pid, ""));
        assert!(!is_running(pid, "no-such-marker-in-a-test-command-line"));
    }
}
