//! The hook families: one file per family of libc calls, each built only
//! on the machinery below it (`coop`, `wait`, `hook`, `fdtable`, `real`,
//! `runtime`, `config`, `errno`) and never on another family.
//!
//! | family | calls |
//! |---|---|
//! | [`io`] | read, write, readv, writev, pipe, fcntl, ioctl |
//! | [`fds`] | close, close_range, closefrom, dup, dup2, dup3 |
//! | [`net`] | socket, accept*, connect, recv*, send*, setsockopt |
//! | [`poll`] | poll, ppoll, select, pselect, epoll_wait, epoll_pwait |
//! | [`time`] | sleep, usleep, nanosleep, clock_nanosleep |
//! | [`dns`] | getaddrinfo, gethostbyname, gethostbyname_r |
//! | [`process`] | wait, waitpid, wait4 |
//! | [`signal`] | sigaction, signal, bsd_signal, sysv_signal, sigset |
//! | [`vfork`] | vfork |

pub mod dns;
pub mod fds;
pub mod io;
pub mod net;
pub mod poll;
pub mod process;
pub mod signal;
pub mod time;
pub mod vfork;
