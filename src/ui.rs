//! Terminal and script I/O: results on stdout, prompts and notes on stderr.
//!
//! Invariants:
//! - Prompts happen only when standard input *and* standard error are
//!   terminals. Otherwise a missing value is a usage error naming its flag,
//!   decided before anything reads stdin, so a script never hangs.
//! - Passwords come from a hidden prompt or from stdin (`--password-stdin`),
//!   never from argv, and live in zeroed-on-drop buffers.
//! - With `--json`, stdout carries exactly one JSON document.
//! - `NO_COLOR` (any value) turns colour off.

use crate::domain::account::AccountType;
use crate::error::{Error, Result};
use crate::i18n::{M, t};
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use std::io::{IsTerminal, Read, Write};
use zeroize::Zeroizing;

/// Largest stdin accepted for `--password-stdin`. A password is at most
/// 1024 bytes; this leaves room for a confirmation line and refuses a stream
/// without reading it all.
const STDIN_LIMIT: u64 = 8 * 1024;

pub struct Ui {
    pub json: bool,
    pub interactive: bool,
    /// Colour on stderr (prompts).
    pub color: bool,
    pub stdout_tty: bool,
    pub no_color: bool,
    theme: Box<dyn Theme>,
}

/// NO_COLOR set to something (no-color.org: an empty value does not
/// count), or a terminal that says it has no colour (`TERM=dumb`).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

fn map_prompt_err(e: dialoguer::Error) -> Error {
    let dialoguer::Error::IO(io) = e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        Error::interrupted()
    } else {
        Error::Io(io)
    }
}

/// A line on stderr, prefixed, never failing (a closed stderr loses it).
pub fn warn(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "recupera: {msg}");
}

/// The command's result has been shown: an interruption from now on
/// (Ctrl-C at "¿Iniciar sesión ahora?") ends with exit 0, not 130, since
/// the action is done. Read by the signal handler (an atomic load is
/// async-signal-safe).
pub static RESULT_SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn mark_committed() {
    RESULT_SHOWN.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// True while a `--json` listing (or an export on stdout) has begun its
/// output and not ended it: an error or a signal then cannot put a
/// document of its own on stdout (it would land inside the array), so its
/// JSON document goes to stderr, and stdout is left unfinished: never
/// valid JSON, so no parser takes half a list for the whole.
pub static STDOUT_STREAMING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub fn set_streaming(on: bool) {
    STDOUT_STREAMING.store(on, std::sync::atomic::Ordering::SeqCst);
}

pub fn streaming() -> bool {
    STDOUT_STREAMING.load(std::sync::atomic::Ordering::SeqCst)
}

/// A terminal session goes on to another step after a result (the code
/// sent, now the code and the new password): an interruption from here on
/// cancels that step, "Cancelado." and 130, not a silent 0.
pub fn next_step() {
    RESULT_SHOWN.store(false, std::sync::atomic::Ordering::SeqCst);
}

/// A progress bar on stderr when it is a terminal (and not `--json`);
/// nothing in pipes.
pub fn progress(ui: &Ui, label: &str) -> Option<indicatif::ProgressBar> {
    if ui.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    Some(bar)
}

impl Ui {
    pub fn new(json: bool) -> Ui {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        // Set both ways: the console crate has its own reading of the
        // environment, and prompts and tables must agree.
        let color = !no_color() && std::io::stderr().is_terminal();
        console::set_colors_enabled_stderr(color);
        console::set_colors_enabled(!no_color() && std::io::stdout().is_terminal());
        let theme: Box<dyn Theme> = if color {
            Box::new(ColorfulTheme::default())
        } else {
            Box::new(SimpleTheme)
        };
        Ui {
            json,
            interactive,
            color,
            stdout_tty: std::io::stdout().is_terminal(),
            no_color: no_color(),
            theme,
        }
    }

    /// A line of result text on stdout (text mode only).
    pub fn line(&self, text: &str) -> Result<()> {
        if !self.json {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}")?;
            out.flush()?;
        }
        Ok(())
    }

    /// A line for the person at the terminal, on stderr (a refusal the
    /// session goes on after).
    pub fn warn_line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    /// The command's one JSON document (JSON mode only).
    pub fn doc(&self, value: &serde_json::Value) -> Result<()> {
        if self.json {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, value)?;
            writeln!(out)?;
            out.flush()?;
        }
        Ok(())
    }

    /// Either the text or the JSON document, depending on the mode: the
    /// command's result, after which an interruption is no longer a
    /// cancellation.
    pub fn result(&self, value: serde_json::Value, text: &str) -> Result<()> {
        mark_committed();
        if self.json {
            self.doc(&value)
        } else {
            self.line(text)
        }
    }

    fn require_interactive(&self, flag: &str) -> Result<()> {
        if self.interactive {
            Ok(())
        } else {
            Err(Error::missing_flag(flag))
        }
    }

    /// A value from its flag, or a validated prompt, or a usage error.
    pub fn value_or_prompt<T>(
        &self,
        given: Option<&str>,
        flag: &str,
        prompt: &str,
        parse: impl Fn(&str) -> Result<T>,
    ) -> Result<T> {
        if let Some(v) = given {
            return parse(v);
        }
        self.require_interactive(flag)?;
        let raw: String = dialoguer::Input::with_theme(self.theme.as_ref())
            .with_prompt(prompt)
            .validate_with(|s: &String| parse(s).map(|_| ()).map_err(|e| e.to_string()))
            .interact_text()
            .map_err(map_prompt_err)?;
        parse(&raw)
    }

    /// An optional free-text value (prompted with an empty default).
    pub fn optional_prompt(&self, prompt: &str) -> Result<Option<String>> {
        let raw: String = dialoguer::Input::with_theme(self.theme.as_ref())
            .with_prompt(prompt)
            .allow_empty(true)
            .interact_text()
            .map_err(map_prompt_err)?;
        Ok(Some(raw.trim().to_string()).filter(|s| !s.is_empty()))
    }

    pub fn select(&self, prompt: &str, items: &[&str], default: usize) -> Result<usize> {
        dialoguer::Select::with_theme(self.theme.as_ref())
            .with_prompt(prompt)
            .items(items)
            .default(default)
            .interact()
            .map_err(map_prompt_err)
    }

    /// The account type: as given; else, in a terminal where the rest of
    /// the form is also to be asked, a selection (the form's "Tipo");
    /// else `cliente`.
    pub fn account_type(&self, given: Option<AccountType>, ask: bool) -> Result<AccountType> {
        if let Some(k) = given {
            return Ok(k);
        }
        if !(self.interactive && ask) {
            return Ok(AccountType::Cliente);
        }
        let items = [
            crate::i18n::type_label(AccountType::Cliente),
            crate::i18n::type_label(AccountType::Proveedor),
        ];
        Ok(match self.select(t(M::PromptType), &items, 0)? {
            1 => AccountType::Proveedor,
            _ => AccountType::Cliente,
        })
    }

    /// A yes/no question as a two-item selection: dialoguer's `Confirm`
    /// only takes `y`/`n` keys, which a Spanish speaker would not type.
    pub fn confirm(&self, prompt: &str, default: bool) -> Result<bool> {
        let items = [t(M::YesOption), t(M::NoOption)];
        let chosen = self.select(prompt, &items, if default { 0 } else { 1 })?;
        Ok(chosen == 0)
    }

    /// A hidden password prompt, validated and (if `confirm` is given)
    /// asked twice; a refused password is asked again, not aborted.
    ///
    /// The two entries are compared as the policy stores a password (NFKC),
    /// so "ñ" typed precomposed and then as n + tilde is the same password,
    /// as it is through `--password-stdin` and at login. Ctrl-Z does
    /// nothing while a hidden prompt waits: after `fg` the shell leaves the
    /// terminal echoing, and the rest of the password would show.
    pub fn password_prompt(
        &self,
        prompt: &str,
        confirm: Option<&str>,
        validate: impl Fn(&str) -> std::result::Result<(), String>,
    ) -> Result<Zeroizing<String>> {
        let _no_suspend = NoSuspend::new();
        loop {
            let first = dialoguer::Password::with_theme(self.theme.as_ref())
                .with_prompt(prompt)
                .allow_empty_password(true)
                .validate_with(|s: &String| {
                    // An empty entry is said, not silently asked again.
                    if s.is_empty() {
                        return Err(t(M::PwEmpty).to_string());
                    }
                    validate(s)
                })
                .interact()
                .map(Zeroizing::new)
                .map_err(map_prompt_err)?;
            let Some(c) = confirm else {
                return Ok(first);
            };
            let again = dialoguer::Password::with_theme(self.theme.as_ref())
                .with_prompt(c)
                .allow_empty_password(true)
                .interact()
                .map(Zeroizing::new)
                .map_err(map_prompt_err)?;
            let same = match crate::domain::password::Password::new(&first) {
                Ok(pw) => crate::domain::password::confirm(&pw, &again).is_ok(),
                Err(_) => *first == *again,
            };
            if same {
                return Ok(first);
            }
            let mut msg = String::new();
            let _ = self.theme.format_error(&mut msg, t(M::PwMismatch));
            self.warn_line(&msg);
        }
    }
}

/// While it lives, the terminal's job-control keys (Ctrl-Z, and a
/// background read or write) do not stop the process: a hidden prompt
/// stopped and resumed with `fg` would go on with echo back on, since the
/// shell restores its own terminal settings and nobody restores ours.
struct NoSuspend {
    #[cfg(unix)]
    saved: [(libc::c_int, libc::sighandler_t); 3],
}

impl NoSuspend {
    fn new() -> NoSuspend {
        #[cfg(unix)]
        {
            let mut saved = [(libc::SIGTSTP, 0), (libc::SIGTTIN, 0), (libc::SIGTTOU, 0)];
            for (sig, old) in &mut saved {
                // SAFETY: sets a signal's disposition to "ignore"; the old
                // one is kept and put back on drop.
                *old = unsafe { libc::signal(*sig, libc::SIG_IGN) };
            }
            NoSuspend { saved }
        }
        #[cfg(not(unix))]
        NoSuspend {}
    }
}

impl Drop for NoSuspend {
    fn drop(&mut self) {
        #[cfg(unix)]
        for (sig, old) in self.saved {
            if old != libc::SIG_ERR {
                // SAFETY: puts back the disposition saved by `new`.
                unsafe {
                    libc::signal(sig, old);
                }
            }
        }
    }
}

/// The password lines read by `--password-stdin`: the password, and the
/// confirmation if a second line was given.
pub struct StdinPassword {
    pub password: Zeroizing<String>,
    pub confirmation: Option<Zeroizing<String>>,
}

/// Reads `--password-stdin`: first line is the password, an optional second
/// line its confirmation. Only `\n` / `\r\n` are stripped (spaces are part
/// of a password). More than a few KiB is refused without reading further.
pub fn read_stdin_password() -> Result<StdinPassword> {
    // Typed at a terminal, the password would show as it is typed.
    if std::io::stdin().is_terminal() {
        return Err(Error::Usage(t(M::StdinIsTerminal).to_string()));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(256));
    std::io::stdin()
        .lock()
        .take(STDIN_LIMIT + 1)
        .read_to_end(&mut buf)?;
    parse_stdin_password(&buf)
}

/// The password lines in what `--password-stdin` read (at most one byte
/// more than [`STDIN_LIMIT`]).
fn parse_stdin_password(buf: &[u8]) -> Result<StdinPassword> {
    if buf.len() as u64 > STDIN_LIMIT {
        return Err(Error::Data(t(M::PwTooLong).to_string()));
    }
    let text = std::str::from_utf8(buf).map_err(|_| Error::Data(t(M::StdinNotUtf8).to_string()))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let password = Zeroizing::new(lines.next().unwrap_or("").to_string());
    let confirmation = lines
        .next()
        .filter(|l| !l.is_empty())
        .map(|l| Zeroizing::new(l.to_string()));
    if password.is_empty() {
        return Err(Error::Data(t(M::PwEmpty).to_string()));
    }
    // More than a password and its confirmation: not what the flag reads
    // (a file piped by mistake, a script's lines out of step), so nothing
    // of it is taken as a password.
    if lines.any(|l| !l.is_empty()) {
        return Err(Error::Data(t(M::StdinExtraLines).to_string()));
    }
    Ok(StdinPassword {
        password,
        confirmation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> (String, Option<String>) {
        let p = parse_stdin_password(bytes).unwrap();
        (
            p.password.to_string(),
            p.confirmation.map(|c| c.to_string()),
        )
    }

    fn refused(bytes: &[u8]) -> String {
        match parse_stdin_password(bytes) {
            Err(Error::Data(msg)) => msg,
            Err(e) => panic!("not a data error: {e:?}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn stdin_gives_the_password_and_an_optional_confirmation_line() {
        let none = None;
        assert_eq!(parsed(b"pw one\n"), ("pw one".into(), none.clone()));
        assert_eq!(
            parsed(b"pw one"),
            ("pw one".into(), none.clone()),
            "no newline at the end"
        );
        assert_eq!(
            parsed(b"pw one\npw two\n"),
            ("pw one".into(), Some("pw two".into()))
        );
        assert_eq!(
            parsed(b"pw one\r\npw two\r\n"),
            ("pw one".into(), Some("pw two".into())),
            "a Windows line end is a line end"
        );
        assert_eq!(
            parsed(b"pw one\n\n"),
            ("pw one".into(), none.clone()),
            "an empty second line is no confirmation"
        );
        assert_eq!(
            parsed(b"  spaced\tout \n"),
            ("  spaced\tout ".into(), none.clone()),
            "spaces and tabs are part of a password"
        );
        assert_eq!(
            parsed(b"a\rb\n"),
            ("a\rb".into(), none.clone()),
            "only a final \\r is stripped"
        );
        assert_eq!(
            parsed("contraseña ñandú\n".as_bytes()),
            ("contraseña ñandú".into(), none.clone())
        );
        assert_eq!(
            parsed(b"one\n\n\n\n"),
            ("one".into(), none.clone()),
            "empty lines after it are no confirmation either"
        );
    }

    #[test]
    fn stdin_with_more_than_a_password_and_its_confirmation_is_refused() {
        let extra = t(M::StdinExtraLines);
        assert_eq!(refused(b"one\ntwo\nthree\n"), extra);
        assert_eq!(refused(b"one\none\none"), extra, "no newline at the end");
        assert_eq!(refused(b"one\n\nthree\n"), extra, "an empty line between");
        assert_eq!(parsed(b"one\none\n\n").1, Some("one".into()));
    }

    #[test]
    fn the_longest_password_and_its_confirmation_fit_in_what_stdin_reads() {
        let longest = "é".repeat(512); // 1024 bytes, the policy's maximum
        let both = format!("{longest}\r\n{longest}\r\n");
        let (pw, again) = parsed(both.as_bytes());
        assert_eq!((pw.len(), again.map(|a| a.len())), (1024, Some(1024)));
    }

    /// A `Ui` that is not at a terminal, whatever the test runner's is.
    fn script_ui() -> Ui {
        let mut ui = Ui::new(false);
        ui.interactive = false;
        ui
    }

    #[test]
    fn without_a_terminal_a_missing_value_is_a_usage_error_naming_its_flag() {
        let ui = script_ui();
        let e = ui
            .value_or_prompt(None, "--nit", "NIT", |s| Ok(s.to_string()))
            .unwrap_err();
        assert_eq!(e.kind(), "usage");
        assert_eq!(e.to_string(), Error::missing_flag("--nit").to_string());
        assert!(e.to_string().contains("--nit"), "{e}");
        // A given value is parsed, never prompted for.
        assert_eq!(
            ui.value_or_prompt(Some("x"), "--nit", "NIT", |s| Ok(format!("<{s}>")))
                .unwrap(),
            "<x>"
        );
        let refused = ui
            .value_or_prompt(Some("x"), "--nit", "NIT", |_| -> Result<()> {
                Err(Error::Data("no".into()))
            })
            .unwrap_err();
        assert_eq!(refused.kind(), "bad_data");
    }

    #[test]
    fn without_a_terminal_the_account_type_is_cliente_unless_given() {
        let ui = script_ui();
        assert_eq!(ui.account_type(None, true).unwrap(), AccountType::Cliente);
        assert_eq!(ui.account_type(None, false).unwrap(), AccountType::Cliente);
        assert_eq!(
            ui.account_type(Some(AccountType::Proveedor), true).unwrap(),
            AccountType::Proveedor
        );
        let mut at_terminal = script_ui();
        at_terminal.interactive = true;
        assert_eq!(
            at_terminal.account_type(None, false).unwrap(),
            AccountType::Cliente,
            "not asked when the rest of the form is not"
        );
        assert_eq!(
            at_terminal
                .account_type(Some(AccountType::Proveedor), true)
                .unwrap(),
            AccountType::Proveedor,
            "a given type is not asked"
        );
    }

    #[test]
    fn an_interrupted_prompt_is_a_cancellation_and_any_other_failure_an_io_error() {
        let io = |k| dialoguer::Error::IO(std::io::Error::from(k));
        let e = map_prompt_err(io(std::io::ErrorKind::Interrupted));
        assert_eq!((e.kind(), e.exit_code()), ("interrupted", 130));
        let e = map_prompt_err(io(std::io::ErrorKind::BrokenPipe));
        assert_eq!(e.kind(), "io");
    }

    #[test]
    fn stdin_without_a_password_or_not_text_or_too_long_is_refused_in_our_words() {
        assert_eq!(refused(b""), t(M::PwEmpty));
        assert_eq!(refused(b"\n"), t(M::PwEmpty));
        assert_eq!(refused(b"\r\nsecond\n"), t(M::PwEmpty));
        assert_eq!(refused(b"pw\xff\n"), t(M::StdinNotUtf8));
        let limit = STDIN_LIMIT as usize;
        assert_eq!(refused(&vec![b'a'; limit + 1]), t(M::PwTooLong));
        assert_eq!(
            parsed(&vec![b'a'; limit]).0.len(),
            limit,
            "the limit itself is read"
        );
    }
}
