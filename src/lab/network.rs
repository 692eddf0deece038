//! The lab's bridge and its addresses: one /24 in `10.77.X.0` per lab.
//!
//! The lab named `default` always gets `10.77.0.0/24`. Other labs get the lowest
//! free X, recorded in a shared allocation file so that two labs never collide.
//! The hosts have no route out: the bridge is not forwarded or masqueraded.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::process::{lock_file, run, run_output};

/// First host address in a subnet: `h1` is `.11`, `h2` is `.12`, and so on.
const FIRST_HOST_OCTET: usize = 11;

/// A lab's subnet `10.77.X.0/24`, identified by X.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subnet {
    pub third_octet: u8,
}

impl Subnet {
    pub fn bridge_address(self) -> String {
        format!("10.77.{}.1", self.third_octet)
    }

    /// Returns the address of host `index` (1-based), or `None` past `.254`.
    pub fn host_address(self, index: usize) -> Option<String> {
        let octet = FIRST_HOST_OCTET + index.checked_sub(1)?;
        (octet <= 254).then(|| format!("10.77.{}.{octet}", self.third_octet))
    }

    pub fn max_hosts() -> usize {
        254 - FIRST_HOST_OCTET + 1
    }
}

/// Returns the bridge name for a lab: `vf-NAME`, cut to the 15 bytes Linux allows.
///
/// A cut name gets a short hash of the full name so that two long lab names
/// with the same start still get different bridges.
pub fn bridge_name(lab: &str) -> String {
    let full = format!("vf-{lab}");
    if full.len() <= 15 {
        return full;
    }
    let hash = lab.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let prefix: String = full.chars().take(10).collect();
    format!("{prefix}{:05x}", hash & 0xf_ffff)
}

/// Returns whether a lab name is usable in interface, machine and file names.
pub fn is_valid_lab_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}

/// Returns the subnet recorded for `lab` in the allocation file, allocating one if needed.
pub fn allocate_subnet(allocations: &Path, lab: &str) -> anyhow::Result<Subnet> {
    if lab == "default" {
        return Ok(Subnet { third_octet: 0 });
    }
    with_allocations(allocations, |table| {
        if let Some(octet) = table.get(lab) {
            return Ok(Subnet {
                third_octet: *octet,
            });
        }
        let addresses = interface_addresses()?;
        let octet = (1..=254u8)
            .find(|octet| {
                let taken = table.values().any(|used| used == octet);
                let address = Subnet { third_octet: *octet }.bridge_address();
                !taken && !addresses.iter().any(|(_, used)| *used == address)
            })
            .context("no free subnet left in 10.77.0.0/16: stop some labs with `vpsforge lab --name NAME down`")?;
        table.insert(lab.to_owned(), octet);
        Ok(Subnet { third_octet: octet })
    })
}

pub fn release_subnet(allocations: &Path, lab: &str) -> anyhow::Result<()> {
    if lab == "default" || !allocations.exists() {
        return Ok(());
    }
    with_allocations(allocations, |table| {
        table.remove(lab);
        Ok(())
    })
}

/// Runs `change` on the allocation table while holding an exclusive lock on its file.
fn with_allocations<T>(
    path: &Path,
    change: impl FnOnce(&mut BTreeMap<String, u8>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    let _lock = lock_file(&path.with_extension("lock"))?;

    let mut table: BTreeMap<String, u8> = match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("invalid subnet allocations in `{}`", path.display()))?,
        Err(_) => BTreeMap::new(),
    };
    let result = change(&mut table)?;
    fs::write(path, serde_json::to_string_pretty(&table)? + "\n")
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    Ok(result)
}

/// Lists `(interface, IPv4 address)` pairs of this machine.
fn interface_addresses() -> anyhow::Result<Vec<(String, String)>> {
    let output = run_output("ip", &["-o", "-4", "addr", "show"])?;
    Ok(parse_interface_addresses(&output))
}

/// Parses `ip -o -4 addr show` lines such as `4: eth0    inet 10.0.0.2/24 brd ...`.
fn parse_interface_addresses(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let interface = fields.nth(1)?;
            let address = fields.skip_while(|field| *field != "inet").nth(1)?;
            let address = address.split('/').next()?;
            Some((interface.to_owned(), address.to_owned()))
        })
        .collect()
}

pub fn bridge_exists(bridge: &str) -> bool {
    Path::new("/sys/class/net").join(bridge).exists()
}

/// Creates the bridge with the subnet's first address, unless it exists already.
///
/// Fails when another interface already has the bridge address, because the lab
/// must not change interfaces it did not create.
pub fn create_bridge(bridge: &str, subnet: Subnet) -> anyhow::Result<()> {
    let address = subnet.bridge_address();
    let owner = interface_addresses()?
        .into_iter()
        .find(|(_, used)| *used == address);
    if let Some((interface, _)) = &owner {
        if interface != bridge {
            bail!(
                "address `{address}` is already used by interface `{interface}`: \
                 choose another lab name with `--name` or remove that address"
            );
        }
    }

    if !bridge_exists(bridge) {
        run("ip", &["link", "add", "name", bridge, "type", "bridge"])
            .with_context(|| format!("failed to create bridge `{bridge}`"))?;
    }
    if owner.is_none() {
        let cidr = format!("{address}/24");
        run("ip", &["addr", "add", &cidr, "dev", bridge])?;
    }
    run("ip", &["link", "set", bridge, "up"])?;
    Ok(())
}

pub fn remove_bridge(bridge: &str) -> anyhow::Result<()> {
    if bridge_exists(bridge) {
        run("ip", &["link", "delete", bridge, "type", "bridge"])
            .with_context(|| format!("failed to remove bridge `{bridge}`"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_name_fits_interface_limit() {
        let cases = [
            ("default", "vf-default"),
            ("ci", "vf-ci"),
            ("twelve-chars", "vf-twelve-chars"),
        ];
        for (lab, expected) in cases {
            assert_eq!(bridge_name(lab), expected, "lab `{lab}`");
        }

        let long_a = bridge_name("integration-alpha");
        let long_b = bridge_name("integration-beta");
        assert_eq!(long_a.len(), 15);
        assert_eq!(long_b.len(), 15);
        assert_ne!(long_a, long_b);
    }

    #[test]
    fn host_addresses_start_at_eleven() {
        let subnet = Subnet { third_octet: 5 };
        assert_eq!(subnet.bridge_address(), "10.77.5.1");
        assert_eq!(subnet.host_address(1).as_deref(), Some("10.77.5.11"));
        assert_eq!(subnet.host_address(3).as_deref(), Some("10.77.5.13"));
        assert_eq!(subnet.host_address(244).as_deref(), Some("10.77.5.254"));
        assert_eq!(subnet.host_address(245), None);
        assert_eq!(subnet.host_address(0), None);
        assert_eq!(Subnet::max_hosts(), 244);
    }

    #[test]
    fn lab_names_are_checked() {
        for name in ["default", "ci-1", "a"] {
            assert!(is_valid_lab_name(name), "`{name}` should be valid");
        }
        for name in ["", "-x", "Upper", "a/b", "a b", &"x".repeat(33)] {
            assert!(!is_valid_lab_name(name), "`{name}` should be invalid");
        }
    }

    #[test]
    fn interface_addresses_are_parsed() {
        let output = "\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
4: eth0    inet 172.16.0.2/24 brd 172.16.0.255 scope global eth0\\       valid_lft forever
9: vf-default    inet 10.77.0.1/24 scope global vf-default\\       valid_lft forever
";
        assert_eq!(
            parse_interface_addresses(output),
            vec![
                ("lo".to_owned(), "127.0.0.1".to_owned()),
                ("eth0".to_owned(), "172.16.0.2".to_owned()),
                ("vf-default".to_owned(), "10.77.0.1".to_owned()),
            ]
        );
    }

    #[test]
    fn allocations_are_recorded_and_released() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("subnets.json");

        let default = allocate_subnet(&path, "default").expect("default");
        assert_eq!(default.third_octet, 0);

        let first = allocate_subnet(&path, "one").expect("one");
        let second = allocate_subnet(&path, "two").expect("two");
        assert_ne!(first, second);
        assert_ne!(first.third_octet, 0);
        assert_eq!(allocate_subnet(&path, "one").expect("one again"), first);

        release_subnet(&path, "one").expect("release");
        let third = allocate_subnet(&path, "three").expect("three");
        assert_eq!(third, first, "a released subnet is reused");
    }
}
