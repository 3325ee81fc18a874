//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::cell::Cell;
use std::process::{Command, Output};
use std::rc::Rc;
use std::time::Duration;

/// One millisecond, the unit the tests' sleeps and timeouts count in.
pub const MS: Duration = Duration::from_millis(1);

/// Sets its flag when dropped: proves a greenlet's stack was unwound (or
/// an item was dropped).
pub struct SetOnDrop(pub Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

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
