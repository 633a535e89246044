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
    arg_required_else_help = true
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

/// The command tree for parsing only (no help texts; see
/// `help::structure`).
pub fn parser() -> clap::Command {
    use clap::CommandFactory;
    crate::help::structure(Cli::command())
}

/// The clap command with the help texts of `lang` (see `help.rs`): what
/// `main` parses with and what the completion and man-page generator renders.
pub fn command(lang: Lang) -> clap::Command {
    use clap::CommandFactory;
    crate::help::localize(Cli::command(), lang)
}
