//! Throwaway Debian hosts in systemd-nspawn containers, for tests and rehearsals.
//!
//! A lab is a bridge `vf-NAME` with its own /24, hosts `h1`…`hN` booted from a
//! shared debootstrap template through one overlay each, an apt-cacher-ng on
//! the bridge address (the hosts have no route out), and on request a local
//! ACME CA and latency relays. Every process the lab starts is recorded by PID
//! in `state.json` and stopped by that PID in `lab down`.

mod acme;
mod apt_cache;
mod host;
mod network;
mod process;
mod relay;
mod render;
mod state;
mod template;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::{LabArgs, LabCommand};
use state::{HostState, LabState, RelayState};

/// Root of the lab folders and of the shared subnet allocations.
const LAB_ROOT: &str = "/var/lib/vpsforge/lab";

/// Errors that stop the lab before it changes anything on this machine.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs Linux with systemd-nspawn; this is `{0}`")]
    NotLinux(&'static str),
    #[error("the lab needs root to create bridges, mounts and containers: run it with sudo")]
    NotRoot,
    #[error("`{program}` is not installed: install the `{package}` package")]
    MissingProgram {
        program: &'static str,
        package: &'static str,
    },
    #[error("invalid lab name `{0}`: use up to 32 lowercase letters, digits and dashes")]
    InvalidName(String),
    #[error("invalid host count `{count}`: use 1 to {max}")]
    InvalidCount { count: usize, max: usize },
    #[error("lab `{name}` is not running: start it with `vpsforge lab --name {name} up 1`")]
    NotRunning { name: String },
    #[error("host `{host}` is not in lab `{lab}`: the lab has {known}")]
    UnknownHost {
        host: String,
        lab: String,
        known: String,
    },
    #[error(
        "lab `{name}` runs {running}, not {requested}: run `vpsforge lab --name {name} down` first"
    )]
    ReleaseMismatch {
        name: String,
        running: String,
        requested: String,
    },
}

/// Files of one lab folder.
pub struct LabPaths {
    pub dir: PathBuf,
    pub key: PathBuf,
    pub inventory: PathBuf,
    pub latency_inventory: PathBuf,
    pub known_hosts: PathBuf,
    pub ssh_config: PathBuf,
    pub allocations: PathBuf,
}

impl LabPaths {
    /// Returns the paths of lab `name`: `$VPSFORGE_LAB_DIR` if set, else `/var/lib/vpsforge/lab/NAME`.
    pub fn new(name: &str) -> LabPaths {
        let dir = std::env::var_os("VPSFORGE_LAB_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(LAB_ROOT).join(name));
        LabPaths {
            key: dir.join("id_ed25519"),
            inventory: dir.join("inventory.yaml"),
            latency_inventory: dir.join("inventory-latency.yaml"),
            known_hosts: dir.join("known_hosts"),
            ssh_config: dir.join("ssh_config"),
            allocations: Path::new(LAB_ROOT).join("subnets.json"),
            dir,
        }
    }
}

pub fn run(args: &LabArgs) -> anyhow::Result<i32> {
    if !network::is_valid_lab_name(&args.name) {
        return Err(LabError::InvalidName(args.name.clone()).into());
    }
    let paths = LabPaths::new(&args.name);
    let name = args.name.as_str();

    // Commands that change the lab wait for each other, so that two `up` runs
    // never boot the same host twice.
    let changes_lab = matches!(
        args.command,
        LabCommand::Up { .. }
            | LabCommand::Down
            | LabCommand::Acme
            | LabCommand::Latency { .. }
            | LabCommand::Demo
    );
    let _lock = if changes_lab {
        check_machine()?;
        fs::create_dir_all(&paths.dir).with_context(|| {
            format!("failed to create the lab folder `{}`", paths.dir.display())
        })?;
        Some(process::lock_file(&paths.dir.join("lock"))?)
    } else {
        None
    };

    match &args.command {
        LabCommand::Up { count, release } => {
            up(&paths, name, *count, release.codename())?;
            print_usage(&paths);
            Ok(0)
        }
        LabCommand::Down => down(&paths, name),
        LabCommand::Status => status(&paths, name),
        LabCommand::Ssh { host, command } => ssh(&paths, name, host, command),
        LabCommand::Acme => {
            let url = start_acme(&paths, name)?;
            println!("ACME directory: {url}");
            println!(
                "pebble's issuing root: {}",
                acme::AcmePaths::new(&paths.dir).root.display()
            );
            Ok(0)
        }
        LabCommand::Latency { host, delay_ms } => latency(&paths, name, host, *delay_ms),
        LabCommand::Demo => demo(&paths, name),
        LabCommand::Supervise { host } => {
            let state = load_running(&paths, name)?;
            host::supervise(&paths, &state, host)
        }
        LabCommand::Relay {
            listen,
            target,
            delay_ms,
            ready_file,
        } => relay::run(
            listen,
            target,
            Duration::from_millis(*delay_ms),
            ready_file.as_deref(),
        ),
    }
}

/// Checks that this machine can run a lab before anything is changed.
fn check_machine() -> Result<(), LabError> {
    if !cfg!(target_os = "linux") {
        return Err(LabError::NotLinux(std::env::consts::OS));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::NotRoot);
    }
    let programs = [
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("apt-cacher-ng", "apt-cacher-ng"),
        ("ip", "iproute2"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
    ];
    for (program, package) in programs {
        if find_program(program).is_none() {
            return Err(LabError::MissingProgram { program, package });
        }
    }
    Ok(())
}

fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn load_running(paths: &LabPaths, name: &str) -> anyhow::Result<LabState> {
    LabState::load(&paths.dir)?.ok_or_else(|| {
        LabError::NotRunning {
            name: name.to_owned(),
        }
        .into()
    })
}

/// Boots hosts `h1`…`hCOUNT`. Hosts already running are kept, and none are removed.
fn up(paths: &LabPaths, name: &str, count: usize, release: &str) -> anyhow::Result<LabState> {
    if count == 0 || count > network::Subnet::max_hosts() {
        return Err(LabError::InvalidCount {
            count,
            max: network::Subnet::max_hosts(),
        }
        .into());
    }
    let started = Instant::now();
    fs::create_dir_all(&paths.dir)
        .with_context(|| format!("failed to create the lab folder `{}`", paths.dir.display()))?;

    let mut state = match LabState::load(&paths.dir)? {
        Some(state) => {
            let any_running = state.hosts.iter().any(is_host_running);
            if state.release != release && any_running {
                return Err(LabError::ReleaseMismatch {
                    name: name.to_owned(),
                    running: state.release,
                    requested: release.to_owned(),
                }
                .into());
            }
            LabState {
                release: release.to_owned(),
                ..state
            }
        }
        None => {
            let subnet = network::allocate_subnet(&paths.allocations, name)?;
            LabState::new(name, network::bridge_name(name), subnet, release)
        }
    };

    let template = template::ensure(release)?;
    host::raise_inotify_limit()?;
    network::create_bridge(&state.bridge, state.subnet)?;
    state.save(&paths.dir)?;
    ensure_lab_key(paths, name)?;
    apt_cache::ensure(paths, &mut state)?;

    for index in 1..=count {
        let host_name = format!("h{index}");
        if state.host(&host_name).is_none() {
            let address = state
                .subnet
                .host_address(index)
                .context("no address left in the lab subnet")?;
            state.hosts.push(HostState {
                name: host_name,
                address,
                supervisor_pid: None,
                host_keys: Vec::new(),
            });
        }
    }

    let authorized_keys = authorized_keys(paths)?;
    let mut booted = Vec::new();
    for position in 0..state.hosts.len() {
        if is_host_running(&state.hosts[position]) {
            continue;
        }
        let host = state.hosts[position].clone();
        // A host recorded but not running (after a crash or a reboot of this
        // machine) keeps its overlay, so it boots with its previous changes.
        host::stop(&paths.dir, &host)?;
        host::prepare(paths, &state, &host, &template, &authorized_keys)?;
        let pid = host::boot(paths, name, &host.name)?;
        state.hosts[position].supervisor_pid = Some(pid);
        state.save(&paths.dir)?;
        booted.push(position);
    }

    for &position in &booted {
        host::wait_for_ssh(&paths.dir, &state.hosts[position])?;
        let keys = host::read_host_keys(&paths.dir, &state.hosts[position].name)?;
        state.hosts[position].host_keys = keys;
    }
    for host in &state.hosts {
        host::update_etc_hosts(&paths.dir, &state, &host.name)?;
    }
    state.save(&paths.dir)?;
    write_access_files(paths, &state)?;

    if state.acme.is_some() && !booted.is_empty() {
        start_acme(paths, name)?;
    }
    eprintln!(
        "{} host(s) up in {:.1} s ({} booted now)",
        state.hosts.len(),
        started.elapsed().as_secs_f64(),
        booted.len()
    );
    Ok(state)
}

fn is_host_running(host: &HostState) -> bool {
    host.supervisor_pid
        .is_some_and(|pid| process::is_running(pid, &host::supervisor_marker(&host.name)))
}

/// Creates the lab's ed25519 key pair once, and keeps it across `lab down`.
fn ensure_lab_key(paths: &LabPaths, name: &str) -> anyhow::Result<()> {
    if paths.key.exists() {
        return Ok(());
    }
    process::run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            &format!("vpsforge-lab-{name}"),
            "-f",
            &paths.key.to_string_lossy(),
        ],
    )
    .context("failed to create the lab key pair")
}

/// Returns the lab public key followed by the user's `~/.ssh/id_*.pub` keys.
///
/// Under sudo the keys of the user who ran sudo are read as well, because that
/// user, not root, usually logs in to the hosts afterwards.
fn authorized_keys(paths: &LabPaths) -> anyhow::Result<String> {
    let lab_public = paths.key.with_extension("pub");
    let mut keys = fs::read_to_string(&lab_public)
        .with_context(|| format!("failed to read `{}`", lab_public.display()))?;

    let mut homes: Vec<PathBuf> = dirs::home_dir().into_iter().collect();
    if let Some(home) = std::env::var("SUDO_USER")
        .ok()
        .and_then(|user| user_home(&user))
    {
        if !homes.contains(&home) {
            homes.push(home);
        }
    }
    for home in homes {
        for key in user_public_keys(&home.join(".ssh")) {
            keys.push_str(key.trim_end());
            keys.push('\n');
        }
    }
    Ok(keys)
}

/// Reads the `id_*.pub` files of an `.ssh` folder, sorted by file name.
fn user_public_keys(ssh_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(ssh_dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            file.starts_with("id_") && file.ends_with(".pub")
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .collect()
}

/// Returns the home folder of `user` from the password database.
fn user_home(user: &str) -> Option<PathBuf> {
    use std::ffi::{CStr, CString, OsStr};
    use std::os::unix::ffi::OsStrExt;

    let name = CString::new(user).ok()?;
    // SAFETY: getpwnam returns null or a pointer to static storage, which is read
    // at once. The lab calls it before it starts any other thread.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: a non-null entry has a valid, NUL-terminated `pw_dir`.
    let dir = unsafe { CStr::from_ptr((*entry).pw_dir) };
    Some(PathBuf::from(OsStr::from_bytes(dir.to_bytes())))
}

fn write_access_files(paths: &LabPaths, state: &LabState) -> anyhow::Result<()> {
    template::write(&paths.inventory, &render::inventory(state, &paths.key))?;
    template::write(&paths.known_hosts, &render::known_hosts(state))?;
    template::write(
        &paths.ssh_config,
        &render::ssh_config(state, &paths.key, &paths.known_hosts),
    )?;
    if state.relays.is_empty() {
        let _ = fs::remove_file(&paths.latency_inventory);
    } else {
        template::write(
            &paths.latency_inventory,
            &render::latency_inventory(state, &paths.key),
        )?;
    }
    Ok(())
}

/// Stops everything the lab started, by recorded PID, and removes its mounts and bridge.
fn down(paths: &LabPaths, name: &str) -> anyhow::Result<i32> {
    let Some(mut state) = LabState::load(&paths.dir)? else {
        eprintln!("lab `{name}` is not running");
        return Ok(0);
    };

    for relay in state.relays.drain(..) {
        process::stop(relay.pid, "relay", Duration::from_secs(2));
    }
    acme::stop(&mut state);

    // The hosts power off in parallel, because each may take seconds.
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = state
            .hosts
            .iter()
            .map(|host| scope.spawn(|| host::stop(&paths.dir, host)))
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| match handle.join() {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(format!("{error:#}")),
                Err(_) => Some("a thread stopping a host panicked".to_owned()),
            })
            .collect()
    });
    if !failures.is_empty() {
        state.save(&paths.dir)?;
        bail!("failed to stop lab `{name}`:\n{}", failures.join("\n"));
    }

    if let Some(pid) = state.apt_cacher_pid.take() {
        process::stop(pid, "apt-cacher-ng", Duration::from_secs(5));
    }
    network::remove_bridge(&state.bridge)?;
    network::release_subnet(&paths.allocations, name)?;

    let hosts_dir = paths.dir.join("hosts");
    if hosts_dir.exists() {
        fs::remove_dir_all(&hosts_dir)
            .with_context(|| format!("failed to remove `{}`", hosts_dir.display()))?;
    }
    for file in [
        &paths.inventory,
        &paths.latency_inventory,
        &paths.known_hosts,
        &paths.ssh_config,
    ] {
        let _ = fs::remove_file(file);
    }
    fs::remove_file(LabState::path(&paths.dir))?;
    eprintln!("lab `{name}` is down");
    Ok(0)
}

fn status(paths: &LabPaths, name: &str) -> anyhow::Result<i32> {
    let Some(state) = LabState::load(&paths.dir)? else {
        println!("lab `{name}` is not running");
        return Ok(0);
    };
    println!(
        "lab `{name}`: {} on bridge {} ({}/24), folder {}",
        state.release,
        state.bridge,
        state.subnet.bridge_address(),
        paths.dir.display()
    );
    for host in &state.hosts {
        let running = if is_host_running(host) {
            "running"
        } else {
            "stopped"
        };
        println!("  {:<4} {:<14} {running}", host.name, host.address);
    }
    let apt = state
        .apt_cacher_pid
        .is_some_and(|pid| process::is_running(pid, "apt-cacher-ng"));
    println!(
        "  apt-cacher-ng: {}",
        if apt { "running" } else { "stopped" }
    );
    if let Some(acme) = &state.acme {
        let running = process::is_running(acme.pebble_pid, "pebble");
        println!(
            "  pebble: {} at {}",
            if running { "running" } else { "stopped" },
            acme.directory_url
        );
    }
    for relay in &state.relays {
        let running = process::is_running(relay.pid, "relay");
        println!(
            "  relay {} -> {} (+{} ms each way): {}",
            relay.listen,
            relay.host,
            relay.delay_ms,
            if running { "running" } else { "stopped" }
        );
    }
    Ok(0)
}

fn host_in_lab<'a>(state: &'a LabState, host: &str) -> Result<&'a HostState, LabError> {
    state.host(host).ok_or_else(|| LabError::UnknownHost {
        host: host.to_owned(),
        lab: state.name.clone(),
        known: state
            .hosts
            .iter()
            .map(|host| format!("`{}`", host.name))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn ssh_command(paths: &LabPaths, host: &str) -> Command {
    let mut command = Command::new("ssh");
    command.arg("-F").arg(&paths.ssh_config).arg(host);
    command
}

/// Replaces this process with the system `ssh` to `host`.
fn ssh(paths: &LabPaths, name: &str, host: &str, remote_command: &[String]) -> anyhow::Result<i32> {
    let state = load_running(paths, name)?;
    host_in_lab(&state, host)?;
    let error = ssh_command(paths, host).args(remote_command).exec();
    Err(error).context("failed to run `ssh`: install the `openssh-client` package")
}

/// Starts pebble, registers the hosts' names and installs the listener CA in every host.
fn start_acme(paths: &LabPaths, name: &str) -> anyhow::Result<String> {
    let mut state = load_running(paths, name)?;
    let programs = [
        ("pebble", "pebble"),
        ("pebble-challtestsrv", "pebble"),
        ("openssl", "openssl"),
        ("curl", "curl"),
    ];
    for (program, package) in programs {
        if find_program(program).is_none() {
            return Err(LabError::MissingProgram { program, package }.into());
        }
    }
    acme::start(paths, &mut state)?;
    state.save(&paths.dir)?;

    for host in &state.hosts {
        acme::install_ca(
            &paths.dir,
            &host::HostPaths::new(&paths.dir, &host.name).merged,
        )?;
        let output = ssh_command(paths, &host.name)
            .args(["-o", "BatchMode=yes", "update-ca-certificates"])
            .output()
            .context("failed to run `ssh`")?;
        if !output.status.success() {
            bail!(
                "`update-ca-certificates` failed on host `{}`: {}",
                host.name,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    let url = acme::directory_url(&state.subnet.bridge_address());
    Ok(url)
}

/// Starts a relay on 127.0.0.1 in front of `host`'s port 22 and records it.
fn latency(paths: &LabPaths, name: &str, host: &str, delay_ms: u64) -> anyhow::Result<i32> {
    let mut state = load_running(paths, name)?;
    let address = host_in_lab(&state, host)?.address.clone();
    let ready_file = paths.dir.join(format!("relay-{host}-{delay_ms}.addr"));
    let _ = fs::remove_file(&ready_file);

    let mut command = process::vpsforge_command();
    command
        .args(["lab", "--name", name, "relay", "127.0.0.1:0"])
        .arg(format!("{address}:22"))
        .arg(delay_ms.to_string())
        .arg("--ready-file")
        .arg(&ready_file);
    let log = paths.dir.join(format!("relay-{host}.log"));
    let pid = process::spawn_detached(command, &log)?;

    let deadline = Instant::now() + Duration::from_secs(5);
    let listen = loop {
        if let Ok(text) = fs::read_to_string(&ready_file) {
            if !text.is_empty() {
                break text;
            }
        }
        if !process::is_running(pid, "relay") || Instant::now() >= deadline {
            bail!(
                "the relay for host `{host}` did not start; last lines of `{}`:\n{}",
                log.display(),
                process::log_tail(&log, 10)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = fs::remove_file(&ready_file);

    state.relays.push(RelayState {
        host: host.to_owned(),
        listen: listen.clone(),
        delay_ms,
        pid,
    });
    state.save(&paths.dir)?;
    write_access_files(paths, &state)?;
    println!("{listen}");
    eprintln!(
        "relay to `{host}` with {delay_ms} ms each way; inventory: {}",
        paths.latency_inventory.display()
    );
    Ok(0)
}

/// Boots one host, starts the ACME CA and applies `playbooks/site.yaml` to it.
fn demo(paths: &LabPaths, name: &str) -> anyhow::Result<i32> {
    let playbook = Path::new("playbooks/site.yaml");
    if !playbook.is_file() {
        let here = std::env::current_dir().unwrap_or_default();
        bail!(
            "playbook `playbooks/site.yaml` not found in `{}`: run `vpsforge lab demo` from the folder that contains `playbooks/`",
            here.display()
        );
    }
    let state = up(paths, name, 1, crate::cli::Release::Bookworm.codename())?;
    let url = start_acme(paths, name)?;
    eprintln!("ACME directory: {url}");
    let bridge = url
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let address = state
        .hosts
        .first()
        .map(|host| host.address.clone())
        .unwrap_or_default();

    // The bundled site.yaml targets the groups `web` and `monitors`, so the demo points
    // both at the lab's host and uses the lab's ACME CA. It also trusts SSH from the
    // bridge address, because the controller's connections would meet ufw's rate limit.
    let vars_file = paths.dir.join("demo-vars.yaml");
    let vars = format!(
        "site_web_hosts: lab\nsite_monitor_hosts: lab\nsite_domains: [h1.lab.test]\n\
         certbot_server: {url}\ncertbot_ca_bundle: {ca}\nfirewall_ssh_allow_from: [{bridge}]\n\
         monitoring_targets: [\"https://h1.lab.test/\"]\nmonitoring_ca_file: {root}\n",
        ca = paths.dir.join("acme-ca.pem").display(),
        root = paths.dir.join("pebble-root.pem").display(),
    );
    fs::write(&vars_file, vars)
        .with_context(|| format!("failed to write `{}`", vars_file.display()))?;

    let mut apply = process::vpsforge_command();
    apply
        .arg("apply")
        .arg("-i")
        .arg(&paths.inventory)
        .arg("--known-hosts")
        .arg(&paths.known_hosts)
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .arg(playbook);
    let status = apply.status().context("failed to run `vpsforge apply`")?;

    println!(
        "open the site: curl --resolve h1.lab.test:443:{address} --cacert {} https://h1.lab.test/",
        paths.dir.join("pebble-root.pem").display()
    );
    println!(
        "rerun (it should report changed=0): vpsforge apply -i {} --known-hosts {} -e @{} {}",
        paths.inventory.display(),
        paths.known_hosts.display(),
        vars_file.display(),
        playbook.display()
    );
    println!("remove the lab: vpsforge lab down");
    Ok(status.code().unwrap_or(1))
}

fn print_usage(paths: &LabPaths) {
    println!("{}", paths.inventory.display());
    eprintln!(
        "apply playbooks with: vpsforge apply -i {} --known-hosts {} PLAYBOOK",
        paths.inventory.display(),
        paths.known_hosts.display()
    );
    eprintln!("log in with: ssh -F {} h1", paths.ssh_config.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_public_keys_are_sorted_id_files() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let files = [
            ("id_rsa.pub", "ssh-rsa B user\n"),
            ("id_ed25519.pub", "ssh-ed25519 A user\n"),
            ("id_ed25519", "private key"),
            ("other.pub", "ssh-ed25519 C other\n"),
        ];
        for (name, text) in files {
            fs::write(dir.path().join(name), text).expect("write key");
        }

        let keys = user_public_keys(dir.path());

        assert_eq!(keys, vec!["ssh-ed25519 A user\n", "ssh-rsa B user\n"]);
        assert!(user_public_keys(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn root_home_is_found() {
        assert_eq!(user_home("root"), Some(PathBuf::from("/root")));
        assert_eq!(user_home("no-such-user-here"), None);
    }
}
