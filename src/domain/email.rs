//! Email addresses.
//!
//! Invariants:
//! - An [`Email`] is exactly one address (`local@domain`), parsed by the
//!   `email_address` crate (RFC 5321/5322 addr-spec), at most 254 bytes,
//!   local part at most 64 bytes, no display name, no comments.
//! - `,` `;` CR and LF are refused before parsing: they are how a second
//!   recipient or a header is smuggled into a message.
//! - Exactly one `@`; the local part is ASCII and unquoted.
//! - The domain is normalised with IDNA (UTS 46: case-folded, NFC, the
//!   Unicode form of a punycode label) and stored that way, so
//!   `pepe@ÑANDÚ.co`, `pepe@ñandú.co` and `pepe@xn--and-6ma2c.co` are one
//!   address; comparisons ignore the local part's case too. Mail is sent to
//!   the ASCII (punycode) form, which every server accepts.

use std::fmt;
use std::str::FromStr;

pub const MAX_LEN: usize = 254;
pub const MAX_LOCAL_LEN: usize = 64;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailError {
    Empty,
    /// `,` `;` CR or LF: several recipients or header injection.
    Forbidden(char),
    TooLong,
    LocalTooLong,
    NoAt,
    Invalid,
}

impl Email {
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let s = input.trim_matches([' ', '\t']);
        if let Some(c) = s.chars().find(|c| matches!(c, ',' | ';' | '\r' | '\n')) {
            return Err(EmailError::Forbidden(c));
        }
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        let Some(at) = s.rfind('@') else {
            return Err(EmailError::NoAt);
        };
        if at > MAX_LOCAL_LEN {
            return Err(EmailError::LocalTooLong);
        }
        if s.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        // Controls, spaces and invisible characters (zero-width, bidi,
        // soft hyphen) would make two addresses look alike to a person.
        if s.chars().any(is_confusable) {
            return Err(EmailError::Invalid);
        }
        // RFC 5322 allows quoted local parts (`"a@evil.co"@good.co`) and
        // SMTPUTF8 allows non-ASCII ones; no customer mailbox needs either,
        // and both make "which address is this" ambiguous to people and to
        // servers. One `@`, an ASCII local part, no quotes (found by fuzzing).
        let local = &s[..at];
        if s.matches('@').count() != 1 || local.contains('"') || !local.is_ascii() {
            return Err(EmailError::Invalid);
        }
        let parsed = email_address::EmailAddress::from_str(s).map_err(|_| EmailError::Invalid)?;
        // `from_str` also accepts `Name <a@b>`; only a bare address is an email
        // here, so the parsed form must be the whole input.
        if parsed.as_str() != s || !parsed.display_part().is_empty() {
            return Err(EmailError::Invalid);
        }
        let local = parsed.local_part();
        let domain = parsed.domain();
        // A domain must have a dot: `user@localhost` is never a customer's
        // mailbox, and refusing it catches `juan@gmailcom`.
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(EmailError::Invalid);
        }
        let (unicode, ok) = idna::domain_to_unicode(domain);
        if ok.is_err() || idna::domain_to_ascii(&unicode).is_err() {
            return Err(EmailError::Invalid);
        }
        // UTS 46 maps some characters to others (U+3000 to a space): the
        // Unicode form is checked again.
        if unicode.chars().any(is_confusable) {
            return Err(EmailError::Invalid);
        }
        Ok(Email(format!("{local}@{unicode}")))
    }

    /// Rebuilds an address read back from storage (validated when stored).
    pub fn from_stored(s: String) -> Email {
        Email(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(l, _)| l)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The address with its domain in ASCII (punycode): what goes on the
    /// wire.
    pub fn ascii(&self) -> String {
        let domain =
            idna::domain_to_ascii(self.domain()).unwrap_or_else(|_| self.domain().to_string());
        format!("{}@{domain}", self.local_part())
    }

    /// Same mailbox, ignoring case.
    pub fn matches(&self, other: &Email) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }

    /// `j****@gmail.com`: what the manual's step 03 shows. Only the first
    /// character of the local part survives, and the star count is fixed so
    /// the mask does not reveal the length.
    pub fn masked(&self) -> String {
        let first: String = self.local_part().chars().take(1).collect();
        format!("{first}****@{}", self.domain())
    }
}

/// Characters no address may contain: controls, whitespace of any kind,
/// and the invisible ones below.
pub fn is_confusable(c: char) -> bool {
    c.is_control() || c.is_whitespace() || is_invisible(c)
}

/// Format characters that show as nothing: zero-width spaces and joiners,
/// bidi marks, embeddings, overrides and isolates, the soft hyphen, the
/// word joiner and the BOM.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_addresses() {
        let e = Email::parse(" juan.perez@Gmail.COM ").unwrap();
        assert_eq!(e.as_str(), "juan.perez@gmail.com");
        assert_eq!(e.masked(), "j****@gmail.com");
        assert!(e.matches(&Email::parse("JUAN.PEREZ@gmail.com").unwrap()));
        assert!(Email::parse("a+tag@sub.example.co").is_ok());
    }

    #[test]
    fn refuses_several_recipients_and_injection() {
        assert_eq!(
            Email::parse("a@b.co,c@d.co"),
            Err(EmailError::Forbidden(','))
        );
        assert_eq!(
            Email::parse("a@b.co;c@d.co"),
            Err(EmailError::Forbidden(';'))
        );
        assert_eq!(
            Email::parse("a@b.co\r\nBcc: x@y.co"),
            Err(EmailError::Forbidden('\r'))
        );
        assert_eq!(Email::parse("a@b.co\nx"), Err(EmailError::Forbidden('\n')));
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("juan.gmail.com"), Err(EmailError::NoAt));
        assert_eq!(
            Email::parse(&format!("{}@gmail.com", "a".repeat(10_000))),
            Err(EmailError::LocalTooLong)
        );
        assert_eq!(
            Email::parse(&format!("a@{}.com", "b".repeat(300))),
            Err(EmailError::TooLong)
        );
        for bad in [
            "Juan <juan@gmail.com>",
            "juan@localhost",
            "juan@",
            "@gmail.com",
            "ju an@gmail.com",
            "juan@@gmail.com",
            "juan@[127.0.0.1]",
            "\"@\"@e.co",
            "\"a@evil.com\"@good.co",
            "\"juan\"@gmail.com",
            "josé@empresa.co",
            "a@ex\u{200B}ample.co",
            "a\u{200D}b@example.co",
            "a@example.co\u{202E}",
            "a@exam\u{00AD}ple.co",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn internationalised_domains_are_one_address() {
        let upper = Email::parse("pepe@ÑANDÚ.co").unwrap();
        let lower = Email::parse("pepe@ñandú.co").unwrap();
        let puny = Email::parse("pepe@xn--and-6ma2c.co").unwrap();
        assert_eq!(upper.as_str(), "pepe@ñandú.co");
        assert_eq!(upper, lower);
        assert_eq!(puny, lower);
        assert!(upper.matches(&puny));
        assert_eq!(upper.ascii(), "pepe@xn--and-6ma2c.co");
        assert_eq!(
            Email::parse("a@Example.CO").unwrap().ascii(),
            "a@example.co"
        );
        assert!(
            Email::parse("a@xn--zz.co").is_err(),
            "a broken punycode label"
        );
    }

    #[test]
    fn confusable_characters() {
        // Control but not whitespace, whitespace but not control, both,
        // invisible only.
        for c in [
            '\u{1}', '\u{7F}', '\u{3000}', '\u{A0}', ' ', '\t', '\u{85}', '\u{200B}',
        ] {
            assert!(is_confusable(c), "{:?}", c);
        }
        for c in ['a', '.', '-', 'ñ', '@'] {
            assert!(!is_confusable(c), "{c}");
        }
        assert!(Email::parse("a@exa\u{3000}mple.co").is_err());
        assert!(Email::parse("<juan@gmail.com>").is_err());
    }

    #[test]
    fn length_limits_are_inclusive() {
        let local = "a".repeat(MAX_LOCAL_LEN);
        assert!(Email::parse(&format!("{local}@gmail.com")).is_ok());
        assert_eq!(
            Email::parse(&format!("{local}b@gmail.com")),
            Err(EmailError::LocalTooLong)
        );
        // 254 bytes in all: `a@` then labels of 63 characters.
        let label = "b".repeat(63);
        let domain = format!("{label}.{label}.{label}.{}.co", "c".repeat(57));
        let longest = format!("a@{domain}");
        assert_eq!(longest.len(), MAX_LEN);
        assert_eq!(Email::parse(&longest).unwrap().as_str(), longest);
        assert_eq!(
            Email::parse(&format!("ab@{domain}")),
            Err(EmailError::TooLong)
        );
    }

    #[test]
    fn shown_as_the_address() {
        let e = Email::parse("Ana@Ñandú.co").unwrap();
        assert_eq!(e.to_string(), "Ana@ñandú.co");
        assert_eq!(format!("{e:?}"), "Email(Ana@ñandú.co)");
        assert_eq!(e.local_part(), "Ana");
        assert_eq!(e.domain(), "ñandú.co");
        assert!(!e.matches(&Email::parse("ana@nandu.co").unwrap()));
    }

    #[test]
    fn mask_hides_length() {
        let a = Email::parse("ab@x.co").unwrap().masked();
        let b = Email::parse("abcdefghij@x.co").unwrap().masked();
        assert_eq!(a.len(), b.len());
    }
}
