//! The preload's configuration: `GREENRT_HOOKS`.
//!
//! | variable | values | default |
//! |---|---|---|
//! | `GREENRT_HOOKS` | `auto` (cooperate only where another greenlet could run), `always` (route every hooked call through the cooperative path), `off` (pass everything through) | `auto` |
//!
//! The runtime's own variables (`GREENRT_BACKEND`, ...) are read by greenrt
//! itself. A bad value is reported on stderr, naming the variable and the
//! accepted values, and the process exits with status 2: a program must not
//! quietly run with settings other than the ones asked for.

use std::sync::atomic::{AtomicU8, Ordering};

/// How hooked calls are routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hooks {
    /// Cooperate only where another greenlet could run (DESIGN rule 1).
    Auto,
    /// Route every hooked call through the cooperative path.
    Always,
    /// Pass every call straight to libc.
    Off,
}

static HOOKS: AtomicU8 = AtomicU8::new(0);

/// Parses a `GREENRT_HOOKS` value.
pub fn parse_hooks(v: &str) -> Result<Hooks, String> {
    match v {
        "auto" => Ok(Hooks::Auto),
        "always" => Ok(Hooks::Always),
        "off" => Ok(Hooks::Off),
        _ => Err(format!(
            "greenrt: invalid GREENRT_HOOKS={v:?}; accepted values: auto, always, off"
        )),
    }
}

/// Reads the environment once, at load time.
pub(crate) fn init() {
    if !crate::runtime::is_primary_copy() {
        // A second copy of the library: the first one hooks (see
        // `runtime::is_primary_copy`); this one passes everything through.
        HOOKS.store(Hooks::Off as u8 + 1, Ordering::Relaxed);
        return;
    }
    let mode = match std::env::var("GREENRT_HOOKS") {
        Err(_) => Hooks::Auto,
        Ok(v) => match parse_hooks(&v) {
            Ok(m) => m,
            Err(msg) => {
                crate::errno::write_stderr(msg.as_bytes());
                crate::errno::write_stderr(b"\n");
                // SAFETY: terminating the process at load time, before main.
                unsafe { libc::_exit(2) };
            }
        },
    };
    HOOKS.store(mode as u8 + 1, Ordering::Relaxed);
    if std::env::var_os("GREENRT_LOG").is_some_and(|v| v == "debug") {
        let mode = match mode {
            Hooks::Auto => "auto",
            Hooks::Always => "always",
            Hooks::Off => "off",
        };
        let msg = format!(
            "greenrt: preload {} loaded in pid {} (GREENRT_HOOKS={mode}); a thread's hub starts at its first cooperative call\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        );
        crate::errno::write_stderr(msg.as_bytes());
    }
}

/// The routing mode (`Auto` until `init` ran).
#[inline]
pub fn hooks() -> Hooks {
    match HOOKS.load(Ordering::Relaxed) {
        2 => Hooks::Always,
        3 => Hooks::Off,
        _ => Hooks::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_values() {
        assert_eq!(parse_hooks("auto"), Ok(Hooks::Auto));
        assert_eq!(parse_hooks("always"), Ok(Hooks::Always));
        assert_eq!(parse_hooks("off"), Ok(Hooks::Off));
        assert_eq!(
            parse_hooks("sometimes").unwrap_err(),
            "greenrt: invalid GREENRT_HOOKS=\"sometimes\"; accepted values: auto, always, off"
        );
    }
}
