//! completions/ and man/ are generated from the clap definition (with its
//! help texts) and committed. This test regenerates them in a temporary
//! folder and fails when the committed copies drift.
//!
//! To refresh: RECUPERA_REGEN=1 cargo test --test generated

use clap_complete::Shell;
use recupera::i18n::Lang;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const REFRESH: &str = "RECUPERA_REGEN=1 cargo test --test generated";

fn generate(root: &Path) {
    // Completions carry the descriptions in the product's language.
    let completions = root.join("completions");
    std::fs::create_dir_all(&completions).unwrap();
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::PowerShell,
        Shell::Elvish,
    ] {
        let mut cmd = recupera::cli::command(Lang::Es);
        clap_complete::generate_to(shell, &mut cmd, "recupera", &completions).unwrap();
    }
    // Man pages: Spanish in man/, English in man/en/.
    for (lang, dir) in [
        (Lang::Es, root.join("man")),
        (Lang::En, root.join("man").join("en")),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        clap_mangen::generate_to(recupera::cli::command(lang), &dir).unwrap();
    }
}

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["completions", "man", "man/en"] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            if e.path().is_file() {
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("RECUPERA_REGEN").is_some() {
        for sub in ["completions", "man"] {
            let _ = std::fs::remove_dir_all(repo.join(sub));
        }
        generate(repo);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    let fresh = files(tmp.path());
    let committed = files(repo);
    assert!(fresh.len() > 20, "expected pages for every subcommand");
    for (path, bytes) in &fresh {
        match committed.get(path) {
            None => panic!("{} is missing: run `{REFRESH}` to refresh", path.display()),
            Some(old) if old != bytes => {
                panic!(
                    "{} is out of date: run `{REFRESH}` to refresh",
                    path.display()
                )
            }
            _ => {}
        }
    }
    for path in committed.keys() {
        assert!(
            fresh.contains_key(path),
            "{} is stale (no such command any more): run `{REFRESH}` to refresh",
            path.display()
        );
    }
}

#[test]
fn man_pages_cover_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    for page in [
        "recupera.1",
        "recupera-user-add.1",
        "recupera-reset-request.1",
        "recupera-reset-confirm.1",
        "recupera-login.1",
        "recupera-codes-purge.1",
        "recupera-mail-retry.1",
        "recupera-audit.1",
        "recupera-demo.1",
    ] {
        let es = std::fs::read_to_string(tmp.path().join("man").join(page)).unwrap();
        let en = std::fs::read_to_string(tmp.path().join("man/en").join(page)).unwrap();
        assert_ne!(es, en, "{page} should differ between languages");
    }
    let confirm = std::fs::read_to_string(tmp.path().join("man/recupera-reset-confirm.1")).unwrap();
    assert!(
        confirm.contains("distingue may"),
        "Spanish help in the man page"
    );
}
