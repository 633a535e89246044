// recupera: the lists live in data/ and are sorted, concatenated and ranked
// at build time (build.rs); upstream built HashMaps from string constants
// at first use.

/// One ranked list: its words concatenated, the end offset of each and its
/// rank, and an open-addressing table of word numbers + 1 (0 = empty) by
/// FNV-1a hash; all u32, little-endian; and its longest word's length.
pub(crate) struct Ranked {
    words: &'static str,
    ends: &'static [u8],
    ranks: &'static [u8],
    slots: &'static [u8],
    /// The byte length of its longest word.
    max_len: usize,
}

/// FNV-1a, 64 bits: the table's hash (the same function in build.rs).
/// It reads a byte at a time, so a word's hash extends its prefix's:
/// `fnv1a(ab) == fnv1a_extend(fnv1a(a), b)`.
#[cfg(test)]
fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_extend(FNV1A_START, bytes)
}

/// FNV-1a's starting value (the hash of no bytes).
pub(crate) const FNV1A_START: u64 = 0xcbf2_9ce4_8422_2325;

/// `h` (the hash of some bytes) extended by `bytes`.
pub(crate) fn fnv1a_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn u32_at(bytes: &[u8], i: usize) -> usize {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[4 * i..4 * i + 4]);
    u32::from_le_bytes(b) as usize
}

impl Ranked {
    fn word(&self, i: usize) -> &'static [u8] {
        let start = if i == 0 { 0 } else { u32_at(self.ends, i - 1) };
        &self.words.as_bytes()[start..u32_at(self.ends, i)]
    }

    /// The rank of `w` (1 = most common), if listed.
    #[cfg(test)]
    pub(crate) fn get(&self, w: &str) -> Option<usize> {
        self.get_hashed(w, fnv1a(w.as_bytes()))
    }

    /// Every word listed (tests).
    #[cfg(test)]
    pub(crate) fn words(&self) -> impl Iterator<Item = &'static str> + '_ {
        (0..self.ends.len() / 4)
            .map(|i| std::str::from_utf8(self.word(i)).expect("the lists are UTF-8"))
    }

    /// The byte length of the longest word listed.
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// The rank of `w`, whose FNV-1a hash is `hash`, if listed.
    pub(crate) fn get_hashed(&self, w: &str, hash: u64) -> Option<usize> {
        let w = w.as_bytes();
        let mask = self.slots.len() / 4 - 1;
        let mut i = hash as usize & mask;
        loop {
            let n = u32_at(self.slots, i);
            if n == 0 {
                return None;
            }
            if self.word(n - 1) == w {
                return Some(u32_at(self.ranks, n - 1));
            }
            i = (i + 1) & mask;
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/ranked.rs"));

/// The size of `ANY_WORD` in bits (a power of two: `build.rs`).
const ANY_BITS: usize = ANY_WORD.len() * 8;

/// recupera (VENDORED.md, change 7): false when no list holds a word with
/// this FNV-1a hash, so none needs to be probed. One bit per hash of every
/// listed word, from the top bits of the hash times an odd constant (the
/// lists' tables index by its low bits): a lookup that misses, as almost every substring's does,
/// touches one line of a 128 KiB array instead of a line in each of six
/// tables of 1.4 MiB together, which in a fresh process are not in any
/// cache.
pub(crate) fn may_be_listed(hash: u64) -> bool {
    // Multiplied first: FNV-1a's top bits barely change with the last
    // character, so substrings that differ from a listed word only there
    // would share its bit (of 273,665 such substrings in the tests, 13.5% let
    // through, against 7.9% mixed).
    let bit = (hash.wrapping_mul(ANY_MIX) >> (64 - ANY_BITS.trailing_zeros())) as usize;
    ANY_WORD[bit / 8] & (1 << (bit % 8)) != 0
}

#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, Default)]
#[cfg_attr(feature = "ser", derive(serde::Deserialize, serde::Serialize))]
pub enum DictionaryType {
    #[default]
    Passwords,
    English,
    FemaleNames,
    MaleNames,
    Surnames,
    UsTvAndFilm,
    UserInputs,
}

/// Each ranked dictionary (rank 1 = most common).
pub(crate) static RANKED_DICTIONARIES: [(DictionaryType, &Ranked); 6] = [
    (DictionaryType::Passwords, &PASSWORDS),
    (DictionaryType::English, &ENGLISH_WIKI),
    (DictionaryType::FemaleNames, &FEMALE_NAMES),
    (DictionaryType::MaleNames, &MALE_NAMES),
    (DictionaryType::Surnames, &SURNAMES),
    (DictionaryType::UsTvAndFilm, &US_TV_AND_FILM),
];
