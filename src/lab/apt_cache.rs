//! The lab's own apt-cacher-ng on the bridge address: the hosts' only way to apt.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::state::LabState;
use super::{process, template, LabPaths};

/// Shared by all labs, so that packages are downloaded once.
const APT_CACHE_DIR: &str = "/var/cache/vpsforge/apt-cacher-ng";

const APT_CACHER_PORT: u16 = 3142;

/// Configuration that sends Debian requests to deb.debian.org. Debian's default
/// configuration (3.7.4) has an empty `backends_debian`, and apt-cacher-ng then
/// picks another mirror name from its list, which may not resolve where the lab runs.
const CONFIG: &str = "\
SupportDir: /usr/lib/apt-cacher-ng
Remap-debrep: file:deb_mirror*.gz /debian ; http://deb.debian.org/debian/
Remap-secdeb: security.debian.org security.debian.org/debian-security deb.debian.org/debian-security /debian-security ; http://deb.debian.org/debian-security/
ExThreshold: 4
";

/// Starts this lab's own apt-cacher-ng on the bridge address, unless it runs.
pub fn ensure(paths: &LabPaths, state: &mut LabState) -> anyhow::Result<()> {
    if state
        .apt_cacher_pid
        .is_some_and(|pid| process::is_running(pid, "apt-cacher-ng"))
    {
        return Ok(());
    }
    let log_dir = paths.dir.join("apt-cacher-ng");
    fs::create_dir_all(&log_dir)?;
    fs::create_dir_all(APT_CACHE_DIR)?;
    let bridge_address = state.subnet.bridge_address();

    // NOTE: two labs running at once share the cache folder with two
    // apt-cacher-ng processes, and apt-cacher-ng does not document that as safe.
    let config_dir = log_dir.join("conf");
    template::write(&config_dir.join("acng.conf"), CONFIG)?;
    let mut command = Command::new("apt-cacher-ng");
    command
        .arg("-c")
        .arg(&config_dir)
        .arg("ForeGround=1")
        .arg(format!("BindAddress={bridge_address}"))
        .arg(format!("Port={APT_CACHER_PORT}"))
        .arg(format!("CacheDir={APT_CACHE_DIR}"))
        .arg(format!("LogDir={}", log_dir.display()))
        .arg(format!("SocketPath={}", log_dir.join("socket").display()))
        .arg(format!("PidFile={}", log_dir.join("pid").display()));
    let pid = process::spawn_detached(command, &log_dir.join("output.log"))?;
    state.apt_cacher_pid = Some(pid);
    state.save(&paths.dir)?;

    let address = SocketAddr::new(
        bridge_address.parse().context("invalid bridge address")?,
        APT_CACHER_PORT,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_err() {
        if !process::is_running(pid, "apt-cacher-ng") || Instant::now() >= deadline {
            bail!(
                "apt-cacher-ng did not start on `{address}`; last lines of `{}`:\n{}",
                log_dir.join("output.log").display(),
                process::log_tail(&log_dir.join("output.log"), 10)
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
