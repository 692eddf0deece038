//! End-to-end tests of `playbooks/site.yaml` on fresh lab hosts with the lab's ACME CA.
//!
//! Each test boots its own lab, starts pebble, writes an inventory that points
//! the certbot role at pebble, and applies the bundled roles over real SSH. The
//! host is then checked from the controller (HTTPS, the redirect, a closed
//! port, sslyze's Mozilla profile check) and on the host (`certbot renew
//! --dry-run`, the cron entry, drift repair). The bookworm test then switches
//! to a standby certificate whose OCSP responder, `openssl ocsp`, runs on the
//! controller, and checks that nginx staples its response. One test closes
//! port 80 and obtains the certificate through DNS-01 instead.
//!
//! These tests need root, systemd-nspawn, debootstrap, pebble, and sslyze in
//! `target/sslyze-venv`, which `tools/test` installs. A plain `cargo test`
//! ignores them, and `cargo test -- --include-ignored` runs them.

#[path = "support/lab.rs"]
mod lab;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use lab::{lab_command, lab_dir, Lab};

/// The tests share apt-cacher-ng's cache and the CPU, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The host name pebble's DNS resolves to lab host `h1`.
const DOMAIN: &str = "h1.lab.test";

const INVENTORY: &str = "inventory.yaml";

/// A port that nothing in site.yaml opens; the drift test opens it by hand.
const CLOSED_PORT: u16 = 8081;

/// One `vpsforge apply` run, parsed from its JSON lines.
struct RunOutput {
    exit_code: i32,
    events: Vec<Value>,
    stderr: String,
    elapsed: Duration,
}

impl RunOutput {
    fn recap(&self, field: &str) -> u64 {
        self.events
            .iter()
            .find(|event| event["event"] == "recap")
            .and_then(|event| event["hosts"]["h1"][field].as_u64())
            .unwrap_or(u64::MAX)
    }

    fn changed(&self) -> u64 {
        self.recap("changed")
    }

    /// Returns the names of the tasks that changed (or would change) the host.
    fn changed_tasks(&self) -> BTreeSet<String> {
        self.events
            .iter()
            .filter(|event| event["event"] == "task" && event["changed"] == true)
            .filter_map(|event| event["task"].as_str().map(str::to_owned))
            .collect()
    }

    fn describe(&self) -> String {
        let lines: Vec<String> = self
            .events
            .iter()
            .filter(|event| event["status"] != "ok" && event["status"] != "skipped")
            .map(|event| event.to_string())
            .collect();
        format!(
            "exit {}; events other than ok and skipped:\n{}\nstderr:\n{}",
            self.exit_code,
            lines.join("\n"),
            self.stderr
        )
    }
}

/// A lab with the ACME CA running and an inventory that puts `h1` in group `web`.
struct Site {
    lab: Lab,
    work: tempfile::TempDir,
    acme_url: String,
    /// The controller's address on the lab bridge, where pebble and challtestsrv listen.
    bridge: String,
    address: String,
}

impl Site {
    /// Boots one host of `release` in lab `name`, starts pebble and writes an
    /// inventory that also puts `h1` in group `monitors`.
    fn up(name: &str, release: &str) -> Site {
        let site = Site::boot(name, release);
        site.write_inventory(serde_json::Map::new(), true);
        site
    }

    /// Boots one host of `release` in lab `name` and starts pebble, without writing an inventory.
    fn boot(name: &str, release: &str) -> Site {
        let name = &lab::checkout_name(name);
        // A lab left over from an interrupted run would keep its old release.
        let _ = lab_command(name, &["down"]);
        let output = lab_command(name, &["up", "--release", release, "1"]);
        assert_success(&output, &format!("vpsforge lab --name {name} up"));
        let mut lab = Lab {
            name: name.to_owned(),
            dir: lab_dir(name),
            inventory: lab_dir(name).join("inventory.yaml"),
            known_hosts: lab_dir(name).join("known_hosts"),
            hosts: Vec::new(),
        };
        lab.hosts = lab.state()["hosts"]
            .as_array()
            .expect("`hosts` in state.json")
            .iter()
            .map(|host| lab::LabHost {
                name: host["name"].as_str().expect("host name").to_owned(),
                address: host["address"].as_str().expect("host address").to_owned(),
            })
            .collect();

        let output = lab_command(name, &["acme"]);
        assert_success(&output, &format!("vpsforge lab --name {name} acme"));
        let acme_url = String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("ACME directory: "))
            .expect("`lab acme` prints the ACME directory")
            .trim()
            .to_owned();
        let bridge = acme_url
            .trim_start_matches("https://")
            .split(':')
            .next()
            .expect("bridge address in the ACME URL")
            .to_owned();

        let address = lab.address("h1").to_owned();
        let work = tempfile::tempdir().expect("temporary folder");
        Site {
            lab,
            work,
            acme_url,
            bridge,
            address,
        }
    }

    /// Writes the inventory: `h1` in group `web` with `web_vars` added to the
    /// group's variables, and in group `monitors` when `monitors` is true.
    /// JSON is valid YAML, so the inventory is written as JSON.
    fn write_inventory(&self, web_vars: serde_json::Map<String, Value>, monitors: bool) {
        // The controller reaches the host from the bridge address, and its many
        // short SSH connections would trip ufw's rate limit, so the test trusts it.
        let mut vars = serde_json::json!({
            "site_domains": [DOMAIN],
            "certbot_server": self.acme_url,
            "certbot_ca_bundle": self.lab.dir.join("acme-ca.pem"),
            "firewall_ssh_allow_from": [self.bridge],
        });
        vars.as_object_mut()
            .expect("the variables are an object")
            .extend(web_vars);
        let h1 = serde_json::json!({
            "ansible_host": self.address,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": self.lab.key(),
        });
        let mut children = serde_json::json!({
            "web": {"hosts": {"h1": h1}, "vars": vars},
        });
        if monitors {
            children["monitors"] = serde_json::json!({
                "hosts": {"h1": null},
                "vars": {
                    "monitoring_targets": [format!("https://{DOMAIN}/")],
                    "monitoring_ca_file": self.lab.dir.join("pebble-root.pem"),
                },
            });
        }
        let inventory = serde_json::json!({"all": {"children": children}});
        std::fs::write(
            self.work.path().join(INVENTORY),
            serde_json::to_string_pretty(&inventory).expect("inventory as JSON"),
        )
        .expect("write the inventory");
    }

    fn apply(&self, extra: &[&str]) -> RunOutput {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_vpsforge"))
            .arg("apply")
            .arg("-i")
            .arg(self.work.path().join(INVENTORY))
            .arg("--known-hosts")
            .arg(&self.lab.known_hosts)
            .args(["--format", "json"])
            .args(extra)
            .arg(site_playbook())
            .output()
            .expect("run vpsforge");
        RunOutput {
            exit_code: output.status.code().unwrap_or(-1),
            events: String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// Runs `command` on h1 as root and returns its standard output; fails the test if it fails.
    #[track_caller]
    fn ssh(&self, command: &str) -> String {
        let output = self.lab.ssh("h1", command);
        assert_success(&output, command);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs curl on the controller against h1 under its domain name, trusting pebble's root.
    #[track_caller]
    fn curl(&self, url: &str) -> String {
        self.curl_trusting(url, &self.lab.dir.join("pebble-root.pem"))
    }

    /// Runs curl against h1 under its domain name, trusting the CAs in `ca_file`.
    ///
    /// `systemctl reload nginx` returns before the new workers accept connections,
    /// so a failed attempt is repeated for up to ten seconds before the test fails.
    #[track_caller]
    fn curl_trusting(&self, url: &str, ca_file: &Path) -> String {
        let port = if url.starts_with("https:") { 443 } else { 80 };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = Command::new("curl")
                .args(["-sS", "--max-time", "10", "--include"])
                .arg("--resolve")
                .arg(format!("{DOMAIN}:{port}:{}", self.address))
                .arg("--cacert")
                .arg(ca_file)
                .arg(url)
                .output()
                .expect("run curl");
            if output.status.success() || Instant::now() >= deadline {
                assert_success(&output, &format!("curl {url}"));
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs sslyze's Mozilla check for `profile` and returns the names of its findings.
    fn sslyze_findings(&self, profile: &str) -> BTreeSet<String> {
        let sslyze = sslyze_path();
        assert!(
            sslyze.is_file(),
            "sslyze not found at `{}`: run tools/test, which installs it",
            sslyze.display()
        );
        let output = Command::new(&sslyze)
            .arg(format!("--mozilla_config={profile}"))
            .arg("--certinfo_ca_file")
            .arg(self.lab.dir.join("pebble-root.pem"))
            .arg(format!("{DOMAIN}:443{{{}}}", self.address))
            .output()
            .expect("run sslyze");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let compliance = text
            .split_once("COMPLIANCE AGAINST TLS CONFIGURATION")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("sslyze printed no compliance section:\n{text}"));
        let findings: BTreeSet<String> = compliance
            .lines()
            .filter_map(|line| line.trim().strip_prefix("* "))
            .filter_map(|finding| finding.split_once(':').map(|(name, _)| name.to_owned()))
            .collect();
        let compliant = compliance.contains("OK - Compliant");
        assert_eq!(
            compliant,
            findings.is_empty(),
            "sslyze's verdict and findings disagree:\n{compliance}"
        );
        findings
    }
}

fn site_playbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/site.yaml")
}

fn sslyze_path() -> PathBuf {
    std::env::var_os("SSLYZE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sslyze-venv/bin/sslyze")
        })
}

#[track_caller]
fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "`{what}` failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns the value of header `name` in curl's `--include` output, ignoring the name's case.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn assert_converges(site: &Site) {
    // On a fresh host, check mode must predict the whole run without failing,
    // although the packages it would install and their files are missing.
    let predicted = site.apply(&["--check"]);
    eprintln!(
        "--check on a fresh host: {:.1} s",
        predicted.elapsed.as_secs_f64()
    );
    assert_eq!(
        predicted.exit_code,
        0,
        "--check on a fresh host failed:\n{}",
        predicted.describe()
    );
    assert!(
        predicted.changed() > 0,
        "--check on a fresh host predicted no change"
    );
    let nginx = site.ssh("dpkg-query -W -f='${db:Status-Abbrev}' nginx 2>/dev/null || true");
    assert!(!nginx.starts_with("ii"), "--check installed nginx: {nginx}");

    let first = site.apply(&[]);
    eprintln!("first apply: {:.1} s", first.elapsed.as_secs_f64());
    assert_eq!(
        first.exit_code,
        0,
        "first apply failed:\n{}",
        first.describe()
    );
    assert!(first.changed() > 0, "first apply changed nothing");

    let second = site.apply(&["--detailed-exitcode"]);
    eprintln!("second apply: {:.1} s", second.elapsed.as_secs_f64());
    assert_eq!(
        second.exit_code,
        0,
        "second apply should change nothing:\n{}",
        second.describe()
    );
    assert_eq!(second.changed(), 0, "{}", second.describe());

    let check = site.apply(&["--check", "--detailed-exitcode"]);
    eprintln!("--check: {:.1} s", check.elapsed.as_secs_f64());
    assert_eq!(
        check.exit_code,
        0,
        "--check after apply should find nothing to change:\n{}",
        check.describe()
    );
    assert_eq!(check.changed(), 0, "{}", check.describe());
}

fn assert_serves_https(site: &Site) {
    let response = site.curl(&format!("https://{DOMAIN}/"));
    assert!(
        response.starts_with("HTTP/2 200"),
        "HTTPS should answer 200 over HTTP/2:\n{response}"
    );
    assert!(
        response.contains("Hello from Flask behind nginx"),
        "{response}"
    );
    // ProxyFix must make the app see the scheme nginx received.
    assert!(response.contains("scheme: https"), "{response}");

    let expected_headers = [
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        ("x-frame-options", "DENY"),
    ];
    for (name, value) in expected_headers {
        assert_eq!(header(&response, name), Some(value), "{response}");
    }
    let policy = header(&response, "content-security-policy").unwrap_or_default();
    assert!(policy.contains("frame-ancestors 'none'"), "{response}");
    assert_eq!(header(&response, "server"), Some("nginx"), "{response}");

    let cookie = header(&response, "set-cookie").unwrap_or_default();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(
            cookie.contains(attribute),
            "session cookie lacks `{attribute}`: {cookie}"
        );
    }
}

fn assert_http_redirects(site: &Site) {
    let redirect = site.curl(&format!("http://{DOMAIN}/some/path?q=1"));
    assert!(
        redirect.starts_with("HTTP/1.1 301"),
        "HTTP should redirect:\n{redirect}"
    );
    assert_eq!(
        header(&redirect, "location"),
        Some(format!("https://{DOMAIN}/some/path?q=1").as_str())
    );
}

/// Starts a listener on a port the firewall does not allow and checks that the
/// controller's connection attempt is dropped while the host itself can connect.
fn assert_port_closed(site: &Site) {
    site.ssh(&format!(
        "systemctl stop vf-closed-port 2>/dev/null; systemctl reset-failed vf-closed-port 2>/dev/null; \
         systemd-run --unit=vf-closed-port /usr/bin/python3 -m http.server --bind 0.0.0.0 {CLOSED_PORT} && \
         for i in 1 2 3 4 5 6 7 8 9 10; do \
           curl -s -o /dev/null http://127.0.0.1:{CLOSED_PORT}/ && exit 0; sleep 0.5; done; exit 1"
    ));
    let address: SocketAddr = format!("{}:{CLOSED_PORT}", site.address)
        .parse()
        .expect("socket address");
    let attempt = TcpStream::connect_timeout(&address, Duration::from_secs(3));
    assert!(
        attempt.is_err(),
        "port {CLOSED_PORT} accepted a connection from the controller"
    );
}

fn assert_renewal(site: &Site) {
    let renew = site.ssh(&format!(
        "REQUESTS_CA_BUNDLE=/etc/letsencrypt/vpsforge-acme-ca.pem \
         certbot renew --dry-run --no-random-sleep-on-renew --server {} 2>&1",
        site.acme_url
    ));
    assert!(
        renew.contains("all simulated renewals succeeded"),
        "certbot renew --dry-run:\n{renew}"
    );

    let cron = site.ssh("cat /etc/cron.d/vpsforge-certbot");
    assert!(cron.contains("CRON_TZ=\"Etc/UTC\"\n"), "{cron}");
    let job = cron
        .lines()
        .find(|line| line.ends_with("root test -x /usr/bin/certbot && certbot -q renew"))
        .unwrap_or_else(|| panic!("no renewal job in the cron file:\n{cron}"));
    assert!(job.contains(" 3,15 * * * "), "{job}");

    let timer = site.ssh("systemctl is-enabled certbot.timer || true");
    assert_eq!(timer.trim(), "disabled");
}

/// Checks that blackbox_exporter probes the site and Prometheus loaded the alert rules.
fn assert_monitoring(site: &Site) {
    let probe = site.ssh(&format!(
        "curl -sS 'http://127.0.0.1:9115/probe?module=https_2xx&target=https://{DOMAIN}/'"
    ));
    for metric in [
        "probe_success 1",
        "probe_http_status_code 200",
        "probe_tls_version_info{version=\"TLS 1.3\"} 1",
    ] {
        assert!(
            probe.lines().any(|line| line == metric),
            "blackbox_exporter's probe lacks `{metric}`:\n{probe}"
        );
    }
    assert!(probe.contains("probe_ssl_earliest_cert_expiry "), "{probe}");

    let rules = site.ssh(
        "for i in $(seq 1 30); do curl -sf http://127.0.0.1:9090/api/v1/rules && exit 0; sleep 1; done; exit 1",
    );
    for alert in [
        "CertificateExpiresSoon",
        "TLSVersionBelow12",
        "SlowTLSHandshake",
        "HTTPSEndpointDown",
    ] {
        assert!(
            rules.contains(&format!("\"name\":\"{alert}\"")),
            "Prometheus has no rule `{alert}`:\n{rules}"
        );
    }
}

/// The serial numbers `make_standby_certificate` gives its certificates, in the
/// hexadecimal form that `openssl ocsp` looks up in its index.
const STANDBY_SERIAL: &str = "5741";
const RESPONDER_SERIAL: &str = "5742";

/// Runs `openssl ARGS...` in `dir` and fails the test if it fails.
fn run_openssl(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert_success(&output, &format!("openssl {}", args.join(" ")));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Creates, in `dir`, a CA and a certificate for the domain from it, valid for
/// `days`, that names `ocsp_url` as its OCSP responder. The CA delegates OCSP
/// signing to a responder certificate, and `index.txt` lists the domain's
/// certificate as valid, as `openssl ocsp -index` reads it.
fn make_standby_certificate(dir: &Path, days: u32, ocsp_url: &str) {
    let days = days.to_string();
    run_openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-days",
            &days,
            "-subj",
            "/CN=vpsforge standby CA",
            "-keyout",
            "standby-ca.key",
            "-out",
            "standby-ca.pem",
        ],
    );
    std::fs::write(
        dir.join("standby.ext"),
        format!(
            "basicConstraints = critical, CA:FALSE\nsubjectAltName = DNS:{DOMAIN}\n\
             extendedKeyUsage = serverAuth\nauthorityInfoAccess = OCSP;URI:{ocsp_url}\n"
        ),
    )
    .expect("write the extensions file");
    std::fs::write(
        dir.join("responder.ext"),
        "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n\
         extendedKeyUsage = critical, OCSPSigning\n",
    )
    .expect("write the responder's extensions file");

    let certificates = [
        ("standby", format!("/CN={DOMAIN}"), STANDBY_SERIAL),
        (
            "responder",
            "/CN=vpsforge standby OCSP responder".to_owned(),
            RESPONDER_SERIAL,
        ),
    ];
    for (name, subject, serial) in &certificates {
        run_openssl(
            dir,
            &[
                "req",
                "-new",
                "-nodes",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-subj",
                subject,
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        run_openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "standby-ca.pem",
                "-CAkey",
                "standby-ca.key",
                "-set_serial",
                &format!("0x{serial}"),
                "-days",
                &days,
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }

    // An index line is the status (V for valid), the expiry as YYMMDDHHMMSSZ, an
    // empty revocation date, the serial, the file name (unknown) and the subject.
    let end_date = run_openssl(
        dir,
        &[
            "x509",
            "-noout",
            "-enddate",
            "-dateopt",
            "iso_8601",
            "-in",
            "standby.pem",
        ],
    );
    let expiry: String = end_date
        .trim()
        .trim_start_matches("notAfter=")
        .chars()
        .filter(|character| character.is_ascii_alphanumeric())
        .skip(2)
        .collect();
    std::fs::write(
        dir.join("index.txt"),
        format!("V\t{expiry}\t\t{STANDBY_SERIAL}\tunknown\t/CN={DOMAIN}\n"),
    )
    .expect("write the OCSP index");
}

/// An `openssl ocsp` responder on the controller, killed by its PID when dropped,
/// so that a failing test does not leave it running.
struct OcspResponder {
    child: Child,
    log: PathBuf,
    /// The URL that hosts on the lab bridge reach the responder at.
    url: String,
}

impl OcspResponder {
    /// Starts the responder for the CA that `make_standby_certificate` made in
    /// `dir`, on `port` of every address, and waits until it returns `good` for
    /// the standby certificate through `bridge`.
    fn start(dir: &Path, bridge: &str, port: u16) -> OcspResponder {
        let log = dir.join("ocsp-responder.log");
        let log_file = std::fs::File::create(&log).expect("create the responder's log");
        let child = Command::new("openssl")
            .args(["ocsp", "-index", "index.txt", "-CA", "standby-ca.pem"])
            .args(["-rsigner", "responder.pem", "-rkey", "responder.key"])
            .args(["-ndays", "1", "-ignore_err", "-port"])
            .arg(port.to_string())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("duplicate the log's handle"))
            .stderr(log_file)
            .spawn()
            .expect("start openssl ocsp");
        let responder = OcspResponder {
            child,
            log,
            url: format!("http://{bridge}:{port}"),
        };

        // A connection closed without a request leaves `openssl ocsp` (OpenSSL
        // 3.0.19) waiting on it, so the test waits for the response to a real
        // request.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let check = Command::new("openssl")
                .args(["ocsp", "-issuer", "standby-ca.pem", "-cert", "standby.pem"])
                .args(["-CAfile", "standby-ca.pem", "-timeout", "5", "-url"])
                .arg(&responder.url)
                .current_dir(dir)
                .output()
                .expect("run openssl ocsp as a client");
            let response = String::from_utf8_lossy(&check.stdout);
            if response.contains("standby.pem: good") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the OCSP responder at {} does not return `good`:\n{response}{}\n{}",
                responder.url,
                String::from_utf8_lossy(&check.stderr),
                responder.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        responder
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        if let Err(error) = self.child.kill() {
            eprintln!(
                "failed to stop the OCSP responder (PID {}): {error}",
                self.child.id()
            );
        }
        let _ = self.child.wait();
    }
}

/// Returns a TCP port that nothing on the controller listens on at the moment.
fn unused_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

/// Returns the lines of nginx's site configuration on h1 that set up OCSP
/// stapling, the resolver included.
fn stapling_directives(site: &Site) -> Vec<String> {
    site.ssh(
        "grep -E '^ *(ssl_stapling|ssl_stapling_verify|ssl_trusted_certificate|resolver) ' \
         /etc/nginx/conf.d/vpsforge-site.conf || true",
    )
    .lines()
    .map(|line| line.trim().to_owned())
    .collect()
}

/// Runs `openssl s_client -status` against h1 until nginx staples an OCSP
/// response, for at most ten handshakes, and returns the last one's output.
///
/// nginx fetches the response only when a handshake requests the status, so
/// the first handshakes after a reload go without one.
fn stapled_handshake(site: &Site, ca_file: &Path) -> String {
    let mut text = String::new();
    for _ in 0..10 {
        let output = Command::new("openssl")
            .args(["s_client", "-status", "-servername", DOMAIN, "-connect"])
            .arg(format!("{}:443", site.address))
            .arg("-CAfile")
            .arg(ca_file)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl s_client");
        text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if text.contains("OCSP Response Status: successful") {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    text
}

/// Checks that nginx staples the responder's `good` status for the standby
/// certificate, whose CA the host trusts through its system CA certificates.
fn assert_ocsp_stapled(site: &Site, responder: &OcspResponder) {
    assert_eq!(
        stapling_directives(site),
        [
            "ssl_stapling on;".to_owned(),
            "ssl_stapling_verify on;".to_owned(),
            "ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;".to_owned(),
            format!(
                "resolver {}:{CHALLTESTSRV_DNS_PORT} valid=300s;",
                site.bridge
            ),
        ],
        "the stapling directives for the standby certificate, which names a responder"
    );

    let handshake = stapled_handshake(site, &site.work.path().join("standby-ca.pem"));
    // nginx logs why it does not staple as warnings, which Debian's error_log
    // level leaves out, so `nginx -t` shows them.
    let nginx_log = site.ssh("nginx -t 2>&1; tail -n 20 /var/log/nginx/error.log");
    let context = format!(
        "{handshake}\nresponder log:\n{}\nnginx:\n{nginx_log}",
        responder.log_text()
    );
    assert!(
        handshake.contains("OCSP Response Status: successful"),
        "nginx stapled no OCSP response:\n{context}"
    );
    assert!(
        handshake.contains(&format!("Serial Number: {STANDBY_SERIAL}")),
        "the stapled response is not about the standby certificate:\n{context}"
    );
    assert!(
        handshake.contains("Cert Status: good"),
        "the stapled response does not say `good`:\n{context}"
    );
    assert!(
        handshake.contains("Verify return code: 0 (ok)"),
        "the standby certificate does not verify against its CA:\n{context}"
    );
}

/// Uploads a standby certificate and checks that the switch moves nginx to it while
/// the primary expires within `renewal_switch_days`, and back once it does not.
///
/// The standby certificate names an OCSP responder on the controller, so the run
/// after the switch turns OCSP stapling on, and the run after the switch back
/// turns it off again.
fn assert_standby_switch(site: &Site) {
    let dir = site.work.path();
    let port = unused_port();
    make_standby_certificate(dir, 3000, &format!("http://{}:{port}", site.bridge));
    let responder = OcspResponder::start(dir, &site.bridge, port);
    // Lab hosts have no DNS server in /etc/resolv.conf, and the role staples only
    // with one, so nginx gets challtestsrv's. The responder's URL names an
    // address, so nginx resolves no name through it.
    let standby_vars = format!(
        "renewal_standby_certificate={} renewal_standby_key={} nginx_resolver={}:{CHALLTESTSRV_DNS_PORT}",
        dir.join("standby.pem").display(),
        dir.join("standby.key").display(),
        site.bridge
    );

    // A private CA's root goes into the host's system CA certificates, which
    // nginx verifies stapled responses against by default. The standby chain is
    // only the leaf certificate, so nginx also finds the issuer there.
    let ca = std::fs::read_to_string(dir.join("standby-ca.pem")).expect("read the standby CA");
    site.ssh(&format!(
        "cat > /usr/local/share/ca-certificates/vpsforge-standby-ca.crt <<'EOF'\n{ca}EOF\n\
         update-ca-certificates >/dev/null"
    ));

    assert_eq!(
        stapling_directives(site),
        Vec::<String>::new(),
        "pebble's certificate names no OCSP responder, so nginx should not staple"
    );

    // Pebble's certificate is valid for five years, so a threshold of 2000 days
    // makes the primary look close to expiry while the standby is not.
    let near_expiry = site.apply(&["-e", &standby_vars, "-e", "renewal_switch_days=2000"]);
    assert_eq!(near_expiry.exit_code, 0, "{}", near_expiry.describe());
    let cron = site.ssh("cat /etc/cron.d/vpsforge-certbot");
    assert!(
        cron.contains("root /usr/local/sbin/vpsforge-certificate-switch"),
        "{cron}"
    );
    let switched =
        site.ssh("/usr/local/sbin/vpsforge-certificate-switch; readlink /etc/ssl/vpsforge/active");
    assert!(
        switched.ends_with("/etc/ssl/vpsforge/standby\n"),
        "the switch did not move to the standby certificate:\n{switched}"
    );
    let logged = site.ssh("journalctl -t vpsforge-certificate --no-pager -o cat");
    assert!(
        logged.contains("to /etc/ssl/vpsforge/standby"),
        "the switch was not logged:\n{logged}"
    );
    let https = site.curl_trusting(&format!("https://{DOMAIN}/"), &dir.join("standby-ca.pem"));
    assert!(https.starts_with("HTTP/2 200"), "{https}");

    // The switch only moves the link, so the next run reads the standby's OCSP
    // responder and turns stapling on. A later run leaves the link where the
    // switch put it and changes nothing.
    let stapling = site.apply(&["-e", &standby_vars, "-e", "renewal_switch_days=2000"]);
    assert_eq!(stapling.exit_code, 0, "{}", stapling.describe());
    let changed = stapling.changed_tasks();
    assert!(
        changed.iter().any(|name| name.ends_with("Write the site")),
        "the run after the switch did not rewrite the site; it changed {changed:?}"
    );
    let rerun = site.apply(&[
        "-e",
        &standby_vars,
        "-e",
        "renewal_switch_days=2000",
        "--detailed-exitcode",
    ]);
    assert_eq!(rerun.exit_code, 0, "{}", rerun.describe());
    assert_eq!(rerun.changed(), 0, "{}", rerun.describe());
    assert_ocsp_stapled(site, &responder);

    let renewed = site.apply(&["-e", &standby_vars]);
    assert_eq!(renewed.exit_code, 0, "{}", renewed.describe());
    let back =
        site.ssh("/usr/local/sbin/vpsforge-certificate-switch; readlink /etc/ssl/vpsforge/active");
    assert!(
        back.ends_with(&format!("/etc/letsencrypt/live/{DOMAIN}\n")),
        "the switch did not move back to the primary certificate:\n{back}"
    );
    let https = site.curl(&format!("https://{DOMAIN}/"));
    assert!(https.starts_with("HTTP/2 200"), "{https}");

    let unstapled = site.apply(&["-e", &standby_vars]);
    assert_eq!(unstapled.exit_code, 0, "{}", unstapled.describe());
    assert_eq!(
        stapling_directives(site),
        Vec::<String>::new(),
        "the run after the switch back should turn stapling off for pebble's certificate"
    );
    let https = site.curl(&format!("https://{DOMAIN}/"));
    assert!(https.starts_with("HTTP/2 200"), "{https}");
}

/// Returns the messages of the failed tasks of a run.
fn failures(run: &RunOutput) -> Vec<String> {
    run.events
        .iter()
        .filter(|event| event["event"] == "task" && event["status"] == "failed")
        .filter_map(|event| event["msg"].as_str().map(str::to_owned))
        .collect()
}

/// Runs site.yaml with settings the roles must reject, and checks that each run
/// fails with its message and leaves the host as it was.
fn assert_rejects_unsafe_settings(site: &Site) {
    let before = site.ssh(
        "ufw status numbered; sha256sum /etc/nginx/conf.d/*.conf /etc/nginx/snippets/vpsforge-*.conf",
    );
    let cases = [
        (
            "nginx_hsts_max_age=86400",
            "nginx_hsts_max_age must be at least 15552000 seconds (180 days; is `86400`)",
        ),
        (
            "firewall_ssh_port=2222",
            "the firewall would allow SSH on port `2222`, but this connection uses port `22`",
        ),
        // nginx -t rejects the TLS settings file, so it is not installed.
        (
            "nginx_ssl_buffer_size=large",
            "validation command failed, the file was not changed",
        ),
    ];
    for (setting, message) in cases {
        let run = site.apply(&["-e", setting]);
        assert_eq!(
            run.exit_code,
            1,
            "`-e {setting}` should fail:\n{}",
            run.describe()
        );
        assert_eq!(
            run.changed(),
            0,
            "`-e {setting}` changed the host:\n{}",
            run.describe()
        );
        let failed = failures(&run);
        assert!(
            failed.iter().any(|failure| failure.contains(message)),
            "`-e {setting}` failed without `{message}`: {failed:?}"
        );
    }
    let after = site.ssh(
        "ufw status numbered; sha256sum /etc/nginx/conf.d/*.conf /etc/nginx/snippets/vpsforge-*.conf",
    );
    assert_eq!(
        before, after,
        "a rejected run changed the firewall or nginx"
    );
    let https = site.curl(&format!("https://{DOMAIN}/"));
    assert!(https.starts_with("HTTP/2 200"), "{https}");
}

/// Breaks five things by hand and checks that `--check` names each and `apply` repairs them.
///
/// gunicorn's socket stops too: while it listens, any request (blackbox_exporter probes
/// the site) starts the service again before the check can see it stopped.
fn assert_drift_repaired(site: &Site) {
    site.ssh(&format!(
        "sed -i 's/^ssl_session_tickets off;/ssl_session_tickets on;/' /etc/nginx/conf.d/vpsforge-tls.conf && \
         systemctl stop flask_app.socket flask_app.service && \
         ln -sf /usr/share/zoneinfo/Asia/Tokyo /etc/localtime && echo Asia/Tokyo > /etc/timezone && \
         sed -i '/certbot -q renew/d; /#Ansible: certbot renew/d' /etc/cron.d/vpsforge-certbot && \
         ufw allow {CLOSED_PORT}/tcp"
    ));

    let check = site.apply(&["--check", "--detailed-exitcode"]);
    assert_eq!(
        check.exit_code,
        2,
        "--check should report the drift:\n{}",
        check.describe()
    );
    let changed = check.changed_tasks();
    let expected = [
        "Write the TLS settings",
        "Start gunicorn",
        "Set the time zone",
        "Renew certificates twice a day",
        "Delete the port rules this role does not define",
    ];
    for task in expected {
        assert!(
            changed.iter().any(|name| name.ends_with(task)),
            "--check did not name `{task}`; it named {changed:?}"
        );
    }

    let apply = site.apply(&[]);
    assert_eq!(apply.exit_code, 0, "{}", apply.describe());
    let state = site.ssh(&format!(
        "grep -c '^ssl_session_tickets off;' /etc/nginx/conf.d/vpsforge-tls.conf; \
         systemctl is-active flask_app.service; readlink /etc/localtime; \
         grep -c 'certbot -q renew' /etc/cron.d/vpsforge-certbot; \
         ufw status | grep -c '^{CLOSED_PORT}/tcp' || true"
    ));
    assert_eq!(
        state, "1\nactive\n/usr/share/zoneinfo/Etc/UTC\n1\n0\n",
        "state after the repair"
    );

    let recheck = site.apply(&["--check", "--detailed-exitcode"]);
    assert_eq!(recheck.exit_code, 0, "{}", recheck.describe());
    assert_eq!(recheck.changed(), 0, "{}", recheck.describe());
}

#[test]
#[ignore = "needs root and systemd-nspawn; run with --include-ignored"]
fn site_on_bookworm() {
    let _serial = SERIAL.lock().unwrap_or_else(|error| error.into_inner());
    let site = Site::up("site-bookworm", "bookworm");

    assert_converges(&site);
    assert_serves_https(&site);
    assert_http_redirects(&site);
    assert_rejects_unsafe_settings(&site);
    assert_port_closed(&site);
    assert_renewal(&site);
    assert_monitoring(&site);

    // Pebble issues certificates valid for five years, which Mozilla's profiles
    // flag. That finding comes from the test CA, so it is the only one allowed.
    let findings = site.sslyze_findings("intermediate");
    assert_eq!(
        findings,
        BTreeSet::from(["maximum_certificate_lifespan".to_owned()]),
        "sslyze findings for the intermediate profile"
    );

    assert_drift_repaired(&site);
    assert_port_closed(&site);

    // Pebble's intermediate CA has an RSA key, so the leaf certificate carries an
    // RSA signature, which the modern profile also flags.
    let modern = site.apply(&["-e", "nginx_tls_profile=modern"]);
    assert_eq!(modern.exit_code, 0, "{}", modern.describe());
    let findings = site.sslyze_findings("modern");
    assert_eq!(
        findings,
        BTreeSet::from([
            "certificate_signatures".to_owned(),
            "maximum_certificate_lifespan".to_owned()
        ]),
        "sslyze findings for the modern profile"
    );

    assert_standby_switch(&site);
}

#[test]
#[ignore = "needs root and systemd-nspawn; run with --include-ignored"]
fn site_on_trixie_with_nftables() {
    let _serial = SERIAL.lock().unwrap_or_else(|error| error.into_inner());
    let site = Site::up("site-trixie", "trixie");

    // This host also covers the nftables firewall backend.
    let first = site.apply(&["-e", "firewall_backend=nftables"]);
    eprintln!(
        "first apply on trixie: {:.1} s",
        first.elapsed.as_secs_f64()
    );
    assert_eq!(first.exit_code, 0, "{}", first.describe());
    let second = site.apply(&["-e", "firewall_backend=nftables", "--detailed-exitcode"]);
    assert_eq!(second.exit_code, 0, "{}", second.describe());
    assert_eq!(second.changed(), 0, "{}", second.describe());

    let ruleset = site.ssh("nft list ruleset");
    assert!(ruleset.contains("policy drop;"), "{ruleset}");
    assert!(ruleset.contains("tcp dport 443 accept"), "{ruleset}");
    assert_serves_https(&site);
    assert_http_redirects(&site);
    assert_port_closed(&site);

    let curves = site.ssh("grep '^ssl_ecdh_curve' /etc/nginx/conf.d/vpsforge-tls.conf");
    assert_eq!(
        curves.trim(),
        "ssl_ecdh_curve X25519MLKEM768:X25519:prime256v1:secp384r1;"
    );
    let handshake = site.ssh(&format!(
        "openssl s_client -connect 127.0.0.1:443 -servername {DOMAIN} -groups X25519MLKEM768 \
         -CAfile /etc/ssl/vpsforge/active/chain.pem </dev/null 2>&1"
    ));
    assert!(
        handshake.contains("Negotiated TLS1.3 group: X25519MLKEM768"),
        "the handshake did not use X25519MLKEM768:\n{handshake}"
    );
}

/// The port of pebble-challtestsrv's management API on the bridge (`src/lab/acme.rs`).
const CHALLTESTSRV_MANAGEMENT_PORT: u16 = 8055;

/// The port of pebble-challtestsrv's DNS server on the bridge (`src/lab/acme.rs`).
const CHALLTESTSRV_DNS_PORT: u16 = 8053;

/// Returns the bytes of the log `name` in the lab's `acme` folder from `offset` on.
///
/// Pebble and challtestsrv append to their logs across runs of a lab, so a test
/// reads only what was written after it recorded the offset.
fn acme_log_since(site: &Site, name: &str, offset: u64) -> String {
    let path = site.lab.dir.join("acme").join(name);
    let text = std::fs::read(&path)
        .unwrap_or_else(|error| panic!("failed to read `{}`: {error}", path.display()));
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    String::from_utf8_lossy(&text[start..]).into_owned()
}

fn acme_log_len(site: &Site, name: &str) -> u64 {
    std::fs::metadata(site.lab.dir.join("acme").join(name))
        .map(|metadata| metadata.len())
        .unwrap_or(0)
}

/// Checks that pebble validated only DNS-01 challenges since the offsets, and
/// that the role's hook published and removed the TXT record through challtestsrv.
fn assert_validated_by_dns(site: &Site, pebble_offset: u64, challtestsrv_offset: u64) {
    let pebble = acme_log_since(site, "pebble.log", pebble_offset);
    assert!(
        pebble.contains("set VALID by completed challenge"),
        "pebble validated no challenge:\n{pebble}"
    );
    assert!(
        !pebble.contains("Attempting to validate w/ HTTP"),
        "pebble tried an HTTP-01 validation:\n{pebble}"
    );

    let challtestsrv = acme_log_since(site, "challtestsrv.log", challtestsrv_offset);
    let record = format!("\"_acme-challenge.{DOMAIN}.\"");
    for action in ["Added DNS-01 TXT challenge", "Removed DNS-01 TXT challenge"] {
        assert!(
            challtestsrv
                .lines()
                .any(|line| line.contains(action) && line.contains(&record)),
            "challtestsrv did not log `{action}` for {record}:\n{challtestsrv}"
        );
    }
}

/// Obtains the certificate through DNS-01 on a host whose firewall blocks port
/// 80, and runs the app from a virtualenv, both on one bookworm host.
///
/// The firewall role opens only 443, so pebble's HTTP-01 validation could not
/// reach nginx. The certbot role's DNS API hook publishes the TXT record through
/// challtestsrv's management API, which is also pebble's DNS server. The lab has
/// no PyPI, so the requirements are ones Debian's packages already satisfy, and
/// pip runs with `--no-index`.
#[test]
#[ignore = "needs root and systemd-nspawn; run with --include-ignored"]
fn dns01_and_virtualenv_on_bookworm() {
    let _serial = SERIAL.lock().unwrap_or_else(|error| error.into_inner());
    let site = Site::boot("site-dns01", "bookworm");

    let requirements = site.work.path().join("requirements.txt");
    std::fs::write(&requirements, "Flask\ngunicorn\n").expect("write requirements.txt");
    let api = format!("http://{}:{CHALLTESTSRV_MANAGEMENT_PORT}", site.bridge);
    let vars = serde_json::json!({
        "firewall_allowed_tcp_ports": [443],
        "certbot_challenge": "dns-01",
        "certbot_dns_api_set_url": format!("{api}/set-txt"),
        "certbot_dns_api_clear_url": format!("{api}/clear-txt"),
        "certbot_dns_api_headers": ["X-Vpsforge-Test: dns-01"],
        "certbot_dns_propagation_seconds": 0,
        "flask_app_requirements": requirements,
        "flask_app_pip_arguments": ["--no-index"],
    });
    let vars = vars
        .as_object()
        .expect("the variables are an object")
        .clone();
    site.write_inventory(vars, false);
    let pebble_offset = acme_log_len(&site, "pebble.log");
    let challtestsrv_offset = acme_log_len(&site, "challtestsrv.log");

    assert_converges(&site);
    assert_serves_https(&site);

    // nginx listens on port 80 on the host itself, so only the firewall keeps
    // the controller, and pebble on it, out.
    let local = site.ssh(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' -H 'Host: {DOMAIN}' http://127.0.0.1/"
    ));
    assert_eq!(local, "301", "nginx should answer on port 80 on the host");
    let address: SocketAddr = format!("{}:80", site.address)
        .parse()
        .expect("socket address");
    assert!(
        TcpStream::connect_timeout(&address, Duration::from_secs(3)).is_err(),
        "port 80 accepted a connection from the controller"
    );

    let renewal = site.ssh(&format!("cat /etc/letsencrypt/renewal/{DOMAIN}.conf"));
    for line in [
        "authenticator = manual",
        "pref_challs = dns-01,",
        "manual_auth_hook = /usr/local/sbin/vpsforge-certbot-dns-hook auth",
        "manual_cleanup_hook = /usr/local/sbin/vpsforge-certbot-dns-hook cleanup",
    ] {
        assert!(
            renewal.lines().any(|candidate| candidate == line),
            "certbot's renewal configuration lacks `{line}`:\n{renewal}"
        );
    }
    let headers = site.ssh("stat -c '%a %U' /etc/letsencrypt/vpsforge-dns-api-headers");
    assert_eq!(headers, "600 root\n", "the DNS API headers file");
    assert_validated_by_dns(&site, pebble_offset, challtestsrv_offset);

    let pebble_offset = acme_log_len(&site, "pebble.log");
    let challtestsrv_offset = acme_log_len(&site, "challtestsrv.log");
    assert_renewal(&site);
    assert_validated_by_dns(&site, pebble_offset, challtestsrv_offset);

    let exec_start = site.ssh("systemctl show -p ExecStart --value flask_app.service");
    assert!(
        exec_start.contains("path=/srv/flask_app/venv/bin/python ;")
            && exec_start.contains("argv[]=/srv/flask_app/venv/bin/python -m gunicorn "),
        "gunicorn should start from the virtualenv: {exec_start}"
    );
    let command_line = site
        .ssh("tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value flask_app.service)/cmdline");
    assert!(
        command_line.starts_with("/srv/flask_app/venv/bin/python -m gunicorn "),
        "gunicorn runs as `{command_line}`"
    );
    let built_from = site.ssh("cat /srv/flask_app/venv/vpsforge-requirements.txt");
    assert_eq!(
        built_from, "Flask\ngunicorn\n",
        "the virtualenv's requirements"
    );
}
