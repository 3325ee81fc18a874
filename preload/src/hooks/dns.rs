//! Hooks for name resolution: `getaddrinfo`, `gethostbyname` and
//! `gethostbyname_r` (DESIGN rule 11).
//!
//! Where the calling greenlet should cooperate (rule 1), `GREENRT_RESOLVER`
//! chooses how (as `GEVENT_RESOLVER` does for gevent):
//!
//! | `GREENRT_RESOLVER` | what a hooked lookup does |
//! |---|---|
//! | `thread` (default) | the **real** call runs on the hub's thread pool (`RuntimeV1::run_in_thread`); only the calling greenlet waits. Exact system semantics: nsswitch, /etc/hosts, glibc's resolv.conf handling, address sorting, and the memory `freeaddrinfo` frees. |
//! | `native` | `getaddrinfo` looks names up with greenrt's asynchronous resolver on the hub (/etc/hosts, then UDP/TCP DNS to the resolv.conf nameservers, like gevent's c-ares resolver); see below. `gethostbyname(_r)` use the thread pool. |
//! | `block` | the real call in the calling thread, which blocks (with the hook bypass on, so nothing inside it cooperates either). |
//!
//! # The thread pool
//!
//! The job calls the real function with the caller's own pointers (the
//! caller waits until the job has returned, even if it is killed
//! meanwhile, so they stay valid), and carries errno both ways: the worker
//! starts with the caller's errno and the caller ends with the worker's,
//! exactly as if the call had run in the calling thread (rule 7; glibc's
//! lookups leave errno changed even on success, and `EAI_SYSTEM` needs
//! it). The worker is one of the runtime's own threads, so the libc calls
//! inside the lookup never cooperate (rule 5).
//!
//! `gethostbyname` returns a pointer to storage that stays valid until the
//! next call: glibc keeps one static `hostent` for the process; here each
//! thread has its own (a `hostent` and a buffer that grows on `ERANGE`),
//! filled by the real `gethostbyname_r` on the pool. `h_errno` (per
//! thread) is set on failure as glibc does. While one greenlet waits for
//! that storage to be filled, another greenlet of the same thread calling
//! `gethostbyname` gets the real call (glibc's own storage), which blocks.
//!
//! If a greenlet waiting for its lookup is killed, the lookup still
//! completes (its result is returned; nothing leaks) and the kill stays
//! pending for the next blocking call.
//!
//! # The native resolver
//!
//! Only the copy of greenrt inside this library can run it (its hub is
//! the one serving the hooks only when no program copy of greenrt took
//! over; otherwise, and when the resolver's configuration cannot be read,
//! lookups use the thread pool). A `getaddrinfo` then goes:
//!
//! 1. The real `getaddrinfo` with `AI_NUMERICHOST` answers for a null
//!    node, an IP literal, and bad arguments (`EAI_SERVICE`,
//!    `EAI_SOCKTYPE`, `EAI_BADFLAGS`, ...), with glibc's exact result.
//! 2. Otherwise the name is looked up by greenrt's `NativeResolver` in a
//!    greenlet of its own on this hub, which the caller joins (so a kill
//!    of the caller is reported as `EAI_SYSTEM`/`EINTR` with the kill kept
//!    pending, and the lookup greenlet is killed too).
//! 3. Each address found (filtered by `ai_family`; with `AF_INET6` and
//!    `AI_V4MAPPED`, IPv4 addresses become IPv4-mapped ones when there is
//!    no IPv6 address, or always with `AI_ALL`) goes through the real
//!    `getaddrinfo` with `AI_NUMERICHOST` and the program's service and
//!    hints, and the lists are chained. Every node is glibc's own
//!    allocation, so the real `freeaddrinfo` frees the chain: no
//!    `freeaddrinfo` hook is needed. With `AI_CANONNAME`, the first node's
//!    `ai_canonname` is the canonical name the lookup found (allocated
//!    with `malloc`, as glibc's).
//!
//! Errors: a name that does not exist is `EAI_NONAME`, one with no address
//! `EAI_NODATA`; timeouts, SERVFAIL and unreachable servers are
//! `EAI_AGAIN`; other DNS failures `EAI_FAIL`. Addresses come back IPv4
//! first, then IPv6, each in the server's order (glibc sorts by RFC 3484
//! and gai.conf): as with gevent's c-ares resolver, the native resolver is
//! a different resolver, chosen on purpose.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::IpAddr;
use std::rc::Rc;

use greenrt::config::ResolverKind;
use libc::{addrinfo, hostent, size_t};

use crate::errno::{errno, set_errno};
use crate::hook;
use crate::real;
use crate::runtime::rt;

extern "C" {
    /// glibc's per-thread `h_errno`.
    fn __h_errno_location() -> *mut c_int;
}

/// How this process resolves (see the module docs).
fn resolver_kind() -> ResolverKind {
    greenrt::config::get().resolver
}

/// Runs `job` (which runs `f(arg)`) on the thread pool; `false` if the
/// pool could not run it (the caller then runs it here).
///
/// # Safety
/// `f(arg)` must be safe to call on another thread while the caller waits.
unsafe fn on_pool(f: unsafe extern "C" fn(*mut c_void), arg: *mut c_void) -> bool {
    // Parked: other greenlets run meanwhile, and their hooked calls must
    // cooperate too. run_in_thread returns only once `f` has returned;
    // `-EINTR` (killed meanwhile) still means it ran, and the kill stays
    // pending.
    // SAFETY: the caller's contract.
    let r = hook::unguarded(|| unsafe { (rt().run_in_thread)(f, arg) });
    r == 0 || r == -libc::EINTR
}

// ===== getaddrinfo =====

/// One `getaddrinfo` on the pool: the arguments, the result and errno.
struct GaiJob {
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
    ret: c_int,
    errno: c_int,
}

unsafe extern "C" fn gai_job(arg: *mut c_void) {
    // SAFETY: `arg` is the caller's GaiJob, alive until we return.
    let j = unsafe { &mut *(arg as *mut GaiJob) };
    set_errno(j.errno);
    // SAFETY: the program's own arguments.
    j.ret = unsafe { real::getaddrinfo(j.node, j.service, j.hints, j.res) };
    j.errno = errno();
}

/// `getaddrinfo` on the thread pool.
///
/// # Safety
/// The libc contract of `getaddrinfo`.
unsafe fn gai_thread(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let mut job = GaiJob {
        node,
        service,
        hints,
        res,
        ret: 0,
        errno: errno(),
    };
    // SAFETY: the job only uses the program's arguments, which outlive
    // the wait.
    if unsafe { on_pool(gai_job, &mut job as *mut GaiJob as *mut c_void) } {
        set_errno(job.errno);
        job.ret
    } else {
        // SAFETY: the program's own arguments.
        unsafe { real::getaddrinfo(node, service, hints, res) }
    }
}

/// The `getaddrinfo` hook.
///
/// # Safety
/// The libc contract of `getaddrinfo`.
pub unsafe fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::getaddrinfo(node, service, hints, res) };
    let coop = || match resolver_kind() {
        // The bypass is on here: nothing inside cooperates.
        ResolverKind::Block => real(),
        // SAFETY: forwarded libc contract.
        ResolverKind::Native => unsafe { gai_native(node, service, hints, res) }
            // SAFETY: forwarded libc contract.
            .unwrap_or_else(|| unsafe { gai_thread(node, service, hints, res) }),
        // SAFETY: forwarded libc contract.
        _ => unsafe { gai_thread(node, service, hints, res) },
    };
    hook::route("getaddrinfo", coop, real)
}

// ===== getaddrinfo with the native resolver =====

/// A native lookup shared by the caller and the greenlet doing it.
struct NativeLookup {
    name: String,
    result: RefCell<Option<std::io::Result<greenrt::dns::Lookup>>>,
}

/// The body of the lookup greenlet: `arg` is an `Rc<NativeLookup>` given
/// up by the caller with `Rc::into_raw`.
unsafe extern "C" fn native_lookup_body(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` came from Rc::into_raw of this type, once.
    let job = unsafe { Rc::from_raw(arg as *const NativeLookup) };
    // A kill unwinds the lookup (Rust frames only); it must not leave this
    // extern "C" function: the greenlet then just ends.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match greenrt::dns::resolver()? {
        greenrt::dns::Resolver::Native(r) => r.lookup(&job.name),
        _ => Err(std::io::Error::from(greenrt::dns::Error::NoNameservers)),
    }));
    if let Ok(r) = r {
        *job.result.borrow_mut() = Some(r);
    }
    std::ptr::null_mut()
}

/// `EAI_*` for a failed native lookup (errno set for `EAI_SYSTEM`).
fn gai_code(e: &std::io::Error) -> c_int {
    use greenrt::dns::Error as E;
    match E::from_io(e) {
        Some(E::NotFound { .. } | E::InvalidName { .. }) => libc::EAI_NONAME,
        Some(E::NoData { .. }) => libc::EAI_NODATA,
        Some(E::TimedOut { .. } | E::ServFail { .. } | E::Network { .. } | E::NoNameservers) => libc::EAI_AGAIN,
        Some(E::Gai { code, .. }) => *code,
        Some(_) => libc::EAI_FAIL,
        None => {
            set_errno(e.raw_os_error().unwrap_or(libc::EIO));
            libc::EAI_SYSTEM
        }
    }
}

/// Looks `name` up in a greenlet of its own and joins it: the caller's
/// kill or Timeout ends the wait (`Err(code)`), and the lookup greenlet is
/// killed then.
fn native_lookup(name: String) -> Result<std::io::Result<greenrt::dns::Lookup>, c_int> {
    let job = Rc::new(NativeLookup {
        name,
        result: RefCell::new(None),
    });
    let arg = Rc::into_raw(job.clone()) as *mut c_void;
    // SAFETY: runtime entry point; the body takes over `arg`.
    let id = unsafe { (rt().spawn)(native_lookup_body, arg, 0) };
    if id == 0 {
        // SAFETY: the greenlet was not created: take `arg` back.
        drop(unsafe { Rc::from_raw(arg as *const NativeLookup) });
        return Err(libc::EAI_MEMORY);
    }
    let mut out = std::ptr::null_mut();
    // SAFETY: runtime entry point; a local out-parameter.
    let r = hook::unguarded(|| unsafe { (rt().join)(id, -1, &mut out) });
    if r != 0 {
        // Killed (the kill stays pending) or timed out: the lookup
        // greenlet still holds its share of the job and frees it.
        // SAFETY: runtime entry point; do not wait.
        unsafe { (rt().kill)(id, 0) };
        return Err(if r == -libc::EINTR {
            set_errno(libc::EINTR);
            libc::EAI_SYSTEM
        } else {
            libc::EAI_AGAIN
        });
    }
    let result = job.result.borrow_mut().take();
    // No result: the lookup greenlet was killed by someone else.
    Ok(result.unwrap_or_else(|| Err(std::io::Error::from_raw_os_error(libc::EINTR))))
}

/// The addresses to hand to the real `getaddrinfo`, as text, for `hints`.
fn native_addresses(addrs: &[IpAddr], hints: Option<&addrinfo>) -> Vec<String> {
    let family = hints.map_or(libc::AF_UNSPEC, |h| h.ai_family);
    let flags = hints.map_or(0, |h| h.ai_flags);
    let v6: Vec<String> = addrs.iter().filter(|a| a.is_ipv6()).map(|a| a.to_string()).collect();
    let v4 = addrs.iter().filter_map(|a| match a {
        IpAddr::V4(v) => Some(*v),
        IpAddr::V6(_) => None,
    });
    match family {
        libc::AF_INET => v4.map(|a| a.to_string()).collect(),
        libc::AF_INET6 => {
            let mapped = flags & libc::AI_V4MAPPED != 0 && (v6.is_empty() || flags & libc::AI_ALL != 0);
            let mut out = v6;
            if mapped {
                out.extend(v4.map(|a| a.to_ipv6_mapped().to_string()));
            }
            out
        }
        _ => v4.map(|a| a.to_string()).chain(v6).collect(),
    }
}

/// `getaddrinfo` with the native resolver; `None` where it cannot serve
/// (not this library's runtime, no resolver configuration): the caller
/// uses the thread pool.
///
/// # Safety
/// The libc contract of `getaddrinfo`.
unsafe fn gai_native(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> Option<c_int> {
    // Only this library's own runtime runs greenrt::dns here; the
    // process-wide native resolver must have loaded its configuration.
    if !std::ptr::eq(rt(), &greenrt::abi::RUNTIME_V1)
        || !matches!(greenrt::dns::resolver(), Ok(greenrt::dns::Resolver::Native(_)))
    {
        return None;
    }
    // SAFETY: `hints` is null or valid, per the contract.
    let h: Option<addrinfo> = unsafe { hints.as_ref() }.copied();
    let numeric = |host: *const c_char, res: *mut *mut addrinfo| {
        // SAFETY: an all-zero addrinfo is valid hints.
        let mut nh: addrinfo = h.unwrap_or_else(|| unsafe { std::mem::zeroed() });
        if h.is_none() {
            // glibc's defaults for null hints.
            nh.ai_flags = libc::AI_V4MAPPED | libc::AI_ADDRCONFIG;
        }
        nh.ai_flags |= libc::AI_NUMERICHOST;
        // SAFETY: the program's service, local hints, a valid out-pointer.
        unsafe { real::getaddrinfo(host, service, &nh, res) }
    };
    let saved = errno();
    // 1. Null node, IP literal, or bad arguments: glibc's own answer.
    let r = numeric(node, res);
    if node.is_null() || r != libc::EAI_NONAME || h.is_some_and(|h| h.ai_flags & libc::AI_NUMERICHOST != 0) {
        return Some(r);
    }
    // SAFETY: a non-null node is a NUL-terminated string, per the contract.
    let Ok(name) = unsafe { CStr::from_ptr(node) }.to_str() else {
        return Some(libc::EAI_NONAME);
    };
    // 2. The lookup, in a greenlet of its own.
    let lookup = match native_lookup(name.to_owned()) {
        Err(code) => return Some(code),
        Ok(Err(e)) => return Some(gai_code(&e)),
        Ok(Ok(l)) => l,
    };
    // 3. One real numeric getaddrinfo per address, chained.
    let mut head: *mut addrinfo = std::ptr::null_mut();
    let mut tail: *mut addrinfo = std::ptr::null_mut();
    let mut last_err = libc::EAI_NONAME;
    for a in native_addresses(&lookup.addrs, h.as_ref()) {
        let Ok(c) = std::ffi::CString::new(a) else { continue };
        let mut part: *mut addrinfo = std::ptr::null_mut();
        match numeric(c.as_ptr(), &mut part) {
            0 if !part.is_null() => {
                if head.is_null() {
                    head = part;
                } else {
                    // SAFETY: `tail` is the last node of our chain.
                    unsafe { (*tail).ai_next = part };
                }
                tail = part;
                // SAFETY: walking a list glibc just built.
                while let Some(next) = unsafe { (*tail).ai_next.as_mut() } {
                    tail = next;
                }
            }
            0 => {}
            e => last_err = e,
        }
    }
    if head.is_null() {
        return Some(last_err);
    }
    if h.is_some_and(|h| h.ai_flags & libc::AI_CANONNAME != 0) {
        if let Ok(c) = std::ffi::CString::new(lookup.canonical_name) {
            // SAFETY: `head` is a glibc-allocated node; its canonname is
            // glibc's malloc'd string (or null), replaced by ours, which
            // freeaddrinfo frees with free() the same way.
            unsafe {
                let dup = libc::strdup(c.as_ptr());
                if !dup.is_null() {
                    libc::free((*head).ai_canonname as *mut c_void);
                    (*head).ai_canonname = dup;
                }
            }
        }
    }
    // SAFETY: the program's out-pointer.
    unsafe { *res = head };
    set_errno(saved);
    Some(0)
}

// ===== gethostbyname_r =====

/// One `gethostbyname_r` on the pool.
struct GhbnJob {
    name: *const c_char,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
    rc: c_int,
    errno: c_int,
}

unsafe extern "C" fn ghbn_job(arg: *mut c_void) {
    // SAFETY: `arg` is the caller's GhbnJob, alive until we return.
    let j = unsafe { &mut *(arg as *mut GhbnJob) };
    set_errno(j.errno);
    // SAFETY: the program's (or our per-thread) buffers.
    j.rc = unsafe { real::gethostbyname_r(j.name, j.ret, j.buf, j.buflen, j.result, j.h_errnop) };
    j.errno = errno();
}

/// `gethostbyname_r` on the thread pool (or here, if the pool cannot).
///
/// # Safety
/// The libc contract of `gethostbyname_r`.
unsafe fn ghbn_r_thread(
    name: *const c_char,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    let mut job = GhbnJob {
        name,
        ret,
        buf,
        buflen,
        result,
        h_errnop,
        rc: 0,
        errno: errno(),
    };
    // SAFETY: the job only uses the caller's arguments, which outlive the
    // wait.
    if unsafe { on_pool(ghbn_job, &mut job as *mut GhbnJob as *mut c_void) } {
        set_errno(job.errno);
        job.rc
    } else {
        // SAFETY: the caller's own arguments.
        unsafe { real::gethostbyname_r(name, ret, buf, buflen, result, h_errnop) }
    }
}

/// The `gethostbyname_r` hook.
///
/// # Safety
/// The libc contract of `gethostbyname_r`.
pub unsafe fn gethostbyname_r(
    name: *const c_char,
    ret: *mut hostent,
    buf: *mut c_char,
    buflen: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: (both closures) the program's own arguments.
    let real = || unsafe { real::gethostbyname_r(name, ret, buf, buflen, result, h_errnop) };
    let coop = || match resolver_kind() {
        ResolverKind::Block => real(),
        // SAFETY: forwarded libc contract.
        _ => unsafe { ghbn_r_thread(name, ret, buf, buflen, result, h_errnop) },
    };
    hook::route("gethostbyname_r", coop, real)
}

// ===== gethostbyname =====

/// A thread's `gethostbyname` result: what the returned pointer points
/// into, valid until that thread's next call.
struct HostStorage {
    ent: hostent,
    buf: Vec<u8>,
}

thread_local! {
    static HOST: RefCell<Option<Box<HostStorage>>> = const { RefCell::new(None) };
}

/// `gethostbyname` through the real `gethostbyname_r` into this thread's
/// storage, on the pool unless `block`.
///
/// # Safety
/// `name` is a NUL-terminated string.
unsafe fn ghbn_coop(name: *const c_char, on_the_pool: bool) -> Option<*mut hostent> {
    HOST.try_with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        let st = slot.get_or_insert_with(|| {
            Box::new(HostStorage {
                // SAFETY: an all-zero hostent is a valid (empty) value.
                ent: unsafe { std::mem::zeroed() },
                buf: vec![0; 1024],
            })
        });
        let mut result: *mut hostent = std::ptr::null_mut();
        let mut herr: c_int = 0;
        loop {
            let (ent, buf, len) = (
                &mut st.ent as *mut hostent,
                st.buf.as_mut_ptr() as *mut c_char,
                st.buf.len(),
            );
            // SAFETY: our own storage, which outlives the call.
            let rc = unsafe {
                if on_the_pool {
                    ghbn_r_thread(name, ent, buf, len, &mut result, &mut herr)
                } else {
                    real::gethostbyname_r(name, ent, buf, len, &mut result, &mut herr)
                }
            };
            if rc == libc::ERANGE && st.buf.len() < (1 << 24) {
                let n = st.buf.len() * 2;
                st.buf.resize(n, 0);
                continue;
            }
            break;
        }
        if result.is_null() {
            // SAFETY: glibc's per-thread h_errno.
            unsafe { *__h_errno_location() = herr };
        }
        Some(result)
    })
    .ok()
    .flatten()
}

/// The `gethostbyname` hook.
///
/// # Safety
/// The libc contract of `gethostbyname`.
pub unsafe fn gethostbyname(name: *const c_char) -> *mut hostent {
    // SAFETY: (both closures) the program's own argument.
    let real = || unsafe { real::gethostbyname(name) };
    if name.is_null() {
        return real();
    }
    let coop = || {
        if resolver_kind() == ResolverKind::Block {
            return real();
        }
        // SAFETY: a non-null, NUL-terminated name, per the contract.
        unsafe { ghbn_coop(name, true) }.unwrap_or_else(real)
    };
    hook::route("gethostbyname", coop, real)
}

crate::hook::forward_hooks! {
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int => greenrt_getaddrinfo calls super::getaddrinfo;
    fn gethostbyname_r(name: *const c_char, ret: *mut hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int => greenrt_gethostbyname_r calls super::gethostbyname_r;
    fn gethostbyname(name: *const c_char) -> *mut hostent => greenrt_gethostbyname calls super::gethostbyname;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(family: c_int, flags: c_int) -> addrinfo {
        // SAFETY: an all-zero addrinfo is valid.
        let mut h: addrinfo = unsafe { std::mem::zeroed() };
        h.ai_family = family;
        h.ai_flags = flags;
        h
    }

    #[test]
    fn addresses_follow_the_family() {
        let addrs: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fe80::1".parse().unwrap()];
        assert_eq!(native_addresses(&addrs, None), vec!["10.0.0.1", "fe80::1"]);
        assert_eq!(
            native_addresses(&addrs, Some(&hints(libc::AF_INET, 0))),
            vec!["10.0.0.1"]
        );
        assert_eq!(
            native_addresses(&addrs, Some(&hints(libc::AF_INET6, 0))),
            vec!["fe80::1"]
        );
        assert_eq!(
            native_addresses(&addrs, Some(&hints(libc::AF_INET6, libc::AI_V4MAPPED | libc::AI_ALL))),
            vec!["fe80::1", "::ffff:10.0.0.1"]
        );
        let v4only: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        assert_eq!(
            native_addresses(&v4only, Some(&hints(libc::AF_INET6, libc::AI_V4MAPPED))),
            vec!["::ffff:10.0.0.1"]
        );
        assert!(native_addresses(&v4only, Some(&hints(libc::AF_INET6, 0))).is_empty());
    }

    #[test]
    fn errors_map_to_eai_codes() {
        let e: std::io::Error = greenrt::dns::Error::NotFound { name: "x".into() }.into();
        assert_eq!(gai_code(&e), libc::EAI_NONAME);
        let e: std::io::Error = greenrt::dns::Error::NoData { name: "x".into() }.into();
        assert_eq!(gai_code(&e), libc::EAI_NODATA);
        let e: std::io::Error = greenrt::dns::Error::NoNameservers.into();
        assert_eq!(gai_code(&e), libc::EAI_AGAIN);
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(gai_code(&e), libc::EAI_SYSTEM);
        assert_eq!(errno(), libc::EMFILE);
    }
}
