//! Builds shim.c (the variadic fcntl/fcntl64/ioctl hooks) and exports its
//! symbols from the cdylib.

fn main() {
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=shim.map");
    cc::Build::new()
        .file("shim.c")
        .flag_if_supported("-fno-stack-protector")
        .warnings(true)
        .compile("greenrt_shim");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // Nothing in Rust references the shim's symbols: keep them, and export
    // them (rustc's version script lists only Rust symbols; ld merges ours).
    for sym in ["fcntl", "fcntl64", "ioctl"] {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--undefined={sym}");
    }
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/shim.map");
}
