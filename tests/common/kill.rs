//! Killing a child process with SIGKILL at a chosen moment: the child is
//! the test binary itself, re-run on one test with an environment variable
//! set.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs this test binary's `test` as a child process with `env` set to
/// `dir`, hands `on_ack` the rest of each `ack …` line it prints until
/// `kill_after` of them, waits `then`, and kills it with SIGKILL. Returns
/// the acknowledgements seen.
pub fn run_child_and_kill(
    test: &str,
    env: &str,
    dir: &std::path::Path,
    kill_after: u64,
    then: Duration,
    mut on_ack: impl FnMut(&str),
) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = 0;
    for line in out.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ack ") {
            on_ack(rest);
            seen += 1;
            if seen >= kill_after {
                break;
            }
        }
    }
    std::thread::sleep(then);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    seen
}
