//! recupera: the ranked frequency lists made ready at build time, so the
//! first estimate of a process does not first spend ~14 ms hashing 94,000
//! words into HashMaps (see VENDORED.md). Each list becomes its words
//! concatenated, their end offsets, their ranks and an open-addressing hash
//! table of word numbers: plain bytes in `.rodata`, with no pointer per word
//! (a pointer per word would be a dynamic relocation for the loader to
//! apply at every start of every process). `fnv1a` must match
//! `src/frequency_lists.rs`.

// A build script fails the build by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

const LISTS: [(&str, &str); 6] = [
    ("PASSWORDS", "passwords"),
    ("ENGLISH_WIKI", "english_wiki"),
    ("FEMALE_NAMES", "female_names"),
    ("SURNAMES", "surnames"),
    ("US_TV_AND_FILM", "us_tv_and_film"),
    ("MALE_NAMES", "male_names"),
];

/// The size of the filter of all the lists' words: 2^20 bits (128 KiB),
/// ~90,000 of them set; it lets ~8% of the substrings that are no listed
/// word through (7.9% in the tests). `src/frequency_lists.rs` takes it
/// from the array's size.
const ANY_BITS: usize = 1 << 20;

/// The odd constant a hash is multiplied by before its top bits pick the
/// filter's bit; written into the generated code for the run-time side.
const ANY_MIX: u64 = 0x9e37_79b9_7f4a_7c15;

fn main() {
    let dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut code = String::new();
    // One bit per FNV-1a hash of every word of every list (VENDORED.md,
    // change 7): `src/frequency_lists.rs` reads the same bits.
    let mut any = vec![0u8; ANY_BITS / 8];
    for (name, file) in LISTS {
        let path = format!("data/{file}.txt");
        println!("cargo:rerun-if-changed={path}");
        let text = std::fs::read_to_string(&path).unwrap();
        // As upstream's `.enumerate().collect::<HashMap>()`: rank = position
        // + 1, and a word listed twice keeps its last rank.
        let mut ranks = std::collections::BTreeMap::new();
        for (i, w) in text.trim_end_matches('\n').split(',').enumerate() {
            ranks.insert(w, i as u32 + 1);
        }
        let (mut words, mut ends, mut rank_bytes) = (String::new(), Vec::new(), Vec::new());
        let size = (2 * ranks.len()).next_power_of_two();
        let mut slots = vec![0u32; size];
        for (n, (w, r)) in ranks.iter().enumerate() {
            words.push_str(w);
            ends.extend_from_slice(&(words.len() as u32).to_le_bytes());
            rank_bytes.extend_from_slice(&r.to_le_bytes());
            let h = fnv1a(w.as_bytes());
            let bit = (h.wrapping_mul(ANY_MIX) >> (64 - ANY_BITS.trailing_zeros())) as usize;
            any[bit / 8] |= 1 << (bit % 8);
            let mut i = h as usize & (size - 1);
            while slots[i] != 0 {
                i = (i + 1) & (size - 1);
            }
            slots[i] = n as u32 + 1;
        }
        let slot_bytes: Vec<u8> = slots.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(dir.join(format!("{file}.slots")), &slot_bytes).unwrap();
        std::fs::write(dir.join(format!("{file}.words")), &words).unwrap();
        std::fs::write(dir.join(format!("{file}.ends")), &ends).unwrap();
        std::fs::write(dir.join(format!("{file}.ranks")), &rank_bytes).unwrap();
        code.push_str(&format!(
            "pub(crate) static {name}: Ranked = Ranked {{\n    \
             words: include_str!(concat!(env!(\"OUT_DIR\"), \"/{file}.words\")),\n    \
             ends: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}.ends\")),\n    \
             ranks: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}.ranks\")),\n    \
             slots: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}.slots\")),\n    \
             max_len: {max_len},\n}};\n",
            max_len = ranks.keys().map(|w| w.len()).max().unwrap_or(0),
        ));
    }
    std::fs::write(dir.join("any.bits"), &any).unwrap();
    code.push_str(&format!(
        "pub(crate) static ANY_WORD: [u8; {}] = *include_bytes!(concat!(env!(\"OUT_DIR\"), \"/any.bits\"));\n\
         pub(crate) const ANY_MIX: u64 = {ANY_MIX:#x};\n",
        any.len()
    ));
    let mut f = std::fs::File::create(dir.join("ranked.rs")).unwrap();
    f.write_all(code.as_bytes()).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}

/// FNV-1a, 64 bits: the table's hash (the same function at run time).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
