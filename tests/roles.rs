//! Checks of the bundled roles that need no host. `site.yaml` and the example
//! inventory must pass `vpsforge validate`, and every role must document each
//! of its variables in its README.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn roles() -> Vec<PathBuf> {
    let mut roles: Vec<PathBuf> = std::fs::read_dir(repository().join("roles"))
        .expect("read roles/")
        .map(|entry| entry.expect("roles/ entry").path())
        .filter(|path| path.is_dir())
        .collect();
    roles.sort();
    roles
}

/// Returns the top-level keys of a role's `defaults/main.yaml`.
fn default_names(role: &Path) -> Vec<String> {
    let path = role.join("defaults/main.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("failed to read `{}`: {error}", path.display()));
    text.lines()
        .filter(|line| !line.starts_with([' ', '#', '-']))
        .filter_map(|line| line.split_once(':').map(|(name, _)| name.trim().to_owned()))
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn site_playbook_validates() {
    let output = Command::new(env!("CARGO_BIN_EXE_vpsforge"))
        .arg("validate")
        .arg("-i")
        .arg(repository().join("inventory.example.yaml"))
        .arg(repository().join("playbooks/site.yaml"))
        .output()
        .expect("run vpsforge");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "validate failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("ok: 1 playbook, 2 plays, "),
        "unexpected summary: {stdout}"
    );
}

#[test]
fn site_playbook_lists_every_role() {
    let playbook =
        std::fs::read_to_string(repository().join("playbooks/site.yaml")).expect("read site.yaml");
    for role in roles() {
        let name = role.file_name().expect("role name").to_string_lossy();
        assert!(
            playbook.contains(&format!("    - {name}\n")),
            "site.yaml does not apply role `{name}`"
        );
    }
}

#[test]
fn role_readmes_document_defaults() {
    let roles = roles();
    assert!(
        roles.len() >= 7,
        "expected the seven bundled roles, found {roles:?}"
    );
    for role in roles {
        let readme_path = role.join("README.md");
        let readme = std::fs::read_to_string(&readme_path)
            .unwrap_or_else(|error| panic!("failed to read `{}`: {error}", readme_path.display()));
        let names = default_names(&role);
        assert!(!names.is_empty(), "`{}` has no defaults", role.display());
        for name in names {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "`{}` does not document `{name}` in its variables table",
                readme_path.display()
            );
        }
    }
}
