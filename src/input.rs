//! What people type, parsed into domain values with messages in their
//! language: the one place commands turn strings into NITs, emails,
//! identifiers, names and passwords.

use crate::domain::account::{AccountType, Ident, NAME_MAX};
use crate::domain::email::Email;
use crate::domain::nit::Nit;
use crate::domain::password::Password;
use crate::error::{Error, Result, email_error, ident_error, nit_error};
use crate::i18n::{M, t};
use crate::ui::{StdinPassword, Ui, read_stdin_password};
use zeroize::Zeroizing;

pub fn nit(s: &str) -> Result<Nit> {
    Nit::parse(s).map_err(|e| nit_error(s, e))
}

pub fn email(s: &str) -> Result<Email> {
    Email::parse(s).map_err(|e| email_error(s, e))
}

pub fn ident(raw: &str, kind: Option<AccountType>) -> Result<Ident> {
    Ident::parse(raw, kind).map_err(|e| ident_error(raw, e))
}

pub fn username(s: &str) -> Result<String> {
    Ok(crate::domain::account::parse_username(s)?)
}

/// What is wrong with a free-text field (a name, a disable reason), if
/// anything: more than 200 characters (`too_long`), or a control or
/// invisible formatting character (`invalid`).
pub fn text_problem(s: &str, too_long: M, invalid: M) -> Option<M> {
    if s.chars().count() > NAME_MAX {
        Some(too_long)
    } else if s.chars().any(crate::i18n::is_hazard) {
        Some(invalid)
    } else {
        None
    }
}

fn free_text(s: &str, too_long: M, invalid: M) -> Result<String> {
    let s = s.trim();
    match text_problem(s, too_long, invalid) {
        Some(m) => Err(Error::Data(t(m).to_string())),
        None => Ok(s.to_string()),
    }
}

/// A person's or company's name.
pub fn name(s: &str) -> Result<String> {
    free_text(s, M::NameTooLong, M::NameInvalid)
}

/// A disable reason: the rules of a name, told as a reason's.
pub fn reason(s: &str) -> Result<String> {
    free_text(s, M::ReasonTooLong, M::ReasonInvalid)
}

/// Where a password comes from, decided before anything is read.
pub enum PasswordSource {
    Stdin,
    Prompt,
}

/// `--password-stdin`, else a prompt in a terminal, else a usage error
/// naming the flag (never a hang).
pub fn password_source(ui: &Ui, stdin_flag: bool) -> Result<PasswordSource> {
    if stdin_flag {
        Ok(PasswordSource::Stdin)
    } else if ui.interactive {
        Ok(PasswordSource::Prompt)
    } else {
        Err(Error::Usage(t(M::MissingPasswordStdin).to_string()))
    }
}

/// A new password from stdin (checking the optional confirmation line),
/// normalised; policy checks are the caller's.
pub fn new_password_from_stdin() -> Result<Password> {
    let StdinPassword {
        password,
        confirmation,
    } = read_stdin_password()?;
    let pw = Password::new(&password)?;
    if let Some(c) = confirmation {
        crate::domain::password::confirm(&pw, &c)?;
    }
    Ok(pw)
}

/// An existing password (login) from stdin: one line, not policy-checked;
/// a second line, if given, must be the same (README: a confirmation).
pub fn password_from_stdin() -> Result<Zeroizing<String>> {
    login_password(read_stdin_password()?)
}

/// The password of a login's stdin, its confirmation line (if any) the
/// same.
fn login_password(lines: StdinPassword) -> Result<Zeroizing<String>> {
    let StdinPassword {
        password,
        confirmation,
    } = lines;
    match confirmation {
        Some(c) if *c != *password => Err(Error::Data(t(M::PwMismatch).to_string())),
        _ => Ok(password),
    }
}

/// A small file named in the settings (the pepper, a CA certificate):
/// a regular file only, read up to `limit` bytes. `/dev/zero` or a pipe
/// named by mistake is refused at once instead of read until memory runs
/// out.
pub fn read_small_file(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            t(M::FileNotRegular).to_string(),
        ));
    }
    let mut bytes = Vec::new();
    f.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            crate::i18n::tf(M::FileTooBig, &[("max", &(limit / 1024))]),
        ));
    }
    Ok(bytes)
}

/// The registered email: as given, or asked for in a terminal ("Email"),
/// or a usage error naming `--email`.
pub fn email_or_prompt(ui: &Ui, given: Option<&str>) -> Result<Email> {
    ui.value_or_prompt(given, "--email", t(M::PromptEmail), email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_confirmation_line_must_be_the_password() {
        let lines = |p: &str, c: Option<&str>| StdinPassword {
            password: Zeroizing::new(p.to_string()),
            confirmation: c.map(|c| Zeroizing::new(c.to_string())),
        };
        assert_eq!(
            login_password(lines("uno dos", None)).unwrap().as_str(),
            "uno dos"
        );
        assert_eq!(
            login_password(lines("uno dos", Some("uno dos")))
                .unwrap()
                .as_str(),
            "uno dos"
        );
        match login_password(lines("uno dos", Some("uno tres"))) {
            Err(Error::Data(m)) => assert_eq!(m, t(M::PwMismatch)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_small_file_is_a_regular_file_within_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pepper");
        std::fs::write(&f, vec![7u8; 2048]).unwrap();
        assert_eq!(read_small_file(&f, 2048).unwrap().len(), 2048);
        let e = read_small_file(&f, 1024).unwrap_err();
        assert_eq!(
            e.to_string(),
            crate::i18n::tf(M::FileTooBig, &[("max", &1)])
        );
        let e = read_small_file(dir.path(), 1024).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        #[cfg(unix)]
        {
            let e = read_small_file(std::path::Path::new("/dev/zero"), 1024).unwrap_err();
            assert_eq!(e.to_string(), t(M::FileNotRegular));
        }
    }

    #[test]
    fn a_username_is_kept_as_typed_less_the_spaces_around_it() {
        assert_eq!(username("  ana.perez_2 ").unwrap(), "ana.perez_2");
        for bad in ["ab", "ana perez", "12345", "ana@x"] {
            assert!(matches!(username(bad), Err(Error::Data(_))), "{bad}");
        }
    }

    #[test]
    fn a_name_has_at_most_200_characters_and_nothing_hidden() {
        assert_eq!(
            name("  Ferretería Núñez S.A.S. ").unwrap(),
            "Ferretería Núñez S.A.S."
        );
        assert_eq!(name("").unwrap(), "");
        // Characters, not bytes: 200 accented letters are 400 bytes.
        let most = "ñ".repeat(NAME_MAX);
        assert_eq!(name(&most).unwrap(), most);
        let e = name(&format!("{most}a")).unwrap_err();
        assert_eq!(e.to_string(), t(M::NameTooLong));
        for hidden in [
            "Ana\u{1b}[2J",
            "Ana\u{202e}zeréP",
            "Ana\u{200b}",
            "Ana\nPérez",
        ] {
            let e = name(hidden).unwrap_err();
            assert_eq!(e.to_string(), t(M::NameInvalid), "{hidden:?}");
        }
    }
}
