//! The command-line surface: clap types only, no logic. Help texts are not
//! here but in `help.rs`, in both languages; [`command`] builds the clap
//! `Command` with them, and the completion and man-page generator uses the
//! same function.

use crate::domain::account::AccountType;
use crate::i18n::Lang;
use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

// Password recovery for an e-invoicing platform, over a local SQLite file.
//
// Runs the platform's recovery manual from a terminal or a script: request
// a code by email, confirm it with a new password, log in.
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

// Flags accepted before or after the command name.
#[derive(Debug, Args, Clone)]
pub struct Global {
    // Database file [default: ~/.local/share/recupera/recupera.db]
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

    // Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,

    // Language of messages (default: the locale; Spanish unless it says English)
    #[arg(long, global = true, value_enum, value_name = "LANG")]
    pub lang: Option<Lang>,

    // Who is acting, for the audit log [default: $USER]
    #[arg(long, global = true, env = "RECUPERA_AGENT", value_name = "NAME")]
    pub agent: Option<String>,

    // Folder for .eml files when no SMTP server is set [default: outbox/ beside the database]
    #[arg(
        long,
        global = true,
        env = "RECUPERA_OUTBOX",
        value_name = "DIR",
        help_heading = "Mail"
    )]
    pub outbox: Option<PathBuf>,

    // SMTP server: smtps://user:pass@host[:port] or smtp://host:587?tls=required
    // (credentials only through the environment variable, never on the command line)
    #[arg(
        long,
        global = true,
        env = "RECUPERA_SMTP_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Mail"
    )]
    pub smtp_url: Option<String>,

    // Extra CA certificate (PEM) to trust for the SMTP server
    #[arg(
        long,
        global = true,
        env = "RECUPERA_SMTP_CA_FILE",
        value_name = "FILE",
        help_heading = "Mail"
    )]
    pub smtp_ca_file: Option<PathBuf>,

    // Seconds to wait for the SMTP server before giving up
    #[arg(
        long,
        global = true,
        env = "RECUPERA_SMTP_TIMEOUT",
        value_name = "SECS",
        default_value = "10",
        help_heading = "Mail"
    )]
    pub smtp_timeout: String,

    // Sender of every message, e.g. "Soporte <no-reply@empresa.co>"
    #[arg(
        long,
        global = true,
        env = "RECUPERA_MAIL_FROM",
        value_name = "MAILBOX",
        help_heading = "Mail"
    )]
    pub mail_from: Option<String>,

    // Footer line of every message (company name, support phones)
    #[arg(
        long,
        global = true,
        env = "RECUPERA_MAIL_FOOTER",
        value_name = "TEXT",
        help_heading = "Mail"
    )]
    pub mail_footer: Option<String>,

    // Hours a recovery code stays valid (1–24)
    #[arg(
        long,
        global = true,
        env = "RECUPERA_CODE_TTL_HOURS",
        value_name = "HOURS",
        default_value = "12",
        help_heading = "Policy"
    )]
    pub code_ttl_hours: String,

    // Minimum password length in characters (8–256)
    #[arg(
        long,
        global = true,
        env = "RECUPERA_MIN_PASSWORD_LENGTH",
        value_name = "N",
        default_value = "15",
        help_heading = "Policy"
    )]
    pub min_password_length: String,

    // File with a secret pepper mixed into every hash (keep it outside the database's backups)
    #[arg(
        long,
        global = true,
        env = "RECUPERA_PEPPER_FILE",
        value_name = "FILE",
        help_heading = "Policy"
    )]
    pub pepper_file: Option<PathBuf>,

    // Minimum duration of `reset request` in milliseconds (uniform timing)
    #[arg(
        long,
        global = true,
        env = "RECUPERA_REQUEST_MIN_MS",
        value_name = "MS",
        default_value = "100",
        help_heading = "Policy"
    )]
    pub request_min_ms: String,

    // Milliseconds to wait for a busy database before giving up (exit 75)
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
    // Accounts: create, list, show, unlock
    #[command(subcommand)]
    User(UserCommand),

    // Log in with NIT (or username/email for a proveedor) and password (manual step 07)
    Login(LoginArgs),

    // Password recovery: request a code, confirm it with a new password
    #[command(subcommand)]
    Reset(ResetCommand),

    // Recovery codes: purge finished ones (cron), list them
    #[command(subcommand)]
    Codes(CodesCommand),

    // The mail queue: list it, retry delivery (cron)
    #[command(subcommand)]
    Mail(MailCommand),

    // Show the audit log, newest first
    Audit(AuditArgs),

    // The database: status, copy to another engine or file
    #[command(subcommand)]
    Db(DbCommand),

    // Run the manual's steps 01–07 on a throwaway database and print each one
    Demo,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    // Create an account (the login screen's "REGISTRARSE")
    Add(UserAddArgs),

    // List accounts
    List(UserListArgs),

    // Show one account: locks, pending codes, last login
    Show(UserIdentArgs),

    // Clear an account's login lock and re-enable its recovery channel
    Unlock(UserIdentArgs),

    // Block an account: no login, no codes
    Disable(UserDisableArgs),

    // Undo `user disable`
    Enable(UserIdentArgs),

    // Change an account's email, name, username or mail language
    Edit(UserEditArgs),

    // Delete an account for good (habeas data)
    Delete(UserDeleteArgs),

    // Create accounts from a CSV file
    Import(UserImportArgs),

    // Write every account as CSV or JSON lines
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
    // Account type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    // NIT, with or without check digit (900102030 or 900.102.030-4)
    #[arg(long, value_name = "NIT")]
    pub nit: Option<String>,

    // Registered email: codes go only to this address
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,

    // Username (proveedor): 3–64 letters, digits, '.', '_' or '-', at least one letter
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,

    // Person or company name
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    // Language of the account's emails [default: --lang when given on the command line, else es]
    #[arg(long = "mail-lang", value_enum, value_name = "LANG")]
    pub mail_lang: Option<Lang>,

    // Read the password from standard input (first line; a second line, if any, must match)
    #[arg(long, conflicts_with = "no_password")]
    pub password_stdin: bool,

    // Create without a password: the customer sets the first one with a code
    #[arg(long)]
    pub no_password: bool,
}

#[derive(Debug, Args)]
pub struct UserListArgs {
    // Only this type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,
}

#[derive(Debug, Args)]
pub struct UserIdentArgs {
    // NIT, or username or email of a proveedor (asked for in a terminal)
    #[arg(value_name = "IDENT")]
    pub ident: Option<String>,

    // Account type, when the NIT has both a cliente and a proveedor
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    // Account type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    // USUARIO: the NIT without check digit (a proveedor may use username or email)
    #[arg(long, alias = "nit", value_name = "IDENT")]
    pub user: Option<String>,

    // Read the password from standard input instead of a hidden prompt
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ResetCommand {
    // Send a recovery code to the account's registered email (manual steps 01–04)
    Request(RequestArgs),

    // Set a new password with the emailed code (manual steps 05–06)
    Confirm(ConfirmArgs),
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    // Account type ("Tipo": Cliente Factura or Proveedor)
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    // "NIT o Usuario": NIT without check digit, or a proveedor's username
    #[arg(long, alias = "nit", value_name = "IDENT")]
    pub user: Option<String>,

    // The email registered on the account
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,

    // In a terminal, stop after sending instead of offering to go on to the code
    #[arg(long)]
    pub no_continue: bool,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    // "NIT, Usuario o email (Proveedor)"
    #[arg(long, alias = "nit", value_name = "IDENT")]
    pub user: Option<String>,

    // The 5-character code from the email (case-sensitive)
    #[arg(
        long,
        value_name = "CODE",
        env = "RECUPERA_CODE",
        hide_env_values = true
    )]
    pub code: Option<String>,

    // Account type, when the NIT has both a cliente and a proveedor
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    // Read the new password from standard input (first line; a second line, if any, must match)
    #[arg(long)]
    pub password_stdin: bool,

    // In a terminal, do not offer to log in afterwards
    #[arg(long)]
    pub no_login: bool,
}

#[derive(Debug, Subcommand)]
pub enum CodesCommand {
    // Delete expired, used and dead codes (for cron)
    Purge(PurgeArgs),

    // List stored codes (never the codes themselves)
    List,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    // Count what would be deleted; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    // List the mail queue
    List,

    // Deliver queued mail now (for cron; exit 69 if the server is unreachable)
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
    // Only events of this account (NIT, or proveedor username/email)
    #[arg(long, value_name = "IDENT")]
    pub user: Option<String>,

    // Account type for --user, when the NIT has both
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<AccountType>,

    // At most this many events
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

/// The clap command with the help texts of `lang` (see `help.rs`): what
/// `main` parses with and what the completion and man-page generator renders.
pub fn command(lang: Lang) -> clap::Command {
    use clap::CommandFactory;
    crate::help::localize(Cli::command(), lang)
}
