//! Style is enforced by tests that can fail: `cargo fmt --check` and `cargo clippy -D warnings`
//! over the whole workspace. Clippy uses its own target folder so it never waits on the lock of
//! the `cargo test` that runs it.

use std::path::Path;
use std::process::Command;

fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

#[test]
fn rustfmt_is_clean() {
    let out = cargo()
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(workspace_root())
        .output()
        .expect("running cargo fmt");
    assert!(
        out.status.success(),
        "cargo fmt --check found unformatted code (run `cargo fmt --all`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn clippy_has_no_warnings() {
    let target = workspace_root().join("target/lint");
    let out = cargo()
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(workspace_root())
        .output()
        .expect("running cargo clippy");
    assert!(
        out.status.success(),
        "cargo clippy -D warnings failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
