//! The cdylib-tests harness (see cdylib-tests/README.md).
//!
//! Builds every `cdylib-tests/*.c` (except `bench_*.c`) and every
//! `examples/c/*.c` with the system C compiler twice — `-O0 -g`, and
//! `-O2 -D_FORTIFY_SOURCE=2` so that the fortified `__*_chk` entry points
//! are exercised — and runs them:
//!
//! - a plain program three ways: without the preload, under it with
//!   `GREENRT_HOOKS=auto`, and with `GREENRT_HOOKS=always`. The plain run
//!   must exit 0; the other two must print the same stdout and exit with
//!   the same status.
//! - a C API program (`capi_*.c`, `examples/c/*.c`, linked against
//!   `libgreenrt_preload.so`) under the preload (`auto` and `always`): it
//!   checks its own results (cooperation proofs) and must exit 0.
//!
//! Every run has a timeout (30 s; `GREENRT_CDYLIB_TIMEOUT` seconds), so a
//! hang fails instead of blocking CI. Programs named in
//! `cdylib-tests/PENDING` still run, but their failures are reported as
//! pending with the reason given there, not as test failures.
//!
//! `GREENRT_CDYLIB_TESTS=substring` runs only the matching programs;
//! `GREENRT_CDYLIB_JOBS=n` sets how many programs run at once.

mod support;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use support::{diff, preload_so, repo_root, run_timeout, scratch, tail, Mode};

/// One C program.
struct Program {
    /// File stem, e.g. `io_pipe`.
    name: String,
    /// Where the source is, relative to the repository (for reports).
    shown: String,
    src: PathBuf,
    /// Uses the C API: linked against the library, run under it only.
    capi: bool,
}

/// How a program is compiled.
#[derive(Clone, Copy)]
struct Flavor {
    name: &'static str,
    flags: &'static [&'static str],
}

const FLAVORS: [Flavor; 2] = [
    Flavor {
        name: "O0",
        flags: &["-O0", "-g"],
    },
    Flavor {
        name: "fortify",
        flags: &["-O2", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=2"],
    },
];

fn discover(root: &Path) -> Vec<Program> {
    let mut out = Vec::new();
    for (dir, all_capi) in [("cdylib-tests", false), ("examples/c", true)] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("c") {
                continue;
            }
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if name.starts_with("bench_") {
                continue;
            }
            out.push(Program {
                capi: all_capi || name.starts_with("capi_"),
                shown: format!("{dir}/{name}.c"),
                name,
                src: path,
            });
        }
    }
    out.sort_by(|a, b| a.shown.cmp(&b.shown));
    out
}

/// `cdylib-tests/PENDING`: `name: reason` lines, `#` comments.
fn pending(root: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(root.join("cdylib-tests/PENDING")) else {
        return HashMap::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(':') {
            Some((n, r)) => (n.trim().trim_end_matches(".c").to_string(), r.trim().to_string()),
            None => (l.trim_end_matches(".c").to_string(), "no reason given".to_string()),
        })
        .collect()
}

fn compile(p: &Program, flavor: Flavor, so: &Path, root: &Path) -> Result<PathBuf, String> {
    // Per test process, so that concurrent runs never overwrite each
    // other's binaries; removed when everything passed.
    let dir = scratch(&format!("cdylib-tests/{}/{}", std::process::id(), flavor.name));
    let bin = dir.join(&p.name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut cmd = Command::new(&cc);
    cmd.args(["-std=gnu11", "-Wall", "-pthread"])
        .args(flavor.flags)
        .arg("-o")
        .arg(&bin)
        .arg(&p.src);
    if p.capi {
        let libdir = so.parent().unwrap();
        cmd.arg("-I")
            .arg(root.join("include"))
            .arg("-L")
            .arg(libdir)
            .arg("-lgreenrt_preload")
            .arg(format!("-Wl,-rpath,{}", libdir.display()));
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run the C compiler {cc:?}: {e} (install gcc, or set CC)"))?;
    if !out.status.success() {
        return Err(format!(
            "compile ({}) failed: {:?}\n{}",
            flavor.name,
            cmd,
            tail(&String::from_utf8_lossy(&out.stderr), 40)
        ));
    }
    Ok(bin)
}

/// Runs one program in every way it is meant to run; `Err` describes the
/// first failure of each flavor.
/// A pending program stops at its first failing flavor (`stop_early`).
fn check(p: &Program, so: &Path, root: &Path, timeout: Duration, stop_early: bool) -> Result<String, String> {
    let mut problems = String::new();
    let mut notes = Vec::new();
    for flavor in FLAVORS {
        if stop_early && !problems.is_empty() {
            break;
        }
        let bin = match compile(p, flavor, so, root) {
            Ok(b) => b,
            Err(e) => {
                let _ = writeln!(problems, "  [{}] {e}", flavor.name);
                continue;
            }
        };
        let run = |mode: Mode| {
            let mut cmd = Command::new(&bin);
            cmd.current_dir(root.join("cdylib-tests"));
            mode.apply(&mut cmd, so);
            run_timeout(&mut cmd, timeout)
        };
        if p.capi {
            for mode in [Mode::Auto, Mode::Always] {
                let o = run(mode);
                if !o.success() || o.stderr.contains("cannot be preloaded") {
                    let _ = writeln!(
                        problems,
                        "  [{} {}] {} (expected exit 0)\n  stdout:\n{}  stderr:\n{}",
                        flavor.name,
                        mode.name(),
                        o.status_text(),
                        tail(&o.stdout, 30),
                        tail(&o.stderr, 30)
                    );
                    break;
                }
                notes.push(format!(
                    "{}/{} {:.2}s",
                    flavor.name,
                    mode.name(),
                    o.elapsed.as_secs_f64()
                ));
            }
            continue;
        }
        let plain = run(Mode::Plain);
        if !plain.success() {
            let _ = writeln!(
                problems,
                "  [{} plain] {} without the preload (a test program must exit 0)\n  stdout:\n{}  stderr:\n{}",
                flavor.name,
                plain.status_text(),
                tail(&plain.stdout, 30),
                tail(&plain.stderr, 30)
            );
            continue;
        }
        for mode in [Mode::Auto, Mode::Always] {
            let o = run(mode);
            let mut why = String::new();
            if o.stderr.contains("cannot be preloaded") {
                let _ = writeln!(why, "  the preload was not loaded");
            }
            if o.status_text() != plain.status_text() {
                let _ = writeln!(
                    why,
                    "  status: plain {}, {} {}",
                    plain.status_text(),
                    mode.name(),
                    o.status_text()
                );
            }
            if o.stdout != plain.stdout {
                let _ = writeln!(
                    why,
                    "  stdout differs (- plain, + {}):\n{}",
                    mode.name(),
                    diff(&plain.stdout, &o.stdout, 5)
                );
            }
            if !why.is_empty() {
                let _ = writeln!(
                    problems,
                    "  [{} {}] differs from the plain run:\n{why}  stderr ({}):\n{}",
                    flavor.name,
                    mode.name(),
                    mode.name(),
                    tail(&o.stderr, 20)
                );
                break;
            }
        }
        notes.push(format!("{} ok", flavor.name));
    }
    if problems.is_empty() {
        Ok(notes.join(", "))
    } else {
        Err(problems)
    }
}

#[test]
fn cdylib_programs() {
    let root = repo_root();
    let so = preload_so();
    let filter = std::env::var("GREENRT_CDYLIB_TESTS").unwrap_or_default();
    let timeout = Duration::from_secs(
        std::env::var("GREENRT_CDYLIB_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30),
    );
    let programs: Vec<Program> = discover(&root)
        .into_iter()
        .filter(|p| p.shown.contains(&filter))
        .collect();
    assert!(
        !programs.is_empty(),
        "no C programs found in {}/cdylib-tests (filter {filter:?})",
        root.display()
    );
    let pending = pending(&root);
    let jobs = std::env::var("GREENRT_CDYLIB_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, programs.len());
    eprintln!(
        "cdylib-tests: {} programs, {jobs} at a time, preload {}",
        programs.len(),
        so.display()
    );

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<String, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = programs.get(i) else { break };
                let r = check(p, &so, &root, timeout, pending.contains_key(&p.name));
                match &r {
                    Ok(n) => eprintln!("cdylib-tests: {} ... ok ({n})", p.shown),
                    Err(_) if pending.contains_key(&p.name) => {
                        eprintln!("cdylib-tests: {} ... PENDING ({})", p.shown, pending[&p.name])
                    }
                    Err(_) => eprintln!("cdylib-tests: {} ... FAILED", p.shown),
                }
                results.lock().unwrap().push((i, r));
            });
        }
    });

    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let mut failed = Vec::new();
    let mut report = String::new();
    let (mut ok, mut still_pending) = (0, 0);
    for (i, r) in results {
        let p = &programs[i];
        match (r, pending.get(&p.name)) {
            (Ok(_), Some(_)) => {
                ok += 1;
                eprintln!(
                    "cdylib-tests: note: {} passes now; remove it from cdylib-tests/PENDING",
                    p.shown
                );
            }
            (Ok(_), None) => ok += 1,
            (Err(e), Some(reason)) => {
                still_pending += 1;
                eprintln!("cdylib-tests: {} is pending ({reason}); its failure:\n{e}", p.shown);
            }
            (Err(e), None) => {
                failed.push(p.shown.clone());
                let _ = writeln!(report, "=== {} FAILED\n{e}", p.shown);
            }
        }
    }
    eprintln!(
        "cdylib-tests: {ok} ok, {} failed, {still_pending} pending (cdylib-tests/PENDING)",
        failed.len()
    );
    if failed.is_empty() {
        let _ = std::fs::remove_dir_all(scratch(&format!("cdylib-tests/{}", std::process::id())));
    }
    assert!(
        failed.is_empty(),
        "{} C program(s) failed: {}\n\n{report}",
        failed.len(),
        failed.join(", ")
    );
}
