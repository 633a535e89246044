//! completions/ and man/ are generated from the clap definition (with its
//! help texts) and committed; the README's exit-code table is generated
//! from `error::EXIT_CODES`. These tests regenerate them in a temporary
//! folder and fail when the committed copies drift. Refreshing is its own,
//! explicit step (no environment variable can turn a drift check into a
//! silent rewrite):
//!
//!     cargo test --test generated -- --ignored regenerate

use clap_complete::Shell;
use recupera::i18n::Lang;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const REFRESH: &str = "cargo test --test generated -- --ignored regenerate";

/// clap_mangen writes English section headings; the Spanish pages get
/// Spanish ones (NOMBRE, SINOPSIS, …).
fn spanish_headings(page: &str) -> String {
    page.replace(".SH NAME", ".SH NOMBRE")
        .replace(".SH SYNOPSIS", ".SH SINOPSIS")
        .replace(".SH DESCRIPTION", ".SH DESCRIPCIÓN")
        .replace(".SH SUBCOMMANDS", ".SH ÓRDENES")
        .replace(".SH VERSION", ".SH VERSIÓN")
        .replace(".SH EXTRA", ".SH MÁS")
        .replace(".SH AUTHORS", ".SH AUTORES")
}

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
        if lang == Lang::Es {
            for e in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
                if e.path().extension().is_some_and(|x| x == "1") {
                    let page = std::fs::read_to_string(e.path()).unwrap();
                    std::fs::write(e.path(), spanish_headings(&page)).unwrap();
                }
            }
        }
    }
}

const README_BEGIN: &str = "<!-- exit-codes: generated from src/error.rs -->\n";
const README_END: &str = "<!-- /exit-codes -->";

/// The README with its exit-code table regenerated.
fn readme_with_table(readme: &str) -> String {
    let start = readme
        .find(README_BEGIN)
        .expect("README: exit-code markers")
        + README_BEGIN.len();
    let end = readme
        .find(README_END)
        .expect("README: exit-code end marker");
    format!(
        "{}{}{}",
        &readme[..start],
        recupera::error::exit_codes_markdown(),
        &readme[end..]
    )
}

#[test]
#[ignore = "rewrites the committed files: run it on purpose to refresh them"]
fn regenerate() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["completions", "man"] {
        let _ = std::fs::remove_dir_all(repo.join(sub));
    }
    generate(repo);
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    std::fs::write(repo.join("README.md"), readme_with_table(&readme)).unwrap();
}

#[test]
fn readme_exit_codes_match_the_table() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    assert!(
        readme == readme_with_table(&readme),
        "README's exit codes differ from src/error.rs: run `{REFRESH}`"
    );
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
    // Spanish throughout: headings and clap's own words.
    for english in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        "Possible values",
        "Default value",
        "[default:",
        "[env:",
        "OPTIONS",
    ] {
        assert!(
            !confirm.contains(english),
            "{english:?} in the Spanish page"
        );
    }
    assert!(confirm.contains(".SH NOMBRE") && confirm.contains(".SH SINOPSIS"));
}

#[test]
fn spanish_help_reads_spanish() {
    use clap::CommandFactory as _;
    let _ = recupera::cli::Cli::command();
    let mut cmd = recupera::cli::command(Lang::Es);
    // As when parsing: globals propagated to every subcommand.
    cmd.build();
    let mut pages = vec![cmd.render_long_help().to_string()];
    for path in [
        ["reset", "confirm"],
        ["user", "import"],
        ["audit", ""],
        ["db", "copy"],
    ] {
        let mut c = cmd.find_subcommand_mut(path[0]).unwrap().clone();
        let page = if path[1].is_empty() {
            c.render_long_help()
        } else {
            c.find_subcommand_mut(path[1]).unwrap().render_long_help()
        };
        pages.push(page.to_string());
    }
    for page in &pages {
        for english in [
            "Usage:",
            "[OPTIONS]",
            "<COMMAND>",
            "[possible values",
            "[env:",
            "[default:",
            "[alias",
            "Options:",
            "<FILE>",
        ] {
            assert!(!page.contains(english), "{english:?} in:\n{page}");
        }
        assert!(page.contains("Uso: recupera"), "{page}");
    }
    assert!(pages[0].contains("Códigos de salida: 0 hecho"));
    assert!(pages[1].contains("[también --nit]"));
}
