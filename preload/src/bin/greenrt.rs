//! `greenrt`: runs an unmodified program with blocking libc calls made
//! cooperative, like `python -m gevent.monkey script.py`.
//!
//! `greenrt run [OPTIONS] [--] PROGRAM [ARGS...]` execs PROGRAM (so its exit
//! status and signals are the program's own) with `libgreenrt_preload.so`
//! first in `LD_PRELOAD` and the chosen configuration in `GREENRT_*`
//! variables. `greenrt info` shows what would be used. A bad option or value
//! (on the command line or in a `GREENRT_*` variable) is an error, exit
//! status 2.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use greenrt::config::{self, Config, ConfigError};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const PRELOAD_NAME: &str = "libgreenrt_preload.so";

const HELP: &str = "\
greenrt — run a program with blocking libc calls made cooperative (greenlets)

USAGE:
    greenrt run [OPTIONS] [--] PROGRAM [ARGS...]
    greenrt info
    greenrt --help | --version

COMMANDS:
    run     Execute PROGRAM with libgreenrt_preload.so first in LD_PRELOAD
            (an absolute path; an LD_PRELOAD already set is kept after it) and
            the options below as GREENRT_* variables. greenrt replaces itself
            with PROGRAM: the exit status and signals are the program's own.
            If PROGRAM cannot be executed: 127 (not found) or 126.
    info    Print the version, the preload library's path, the poller backends
            available and the configuration in force (each GREENRT_* variable
            with its value and default).

OPTIONS (run):
    --backend <epoll|poll>            poller backend (sets GREENRT_BACKEND)
    --resolver <thread|native|block>  getaddrinfo resolver (GREENRT_RESOLVER)
    --hooks <auto|always|off>         hook routing (GREENRT_HOOKS)
    --monitor                         report hubs blocked longer than
                                      GREENRT_MAX_BLOCKING (GREENRT_MONITOR=1)
    --log <off|error|debug>           runtime messages on stderr (GREENRT_LOG)
    -h, --help                        this text
    Options may also be written --name=value. Options given here override
    the same variables in the environment.

ENVIRONMENT (read by the preloaded runtime; checked by greenrt first):
    GREENRT_BACKEND          epoll (edge-triggered) | poll           [epoll]
    GREENRT_RESOLVER         thread (getaddrinfo on the thread pool) |
                             native (asynchronous DNS on the hub) |
                             block (getaddrinfo in the calling thread) [thread]
    GREENRT_STACK_SIZE       greenlet stack size in bytes, k/m/g suffix,
                             16k to 1g                                [256k]
    GREENRT_THREADPOOL_SIZE  threads in each hub's pool, 1 to 1024     [10]
    GREENRT_LOG              off | error | debug                       [error]
    GREENRT_HOOKS            auto (cooperate only where another greenlet
                             could run) | always (route every hooked call
                             through the cooperative path) | off       [auto]
    GREENRT_MONITOR          0 | 1: the blocking monitor               [0]
    GREENRT_MAX_BLOCKING     the monitor's threshold in milliseconds,
                             1 to 3600000                              [100]
    GREENRT_RUN_INFO_SIGNAL  a signal (SIGUSR2, USR2, 12) that prints every
                             hub's greenlets on stderr, or off         [off]
    GREENRT_RESOLV_CONF      resolv.conf read by the native resolver
                                                         [/etc/resolv.conf]
    GREENRT_PRELOAD_PATH     the preload library to use (default: next to
                             this program, or ../lib/ relative to it)

EXIT STATUS:
    run: the program's; 2 for a bad option or GREENRT_* value or a missing
    preload library; 126/127 when PROGRAM cannot be executed.
";

/// Every variable `info` reports: name and default.
const VARIABLES: &[(&str, &str)] = &[
    ("GREENRT_BACKEND", "epoll"),
    ("GREENRT_RESOLVER", "thread"),
    ("GREENRT_STACK_SIZE", "256k"),
    ("GREENRT_THREADPOOL_SIZE", "10"),
    ("GREENRT_LOG", "error"),
    ("GREENRT_HOOKS", "auto"),
    ("GREENRT_MONITOR", "0"),
    ("GREENRT_MAX_BLOCKING", "100"),
    ("GREENRT_RUN_INFO_SIGNAL", "off"),
    ("GREENRT_RESOLV_CONF", "/etc/resolv.conf"),
];

/// A usage or configuration error: printed, then exit status 2.
struct Usage(String);

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => code,
        Err(Usage(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(args: &[OsString]) -> Result<ExitCode, Usage> {
    let Some(cmd) = args.first() else {
        return Err(Usage(
            "greenrt: missing command\n\nUSAGE:\n    greenrt run [OPTIONS] [--] PROGRAM [ARGS...]\n    \
             greenrt info\n\nTry 'greenrt --help' for more information."
                .to_string(),
        ));
    };
    match cmd.to_str() {
        Some("-h" | "--help" | "help") => Ok(print_stdout(HELP)),
        Some("-V" | "--version") => Ok(print_stdout(&format!("greenrt {VERSION}\n"))),
        Some("run") => run(&args[1..]),
        Some("info") => {
            if let Some(a) = args.get(1) {
                if a == "-h" || a == "--help" {
                    return Ok(print_stdout(HELP));
                }
                return Err(Usage(format!(
                    "greenrt: info takes no arguments (got {:?})\nTry 'greenrt --help' for more information.",
                    a
                )));
            }
            info()
        }
        _ => Err(Usage(format!(
            "greenrt: unknown command {:?}; expected run or info\nTry 'greenrt --help' for more information.",
            cmd
        ))),
    }
}

/// The `run` options, as the variables they set.
#[derive(Default)]
struct RunOptions {
    set: Vec<(&'static str, String)>,
}

/// Options that take a value: flag name, variable, checker.
type Checker = fn(&str) -> Result<(), ConfigError>;

const VALUE_OPTIONS: &[(&str, &str, Checker)] = &[
    ("--backend", "GREENRT_BACKEND", |v| config::parse_backend(v).map(drop)),
    ("--resolver", "GREENRT_RESOLVER", |v| {
        config::parse_resolver(v).map(drop)
    }),
    ("--hooks", "GREENRT_HOOKS", |v| parse_hooks(v).map(drop)),
    ("--log", "GREENRT_LOG", |v| config::parse_log(v).map(drop)),
];

fn parse_run_args(args: &[OsString]) -> Result<(RunOptions, Vec<OsString>), Usage> {
    let mut opts = RunOptions::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let s = a.to_string_lossy();
        if s == "--" {
            i += 1;
            break;
        }
        if !s.starts_with('-') || s == "-" {
            break;
        }
        if s == "-h" || s == "--help" {
            std::process::exit(if print_stdout(HELP) == ExitCode::SUCCESS { 0 } else { 1 });
        }
        if s == "--monitor" {
            opts.set.push(("GREENRT_MONITOR", "1".into()));
            i += 1;
            continue;
        }
        let (name, inline) = match s.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (s.to_string(), None),
        };
        let Some(&(flag, var, check)) = VALUE_OPTIONS.iter().find(|(f, _, _)| *f == name) else {
            return Err(Usage(format!(
                "greenrt: unknown option {s:?} for run\nTry 'greenrt --help' for more information."
            )));
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                match args.get(i) {
                    Some(v) => v.to_string_lossy().into_owned(),
                    None => return Err(Usage(format!("greenrt: option {flag} needs a value"))),
                }
            }
        };
        if let Err(e) = check(&value) {
            return Err(Usage(format!(
                "greenrt: invalid value {value:?} for {flag}; accepted values: {}",
                e.accepted
            )));
        }
        opts.set.push((var, value));
        i += 1;
    }
    let program = args[i..].to_vec();
    if program.is_empty() {
        return Err(Usage(
            "greenrt: run needs a PROGRAM to execute\n\nUSAGE:\n    greenrt run [OPTIONS] [--] PROGRAM [ARGS...]"
                .to_string(),
        ));
    }
    Ok((opts, program))
}

fn parse_hooks(v: &str) -> Result<(), ConfigError> {
    match v {
        "auto" | "always" | "off" => Ok(()),
        _ => Err(ConfigError {
            variable: "GREENRT_HOOKS",
            value: v.to_string(),
            accepted: "auto, always, off",
        }),
    }
}

/// The value a variable will have: the option's, else the environment's.
fn lookup(opts: &RunOptions, var: &str) -> Option<String> {
    if let Some((_, v)) = opts.set.iter().rev().find(|(n, _)| *n == var) {
        return Some(v.clone());
    }
    std::env::var_os(var).map(|v| v.to_string_lossy().into_owned())
}

/// Checks every variable the preloaded runtime will read, so a bad value
/// stops here with a clear message rather than inside the program.
fn validate(opts: &RunOptions) -> Result<Config, Usage> {
    let cfg = Config::from_lookup(|k| lookup(opts, k)).map_err(|e| Usage(e.to_string()))?;
    if let Some(v) = lookup(opts, "GREENRT_HOOKS") {
        parse_hooks(&v).map_err(|e| Usage(e.to_string()))?;
    }
    if let Some(v) = lookup(opts, "GREENRT_RESOLV_CONF") {
        if let Err(e) = std::fs::File::open(&v) {
            return Err(Usage(format!(
                "greenrt: invalid GREENRT_RESOLV_CONF={v:?}: {e}; accepted values: the path of a readable resolv.conf file"
            )));
        }
    }
    Ok(cfg)
}

/// Where the preload library is: `GREENRT_PRELOAD_PATH`, next to this
/// program (a cargo target directory), or `../lib/` relative to it (an
/// installed layout). Always an absolute path.
fn find_preload() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("GREENRT_PRELOAD_PATH") {
        let path = PathBuf::from(&p);
        return match path.canonicalize() {
            Ok(abs) if abs.is_file() => Ok(abs),
            Ok(_) => Err(format!("greenrt: GREENRT_PRELOAD_PATH={p:?} is not a file")),
            Err(e) => Err(format!("greenrt: GREENRT_PRELOAD_PATH={p:?}: {e}")),
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("greenrt: cannot locate this program: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [dir.join(PRELOAD_NAME), dir.join("../lib").join(PRELOAD_NAME)];
    for c in &candidates {
        if c.is_file() {
            if let Ok(abs) = c.canonicalize() {
                return Ok(abs);
            }
        }
    }
    Err(format!(
        "greenrt: cannot find {PRELOAD_NAME} (looked at {} and {}); build it with \
         `cargo build -p greenrt-preload`, install with `make install`, or set GREENRT_PRELOAD_PATH",
        candidates[0].display(),
        candidates[1].display()
    ))
}

/// `ours` first, then the entries already in `existing` (minus `ours`), as
/// ld.so reads them (separated by ':' or spaces).
fn compose_ld_preload(ours: &Path, existing: Option<&OsStr>) -> OsString {
    let mut out = OsString::from(ours.as_os_str());
    if let Some(existing) = existing {
        for entry in existing.as_bytes().split(|b| *b == b':' || *b == b' ') {
            if entry.is_empty() || entry == ours.as_os_str().as_bytes() {
                continue;
            }
            out.push(":");
            out.push(OsStr::from_bytes(entry));
        }
    }
    out
}

fn run(args: &[OsString]) -> Result<ExitCode, Usage> {
    let (opts, program) = parse_run_args(args)?;
    validate(&opts)?;
    let preload = find_preload().map_err(Usage)?;
    let ld = compose_ld_preload(&preload, std::env::var_os("LD_PRELOAD").as_deref());
    let mut cmd = Command::new(&program[0]);
    cmd.args(&program[1..]).env("LD_PRELOAD", ld);
    for (var, value) in &opts.set {
        cmd.env(var, value);
    }
    let err = cmd.exec();
    eprintln!("greenrt: cannot execute {:?}: {err}", program[0]);
    Ok(ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }))
}

fn info() -> Result<ExitCode, Usage> {
    let opts = RunOptions::default();
    validate(&opts)?;
    let mut out = String::new();
    // Every line goes to `out`; it is written at once below.
    macro_rules! outln {
        ($out:ident, $($arg:tt)*) => {{
            use std::fmt::Write as _;
            let _ = writeln!($out, $($arg)*);
        }};
    }
    outln!(out, "greenrt {VERSION}");
    match find_preload() {
        Ok(p) => outln!(out, "preload: {}", p.display()),
        Err(e) => outln!(out, "preload: not found ({})", e.trim_start_matches("greenrt: ")),
    }
    outln!(out, "backends: epoll, poll");
    match std::env::var_os("LD_PRELOAD") {
        Some(v) => outln!(out, "LD_PRELOAD: {}", v.to_string_lossy()),
        None => outln!(out, "LD_PRELOAD: (unset)"),
    }
    outln!(out, "configuration:");
    let width = VARIABLES.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let values: Vec<Option<String>> = VARIABLES
        .iter()
        .map(|(n, _)| std::env::var_os(n).map(|v| v.to_string_lossy().into_owned()))
        .collect();
    let vwidth = VARIABLES
        .iter()
        .zip(&values)
        .map(|((_, d), v)| v.as_deref().unwrap_or(d).len())
        .max()
        .unwrap_or(0);
    for ((name, default), value) in VARIABLES.iter().zip(&values) {
        match value {
            Some(v) => outln!(
                out,
                "  {name:<width$}  {v:<vwidth$}  (from the environment; default {default})"
            ),
            None => outln!(out, "  {name:<width$}  {default:<vwidth$}  (default)"),
        }
    }
    Ok(print_stdout(&out))
}

/// Writes `text` to stdout. A reader that went away (`greenrt info | head
/// -3`) is not an error: it has what it wanted; any other failure is
/// reported.
fn print_stdout(text: &str) -> ExitCode {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("greenrt: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn ld_preload_ours_first_existing_kept_once() {
        let ours = Path::new("/x/libgreenrt_preload.so");
        assert_eq!(compose_ld_preload(ours, None), "/x/libgreenrt_preload.so");
        assert_eq!(
            compose_ld_preload(ours, Some(OsStr::new("liba.so /b/libb.so:/x/libgreenrt_preload.so"))),
            "/x/libgreenrt_preload.so:liba.so:/b/libb.so"
        );
    }

    #[test]
    fn run_options_parse() {
        let (o, p) = parse_run_args(&os(&[
            "--backend",
            "poll",
            "--hooks=always",
            "--monitor",
            "--",
            "ls",
            "-l",
        ]))
        .ok()
        .unwrap();
        assert_eq!(p, os(&["ls", "-l"]));
        assert_eq!(
            o.set,
            vec![
                ("GREENRT_BACKEND", "poll".to_string()),
                ("GREENRT_HOOKS", "always".to_string()),
                ("GREENRT_MONITOR", "1".to_string())
            ]
        );
        let (_, p) = parse_run_args(&os(&["ls", "--backend", "x"])).ok().unwrap();
        assert_eq!(
            p,
            os(&["ls", "--backend", "x"]),
            "options after PROGRAM are the program's"
        );
    }

    #[test]
    fn run_option_errors() {
        let msg = |a: &[&str]| match parse_run_args(&os(a)) {
            Err(Usage(m)) => m,
            Ok(_) => panic!("{a:?} accepted"),
        };
        assert_eq!(
            msg(&["--backend", "kqueue", "ls"]),
            "greenrt: invalid value \"kqueue\" for --backend; accepted values: epoll, poll"
        );
        assert!(msg(&["--frobnicate", "ls"]).contains("unknown option \"--frobnicate\""));
        assert!(msg(&["--resolver"]).contains("--resolver needs a value"));
        assert!(msg(&["--hooks", "auto"]).contains("needs a PROGRAM"));
    }
}
