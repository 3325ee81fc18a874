//! Shared helpers for the preload's integration tests: where the built
//! library and launcher are, the three ways to run a program (plain, under
//! the preload with `GREENRT_HOOKS=auto`, with `always`), and running a
//! process with a timeout so that a hang fails a test instead of blocking
//! CI.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A scratch directory for this test binary's files (under target/tmp).
pub fn scratch(sub: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(sub);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The absolute path of `libgreenrt_preload.so`: `GREENRT_PRELOAD_PATH` if
/// set, else the newest of `target/<profile>/libgreenrt_preload.so` and
/// `target/<profile>/deps/libgreenrt_preload.so` beside this test binary.
/// Panics with what to run when it is missing.
pub fn preload_so() -> PathBuf {
    if let Some(p) = std::env::var_os("GREENRT_PRELOAD_PATH") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "GREENRT_PRELOAD_PATH={} is not a file", p.display());
        return p.canonicalize().unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary>
    let deps = exe.parent().unwrap();
    let profile = deps.parent().unwrap();
    let candidates = [
        profile.join("libgreenrt_preload.so"),
        deps.join("libgreenrt_preload.so"),
    ];
    let newest = candidates
        .iter()
        .filter_map(|c| Some((std::fs::metadata(c).ok()?.modified().ok()?, c)))
        .max_by_key(|(t, _)| *t);
    match newest {
        Some((_, p)) => p.canonicalize().unwrap(),
        None => panic!(
            "libgreenrt_preload.so not found (looked at {} and {}): build it first with \
             `cargo build -p greenrt-preload` (`make test` does), or set GREENRT_PRELOAD_PATH",
            candidates[0].display(),
            candidates[1].display()
        ),
    }
}

/// The `greenrt` launcher built for this test run.
pub fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greenrt"))
}

/// How a program is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Without the preload.
    Plain,
    /// Under the preload, `GREENRT_HOOKS=auto`.
    Auto,
    /// Under the preload, `GREENRT_HOOKS=always`.
    Always,
}

impl Mode {
    /// The three modes, plain first.
    pub const ALL: [Mode; 3] = [Mode::Plain, Mode::Auto, Mode::Always];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Auto => "auto",
            Mode::Always => "always",
        }
    }

    /// Sets (or clears) `LD_PRELOAD` and `GREENRT_HOOKS` on `cmd`. Other
    /// `GREENRT_*` variables (`GREENRT_BACKEND` from `make test-poll`) pass
    /// through.
    pub fn apply(self, cmd: &mut Command, so: &Path) {
        match self {
            Mode::Plain => {
                cmd.env_remove("LD_PRELOAD").env_remove("GREENRT_HOOKS");
            }
            Mode::Auto | Mode::Always => {
                cmd.env("LD_PRELOAD", so).env("GREENRT_HOOKS", self.name());
            }
        }
    }
}

/// What a finished (or killed) process left.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status; `None` when it was killed for running too long.
    pub status: Option<ExitStatus>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Wall time until exit (or until the kill).
    pub elapsed: Duration,
}

impl Outcome {
    /// "exit 0", "signal 9 (SIGKILL)", or "timed out".
    pub fn status_text(&self) -> String {
        match self.status {
            None => format!("timed out after {:.1} s (killed)", self.elapsed.as_secs_f64()),
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("{s}"),
            },
        }
    }

    /// True for exit status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Runs `cmd` in its own process group with stdin from /dev/null and
/// stdout/stderr captured through files (so children that keep them open
/// cannot hang the reader). After `timeout` the whole group is killed.
/// Leftover processes of the group are killed once the main one exits.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Outcome {
    let dir = scratch("outputs");
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let out_path = dir.join(format!("{}-{n}.out", std::process::id()));
    let err_path = dir.join(format!("{}-{n}.err", std::process::id()));
    let out = std::fs::File::create(&out_path).unwrap();
    let err = std::fs::File::create(&err_path).unwrap();
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!("cannot start {:?}: {e}", cmd.get_program()),
    };
    let pgid = child.id() as i32;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() >= timeout {
            // SAFETY: signals the process group this function created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    // SAFETY: as above; leftovers (a forked server the program forgot)
    // must not outlive the test.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let stdout = String::from_utf8_lossy(&std::fs::read(&out_path).unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    Outcome {
        status,
        stdout,
        stderr,
        elapsed,
    }
}

/// A readable line diff of `expected` and `got` (first difference marked,
/// at most `max` lines of context either side).
pub fn diff(expected: &str, got: &str, max: usize) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "    first difference at line {} (expected {} lines, got {} lines)",
        first + 1,
        a.len(),
        b.len()
    );
    let from = first.saturating_sub(max);
    let to = (first + max + 1).max(from);
    for i in from..to.min(a.len().max(b.len())) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x == y => {
                let _ = writeln!(s, "      {:>4}   {x}", i + 1);
            }
            (x, y) => {
                if let Some(x) = x {
                    let _ = writeln!(s, "    - {:>4}   {x}", i + 1);
                }
                if let Some(y) = y {
                    let _ = writeln!(s, "    + {:>4}   {y}", i + 1);
                }
            }
        }
    }
    s
}

/// The last `n` lines of `s`, indented, for failure reports.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(n);
    let mut out = String::new();
    for l in &lines[from..] {
        let _ = writeln!(out, "    | {l}");
    }
    if out.is_empty() {
        out.push_str("    | (empty)\n");
    }
    out
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a
/// server started right after).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The path of `name` on `PATH`, if any.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The shipped build's directory (`target/dist`, the dist profile):
/// `GREENRT_DIST_DIR` as `make test` sets it, else built here with
/// `cargo build --profile dist -p greenrt-preload` (once per test binary).
pub fn dist_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(d) = std::env::var_os("GREENRT_DIST_DIR") {
                return PathBuf::from(d);
            }
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let st = Command::new(cargo)
                .args(["build", "--profile", "dist", "-p", "greenrt-preload"])
                .current_dir(repo_root())
                .status()
                .expect("cannot run cargo");
            assert!(st.success(), "cargo build --profile dist failed");
            repo_root().join("target/dist")
        })
        .clone()
}

/// Runs `cmd` (at most 120 s) and returns its stdout; fails the test with
/// its output if it does not exit 0.
pub fn run_ok(cmd: &mut Command) -> String {
    let what = format!("{cmd:?}");
    let out = run_timeout(cmd, Duration::from_secs(120));
    assert!(
        out.success(),
        "{what}: {}\nstdout:\n{}stderr:\n{}",
        out.status_text(),
        tail(&out.stdout, 30),
        tail(&out.stderr, 30)
    );
    out.stdout
}

/// Every file and directory under `root`, relative to it, sorted
/// (directories end with '/').
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() && !p.is_symlink() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}
