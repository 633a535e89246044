//! `recupera`: the password-recovery workflow of an e-invoicing platform's
//! manual, over a local SQLite file.
//!
//! Layers: [`domain`] (rules, no I/O) → [`store`] (all SQL) → [`mail`] →
//! [`commands`] (glue, one module per command group) → [`run`]. `main.rs`
//! only parses arguments and maps errors to exit codes.

pub mod alloc;
pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod domain;
pub mod error;
pub mod help;
pub mod i18n;
pub mod mail;
pub mod store;
pub mod table;
pub mod ui;
pub mod usage;

use cli::{Cli, Command};

// The unit tests run with the binary's allocator, so what it changes (where
// argon2's memory comes from) is tested with the rest.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: alloc::HugePages = alloc::HugePages;
use error::Result;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let lang = cli.global.lang.unwrap_or_else(app::lang_from_env);
    i18n::set_lang(lang);
    let ui = ui::Ui::new(cli.global.json);
    if let Command::Demo = cli.command {
        return commands::demo::run(&ui);
    }
    let mut app = app::Config::from_cli(&cli.global, cli.smtp_url_on_argv)?.open()?;
    let lang_on_argv = cli.lang_on_argv.then_some(lang);
    match &cli.command {
        Command::User(c) => commands::user::run(&mut app, &ui, c, lang_on_argv),
        Command::Login(a) => commands::login::run(&mut app, &ui, a),
        Command::Reset(c) => commands::reset::run(&mut app, &ui, c),
        Command::Codes(c) => commands::codes::run(&mut app, &ui, c),
        Command::Mail(c) => commands::mail::run(&mut app, &ui, c),
        Command::Audit(a) => commands::audit::run(&mut app, &ui, a),
        Command::Demo => commands::demo::run(&ui),
    }
}
