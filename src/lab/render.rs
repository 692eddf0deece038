//! Text of the files the lab writes: inventories, ssh_config, known_hosts, and
//! the files placed inside each host.

use std::fmt::Write;
use std::path::Path;

use super::state::LabState;

/// Quotes a string for YAML, because a JSON string is a valid YAML double-quoted scalar.
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// Renders the Ansible YAML inventory: group `lab` with every host, reached as root with the lab key.
pub fn inventory(state: &LabState, key: &Path) -> String {
    let mut text = String::from("all:\n  children:\n    lab:\n      hosts:\n");
    for host in &state.hosts {
        let _ = write!(
            text,
            "        {}:\n          ansible_host: {}\n          ansible_user: root\n          \
             ansible_ssh_private_key_file: {}\n",
            host.name,
            host.address,
            yaml_string(&key.to_string_lossy())
        );
    }
    text
}

/// Renders an inventory that reaches each host through its latency relay on 127.0.0.1.
pub fn latency_inventory(state: &LabState, key: &Path) -> String {
    let mut text = String::from("all:\n  children:\n    lab_latency:\n      hosts:\n");
    for relay in &state.relays {
        let Some((_, port)) = relay.listen.rsplit_once(':') else {
            continue;
        };
        let _ = write!(
            text,
            "        {}:\n          ansible_host: 127.0.0.1\n          ansible_port: {port}\n          \
             ansible_user: root\n          ansible_ssh_private_key_file: {}\n          \
             lab_delay_ms: {}\n",
            relay.host,
            yaml_string(&key.to_string_lossy()),
            relay.delay_ms
        );
    }
    text
}

pub fn ssh_config(state: &LabState, key: &Path, known_hosts: &Path) -> String {
    let mut text = String::new();
    for host in &state.hosts {
        let _ = write!(
            text,
            "Host {name} {name}.lab.test\n  HostName {address}\n  User root\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n\n",
            name = host.name,
            address = host.address,
            key = key.display(),
            known_hosts = known_hosts.display(),
        );
    }
    text
}

/// Renders known_hosts: each host key under the host's address, and under `[127.0.0.1]:PORT`
/// for each relay in front of it.
pub fn known_hosts(state: &LabState) -> String {
    let mut text = String::new();
    for host in &state.hosts {
        for key in &host.host_keys {
            let _ = writeln!(text, "{} {key}", host.address);
        }
        for relay in state.relays.iter().filter(|relay| relay.host == host.name) {
            let Some((_, port)) = relay.listen.rsplit_once(':') else {
                continue;
            };
            for key in &host.host_keys {
                let _ = writeln!(text, "[127.0.0.1]:{port} {key}");
            }
        }
    }
    text
}

/// Renders `/etc/hosts` for host `own`, naming every lab host as `hN` and `hN.lab.test`.
pub fn etc_hosts(state: &LabState, own: &str) -> String {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let _ = writeln!(text, "127.0.1.1\t{own}.lab.test {own}");
    for host in state.hosts.iter().filter(|host| host.name != own) {
        let _ = writeln!(
            text,
            "{}\t{}.lab.test {}",
            host.address, host.name, host.name
        );
    }
    text
}

pub fn network_file(address: &str) -> String {
    format!("[Match]\nName=host0\n\n[Network]\nAddress={address}/24\nLinkLocalAddressing=no\n")
}

pub fn apt_proxy(bridge_address: &str) -> String {
    format!("Acquire::http::Proxy \"http://{bridge_address}:3142\";\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::network::Subnet;
    use crate::lab::state::{HostState, RelayState};

    fn two_hosts() -> LabState {
        let mut state = LabState::new(
            "default",
            "vf-default".into(),
            Subnet { third_octet: 0 },
            "bookworm",
        );
        for (index, name) in ["h1", "h2"].iter().enumerate() {
            state.hosts.push(HostState {
                name: (*name).into(),
                address: format!("10.77.0.{}", 11 + index),
                supervisor_pid: Some(100),
                host_keys: vec![format!("ssh-ed25519 KEY{}", index + 1)],
            });
        }
        state
    }

    #[test]
    fn inventory_lists_hosts_in_lab_group() {
        let text = inventory(&two_hosts(), Path::new("/lab/id_ed25519"));
        assert_eq!(
            text,
            "all:\n  children:\n    lab:\n      hosts:\n\
             \x20       h1:\n          ansible_host: 10.77.0.11\n          ansible_user: root\n\
             \x20         ansible_ssh_private_key_file: \"/lab/id_ed25519\"\n\
             \x20       h2:\n          ansible_host: 10.77.0.12\n          ansible_user: root\n\
             \x20         ansible_ssh_private_key_file: \"/lab/id_ed25519\"\n"
        );
    }

    #[test]
    fn known_hosts_include_relay_ports() {
        let mut state = two_hosts();
        state.relays.push(RelayState {
            host: "h2".into(),
            listen: "127.0.0.1:40123".into(),
            delay_ms: 100,
            pid: 7,
        });
        assert_eq!(
            known_hosts(&state),
            "10.77.0.11 ssh-ed25519 KEY1\n\
             10.77.0.12 ssh-ed25519 KEY2\n\
             [127.0.0.1]:40123 ssh-ed25519 KEY2\n"
        );
        let latency = latency_inventory(&state, Path::new("/lab/id_ed25519"));
        assert!(latency.contains(
            "        h2:\n          ansible_host: 127.0.0.1\n          ansible_port: 40123\n"
        ));
        assert!(!latency.contains("h1:"));
    }

    #[test]
    fn ssh_config_checks_host_keys_strictly() {
        let text = ssh_config(
            &two_hosts(),
            Path::new("/lab/id_ed25519"),
            Path::new("/lab/known_hosts"),
        );
        assert!(text.starts_with(
            "Host h1 h1.lab.test\n  HostName 10.77.0.11\n  User root\n  IdentityFile /lab/id_ed25519\n"
        ));
        assert_eq!(text.matches("StrictHostKeyChecking yes").count(), 2);
        assert_eq!(
            text.matches("UserKnownHostsFile /lab/known_hosts").count(),
            2
        );
    }

    #[test]
    fn etc_hosts_names_other_hosts() {
        let text = etc_hosts(&two_hosts(), "h1");
        assert!(text.contains("127.0.1.1\th1.lab.test h1\n"));
        assert!(text.contains("10.77.0.12\th2.lab.test h2\n"));
        assert!(!text.contains("10.77.0.11"));
    }

    #[test]
    fn host_files_have_expected_text() {
        assert_eq!(
            network_file("10.77.0.11"),
            "[Match]\nName=host0\n\n[Network]\nAddress=10.77.0.11/24\nLinkLocalAddressing=no\n"
        );
        assert_eq!(
            apt_proxy("10.77.0.1"),
            "Acquire::http::Proxy \"http://10.77.0.1:3142\";\n"
        );
    }
}
