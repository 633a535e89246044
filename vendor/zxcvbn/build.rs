//! recupera: the ranked frequency lists as perfect-hash maps made at build
//! time, so the first estimate of a process does not first spend ~14 ms
//! hashing 94,000 words into HashMaps (see VENDORED.md).

use std::io::Write;

const LISTS: [(&str, &str); 6] = [
    ("PASSWORDS", "passwords"),
    ("ENGLISH_WIKI", "english_wiki"),
    ("FEMALE_NAMES", "female_names"),
    ("SURNAMES", "surnames"),
    ("US_TV_AND_FILM", "us_tv_and_film"),
    ("MALE_NAMES", "male_names"),
];

fn main() {
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("ranked.rs");
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    for (name, file) in LISTS {
        let path = format!("data/{file}.txt");
        println!("cargo:rerun-if-changed={path}");
        let text = std::fs::read_to_string(&path).unwrap();
        // As upstream's `.enumerate().collect::<HashMap>()`: rank = position
        // + 1, and a word listed twice keeps its last rank.
        let mut ranks = std::collections::HashMap::new();
        let mut order = Vec::new();
        for (i, w) in text.trim_end_matches('\n').split(',').enumerate() {
            if ranks.insert(w, i + 1).is_none() {
                order.push(w);
            }
        }
        let mut map = phf_codegen::Map::new();
        for w in order {
            map.entry(w, ranks[w].to_string());
        }
        writeln!(
            f,
            "pub(crate) static {name}: phf::Map<&'static str, usize> = {};",
            map.build()
        )
        .unwrap();
    }
    println!("cargo:rerun-if-changed=build.rs");
}
