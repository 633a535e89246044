// recupera: the lists live in data/ and become perfect-hash maps at build
// time (build.rs); upstream built HashMaps from string constants at first use.

include!(concat!(env!("OUT_DIR"), "/ranked.rs"));

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
pub(crate) static RANKED_DICTIONARIES: [(DictionaryType, &phf::Map<&'static str, usize>); 6] = [
    (DictionaryType::Passwords, &PASSWORDS),
    (DictionaryType::English, &ENGLISH_WIKI),
    (DictionaryType::FemaleNames, &FEMALE_NAMES),
    (DictionaryType::MaleNames, &MALE_NAMES),
    (DictionaryType::Surnames, &SURNAMES),
    (DictionaryType::UsTvAndFilm, &US_TV_AND_FILM),
];
