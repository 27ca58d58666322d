//! Running the `s4db` binary from tests.

use std::path::Path;

use assert_cmd::Command;

/// `s4db --dir DIR -q`.
pub fn s4db(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("s4db").unwrap();
    c.arg("--dir").arg(dir).arg("-q");
    c
}

/// The binary with no directory (remote-only commands), quiet.
pub fn s4db_no_dir() -> Command {
    let mut c = Command::cargo_bin("s4db").unwrap();
    c.arg("-q");
    c
}

/// Runs, expecting success, and parses stdout as one JSON value.
pub fn json(c: &mut Command) -> serde_json::Value {
    serde_json::from_str(&stdout(c)).unwrap()
}

/// Runs, expecting success, and returns stdout.
pub fn stdout(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs, expecting `code`, and returns stderr (checked to be one `s4db: error:` line).
pub fn fails(c: &mut Command, code: i32) -> String {
    let out = c.output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(
        err.starts_with("s4db: error: ") && err.lines().count() == 1,
        "{err:?}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    err
}

/// Whether this process runs as root (whose file permissions are not
/// checked): tests of permissions then run the binary as `nobody`.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The uid and gid `as_reader` runs as when this process is root.
pub const NOBODY: u32 = 65534;

/// A copy of the `s4db` binary that any user may run: the build directory
/// may sit below a folder only root can enter (`/root`).
fn shared_binary() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let bin = assert_cmd::cargo::cargo_bin("s4db");
        let meta = std::fs::metadata(&bin).unwrap();
        let stamp = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        // One copy per build of the binary, reused by later runs.
        let dir = std::env::temp_dir().join("s4db-test-bin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let to = dir.join(format!("s4db-{}-{stamp}", meta.len()));
        if !to.exists() {
            let tmp = dir.join(format!(".s4db-{}", std::process::id()));
            std::fs::copy(&bin, &tmp).unwrap();
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&tmp, &to).unwrap();
            prune_old_copies(&dir, &to);
        }
        to
    })
    .clone()
}

/// Removes copies of earlier builds (130 MB each in a debug build) that no
/// test has started for a day, so that runs over weeks do not fill the disk.
fn prune_old_copies(dir: &Path, keep: &Path) {
    let day = std::time::Duration::from_secs(24 * 3600);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let old = e
            .metadata()
            .and_then(|m| m.accessed().or_else(|_| m.modified()))
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if path != keep && old {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `s4db --dir DIR -q` run as a user who is not root (`nobody`, through
/// `setpriv`) when this process is root, so that file permissions apply.
pub fn s4db_unprivileged(dir: &Path) -> Command {
    let mut c = if is_root() {
        let bin = shared_binary();
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(bin);
        c
    } else {
        Command::new(assert_cmd::cargo::cargo_bin("s4db"))
    };
    c.arg("--dir").arg(dir).arg("-q");
    c
}
