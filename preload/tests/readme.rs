//! The README's commands, run the way a new user would: every shell block
//! whose fence says `sh runnable` runs, in order and as one bash script
//! (`set -euo pipefail`), from the repository's root with a scratch
//! `HOME` and a free `PORT`. A block that fails fails this test.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{free_port, repo_root, run_timeout, scratch, tail};

/// The bodies of the README's `sh runnable` blocks, in order.
fn runnable_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None => {
                let info = line.trim_start().strip_prefix("```").map(str::split_whitespace);
                if let Some(mut words) = info {
                    if words.next() == Some("sh") && words.any(|w| w == "runnable") {
                        current = Some(String::new());
                    }
                }
            }
            Some(body) => {
                if line.trim_start().starts_with("```") {
                    blocks.push(std::mem::take(body));
                    current = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    assert!(current.is_none(), "README.md: a runnable block is not closed");
    blocks
}

#[test]
fn runnable_blocks_are_found() {
    let md = "text\n```sh runnable\necho a\n```\n```sh\nnot this\n```\n```sh runnable\necho b\n```\n";
    assert_eq!(runnable_blocks(md), ["echo a\n", "echo b\n"]);
}

#[test]
fn readme_runnable_blocks_succeed() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let blocks = runnable_blocks(&readme);
    assert!(blocks.len() >= 4, "README.md has only {} runnable blocks", blocks.len());
    let home = scratch("readme-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let mut script = String::from("set -euo pipefail\n");
    for (i, b) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '### README block {}' >&2\n", i + 1));
        script.push_str(b);
    }
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(repo_root())
        .env("HOME", &home)
        .env("PORT", free_port().to_string())
        .env_remove("LD_PRELOAD")
        .env_remove("PKG_CONFIG_PATH");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GREENRT_") {
            cmd.env_remove(k);
        }
    }
    let out = run_timeout(&mut cmd, Duration::from_secs(600));
    assert!(
        out.success(),
        "the README's commands failed: {}\nstdout:\n{}stderr:\n{}",
        out.status_text(),
        tail(&out.stdout, 40),
        tail(&out.stderr, 40)
    );
    // What the README says they print.
    assert_eq!(out.stdout.matches("200\n").count(), 2, "{}", out.stdout);
    assert!(
        out.stdout.contains("concurrent: wall time is the slowest fetch's"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("greenrt monitor: greenlet"), "{}", out.stderr);
    assert!(out.stderr.contains("greenrt run info"), "{}", out.stderr);
    assert!(out.stderr.contains("greenrt: hub started on thread"), "{}", out.stderr);
    // make uninstall left the scratch HOME as it found it.
    assert!(!home.join(".local").exists(), "uninstall left files in $HOME/.local");
}
