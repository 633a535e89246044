//! The `recupera` binary: parse, run, map the error to an exit code. The
//! exit-code table lives in `recupera::error::exit` and is applied only here.

use clap::FromArgMatches;
use clap::parser::ValueSource;
use recupera::cli::Cli;
use recupera::error::{Error, exit};
use recupera::usage;
use std::process::ExitCode;

/// Large blocks (argon2's 19 MiB) on huge pages: see `recupera::alloc`.
#[global_allocator]
static ALLOCATOR: recupera::alloc::HugePages = recupera::alloc::HugePages;

/// True when a global flag was typed on the command line, at any level.
fn on_argv(m: &clap::ArgMatches, id: &str) -> bool {
    if m.value_source(id) == Some(ValueSource::CommandLine) {
        return true;
    }
    m.subcommand().is_some_and(|(_, sub)| on_argv(sub, id))
}

fn is_broken_pipe(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// A clap error: help and version as clap prints them; usage errors in the
/// user's language, exit 2 (and a JSON document when `--json` was typed).
fn usage_error(e: &clap::Error, args: &[std::ffi::OsString]) -> ExitCode {
    let lang = usage::early_lang(args);
    let code = u8::try_from(e.exit_code()).unwrap_or(exit::USAGE);
    let Some(msg) = usage::message(e, lang) else {
        let _ = e.print();
        return ExitCode::from(code);
    };
    if args.iter().any(|a| a == "--json") {
        let doc = serde_json::json!({
            "status": "error",
            "error": "usage",
            "exit_code": exit::USAGE,
            "message": msg,
        });
        println!("{doc}");
    }
    eprintln!("recupera: {msg}");
    ExitCode::from(exit::USAGE)
}

/// Ctrl-C: show the cursor again (a prompt may have hidden it) and exit
/// 130. Nothing is half-written: every change is a SQLite transaction,
/// which an interrupted process never commits.
#[cfg(unix)]
mod interrupt {
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicBool, Ordering};

    static TTY: AtomicBool = AtomicBool::new(false);
    static SAVED: AtomicBool = AtomicBool::new(false);
    /// The terminal's settings at start, restored on Ctrl-C: a hidden
    /// password prompt turns echo off and would otherwise leave it off.
    static mut TERMIOS: std::mem::MaybeUninit<libc::termios> = std::mem::MaybeUninit::uninit();

    extern "C" fn on_sigint(_: libc::c_int) {
        // Only async-signal-safe calls here: tcsetattr(3), write(2), _exit(2).
        if SAVED.load(Ordering::Acquire) {
            // SAFETY: TERMIOS was fully written before SAVED was set, and is
            // never written again.
            unsafe {
                let t = std::ptr::addr_of!(TERMIOS).cast::<libc::termios>();
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
        if TTY.load(Ordering::Relaxed) {
            let seq = b"\x1b[?25h\n";
            // SAFETY: writing a static buffer to stderr.
            unsafe {
                libc::write(2, seq.as_ptr().cast(), seq.len());
            }
        }
        // SAFETY: terminates the process without running destructors.
        unsafe { libc::_exit(130) }
    }

    pub fn install() {
        if std::io::stdin().is_terminal() {
            // SAFETY: tcgetattr fills the struct; it is published to the
            // handler only after it succeeded, before the handler exists.
            unsafe {
                let t = std::ptr::addr_of_mut!(TERMIOS).cast::<libc::termios>();
                if libc::tcgetattr(0, t) == 0 {
                    SAVED.store(true, Ordering::Release);
                }
            }
        }
        TTY.store(std::io::stderr().is_terminal(), Ordering::Relaxed);
        let handler: extern "C" fn(libc::c_int) = on_sigint;
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        }
    }
}

fn main() -> ExitCode {
    // Everything this process creates (database, WAL, outbox files) is
    // private to its owner.
    #[cfg(unix)]
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    #[cfg(unix)]
    interrupt::install();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let lang = usage::early_lang(&args);
    let matches = match recupera::cli::command(lang).try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return usage_error(&e, &args),
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(exit::USAGE);
        }
    };
    cli.on_argv = recupera::app::OnArgv {
        db: on_argv(&matches, "db"),
        smtp_url: on_argv(&matches, "smtp_url"),
        lang: on_argv(&matches, "lang"),
        agent: on_argv(&matches, "agent"),
    };
    let json = cli.global.json;
    match recupera::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            if json {
                let mut doc = serde_json::json!({
                    "status": "error",
                    "error": e.kind(),
                    "exit_code": code,
                    "message": e.to_string(),
                });
                if let Error::Rows(_, rows) = &e {
                    doc["errors"] = serde_json::json!(rows);
                }
                println!("{doc}");
            }
            eprintln!("recupera: {e}");
            if let Error::Rows(_, rows) = &e {
                for r in rows {
                    eprintln!(
                        "{}",
                        recupera::i18n::tf(
                            recupera::i18n::M::ImportRowError,
                            &[
                                ("line", &r.line),
                                ("column", &r.column),
                                ("message", &r.message)
                            ],
                        )
                    );
                }
            }
            ExitCode::from(code)
        }
    }
}
