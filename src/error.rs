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
    /// EX_CONFIG: bad configuration.
    pub const CONFIG: u8 = 78;
    /// Interrupted by the user (128 + SIGINT).
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    MailUnavailable(String),
    #[error("{0}")]
    Db(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Interrupted(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Refused(_) => exit::REFUSED,
            Error::Usage(_) => exit::USAGE,
            Error::Data(_) => exit::DATA,
            Error::MailUnavailable(_) => exit::UNAVAILABLE,
            Error::Db(_) => exit::DB,
            Error::Busy(_) => exit::BUSY,
            Error::Config(_) => exit::CONFIG,
            Error::Interrupted(_) => exit::INTERRUPTED,
            Error::Other(_) => exit::REFUSED,
        }
    }

    /// A stable name for `--json` error documents.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Refused(_) => "refused",
            Error::Usage(_) => "usage",
            Error::Data(_) => "bad_data",
            Error::MailUnavailable(_) => "mail_unavailable",
            Error::Db(_) => "database",
            Error::Busy(_) => "busy",
            Error::Config(_) => "config",
            Error::Interrupted(_) => "interrupted",
            Error::Other(_) => "error",
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

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            match f.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    return Error::Busy(t(M::DbBusy).to_string());
                }
                ErrorCode::ReadOnly => return Error::Db(t(M::DbReadOnlyAny).to_string()),
                _ => {}
            }
        }
        Error::Db(tf(M::DbError, &[("err", &e)]))
    }
}

impl From<crate::domain::hash::HashError> for Error {
    fn from(e: crate::domain::hash::HashError) -> Self {
        Error::Other(anyhow::anyhow!(e))
    }
}
