//! A local ACME CA for the lab: Debian's `pebble`, with `pebble-challtestsrv` as its
//! DNS server so that `hN.lab.test` resolves to the hosts.
//!
//! Pebble's HTTPS listener uses a certificate from a CA that the lab creates with
//! `openssl` (`acme-ca.pem`), installed into each host's trust store. The root
//! that signs issued certificates is different and regenerated at each pebble
//! start, so it is fetched again and saved as `pebble-root.pem`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::process::{self, log_tail, run, run_output};
use super::state::{AcmeState, LabState};
use super::LabPaths;

pub const ACME_PORT: u16 = 14000;
const MANAGEMENT_PORT: u16 = 15000;
const DNS_PORT: u16 = 8053;
const CHALLTESTSRV_MANAGEMENT_PORT: u16 = 8055;
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Name of the listener CA inside the hosts' `/usr/local/share/ca-certificates/`.
pub const HOST_CA_FILE: &str = "vpsforge-lab-acme.crt";

pub struct AcmePaths {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    ca_key: PathBuf,
    listener_cert: PathBuf,
    listener_key: PathBuf,
    config: PathBuf,
    pub root: PathBuf,
    log: PathBuf,
}

impl AcmePaths {
    pub fn new(lab_dir: &Path) -> AcmePaths {
        let dir = lab_dir.join("acme");
        AcmePaths {
            ca_cert: lab_dir.join("acme-ca.pem"),
            ca_key: dir.join("ca.key"),
            listener_cert: dir.join("listener.pem"),
            listener_key: dir.join("listener.key"),
            config: dir.join("pebble-config.json"),
            root: lab_dir.join("pebble-root.pem"),
            log: dir.join("pebble.log"),
            dir,
        }
    }
}

pub fn directory_url(bridge_address: &str) -> String {
    format!("https://{bridge_address}:{ACME_PORT}/dir")
}

/// Renders the OpenSSL configuration for the lab CA and pebble's listener certificate.
fn openssl_config(bridge_address: &str) -> String {
    format!(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = vpsforge lab\n\
         [v3_ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n\
         [v3_listener]\nbasicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n\
         subjectAltName = IP:{bridge_address}, DNS:acme.lab.test, DNS:localhost\n"
    )
}

fn pebble_config(paths: &AcmePaths, bridge_address: &str) -> String {
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("{bridge_address}:{ACME_PORT}"),
            "managementListenAddress": format!("{bridge_address}:{MANAGEMENT_PORT}"),
            "certificate": paths.listener_cert,
            "privateKey": paths.listener_key,
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    config.to_string()
}

/// Creates the lab CA unless it exists, and a new listener certificate for pebble.
fn create_certificates(paths: &AcmePaths, bridge_address: &str) -> anyhow::Result<()> {
    fs::create_dir_all(&paths.dir)?;
    let config = paths.dir.join("openssl.cnf");
    fs::write(&config, openssl_config(bridge_address))?;
    let config = config.to_string_lossy().into_owned();

    if !paths.ca_cert.exists() {
        run(
            "openssl",
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
                "3650",
                "-subj",
                "/CN=vpsforge lab ACME listener CA",
                "-config",
                &config,
                "-extensions",
                "v3_ca",
                "-keyout",
                &paths.ca_key.to_string_lossy(),
                "-out",
                &paths.ca_cert.to_string_lossy(),
            ],
        )
        .context("failed to create the lab CA with `openssl`")?;
    }
    // The listener certificate is made at each start, because the bridge address
    // it names changes when the lab's subnet is allocated again.
    let request = paths.dir.join("listener.csr");
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-subj",
            &format!("/CN={bridge_address}"),
            "-config",
            &config,
            "-keyout",
            &paths.listener_key.to_string_lossy(),
            "-out",
            &request.to_string_lossy(),
        ],
    )?;
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &request.to_string_lossy(),
            "-CA",
            &paths.ca_cert.to_string_lossy(),
            "-CAkey",
            &paths.ca_key.to_string_lossy(),
            "-CAcreateserial",
            "-CAserial",
            &paths.dir.join("ca.srl").to_string_lossy(),
            "-days",
            "825",
            "-extfile",
            &config,
            "-extensions",
            "v3_listener",
            "-out",
            &paths.listener_cert.to_string_lossy(),
        ],
    )
    .context("failed to sign pebble's listener certificate with `openssl`")?;
    Ok(())
}

/// Starts challtestsrv and pebble unless they run, and records their PIDs in `state`.
pub fn start(paths: &LabPaths, state: &mut LabState) -> anyhow::Result<()> {
    let bridge_address = state.subnet.bridge_address();
    let acme_paths = AcmePaths::new(&paths.dir);
    if let Some(acme) = &state.acme {
        if process::is_running(acme.pebble_pid, "pebble")
            && process::is_running(acme.challtestsrv_pid, "pebble-challtestsrv")
        {
            return register_hosts(state);
        }
        stop(state);
    }

    create_certificates(&acme_paths, &bridge_address)?;
    fs::write(
        &acme_paths.config,
        pebble_config(&acme_paths, &bridge_address),
    )?;

    let mut challtestsrv = Command::new("pebble-challtestsrv");
    challtestsrv
        .arg("-dns01")
        .arg(format!("{bridge_address}:{DNS_PORT}"))
        .arg("-management")
        .arg(format!("{bridge_address}:{CHALLTESTSRV_MANAGEMENT_PORT}"))
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .arg("-defaultIPv4")
        .arg(&bridge_address)
        .args(["-defaultIPv6", ""]);
    let challtestsrv_pid =
        process::spawn_detached(challtestsrv, &acme_paths.dir.join("challtestsrv.log"))?;

    let mut pebble = Command::new("pebble");
    pebble
        .arg("-config")
        .arg(&acme_paths.config)
        .arg("-dnsserver")
        .arg(format!("{bridge_address}:{DNS_PORT}"))
        .env("PEBBLE_VA_NOSLEEP", "1")
        // Pebble rejects 15 % of valid nonces by default to test client retries
        // (pebble README), and the lab turns that off so that runs are repeatable.
        .env("PEBBLE_WFE_NONCEREJECT", "0");
    let pebble_pid = process::spawn_detached(pebble, &acme_paths.log)?;

    state.acme = Some(AcmeState {
        pebble_pid,
        challtestsrv_pid,
        directory_url: directory_url(&bridge_address),
    });
    state.save(&paths.dir)?;

    wait_for_pebble(&acme_paths, &bridge_address, pebble_pid)?;
    register_hosts(state)?;
    Ok(())
}

/// Waits for pebble's management port and saves its issuing root as `pebble-root.pem`.
fn wait_for_pebble(paths: &AcmePaths, bridge_address: &str, pid: u32) -> anyhow::Result<()> {
    let url = format!("https://{bridge_address}:{MANAGEMENT_PORT}/roots/0");
    let ca = paths.ca_cert.to_string_lossy().into_owned();
    let root = paths.root.to_string_lossy().into_owned();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let fetched = run(
            "curl",
            &[
                "-sSf",
                "--max-time",
                "2",
                "--cacert",
                &ca,
                "-o",
                &root,
                &url,
            ],
        );
        if fetched.is_ok() {
            return Ok(());
        }
        if !process::is_running(pid, "pebble") {
            bail!(
                "pebble exited at start; last lines of `{}`:\n{}",
                paths.log.display(),
                log_tail(&paths.log, 15)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out waiting for pebble at `{url}`; see `{}`",
                paths.log.display()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Points `hN.lab.test` at each host's address in challtestsrv's DNS.
fn register_hosts(state: &LabState) -> anyhow::Result<()> {
    let url = format!(
        "http://{}:{CHALLTESTSRV_MANAGEMENT_PORT}/add-a",
        state.subnet.bridge_address()
    );
    for host in &state.hosts {
        let body = serde_json::json!({
            "host": format!("{}.lab.test", host.name),
            "addresses": [host.address],
        })
        .to_string();
        run_output(
            "curl",
            &[
                "-sSf",
                "--max-time",
                "5",
                "--retry",
                "5",
                "--retry-connrefused",
                "-d",
                &body,
                &url,
            ],
        )
        .with_context(|| {
            format!(
                "failed to register `{}.lab.test` in pebble-challtestsrv",
                host.name
            )
        })?;
    }
    Ok(())
}

/// Copies the listener CA into a host's trust store. The caller runs `update-ca-certificates`.
pub fn install_ca(lab_dir: &Path, merged_root: &Path) -> anyhow::Result<()> {
    let paths = AcmePaths::new(lab_dir);
    let target = merged_root
        .join("usr/local/share/ca-certificates")
        .join(HOST_CA_FILE);
    super::template::write(&target, &fs::read_to_string(&paths.ca_cert)?)
}

pub fn stop(state: &mut LabState) {
    if let Some(acme) = state.acme.take() {
        process::stop(acme.pebble_pid, "pebble", Duration::from_secs(5));
        process::stop(
            acme.challtestsrv_pid,
            "pebble-challtestsrv",
            Duration::from_secs(5),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pebble_listens_on_bridge() {
        let paths = AcmePaths::new(Path::new("/lab"));
        let config: serde_json::Value =
            serde_json::from_str(&pebble_config(&paths, "10.77.0.1")).expect("valid JSON");
        assert_eq!(config["pebble"]["listenAddress"], "10.77.0.1:14000");
        assert_eq!(
            config["pebble"]["managementListenAddress"],
            "10.77.0.1:15000"
        );
        assert_eq!(config["pebble"]["certificate"], "/lab/acme/listener.pem");
        assert_eq!(config["pebble"]["httpPort"], 80);
    }

    #[test]
    fn listener_certificate_names_bridge_address() {
        let config = openssl_config("10.77.4.1");
        assert!(config.contains("subjectAltName = IP:10.77.4.1,"));
        assert!(config.contains("[v3_ca]\nbasicConstraints = critical, CA:TRUE\n"));
        assert_eq!(directory_url("10.77.4.1"), "https://10.77.4.1:14000/dir");
    }
}
