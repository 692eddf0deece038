//! The built-in fact set, gathered with one remote script.
//!
//! Ansible starts a Python module to gather facts; vpsforge runs one POSIX shell
//! script that prints `key=value` lines and parses them on the controller. The
//! names follow Ansible's (`distribution`, `distribution_version`, ...), and
//! `openssl_version` is added because the TLS configuration depends on it.

use serde_json::{json, Map, Value};

use crate::modules::common::parse_key_values;

/// The script that prints the facts. It only reads, and works without Python.
pub const SCRIPT: &str = r#"
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "os_id=${ID:-}"
echo "os_name=${NAME:-}"
echo "os_version_id=${VERSION_ID:-}"
echo "os_codename=${VERSION_CODENAME:-}"
echo "debian_version=$(cat /etc/debian_version 2>/dev/null)"
echo "architecture=$(uname -m)"
echo "kernel=$(uname -r)"
echo "system=$(uname -s)"
echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname)"
echo "fqdn=$(hostname -f 2>/dev/null || hostname)"
echo "ipv4=$(ip -4 -o addr show scope global 2>/dev/null | awk '{split($4, a, "/"); printf "%s,", a[1]}')"
echo "default_route=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i+1); exit}')"
echo "memtotal_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
echo "memfree_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)"
echo "vcpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
echo "init=$(cat /proc/1/comm 2>/dev/null)"
if [ -d /run/systemd/system ]; then echo "systemd_running=1"; fi
echo "openssl=$(openssl version 2>/dev/null | awk '{print $2}')"
if [ -z "$(command -v openssl)" ] && command -v dpkg-query >/dev/null 2>&1; then
  echo "libssl=$(dpkg-query -W -f='${Version}' libssl3 libssl3t64 2>/dev/null | head -n 1)"
fi
echo "python3=$(command -v python3 2>/dev/null)"
# The version comes from the interpreter's file name, so no Python process starts.
echo "python3_version=$(readlink -f "$(command -v python3)" 2>/dev/null | sed -n 's|.*/python\([0-9][0-9.]*\)$|\1|p')"
echo "pkg_mgr=$(if command -v apt-get >/dev/null 2>&1; then echo apt; elif command -v dnf >/dev/null 2>&1; then echo dnf; fi)"
# Facts read again after a change may run through sudo; they still name the login user.
if [ -n "${SUDO_USER:-}" ] && [ -n "${SUDO_UID:-}" ]; then
  echo "user_id=$SUDO_USER"
  echo "user_uid=$SUDO_UID"
else
  echo "user_id=$(id -un)"
  echo "user_uid=$(id -u)"
fi
echo "timezone=$(timedatectl show -p Timezone --value 2>/dev/null || cat /etc/timezone 2>/dev/null)"
echo "date_epoch=$(date +%s)"
"#;

/// Parses the facts script's output into Ansible-shaped facts (without the `ansible_` prefix).
pub fn parse(output: &str) -> Map<String, Value> {
    let raw = parse_key_values(output);
    let get = |key: &str| raw.get(key).cloned().unwrap_or_default();

    let distribution = match get("os_id").as_str() {
        "debian" => "Debian".to_string(),
        "ubuntu" => "Ubuntu".to_string(),
        "" => get("system"),
        other => capitalize(other),
    };
    let mut version = get("os_version_id");
    if distribution == "Debian" {
        // /etc/debian_version has the point release (12.8), os-release only the major one.
        let point = get("debian_version");
        if point.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            version = point;
        }
    }
    let major = version.split('.').next().unwrap_or_default().to_string();
    let ipv4: Vec<String> = get("ipv4")
        .split(',')
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    let memtotal_mb = get("memtotal_kb").parse::<u64>().unwrap_or(0) / 1024;
    let memfree_mb = get("memfree_kb").parse::<u64>().unwrap_or(0) / 1024;
    let vcpus = get("vcpus").parse::<u64>().unwrap_or(1);
    let service_mgr = if raw.contains_key("systemd_running") || get("init") == "systemd" {
        "systemd".to_string()
    } else {
        get("init")
    };
    let openssl = get("openssl");
    let python = get("python3");
    let architecture = get("architecture");

    let mut facts = Map::new();
    facts.insert("distribution".into(), json!(distribution));
    facts.insert("distribution_version".into(), json!(version));
    facts.insert("distribution_major_version".into(), json!(major));
    facts.insert("distribution_release".into(), json!(get("os_codename")));
    facts.insert("os_family".into(), json!(os_family(&distribution)));
    facts.insert("architecture".into(), json!(architecture));
    facts.insert("kernel".into(), json!(get("kernel")));
    facts.insert("system".into(), json!(get("system")));
    facts.insert(
        "hostname".into(),
        json!(get("hostname").split('.').next().unwrap_or_default()),
    );
    facts.insert("nodename".into(), json!(get("hostname")));
    facts.insert("fqdn".into(), json!(get("fqdn")));
    facts.insert("all_ipv4_addresses".into(), json!(ipv4));
    facts.insert(
        "default_ipv4".into(),
        json!({"address": ipv4.first().cloned().unwrap_or_default(), "interface": get("default_route")}),
    );
    facts.insert("memtotal_mb".into(), json!(memtotal_mb));
    facts.insert("memfree_mb".into(), json!(memfree_mb));
    facts.insert("processor_vcpus".into(), json!(vcpus));
    facts.insert("processor_count".into(), json!(vcpus));
    facts.insert("service_mgr".into(), json!(service_mgr));
    facts.insert("pkg_mgr".into(), json!(get("pkg_mgr")));
    facts.insert("openssl_version".into(), json!(openssl));
    facts.insert(
        "python".into(),
        if python.is_empty() {
            Value::Null
        } else {
            json!({"executable": python, "version": get("python3_version")})
        },
    );
    facts.insert("user_id".into(), json!(get("user_id")));
    facts.insert(
        "user_uid".into(),
        json!(get("user_uid").parse::<u64>().unwrap_or(0)),
    );
    facts.insert(
        "date_time".into(),
        json!({"epoch": get("date_epoch"), "tz": get("timezone")}),
    );
    facts
}

/// Returns the variables facts add for a host: `ansible_facts` plus `ansible_NAME` for each.
pub fn as_vars(facts: &Map<String, Value>) -> Map<String, Value> {
    let mut vars = Map::new();
    for (key, value) in facts {
        vars.insert(format!("ansible_{key}"), value.clone());
    }
    vars.insert("ansible_facts".into(), Value::Object(facts.clone()));
    vars
}

fn os_family(distribution: &str) -> &'static str {
    match distribution {
        "Debian" | "Ubuntu" => "Debian",
        _ => "Unknown",
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKWORM: &str = "os_id=debian\nos_name=Debian GNU/Linux\nos_version_id=12\nos_codename=bookworm\n\
debian_version=12.8\narchitecture=x86_64\nkernel=6.1.0-27-amd64\nsystem=Linux\nhostname=h1\nfqdn=h1.lab.test\n\
ipv4=10.77.0.11,\ndefault_route=\nmemtotal_kb=24576000\nmemfree_kb=20000000\nvcpus=2\ninit=systemd\n\
systemd_running=1\nopenssl=3.0.15\npython3=/usr/bin/python3\npython3_version=3.11\npkg_mgr=apt\n\
user_id=root\nuser_uid=0\ntimezone=Etc/UTC\ndate_epoch=1796000000\n";

    #[test]
    fn parse_bookworm_output() {
        let facts = parse(BOOKWORM);
        assert_eq!(facts["distribution"], json!("Debian"));
        assert_eq!(facts["distribution_version"], json!("12.8"));
        assert_eq!(facts["distribution_major_version"], json!("12"));
        assert_eq!(facts["distribution_release"], json!("bookworm"));
        assert_eq!(facts["all_ipv4_addresses"], json!(["10.77.0.11"]));
        assert_eq!(facts["memtotal_mb"], json!(24000));
        assert_eq!(facts["processor_vcpus"], json!(2));
        assert_eq!(facts["service_mgr"], json!("systemd"));
        assert_eq!(facts["openssl_version"], json!("3.0.15"));
        assert_eq!(facts["python"]["version"], json!("3.11"));
    }

    #[test]
    fn parse_host_without_python() {
        let output = BOOKWORM.replace("python3=/usr/bin/python3\n", "python3=\n");
        assert_eq!(parse(&output)["python"], Value::Null);
    }

    #[test]
    fn vars_have_prefix_and_dict() {
        let vars = as_vars(&parse(BOOKWORM));
        assert_eq!(vars["ansible_distribution"], json!("Debian"));
        assert_eq!(vars["ansible_facts"]["hostname"], json!("h1"));
    }

    #[test]
    fn script_runs_locally() {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let facts = parse(&String::from_utf8_lossy(&output.stdout));
        assert!(!facts["architecture"].as_str().unwrap().is_empty());
        assert!(facts["processor_vcpus"].as_u64().unwrap() >= 1);
    }
}
