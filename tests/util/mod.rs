//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Re-runs this test binary with only `test_name`, with `GREENRT_CHILD=1`
/// and the extra environment, so a test can observe a whole process (its
/// stderr, its exit status) from outside.
pub fn run_child(test_name: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env("GREENRT_CHILD", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// True inside a child started by `run_child`.
pub fn is_child() -> bool {
    std::env::var_os("GREENRT_CHILD").is_some()
}
