//! Usage errors from clap, in the user's language.
//!
//! clap renders its own errors in English. For the kinds a support agent
//! actually meets (a mistyped command or flag, a bad value, a missing
//! argument, a non-UTF-8 argument) the message comes from our catalog
//! instead, with clap's suggestion kept. Help and version output are clap's.

use crate::i18n::{Lang, M, tl};
use clap::error::{ContextKind, ContextValue, ErrorKind};

fn ctx(e: &clap::Error, k: ContextKind) -> Option<String> {
    match e.get(k)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        ContextValue::StyledStrs(v) => Some(
            v.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ContextValue::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The language for messages before the command line is parsed: a raw
/// `--lang` argument, else `RECUPERA_LANG`, else the locale.
pub fn early_lang(args: &[std::ffi::OsString]) -> Lang {
    let mut it = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        let v = if a == "--lang" {
            it.next()
        } else {
            a.strip_prefix("--lang=")
        };
        match v {
            Some("en") => return Lang::En,
            Some("es") => return Lang::Es,
            _ => {}
        }
    }
    crate::app::lang_from_env()
}

/// Our message for a clap error, or `None` to let clap print its own
/// (help, version, and rare kinds).
pub fn message(e: &clap::Error, lang: Lang) -> Option<String> {
    let arg = ctx(e, ContextKind::InvalidArg).unwrap_or_default();
    let value = ctx(e, ContextKind::InvalidValue).unwrap_or_default();
    let mut msg = match e.kind() {
        ErrorKind::InvalidUtf8 => M::UsageUtf8.text(lang).to_string(),
        ErrorKind::UnknownArgument => tl(M::UsageUnknownArg, lang, &[("arg", &arg)]),
        ErrorKind::InvalidSubcommand => {
            let sub = ctx(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            tl(M::UsageUnknownCommand, lang, &[("cmd", &sub)])
        }
        ErrorKind::InvalidValue => {
            let valid = ctx(e, ContextKind::ValidValue).unwrap_or_default();
            if value.is_empty() {
                tl(M::UsageMissingValue, lang, &[("arg", &arg)])
            } else {
                tl(
                    M::UsageInvalidValue,
                    lang,
                    &[("arg", &arg), ("value", &value), ("valid", &valid)],
                )
            }
        }
        ErrorKind::ValueValidation => {
            tl(M::UsageBadValue, lang, &[("arg", &arg), ("value", &value)])
        }
        ErrorKind::MissingRequiredArgument => tl(M::UsageMissingArg, lang, &[("arg", &arg)]),
        ErrorKind::ArgumentConflict => {
            let other = ctx(e, ContextKind::PriorArg).unwrap_or_default();
            tl(M::UsageConflict, lang, &[("arg", &arg), ("other", &other)])
        }
        ErrorKind::TooManyValues | ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => {
            tl(M::UsageBadValue, lang, &[("arg", &arg), ("value", &value)])
        }
        _ => return None,
    };
    let suggestion = ctx(e, ContextKind::SuggestedSubcommand)
        .or_else(|| ctx(e, ContextKind::SuggestedArg))
        .or_else(|| ctx(e, ContextKind::SuggestedValue));
    if let Some(s) = suggestion {
        msg.push(' ');
        msg.push_str(&tl(M::UsageDidYouMean, lang, &[("suggestion", &s)]));
    }
    msg.push('\n');
    msg.push_str(M::UsageMoreHelp.text(lang));
    Some(msg)
}
