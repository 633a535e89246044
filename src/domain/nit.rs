//! Colombian NIT (Número de Identificación Tributaria).
//!
//! Invariants:
//! - A [`Nit`] holds only the body, digits only, without the DIAN check digit,
//!   1–15 digits, no leading zero. That is the form the manual asks for
//!   ("NIT sin dígito verificador") and the form stored in the database.
//! - Input given *with* a check digit (`900.102.030-4`) is accepted only when
//!   the digit is right; a wrong digit is refused naming the expected one, so
//!   a typo in the body is caught instead of silently creating another NIT.

use std::fmt;

/// DIAN weights, applied from the rightmost digit of the body.
const WEIGHTS: [u32; 15] = [3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71];

/// Longest body the DIAN algorithm defines weights for.
pub const MAX_DIGITS: usize = WEIGHTS.len();

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nit(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NitError {
    Empty,
    /// A character that is not a digit or an accepted separator.
    NotDigit(char),
    TooLong,
    LeadingZero,
    /// More than one `-`, or a check digit that is not one digit.
    BadCheckDigitForm,
    /// The check digit given does not match the body.
    WrongCheckDigit {
        given: u8,
        expected: u8,
    },
}

/// The DIAN check digit of a body of digits.
///
/// `body` must be ASCII digits, at most [`MAX_DIGITS`] of them.
pub fn check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .zip(WEIGHTS.iter())
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let r = sum % 11;
    // r < 11, so the conversion cannot fail.
    let r = r as u8;
    if r < 2 { r } else { 11 - r }
}

impl Nit {
    /// Parses a NIT as people type it: dots, spaces and commas are ignored;
    /// an optional `-D` check digit is verified and stripped.
    pub fn parse(input: &str) -> Result<Nit, NitError> {
        let mut body = String::with_capacity(input.len().min(32));
        // None: no `-` yet; Some(None): a `-`, no digit yet.
        let mut dv: Option<Option<u8>> = None;
        for c in input.trim().chars() {
            match c {
                '.' | ' ' | ',' => {}
                '-' => {
                    if dv.is_some() {
                        return Err(NitError::BadCheckDigitForm);
                    }
                    dv = Some(None);
                }
                // Refused at the first digit too many, so a huge input
                // costs nothing.
                '0'..='9' => match dv {
                    None if body.len() >= MAX_DIGITS => return Err(NitError::TooLong),
                    None => body.push(c),
                    Some(Some(_)) => return Err(NitError::BadCheckDigitForm),
                    Some(None) => dv = Some(Some(c as u8 - b'0')),
                },
                other => return Err(NitError::NotDigit(other)),
            }
        }
        if body.is_empty() {
            return Err(NitError::Empty);
        }
        if body.starts_with('0') {
            return Err(NitError::LeadingZero);
        }
        if let Some(dv) = dv {
            let Some(given) = dv else {
                return Err(NitError::BadCheckDigitForm);
            };
            let expected = check_digit(&body);
            if given != expected {
                return Err(NitError::WrongCheckDigit { given, expected });
            }
        }
        Ok(Nit(body))
    }

    /// Rebuilds a NIT read back from storage (already validated when stored).
    pub fn from_stored(body: String) -> Nit {
        Nit(body)
    }

    /// The body, digits only: what is stored and what the email shows.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn check_digit(&self) -> u8 {
        check_digit(&self.0)
    }

    /// `900.102.030-4`: the body grouped in thousands, then the check digit.
    pub fn display(&self) -> String {
        let digits = self.0.as_bytes();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
        for (i, d) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push('.');
            }
            out.push(char::from(*d));
        }
        out.push('-');
        out.push(char::from(b'0' + self.check_digit()));
        out
    }
}

impl fmt::Display for Nit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl fmt::Debug for Nit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nit({})", self.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: [&str; 7] = [
        "800.003.122-6",
        "830.015.428-5",
        "890.900.841-9",
        "900.206.480-2",
        "899.999.034-1",
        "17.343.020-1",
        "6.386.949-2",
    ];

    #[test]
    fn spec_vectors_are_valid_and_round_trip() {
        for v in VALID {
            let nit = Nit::parse(v).unwrap_or_else(|e| panic!("{v}: {e:?}"));
            assert_eq!(nit.display(), v);
            assert!(!nit.as_str().contains(['.', '-']));
        }
    }

    #[test]
    fn manual_example() {
        let nit = Nit::parse("900102030").unwrap();
        assert_eq!(nit.check_digit(), 4);
        assert_eq!(nit.display(), "900.102.030-4");
        assert_eq!(Nit::parse("900.102.030-4").unwrap(), nit);
        assert_eq!(Nit::parse(" 900 102 030 ").unwrap(), nit);
        assert_eq!(Nit::parse("900,102,030").unwrap(), nit);
    }

    #[test]
    fn wrong_check_digit_names_the_expected_one() {
        for v in VALID {
            let (body, dv) = v.rsplit_once('-').unwrap();
            let good: u8 = dv.parse().unwrap();
            let bad = (good + 1) % 10;
            assert_eq!(
                Nit::parse(&format!("{body}-{bad}")),
                Err(NitError::WrongCheckDigit {
                    given: bad,
                    expected: good
                })
            );
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(Nit::parse(""), Err(NitError::Empty));
        assert_eq!(Nit::parse(" .. "), Err(NitError::Empty));
        assert_eq!(Nit::parse("90010A030"), Err(NitError::NotDigit('A')));
        assert_eq!(Nit::parse(&"9".repeat(40)), Err(NitError::TooLong));
        assert_eq!(Nit::parse(&"9".repeat(16)), Err(NitError::TooLong));
        assert!(Nit::parse(&"9".repeat(15)).is_ok());
        assert_eq!(Nit::parse("0900102030"), Err(NitError::LeadingZero));
        assert_eq!(Nit::parse("900102030-44"), Err(NitError::BadCheckDigitForm));
        assert_eq!(Nit::parse("900102030-"), Err(NitError::BadCheckDigitForm));
        assert_eq!(Nit::parse("9-0-1"), Err(NitError::BadCheckDigitForm));
        assert_eq!(Nit::parse("-4"), Err(NitError::Empty));
        let many = "1".repeat(16);
        assert_eq!(
            Nit::parse(&format!("900102030-{many}")),
            Err(NitError::BadCheckDigitForm)
        );
        assert_eq!(Nit::parse(&format!("{many}-7")), Err(NitError::TooLong));
    }

    #[test]
    fn shown_grouped_with_the_check_digit() {
        let n = Nit::parse("900102030").unwrap();
        assert_eq!(n.to_string(), "900.102.030-4");
        assert_eq!(format!("{n:?}"), "Nit(900.102.030-4)");
        assert_eq!(Nit::parse("1").unwrap().to_string(), "1-8");
    }

    #[test]
    fn check_digit_zero_and_one_cases() {
        // r < 2 gives r itself: find bodies for both branches and check the
        // round trip holds for every body from 1 to 2000.
        let mut seen = [false; 11];
        for n in 1..2000u32 {
            let body = n.to_string();
            let dv = check_digit(&body);
            assert!(dv <= 9, "{body} gave {dv}");
            seen[dv as usize] = true;
            let nit = Nit::parse(&format!("{body}-{dv}")).unwrap();
            assert_eq!(nit.as_str(), body);
        }
        assert!(seen[0] && seen[1]);
    }
}
