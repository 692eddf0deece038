//! The template root of each Debian release, built once with debootstrap and shared
//! read-only by every host as the lower layer of its overlay.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::process::{log_tail, run};

pub const CACHE_DIR: &str = "/var/cache/vpsforge/lab";

const PACKAGES: &str = "systemd,systemd-sysv,dbus,openssh-server,iproute2,ca-certificates,\
cron,procps,python3,sudo,curl,gnupg";

const MIRROR: &str = "http://deb.debian.org/debian";

/// Written last, so a root without it is an interrupted build and is never booted.
const STAMP: &str = "complete";

/// Regenerates the host keys that the template deliberately lacks, so each host
/// gets its own. The reset of `ExecStartPre` keeps Debian's `sshd -t` check but
/// moves it after the key generation, because it fails without host keys.
const SSH_KEYGEN_DROP_IN: &str = "\
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
";

const SSHD_CONFIG: &str = "PermitRootLogin prohibit-password\n";

/// A download that stalls fails and is retried instead of hanging `apt-get`. Such
/// hangs were seen with apt-cacher-ng when ten hosts ran `apt-get update` at once. The proxy
/// itself is set per host, because it is the address of each lab's bridge.
const APT_TIMEOUTS: &str = "Acquire::http::Timeout \"30\";\nAcquire::Retries \"3\";\n";

/// Returns the template root for `release`, building it first if it is not cached.
pub fn ensure(release: &str) -> anyhow::Result<PathBuf> {
    let release_dir = Path::new(CACHE_DIR).join(release);
    let root = release_dir.join("root");
    if release_dir.join(STAMP).exists() {
        return Ok(root);
    }

    check_release_supported(release)?;
    fs::create_dir_all(&release_dir)
        .with_context(|| format!("failed to create `{}`", release_dir.display()))?;
    let building = release_dir.join("root.partial");
    if building.exists() {
        fs::remove_dir_all(&building).with_context(|| {
            format!(
                "failed to remove interrupted build `{}`",
                building.display()
            )
        })?;
    }
    if root.exists() {
        fs::remove_dir_all(&root)
            .with_context(|| format!("failed to remove stale root `{}`", root.display()))?;
    }

    eprintln!(
        "building the {release} template in {} (once; this takes a few minutes)",
        root.display()
    );
    debootstrap(release, &release_dir, &building)?;
    bake(&building)?;
    fs::rename(&building, &root)
        .with_context(|| format!("failed to move the template to `{}`", root.display()))?;
    fs::write(release_dir.join(STAMP), "")
        .with_context(|| format!("failed to write the stamp in `{}`", release_dir.display()))?;
    Ok(root)
}

fn check_release_supported(release: &str) -> anyhow::Result<()> {
    let script = Path::new("/usr/share/debootstrap/scripts").join(release);
    if !script.exists() {
        bail!(
            "debootstrap on this machine has no script for `{release}` ({} is missing): \
             install a newer debootstrap",
            script.display()
        );
    }
    Ok(())
}

fn debootstrap(release: &str, release_dir: &Path, root: &Path) -> anyhow::Result<()> {
    let log = release_dir.join("debootstrap.log");
    // Downloaded packages are kept so a rebuild does not download them again.
    let packages = Path::new(CACHE_DIR).join("debs").join(release);
    fs::create_dir_all(&packages)?;

    let log_file =
        fs::File::create(&log).with_context(|| format!("failed to create `{}`", log.display()))?;
    let status = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--cache-dir={}", packages.display()))
        .arg(format!("--include={PACKAGES}"))
        .arg(release)
        .arg(root)
        .arg(MIRROR)
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .status()
        .context("failed to run `debootstrap`: install the `debootstrap` package")?;
    if !status.success() {
        bail!(
            "debootstrap of `{release}` failed ({status}); last lines of `{}`:\n{}",
            log.display(),
            log_tail(&log, 15)
        );
    }
    Ok(())
}

/// Applies the lab's changes to a fresh debootstrap root.
fn bake(root: &Path) -> anyhow::Result<()> {
    run(
        "chroot",
        &[
            &root.to_string_lossy(),
            "systemctl",
            "enable",
            "systemd-networkd",
        ],
    )
    .context("failed to enable systemd-networkd in the template")?;

    for entry in fs::read_dir(root.join("etc/ssh"))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("ssh_host_") {
            fs::remove_file(&path)?;
        }
    }
    write(
        &root.join("etc/systemd/system/ssh.service.d/vpsforge-host-keys.conf"),
        SSH_KEYGEN_DROP_IN,
    )?;
    write(
        &root.join("etc/ssh/sshd_config.d/vpsforge.conf"),
        SSHD_CONFIG,
    )?;
    write(
        &root.join("etc/apt/apt.conf.d/80vpsforge-timeouts"),
        APT_TIMEOUTS,
    )?;

    // An empty machine-id makes systemd generate a new one at each host's first boot.
    write(&root.join("etc/machine-id"), "")?;
    let dbus_id = root.join("var/lib/dbus/machine-id");
    if dbus_id.exists() || dbus_id.is_symlink() {
        fs::remove_file(&dbus_id)?;
    }
    symlink("/etc/machine-id", &dbus_id)?;

    // Without DNS the hosts cannot resolve anything but /etc/hosts, so stale
    // nameservers from the build machine are removed.
    let resolv = root.join("etc/resolv.conf");
    if resolv.exists() || resolv.is_symlink() {
        fs::remove_file(&resolv)?;
    }
    write(&resolv, "")?;
    Ok(())
}

pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    fs::write(path, text).with_context(|| format!("failed to write `{}`", path.display()))
}
