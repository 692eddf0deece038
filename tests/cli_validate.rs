//! `vpsforge validate` finds, before any host is contacted, the template errors
//! that `apply` would otherwise hit part-way: unknown filters, tests and lookup
//! plugins, and missing or broken template files.

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

/// Writes `text` to `name` under `dir`, creating its folders.
fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("file has a folder")).expect("create folders");
    std::fs::write(path, text).expect("write test file");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn validate_reports_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "site.yaml",
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ ports | to_jsn }}\"\n    - debug: msg=\"{{ lookup('sequence', 'start=1') }}\"\n    - command: /bin/true\n      when: result is succeded\n    - debug:\n        msg: !unsafe \"{{ ports | to_jsn }}\"\n",
    );

    let output = vpsforge(dir.path(), &["validate", "site.yaml"]);

    assert_eq!(
        stderr(&output),
        "error: unknown filter `to_jsn`: check its spelling; vpsforge implements only part of Ansible's filters\n  --> site.yaml:4:14\n  |\n4 |         msg: \"{{ ports | to_jsn }}\"\n  |              ^\n  = help: did you mean `to_json`?\n\n\
error: unknown lookup plugin `sequence`: the supported plugins are `env`, `file` and `vars`\n  --> site.yaml:5:14\n  |\n5 |     - debug: msg=\"{{ lookup('sequence', 'start=1') }}\"\n  |              ^\n\n\
error: unknown test `succeded`: check its spelling; vpsforge implements only part of Ansible's tests\n  --> site.yaml:7:13\n  |\n7 |       when: result is succeded\n  |             ^\n  = help: did you mean `succeeded`?\n\n\
3 errors found; no host was contacted\n"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn validate_checks_template_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "site.yaml",
        "- hosts: all\n  roles: [web]\n  tasks:\n    - template:\n        src: app.conf.j2\n        dest: /etc/app.conf\n    - template:\n        src: missing.j2\n        dest: /etc/missing.conf\n    - template:\n        src: \"{{ item }}.j2\"\n        dest: /etc/x\n      loop: [a]\n",
    );
    write(
        dir.path(),
        "templates/app.conf.j2",
        "port={{ port }}\nname={{ name | uper }}\n",
    );
    write(
        dir.path(),
        "roles/web/tasks/main.yml",
        "- template:\n    src: broken.j2\n    dest: /etc/broken\n",
    );
    write(
        dir.path(),
        "roles/web/templates/broken.j2",
        "a\n{% if x %}\nb={{ x }\n",
    );

    let output = vpsforge(dir.path(), &["validate", "site.yaml"]);

    assert_eq!(
        stderr(&output),
        "error: invalid template syntax: unexpected `}`, expected end of variable block\n  --> roles/web/templates/broken.j2:3:8\n  |\n3 | b={{ x }\n  |        ^\n\n\
error: unknown filter `uper`: check its spelling; vpsforge implements only part of Ansible's filters\n  --> templates/app.conf.j2:2:16\n  |\n2 | name={{ name | uper }}\n  |                ^\n  = help: did you mean `upper`?\n\n\
error: template source `missing.j2` not found\n  --> site.yaml:8:9\n  |\n8 |         src: missing.j2\n  |         ^\n  = help: looked in `templates/missing.j2`, `missing.j2`\n\n\
3 errors found; no host was contacted\n"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn validate_accepts_known_names_and_templates() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "site.yaml",
        "- hosts: all\n  roles: [web]\n  tasks:\n    - debug:\n        msg: \"{{ lookup('ansible.builtin.env', 'HOME') | default('x') | to_json }}\"\n      when: result is not failed and (nope.attr | default(true))\n",
    );
    write(
        dir.path(),
        "roles/web/tasks/main.yml",
        "- template:\n    src: motd.j2\n    dest: /etc/motd\n",
    );
    write(
        dir.path(),
        "roles/web/templates/motd.j2",
        "{% macro line(x) %}{{ x | upper }}{% endmacro %}{{ line(ansible_managed) }}\n{% for h in groups['all'] | sort %}{{ hostvars[h].inventory_hostname }}{% endfor %}\n",
    );

    let output = vpsforge(dir.path(), &["validate", "site.yaml"]);

    assert_eq!(stderr(&output), "");
    assert_eq!(stdout(&output), "ok: 1 playbook, 1 play, 2 tasks checked\n");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn validate_checks_assert_conditions() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "site.yaml",
        "- hosts: all\n  tasks:\n    - assert:\n        that:\n          - x is defined\n          - x is chnged\n    - assert:\n        that: \"y | boool\"\n",
    );

    let output = vpsforge(dir.path(), &["validate", "site.yaml"]);

    assert_eq!(
        stderr(&output),
        "error: unknown test `chnged`: check its spelling; vpsforge implements only part of Ansible's tests\n  --> site.yaml:6:13\n  |\n6 |           - x is chnged\n  |             ^\n  = help: did you mean `changed`?\n\n\
error: unknown filter `boool`: check its spelling; vpsforge implements only part of Ansible's filters\n  --> site.yaml:8:15\n  |\n8 |         that: \"y | boool\"\n  |               ^\n  = help: did you mean `bool`?\n\n\
2 errors found; no host was contacted\n"
    );
    assert_eq!(output.status.code(), Some(1));
}
