//! The record of a lab on disk (`state.json`): its network, hosts and helper processes.
//!
//! Every process the lab starts is stopped later by the PID stored here, so the
//! state is saved right after each start.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::network::Subnet;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabState {
    pub name: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub release: String,
    pub hosts: Vec<HostState>,
    pub apt_cacher_pid: Option<u32>,
    pub acme: Option<AcmeState>,
    pub relays: Vec<RelayState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostState {
    pub name: String,
    pub address: String,
    /// PID of the `vpsforge lab supervise` process that runs systemd-nspawn.
    pub supervisor_pid: Option<u32>,
    /// Host keys as `TYPE BASE64` lines, read after the first boot.
    pub host_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AcmeState {
    pub pebble_pid: u32,
    pub challtestsrv_pid: u32,
    pub directory_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RelayState {
    pub host: String,
    pub listen: String,
    pub delay_ms: u64,
    pub pid: u32,
}

impl LabState {
    pub fn new(name: &str, bridge: String, subnet: Subnet, release: &str) -> LabState {
        LabState {
            name: name.to_owned(),
            bridge,
            subnet,
            release: release.to_owned(),
            hosts: Vec::new(),
            apt_cacher_pid: None,
            acme: None,
            relays: Vec::new(),
        }
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Loads `state.json` from `dir`, or returns `None` when the lab was never started.
    pub fn load(dir: &Path) -> anyhow::Result<Option<LabState>> {
        let path = LabState::path(dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("failed to read `{}`", path.display()))
            }
        };
        let state = serde_json::from_str(&text).with_context(|| {
            format!(
                "invalid lab state in `{}`: remove the lab folder after stopping its processes",
                path.display()
            )
        })?;
        Ok(Some(state))
    }

    /// Writes `state.json` through a temporary file and a rename, so a crash never leaves half a file.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = LabState::path(dir);
        let temporary = dir.join("state.json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        fs::write(&temporary, text + "\n")
            .with_context(|| format!("failed to write `{}`", temporary.display()))?;
        fs::rename(&temporary, &path)
            .with_context(|| format!("failed to replace `{}`", path.display()))?;
        Ok(())
    }

    pub fn host(&self, name: &str) -> Option<&HostState> {
        self.hosts.iter().find(|host| host.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_json() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut state = LabState::new("ci", "vf-ci".into(), Subnet { third_octet: 3 }, "trixie");
        state.hosts.push(HostState {
            name: "h1".into(),
            address: "10.77.3.11".into(),
            supervisor_pid: Some(42),
            host_keys: vec!["ssh-ed25519 AAAA".into()],
        });
        state.relays.push(RelayState {
            host: "h1".into(),
            listen: "127.0.0.1:40000".into(),
            delay_ms: 100,
            pid: 43,
        });

        state.save(dir.path()).expect("save");
        let loaded = LabState::load(dir.path()).expect("load");

        assert_eq!(loaded, Some(state));
    }

    #[test]
    fn missing_state_loads_as_none() {
        let dir = tempfile::tempdir().expect("temporary folder");
        assert_eq!(LabState::load(dir.path()).expect("load"), None);
    }
}
