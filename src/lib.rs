//! `recupera`: the password-recovery workflow of an e-invoicing platform's
//! manual, over a local SQLite file or a shared PostgreSQL server.
//!
//! Layers: [`domain`] (rules, no I/O) → [`store`] (all SQL, two engines) →
//! [`mail`] → [`ops`] (what each command does) → [`commands`] (arguments
//! in, an operation, the outcome rendered by [`view`]) → [`run`].
//! `main.rs` only parses arguments and maps errors to exit codes.

// No panic on any path a user or the environment can reach: every
// `unwrap`/`expect`/`panic!` outside tests is a compile error (the test
// support module, built only for the test suite, is exempt).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable
    )
)]

pub mod app;
pub mod argon2mem;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod domain;
pub mod error;
pub mod help;
pub mod i18n;
pub mod input;
pub mod mail;
pub mod ops;
pub mod store;
pub mod table;
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod testing;
pub mod ui;
pub mod usage;
pub mod view;

use cli::{Cli, Command};

use error::Result;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let lang = cli.global.lang.unwrap_or_else(app::lang_from_env);
    i18n::set_lang(lang);
    let ui = ui::Ui::new(cli.global.json);
    if let Command::Demo = cli.command {
        return commands::demo::run(&ui);
    }
    // A command that will hash gets its argon2 memory ready on another
    // core while this one opens the database (one region: the new
    // password's hash that reset confirm makes beside the code's check
    // faults its own memory in on its own thread).
    let hashes = match &cli.command {
        Command::Login(_) | Command::Reset(_) => true,
        Command::User(cli::UserCommand::Add(a)) => !a.no_password,
        _ => false,
    };
    if hashes {
        argon2mem::prefault(domain::hash::Hasher::new(None).blocks(), 1);
    }
    // Only a command that puts accounts in makes a new SQLite database. Any
    // other, at a mistyped --db, would make an empty one and "work": a
    // request answered as sent, a purge or a retry with nothing to do, the
    // source of a copy copied empty. It is refused (74) instead.
    let opening = match &cli.command {
        Command::User(cli::UserCommand::Add(_)) => app::Opening::Create,
        // A dry run writes nothing, not even a new file: before the first
        // import it checks the file against an empty database in memory.
        Command::User(cli::UserCommand::Import(a)) if a.dry_run => app::Opening::ExistingOrEmpty,
        Command::User(cli::UserCommand::Import(_)) => app::Opening::Create,
        _ => app::Opening::Existing,
    };
    let config = app::Config::from_cli(&cli.global, &cli.on_argv)?;
    if let Command::Db(cli::DbCommand::Copy(a)) = &cli.command {
        // A bad target (a password typed in its URL: 78) is said before
        // anything about the source.
        store::Location::parse(&a.to, true, cli.global.db_ca_file.as_deref())?;
    }
    let mut app = config.open_with(opening)?;
    let lang_on_argv = cli.on_argv.lang.then_some(lang);
    match &cli.command {
        Command::User(c) => commands::user::run(&mut app, &ui, c, lang_on_argv),
        Command::Login(a) => commands::login::run(&mut app, &ui, a),
        Command::Reset(c) => commands::reset::run(&mut app, &ui, c),
        Command::Codes(c) => commands::codes::run(&mut app, &ui, c),
        Command::Mail(c) => commands::mail::run(&mut app, &ui, c),
        Command::Audit(a) => {
            // On `audit`, a typed --agent filters (RECUPERA_AGENT does not).
            let filter = cli
                .on_argv
                .agent
                .then(|| cli.global.agent.clone())
                .flatten();
            commands::audit::run(&mut app, &ui, a, filter)
        }
        Command::Db(c) => commands::db::run(&mut app, &ui, c, cli.global.db_ca_file.as_deref()),
        Command::Demo => commands::demo::run(&ui),
    }
}
