//! A lab of throwaway Debian hosts for integration tests, stopped when dropped.
//!
//! Tests that use it need root and systemd-nspawn; mark them
//! `#[ignore = "needs root and systemd-nspawn; run with --include-ignored"]`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One host of a running lab.
#[derive(Debug, Clone)]
pub struct LabHost {
    pub name: String,
    pub address: String,
}

/// A running lab, brought down by `Drop`.
#[derive(Debug)]
pub struct Lab {
    pub name: String,
    pub dir: PathBuf,
    pub inventory: PathBuf,
    pub known_hosts: PathBuf,
    pub hosts: Vec<LabHost>,
}

/// Returns the folder of lab `name`, as `vpsforge lab` chooses it.
pub fn lab_dir(name: &str) -> PathBuf {
    std::env::var_os("VPSFORGE_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("/var/lib/vpsforge/lab").join(name))
}

/// Returns `name` with a suffix unique to this checkout, so that test runs from two
/// clones on one machine never share a lab.
pub fn checkout_name(name: &str) -> String {
    let hash = env!("CARGO_MANIFEST_DIR")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{name}-{:04x}", hash & 0xffff)
}

/// Runs `vpsforge lab --name NAME ARGS...` and returns its output.
pub fn lab_command(name: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vpsforge"))
        .args(["lab", "--name", name])
        .args(args)
        .output()
        .expect("failed to run vpsforge")
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "`{what}` failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Lab {
    /// Boots hosts `h1`…`hCOUNT` in lab `name` and reads their addresses from `state.json`.
    pub fn up(name: &str, count: usize) -> Lab {
        let name = &checkout_name(name);
        // A lab left over by a run that was killed keeps its hosts' changes; the tests
        // need fresh hosts, so any such lab comes down first.
        let _ = lab_command(name, &["down"]);
        let mut lab = Lab {
            name: name.to_owned(),
            dir: lab_dir(name),
            inventory: lab_dir(name).join("inventory.yaml"),
            known_hosts: lab_dir(name).join("known_hosts"),
            hosts: Vec::new(),
        };
        lab.grow(count);
        lab
    }

    /// Runs `lab up COUNT` again, which keeps running hosts and boots the missing ones.
    pub fn grow(&mut self, count: usize) {
        let output = lab_command(&self.name, &["up", &count.to_string()]);
        assert_success(
            &output,
            &format!("vpsforge lab --name {} up {count}", self.name),
        );
        self.hosts = self.state()["hosts"]
            .as_array()
            .expect("`hosts` in state.json")
            .iter()
            .map(|host| LabHost {
                name: host["name"].as_str().expect("host name").to_owned(),
                address: host["address"].as_str().expect("host address").to_owned(),
            })
            .collect();
    }

    /// Returns the parsed `state.json` of the lab.
    pub fn state(&self) -> serde_json::Value {
        let path = self.dir.join("state.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("failed to read `{}`: {error}", path.display()));
        serde_json::from_str(&text).expect("valid state.json")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    pub fn address(&self, host: &str) -> &str {
        &self
            .hosts
            .iter()
            .find(|candidate| candidate.name == host)
            .unwrap_or_else(|| panic!("no host `{host}` in lab `{}`", self.name))
            .address
    }

    /// Runs `command` on `host` as root through the system ssh, checking the host key strictly.
    pub fn ssh(&self, host: &str, command: &str) -> Output {
        Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .args(["-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-i")
            .arg(self.key())
            .arg(format!("root@{}", self.address(host)))
            .arg(command)
            .output()
            .expect("failed to run ssh")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let output = lab_command(&self.name, &["down"]);
        if !output.status.success() {
            eprintln!(
                "vpsforge lab --name {} down failed: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
