//! Child processes that cooperate with the hub (gevent's
//! `gevent.subprocess`), in the shape of `std::process`.
//!
//! ```
//! use greenrt::process::{Command, Stdio};
//! use std::time::{Duration, Instant};
//!
//! // Ten children waited on concurrently: they sleep together.
//! let start = Instant::now();
//! let waiters: Vec<_> = (0..10)
//!     .map(|_| {
//!         let mut child = Command::new("sleep").arg("0.1").spawn().unwrap();
//!         greenrt::spawn(move || child.wait().unwrap())
//!     })
//!     .collect();
//! for w in &waiters {
//!     assert!(w.get().unwrap().success());
//! }
//! assert!(start.elapsed() < Duration::from_secs(1));
//!
//! // Exact output, exit code.
//! let out = Command::new("sh").args(["-c", "printf hi; exit 3"]).output().unwrap();
//! assert_eq!(out.stdout, b"hi");
//! assert_eq!(out.status.code(), Some(3));
//!
//! // Feed stdin and collect stdout at the same time.
//! let mut cat = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
//! let (out, _) = cat.communicate(Some(b"ping"), None).unwrap();
//! assert_eq!(out, b"ping");
//! ```
//!
//! # How it works
//!
//! [`Command::spawn`] lets `std::process::Command` fork and exec (it
//! reports exec failures through a close-on-exec pipe, and uses
//! `posix_spawn`/`vfork` where it can, so the hub is blocked only for the
//! exec itself), then takes the child's pipes, makes greenrt's ends of them
//! non-blocking (the child's ends are separate open file descriptions and
//! stay blocking) and wraps them as [`ChildStdin`], [`ChildStdout`] and
//! [`ChildStderr`], whose reads and writes park the calling greenlet
//! instead of the thread.
//!
//! [`Child::wait`] waits on a pidfd (see [`os::waitpid`],
//! which also describes the polling fallback) and reaps only this child:
//! no `SIGCHLD` handler is installed and no other exit status is ever
//! taken. Kill and Timeout interrupt every wait here; the child is then
//! left running and unreaped, and can be waited for again.
//!
//! # No zombies
//!
//! `std::process::Child` does not reap a child that is dropped while it
//! runs; this [`Child`] does. Dropping it hands the pid (and a pidfd) to a
//! small process-wide reaper thread that `poll`s the pidfds of dropped
//! children and reaps each one (`waitpid(pid, WNOHANG)`, that pid only)
//! when it exits; the thread exits when it has nothing left to reap. A
//! thread, not a greenlet, because a greenlet waiting for a child that may
//! never exit would keep its hub from ever reporting "this would block
//! forever" and would be abandoned, unreaped, when its thread exits.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod pipes;
mod reaper;

use pipes::PipeFd;
pub use pipes::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};

use crate::os;
use crate::sys::syscall;

// ===== Command =====

/// A process builder (gevent's `Popen` arguments, `std::process::Command`'s
/// shape): the same methods, and [`spawn`](Self::spawn) gives a
/// cooperative [`Child`].
///
/// Unix-only settings (`uid`, `gid`, `process_group`, `pre_exec`, ...) are
/// reached through [`as_std_mut`](Self::as_std_mut) and
/// `std::os::unix::process::CommandExt`.
pub struct Command {
    inner: std::process::Command,
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
}

impl Command {
    /// A command that runs `program` (looked up in `PATH` if it has no
    /// slash), with the parent's environment and working directory, and
    /// inherited stdio for [`spawn`](Self::spawn) and
    /// [`status`](Self::status) (`std::process::Command::new`).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        std::process::Command::new(program).into()
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Configures the child's stdin (`Stdio::piped()`, `null()`,
    /// `inherit()`, or an fd).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// Configures the child's stdout.
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// Configures the child's stderr.
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// The program's name as given to [`new`](Self::new).
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The underlying `std::process::Command`, for its Unix extensions.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// Starts the child and returns at once (gevent's `Popen(...)`,
    /// `std::process::Command::spawn`). Stdio not configured is inherited.
    pub fn spawn(&mut self) -> io::Result<Child> {
        let std_child = self.inner.spawn()?;
        Child::from_std(std_child)
    }

    /// Runs the child to completion, capturing stdout and stderr
    /// concurrently (`std`'s `output`, Python's `subprocess.run(...,
    /// capture_output=True)`). Unless configured, stdin is `/dev/null` and
    /// stdout and stderr are piped. Only the calling greenlet waits.
    pub fn output(&mut self) -> io::Result<Output> {
        let mut child = self.with_defaults(Stdio::null, Stdio::piped, |c| c.spawn())?;
        let (stdout, stderr) = child.communicate(None, None)?;
        let status = child.wait()?;
        Ok(Output { status, stdout, stderr })
    }

    /// Runs the child to completion with inherited stdio (unless
    /// configured) and returns its exit status (`std`'s `status`, Python's
    /// `subprocess.call`). Only the calling greenlet waits.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// Spawns with `input`/`output` as the default of each stdio not set,
    /// then puts back `inherit`, which is what `spawn` uses for unset ones.
    fn with_defaults<R>(
        &mut self,
        input: fn() -> Stdio,
        output: fn() -> Stdio,
        f: impl FnOnce(&mut Command) -> io::Result<R>,
    ) -> io::Result<R> {
        let (i, o, e) = (self.stdin_set, self.stdout_set, self.stderr_set);
        if !i {
            self.inner.stdin(input());
        }
        if !o {
            self.inner.stdout(output());
        }
        if !e {
            self.inner.stderr(output());
        }
        let r = f(self);
        if !i {
            self.inner.stdin(Stdio::inherit());
        }
        if !o {
            self.inner.stdout(Stdio::inherit());
        }
        if !e {
            self.inner.stderr(Stdio::inherit());
        }
        r
    }
}

impl From<std::process::Command> for Command {
    /// Wraps a configured `std::process::Command`. Its stdio settings are
    /// kept for [`Command::spawn`] and [`Command::status`]; std cannot be
    /// asked which ones were set, so [`Command::output`] puts its own
    /// defaults (stdin null, stdout and stderr piped) over them, and
    /// inherit after it, unless they are set again on this `Command`.
    fn from(inner: std::process::Command) -> Command {
        Command {
            inner,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

// ===== Child =====

/// A running (or finished) child process (gevent's `Popen`,
/// `std::process::Child`), whose waits park only the calling greenlet.
///
/// Dropping a `Child` that has not been waited for neither kills it nor
/// leaves a zombie: it is reaped in the background once it exits (see the
/// [module docs](self)).
pub struct Child {
    pid: libc::pid_t,
    status: Option<ExitStatus>,
    /// The child's stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
    /// Progress of a [`communicate`](Child::communicate) that timed out.
    comm: Option<Communication>,
}

/// What a timed-out `communicate` keeps for the next call (Python keeps
/// the same in `Popen._fileobj2output` and `_input`).
#[derive(Default)]
struct Communication {
    input: Arc<Vec<u8>>,
    written: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Read this much at a time (the default pipe capacity).
const READ_CHUNK: usize = 64 * 1024;

impl Child {
    fn from_std(mut c: std::process::Child) -> io::Result<Child> {
        let mut child = Child {
            pid: c.id() as libc::pid_t,
            status: None,
            stdin: None,
            stdout: None,
            stderr: None,
            comm: None,
        };
        // `c` is dropped without being waited for (std does not reap);
        // from here on `child` owns the pid, and its Drop reaps it should a
        // pipe fail to convert.
        let (i, o, e) = (c.stdin.take(), c.stdout.take(), c.stderr.take());
        child.stdin = i.map(ChildStdin::from_std).transpose()?;
        child.stdout = o.map(ChildStdout::from_std).transpose()?;
        child.stderr = e.map(ChildStderr::from_std).transpose()?;
        Ok(child)
    }

    /// The child's process id (`std::process::Child::id`; gevent's
    /// `Popen.pid`).
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// The exit status, if the child has been reaped already (gevent's
    /// `Popen.returncode`, as a status).
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Waits for the child to exit and reaps it (`std`'s `wait`, gevent's
    /// `Popen.wait()`), parking only the calling greenlet. Closes stdin
    /// first, as std does, so a child that reads to end of file can finish.
    /// Returns the cached status if the child was reaped already.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        // Without a deadline (and without WNOHANG) the wait ends with a status.
        self.wait_until(None)?
            .ok_or_else(|| io::Error::other("waitpid returned no status"))
    }

    /// Waits at most `timeout` (gevent's `Popen.wait(timeout)`):
    /// `Ok(None)` if the child is still running then (it keeps running).
    /// Unlike [`wait`](Self::wait), leaves stdin open.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Reaps the child if it has exited, without waiting (`std`'s
    /// `try_wait`, gevent's `Popen.poll()`).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        Ok(os::try_waitpid(self.pid, 0)?.map(|(_, st)| self.reaped(st)))
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        Ok(os::wait_pid_until(self.pid, 0, deadline)?.map(|(_, st)| self.reaped(st)))
    }

    fn reaped(&mut self, raw: libc::c_int) -> ExitStatus {
        let s = ExitStatus::from_raw(raw);
        self.status = Some(s);
        s
    }

    /// Sends `SIGKILL` (`std`'s `kill`, gevent's `Popen.kill()`). Does not
    /// wait; a child already reaped is left alone (`Ok`), so a reused pid
    /// is never signalled.
    pub fn kill(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }

    /// Sends `SIGTERM` (gevent's `Popen.terminate()`).
    pub fn terminate(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Sends `signal` to the child (gevent's `Popen.send_signal`); `Ok`
    /// without sending if the child was reaped already. Until it is reaped
    /// the pid cannot be reused (an exited child stays a zombie), so the
    /// signal always reaches this child.
    pub fn send_signal(&mut self, signal: libc::c_int) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        syscall!(kill(self.pid, signal)).map(drop)
    }

    /// Writes `input` to the child's stdin (then closes it) while reading
    /// its stdout and stderr to end of file, all at once in separate
    /// greenlets so that no pipe can fill up and deadlock the exchange,
    /// then waits for the child to exit (gevent's and Python's
    /// `Popen.communicate(input, timeout)`). Returns what stdout and stderr
    /// produced (empty for a stream that is not piped).
    ///
    /// With a `timeout` that passes first, fails with
    /// `ErrorKind::TimedOut` (Python's `TimeoutExpired`): the child keeps
    /// running, its pipes stay open, and what was read and written so far
    /// is kept, so a later call (whose `input` is then ignored, as in
    /// Python) carries on and returns everything. A stdin the child closed
    /// early (`EPIPE`) is not an error. The input is copied once, so that
    /// the writing greenlet owns it. If the calling greenlet is killed (or
    /// a Timeout of its own fires) meanwhile, the exchange is abandoned and
    /// the pipes it had are closed.
    pub fn communicate(&mut self, input: Option<&[u8]>, timeout: Option<Duration>) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.comm.take().unwrap_or_else(|| Communication {
            input: Arc::new(match (&self.stdin, input) {
                (Some(_), Some(input)) => input.to_vec(),
                _ => Vec::new(),
            }),
            ..Communication::default()
        });
        let r = self.communicate_with(&mut st, deadline);
        match r {
            Ok(Some(_status)) => Ok((st.stdout, st.stderr)),
            Ok(None) => {
                self.comm = Some(st);
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "communicate timed out; the child is still running",
                ))
            }
            Err(e) => {
                self.comm = Some(st);
                Err(e)
            }
        }
    }

    /// The body of `communicate`: `Ok(None)` on timeout, with the pipes
    /// that are still open put back into `self` and progress in `st`.
    fn communicate_with(
        &mut self,
        st: &mut Communication,
        deadline: Option<Instant>,
    ) -> io::Result<Option<ExitStatus>> {
        let mut helpers = Helpers(Vec::new());
        let stdin_result: Rc<RefCell<Option<PipeOutcome<usize>>>> = Rc::new(RefCell::new(None));
        let stderr_result: Rc<RefCell<Option<PipeOutcome<Vec<u8>>>>> = Rc::new(RefCell::new(None));
        if let Some(stdin) = self.stdin.take() {
            if st.written < st.input.len() {
                let (input, written, slot) = (st.input.clone(), st.written, stdin_result.clone());
                helpers.spawn(move || *slot.borrow_mut() = Some(feed(stdin.0, &input, written, deadline)))?;
            }
            // Else: nothing (more) to write; dropping `stdin` closes it.
        }
        if let Some(stderr) = self.stderr.take() {
            let (buf, slot) = (std::mem::take(&mut st.stderr), stderr_result.clone());
            helpers.spawn(move || *slot.borrow_mut() = Some(drain(stderr.0, buf, deadline)))?;
        }
        // stdout is read by the calling greenlet itself.
        let mut first_err = None;
        if let Some(stdout) = self.stdout.take() {
            let out = drain(stdout.0, std::mem::take(&mut st.stdout), deadline);
            st.stdout = out.progress;
            self.stdout = out.pipe.map(ChildStdout);
            first_err = out.result.err();
        }
        helpers.join_all();
        if let Some(w) = stdin_result.borrow_mut().take() {
            st.written = w.progress;
            self.stdin = w.pipe.map(ChildStdin);
            first_err = first_err.or(w.result.err());
        }
        if let Some(e) = stderr_result.borrow_mut().take() {
            st.stderr = e.progress;
            self.stderr = e.pipe.map(ChildStderr);
            first_err = first_err.or(e.result.err());
        }
        match first_err {
            Some(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(None),
            Some(e) => return Err(e),
            None => {}
        }
        self.wait_until(deadline)
    }

    /// Waits for the child and collects everything stdout and stderr
    /// produce (`std`'s `wait_with_output`).
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        let (stdout, stderr) = self.communicate(None, None)?;
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }
}

/// How one pipe's part of `communicate` ended: the pipe itself if it is
/// still open (timeout or error), progress so far, and the result.
struct PipeOutcome<P> {
    pipe: Option<PipeFd>,
    progress: P,
    result: io::Result<()>,
}

/// Writes `input[written..]`, then closes the pipe.
fn feed(pipe: PipeFd, input: &[u8], mut written: usize, deadline: Option<Instant>) -> PipeOutcome<usize> {
    while written < input.len() {
        match pipe.write(&input[written..], deadline) {
            Ok(0) => {
                return PipeOutcome {
                    pipe: Some(pipe),
                    progress: written,
                    result: Err(io::ErrorKind::WriteZero.into()),
                }
            }
            Ok(n) => written += n,
            // The child does not want the rest of its input: not an error
            // (Python ignores BrokenPipeError here too).
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => {
                return PipeOutcome {
                    pipe: Some(pipe),
                    progress: written,
                    result: Err(e),
                }
            }
        }
    }
    PipeOutcome {
        pipe: None,
        progress: written,
        result: Ok(()),
    }
}

/// Reads the pipe to end of file, appending to `buf`.
fn drain(pipe: PipeFd, mut buf: Vec<u8>, deadline: Option<Instant>) -> PipeOutcome<Vec<u8>> {
    loop {
        let len = buf.len();
        buf.resize(len + READ_CHUNK, 0);
        let r = pipe.read(&mut buf[len..], deadline);
        buf.truncate(len + *r.as_ref().unwrap_or(&0));
        match r {
            Ok(0) => {
                return PipeOutcome {
                    pipe: None,
                    progress: buf,
                    result: Ok(()),
                }
            }
            Ok(_) => {}
            Err(e) => {
                return PipeOutcome {
                    pipe: Some(pipe),
                    progress: buf,
                    result: Err(e),
                }
            }
        }
    }
}

/// The helper greenlets of one `communicate`; should the caller be killed
/// (or its Timeout fire) while they run, they are killed too.
struct Helpers(Vec<crate::Greenlet<()>>);

impl Helpers {
    fn spawn(&mut self, f: impl FnOnce() + 'static) -> io::Result<()> {
        let g = crate::Builder::new().name("communicate").spawn(f)?;
        self.0.push(g);
        Ok(())
    }

    fn join_all(&mut self) {
        for g in std::mem::take(&mut self.0) {
            // Each helper observes the deadline itself and returns; join
            // fails only if this greenlet is interrupted, which unwinds.
            let _ = g.join();
        }
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        for g in &self.0 {
            g.kill_async();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        // Otherwise it was reaped just now, or is not ours to reap (ECHILD:
        // e.g. a copy of this Child inherited across a fork).
        if let Ok(None) = os::try_waitpid(self.pid, 0) {
            reaper::adopt(self.pid);
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("status", &self.status)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}
