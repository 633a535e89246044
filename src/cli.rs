//! The command-line surface: clap types only, no logic. The help texts are
//! not here (not even as comments: each text exists once) but in `help.rs`,
//! in both languages; [`command`] builds the clap `Command` with them, and
//! the completion and man-page generator uses the same function.

use crate::domain::account::AccountType;
use crate::i18n::Lang;
use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

//
#[derive(Debug, Parser)]
#[command(
    name = "recupera",
    version,
    propagate_version = true,
    max_term_width = 100,
    arg_required_else_help = true,
    args_override_self = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,

    // Set by `main`: which secret-bearing settings came from argv (where a
    // password is refused).
    #[arg(skip)]
    pub on_argv: crate::app::OnArgv,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    #[arg(
        long,
        global = true,
        env = "RECUPERA_DB",
        hide_env_values = true,
        value_name = "PATH|URL"
    )]
    pub db: Option<PathBuf>,

    #[arg(long, global = true, env = "RECUPERA_DB_CA_FILE", value_name = "FILE")]
    pub db_ca_file: Option<PathBuf>,

    #[arg(long, global = true)]
    pub json: bool,

    #[arg(long, global = true, value_enum, value_name = "LANG")]
    pub lang: Option<Lang>,

    #[arg(long, global = true, env = "RECUPERA_AGENT", value_name = "NAME")]
    pub agent: Option<String>,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_OUTBOX",
        value_name = "DIR",
        help_heading = "Mail"
    )]
    pub outbox: Option<PathBuf>,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_SMTP_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Mail"
    )]
    pub smtp_url: Option<String>,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_SMTP_CA_FILE",
        value_name = "FILE",
        help_heading = "Mail"
    )]
    pub smtp_ca_file: Option<PathBuf>,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_SMTP_TIMEOUT",
        value_name = "SECS",
        default_value = "10",
        help_heading = "Mail"
    )]
    pub smtp_timeout: String,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_MAIL_FROM",
        value_name = "MAILBOX",
        help_heading = "Mail"
    )]
    pub mail_from: Option<String>,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_MAIL_FOOTER",
        value_name = "TEXT",
        help_heading = "Mail"
    )]
    pub mail_footer: Option<String>,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_CODE_TTL_HOURS",
        value_name = "HOURS",
        default_value = "12",
        help_heading = "Policy"
    )]
    pub code_ttl_hours: String,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_MIN_PASSWORD_LENGTH",
        value_name = "N",
        default_value = "15",
        help_heading = "Policy"
    )]
    pub min_password_length: String,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_PEPPER_FILE",
        value_name = "FILE",
        help_heading = "Policy"
    )]
    pub pepper_file: Option<PathBuf>,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_REQUEST_MIN_MS",
        value_name = "MS",
        default_value = "100",
        help_heading = "Policy"
    )]
    pub request_min_ms: String,

    #[arg(
        long,
        global = true,
        env = "RECUPERA_BUSY_TIMEOUT_MS",
        value_name = "MS",
        default_value = "10000",
        help_heading = "Policy"
    )]
    pub busy_timeout_ms: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(subcommand)]
    User(UserCommand),

    Login(LoginArgs),

    #[command(subcommand)]
    Reset(ResetCommand),

    #[command(subcommand)]
    Codes(CodesCommand),

    #[command(subcommand)]
    Mail(MailCommand),

    Audit(AuditArgs),

    #[command(subcommand)]
    Db(DbCommand),

    Demo,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    Add(UserAddArgs),

    List(UserListArgs),

    Show(UserIdentArgs),

    Unlock(UserIdentArgs),

    Disable(UserDisableArgs),

    Enable(UserIdentArgs),

    Edit(UserEditArgs),

    Delete(UserDeleteArgs),

    Import(UserImportArgs),

    Export(UserExportArgs),
}

#[derive(Debug, Args)]
pub struct UserImportArgs {
    #[arg(value_name = "FILE")]
    pub file: std::ffi::OsString,

    #[arg(long)]
    pub dry_run: bool,

    #[arg(long, value_enum, value_name = "WHAT", default_value = "fail")]
    pub on_conflict: OnConflictArg,

    #[arg(long, value_name = "C")]
    pub delimiter: Option<String>,

    #[arg(long, value_enum, value_name = "ENCODING", default_value = "utf-8")]
    pub encoding: EncodingArg,

    #[arg(long)]
    pub invite: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnConflictArg {
    Fail,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodingArg {
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    #[value(name = "windows-1252", alias = "cp1252", alias = "latin1")]
    Windows1252,
}

#[derive(Debug, Args)]
pub struct UserExportArgs {
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "csv")]
    pub format: ExportFormat,

    #[arg(long)]
    pub with_hashes: bool,

    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,

    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Args)]
pub struct UserDisableArgs {
    #[command(flatten)]
    pub who: UserIdentArgs,

    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserEditArgs {
    #[command(flatten)]
    pub who: UserIdentArgs,

    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,

    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    #[arg(long, value_name = "USER")]
    pub username: Option<String>,

    #[arg(long = "mail-lang", value_enum, value_name = "LANG")]
    pub mail_lang: Option<Lang>,
}

#[derive(Debug, Args)]
pub struct UserDeleteArgs {
    #[command(flatten)]
    pub who: UserIdentArgs,

    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    Status,

    Copy(DbCopyArgs),
}

#[derive(Debug, Args)]
pub struct DbCopyArgs {
    #[arg(long, value_name = "PATH|URL")]
    pub to: std::ffi::OsString,
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    #[arg(long, value_name = "NIT")]
    pub nit: Option<String>,

    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,

    #[arg(long, value_name = "USER")]
    pub username: Option<String>,

    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    #[arg(long = "mail-lang", value_enum, value_name = "LANG")]
    pub mail_lang: Option<Lang>,

    #[arg(long, conflicts_with = "no_password")]
    pub password_stdin: bool,

    #[arg(long)]
    pub no_password: bool,
}

#[derive(Debug, Args)]
pub struct UserListArgs {
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,
}

#[derive(Debug, Args)]
pub struct UserIdentArgs {
    #[arg(value_name = "IDENT")]
    pub ident: Option<String>,

    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    #[arg(long, alias = "nit", value_name = "IDENT")]
    pub user: Option<String>,

    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ResetCommand {
    Request(RequestArgs),

    Confirm(ConfirmArgs),
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    #[arg(long, alias = "nit", value_name = "IDENT")]
    pub user: Option<String>,

    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,

    #[arg(long)]
    pub no_continue: bool,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    #[arg(long, alias = "nit", value_name = "IDENT")]
    pub user: Option<String>,

    #[arg(
        long,
        value_name = "CODE",
        env = "RECUPERA_CODE",
        hide_env_values = true
    )]
    pub code: Option<String>,

    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    #[arg(long)]
    pub password_stdin: bool,

    #[arg(long)]
    pub no_login: bool,
}

#[derive(Debug, Subcommand)]
pub enum CodesCommand {
    Purge(PurgeArgs),

    List,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    List,

    Retry,

    // Internal: deliver one queued message whose bytes arrive on stdin.
    // `reset request` starts it in the background so that an SMTP server's
    // latency never shows in the answer's timing.
    #[command(hide = true)]
    Deliver(DeliverArgs),
}

#[derive(Debug, Args)]
pub struct DeliverArgs {
    #[arg(long)]
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long, value_name = "IDENT")]
    pub user: Option<String>,

    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,

    #[arg(long, value_name = "EVENT")]
    pub event: Option<String>,

    #[arg(long, value_enum, value_name = "FORMAT", default_value = "table")]
    pub format: AuditFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Table,
    Csv,
}

// The domain's enums know nothing of clap; their command-line names are
// here.
impl ValueEnum for AccountType {
    fn value_variants<'a>() -> &'a [Self] {
        &[AccountType::Cliente, AccountType::Proveedor]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            AccountType::Cliente => PossibleValue::new("cliente").alias("client"),
            AccountType::Proveedor => PossibleValue::new("proveedor").alias("supplier"),
        })
    }
}

impl ValueEnum for Lang {
    fn value_variants<'a>() -> &'a [Self] {
        &[Lang::Es, Lang::En]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

/// The whole command tree for parsing only (no help texts; see
/// `help::structure`): what [`parse_hoisted`]'s reading is checked
/// against.
#[cfg(test)]
fn parser() -> clap::Command {
    use clap::CommandFactory;
    crate::help::structure(Cli::command())
}

/// Parses `args` the fast way, with a tree that has only the command the
/// line names, and every global option (with its value) moved in front of
/// that command and parsed there as a top-level option.
///
/// - clap builds every command of the tree it is given: the other seven
///   top-level commands and their subcommands are never read.
/// - clap copies each global option into every subcommand of each level it
///   builds (16 options into the eight commands, then into the chosen
///   command's own): that was a third of a `--version`'s heap.
///
/// `None` when moving the options could change what the line means (a
/// value-taking option right before a global one, a global one without its
/// value or a flag given one, a non-UTF-8 option): `main` then parses
/// `args` as they are with the full tree, as it does after any error of
/// this parse. What this parse accepts, the full tree reads the same
/// (`hoisted_parse_agrees_with_the_full_tree`).
pub fn parse_hoisted(args: &[std::ffi::OsString]) -> Option<Result<clap::ArgMatches, clap::Error>> {
    let root = crate::help::structure(root());
    let globals: Vec<GlobalOpt> = root
        .get_arguments()
        .filter(|a| a.is_global_set() && a.get_id() != "help")
        .filter_map(|a| {
            Some(GlobalOpt {
                id: a.get_id().clone(),
                long: a.get_long()?.to_string(),
                takes_value: a.get_action().takes_values(),
            })
        })
        .collect();
    // The command: the first word once the global options are moved (no
    // command option comes before it, so the root alone reads that far).
    let (first, at) = hoist(&root, &globals, args)?;
    let name = first[at..]
        .iter()
        .find(|a| !dash(a))
        .and_then(|a| a.to_str());
    let cmd = match name.and_then(|name| top_level(name, globals.len())) {
        Some(command) => root.subcommand(command),
        // No command, or none of ours: clap's error, read again by `main`.
        None => root,
    };
    let (hoisted, _) = hoist(&cmd, &globals, args)?;
    let cmd = globals
        .into_iter()
        .fold(cmd, |cmd, g| cmd.mut_arg(g.id, |a| a.global(false)));
    Some(cmd.try_get_matches_from(hoisted))
}

/// The top-level commands, in [`Command`]'s order.
const COMMANDS: [&str; 8] = [
    "user", "login", "reset", "codes", "mail", "audit", "db", "demo",
];

/// The root of [`Cli`]'s tree, without its commands: what the derive
/// builds before them (`the_pruned_tree_is_built_as_the_derive_builds_it`).
fn root() -> clap::Command {
    use clap::Args as _;
    let cmd = clap::Command::new("recupera")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .max_term_width(100)
        .arg_required_else_help(true)
        .args_override_self(true)
        .group(
            clap::ArgGroup::new("Cli")
                .multiple(true)
                .args(None::<clap::Id>),
        );
    Global::augment_args(cmd)
        .subcommand_required(true)
        .arg_required_else_help(true)
}

/// One top-level command as the derive builds it, or `None` for a word
/// that names none; `first` is the number of options on the root (clap
/// numbers options and commands in one sequence).
fn top_level(name: &str, first: usize) -> Option<clap::Command> {
    use clap::{Args as _, Subcommand as _};
    let order = COMMANDS.iter().position(|c| *c == name)?;
    let group = |name: &'static str| {
        clap::Command::new(name)
            .subcommand_required(true)
            .arg_required_else_help(true)
    };
    let cmd = match name {
        "user" => UserCommand::augment_subcommands(group("user")),
        "login" => LoginArgs::augment_args(clap::Command::new("login")),
        "reset" => ResetCommand::augment_subcommands(group("reset")),
        "codes" => CodesCommand::augment_subcommands(group("codes")),
        "mail" => MailCommand::augment_subcommands(group("mail")),
        "audit" => AuditArgs::augment_args(clap::Command::new("audit")),
        "db" => DbCommand::augment_subcommands(group("db")),
        "demo" => clap::Command::new("demo"),
        _ => return None,
    };
    // The place clap numbers it by in the full tree.
    Some(cmd.display_order(first + order))
}

fn dash(a: &std::ffi::OsString) -> bool {
    a.as_encoded_bytes().first() == Some(&b'-')
}

/// A global option, as [`hoist`] needs it.
struct GlobalOpt {
    id: clap::Id,
    long: String,
    takes_value: bool,
}

/// `args` with the options named in `globals` and their values moved right
/// after the program name, in their order, and where the rest (in its
/// order) begins. Stops at `--`; `cmd` says which other options take a
/// value.
fn hoist(
    cmd: &clap::Command,
    globals: &[GlobalOpt],
    args: &[std::ffi::OsString],
) -> Option<(Vec<std::ffi::OsString>, usize)> {
    let mut it = args.iter();
    let mut front = vec![it.next()?.clone()];
    let mut rest = Vec::with_capacity(args.len());
    // The previous token was a value-taking option of a command, without
    // `=`: this one is its value (and a global option here is clap's
    // error, "missing value", which moving it would hide).
    let mut value_due = false;
    while let Some(a) = it.next() {
        if std::mem::take(&mut value_due) {
            if dash(a) {
                return None;
            }
            rest.push(a.clone());
            continue;
        }
        if a == "--" {
            rest.push(a.clone());
            rest.extend(it.by_ref().cloned());
            break;
        }
        let Some(long) = a.as_encoded_bytes().strip_prefix(b"--") else {
            rest.push(a.clone());
            continue;
        };
        let long = std::str::from_utf8(long).ok()?;
        let (name, attached) = match long.split_once('=') {
            Some((n, _)) => (n, true),
            None => (long, false),
        };
        match globals.iter().find(|g| g.long == name) {
            Some(g) => {
                front.push(a.clone());
                match (g.takes_value, attached) {
                    (true, false) => {
                        let v = it.next().filter(|v| !dash(v))?;
                        front.push(v.clone());
                    }
                    (false, true) => return None,
                    _ => {}
                }
            }
            None => {
                value_due = !attached && takes_value_anywhere(cmd, name);
                rest.push(a.clone());
            }
        }
    }
    let at = front.len();
    front.extend(rest);
    Some((front, at))
}

/// Whether an option named `--name` (or an alias) takes a value in any
/// command of the tree.
fn takes_value_anywhere(cmd: &clap::Command, name: &str) -> bool {
    cmd.get_arguments().any(|a| {
        a.get_action().takes_values()
            && (a.get_long() == Some(name)
                || a.get_all_aliases().is_some_and(|v| v.contains(&name)))
    }) || cmd
        .get_subcommands()
        .any(|sc| takes_value_anywhere(sc, name))
}

/// True when a global option was typed on the command line, at any level.
pub fn typed(m: &clap::ArgMatches, id: &str) -> bool {
    // A command's matches know the global options only when clap copied
    // them there (not after `parse_hoisted`).
    if m.try_contains_id(id).unwrap_or(false)
        && m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    {
        return true;
    }
    m.subcommand().is_some_and(|(_, sub)| typed(sub, id))
}

/// The clap command with the help texts of `lang` (see `help.rs`): what
/// `main` parses with when [`parse_hoisted`] leaves a line to it (a help
/// screen, an error, a line it cannot move), and what the completion and
/// man-page generator renders.
pub fn command(lang: Lang) -> clap::Command {
    use clap::CommandFactory;
    crate::help::localize(Cli::command(), lang)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;
    use clap::error::ErrorKind;
    use std::ffi::OsString;

    const GLOBAL_IDS: [&str; 4] = ["db", "smtp_url", "lang", "agent"];

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("recupera")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// What `main` takes from a successful parse: the command and, for the
    /// secret-bearing settings, whether they were typed.
    fn read(m: &clap::ArgMatches) -> String {
        let cli = Cli::from_arg_matches(m).map(|c| format!("{c:?}"));
        let typed: Vec<bool> = GLOBAL_IDS.iter().map(|id| typed(m, id)).collect();
        format!("{cli:?} {typed:?}")
    }

    /// Checks one line; true when the fast parse took it.
    fn agrees(words: &[&str]) -> bool {
        let args = argv(words);
        let full = parser().try_get_matches_from(&args);
        match parse_hoisted(&args) {
            Some(Ok(m)) => {
                let full = full.unwrap_or_else(|e| {
                    panic!("{words:?}: the hoisted parse accepted what the full tree refuses: {e}")
                });
                assert_eq!(read(&m), read(&full), "{words:?}");
                true
            }
            Some(Err(e)) if e.kind() == ErrorKind::DisplayVersion => {
                let kind = full.as_ref().err().map(clap::Error::kind);
                assert_eq!(kind, Some(ErrorKind::DisplayVersion), "{words:?}");
                true
            }
            // `main` parses the line again with the full tree.
            Some(Err(_)) | None => false,
        }
    }

    const LINES: &[&[&str]] = &[
        &[
            "user",
            "add",
            "--nit",
            "900123456",
            "--email",
            "a@example.co",
            "--no-password",
        ],
        &["user", "list", "--type", "cliente"],
        &["user", "show", "900123456"],
        &["user", "unlock", "900123456", "--type", "proveedor"],
        &["user", "disable", "900123456", "--reason", "fraude"],
        &[
            "user",
            "edit",
            "900123456",
            "--email",
            "b@example.co",
            "--mail-lang",
            "en",
        ],
        &["user", "delete", "900123456", "--yes"],
        &[
            "user",
            "import",
            "f.csv",
            "--dry-run",
            "--delimiter",
            ";",
            "--encoding",
            "cp1252",
        ],
        &[
            "user", "export", "--format", "jsonl", "--output", "x.jsonl", "--force",
        ],
        &["login", "--user", "900123456", "--password-stdin"],
        &["login", "--nit", "900123456"],
        &[
            "reset",
            "request",
            "--user",
            "900123456",
            "--email",
            "a@example.co",
            "--no-continue",
        ],
        &[
            "reset",
            "confirm",
            "--user",
            "900123456",
            "--code=123456",
            "--no-login",
        ],
        &["codes", "purge", "--dry-run"],
        &["mail", "deliver", "--id", "7"],
        &[
            "audit",
            "--user",
            "x",
            "--limit",
            "5",
            "--format",
            "csv",
            "--since",
            "2026-01-01",
        ],
        &["db", "copy", "--to", "/tmp/x.db"],
        &["demo"],
    ];

    const GLOBALS: &[&[&str]] = &[
        &["--db", "/tmp/a.db"],
        &["--db=/tmp/b.db"],
        &["--json"],
        &["--lang", "en"],
        &["--agent", "ana"],
        &["--smtp-url=smtp://localhost:2525"],
        &["--code-ttl-hours", "6"],
    ];

    fn with(line: &[&'static str], at: usize, opt: &[&'static str]) -> Vec<&'static str> {
        let mut v = line[..at].to_vec();
        v.extend_from_slice(opt);
        v.extend_from_slice(&line[at..]);
        v
    }

    /// Every command with each global option at every place of its line,
    /// and with two of them apart: the fast parse takes each line, and
    /// reads it as the full tree does.
    #[test]
    fn hoisted_parse_agrees_with_the_full_tree() {
        let cmd = parser();
        for line in LINES {
            assert!(agrees(line), "{line:?}");
            for opt in GLOBALS {
                for at in 0..=line.len() {
                    let one = with(line, at, opt);
                    // Between an option and its value the line is an
                    // error ("missing value"), left to the full tree.
                    let splits = at > 0
                        && line[at - 1]
                            .strip_prefix("--")
                            .is_some_and(|o| takes_value_anywhere(&cmd, o));
                    assert_eq!(agrees(&one), !splits, "{one:?}");
                }
            }
            let two = with(&with(line, line.len(), &["--json"]), 0, &["--db", "x.db"]);
            assert!(agrees(&two), "{two:?}");
        }
    }

    /// Lines that are errors, odd or ambiguous as typed: the fast parse
    /// either reads them as the full tree does or leaves them to it.
    #[test]
    fn odd_lines_are_left_to_the_full_tree_or_read_alike() {
        let odd: &[&[&str]] = &[
            // A global option where a command's option wanted its value.
            &["user", "import", "f.csv", "--delimiter", "--json", "x"],
            &["user", "import", "f.csv", "--delimiter", "--json"],
            &["login", "--nit", "--db", "x.db"],
            &["reset", "confirm", "--code", "--lang", "en"],
            // Missing or odd values of a global option.
            &["user", "show", "1", "--db"],
            &["--db", "--version"],
            &["--db", "-", "user", "list"],
            &["--json=true", "user", "list"],
            &["--lang", "xx", "user", "list"],
            &["--smtp-timeout=", "user", "list"],
            // Twice, at one level or at two.
            &["--db", "a.db", "--db", "b.db", "user", "list"],
            &["--db", "a.db", "user", "list", "--db", "b.db"],
            &["--json", "user", "--json", "list"],
            // After `--`, a global option's name is a value.
            &["user", "show", "--", "--db"],
            &["user", "show", "--json", "--", "--json"],
            // The version, help, nothing, unknown things.
            &["--version"],
            &["--json", "--version"],
            &["--version", "--db", "x.db"],
            &["user", "--version"],
            &["user", "show", "--help"],
            &[],
            &["--json"],
            &["user"],
            &["nada"],
            &["user", "show", "--nada", "--json"],
            &["user", "add", "--password-stdin", "--no-password", "--json"],
        ];
        for line in odd {
            agrees(line);
        }
        // A value-taking option's value is never taken for a global one.
        assert!(!agrees(&[
            "user",
            "import",
            "f.csv",
            "--delimiter",
            "--json",
            "x"
        ]));
        assert!(agrees(&["--json", "--version"]));
    }

    /// Random lines of the words the tree knows (commands, each kind of
    /// option, values, `--`, `=` forms, values that start with `-`): the
    /// fast parse never reads one otherwise than the full tree. Seeded,
    /// so a failure repeats.
    #[test]
    fn random_lines_are_read_alike_or_left_to_the_full_tree() {
        const WORDS: &[&str] = &[
            "user",
            "show",
            "list",
            "add",
            "import",
            "login",
            "reset",
            "confirm",
            "request",
            "codes",
            "purge",
            "mail",
            "retry",
            "audit",
            "db",
            "status",
            "demo",
            "help",
            "--db",
            "--db=x.db",
            "--json",
            "--json=1",
            "--lang",
            "en",
            "xx",
            "--agent",
            "--agent=ana",
            "--smtp-timeout",
            "3",
            "--delimiter",
            ";",
            "--nit",
            "--user",
            "--email",
            "a@example.co",
            "--type",
            "cliente",
            "--limit",
            "5",
            "--dry-run",
            "--no-password",
            "--yes",
            "--format",
            "csv",
            "--code",
            "123456",
            "900123456",
            "f.csv",
            "-",
            "-x",
            "--",
            "--version",
            "-h",
            "--help",
            "--nada",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut read = 0;
        for _ in 0..3000 {
            let len = 1 + next(7);
            let line: Vec<&str> = (0..len).map(|_| WORDS[next(WORDS.len())]).collect();
            if agrees(&line) {
                read += 1;
            }
        }
        // Most random lines are errors; some must have been read.
        assert!(read > 50, "{read}");
        // Good lines with one or two random words put in or swapped.
        let mut read = 0;
        for _ in 0..2000 {
            let mut line = LINES[next(LINES.len())].to_vec();
            for _ in 0..1 + next(2) {
                let word = WORDS[next(WORDS.len())];
                let at = next(line.len() + 1);
                if next(2) == 0 || at == line.len() {
                    line.insert(at, word);
                } else {
                    line[at] = word;
                }
            }
            if agrees(&line) {
                read += 1;
            }
        }
        assert!(read > 100, "{read}");
    }

    /// A value that starts with `-` stays where it is; so does anything
    /// after `--`; a flag given a value is left to the full tree.
    #[test]
    fn hoist_moves_only_global_options_and_their_values() {
        let cmd = parser();
        let globals = [
            GlobalOpt {
                id: "db".into(),
                long: "db".into(),
                takes_value: true,
            },
            GlobalOpt {
                id: "json".into(),
                long: "json".into(),
                takes_value: false,
            },
        ];
        let h = |w: &[&str]| {
            hoist(&cmd, &globals, &argv(w)).map(|(v, at)| (v[1..at].to_vec(), v[at..].to_vec()))
        };
        let os = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        let moved = |front: &[&str], rest: &[&str]| Some((os(front), os(rest)));
        assert_eq!(
            h(&["user", "show", "1", "--db", "a", "--json"]),
            moved(&["--db", "a", "--json"], &["user", "show", "1"])
        );
        assert_eq!(
            h(&["user", "show", "--db=a", "--", "--json"]),
            moved(&["--db=a"], &["user", "show", "--", "--json"])
        );
        assert_eq!(
            h(&["user", "import", "f", "--delimiter", ";", "--json"]),
            moved(&["--json"], &["user", "import", "f", "--delimiter", ";"])
        );
        assert_eq!(h(&["user", "list"]), moved(&[], &["user", "list"]));
        assert_eq!(h(&["user", "list", "--db"]), None);
        assert_eq!(h(&["user", "list", "--db", "-x"]), None);
        assert_eq!(h(&["user", "list", "--json=1"]), None);
        assert_eq!(h(&["user", "import", "f", "--delimiter", "--json"]), None);
    }

    /// An option typed on the line, at whatever level, is told from one
    /// left to its default or not given, on either tree's matches.
    #[test]
    fn typed_tells_the_line_from_defaults() {
        let line = argv(&["user", "list", "--db", "x.db", "--lang", "en"]);
        let hoisted = parse_hoisted(&line).unwrap().unwrap();
        let full = parser().try_get_matches_from(&line).unwrap();
        for m in [&hoisted, &full] {
            assert!(typed(m, "db") && typed(m, "lang"));
            // `--smtp-timeout` has a default; `--agent` has none.
            assert!(!typed(m, "smtp_timeout") && !typed(m, "agent"));
        }
    }

    /// The pruned tree's root and commands are what the derive builds: all
    /// eight on the root make `Cli::command()` again, to the last setting.
    #[test]
    fn the_pruned_tree_is_built_as_the_derive_builds_it() {
        use clap::CommandFactory;
        let full = Cli::command();
        let names: Vec<&str> = full
            .get_subcommands()
            .map(clap::Command::get_name)
            .collect();
        assert_eq!(names, COMMANDS);
        let first = root().get_arguments().count();
        let all = COMMANDS.iter().fold(root(), |cmd, name| {
            cmd.subcommand(top_level(name, first).unwrap())
        });
        assert_eq!(format!("{all:#?}"), format!("{full:#?}"));
        assert!(top_level("help", first).is_none());
        assert!(top_level("usr", first).is_none());
    }
}
