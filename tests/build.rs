//! The build's own scripts. `scripts/cc` is the linker cargo runs on Linux
//! (`.cargo/config.toml`): the system's `cc`, then the linked file written
//! out once more in large writes (BENCHMARKS.md, item 22). Here it runs
//! against a stand-in `cc` first on the `PATH`, so what it does to the
//! file can be checked byte for byte, and then links a real program.
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cc")
}

/// A stand-in `cc` that writes `$FAKE_BYTES` (a file's contents) to the
/// path after `-o`, with mode 0750, and exits `$FAKE_STATUS`.
fn fake_cc(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let cc = bin.join("cc");
    std::fs::write(
        &cc,
        "#!/bin/sh\n\
         out=\n\
         prev=\n\
         for a in \"$@\"; do [ \"$prev\" = -o ] && out=$a; prev=$a; done\n\
         if [ -n \"$out\" ]; then cat \"$FAKE_BYTES\" >\"$out\"; chmod 750 \"$out\"; fi\n\
         echo \"$@\" >\"$FAKE_ARGS\"\n\
         exit \"${FAKE_STATUS:-0}\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn run(dir: &Path, args: &[&str], status: i32) -> Output {
    let path = format!(
        "{}:{}",
        fake_cc(dir).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(script())
        .args(args)
        .env("PATH", path)
        .env("FAKE_BYTES", dir.join("bytes"))
        .env("FAKE_ARGS", dir.join("args"))
        .env("FAKE_STATUS", status.to_string())
        .output()
        .unwrap()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".relink."))
        .collect()
}

#[test]
fn the_linker_script_passes_every_argument_and_rewrites_the_same_bytes_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    // Every byte value, and more than one large write's worth.
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("bytes"), &bytes).unwrap();
    let out = dir.path().join("deps").join("recupera-0123");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let out_s = out.to_str().unwrap();
    let r = run(
        dir.path(),
        &[
            "-m64",
            "a.o",
            "-o",
            out_s,
            "-Wl,--as-needed",
            "-nodefaultlibs",
        ],
        0,
    );
    assert!(r.status.success(), "{r:?}");
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o750);
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(
        args.trim_end(),
        format!("-m64 a.o -o {out_s} -Wl,--as-needed -nodefaultlibs")
    );
    assert!(leftovers(out.parent().unwrap()).is_empty());
    // A new file, not the linker's rewritten in place: renamed over it.
    let before = std::fs::metadata(&out).unwrap();
    let r = run(dir.path(), &["-o", out_s], 0);
    assert!(r.status.success());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert_ne!(std::fs::metadata(&out).unwrap().ino(), before.ino());
}

#[test]
fn a_failed_link_is_the_linker_status_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bytes"), b"half").unwrap();
    let out = dir.path().join("prog");
    let r = run(dir.path(), &["-o", out.to_str().unwrap()], 3);
    assert_eq!(r.status.code(), Some(3));
    assert!(leftovers(dir.path()).is_empty());
    // No `-o` (the compiler asked for its version): nothing to rewrite.
    let r = run(dir.path(), &["--version"], 0);
    assert!(r.status.success(), "{r:?}");
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn the_linker_script_links_a_real_program_with_the_system_cc() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("hola.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(void) { puts(\"hola\"); return 0; }\n",
    )
    .unwrap();
    let prog = dir.path().join("hola");
    let r = Command::new(script())
        .arg(&src)
        .arg("-o")
        .arg(&prog)
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    let run = Command::new(&prog).output().unwrap();
    assert!(run.status.success());
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hola\n");
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn cargo_is_told_to_link_with_the_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(root.join(".cargo/config.toml")).unwrap();
    assert!(config.contains("[target.x86_64-unknown-linux-gnu]\nlinker = \"scripts/cc\""));
    let mode = std::fs::metadata(script()).unwrap().permissions().mode();
    assert_ne!(mode & 0o111, 0, "scripts/cc must be executable");
}
