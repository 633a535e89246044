//! Errors and the one exit-code table.
//!
//! Every error a user can cause or meet carries a message already rendered
//! in the process language, and a kind; `main` maps the kind to the exit code
//! of SPEC.md and nothing else decides exit codes.

use crate::domain::account::{IdentError, UsernameError};
use crate::domain::code::CodeError;
use crate::domain::email::EmailError;
use crate::domain::nit::NitError;
use crate::domain::password::{Context, PolicyError};
use crate::i18n::{M, quote, t, tf};

/// Exit codes (SPEC.md). sysexits(3) names in comments.
pub mod exit {
    pub const OK: u8 = 0;
    /// Login failed, code rejected.
    pub const REFUSED: u8 = 1;
    /// Missing or malformed arguments (EX_USAGE is 64; clap and the spec use 2).
    pub const USAGE: u8 = 2;
    /// EX_DATAERR: invalid NIT, email or password, mismatch, account exists.
    pub const DATA: u8 = 65;
    /// EX_UNAVAILABLE: mail server unavailable.
    pub const UNAVAILABLE: u8 = 69;
    /// EX_IOERR: database cannot be opened, is corrupt, or is newer.
    pub const DB: u8 = 74;
    /// EX_TEMPFAIL: database busy past its timeout.
    pub const BUSY: u8 = 75;
    /// EX_SOFTWARE: an internal error (a bug), never 1.
    pub const SOFTWARE: u8 = 70;
    /// EX_CONFIG: bad configuration.
    pub const CONFIG: u8 = 78;
    /// Interrupted by the user (128 + SIGINT).
    pub const INTERRUPTED: u8 = 130;
}

/// The exit-code table, the one source for `--help`, the man pages and the
/// README (a test checks the README against it): code, a word or two for
/// the help line, the full meaning.
pub const EXIT_CODES: &[(u8, M, M)] = &[
    (exit::OK, M::ExitOkShort, M::ExitOk),
    (exit::REFUSED, M::ExitRefusedShort, M::ExitRefused),
    (exit::USAGE, M::ExitUsageShort, M::ExitUsage),
    (exit::DATA, M::ExitDataShort, M::ExitData),
    (
        exit::UNAVAILABLE,
        M::ExitUnavailableShort,
        M::ExitUnavailable,
    ),
    (exit::SOFTWARE, M::ExitSoftwareShort, M::ExitSoftware),
    (exit::DB, M::ExitDbShort, M::ExitDb),
    (exit::BUSY, M::ExitBusyShort, M::ExitBusy),
    (exit::CONFIG, M::ExitConfigShort, M::ExitConfig),
    (
        exit::INTERRUPTED,
        M::ExitInterruptedShort,
        M::ExitInterrupted,
    ),
];

/// "Códigos de salida: 0 hecho · 1 rechazado · …" in `lang`.
pub fn exit_codes_line(lang: crate::i18n::Lang) -> String {
    let parts: Vec<String> = EXIT_CODES
        .iter()
        .map(|(c, short, _)| format!("{c} {}", short.text(lang)))
        .collect();
    format!("{} {}", M::ExitCodesTitle.text(lang), parts.join(" · "))
}

/// The README's table of exit codes (English), as generated from
/// [`EXIT_CODES`].
pub fn exit_codes_markdown() -> String {
    let mut s = String::from("| code | meaning |\n|---|---|\n");
    for (c, _, long) in EXIT_CODES {
        s.push_str(&format!("| {c} | {} |\n", long.text(crate::i18n::Lang::En)));
    }
    s
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Data(String),
    /// No account answers to what was typed (exit 65 like other bad data;
    /// its own kind in `--json`, so a script can tell "already gone" from
    /// "mistyped" without reading the message).
    #[error("{0}")]
    NotFound(String),
    /// Bad data in many places (an import's rows): exit 65, each listed.
    #[error("{0}")]
    Rows(String, Vec<RowError>),
    #[error("{0}")]
    MailUnavailable(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Interrupted(String),
    /// Storage, by what the user can do about it (see `store::Error`).
    #[error("{0}")]
    Store(crate::store::Error),
    /// Reading input or writing output failed.
    #[error("{}", crate::i18n::os_error(.0))]
    Io(#[from] std::io::Error),
    /// A bug: exit 70.
    #[error("{0}")]
    Internal(anyhow::Error),
    /// An error met after part of the work was done: the error, and what
    /// was done, which `--json` adds to its document as `report`
    /// (`mail retry` stopped by a server that went away).
    #[error("{0}")]
    Partial(Box<Error>, serde_json::Value),
}

impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        match e {
            // A callback's own error, passed through the engine untouched.
            crate::store::Error::Stopped(inner) => *inner,
            other => Error::Store(other),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        match e.io_error_kind() {
            Some(kind) => Error::Io(std::io::Error::new(kind, e.to_string())),
            None => Error::Internal(e.into()),
        }
    }
}

/// An internal error with a message: `internal!("account {id} vanished")`.
#[macro_export]
macro_rules! internal {
    ($($arg:tt)*) => {
        $crate::error::Error::Internal(::anyhow::anyhow!($($arg)*))
    };
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem in a file, where it is: `línea N: columna: motivo`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub message: String,
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Refused(_) => exit::REFUSED,
            Error::Usage(_) => exit::USAGE,
            Error::Data(_) | Error::NotFound(_) | Error::Rows(..) => exit::DATA,
            Error::MailUnavailable(_) => exit::UNAVAILABLE,
            Error::Config(_) => exit::CONFIG,
            Error::Interrupted(_) => exit::INTERRUPTED,
            Error::Store(e) => match e {
                crate::store::Error::Busy(_) | crate::store::Error::Conflict(_) => exit::BUSY,
                crate::store::Error::Unavailable(_) => exit::UNAVAILABLE,
                crate::store::Error::Auth(_) | crate::store::Error::Config(_) => exit::CONFIG,
                crate::store::Error::NewerSchema(_)
                | crate::store::Error::Corrupt(_)
                | crate::store::Error::Other(_) => exit::DB,
                crate::store::Error::Stopped(inner) => inner.exit_code(),
            },
            Error::Io(_) => exit::DB,
            Error::Internal(_) => exit::SOFTWARE,
            Error::Partial(inner, _) => inner.exit_code(),
        }
    }

    /// A stable name for `--json` error documents.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Refused(_) => "refused",
            Error::Usage(_) => "usage",
            Error::Data(_) | Error::Rows(..) => "bad_data",
            Error::NotFound(_) => "not_found",
            Error::MailUnavailable(_) => "mail_unavailable",
            Error::Config(_) => "config",
            Error::Interrupted(_) => "interrupted",
            Error::Store(e) => match e {
                crate::store::Error::Busy(_) | crate::store::Error::Conflict(_) => "busy",
                crate::store::Error::Unavailable(_) => "database_unavailable",
                crate::store::Error::Auth(_) | crate::store::Error::Config(_) => "config",
                crate::store::Error::NewerSchema(_)
                | crate::store::Error::Corrupt(_)
                | crate::store::Error::Other(_) => "database",
                crate::store::Error::Stopped(inner) => inner.kind(),
            },
            Error::Io(_) => "io",
            Error::Internal(_) => "internal",
            Error::Partial(inner, _) => inner.kind(),
        }
    }

    pub fn missing_flag(flag: &str) -> Error {
        Error::Usage(tf(M::MissingFlag, &[("flag", &flag)]))
    }

    pub fn interrupted() -> Error {
        Error::Interrupted(t(M::Interrupted).to_string())
    }
}

/// A NIT error that can name the body typed ("the check digit of 900102030
/// is 4"), which is more useful than "the check digit of NIT".
pub fn nit_error(input: &str, e: NitError) -> Error {
    if let NitError::WrongCheckDigit { given, expected } = e {
        let body: String = input
            .split('-')
            .next()
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        return Error::Data(tf(
            M::NitDvWrong,
            &[("body", &body), ("expected", &expected), ("given", &given)],
        ));
    }
    Error::Data(match e {
        NitError::Empty => t(M::NitEmpty).to_string(),
        NitError::NotDigit(c) => tf(M::NitNotDigit, &[("char", &quote(&c.to_string()))]),
        NitError::TooLong => t(M::NitTooLong).to_string(),
        NitError::LeadingZero => t(M::NitLeadingZero).to_string(),
        NitError::BadCheckDigitForm | NitError::WrongCheckDigit { .. } => {
            t(M::NitDvForm).to_string()
        }
    })
}

pub fn email_error(input: &str, e: EmailError) -> Error {
    Error::Data(match e {
        EmailError::Empty => t(M::EmailEmpty).to_string(),
        EmailError::Forbidden(c) => {
            let shown = match c {
                '\r' => "CR".to_string(),
                '\n' => "LF".to_string(),
                c => c.to_string(),
            };
            tf(M::EmailForbidden, &[("char", &shown)])
        }
        EmailError::TooLong => t(M::EmailTooLong).to_string(),
        EmailError::LocalTooLong => t(M::EmailLocalTooLong).to_string(),
        EmailError::NoAt => tf(M::EmailNoAt, &[("email", &quote(input))]),
        EmailError::Invalid => tf(M::EmailInvalid, &[("email", &quote(input))]),
    })
}

impl From<UsernameError> for Error {
    fn from(e: UsernameError) -> Self {
        Error::Data(
            t(match e {
                UsernameError::Length => M::UsernameLength,
                UsernameError::Chars => M::UsernameChars,
                UsernameError::NoLetter => M::UsernameNoLetter,
            })
            .to_string(),
        )
    }
}

pub fn ident_error(input: &str, e: IdentError) -> Error {
    match e {
        IdentError::Nit(n) => nit_error(input, n),
        // Not echoed: what was typed where the identifier goes is now and
        // then the password (README), and this message may reach a front
        // end's logs through --json.
        IdentError::Email(EmailError::Invalid | EmailError::NoAt) => {
            Error::Data(t(M::IdentEmailInvalid).to_string())
        }
        IdentError::Email(m) => email_error(input, m),
        IdentError::Username(u) => u.into(),
        IdentError::ClienteNeedsNit => Error::Data(t(M::ClienteNeedsNit).to_string()),
    }
}

impl From<CodeError> for Error {
    fn from(e: CodeError) -> Self {
        Error::Data(match e {
            CodeError::Length => t(M::CodeLength).to_string(),
            CodeError::LookAlike(c) => tf(M::CodeLookAlike, &[("char", &c)]),
            CodeError::Invalid(c) => tf(M::CodeInvalid, &[("char", &quote(&c.to_string()))]),
        })
    }
}

pub fn context_label(c: Context) -> &'static str {
    t(match c {
        Context::Product => M::CtxProduct,
        Context::Identifier => M::CtxIdentifier,
        Context::Nit => M::CtxNit,
        Context::Email => M::CtxEmail,
        Context::Username => M::CtxUsername,
        Context::Name => M::CtxName,
    })
}

/// The sentence that says why a password was refused.
pub fn policy_message(e: &PolicyError) -> String {
    match e {
        PolicyError::Empty => t(M::PwEmpty).to_string(),
        PolicyError::TooShort { min, got } => tf(M::PwTooShort, &[("min", min), ("got", got)]),
        PolicyError::TooLong => t(M::PwTooLong).to_string(),
        PolicyError::Guessable => t(M::PwGuessable).to_string(),
        PolicyError::BuiltFrom(c) => tf(M::PwBuiltFrom, &[("what", &context_label(*c))]),
        PolicyError::Mismatch => t(M::PwMismatch).to_string(),
    }
}

impl From<PolicyError> for Error {
    fn from(e: PolicyError) -> Self {
        Error::Data(policy_message(&e))
    }
}

impl From<crate::domain::hash::HashError> for Error {
    fn from(e: crate::domain::hash::HashError) -> Self {
        Error::Internal(anyhow::anyhow!(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;
    use crate::store::Error as S;

    /// Each error's `--json` kind and exit code, as SPEC.md's table has
    /// them; a store error a callback stopped on keeps its own.
    #[test]
    fn each_error_has_its_kind_and_exit_code() {
        let s = String::new;
        let cases: Vec<(Error, &str, u8)> = vec![
            (Error::Refused(s()), "refused", exit::REFUSED),
            (Error::Usage(s()), "usage", exit::USAGE),
            (Error::Data(s()), "bad_data", exit::DATA),
            (Error::Rows(s(), Vec::new()), "bad_data", exit::DATA),
            (
                Error::MailUnavailable(s()),
                "mail_unavailable",
                exit::UNAVAILABLE,
            ),
            (Error::Config(s()), "config", exit::CONFIG),
            (Error::Interrupted(s()), "interrupted", exit::INTERRUPTED),
            (Error::Store(S::Busy(s())), "busy", exit::BUSY),
            (Error::Store(S::Conflict(s())), "busy", exit::BUSY),
            (
                Error::Store(S::Unavailable(s())),
                "database_unavailable",
                exit::UNAVAILABLE,
            ),
            (Error::Store(S::Auth(s())), "config", exit::CONFIG),
            (Error::Store(S::Config(s())), "config", exit::CONFIG),
            (Error::Store(S::NewerSchema(s())), "database", exit::DB),
            (Error::Store(S::Corrupt(s())), "database", exit::DB),
            (Error::Store(S::Other(s())), "database", exit::DB),
            (
                Error::Store(S::Stopped(Box::new(Error::Usage(s())))),
                "usage",
                exit::USAGE,
            ),
            (Error::Io(std::io::Error::other("x")), "io", exit::DB),
            (
                Error::Internal(anyhow::anyhow!("x")),
                "internal",
                exit::SOFTWARE,
            ),
        ];
        for (e, kind, code) in cases {
            assert_eq!((e.kind(), e.exit_code()), (kind, code), "{e:?}");
        }
    }

    #[test]
    fn the_exit_code_table_is_listed_whole_in_help_and_readme() {
        for lang in [Lang::Es, Lang::En] {
            let line = exit_codes_line(lang);
            assert!(line.starts_with(M::ExitCodesTitle.text(lang)), "{line}");
            for (c, short, _) in EXIT_CODES {
                assert!(
                    line.contains(&format!("{c} {}", short.text(lang))),
                    "{line}"
                );
            }
            assert_eq!(line.matches(" · ").count(), EXIT_CODES.len() - 1);
        }
        let md = exit_codes_markdown();
        let rows: Vec<&str> = md.lines().collect();
        assert_eq!(rows[..2], ["| code | meaning |", "|---|---|"]);
        assert_eq!(rows.len(), 2 + EXIT_CODES.len());
        for ((c, _, long), row) in EXIT_CODES.iter().zip(&rows[2..]) {
            assert_eq!(*row, format!("| {c} | {} |", long.text(Lang::En)));
        }
    }

    /// Every refusal of a password says why, and what it was built from.
    #[test]
    fn each_policy_refusal_says_why() {
        use crate::domain::password::Context as C;
        let contexts = [
            C::Product,
            C::Identifier,
            C::Nit,
            C::Email,
            C::Username,
            C::Name,
        ];
        let labels: Vec<&str> = contexts.iter().map(|c| context_label(*c)).collect();
        assert_eq!(labels[2], t(M::CtxNit));
        let mut distinct = labels.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), contexts.len(), "{labels:?}");
        for (c, label) in contexts.iter().zip(&labels) {
            let m = policy_message(&PolicyError::BuiltFrom(*c));
            assert_eq!(m, tf(M::PwBuiltFrom, &[("what", label)]));
        }
        let short = policy_message(&PolicyError::TooShort { min: 15, got: 9 });
        assert!(short.contains("15") && short.contains('9'), "{short}");
        for (e, m) in [
            (PolicyError::Empty, M::PwEmpty),
            (PolicyError::TooLong, M::PwTooLong),
            (PolicyError::Guessable, M::PwGuessable),
            (PolicyError::Mismatch, M::PwMismatch),
        ] {
            assert_eq!(policy_message(&e), t(m));
            assert!(matches!(Error::from(e), Error::Data(d) if d == t(m)));
        }
    }
}
