//! Lab hosts against real systemd-nspawn containers: boot, SSH, apt, reboot,
//! idempotent `up`, complete `down`, the latency relay and the ACME CA.

#[path = "support/lab.rs"]
mod lab_support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use lab_support::{lab_command, Lab};

/// The tests share apt-cacher-ng's cache folder and the CPU, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn assert_ok(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns the time from TCP connect to a complete SSH banner line.
fn banner_time(address: SocketAddr) -> Duration {
    let start = Instant::now();
    let stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(5)).expect("connect to sshd");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set read timeout");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("read SSH banner");
    assert!(line.starts_with("SSH-2.0-"), "unexpected banner `{line}`");
    start.elapsed()
}

fn fastest_banner_time(address: SocketAddr) -> Duration {
    (0..3)
        .map(|_| banner_time(address))
        .min()
        .expect("three measurements")
}

fn supervisor_pids(lab: &Lab) -> Vec<u64> {
    lab.state()["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|host| host["supervisor_pid"].as_u64().expect("supervisor PID"))
        .collect()
}

/// Returns whether `pid` is a live process. A zombie left for PID 1 to reap counts as gone.
fn is_alive(pid: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    state != Some("Z")
}

fn recorded_pids(state: &serde_json::Value) -> Vec<u64> {
    let mut pids: Vec<u64> = state["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter_map(|host| host["supervisor_pid"].as_u64())
        .collect();
    pids.extend(state["apt_cacher_pid"].as_u64());
    pids.extend(state["acme"]["pebble_pid"].as_u64());
    pids.extend(state["acme"]["challtestsrv_pid"].as_u64());
    for relay in state["relays"].as_array().expect("relays") {
        pids.extend(relay["pid"].as_u64());
    }
    pids
}

fn nspawn_pids(lab: &Lab) -> Vec<u64> {
    lab.hosts
        .iter()
        .filter_map(|host| {
            let path = lab.dir.join("hosts").join(&host.name).join("nspawn.pid");
            std::fs::read_to_string(path).ok()?.trim().parse().ok()
        })
        .collect()
}

#[test]
#[ignore = "needs root and systemd-nspawn; run with --include-ignored"]
fn lab_lifecycle_up_apt_reboot_down() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut lab = Lab::up("lt-life", 2);
    assert_eq!(lab.hosts.len(), 2);
    let bridge = lab.state()["bridge"].as_str().expect("bridge").to_owned();

    for host in ["h1", "h2"] {
        let output = lab.ssh(host, "hostname; systemctl is-system-running --wait");
        let text = stdout(&output);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(host), "hostname of `{host}`");
        let system = lines.next().unwrap_or_default();
        assert!(
            system == "running" || system == "degraded",
            "systemd on `{host}` is `{system}`: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let resolved = lab.ssh("h1", "getent hosts h2.lab.test");
    assert!(
        stdout(&resolved).starts_with(lab.address("h2")),
        "h2.lab.test on h1: `{}`",
        stdout(&resolved)
    );

    let apt = lab.ssh(
        "h1",
        "timeout 300 sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx' \
         >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; exit 1; }; systemctl is-active nginx",
    );
    assert_ok(&apt, "apt-get install nginx through the cache");
    assert_eq!(stdout(&apt), "active");

    let before = supervisor_pids(&lab);
    lab.grow(2);
    assert_eq!(
        supervisor_pids(&lab),
        before,
        "a second `up 2` restarted hosts"
    );
    lab.grow(3);
    assert_eq!(lab.hosts.len(), 3);
    assert_eq!(
        supervisor_pids(&lab)[..2],
        before[..],
        "`up 3` restarted h1 or h2"
    );
    let third = lab.ssh("h3", "getent hosts h1.lab.test");
    assert!(stdout(&third).starts_with(lab.address("h1")));
    let first = lab.ssh("h1", "getent hosts h3.lab.test");
    assert!(
        stdout(&first).starts_with(lab.address("h3")),
        "h1 does not know h3"
    );

    let nspawn_before = nspawn_pids(&lab)[0];
    let _ = lab.ssh("h1", "systemctl reboot");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nspawn_now = nspawn_pids(&lab).first().copied();
        if nspawn_now.is_some_and(|pid| pid != nspawn_before)
            && lab.ssh("h1", "true").status.success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "h1 did not come back after reboot"
        );
        thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        stdout(&lab.ssh("h1", "systemctl is-active nginx")),
        "active"
    );

    let state = lab.state();
    let mut pids = recorded_pids(&state);
    pids.extend(nspawn_pids(&lab));
    let down = lab_command(&lab.name, &["down"]);
    assert_ok(&down, "lab down");

    for pid in pids {
        assert!(!is_alive(pid), "PID {pid} still runs after `lab down`");
    }
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    let links = stdout(&links);
    assert!(!links.contains(&bridge), "bridge `{bridge}` left behind");
    assert!(!links.contains("vb-lt-life"), "veth left behind:\n{links}");
    let mounts = std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts");
    assert!(
        !mounts.contains(&lab.dir.to_string_lossy().into_owned()),
        "mount left behind"
    );
    assert!(!lab.dir.join("state.json").exists());
}

#[test]
#[ignore = "needs root and systemd-nspawn; run with --include-ignored"]
fn relay_adds_delay_each_way() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let lab = Lab::up("lt-relay", 1);
    let direct: SocketAddr = format!("{}:22", lab.address("h1"))
        .parse()
        .expect("address");

    let output = lab_command(&lab.name, &["latency", "h1", "100"]);
    assert_ok(&output, "lab latency");
    let relayed: SocketAddr = stdout(&output).parse().expect("relay address on stdout");
    assert!(relayed.ip().is_loopback());

    let direct_time = fastest_banner_time(direct);
    let relayed_time = fastest_banner_time(relayed);
    assert!(
        relayed_time >= direct_time + Duration::from_millis(150),
        "relay added {:?} to {direct_time:?}",
        relayed_time.saturating_sub(direct_time)
    );

    let login = Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", lab.known_hosts.display()))
        .arg("-i")
        .arg(lab.key())
        .arg("-p")
        .arg(relayed.port().to_string())
        .args(["root@127.0.0.1", "hostname"])
        .output()
        .expect("ssh");
    assert_ok(&login, "ssh through the relay");
    assert_eq!(stdout(&login), "h1");

    let inventory = std::fs::read_to_string(lab.dir.join("inventory-latency.yaml"))
        .expect("inventory-latency.yaml");
    assert!(inventory.contains(&format!("ansible_port: {}", relayed.port())));
}

#[test]
#[ignore = "needs root and systemd-nspawn; run with --include-ignored"]
fn acme_issues_certificate_to_host() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let lab = Lab::up("lt-acme", 1);
    let output = lab_command(&lab.name, &["acme"]);
    assert_ok(&output, "lab acme");
    let bridge_address = lab.state()["subnet"]["third_octet"]
        .as_u64()
        .map(|octet| format!("10.77.{octet}.1"))
        .expect("subnet");
    let url = format!("https://{bridge_address}:14000/dir");
    assert!(
        stdout(&output).contains(&url),
        "URL missing: {}",
        stdout(&output)
    );

    let directory = lab.ssh("h1", &format!("curl -sSf {url}"));
    assert_ok(&directory, "curl of the ACME directory on h1");
    assert!(stdout(&directory).contains("newAccount"));

    let root = lab.dir.join("pebble-root.pem");
    let root_text = std::fs::read_to_string(&root).expect("pebble-root.pem");
    assert!(root_text.starts_with("-----BEGIN CERTIFICATE-----"));

    // certbot proves control of h1.lab.test over HTTP-01, which works only if
    // pebble resolves the name to h1 through challtestsrv.
    let issue = lab.ssh(
        "h1",
        &format!(
            "timeout 300 sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q certbot' \
             >/tmp/apt.log 2>&1 || {{ tail -20 /tmp/apt.log; exit 1; }}; \
             REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt timeout 120 certbot certonly --standalone \
             --non-interactive --agree-tos --register-unsafely-without-email --server {url} -d h1.lab.test"
        ),
    );
    assert_ok(&issue, "certbot certonly for h1.lab.test");

    let work = tempfile::tempdir().expect("temporary folder");
    for file in ["cert.pem", "chain.pem"] {
        let output = lab.ssh(
            "h1",
            &format!("cat /etc/letsencrypt/live/h1.lab.test/{file}"),
        );
        assert_ok(&output, &format!("reading {file} from h1"));
        std::fs::write(work.path().join(file), &output.stdout).expect("write certificate");
    }
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root)
        .arg("-untrusted")
        .arg(work.path().join("chain.pem"))
        .arg(work.path().join("cert.pem"))
        .output()
        .expect("run openssl verify");
    assert_ok(
        &verify,
        "openssl verify of the issued certificate against pebble-root.pem",
    );
}

#[test]
#[ignore = "needs root and systemd-nspawn; run with --include-ignored"]
fn two_labs_get_separate_subnets() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let first = Lab::up("lt-one", 1);
    let second = Lab::up("lt-two", 1);

    let first_state = first.state();
    let second_state = second.state();
    assert_ne!(first_state["bridge"], second_state["bridge"]);
    assert_ne!(first.address("h1"), second.address("h1"));

    for lab in [&first, &second] {
        let output = lab.ssh("h1", "hostname");
        assert_ok(&output, &format!("ssh to h1 of `{}`", lab.name));
        assert_eq!(stdout(&output), "h1");
    }
}

#[test]
#[ignore = "needs root and systemd-nspawn; run with --include-ignored"]
fn apply_through_relay_pays_round_trips() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let lab = Lab::up("lt-apply", 1);
    let output = lab_command(&lab.name, &["latency", "h1", "100"]);
    assert_ok(&output, "lab latency");

    let work = tempfile::tempdir().expect("temp dir");
    let playbook = work.path().join("site.yaml");
    std::fs::write(
        &playbook,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: { dest: /etc/vf-latency, content: \"x\\n\" }\n    - command: cat /etc/vf-latency\n      changed_when: false\n",
    )
    .expect("write playbook");
    let apply = |inventory: &Path| {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_vpsforge"))
            .arg("apply")
            .arg("-i")
            .arg(inventory)
            .arg("--known-hosts")
            .arg(&lab.known_hosts)
            .arg(&playbook)
            .output()
            .expect("run vpsforge apply");
        assert_ok(&output, "vpsforge apply");
        started.elapsed()
    };

    let direct = apply(&lab.inventory);
    let relayed = apply(&lab.dir.join("inventory-latency.yaml"));

    // Connecting alone takes several round trips, and each one now costs 200 ms more,
    // so the relayed run is at least two round trips slower whatever the machine's speed.
    assert!(
        relayed >= direct + Duration::from_millis(400),
        "direct run took {direct:?}, relayed run {relayed:?}"
    );
}
