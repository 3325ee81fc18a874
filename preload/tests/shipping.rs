//! What `make install`, `make uninstall` and `make deb` ship, used the way
//! a user would: the installed launcher runs a C program built through
//! pkg-config, uninstall leaves the prefix as it found it, and the Debian
//! package holds exactly the files it should.

mod support;

use std::path::Path;
use std::process::Command;

use support::{dist_dir, repo_root, run_ok, scratch, tree};

/// The files `make install` puts under a prefix.
const INSTALLED: &[&str] = &[
    "bin/",
    "bin/greenrt",
    "include/",
    "include/greenrt.h",
    "lib/",
    "lib/libgreenrt_preload.so",
    "lib/pkgconfig/",
    "lib/pkgconfig/greenrt.pc",
    "share/",
    "share/greenrt/",
    "share/greenrt/install-manifest",
    "share/man/",
    "share/man/man1/",
    "share/man/man1/greenrt.1",
];

fn make(target: &str, prefix: &Path) -> Command {
    let mut c = Command::new("make");
    c.arg("--no-print-directory")
        .arg("-C")
        .arg(repo_root())
        .arg(format!("DIST_DIR={}", dist_dir().display()))
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(target)
        // `install` depends on `dist`: make it a no-op cargo call.
        .env("CARGO", std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c
}

#[test]
fn shipped_library_is_small_and_exports_the_runtime() {
    let so = dist_dir().join("libgreenrt_preload.so");
    let len = std::fs::metadata(&so).unwrap().len();
    assert!(
        len <= 2 * 1024 * 1024,
        "{} is {len} bytes (at most 2 MiB)",
        so.display()
    );
    let syms = run_ok(Command::new("nm").args(["-D", "--defined-only"]).arg(&so));
    for name in [
        "read",
        "connect",
        "greenrt_spawn",
        "greenrt_preload_register_runtime",
        "fcntl",
    ] {
        assert!(
            syms.lines().any(|l| l.split_whitespace().nth(2) == Some(name)),
            "{name} is not exported by {}",
            so.display()
        );
    }
    // No debug info is shipped.
    let sections = run_ok(Command::new("readelf").arg("-S").arg(&so));
    assert!(
        !sections.contains(".debug_info"),
        "the shipped library carries debug info"
    );
}

#[test]
fn install_builds_through_pkg_config_and_uninstall_removes_it_all() {
    let dir = scratch("install");
    let prefix = dir.join("prefix");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    run_ok(&mut make("install", &prefix));
    assert_eq!(tree(&prefix), INSTALLED);

    // A C program built the way the README says, run by the installed
    // launcher (which finds the library in ../lib).
    let pc_path = prefix.join("lib/pkgconfig");
    let flags = run_ok(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "greenrt"])
            .env("PKG_CONFIG_PATH", &pc_path),
    );
    let exe = dir.join("fetch");
    let mut cc = Command::new("cc");
    cc.arg(repo_root().join("examples/c/fetch.c")).arg("-o").arg(&exe);
    cc.args(flags.split_whitespace());
    run_ok(&mut cc);
    let info = run_ok(Command::new(prefix.join("bin/greenrt")).arg("info"));
    let lib = prefix.join("lib/libgreenrt_preload.so").canonicalize().unwrap();
    assert!(
        info.contains(&format!("preload: {}", lib.display())),
        "the installed launcher does not use the installed library:\n{info}"
    );
    let out = run_ok(Command::new(prefix.join("bin/greenrt")).arg("run").arg("--").arg(&exe));
    assert!(out.contains("concurrent: wall time is the slowest fetch's"), "{out}");
    assert_eq!(out.matches("hello from server").count(), 10, "{out}");

    run_ok(&mut make("uninstall", &prefix));
    assert!(!prefix.exists(), "uninstall left {:?}", tree(&prefix));
}

#[test]
fn uninstall_keeps_what_install_did_not_create() {
    let dir = scratch("install-shared");
    let _ = std::fs::remove_dir_all(&dir);
    let prefix = dir.join("usr");
    // Someone else's files already live in the prefix.
    std::fs::create_dir_all(prefix.join("lib/pkgconfig")).unwrap();
    std::fs::write(prefix.join("lib/pkgconfig/other.pc"), "x").unwrap();
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    run_ok(&mut make("install", &prefix));
    run_ok(&mut make("uninstall", &prefix));
    assert_eq!(
        tree(&prefix),
        ["bin/", "lib/", "lib/pkgconfig/", "lib/pkgconfig/other.pc"]
    );
    // Nothing installed: uninstall says so and fails.
    let out = support::run_timeout(&mut make("uninstall", &prefix), std::time::Duration::from_secs(60));
    assert!(!out.success());
    assert!(out.stderr.contains("nothing installed there"), "{}", out.stderr);
}

#[test]
fn debian_package_holds_exactly_the_shipped_files() {
    let dir = scratch("deb");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let deb = run_ok(
        Command::new("bash")
            .arg(repo_root().join("scripts/deb.sh"))
            .arg(dist_dir())
            .arg(&dir),
    );
    let deb = Path::new(deb.trim());
    let listing = run_ok(Command::new("dpkg-deb").arg("-c").arg(deb));
    let mut files: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches("./"))
        .filter(|p| !p.is_empty())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "usr/",
            "usr/bin/",
            "usr/bin/greenrt",
            "usr/include/",
            "usr/include/greenrt.h",
            "usr/lib/",
            "usr/lib/libgreenrt_preload.so",
            "usr/lib/pkgconfig/",
            "usr/lib/pkgconfig/greenrt.pc",
            "usr/share/",
            "usr/share/doc/",
            "usr/share/doc/greenrt/",
            "usr/share/doc/greenrt/copyright",
            "usr/share/man/",
            "usr/share/man/man1/",
            "usr/share/man/man1/greenrt.1.gz",
        ]
    );
    let control = run_ok(Command::new("dpkg-deb").args(["-f"]).arg(deb));
    for field in ["Package: greenrt", "Version: 0.1.0", "Depends: libc6"] {
        assert!(control.contains(field), "control lacks {field:?}:\n{control}");
    }
    // Unpacked into a scratch root, the launcher finds its library and
    // the man page renders.
    let root = dir.join("root");
    run_ok(Command::new("dpkg").arg("-x").arg(deb).arg(&root));
    let info = run_ok(Command::new(root.join("usr/bin/greenrt")).arg("info"));
    let lib = root.join("usr/lib/libgreenrt_preload.so").canonicalize().unwrap();
    assert!(info.contains(&format!("preload: {}", lib.display())), "{info}");
    let page = run_ok(
        Command::new("man")
            .arg("-l")
            .arg(root.join("usr/share/man/man1/greenrt.1.gz"))
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0"),
    );
    // Not a terminal: man marks bold as "X\bX"; keep the letters.
    let mut text = String::new();
    for c in page.chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    let page = text;
    for part in [
        "NAME",
        "SYNOPSIS",
        "greenrt run [OPTIONS]",
        "GREENRT_HOOKS",
        "EXIT STATUS",
    ] {
        assert!(page.contains(part), "man page lacks {part:?}:\n{page}");
    }
}
