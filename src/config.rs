//! Configuration from the environment, read once per process.
//!
//! | variable | values | default |
//! |---|---|---|
//! | `GREENRT_BACKEND` | `epoll`, `poll` | `epoll` |
//! | `GREENRT_STACK_SIZE` | bytes, with optional `k`/`m` suffix, 16k..=1g | `256k` |
//! | `GREENRT_THREADPOOL_SIZE` | 1..=1024 | `10` |
//! | `GREENRT_LOG` | `off`, `error`, `debug` | `error` |
//! | `GREENRT_RUN_INFO_SIGNAL` | a signal name or number (`SIGUSR2`, `USR2`, `12`), or `off` (print run info when it arrives) | `off` |
//! | `GREENRT_MONITOR` | `0`, `1` (the blocking monitor, see `greenrt::monitor`) | `0` |
//! | `GREENRT_MAX_BLOCKING` | milliseconds, 1..=3600000 (the monitor's threshold) | `100` |
//! | `GREENRT_RESOLVER` | `thread`, `native`, `block` (see `greenrt::dns`) | `thread` |
//! | `GREENRT_RESOLV_CONF` | path of the resolv.conf the `native` resolver reads | `/etc/resolv.conf` |
//!
//! A bad value never falls back silently: [`Config::from_env`] returns an
//! error naming the variable and the accepted values, and the runtime's
//! first use reports it on stderr and exits with status 2 (a runtime that
//! is configured wrongly must not quietly run with other settings).

use std::fmt;
use std::sync::OnceLock;

/// The poller backend (defined with the pollers, in `sys`).
pub use crate::sys::Backend;

/// How much the runtime reports on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing, not even greenlet failures.
    Off,
    /// Greenlet failures and runtime errors (the default).
    Error,
    /// Also runtime decisions worth knowing when debugging.
    Debug,
}

/// Which resolver `greenrt::dns::resolve` uses (`GREENRT_RESOLVER`, like
/// gevent's `GEVENT_RESOLVER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolverKind {
    /// The system's `getaddrinfo` on the thread pool (the default;
    /// gevent's `thread` resolver).
    Thread,
    /// Asynchronous DNS on the hub (gevent's `ares` resolver).
    Native,
    /// The system's `getaddrinfo` in the calling thread (gevent's
    /// `block` resolver).
    Block,
}

/// The runtime's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `GREENRT_BACKEND`.
    pub backend: Backend,
    /// `GREENRT_STACK_SIZE`: default stack size for new greenlets, in bytes.
    pub stack_size: usize,
    /// `GREENRT_THREADPOOL_SIZE`: threads in each hub's default thread pool.
    pub threadpool_size: usize,
    /// `GREENRT_LOG`.
    pub log: LogLevel,
    /// `GREENRT_RUN_INFO_SIGNAL`: print [`crate::run_info()`] on stderr when
    /// this signal arrives (gevent prints `print_run_info` on demand the
    /// same way with a `signal_handler`).
    pub run_info_signal: Option<i32>,
    /// `GREENRT_MONITOR`: start the blocking monitor at the first hub
    /// creation (gevent's `GEVENT_MONITOR_THREAD_ENABLE`).
    pub monitor: bool,
    /// `GREENRT_MAX_BLOCKING`: how long a hub may go without switching
    /// before the monitor reports it (gevent's `GEVENT_MAX_BLOCKING_TIME`).
    pub max_blocking: std::time::Duration,
    /// `GREENRT_RESOLVER`.
    pub resolver: ResolverKind,
}

/// Default stack size: 256 KiB of address space; only touched pages cost
/// memory.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest accepted stack size.
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest accepted stack size.
pub const MAX_STACK_SIZE: usize = 1024 * 1024 * 1024;
/// Default `GREENRT_MAX_BLOCKING`: 100 ms, like gevent's `max_blocking_time`.
pub const DEFAULT_MAX_BLOCKING: std::time::Duration = std::time::Duration::from_millis(100);

/// A configuration value that was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// The value found.
    pub value: String,
    /// What would have been accepted.
    pub accepted: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "greenrt: invalid {}={:?}; accepted values: {}",
            self.variable, self.value, self.accepted
        )
    }
}

impl std::error::Error for ConfigError {}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: Backend::Epoll,
            stack_size: DEFAULT_STACK_SIZE,
            threadpool_size: 10,
            log: LogLevel::Error,
            run_info_signal: None,
            monitor: false,
            max_blocking: DEFAULT_MAX_BLOCKING,
            resolver: ResolverKind::Thread,
        }
    }
}

impl Config {
    /// Reads the configuration through `get` (normally `std::env::var`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        if let Some(v) = get("GREENRT_BACKEND") {
            c.backend = parse_backend(&v)?;
        }
        if let Some(v) = get("GREENRT_STACK_SIZE") {
            c.stack_size = parse_stack_size(&v)?;
        }
        if let Some(v) = get("GREENRT_THREADPOOL_SIZE") {
            c.threadpool_size = parse_threadpool_size(&v)?;
        }
        if let Some(v) = get("GREENRT_LOG") {
            c.log = parse_log(&v)?;
        }
        if let Some(v) = get("GREENRT_RUN_INFO_SIGNAL") {
            c.run_info_signal = parse_run_info_signal(&v)?;
        }
        if let Some(v) = get("GREENRT_MONITOR") {
            c.monitor = parse_monitor(&v)?;
        }
        if let Some(v) = get("GREENRT_MAX_BLOCKING") {
            c.max_blocking = parse_max_blocking(&v)?;
        }
        if let Some(v) = get("GREENRT_RESOLVER") {
            c.resolver = parse_resolver(&v)?;
        }
        Ok(c)
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))
    }
}

fn bad(variable: &'static str, value: &str, accepted: &'static str) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_string(),
        accepted,
    }
}

/// Parses a `GREENRT_BACKEND` value.
pub fn parse_backend(v: &str) -> Result<Backend, ConfigError> {
    match v {
        "epoll" => Ok(Backend::Epoll),
        "poll" => Ok(Backend::Poll),
        _ => Err(bad("GREENRT_BACKEND", v, "epoll, poll")),
    }
}

const STACK_ACCEPTED: &str = "a size in bytes from 16k to 1g, with optional k or m suffix (e.g. 65536, 64k, 1m)";

/// Parses a `GREENRT_STACK_SIZE` value such as `65536`, `64k` or `1m`.
pub fn parse_stack_size(v: &str) -> Result<usize, ConfigError> {
    let err = || bad("GREENRT_STACK_SIZE", v, STACK_ACCEPTED);
    let t = v.trim().to_ascii_lowercase();
    let (digits, mult) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 1024usize),
        Some(b'm') => (&t[..t.len() - 1], 1024 * 1024),
        Some(b'g') => (&t[..t.len() - 1], 1024 * 1024 * 1024),
        _ => (&t[..], 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: usize = digits.parse().map_err(|_| err())?;
    let bytes = n.checked_mul(mult).ok_or_else(err)?;
    if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&bytes) {
        return Err(err());
    }
    Ok(bytes)
}

/// Parses a `GREENRT_THREADPOOL_SIZE` value.
pub fn parse_threadpool_size(v: &str) -> Result<usize, ConfigError> {
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(bad("GREENRT_THREADPOOL_SIZE", v, "an integer from 1 to 1024")),
    }
}

/// Parses a `GREENRT_LOG` value.
pub fn parse_log(v: &str) -> Result<LogLevel, ConfigError> {
    match v {
        "off" => Ok(LogLevel::Off),
        "error" => Ok(LogLevel::Error),
        "debug" => Ok(LogLevel::Debug),
        _ => Err(bad("GREENRT_LOG", v, "off, error, debug")),
    }
}

/// Parses a `GREENRT_RESOLVER` value.
pub fn parse_resolver(v: &str) -> Result<ResolverKind, ConfigError> {
    match v {
        "thread" => Ok(ResolverKind::Thread),
        "native" => Ok(ResolverKind::Native),
        "block" => Ok(ResolverKind::Block),
        _ => Err(bad("GREENRT_RESOLVER", v, "thread, native, block")),
    }
}

/// Parses a `GREENRT_MONITOR` value.
pub fn parse_monitor(v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(bad("GREENRT_MONITOR", v, "0 (off), 1 (on)")),
    }
}

/// Parses a `GREENRT_MAX_BLOCKING` value (whole milliseconds).
pub fn parse_max_blocking(v: &str) -> Result<std::time::Duration, ConfigError> {
    match v.trim().parse::<u64>() {
        Ok(ms) if (1..=3_600_000).contains(&ms) => Ok(std::time::Duration::from_millis(ms)),
        _ => Err(bad(
            "GREENRT_MAX_BLOCKING",
            v,
            "milliseconds, an integer from 1 to 3600000 (e.g. 100)",
        )),
    }
}

const RUN_INFO_SIGNAL_ACCEPTED: &str = "off, or a signal name or number greenrt can handle, e.g. SIGUSR2, USR2, 12 \
     (not SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE)";

/// Parses a `GREENRT_RUN_INFO_SIGNAL` value (`None` for `off`).
pub fn parse_run_info_signal(v: &str) -> Result<Option<i32>, ConfigError> {
    if v.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match crate::sys::signo::from_name(v) {
        Some(n) if crate::sys::signo::check_signum(n).is_ok() => Ok(Some(n)),
        _ => Err(bad("GREENRT_RUN_INFO_SIGNAL", v, RUN_INFO_SIGNAL_ACCEPTED)),
    }
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The process-wide configuration. On a bad environment value this prints
/// the error and exits with status 2.
pub fn get() -> &'static Config {
    CONFIG.get_or_init(|| match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    })
}

/// Prints `msg` on stderr when `GREENRT_LOG` allows `level`.
pub(crate) fn log(level: LogLevel, msg: fmt::Arguments<'_>) {
    if get().log >= level && level != LogLevel::Off {
        eprintln!("greenrt: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn defaults_when_unset() {
        let c = Config::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.backend, Backend::Epoll);
        assert_eq!(c.stack_size, DEFAULT_STACK_SIZE);
        assert_eq!(c.threadpool_size, 10);
    }

    #[test]
    fn stack_size_suffixes() {
        assert_eq!(parse_stack_size("65536"), Ok(65536));
        assert_eq!(parse_stack_size("64k"), Ok(65536));
        assert_eq!(parse_stack_size("1M"), Ok(1 << 20));
        assert!(parse_stack_size("4k").is_err());
        assert!(parse_stack_size("-1").is_err());
        assert!(parse_stack_size("12q").is_err());
        assert!(parse_stack_size("99999999999999999999k").is_err());
    }

    #[test]
    fn bad_backend_names_variable_and_choices() {
        let e = Config::from_lookup(lookup(&[("GREENRT_BACKEND", "kqueue")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "greenrt: invalid GREENRT_BACKEND=\"kqueue\"; accepted values: epoll, poll"
        );
    }

    #[test]
    fn monitor_settings() {
        let c = Config::from_lookup(lookup(&[])).unwrap();
        assert!(!c.monitor);
        assert_eq!(c.max_blocking, DEFAULT_MAX_BLOCKING);
        let c = Config::from_lookup(lookup(&[("GREENRT_MONITOR", "1"), ("GREENRT_MAX_BLOCKING", "250")])).unwrap();
        assert!(c.monitor);
        assert_eq!(c.max_blocking, std::time::Duration::from_millis(250));
        assert_eq!(parse_monitor("0"), Ok(false));
        assert!(parse_monitor("yes").is_err());
        assert!(parse_monitor("").is_err());
        assert!(parse_max_blocking("0").is_err());
        assert!(parse_max_blocking("0.1").is_err());
        assert!(parse_max_blocking("3600001").is_err());
        assert_eq!(parse_max_blocking("3600000"), Ok(std::time::Duration::from_secs(3600)));
    }

    #[test]
    fn bad_monitor_values_name_variable_and_choices() {
        let e = Config::from_lookup(lookup(&[("GREENRT_MONITOR", "on")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "greenrt: invalid GREENRT_MONITOR=\"on\"; accepted values: 0 (off), 1 (on)"
        );
        let e = Config::from_lookup(lookup(&[("GREENRT_MAX_BLOCKING", "100ms")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "greenrt: invalid GREENRT_MAX_BLOCKING=\"100ms\"; accepted values: \
             milliseconds, an integer from 1 to 3600000 (e.g. 100)"
        );
    }

    #[test]
    fn run_info_signal_values() {
        assert_eq!(Config::from_lookup(lookup(&[])).unwrap().run_info_signal, None);
        assert_eq!(parse_run_info_signal("SIGUSR2"), Ok(Some(libc::SIGUSR2)));
        assert_eq!(parse_run_info_signal("usr1"), Ok(Some(libc::SIGUSR1)));
        assert_eq!(parse_run_info_signal("12"), Ok(Some(12)));
        assert_eq!(parse_run_info_signal("off"), Ok(None));
        for bad in ["SIGFOO", "", "0", "99", "SIGKILL", "9", "SIGSEGV", "USR2x"] {
            let e = parse_run_info_signal(bad).unwrap_err();
            assert_eq!(e.variable, "GREENRT_RUN_INFO_SIGNAL", "{bad}");
            assert!(e.to_string().contains("SIGUSR2"), "{e}");
        }
    }

    #[test]
    fn bad_pool_size_rejected() {
        assert!(parse_threadpool_size("0").is_err());
        assert!(parse_threadpool_size("abc").is_err());
        assert_eq!(parse_threadpool_size("4"), Ok(4));
    }
}
