//! `code::check_form`: never panics; accepts exactly the strings of `LEN`
//! characters drawn from `ALPHABET`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recupera::domain::code::{ALPHABET, CodeError, LEN, check_form};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    check(&input);
});

fn check(input: &str) {
    let in_alphabet = |c: char| c.is_ascii() && ALPHABET.contains(&(c as u8));
    let well_formed = input.chars().count() == LEN && input.chars().all(in_alphabet);
    match check_form(input) {
        Ok(()) => {
            assert_eq!(
                input.len(),
                LEN,
                "accepted {input:?} of {} bytes",
                input.len()
            );
            assert_eq!(input.chars().count(), LEN, "accepted {input:?}");
            assert!(
                input.chars().all(in_alphabet),
                "accepted {input:?} with a character outside ALPHABET"
            );
        }
        Err(e) => {
            assert!(!well_formed, "refused well-formed code {input:?}: {e:?}");
            match e {
                CodeError::LookAlike(c) => {
                    assert!("0OoIl1".contains(c), "LookAlike({c:?})");
                    assert!(input.contains(c));
                }
                CodeError::Invalid(c) => {
                    assert!(!in_alphabet(c), "Invalid({c:?}) is in ALPHABET");
                    assert!(input.contains(c));
                }
                CodeError::Length => {
                    assert_ne!(input.chars().count(), LEN, "Length for {input:?}")
                }
            }
        }
    }
}
