//! Integration tests of every module against real lab hosts over real SSH.
//!
//! Each scenario is an Ansible-style playbook run four times: `--check`, apply,
//! `--check`, apply. The first two must report changes and the last two none,
//! check mode must leave the touched paths byte for byte as they were, and a
//! command on the host confirms the applied state. All scenarios share one lab
//! of two hosts, booted before the first and torn down after the last.
//!
//! These tests need root, systemd-nspawn and debootstrap; they are ignored by a
//! plain `cargo test` and run with `cargo test -- --include-ignored`.

#[path = "support/lab.rs"]
mod lab;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

use lab::Lab;

/// One `vpsforge apply` run, parsed from its JSON lines.
struct RunOutput {
    exit_code: i32,
    events: Vec<Value>,
    stderr: String,
}

impl RunOutput {
    fn changed(&self, host: &str) -> u64 {
        self.recap(host, "changed")
    }

    fn recap(&self, host: &str, field: &str) -> u64 {
        self.events
            .iter()
            .find(|e| e["event"] == "recap")
            .and_then(|e| e["hosts"][host][field].as_u64())
            .unwrap_or(u64::MAX)
    }

    fn describe(&self) -> String {
        let lines: Vec<String> = self.events.iter().map(|e| e.to_string()).collect();
        format!(
            "exit {}\n{}\nstderr:\n{}",
            self.exit_code,
            lines.join("\n"),
            self.stderr
        )
    }
}

struct Fixture {
    lab: Lab,
    work: tempfile::TempDir,
}

impl Fixture {
    fn playbook(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write playbook");
        path
    }

    fn apply(&self, playbook: &Path, extra: &[&str]) -> RunOutput {
        let output = Command::new(env!("CARGO_BIN_EXE_vpsforge"))
            .arg("apply")
            .arg("-i")
            .arg(&self.lab.inventory)
            .arg("--known-hosts")
            .arg(&self.lab.known_hosts)
            .args(["--format", "json"])
            .args(extra)
            .arg(playbook)
            .output()
            .expect("run vpsforge");
        RunOutput {
            exit_code: output.status.code().unwrap_or(-1),
            events: String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn ssh(&self, host: &str, command: &str) -> String {
        let output = self.lab.ssh(host, command);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Returns a fingerprint of paths on the host: type, mode, owner and content hash.
    fn fingerprint(&self, host: &str, paths: &[&str]) -> String {
        let quoted: Vec<String> = paths
            .iter()
            .map(|p| format!("'{}'", p.replace('\'', r"'\''")))
            .collect();
        let script = format!(
            "for p in {}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then stat -c '%n %F %a %U %G %s' \"$p\"; \
             if [ -f \"$p\" ]; then sha256sum \"$p\"; fi; else echo \"$p absent\"; fi; done",
            quoted.join(" ")
        );
        self.ssh(host, &script)
    }
}

/// A module scenario: a playbook, the paths it touches, and a check of the final state.
struct Scenario {
    name: &'static str,
    playbook: &'static str,
    touched: &'static [&'static str],
    /// A shell command on h1 whose output must contain `expect` after apply.
    verify: &'static str,
    expect: &'static str,
}

fn converge(fixture: &Fixture, scenario: &Scenario) -> Result<(), Failed> {
    let playbook = fixture.playbook(scenario.name, scenario.playbook);
    let host = "h1";
    let before = fixture.fingerprint(host, scenario.touched);

    let check = fixture.apply(&playbook, &["--check", "--limit", host]);
    if check.exit_code != 0 || check.changed(host) == 0 {
        return Err(format!(
            "first --check should predict changes:\n{}",
            check.describe()
        )
        .into());
    }
    let after_check = fixture.fingerprint(host, scenario.touched);
    if before != after_check {
        return Err(
            format!("--check changed the host:\nbefore:\n{before}\nafter:\n{after_check}").into(),
        );
    }

    let apply = fixture.apply(&playbook, &["--limit", host]);
    if apply.exit_code != 0 || apply.changed(host) == 0 {
        return Err(format!("first apply should change the host:\n{}", apply.describe()).into());
    }
    let state = fixture.ssh(host, scenario.verify);
    if !state.contains(scenario.expect) {
        return Err(format!(
            "after apply, `{}` printed {state:?}, expected it to contain {:?}",
            scenario.verify, scenario.expect
        )
        .into());
    }

    let recheck = fixture.apply(
        &playbook,
        &["--check", "--limit", host, "--detailed-exitcode"],
    );
    if recheck.exit_code != 0 || recheck.changed(host) != 0 {
        return Err(format!(
            "--check after apply should find nothing to change:\n{}",
            recheck.describe()
        )
        .into());
    }
    let reapply = fixture.apply(&playbook, &["--limit", host, "--detailed-exitcode"]);
    if reapply.exit_code != 0 || reapply.changed(host) != 0 {
        return Err(format!(
            "second apply should change nothing:\n{}",
            reapply.describe()
        )
        .into());
    }
    Ok(())
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "copy_content_and_mode",
        playbook: r#"
- hosts: h1
  gather_facts: false
  tasks:
    - file: path="/tmp/vf copy" state=directory mode=0755
    - name: write a file with spaces and quotes in its name
      ansible.builtin.copy:
        dest: "/tmp/vf copy/it's a \"file\""
        content: "hello\nworld\n"
        mode: "0600"
      become: true
"#,
        touched: &["/tmp/vf copy", "/tmp/vf copy/it's a \"file\""],
        verify: "stat -c '%a' \"/tmp/vf copy/it's a \\\"file\\\"\"; cat \"/tmp/vf copy/it's a \\\"file\\\"\"",
        expect: "600\nhello\nworld\n",
    },
    Scenario {
        name: "template_with_facts",
        playbook: r#"
- hosts: h1
  vars:
    listen_port: 8080
  tasks:
    - name: render a config from a template
      template:
        src: app.conf.j2
        dest: /etc/vf-app.conf
        owner: root
        mode: "0644"
"#,
        touched: &["/etc/vf-app.conf"],
        verify: "cat /etc/vf-app.conf",
        expect: "port = 8080\nhost = h1\n",
    },
    Scenario {
        name: "file_states",
        playbook: r#"
- hosts: h1
  gather_facts: no
  tasks:
    - file: { path: /srv/vf/data, state: directory, mode: "0750" }
    - copy: { content: "x\n", dest: /srv/vf/data/target }
    - file: { src: /srv/vf/data/target, dest: /srv/vf/link, state: link }
    - file: { path: /srv/vf/gone, state: absent }
"#,
        touched: &["/srv/vf", "/srv/vf/data", "/srv/vf/link"],
        verify: "stat -c '%a' /srv/vf/data; readlink /srv/vf/link",
        expect: "750\n/srv/vf/data/target",
    },
    Scenario {
        name: "lineinfile_and_blockinfile",
        playbook: r#"
- hosts: h1
  gather_facts: false
  tasks:
    - copy: { dest: /etc/vf-lines.conf, content: "a=1\n#Port 22\nz=9\n", force: false }
    - lineinfile: { path: /etc/vf-lines.conf, regexp: '^#?Port ', line: 'Port 2222' }
    - blockinfile:
        path: /etc/vf-lines.conf
        block: |
          b=2
          c=3
"#,
        touched: &["/etc/vf-lines.conf"],
        verify: "cat /etc/vf-lines.conf",
        expect: "a=1\nPort 2222\nz=9\n# BEGIN ANSIBLE MANAGED BLOCK\nb=2\nc=3\n# END ANSIBLE MANAGED BLOCK\n",
    },
    Scenario {
        name: "cron_with_cron_tz",
        playbook: r#"
- hosts: h1
  gather_facts: false
  tasks:
    - cron: { name: CRON_TZ, env: true, job: UTC, cron_file: vf-renew, user: root }
    - cron:
        name: renew certificates
        minute: "17"
        hour: "3,15"
        job: /usr/bin/true
        cron_file: vf-renew
        user: root
"#,
        touched: &["/etc/cron.d/vf-renew"],
        verify: "cat /etc/cron.d/vf-renew",
        expect: "CRON_TZ=\"UTC\"\n#Ansible: renew certificates\n17 3,15 * * * root /usr/bin/true\n",
    },
    Scenario {
        name: "timezone",
        playbook: r#"
- hosts: h1
  tasks:
    - community.general.timezone: { name: Asia/Shanghai }
    # The facts are read again after the change, so this writes the new zone.
    - copy: { dest: /etc/vf-zone, content: "{{ ansible_date_time.tz }}\n" }
"#,
        touched: &["/etc/localtime", "/etc/timezone", "/etc/vf-zone"],
        verify: "readlink /etc/localtime; cat /etc/vf-zone",
        expect: "Asia/Shanghai\nAsia/Shanghai\n",
    },
    Scenario {
        name: "user_and_group",
        playbook: r#"
- hosts: h1
  gather_facts: false
  tasks:
    - group: { name: vfapp, system: true }
    - user: { name: vfapp, group: vfapp, system: true, shell: /usr/sbin/nologin, home: /srv/vfapp, create_home: false }
"#,
        touched: &["/etc/passwd", "/etc/group"],
        verify: "getent passwd vfapp",
        expect: "/srv/vfapp:/usr/sbin/nologin",
    },
    Scenario {
        name: "systemd_unit",
        playbook: r#"
- hosts: h1
  gather_facts: false
  tasks:
    - copy:
        dest: /etc/systemd/system/vf-sleep.service
        content: |
          [Unit]
          Description=vpsforge test unit
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
      notify: restart vf-sleep
    - ansible.builtin.systemd_service: { name: vf-sleep, state: started, enabled: true, daemon_reload: true }
  handlers:
    - name: restart vf-sleep
      service: { name: vf-sleep, state: restarted }
"#,
        touched: &["/etc/systemd/system/vf-sleep.service", "/etc/systemd/system/multi-user.target.wants/vf-sleep.service"],
        verify: "systemctl is-active vf-sleep; systemctl is-enabled vf-sleep",
        expect: "active\nenabled",
    },
    Scenario {
        name: "apt_package",
        playbook: r#"
- hosts: h1
  gather_facts: false
  tasks:
    - apt: { name: [tree], state: present, update_cache: true, cache_valid_time: 3600 }
"#,
        touched: &["/usr/bin/tree"],
        verify: "dpkg-query -W -f='${Status}' tree",
        expect: "install ok installed",
    },
    Scenario {
        name: "sysctl_file",
        playbook: r#"
- hosts: h1
  gather_facts: false
  tasks:
    - ansible.posix.sysctl: { name: net.core.somaxconn, value: "1024", sysctl_file: /etc/sysctl.d/90-vf.conf, sysctl_set: false, reload: false }
"#,
        touched: &["/etc/sysctl.d/90-vf.conf"],
        verify: "cat /etc/sysctl.d/90-vf.conf",
        expect: "net.core.somaxconn=1024",
    },
    Scenario {
        name: "command_creates_and_shell",
        playbook: r#"
- hosts: h1
  gather_facts: false
  tasks:
    - command: touch /srv/vf-made-by-command creates=/srv/vf-made-by-command
    - shell: cat /etc/hostname
      register: hostname_out
      changed_when: false
      check_mode: false
    - assert:
        that:
          - hostname_out.stdout == 'h1'
          - hostname_out is succeeded
"#,
        touched: &["/srv/vf-made-by-command"],
        verify: "ls /srv/vf-made-by-command",
        expect: "/srv/vf-made-by-command",
    },
    Scenario {
        name: "ufw_rules",
        playbook: r#"
- hosts: h1
  gather_facts: false
  tasks:
    - apt: { name: ufw }
    - ufw: { rule: limit, port: "22", proto: tcp }
    - ufw: { rule: allow, port: "443", proto: tcp }
    - ufw: { state: enabled, policy: deny, direction: incoming }
"#,
        touched: &["/etc/ufw/user.rules"],
        verify: "ufw status",
        expect: "443/tcp",
    },
];

/// Connects as an unprivileged user and escalates with sudo and a password, which must
/// never show in the output.
fn become_with_sudo_password(fixture: &Fixture) -> Result<(), Failed> {
    let password = "Vf-sudo-Pass-8731";
    let setup = format!(
        "id deploy >/dev/null 2>&1 || useradd -m -s /bin/sh deploy; echo 'deploy:{password}' | chpasswd; \
         mkdir -p ~deploy/.ssh; cp /root/.ssh/authorized_keys ~deploy/.ssh/; chown -R deploy: ~deploy/.ssh; \
         echo 'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy; chmod 0440 /etc/sudoers.d/deploy; echo ready"
    );
    if !fixture.ssh("h1", &setup).contains("ready") {
        return Err("could not create the `deploy` user on h1".into());
    }
    let inventory = fixture.work.path().join("become-inventory.yaml");
    std::fs::write(
        &inventory,
        format!(
            "all:\n  hosts:\n    h1:\n      ansible_host: {}\n      ansible_user: deploy\n      \
             ansible_ssh_private_key_file: {}\n      ansible_become_password: {password}\n",
            fixture.lab.address("h1"),
            fixture.lab.key().display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let playbook = fixture.playbook(
        "become",
        "- hosts: h1\n  gather_facts: false\n  become: true\n  tasks:\n    - copy: { dest: /root/vf-become, content: \"root only\\n\", mode: \"0600\" }\n    - command: id -un\n      register: who\n      changed_when: false\n    - assert: { that: [\"who.stdout == 'root'\"] }\n",
    );
    for (round, expect_changed) in [(1, 1), (2, 0)] {
        let output = Command::new(env!("CARGO_BIN_EXE_vpsforge"))
            .args(["apply", "--format", "json", "--diff", "-i"])
            .arg(&inventory)
            .arg("--known-hosts")
            .arg(&fixture.lab.known_hosts)
            .arg(&playbook)
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(
                format!("round {round}: apply with become failed:\n{stdout}\n{stderr}").into(),
            );
        }
        if stdout.contains(password) || stderr.contains(password) {
            return Err(format!(
                "round {round}: the sudo password appeared in the output:\n{stdout}\n{stderr}"
            )
            .into());
        }
        let recap: Vec<Value> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let changed = recap
            .iter()
            .find(|e| e["event"] == "recap")
            .and_then(|e| e["hosts"]["h1"]["changed"].as_u64());
        if changed != Some(expect_changed) {
            return Err(
                format!("round {round}: expected changed={expect_changed}:\n{stdout}").into(),
            );
        }
    }
    let owner = fixture.ssh("h1", "stat -c '%U %a' /root/vf-become");
    if owner.trim() != "root 600" {
        return Err(format!("/root/vf-become has owner and mode {owner:?}").into());
    }
    Ok(())
}

fn main() {
    let mut args = Arguments::from_args();
    // All scenarios share the same host, so they run one after another to keep apt
    // and systemd from seeing two scenarios at once.
    args.test_threads.get_or_insert(1);
    let mut trials: Vec<Trial> = Vec::new();
    let fixture: Arc<std::sync::OnceLock<Result<Fixture, String>>> =
        Arc::new(std::sync::OnceLock::new());

    let become_fixture = fixture.clone();
    // First, because the ufw scenario rate-limits new SSH connections to h1.
    trials.push(
        Trial::test("become_with_sudo_password", move || {
            let fixture = become_fixture
                .get()
                .ok_or("the lab was not started")?
                .as_ref()
                .map_err(|e| e.clone())?;
            become_with_sudo_password(fixture)
        })
        .with_ignored_flag(true),
    );

    for scenario in SCENARIOS {
        let fixture = fixture.clone();
        trials.push(
            Trial::test(format!("module_{}", scenario.name), move || {
                let fixture = fixture
                    .get()
                    .ok_or("the lab was not started")?
                    .as_ref()
                    .map_err(|e| e.clone())?;
                converge(fixture, scenario)
            })
            .with_ignored_flag(true),
        );
    }

    let wanted = trials
        .iter()
        .any(|t| !args.is_ignored(t) && !args.is_filtered_out(t));
    if wanted {
        let started = std::panic::catch_unwind(|| {
            let lab = Lab::up("modules", 2);
            let work = tempfile::tempdir().expect("temp dir");
            std::fs::write(
                work.path().join("app.conf.j2"),
                "port = {{ listen_port }}\nhost = {{ ansible_hostname }}\n",
            )
            .expect("write template");
            Fixture { lab, work }
        })
        .map_err(|_| "the lab could not be started; see the output above".to_string());
        let _ = fixture.set(started);
    }
    // The lab comes down when `fixture` is dropped, after every trial has run.
    let conclusion = libtest_mimic::run(&args, trials);
    drop(fixture);
    conclusion.exit();
}
