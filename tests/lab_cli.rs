//! `vpsforge lab` errors and output that need neither root nor containers.

use std::process::Command;

fn lab(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vpsforge"))
        .arg("lab")
        .args(args)
        .env("VPSFORGE_LAB_DIR", dir)
        .output()
        .expect("failed to run vpsforge")
}

#[test]
fn invalid_lab_name_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let output = lab(dir.path(), &["--name", "Bad/Name", "status"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: invalid lab name `Bad/Name`: use up to 32 lowercase letters, digits and dashes\n"
    );
}

#[test]
fn status_of_stopped_lab() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let output = lab(dir.path(), &["--name", "nothing-here", "status"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "lab `nothing-here` is not running\n"
    );
}

#[test]
fn ssh_to_stopped_lab_explains_start() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let output = lab(dir.path(), &["--name", "nothing-here", "ssh", "h1"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: lab `nothing-here` is not running: start it with `vpsforge lab --name nothing-here up 1`\n"
    );
}
