//! One lab host: its overlay root, the files written into it, and its systemd-nspawn
//! container run by a supervisor process.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::process::{self, log_tail, run};
use super::state::{HostState, LabState};
use super::template::write;
use super::{render, LabPaths};

/// systemd-nspawn exits with this code when the container asked for a reboot.
const REBOOT_EXIT_CODE: i32 = 133;

/// Maximum time from starting a container to its sshd sending the SSH banner.
const SSH_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Time a container gets to power off after SIGTERM before it is killed.
pub const POWEROFF_TIMEOUT: Duration = Duration::from_secs(20);

/// Each booted systemd uses about seven inotify instances (measured with Debian 12
/// hosts), and the usual default
/// of 128 stops near 17 hosts with "Too many open files".
const MIN_INOTIFY_INSTANCES: u64 = 8192;

/// Paths of one host under the lab folder.
pub struct HostPaths {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    pub log: PathBuf,
    pub nspawn_pid: PathBuf,
}

impl HostPaths {
    pub fn new(lab_dir: &Path, host: &str) -> HostPaths {
        let dir = lab_dir.join("hosts").join(host);
        HostPaths {
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            log: dir.join("console.log"),
            nspawn_pid: dir.join("nspawn.pid"),
        }
    }
}

/// Returns the machine name given to systemd-nspawn, unique across labs because
/// nspawn derives the bridge-side veth name (`vb-…`) from it.
pub fn machine_name(lab: &str, host: &str) -> String {
    if lab == "default" {
        host.to_owned()
    } else {
        format!("{lab}-{host}")
    }
}

pub fn raise_inotify_limit() -> anyhow::Result<()> {
    let path = "/proc/sys/fs/inotify/max_user_instances";
    let current: u64 = fs::read_to_string(path)
        .with_context(|| format!("failed to read `{path}`"))?
        .trim()
        .parse()
        .with_context(|| format!("invalid number in `{path}`"))?;
    if current < MIN_INOTIFY_INSTANCES {
        fs::write(path, MIN_INOTIFY_INSTANCES.to_string())
            .with_context(|| format!("failed to raise `{path}` to {MIN_INOTIFY_INSTANCES}"))?;
    }
    Ok(())
}

/// Mounts the host's overlay on the template root and writes its own files into it.
pub fn prepare(
    paths: &LabPaths,
    state: &LabState,
    host: &HostState,
    template: &Path,
    authorized_keys: &str,
) -> anyhow::Result<()> {
    let host_paths = HostPaths::new(&paths.dir, &host.name);
    for dir in [&host_paths.upper, &host_paths.work, &host_paths.merged] {
        fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    if !is_mounted(&host_paths.merged) {
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            template.display(),
            host_paths.upper.display(),
            host_paths.work.display()
        );
        run(
            "mount",
            &[
                "-t",
                "overlay",
                "overlay",
                "-o",
                &options,
                &host_paths.merged.to_string_lossy(),
            ],
        )
        .with_context(|| format!("failed to mount the overlay root of `{}`", host.name))?;
    }

    let root = &host_paths.merged;
    write(
        &root.join("etc/systemd/network/10-host0.network"),
        &render::network_file(&host.address),
    )?;
    write(&root.join("etc/hostname"), &format!("{}\n", host.name))?;
    write(
        &root.join("etc/hosts"),
        &render::etc_hosts(state, &host.name),
    )?;
    write(
        &root.join("etc/apt/apt.conf.d/01vpsforge-proxy"),
        &render::apt_proxy(&state.subnet.bridge_address()),
    )?;

    let ssh_dir = root.join("root/.ssh");
    write(&ssh_dir.join("authorized_keys"), authorized_keys)?;
    set_mode(&ssh_dir, 0o700)?;
    set_mode(&ssh_dir.join("authorized_keys"), 0o600)?;
    Ok(())
}

/// Rewrites `/etc/hosts` of a running host, so it resolves hosts added after it.
pub fn update_etc_hosts(lab_dir: &Path, state: &LabState, host: &str) -> anyhow::Result<()> {
    let merged = HostPaths::new(lab_dir, host).merged;
    write(&merged.join("etc/hosts"), &render::etc_hosts(state, host))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to set the mode of `{}`", path.display()))
}

/// Starts the supervisor that boots the host, and returns its PID.
pub fn boot(paths: &LabPaths, lab: &str, host: &str) -> anyhow::Result<u32> {
    let host_paths = HostPaths::new(&paths.dir, host);
    let mut command = process::vpsforge_command();
    command
        .args(["lab", "--name", lab, "supervise", host])
        .env("VPSFORGE_LAB_DIR", &paths.dir);
    process::spawn_detached(command, &host_paths.log)
}

/// Returns the command-line text that identifies a host's supervisor in `/proc/PID/cmdline`.
///
/// `process::is_running` turns the NUL after each argument into a space, so the
/// trailing space keeps the marker of `h1` from matching the supervisor of `h10`.
pub fn supervisor_marker(host: &str) -> String {
    format!("supervise {host} ")
}

/// Waits until the host's sshd sends its banner, failing early if the supervisor exits.
pub fn wait_for_ssh(lab_dir: &Path, host: &HostState) -> anyhow::Result<()> {
    let log = HostPaths::new(lab_dir, &host.name).log;
    let address: SocketAddr = format!("{}:22", host.address)
        .parse()
        .with_context(|| format!("invalid host address `{}`", host.address))?;
    let deadline = Instant::now() + SSH_READY_TIMEOUT;
    let marker = supervisor_marker(&host.name);

    loop {
        if read_banner(address).is_some() {
            return Ok(());
        }
        let supervisor_alive = host
            .supervisor_pid
            .is_some_and(|pid| process::is_running(pid, &marker));
        if !supervisor_alive {
            bail!(
                "host `{}` stopped while booting; last lines of `{}`:\n{}",
                host.name,
                log.display(),
                log_tail(&log, 20)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out after {} s waiting for sshd on host `{}` ({address}); see `{}`",
                SSH_READY_TIMEOUT.as_secs(),
                host.name,
                log.display()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Connects to `address` and returns the SSH identification line the server sends.
pub fn read_banner(address: SocketAddr) -> Option<String> {
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.starts_with("SSH-").then(|| line.trim_end().to_owned())
}

/// Reads the host keys that sshd generated at first boot, as `TYPE BASE64` lines.
pub fn read_host_keys(lab_dir: &Path, host: &str) -> anyhow::Result<Vec<String>> {
    let ssh_dir = HostPaths::new(lab_dir, host).merged.join("etc/ssh");
    let mut keys = Vec::new();
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let path = ssh_dir.join(format!("ssh_host_{kind}_key.pub"));
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let mut fields = text.split_whitespace();
        if let (Some(kind), Some(key)) = (fields.next(), fields.next()) {
            keys.push(format!("{kind} {key}"));
        }
    }
    if keys.is_empty() {
        bail!(
            "host `{host}` has no host keys in `{}` although sshd is running",
            ssh_dir.display()
        );
    }
    Ok(keys)
}

/// Powers the host off through its supervisor, kills what remains, and unmounts its root.
pub fn stop(lab_dir: &Path, host: &HostState) -> anyhow::Result<()> {
    let host_paths = HostPaths::new(lab_dir, &host.name);
    if let Some(pid) = host.supervisor_pid {
        let marker = supervisor_marker(&host.name);
        if !process::stop(pid, &marker, POWEROFF_TIMEOUT + Duration::from_secs(5)) {
            bail!(
                "supervisor of host `{}` (PID {pid}) did not exit",
                host.name
            );
        }
    }
    // The supervisor kills systemd-nspawn itself, but a supervisor killed by
    // SIGKILL could not, so the recorded nspawn PID is checked as well.
    if let Some(pid) = read_pid(&host_paths.nspawn_pid) {
        if !process::stop(pid, "systemd-nspawn", Duration::from_secs(5)) {
            bail!(
                "systemd-nspawn of host `{}` (PID {pid}) did not exit",
                host.name
            );
        }
    }
    kill_container_orphans(&host_paths.upper);
    if is_mounted(&host_paths.merged) {
        run("umount", &[&host_paths.merged.to_string_lossy()])
            .with_context(|| format!("failed to unmount the root of host `{}`", host.name))?;
    }
    Ok(())
}

/// Kills every process whose root file system is this host's overlay. A container
/// whose systemd-nspawn was killed with SIGKILL (when the session that started the
/// lab ended, say) keeps running without it and holds the mount and the address.
/// Such processes are found by the `upperdir` of the overlay mounted at their `/`,
/// since `/proc/PID/root` shows `/` for processes in another mount namespace.
fn kill_container_orphans(upper: &Path) {
    let marker = format!("upperdir={},", upper.display());
    let marker_at_end = format!("upperdir={}", upper.display());
    let rooted_in_overlay = |pid: i32| -> bool {
        let Ok(mountinfo) = fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            return false;
        };
        mountinfo.lines().any(|line| {
            line.split(' ').nth(4) == Some("/")
                && (line.contains(&marker) || line.ends_with(&marker_at_end))
        })
    };
    let find = || -> Vec<i32> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| rooted_in_overlay(*pid))
            .collect()
    };
    for _ in 0..50 {
        let orphans = find();
        if orphans.is_empty() {
            return;
        }
        for pid in &orphans {
            // SAFETY: kill(2) has no memory-safety preconditions; the PIDs are those of
            // processes whose root is this lab host's overlay.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    tracing::warn!(upper = %upper.display(), "processes of a stopped lab host did not exit");
}

pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn is_mounted(path: &Path) -> bool {
    let Ok(mounts) = fs::read_to_string("/proc/mounts") else {
        return false;
    };
    let target = path.to_string_lossy();
    mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|mount_point| mount_point == target)
}

/// Runs systemd-nspawn for one host until it powers off, booting it again after a reboot.
///
/// SIGTERM to the supervisor is forwarded to systemd-nspawn, which then asks the
/// container's systemd for a clean poweroff. The supervisor kills nspawn when the
/// poweroff takes longer than [`POWEROFF_TIMEOUT`].
pub fn supervise(paths: &LabPaths, state: &LabState, host: &str) -> anyhow::Result<i32> {
    let host_paths = HostPaths::new(&paths.dir, host);
    let machine = machine_name(&state.name, host);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            let mut child = tokio::process::Command::new("systemd-nspawn")
                .arg("-b")
                .arg("-D")
                .arg(&host_paths.merged)
                .args(["-M", &machine])
                .args(["--register=no", "--keep-unit"])
                .arg(format!("--network-bridge={}", state.bridge))
                .args(["--resolv-conf=off", "--timezone=off"])
                .kill_on_drop(true)
                .spawn()
                .context("failed to start `systemd-nspawn`")?;
            let pid = child.id().context("systemd-nspawn exited at once")?;
            fs::write(&host_paths.nspawn_pid, pid.to_string())?;

            tokio::select! {
                status = child.wait() => {
                    let status = status?;
                    if status.code() == Some(REBOOT_EXIT_CODE) {
                        eprintln!("vpsforge: host `{host}` requested a reboot, booting it again");
                        continue;
                    }
                    let _ = fs::remove_file(&host_paths.nspawn_pid);
                    eprintln!("vpsforge: host `{host}` stopped ({status})");
                    return Ok(status.code().unwrap_or(1));
                }
                _ = terminate.recv() => {
                    process::signal(pid, libc::SIGTERM);
                    let waited = tokio::time::timeout(POWEROFF_TIMEOUT, child.wait()).await;
                    if waited.is_err() {
                        eprintln!("vpsforge: host `{host}` did not power off in {} s, killing it", POWEROFF_TIMEOUT.as_secs());
                        child.kill().await?;
                    }
                    let _ = fs::remove_file(&host_paths.nspawn_pid);
                    return Ok(0);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisor_marker_matches_one_host() {
        let cmdline = "/usr/bin/vpsforge lab --name default supervise h10 ";
        assert!(cmdline.contains(&supervisor_marker("h10")));
        assert!(!cmdline.contains(&supervisor_marker("h1")));
    }

    #[test]
    fn machine_names_are_unique_per_lab() {
        assert_eq!(machine_name("default", "h1"), "h1");
        assert_eq!(machine_name("ci", "h1"), "ci-h1");
    }

    #[test]
    fn host_paths_live_under_lab_folder() {
        let paths = HostPaths::new(Path::new("/lab"), "h2");
        assert_eq!(paths.merged, Path::new("/lab/hosts/h2/merged"));
        assert_eq!(paths.upper, Path::new("/lab/hosts/h2/upper"));
        assert_eq!(paths.log, Path::new("/lab/hosts/h2/console.log"));
    }

    #[test]
    fn root_is_mounted_and_unknown_path_is_not() {
        assert!(is_mounted(Path::new("/")));
        assert!(!is_mounted(Path::new("/no/such/mount/point")));
    }
}
