//! Command-line tests: whole rendered messages and exit codes, no host needed.

use std::path::Path;
use std::process::{Command, Output};

fn vpsforge(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vpsforge"))
        .current_dir(dir)
        .args(args)
        .env_remove("VPSFORGE_LOG")
        .output()
        .expect("run vpsforge")
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write test file");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn validate_reports_every_error_with_caret() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "site.yaml",
        "- hosts: all\n  tasks:\n    - name: install\n      apt: nmae=nginx\n    - aptt: name=nginx\n",
    );

    let output = vpsforge(dir.path(), &["validate", "site.yaml"]);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: unknown argument `nmae` for module `apt`\n  --> site.yaml:4:12\n  |\n4 |       apt: nmae=nginx\n  |            ^\n  = help: did you mean `name`?\n\n\
error: unknown module or task keyword `aptt`\n  --> site.yaml:5:7\n  |\n5 |     - aptt: name=nginx\n  |       ^\n  = help: did you mean `apt`?\n\n\
2 errors found; no host was contacted\n"
    );
}

#[test]
fn validate_reports_yaml_error_location() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "site.yaml", "- hosts: all\n  tasks: [\n");

    let output = vpsforge(dir.path(), &["validate", "site.yaml"]);

    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.starts_with("error: invalid YAML: "), "{text}");
    assert!(text.contains("  --> site.yaml:"), "{text}");
    assert!(
        text.ends_with("1 error found; no host was contacted\n"),
        "{text}"
    );
}

#[test]
fn validate_accepts_good_playbook() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "site.yaml",
        "- hosts: all\n  tasks:\n    - ansible.builtin.apt: { name: nginx }\n      notify: reload\n  handlers:\n    - name: reload\n      service: name=nginx state=reloaded\n",
    );

    let output = vpsforge(dir.path(), &["validate", "site.yaml"]);

    assert_eq!(stderr(&output), "");
    assert_eq!(stdout(&output), "ok: 1 playbook, 1 play, 2 tasks checked\n");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn apply_checks_input_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "inventory.ini",
        "[web]\nunreachable.invalid ansible_port=1\n",
    );
    write(
        dir.path(),
        "site.yaml",
        "- hosts: web\n  tasks:\n    - copy: { dest: /tmp/x, content: \"{{ a \" }\n",
    );

    let output = vpsforge(dir.path(), &["apply", "-i", "inventory.ini", "site.yaml"]);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "",
        "nothing may run when the input is invalid"
    );
    assert!(
        stderr(&output).contains("1 error found; no host was contacted"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn apply_requires_inventory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "site.yaml", "- hosts: all\n  tasks: []\n");

    let output = vpsforge(dir.path(), &["apply", "site.yaml"]);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: no inventory given\n  = help: pass `-i inventory.yaml`, or `-i HOST,` for a single host\n"
    );
}

#[test]
fn inventory_host_shows_merged_vars() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "inventory.ini",
        "[web]\nh1 ansible_host=10.0.0.5 http_port=8080\n\n[web:vars]\ntz=Europe/Paris\n",
    );
    std::fs::create_dir(dir.path().join("group_vars")).unwrap();
    write(
        dir.path(),
        "group_vars/all.yaml",
        "tz: Etc/UTC\nhttp_port: 80\n",
    );

    let output = vpsforge(
        dir.path(),
        &["inventory", "-i", "inventory.ini", "--host", "h1"],
    );

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let vars: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(vars["ansible_host"], "10.0.0.5");
    assert_eq!(
        vars["tz"], "Etc/UTC",
        "group_vars/all ranks above group vars in the inventory file"
    );
    assert_eq!(
        vars["http_port"], 8080,
        "host vars rank above group_vars/all"
    );
}

#[test]
fn help_documents_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let output = vpsforge(dir.path(), &["apply", "--help"]);
    let text = stdout(&output);
    assert!(
        text.contains("2  with --detailed-exitcode only: success, and something changed"),
        "{text}"
    );
}
