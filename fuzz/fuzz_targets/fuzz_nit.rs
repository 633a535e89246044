//! `Nit::parse`: never panics; an accepted NIT is 1–15 ASCII digits without a
//! leading zero and survives `display()` / `as_str()` round trips; a wrong
//! check digit names the right one, and the right one is then accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recupera::domain::nit::{MAX_DIGITS, Nit, NitError, check_digit};

fuzz_target!(|data: &[u8]| {
    // Valid UTF-8 is used as is; anything else goes through the lossy
    // conversion, so every input still exercises the parser.
    let input = String::from_utf8_lossy(data);
    check(&input);
});

fn check(input: &str) {
    match Nit::parse(input) {
        Ok(nit) => {
            let body = nit.as_str();
            assert!(
                (1..=MAX_DIGITS).contains(&body.len()),
                "body length {} out of 1..={MAX_DIGITS}: {body:?} from {input:?}",
                body.len()
            );
            assert!(
                body.bytes().all(|b| b.is_ascii_digit()),
                "non-digit in body {body:?} from {input:?}"
            );
            assert!(
                !body.starts_with('0'),
                "leading zero in {body:?} from {input:?}"
            );
            let dv = nit.check_digit();
            assert!(dv <= 9, "check digit {dv} for {body:?}");
            assert_eq!(dv, check_digit(body));

            let shown = nit.display();
            assert_eq!(
                Nit::parse(&shown).as_ref(),
                Ok(&nit),
                "display() {shown:?} does not parse back (input {input:?})"
            );
            assert!(shown.ends_with(&format!("-{dv}")), "{shown:?}");
            assert_eq!(
                shown.chars().filter(|c| c.is_ascii_digit()).count(),
                body.len() + 1,
                "{shown:?}"
            );
            assert_eq!(
                Nit::parse(body).as_ref(),
                Ok(&nit),
                "as_str() {body:?} does not parse back (input {input:?})"
            );
            assert_eq!(format!("{nit}"), shown);

            // The body is the digits typed before any '-'.
            let typed: String = input
                .split('-')
                .next()
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            assert_eq!(
                typed, body,
                "body differs from the digits typed in {input:?}"
            );
        }
        Err(NitError::WrongCheckDigit { given, expected }) => {
            assert!(given <= 9 && expected <= 9, "{given} {expected}");
            assert_ne!(
                given, expected,
                "WrongCheckDigit with equal digits for {input:?}"
            );
            let (head, tail) = input
                .split_once('-')
                .unwrap_or_else(|| panic!("WrongCheckDigit without '-' in {input:?}"));
            // Same input, with the check digit replaced by the expected one.
            let fixed_tail: String = tail
                .chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        char::from(b'0' + expected)
                    } else {
                        c
                    }
                })
                .collect();
            let fixed = format!("{head}-{fixed_tail}");
            let nit = Nit::parse(&fixed).unwrap_or_else(|e| {
                panic!("{input:?}: expected digit {expected}, but {fixed:?} gives {e:?}")
            });
            assert_eq!(nit.check_digit(), expected);
            assert_eq!(Nit::parse(head).as_ref(), Ok(&nit), "{input:?}");
        }
        Err(_) => {}
    }
}
