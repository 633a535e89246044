//! Links GCC's unwinder statically on Linux with glibc.
//!
//! Rust's standard library asks the linker for `-lgcc_s`, so every
//! `recupera` process loads `libgcc_s.so.1` at start-up only to have the
//! unwinder (used here for backtraces: the release build aborts on panic).
//! Loading it costs the dynamic loader a fourth library to map and
//! relocate, and its constructor probes the CPU with `CPUID`, which traps
//! to the hypervisor on a virtual machine: ~5% of a `recupera --version`
//! (BENCHMARKS.md, item 14). Rust has no switch for `-static-libgcc` on
//! this target, so the linker is given, ahead of the system's, a
//! `libgcc_s.so` that is a one-line linker script naming GCC's static
//! unwinder, `libgcc_eh.a`: what `-static-libgcc` links. When the C
//! compiler does not know `libgcc_eh.a` (another toolchain), nothing is
//! changed and the binary loads `libgcc_s.so.1` as before.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |key: &str| std::env::var(key).unwrap_or_default();
    println!("cargo:rerun-if-env-changed=CC");
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    // A cross build: the host's C compiler would name the host's file.
    if var("TARGET") != var("HOST") {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let found = std::process::Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    // GCC prints the bare name back when it has no such file.
    let Some(eh) = found.filter(|p| p.is_absolute() && p.is_file()) else {
        println!("cargo:warning=libgcc_eh.a not found: linking libgcc_s.so.1 dynamically");
        return;
    };
    let Some(dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let script = format!("INPUT(\"{}\")\n", eh.display());
    if std::fs::write(dir.join("libgcc_s.so"), script).is_ok() {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
}
