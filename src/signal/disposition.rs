//! A signal's disposition, saved and restored bit for bit.
//!
//! Saving and restoring a disposition bit for bit. The C library's
//! `sigaction` adds its SA_RESTORER flag to every disposition it
//! installs, even `SIG_DFL`, so a disposition saved and put back through
//! it would differ from the original in that flag; the kernel's
//! `rt_sigaction` gives back exactly what was there.

pub(crate) use imp::{get, set, Disposition};

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod imp {
    use std::io;

    /// The kernel's `struct sigaction` on x86_64 and aarch64.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub(crate) struct Disposition {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }

    fn rt_sigaction(sig: libc::c_int, new: *const Disposition, old: *mut Disposition) -> io::Result<()> {
        // SAFETY: rt_sigaction with pointers that are null or point at a
        // valid `Disposition`, whose layout matches the kernel's struct on
        // this architecture, and the kernel's sigset size (8 bytes).
        let r = unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, new, old, 8usize) };
        if r == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub(crate) fn get(sig: libc::c_int) -> io::Result<Disposition> {
        let mut d = Disposition {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        rt_sigaction(sig, std::ptr::null(), &mut d)?;
        Ok(d)
    }

    pub(crate) fn set(sig: libc::c_int, d: &Disposition) -> io::Result<()> {
        rt_sigaction(sig, d, std::ptr::null_mut())
    }
}

/// Elsewhere, through the C library (its SA_RESTORER bit may be added).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod imp {
    use std::io;

    pub(crate) type Disposition = libc::sigaction;

    pub(crate) fn get(sig: libc::c_int) -> io::Result<Disposition> {
        // SAFETY: all-zero is a valid out-parameter.
        let mut d: Disposition = unsafe { std::mem::zeroed() };
        crate::sys::syscall!(sigaction(sig, std::ptr::null(), &mut d))?;
        Ok(d)
    }

    pub(crate) fn set(sig: libc::c_int, d: &Disposition) -> io::Result<()> {
        crate::sys::syscall!(sigaction(sig, d, std::ptr::null_mut())).map(|_| ())
    }
}
