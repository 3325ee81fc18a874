//! The program's memory, read and written the way the kernel does: where
//! the kernel would answer a bad pointer with `EFAULT`, so do these, and
//! a hook never faults on memory the program passed (the kernel validates
//! what it copies; a plain dereference in a hook would crash the program
//! with SIGSEGV instead).
//!
//! `process_vm_readv`/`process_vm_writev` on our own process: one syscall,
//! used on the paths that are about to park anyway. Where they are not
//! available (a seccomp filter, an old kernel: `ENOSYS`/`EPERM`), the
//! answer is that error, and the hook makes the real call, which
//! validates the memory itself.

use std::ffi::c_void;
use std::mem::{size_of, MaybeUninit};

use crate::errno::errno;

/// Copies `len` bytes between our own buffer and the program's memory
/// (`write`: to the program's), all or nothing.
fn transfer(local: *mut c_void, program: *mut c_void, len: usize, write: bool) -> Result<(), i32> {
    if len == 0 {
        return Ok(());
    }
    let l = libc::iovec {
        iov_base: local,
        iov_len: len,
    };
    let p = libc::iovec {
        iov_base: program,
        iov_len: len,
    };
    let call = if write {
        libc::SYS_process_vm_writev
    } else {
        libc::SYS_process_vm_readv
    };
    // Every variadic argument is passed full width: the kernel reads 64 bits.
    // SAFETY: our own pid and two one-entry iovec arrays; the kernel
    // validates the program's range (EFAULT) and copies into or out of our
    // own `local`, which the callers size to `len`.
    let n = unsafe {
        libc::syscall(
            call,
            libc::getpid() as libc::c_long,
            &l as *const libc::iovec,
            1 as libc::c_ulong,
            &p as *const libc::iovec,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    match n {
        n if n == len as i64 => Ok(()),
        n if n >= 0 => Err(libc::EFAULT), // a partial copy: the rest is unmapped
        _ => Err(errno()),
    }
}

/// A copy of the `T` at `p` in the program's memory; `Err(EFAULT)` where
/// the kernel would say so (or the error that kept us from asking).
pub(crate) fn read<T: Copy>(p: *const T) -> Result<T, i32> {
    let mut v = MaybeUninit::<T>::uninit();
    transfer(v.as_mut_ptr().cast(), p as *mut c_void, size_of::<T>(), false)?;
    // SAFETY: the kernel filled all `size_of::<T>()` bytes, and the `T`s
    // read here (timespec, timeval, fd_set words, sigset_t) are plain old
    // data, valid for any bytes.
    Ok(unsafe { v.assume_init() })
}

/// Fills `dst` from the program's memory at `p`.
pub(crate) fn read_into<T: Copy>(p: *const T, dst: &mut [T]) -> Result<(), i32> {
    transfer(
        dst.as_mut_ptr().cast(),
        p as *mut c_void,
        std::mem::size_of_val(dst),
        false,
    )
}

/// Writes `v` to the program's memory at `p`.
pub(crate) fn write<T: Copy>(p: *mut T, v: &T) -> Result<(), i32> {
    transfer(v as *const T as *mut c_void, p.cast(), size_of::<T>(), true)
}

/// Writes `src` to the program's memory at `p`.
pub(crate) fn write_from<T: Copy>(p: *mut T, src: &[T]) -> Result<(), i32> {
    transfer(src.as_ptr() as *mut c_void, p.cast(), std::mem::size_of_val(src), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_pointers() {
        let x: u64 = 0x1234_5678;
        assert_eq!(read(&x), Ok(0x1234_5678));
        assert_eq!(read(8 as *const u64), Err(libc::EFAULT));
        let mut y: u64 = 0;
        assert_eq!(write(&mut y, &7), Ok(()));
        assert_eq!(y, 7);
        assert_eq!(write(8 as *mut u64, &7), Err(libc::EFAULT));
        let words = [1u64, 2, 3];
        let mut back = [0u64; 3];
        assert_eq!(read_into(words.as_ptr(), &mut back), Ok(()));
        assert_eq!(back, words);
        // A read that runs into an inaccessible page is EFAULT, not partial.
        // SAFETY: an anonymous mapping of two pages, the second made
        // inaccessible, unmapped below.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED);
        // SAFETY: the second page of our own mapping.
        let r = unsafe { libc::mprotect((page as *mut u8).add(4096).cast(), 4096, libc::PROT_NONE) };
        assert_eq!(r, 0);
        // SAFETY: 4 bytes before the end of the first page.
        let near_end = unsafe { (page as *const u8).add(4092) } as *const u64;
        assert_eq!(read(near_end), Err(libc::EFAULT));
        // SAFETY: our own mapping.
        unsafe { libc::munmap(page, 8192) };
    }
}
