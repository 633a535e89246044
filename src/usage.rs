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

/// Every (long flag, variable) pair of the command tree.
fn flag_variables(c: &clap::Command, out: &mut Vec<(String, String)>) {
    for a in c.get_arguments() {
        if let (Some(long), Some(var)) = (a.get_long(), a.get_env()) {
            let pair = (format!("--{long}"), var.to_string_lossy().into_owned());
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    for s in c.get_subcommands() {
        flag_variables(s, out);
    }
}

/// A value clap refused that came from a `RECUPERA_*` variable rather than
/// from the command line: that is bad configuration (exit 78), and the
/// message names the variable, not a flag nobody typed. `None` when the
/// value was typed (an ordinary usage error).
pub fn env_problem(e: &clap::Error, args: &[std::ffi::OsString], lang: Lang) -> Option<String> {
    let mut pairs = Vec::new();
    flag_variables(&crate::cli::command(lang), &mut pairs);
    let typed = |flag: &str| {
        args.iter().filter_map(|a| a.to_str()).any(|a| {
            a == flag
                || a.strip_prefix(flag)
                    .is_some_and(|rest| rest.starts_with('='))
        })
    };
    let var_of = |flag: &str| {
        pairs
            .iter()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.clone())
            .filter(|v| std::env::var_os(v).is_some())
    };
    match e.kind() {
        // Which argument is not UTF-8 clap does not say: a variable, when
        // every word typed is text and a variable is not.
        ErrorKind::InvalidUtf8 => {
            if args.iter().skip(1).any(|a| a.to_str().is_none()) {
                return None;
            }
            let var = pairs
                .iter()
                .map(|(_, v)| v)
                .find(|v| std::env::var_os(v).is_some_and(|x| x.to_str().is_none()))?;
            Some(tl(M::EnvNotUtf8, lang, &[("var", var)]))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = ctx(e, ContextKind::InvalidArg)?;
            let flag = arg.split_whitespace().next()?.to_string();
            if typed(&flag) {
                return None;
            }
            let var = var_of(&flag)?;
            let value = ctx(e, ContextKind::InvalidValue).unwrap_or_default();
            if value.trim().is_empty() {
                return Some(tl(M::EnvEmpty, lang, &[("var", &var)]));
            }
            let valid = ctx(e, ContextKind::ValidValue).unwrap_or_default();
            Some(if valid.is_empty() {
                tl(
                    M::EnvBadValue,
                    lang,
                    &[("var", &var), ("value", &crate::i18n::visible(&value))],
                )
            } else {
                tl(
                    M::EnvBadChoice,
                    lang,
                    &[
                        ("var", &var),
                        ("value", &crate::i18n::visible(&value)),
                        ("valid", &valid),
                    ],
                )
            })
        }
        _ => None,
    }
}

/// `--json` on a line clap refused: typed as the option, not as a value
/// after `--` (`user show -- X --json` names an account "--json").
pub fn json_typed(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Our message for a clap error, or `None` to let clap print its own
/// (help, version, and rare kinds).
pub fn message(e: &clap::Error, lang: Lang) -> Option<String> {
    let arg = ctx(e, ContextKind::InvalidArg).unwrap_or_default();
    let value = ctx(e, ContextKind::InvalidValue).unwrap_or_default();
    let mut msg = match e.kind() {
        ErrorKind::InvalidUtf8 => M::UsageUtf8.text(lang).to_string(),
        // A word where no more are taken (`user show 900102030 extra`) is
        // not an option.
        ErrorKind::UnknownArgument if !arg.starts_with('-') => tl(
            M::UsageExtraArg,
            lang,
            &[("arg", &crate::i18n::quote(&arg))],
        ),
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
        // `recupera user --json`: the commands it could be (not the hidden
        // ones, such as `mail deliver`).
        ErrorKind::MissingSubcommand => {
            let cmd = ctx(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            let mut c = crate::cli::command(lang);
            for name in cmd.split_whitespace().skip(1) {
                c = c.find_subcommand(name)?.clone();
            }
            let names: Vec<&str> = c
                .get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(clap::Command::get_name)
                .collect();
            tl(
                M::UsageMissingCommand,
                lang,
                &[("cmd", &cmd), ("commands", &names.join(", "))],
            )
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    /// What recupera says of `line`, in English; `None`: clap's own text.
    fn said(line: &[&str]) -> Option<String> {
        let e = crate::cli::command(Lang::En)
            .try_get_matches_from(line)
            .unwrap_err();
        message(&e, Lang::En)
    }

    const MORE: &str = "\nFor more information, try: recupera --help";

    #[test]
    fn each_usage_error_is_told_in_our_words() {
        let cases: &[(&[&str], String)] = &[
            (
                &["recupera", "user", "list", "--frobnicate"],
                "Unknown option: --frobnicate.".into(),
            ),
            (
                &["recupera", "usr"],
                "Unknown command: usr. Did you mean «user»?".into(),
            ),
            (
                &["recupera", "--lang", "fr", "user", "list"],
                "Invalid value «fr» for --lang <LANG>; possible values: es, en.".into(),
            ),
            (
                &["recupera", "user", "list", "--lang"],
                "--lang <LANG> needs a value.".into(),
            ),
            (
                &["recupera", "audit", "--limit", "diez"],
                "Invalid value for --limit <N>: «diez».".into(),
            ),
            (
                &["recupera", "user", "show", "900102030", "extra"],
                "«extra» is one word too many: this command takes no more (quote a single \
                 value with spaces)."
                    .into(),
            ),
            (
                &["recupera", "mail", "--json"],
                "recupera mail needs a command: list, retry.".into(),
            ),
            (
                &["recupera", "user", "--agent", "a"],
                "recupera user needs a command: add, list, show, unlock, disable, enable, \
                 edit, delete, import, export."
                    .into(),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(said(line), Some(format!("{want}{MORE}")), "{line:?}");
        }
        let missing = said(&["recupera", "mail", "deliver"]).unwrap();
        assert!(missing.starts_with("Missing --id <ID>"), "{missing}");
        assert!(missing.ends_with(MORE), "{missing}");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let line = [
                OsString::from("recupera"),
                OsString::from("--agent"),
                OsString::from_vec(vec![b'a', 0xff]),
                OsString::from("user"),
                OsString::from("list"),
            ];
            let e = crate::cli::command(Lang::En)
                .try_get_matches_from(line)
                .unwrap_err();
            let want = format!("{}{MORE}", M::UsageUtf8.text(Lang::En));
            assert_eq!(message(&e, Lang::En), Some(want));
        }
        // Help and version are clap's.
        assert_eq!(said(&["recupera", "--help"]), None);
        assert_eq!(said(&["recupera", "--version"]), None);
    }

    #[test]
    fn an_option_given_twice_is_taken_once_the_last_value_winning() {
        for line in [
            &["recupera", "--json", "--json", "db", "status"][..],
            &["recupera", "user", "list", "--json", "--json"],
        ] {
            let m = crate::cli::command(Lang::En).try_get_matches_from(line);
            assert!(m.is_ok(), "{line:?}");
        }
        let m = crate::cli::command(Lang::En)
            .try_get_matches_from(["recupera", "--agent", "a", "--agent", "b", "user", "list"])
            .unwrap();
        assert_eq!(m.get_one::<String>("agent").map(String::as_str), Some("b"));
    }

    #[test]
    fn every_setting_variable_is_found_once_beside_its_flag() {
        let mut pairs = Vec::new();
        flag_variables(&crate::cli::command(Lang::En), &mut pairs);
        for want in [
            ("--db", "RECUPERA_DB"),
            ("--outbox", "RECUPERA_OUTBOX"),
            ("--agent", "RECUPERA_AGENT"),
            ("--code", "RECUPERA_CODE"),
        ] {
            let n = pairs
                .iter()
                .filter(|(f, v)| f == want.0 && v == want.1)
                .count();
            assert_eq!(n, 1, "{want:?} in {pairs:?}");
        }
    }

    #[test]
    fn json_after_a_double_dash_is_a_word_not_the_option() {
        let line = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(json_typed(&line(&[
            "recupera", "user", "show", "x", "--json"
        ])));
        assert!(!json_typed(&line(&[
            "recupera", "user", "show", "--", "x", "--json"
        ])));
    }

    #[test]
    fn a_suggested_option_is_offered() {
        let m = said(&["recupera", "user", "list", "--jsn"]).unwrap();
        assert!(
            m.starts_with("Unknown option: --jsn. Did you mean «--json»?"),
            "{m}"
        );
    }

    #[test]
    fn the_language_before_parsing_comes_from_a_typed_lang() {
        let lang = |args: &[&str]| early_lang(&args.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(lang(&["recupera", "--lang", "en", "user"]), Lang::En);
        assert_eq!(lang(&["recupera", "user", "--lang=es"]), Lang::Es);
        // A value that names no language is passed over; a later one counts.
        assert_eq!(lang(&["recupera", "--lang", "fr", "--lang=en"]), Lang::En);
        assert_eq!(lang(&["recupera", "--lang=de", "--lang", "es"]), Lang::Es);
        // The first that names one wins.
        assert_eq!(lang(&["recupera", "--lang=es", "--lang", "en"]), Lang::Es);
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let args = vec![
                OsString::from("recupera"),
                OsString::from_vec(vec![0xff]),
                OsString::from("--lang=en"),
            ];
            assert_eq!(early_lang(&args), Lang::En);
        }
    }
}
