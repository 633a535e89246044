//! The `recupera` binary: parse, run, map the error to an exit code. The
//! exit-code table lives in `recupera::error::exit` and is applied only here.

#![no_main]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable
)]

use clap::FromArgMatches;
use recupera::cli::{Cli, typed};
use recupera::error::{Error, exit};
use recupera::usage;
use std::io::Write;

/// A line on stdout; a closed or full stdout loses it (never a panic).
fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}").and_then(|()| o.flush());
}

/// A line on stderr, foreign text in it made visible (our messages may
/// span lines; nothing else may move the cursor or reorder text).
fn err(line: &str) {
    let shown: String = line
        .split('\n')
        .map(recupera::i18n::visible)
        .collect::<Vec<_>>()
        .join("\n");
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{shown}");
}

/// A clap error: help and version as clap prints them; usage errors in the
/// user's language, exit 2 (and a JSON document when `--json` was typed).
fn usage_error(e: &clap::Error, args: &[std::ffi::OsString]) -> u8 {
    let lang = usage::early_lang(args);
    // A bad RECUPERA_* variable is configuration (78), named as such.
    if let Some(msg) = usage::env_problem(e, args, lang) {
        return report(&Error::Config(msg), usage::json_typed(args));
    }
    let code = u8::try_from(e.exit_code()).unwrap_or(exit::USAGE);
    let Some(msg) = usage::message(e, lang) else {
        // Help (and clap's own texts) as printed: one that could not be
        // written is not a success.
        let written = e.print().and_then(|()| std::io::stdout().flush());
        return written_or_failed(written, code);
    };
    if usage::json_typed(args) {
        let doc = serde_json::json!({
            "status": "error",
            "error": "usage",
            "exit_code": exit::USAGE,
            "message": msg,
        });
        out(&doc.to_string());
    }
    err(&format!("recupera: {msg}"));
    exit::USAGE
}

/// Ctrl-C, SIGTERM, SIGHUP: the terminal's settings back (a hidden prompt
/// turns echo off), the cursor shown again, and the process ends: 130 for
/// Ctrl-C (143 and 129 for the others), or 0 when the command's result was
/// already shown (Ctrl-C at "¿Iniciar sesión ahora?" after the password
/// changed). Before that, it says "Cancelado." on stderr and, with
/// `--json`, prints the `interrupted` error document on stdout. Nothing is
/// half-written: every change is a transaction, which an interrupted
/// process never commits.
#[cfg(unix)]
mod interrupt {
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicBool, Ordering};

    static TTY: AtomicBool = AtomicBool::new(false);
    static SAVED: AtomicBool = AtomicBool::new(false);
    /// What the handler writes when no result was shown: the message for
    /// stderr, and with `--json` the error document for stdout, one for
    /// each signal (SIGINT, SIGTERM, SIGHUP). Made before the handler can
    /// read them; read only through `OnceLock::get` (no lock taken).
    static REPORT: std::sync::OnceLock<Report> = std::sync::OnceLock::new();

    struct Report {
        stderr: Vec<u8>,
        json: Option<[(libc::c_int, Vec<u8>); 3]>,
    }

    /// Once the command line is read: what an interruption says, in the
    /// user's language, as a JSON document too with `--json` (README's
    /// `interrupted` error kind).
    pub fn set_report(lang: recupera::i18n::Lang, json: bool) {
        let msg = recupera::i18n::M::Interrupted.text(lang);
        let doc = |sig: libc::c_int| {
            let mut d = serde_json::json!({
                "status": "error",
                "error": "interrupted",
                "exit_code": 128 + sig,
                "message": msg,
            })
            .to_string()
            .into_bytes();
            d.push(b'\n');
            (sig, d)
        };
        let _ = REPORT.set(Report {
            stderr: format!("recupera: {msg}\n").into_bytes(),
            json: json.then(|| [doc(libc::SIGINT), doc(libc::SIGTERM), doc(libc::SIGHUP)]),
        });
    }
    /// The terminal's settings at start, restored on Ctrl-C: a hidden
    /// password prompt turns echo off and would otherwise leave it off.
    static mut TERMIOS: std::mem::MaybeUninit<libc::termios> = std::mem::MaybeUninit::uninit();

    extern "C" fn on_signal(sig: libc::c_int) {
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
        let shown = recupera::ui::RESULT_SHOWN.load(Ordering::SeqCst);
        if !shown && let Some(r) = REPORT.get() {
            // SAFETY: writing buffers made before the handler could run,
            // never changed since.
            unsafe {
                libc::write(2, r.stderr.as_ptr().cast(), r.stderr.len());
                if let Some(docs) = &r.json
                    && let Some((_, d)) = docs.iter().find(|(s, _)| *s == sig)
                {
                    // Inside a listing under way: not on stdout but as
                    // stderr's last line (an atomic load is
                    // async-signal-safe).
                    let fd = if recupera::ui::STDOUT_STREAMING.load(Ordering::SeqCst) {
                        2
                    } else {
                        1
                    };
                    libc::write(fd, d.as_ptr().cast(), d.len());
                }
            }
        }
        let code = if shown { 0 } else { 128 + sig };
        // SAFETY: terminates the process without running destructors.
        unsafe { libc::_exit(code) }
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
        let handler: extern "C" fn(libc::c_int) = on_signal;
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: installs a handler that only calls async-signal-safe
            // functions (atomics, tcsetattr, write, _exit).
            unsafe {
                libc::signal(sig, handler as libc::sighandler_t);
            }
        }
    }
}

/// A panic is a bug: whatever thread it happens on, say so and exit 70
/// (never 101, never an abort's 134), without unwinding into a half-done
/// state. Transactions not committed are rolled back by the database.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = recupera::i18n::tf(recupera::i18n::M::InternalPanic, &[("err", &info)]);
        err(&format!("recupera: {msg}"));
        // SAFETY: terminates the process at once; nothing here needs
        // destructors (the database rolls back what was not committed).
        unsafe { libc::_exit(i32::from(exit::SOFTWARE)) }
    }));
}

/// Before anything else: a command that will hash gets argon2's memory
/// faulted in on the other core while this one parses, opens the database
/// and reads the password (a guess from the words typed; a wrong guess
/// only costs a mapping).
fn prepare_hash_memory(args: &[std::ffi::OsString]) {
    let has = |w: &str| args.iter().any(|a| a == w);
    let hashes =
        has("login") || has("request") || has("confirm") || (has("add") && !has("--no-password"));
    if hashes && !has("--help") && !has("-h") {
        recupera::argon2mem::prefault(recupera::domain::hash::Hasher::new(None).blocks(), 1);
    }
}

/// The process's entry point, without the standard library's run-time
/// start-up (BENCHMARKS.md, M5). Of what that start-up does, this keeps
/// what a tool that opens files needs: standard descriptors that were
/// closed are opened on `/dev/null` (or the database could become fd 1
/// and receive the output), `SIGPIPE` ignored (a closed pipe is an error
/// to handle, not a silent death), stdout flushed at the end. It drops the
/// stack-overflow handler, whose set-up (reading `/proc/self/maps`, an
/// alternate signal stack and its removal at exit) took ~0.3 ms of a
/// 1.9 ms `user show`: a stack overflow still ends the process, on the
/// guard page's SIGSEGV, without the handler's one-line message.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    #[cfg(unix)]
    process_setup();
    let code = run();
    let _ = std::io::stdout().flush();
    libc::c_int::from(code)
}

/// Standard descriptors 0–2 open (on `/dev/null` when they were closed)
/// and `SIGPIPE` ignored, as the standard library's start-up does them;
/// the process aborts when a closed one cannot be reopened, as std's does.
#[cfg(unix)]
fn process_setup() {
    // SAFETY: poll(2) on a local array, open(2) of a constant path, and
    // signal(2) with SIG_IGN: no memory is shared with anything.
    unsafe {
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        let reopen = || {
            if libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) == -1 {
                libc::abort();
            }
        };
        loop {
            if libc::poll(fds.as_mut_ptr(), 3, 0) != -1 {
                for p in fds {
                    if p.revents & libc::POLLNVAL != 0 {
                        reopen();
                    }
                }
                break;
            }
            match std::io::Error::last_os_error().raw_os_error().unwrap_or(0) {
                libc::EINTR => continue,
                // poll refused (descriptor limit, memory): ask each one.
                libc::EINVAL | libc::EAGAIN | libc::ENOMEM => {
                    for fd in 0..3 {
                        if libc::fcntl(fd, libc::F_GETFD) == -1
                            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
                        {
                            reopen();
                        }
                    }
                    break;
                }
                _ => libc::abort(),
            }
        }
        if libc::signal(libc::SIGPIPE, libc::SIG_IGN) == libc::SIG_ERR {
            libc::abort();
        }
    }
}

fn run() -> u8 {
    install_panic_hook();
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
    prepare_hash_memory(&args);
    let lang = usage::early_lang(&args);
    // Parse with a bare tree of the one command the line names, the global
    // options moved to the front; only a help screen, the version or an
    // error needs the texts, and gets them from the full tree, which reads
    // the line as typed.
    let matches = match recupera::cli::parse_hoisted(&args) {
        Some(Ok(m)) => m,
        // The version needs no text of ours.
        Some(Err(e)) if e.kind() == clap::error::ErrorKind::DisplayVersion => {
            let mut o = std::io::stdout().lock();
            let written =
                writeln!(o, "{}", e.render().to_string().trim_end()).and_then(|()| o.flush());
            drop(o);
            return written_or_failed(written, exit::OK);
        }
        _ => match recupera::cli::command(lang).try_get_matches_from(&args) {
            Ok(m) => m,
            Err(e) => return usage_error(&e, &args),
        },
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return usage_error(&e, &args),
    };
    cli.on_argv = recupera::app::OnArgv {
        db: typed(&matches, "db"),
        smtp_url: typed(&matches, "smtp_url"),
        lang: typed(&matches, "lang"),
        agent: typed(&matches, "agent"),
    };
    let json = cli.global.json;
    #[cfg(unix)]
    interrupt::set_report(lang, json);
    match recupera::run(cli) {
        Ok(()) => exit::OK,
        Err(e) => report(&e, json),
    }
}

/// The exit code of a text written to stdout for its own sake (help, the
/// version): `code` once it is out; a full disk or a failing device is an
/// I/O error (74, said on stderr) so a script does not take an empty file
/// for the text; a closed pipe (`recupera --help | head -1`) is not.
fn written_or_failed(written: std::io::Result<()>, code: u8) -> u8 {
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => report(&Error::Io(e), false),
        _ => code,
    }
}

/// Says what went wrong (one JSON document too with `--json`) and picks
/// the exit code. Output that cannot be written is not a new failure: a
/// closed pipe ends quietly with the action's own code, and work already
/// committed is never reported as failed without saying it was saved.
fn report(e: &Error, json: bool) -> u8 {
    if let Error::Io(io) = e {
        let saved = recupera::store::committed();
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return exit::OK;
        }
        if saved {
            err(&recupera::i18n::tf(
                recupera::i18n::M::SavedButNoOutput,
                &[("err", &recupera::i18n::os_error(io))],
            ));
            return exit::DB;
        }
    }
    let code = e.exit_code();
    let mut late_doc = None;
    if json {
        let mut doc = serde_json::json!({
            "status": "error",
            "error": e.kind(),
            "exit_code": code,
            "message": e.to_string(),
        });
        if let Error::Rows(_, rows) = e {
            doc["errors"] = serde_json::json!(rows);
        }
        if let Error::Partial(_, done) = e {
            doc["report"] = done.clone();
        }
        // A listing already under way on stdout: its document is the last
        // line of stderr, stdout stays unfinished (README, "JSON output").
        if recupera::ui::streaming() {
            late_doc = Some(doc.to_string());
        } else {
            out(&doc.to_string());
        }
    }
    err(&format!("recupera: {e}"));
    if let Error::Rows(_, rows) = e {
        for r in rows {
            err(&recupera::i18n::tf(
                recupera::i18n::M::ImportRowError,
                &[
                    ("line", &r.line),
                    ("column", &r.column),
                    ("message", &r.message),
                ],
            ));
        }
    }
    if let Some(doc) = late_doc {
        err(&doc);
    }
    code
}
