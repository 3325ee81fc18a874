//! Signal numbers and names: which signal a name means, how one is shown,
//! and whether greenrt can hand a signal to greenlets. Below everything
//! that reads them (`config` for `GREENRT_RUN_INFO_SIGNAL`, `signal`).

use std::io;

use libc::c_int;

/// Signals 1..=64 on Linux.
pub(crate) const NSIG: usize = 65;

const NAMES: &[(&str, c_int)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGSTKFLT", libc::SIGSTKFLT),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSYS", libc::SIGSYS),
];

/// The conventional name of a signal (`"SIGUSR2"`), if it has one.
pub fn name(signum: c_int) -> Option<&'static str> {
    NAMES.iter().find(|(_, n)| *n == signum).map(|(s, _)| *s)
}

/// A signal by name or number: `"SIGUSR2"`, `"USR2"` (any case), or
/// `"12"`. Only says which signal is meant; `greenrt::signal::handler` decides whether
/// greenrt can handle it.
pub fn from_name(s: &str) -> Option<c_int> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok().filter(|n| (1..NSIG as c_int).contains(n));
    }
    let up = t.to_ascii_uppercase();
    let full = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    NAMES.iter().find(|(s, _)| *s == full).map(|(_, n)| *n)
}

/// `SIGUSR2`, or `signal 40` for one without a name.
pub(crate) fn display(signum: c_int) -> String {
    match name(signum) {
        Some(n) => n.to_string(),
        None => format!("signal {signum}"),
    }
}

/// Whether greenrt can hand `signum` to greenlets (see the module docs).
pub(crate) fn check_signum(signum: c_int) -> io::Result<()> {
    if !(1..NSIG as c_int).contains(&signum) || signum == libc::SIGKILL || signum == libc::SIGSTOP {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    if [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE].contains(&signum) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "greenrt::signal: {} is a synchronous fault signal; a handler that runs later in a \
                 greenlet cannot fix the faulting instruction",
                display(signum)
            ),
        ));
    }
    // SAFETY: returns glibc's first usable real-time signal; no preconditions.
    let rtmin = unsafe { libc::__libc_current_sigrtmin() };
    if signum > libc::SIGSYS && signum < rtmin {
        // Reserved by the C library for its threads (cancellation, setxid).
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(from_name("SIGUSR2"), Some(libc::SIGUSR2));
        assert_eq!(from_name("usr1"), Some(libc::SIGUSR1));
        assert_eq!(from_name(" 15 "), Some(libc::SIGTERM));
        assert_eq!(from_name("64"), Some(64));
        assert_eq!(from_name("65"), None);
        assert_eq!(from_name("0"), None);
        assert_eq!(from_name("SIGFOO"), None);
        assert_eq!(from_name(""), None);
        assert_eq!(name(libc::SIGCHLD), Some("SIGCHLD"));
        assert_eq!(display(40), "signal 40");
    }

    #[test]
    fn uncatchable_and_fault_signals_refused() {
        for s in [libc::SIGKILL, libc::SIGSTOP, 0, 65, -1, 32, 33] {
            assert_eq!(check_signum(s).unwrap_err().raw_os_error(), Some(libc::EINVAL), "{s}");
        }
        for s in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
            assert_eq!(check_signum(s).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{s}");
        }
        for s in [libc::SIGINT, libc::SIGCHLD, libc::SIGUSR2, 34, 64] {
            assert!(check_signum(s).is_ok(), "{s}");
        }
    }
}
