//! The `greenrt` launcher: exit status, LD_PRELOAD, options and their
//! errors, `info`, `--help`, the installed layout.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{launcher, preload_so, scratch};

/// The launcher with the built preload named explicitly and no GREENRT_*
/// or LD_PRELOAD inherited from the test's environment.
fn greenrt() -> Command {
    let mut c = Command::new(launcher());
    c.env("GREENRT_PRELOAD_PATH", preload_so()).env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("GREENRT_") && k != "GREENRT_PRELOAD_PATH" {
            c.env_remove(k);
        }
    }
    c
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The configuration variables `info` reports and `--help` documents.
const CONFIG_VARS: [&str; 9] = [
    "GREENRT_BACKEND",
    "GREENRT_RESOLVER",
    "GREENRT_STACK_SIZE",
    "GREENRT_THREADPOOL_SIZE",
    "GREENRT_LOG",
    "GREENRT_HOOKS",
    "GREENRT_MONITOR",
    "GREENRT_MAX_BLOCKING",
    "GREENRT_RUN_INFO_SIGNAL",
];

#[test]
fn exit_status_is_the_programs() {
    let o = greenrt().args(["run", "--", "sh", "-c", "exit 7"]).output().unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let o = greenrt().args(["run", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A signal that kills the program is seen as such (greenrt execs it).
    let o = greenrt().args(["run", "sh", "-c", "kill -TERM $$"]).output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(libc::SIGTERM), "{o:?}");
}

#[test]
fn the_program_runs_with_the_preload_loaded() {
    let o = greenrt().args(["run", "cat", "/proc/self/maps"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("libgreenrt_preload.so"),
        "not mapped:\n{}",
        stdout(&o)
    );
    let o = greenrt()
        .args(["run", "sh", "-c", "echo hello; echo oops >&2"])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "hello\n");
    assert_eq!(stderr(&o), "oops\n", "nothing printed by greenrt");
}

#[test]
fn ld_preload_is_absolute_and_existing_entries_are_kept() {
    let so = preload_so();
    let dir = so.parent().unwrap();
    // A relative GREENRT_PRELOAD_PATH, resolved from the launcher's cwd.
    let o = greenrt()
        .current_dir(dir)
        .env("GREENRT_PRELOAD_PATH", "./libgreenrt_preload.so")
        .env("LD_PRELOAD", "libm.so.6")
        .args(["run", "sh", "-c", "printf %s \"$LD_PRELOAD\""])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}:libm.so.6", so.display()));
    assert!(Path::new(stdout(&o).split(':').next().unwrap()).is_absolute());
    // Ours is not added twice.
    let o = greenrt()
        .env("LD_PRELOAD", format!("{}:libm.so.6", so.display()))
        .args(["run", "sh", "-c", "printf %s \"$LD_PRELOAD\""])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), format!("{}:libm.so.6", so.display()));
}

#[test]
fn options_become_environment_variables() {
    let o = greenrt()
        .args([
            "run",
            "--backend",
            "poll",
            "--hooks=always",
            "--resolver",
            "native",
            "--monitor",
            "--log",
            "off",
            "--",
            "sh",
            "-c",
            "echo $GREENRT_BACKEND $GREENRT_HOOKS $GREENRT_RESOLVER $GREENRT_MONITOR $GREENRT_LOG",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "poll always native 1 off\n");
    // Options override the environment; arguments after PROGRAM are its own.
    let o = greenrt()
        .env("GREENRT_BACKEND", "epoll")
        .args([
            "run",
            "--backend=poll",
            "sh",
            "-c",
            "echo $GREENRT_BACKEND \"$0\"",
            "--backend",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "poll --backend\n", "{}", stderr(&o));
}

/// Arguments, environment, and what stderr must say.
type BadCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn bad_options_and_values_exit_2_with_a_message() {
    let cases: &[BadCase] = &[
        (
            &["run", "--backend", "kqueue", "true"],
            &[],
            "invalid value \"kqueue\" for --backend; accepted values: epoll, poll",
        ),
        (
            &["run", "--resolver=dns", "true"],
            &[],
            "for --resolver; accepted values: thread, native, block",
        ),
        (
            &["run", "--hooks", "sometimes", "true"],
            &[],
            "for --hooks; accepted values: auto, always, off",
        ),
        (&["run", "--frobnicate", "true"], &[], "unknown option \"--frobnicate\""),
        (&["run", "--backend"], &[], "--backend needs a value"),
        (&["run"], &[], "run needs a PROGRAM"),
        (&["fly"], &[], "unknown command \"fly\""),
        (&[], &[], "missing command"),
        (
            &["run", "true"],
            &[("GREENRT_BACKEND", "kqueue")],
            "invalid GREENRT_BACKEND=\"kqueue\"; accepted values: epoll, poll",
        ),
        (
            &["run", "true"],
            &[("GREENRT_HOOKS", "yes")],
            "invalid GREENRT_HOOKS=\"yes\"; accepted values: auto, always, off",
        ),
        (
            &["run", "true"],
            &[("GREENRT_RESOLV_CONF", "/nonexistent/resolv.conf")],
            "invalid GREENRT_RESOLV_CONF",
        ),
        (
            &["info"],
            &[("GREENRT_BACKEND", "kqueue")],
            "invalid GREENRT_BACKEND=\"kqueue\"",
        ),
        (
            &["run", "true"],
            &[("GREENRT_PRELOAD_PATH", "/nonexistent/lib.so")],
            "GREENRT_PRELOAD_PATH=\"/nonexistent/lib.so\"",
        ),
    ];
    let check = |args: &[&str], env: &[(&str, &str)], want: &str| {
        let mut c = greenrt();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?} {env:?}: {o:?}");
        assert!(
            stderr(&o).contains(want),
            "{args:?} {env:?}: stderr {:?} lacks {want:?}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{args:?}: nothing on stdout");
    };
    for (args, env, want) in cases {
        check(args, env, want);
    }
    // One bad variable under `run true`: stderr names it with its value.
    for (k, v) in [
        ("GREENRT_STACK_SIZE", "3"),
        ("GREENRT_THREADPOOL_SIZE", "0"),
        ("GREENRT_LOG", "loud"),
        ("GREENRT_MONITOR", "on"),
        ("GREENRT_MAX_BLOCKING", "1s"),
        ("GREENRT_RUN_INFO_SIGNAL", "SIGFOO"),
        ("GREENRT_RESOLVER", "ares"),
    ] {
        check(&["run", "true"], &[(k, v)], &format!("invalid {k}=\"{v}\""));
    }
}

#[test]
fn a_program_that_cannot_run_is_126_or_127() {
    let o = greenrt().args(["run", "/nonexistent/program"]).output().unwrap();
    assert_eq!(o.status.code(), Some(127));
    assert!(
        stderr(&o).contains("cannot execute \"/nonexistent/program\""),
        "{}",
        stderr(&o)
    );
    let not_executable = scratch("launcher-noexec").join("data.txt");
    std::fs::write(&not_executable, "not a program\n").unwrap();
    let o = greenrt().arg("run").arg(&not_executable).output().unwrap();
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
}

#[test]
fn info_reports_version_preload_backends_configuration() {
    let o = greenrt().env("GREENRT_BACKEND", "poll").arg("info").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("greenrt {}\n", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains(&format!("preload: {}\n", preload_so().display())), "{out}");
    assert!(out.contains("backends: epoll, poll\n"), "{out}");
    for var in CONFIG_VARS {
        assert!(out.contains(var), "{var} missing:\n{out}");
    }
    let backend = out.lines().find(|l| l.contains("GREENRT_BACKEND")).unwrap();
    assert!(
        backend.contains("poll") && backend.contains("from the environment"),
        "{backend}"
    );
    let hooks = out.lines().find(|l| l.contains("GREENRT_HOOKS")).unwrap();
    assert!(hooks.contains("auto") && hooks.contains("(default)"), "{hooks}");
}

#[test]
fn help_documents_every_option_and_variable() {
    for args in [&["--help"][..], &["run", "--help"], &["info", "-h"]] {
        let o = greenrt().args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}");
        let out = stdout(&o);
        let commands_and_options = [
            "greenrt run",
            "greenrt info",
            "--backend",
            "--resolver",
            "--hooks",
            "--monitor",
            "--log",
        ];
        let words = commands_and_options
            .into_iter()
            .chain(CONFIG_VARS)
            .chain(["GREENRT_PRELOAD_PATH", "LD_PRELOAD"]);
        for word in words {
            assert!(out.contains(word), "{args:?}: help lacks {word}");
        }
    }
    let o = greenrt().arg("--version").output().unwrap();
    assert_eq!(stdout(&o), format!("greenrt {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn installed_layout_finds_the_library_in_lib() {
    let prefix = scratch("launcher-prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::create_dir_all(prefix.join("lib")).unwrap();
    std::fs::copy(launcher(), prefix.join("bin/greenrt")).unwrap();
    std::fs::copy(preload_so(), prefix.join("lib/libgreenrt_preload.so")).unwrap();
    let installed = prefix.join("lib/libgreenrt_preload.so").canonicalize().unwrap();
    let o = Command::new(prefix.join("bin/greenrt"))
        .env_remove("GREENRT_PRELOAD_PATH")
        .env_remove("LD_PRELOAD")
        .args(["run", "sh", "-c", "printf %s \"$LD_PRELOAD\""])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), installed.display().to_string());

    // Without the library beside it or in ../lib: a clear error, status 2.
    let lonely = scratch("launcher-lonely/bin");
    std::fs::copy(launcher(), lonely.join("greenrt")).unwrap();
    let o = Command::new(lonely.join("greenrt"))
        .env_remove("GREENRT_PRELOAD_PATH")
        .args(["run", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot find libgreenrt_preload.so"),
        "{}",
        stderr(&o)
    );
    let o = Command::new(lonely.join("greenrt"))
        .env_remove("GREENRT_PRELOAD_PATH")
        .arg("info")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(stdout(&o).contains("preload: not found"), "{}", stdout(&o));
}

#[test]
fn info_and_help_into_a_closed_pipe_exit_quietly() {
    // `greenrt info | head -1`: the reader leaves early; the launcher
    // neither panics nor complains.
    for args in [&["info"][..], &["--help"], &["run", "--help"], &["--version"]] {
        let mut child = greenrt()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // closed before anything is read
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {:?}\n{}", out.status, stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}
