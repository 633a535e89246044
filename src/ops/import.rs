//! Bulk onboarding: `user import` from a platform's CSV export, and
//! `user export`.
//!
//! Invariants:
//! - Every row is checked before anything is written: NIT (a given check
//!   digit must be right), email, type, username, name, language, the
//!   password hash, duplicates inside the file and conflicts with the
//!   database. Any invalid row fails the whole import, with every error
//!   listed by line and column; then nothing is written.
//! - The write is one transaction: all rows or none.
//! - Plain-text passwords are never imported: a `password`/`contraseña`
//!   column is refused before any row is read, and no value of it is ever
//!   echoed. Hashes are imported as they are (argon2id/argon2i PHC, bcrypt)
//!   and become argon2id at the account's first login.
//! - `--invite` queues, for each new account without a password, the
//!   manual's email with a code, through the mail queue only (never inline);
//!   the code is issued when `mail retry` prepares the message (the queue
//!   never holds a code in clear), hashed in parallel there, and counts
//!   toward the account's request limits like any other.
//! - The file is UTF-8 (a BOM is fine) unless `--encoding windows-1252`
//!   says otherwise; a file that is not valid UTF-8 is refused with how to
//!   fix it. The delimiter (`;`, `,` or tab) is taken from the header line
//!   unless `--delimiter` forces one.

use crate::app::App;
use crate::domain::account::{AccountType, parse_username};
use crate::domain::email::Email;
use crate::domain::hash::{ImportHashError, check_imported};
use crate::domain::lang::Lang;
use crate::domain::nit::Nit;
use crate::error::{Error, Result, email_error, nit_error};
use crate::i18n::{M, quote, t, tf};
use crate::input::text_problem;
use crate::store::{AuditEntry, InsertAccount, NewAccount, NewCode};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Fail,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Windows1252,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub dry_run: bool,
    pub on_conflict: OnConflict,
    pub delimiter: Option<u8>,
    pub encoding: Encoding,
    pub invite: bool,
}

pub use crate::error::RowError;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub status: &'static str,
    pub created: u64,
    pub skipped: u64,
    pub invited: u64,
    pub errors: Vec<RowError>,
}

/// The columns recupera knows, by their Spanish and English names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Type,
    Nit,
    Email,
    Username,
    Name,
    Lang,
    PasswordHash,
    /// `activa` or `deshabilitada` (`user disable`): so that an export
    /// imported again does not enable an account an agent disabled.
    State,
    /// Why it was disabled.
    Reason,
}

impl Column {
    fn from_header(h: &str) -> Option<Column> {
        Some(match h {
            "tipo" | "type" => Column::Type,
            "nit" => Column::Nit,
            "email" => Column::Email,
            "usuario" | "username" => Column::Username,
            "nombre" | "name" => Column::Name,
            "idioma" | "lang" => Column::Lang,
            "password_hash" => Column::PasswordHash,
            "estado" | "state" => Column::State,
            "motivo" | "reason" => Column::Reason,
            _ => return None,
        })
    }

    /// The Spanish name, which `user export` writes.
    pub fn spanish(self) -> &'static str {
        match self {
            Column::Type => "tipo",
            Column::Nit => "nit",
            Column::Email => "email",
            Column::Username => "usuario",
            Column::Name => "nombre",
            Column::Lang => "idioma",
            Column::PasswordHash => "password_hash",
            Column::State => "estado",
            Column::Reason => "motivo",
        }
    }
}

/// Headers that hold plain-text passwords: refused, never read.
const PLAIN_PASSWORD: &[&str] = &[
    "password",
    "contraseña",
    "contrasena",
    "contraseñas",
    "clave",
    "passwd",
    "pass",
];

/// A valid row, ready to write.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub kind: AccountType,
    pub nit: Nit,
    pub email: Email,
    pub username: Option<String>,
    pub name: Option<String>,
    pub lang: Lang,
    pub password_hash: Option<String>,
    /// Disabled, with its reason if any (`None`: active).
    pub disabled: Option<Option<String>>,
}

impl Row {
    /// With `--invite`: an active account without a password gets the
    /// manual's email with a code (a disabled one would get no code from
    /// `reset request` either).
    pub fn invited(&self) -> bool {
        self.password_hash.is_none() && self.disabled.is_none()
    }
}

/// Bytes to text: UTF-8 (a leading BOM dropped) or Windows-1252. A file
/// that starts with UTF-8's BOM is UTF-8 whatever `--encoding` says (Excel's
/// "CSV UTF-8" writes it; read as Windows-1252, every accent would be
/// garbled without a word).
pub fn decode(bytes: &[u8], enc: Encoding) -> Result<String> {
    let enc = if bytes.starts_with(b"\xEF\xBB\xBF") {
        Encoding::Utf8
    } else {
        enc
    };
    match enc {
        Encoding::Utf8 => {
            let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            match std::str::from_utf8(body) {
                Ok(s) => Ok(s.to_string()),
                Err(e) => {
                    let line = 1 + body[..e.valid_up_to()]
                        .iter()
                        .filter(|b| **b == b'\n')
                        .count();
                    Err(Error::Data(tf(M::ImportNotUtf8, &[("line", &line)])))
                }
            }
        }
        Encoding::Windows1252 => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            Ok(text.into_owned())
        }
    }
}

/// The delimiter of the header line: the most frequent of `;`, `,` and
/// tab outside quotes (Excel in Colombia writes `;`); `,` if none.
pub fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let mut counts = [(b';', 0usize), (b',', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in header.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for c in counts.iter_mut() {
                if c.0 == b {
                    c.1 += 1;
                }
            }
        }
    }
    counts
        .iter()
        .max_by_key(|(d, n)| (*n, *d == b';'))
        .filter(|(_, n)| *n > 0)
        .map_or(b',', |(d, _)| *d)
}

/// The line a record of the file starts on, as an editor numbers them:
/// the csv crate's own count is one short after each CRLF (what Excel on
/// Windows writes), so lines are counted here, a line break being `\r\n`,
/// `\n` or a lone `\r`. Asked in increasing order (as the reader gives
/// records), it counts each byte once.
struct Lines<'a> {
    text: &'a [u8],
    /// Counted up to here, and the line there.
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    fn at(&mut self, byte: u64) -> u64 {
        let mut to = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        // After a CRLF the crate puts the next record at the LF: a record
        // starts after the line breaks before it.
        while matches!(self.text.get(to), Some(b'\r' | b'\n')) {
            to += 1;
        }
        // The csv reader gives records in order: counting goes on from the
        // last one asked for.
        for k in self.at..to {
            let b = self.text[k];
            // A `\r` followed by `\n` is counted at the `\n`.
            if b == b'\n' || (b == b'\r' && self.text.get(k + 1) != Some(&b'\n')) {
                self.line += 1;
            }
        }
        self.at = to;
        self.line
    }
}

fn fold_header(h: &str) -> String {
    h.trim().trim_matches('"').trim().to_lowercase()
}

/// Parses and validates every row (the database's conflicts are checked
/// later, in [`plan`]). Header problems are errors of the whole file.
pub fn parse(text: &str, delimiter: u8) -> Result<(Vec<Row>, Vec<RowError>)> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| Error::Data(tf(M::ImportBadCsv, &[("err", &quote(&e.to_string()))])))?
        .clone();
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(Error::Data(t(M::ImportEmpty).to_string()));
    }
    let mut columns: Vec<Option<Column>> = Vec::new();
    let mut unknown = Vec::new();
    let mut seen = HashMap::new();
    for (i, raw) in headers.iter().enumerate() {
        let h = fold_header(raw);
        if PLAIN_PASSWORD.contains(&h.as_str()) {
            return Err(Error::Data(tf(
                M::ImportPlainPassword,
                &[("column", &format!("«{}»", quote(raw.trim())))],
            )));
        }
        let col = Column::from_header(&h);
        match col {
            Some(c) => {
                if let Some(prev) = seen.insert(c, i) {
                    return Err(Error::Data(tf(
                        M::ImportDuplicateColumn,
                        &[("column", &quote(raw)), ("n", &(prev + 1))],
                    )));
                }
            }
            None if h.is_empty() => {}
            None => unknown.push(format!("«{}»", quote(raw.trim()))),
        }
        columns.push(col);
    }
    if !unknown.is_empty() {
        return Err(Error::Data(tf(
            M::ImportUnknownColumns,
            &[("columns", &unknown.join(", "))],
        )));
    }
    for needed in [Column::Nit, Column::Email] {
        if !seen.contains_key(&needed) {
            return Err(Error::Data(tf(
                M::ImportMissingColumn,
                &[("column", &needed.spanish())],
            )));
        }
    }
    let header_name = |c: Column| -> String {
        seen.get(&c)
            .and_then(|i| headers.get(*i))
            .map_or_else(|| c.spanish().to_string(), |h| h.trim().to_string())
    };

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut in_file: HashMap<(AccountType, String), u64> = HashMap::new();
    let mut usernames: HashMap<String, u64> = HashMap::new();
    let mut lines = Lines::new(text);
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.at(p.byte()));
                errors.push(RowError {
                    line,
                    column: "-".into(),
                    message: tf(M::ImportBadCsv, &[("err", &quote(&e.to_string()))]),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| lines.at(p.byte()));
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rec.len() > columns.len() {
            errors.push(RowError {
                line,
                column: "-".into(),
                message: tf(
                    M::ImportFieldCount,
                    &[("got", &rec.len()), ("want", &columns.len())],
                ),
            });
            continue;
        }
        let get = |c: Column| -> &str {
            seen.get(&c)
                .and_then(|i| rec.get(*i))
                .map(str::trim)
                .map(from_cell)
                .unwrap_or("")
        };
        let mut row_errs: Vec<(Column, String)> = Vec::new();
        let mut err = |c: Column, m: String| row_errs.push((c, m));
        let kind = match get(Column::Type) {
            "" if !seen.contains_key(&Column::Type) => Some(AccountType::Cliente),
            "" => {
                err(Column::Type, t(M::ImportTypeMissing).to_string());
                None
            }
            v => AccountType::parse_loose(v).or_else(|| {
                err(Column::Type, tf(M::ImportTypeBad, &[("value", &quote(v))]));
                None
            }),
        };
        let nit = match Nit::parse(get(Column::Nit)) {
            Ok(n) => Some(n),
            Err(e) => {
                err(Column::Nit, nit_error(get(Column::Nit), e).to_string());
                None
            }
        };
        let email = match Email::parse(get(Column::Email)) {
            Ok(e) => Some(e),
            Err(e) => {
                err(
                    Column::Email,
                    email_error(get(Column::Email), e).to_string(),
                );
                None
            }
        };
        let username = match get(Column::Username) {
            "" => None,
            u => match parse_username(u) {
                Ok(u) => Some(u),
                Err(e) => {
                    err(Column::Username, Error::from(e).to_string());
                    None
                }
            },
        };
        let name = match get(Column::Name) {
            "" => None,
            n => match text_problem(n, M::NameTooLong, M::NameInvalid) {
                Some(m) => {
                    err(Column::Name, t(m).to_string());
                    None
                }
                None => Some(n.to_string()),
            },
        };
        let lang = match get(Column::Lang) {
            "" => Lang::Es,
            v => Lang::parse(v).unwrap_or_else(|| {
                err(Column::Lang, tf(M::ImportLangBad, &[("value", &quote(v))]));
                Lang::Es
            }),
        };
        let password_hash = match get(Column::PasswordHash) {
            "" => None,
            h => match check_imported(h) {
                Ok(()) => Some(h.to_string()),
                // The hash itself is never echoed.
                Err(e) => {
                    err(
                        Column::PasswordHash,
                        t(match e {
                            ImportHashError::Unknown => M::ImportHashUnknown,
                            ImportHashError::Malformed => M::ImportHashMalformed,
                            ImportHashError::Algorithm => M::ImportHashAlgorithm,
                            ImportHashError::Cost => M::ImportHashCost,
                        })
                        .to_string(),
                    );
                    None
                }
            },
        };
        let disabled = match get(Column::State).to_lowercase().as_str() {
            "" | "activa" | "active" => None,
            "deshabilitada" | "disabled" => Some(()),
            _ => {
                err(
                    Column::State,
                    tf(M::ImportStateBad, &[("value", &quote(get(Column::State)))]),
                );
                None
            }
        };
        let reason = match get(Column::Reason) {
            "" => None,
            _ if disabled.is_none() => {
                err(Column::Reason, t(M::ImportReasonActive).to_string());
                None
            }
            r => match text_problem(r, M::ReasonTooLong, M::ReasonInvalid) {
                Some(m) => {
                    err(Column::Reason, t(m).to_string());
                    None
                }
                None => Some(r.to_string()),
            },
        };
        let disabled = disabled.map(|()| reason);
        if let (Some(k), Some(n)) = (kind, &nit)
            && let Some(first) = in_file.insert((k, n.as_str().to_string()), line)
        {
            err(Column::Nit, tf(M::ImportDuplicateRow, &[("line", &first)]));
        }
        if let Some(u) = &username
            && let Some(first) = usernames.insert(u.to_lowercase(), line)
        {
            err(
                Column::Username,
                tf(M::ImportDuplicateUsername, &[("line", &first)]),
            );
        }
        if !row_errs.is_empty() {
            errors.extend(row_errs.into_iter().map(|(c, m)| RowError {
                line,
                column: header_name(c),
                message: m,
            }));
            continue;
        }
        if let (Some(kind), Some(nit), Some(email)) = (kind, nit, email) {
            rows.push(Row {
                line,
                kind,
                nit,
                email,
                username,
                name,
                lang,
                password_hash,
                disabled,
            });
        }
    }
    errors.sort_by_key(|e| e.line);
    Ok((rows, errors))
}

/// Checks rows against the database: an account that exists is an error
/// (or skipped with `--on-conflict skip`); a username held by another
/// account is always an error. Returns the rows to create.
pub fn plan(
    app: &mut App,
    rows: Vec<Row>,
    on_conflict: OnConflict,
    errors: &mut Vec<RowError>,
) -> Result<(Vec<Row>, u64)> {
    // One pass over the accounts (a set in memory) instead of a query per
    // row: 100,000 rows cost one scan, on any engine.
    let mut existing: HashSet<(AccountType, String)> = HashSet::new();
    let mut taken: HashSet<String> = HashSet::new();
    app.store.read(|tx| {
        existing.clear();
        taken.clear();
        tx.for_each_account(None, &mut |a| {
            if let Some(u) = &a.username {
                taken.insert(u.to_lowercase());
            }
            existing.insert((a.kind, a.nit.as_str().to_string()));
            Ok(())
        })?;
        Ok(())
    })?;
    let mut out = Vec::with_capacity(rows.len());
    let mut skipped = 0;
    for r in rows {
        if existing.contains(&(r.kind, r.nit.as_str().to_string())) {
            match on_conflict {
                OnConflict::Skip => skipped += 1,
                OnConflict::Fail => errors.push(RowError {
                    line: r.line,
                    column: "nit".into(),
                    message: tf(
                        M::AccountExists,
                        &[
                            ("type", &crate::i18n::type_label(r.kind)),
                            ("nit", &r.nit.display()),
                        ],
                    ),
                }),
            }
            continue;
        }
        if let Some(u) = &r.username
            && taken.contains(&u.to_lowercase())
        {
            errors.push(RowError {
                line: r.line,
                column: "usuario".into(),
                message: tf(M::UsernameTaken, &[("username", &quote(u))]),
            });
            continue;
        }
        out.push(r);
    }
    errors.sort_by_key(|e| e.line);
    Ok((out, skipped))
}

/// Writes the planned rows in one transaction. `progress(done)` after each
/// thousand rows and after the last.
pub fn write(
    app: &mut App,
    rows: &[Row],
    invite: bool,
    skipped: u64,
    mut progress: impl FnMut(u64),
) -> Result<(u64, u64)> {
    let now = app.now();
    let agent = app.agent.name().to_string();
    let limits = app.limits;
    let expires_at = now + app.code_ttl_secs;
    // An invitation counts as the account's first request.
    let log = limits.record_request(&crate::domain::limits::RequestLog::default(), now);
    app.store.write(|tx| {
        let mut created = 0u64;
        let mut invited = 0u64;
        // A thousand accounts per call: one round trip each on PostgreSQL.
        for chunk in rows.chunks(1000) {
            let new: Vec<NewAccount<'_>> = chunk
                .iter()
                .map(|r| NewAccount {
                    kind: r.kind,
                    nit: &r.nit,
                    username: r.username.as_deref(),
                    email: &r.email,
                    name: r.name.as_deref(),
                    lang: r.lang,
                    password_hash: r.password_hash.as_deref(),
                    now,
                })
                .collect();
            let answers = tx.insert_accounts(&new)?;
            let mut invitations = Vec::new();
            for (r, answer) in chunk.iter().zip(answers) {
                let id = match answer {
                    InsertAccount::Created(id) => id,
                    // Someone created it since the check: the whole import fails.
                    InsertAccount::Exists => {
                        return Err(crate::ops::accounts::exists_error(r.kind, &r.nit));
                    }
                    InsertAccount::UsernameTaken => {
                        return Err(crate::ops::accounts::username_taken_error(
                            r.username.as_deref().unwrap_or(""),
                        ));
                    }
                };
                created += 1;
                if let Some(reason) = &r.disabled {
                    // As `user disable` leaves it (a new account has no
                    // code to kill).
                    tx.set_disabled(id, Some((now, reason.as_deref())))?;
                }
                if invite && r.invited() {
                    invitations.push(NewCode {
                        account_id: id,
                        hash: None,
                        now,
                        expires_at,
                        recipient: &r.email,
                        claim: None,
                    });
                }
            }
            tx.insert_invitations(&invitations, &log)?;
            invited += invitations.len() as u64;
            progress(created);
        }
        tx.audit(
            &AuditEntry::new(&agent, "user.import", "ok").detail(format!(
                "created={created} skipped={skipped} invited={invited}"
            )),
            now,
        )?;
        Ok((created, invited))
    })
}

/// The columns `user export` writes, in order.
pub fn export_columns(with_hashes: bool) -> Vec<Column> {
    let mut c = vec![
        Column::Type,
        Column::Nit,
        Column::Email,
        Column::Username,
        Column::Name,
        Column::Lang,
        Column::State,
        Column::Reason,
    ];
    if with_hashes {
        c.push(Column::PasswordHash);
    }
    c
}

/// What a spreadsheet would run as a formula: a cell that starts with one
/// of these once its leading apostrophes are set aside.
fn formula_like(v: &str) -> bool {
    v.trim_start_matches('\'')
        .starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// A text field as the CSV export writes it: one leading apostrophe more
/// when it looks like a formula (OWASP's CSV-injection rule, as `audit
/// --format csv` does), so that a name a customer registered as
/// `=HYPERLINK(…)` stays text in Excel. [`from_cell`] takes it off again:
/// export then import gives the value back exactly.
pub fn to_cell(v: &str) -> std::borrow::Cow<'_, str> {
    if formula_like(v) {
        format!("'{v}").into()
    } else {
        v.into()
    }
}

/// The inverse of [`to_cell`], for what `user import` reads.
pub fn from_cell(v: &str) -> &str {
    match v.strip_prefix('\'') {
        Some(rest) if formula_like(v) => rest,
        _ => v,
    }
}

/// A field of an account for `user export` (`None`: empty).
pub fn export_field(a: &crate::domain::account::Account, c: Column) -> Option<String> {
    match c {
        Column::Type => Some(a.kind.as_str().to_string()),
        Column::Nit => Some(a.nit.as_str().to_string()),
        Column::Email => Some(a.email.as_str().to_string()),
        Column::Username => a.username.clone(),
        Column::Name => a.name.clone(),
        Column::Lang => Some(a.lang.as_str().to_string()),
        Column::PasswordHash => a.password_hash.clone(),
        Column::State => Some(
            if a.is_disabled() {
                "deshabilitada"
            } else {
                "activa"
            }
            .to_string(),
        ),
        Column::Reason => a.disabled.as_ref().and_then(|d| d.reason.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_from_the_header() {
        assert_eq!(detect_delimiter("tipo;nit;email\n1,2;3"), b';');
        assert_eq!(detect_delimiter("nit,email"), b',');
        assert_eq!(detect_delimiter("nit\temail\tnombre"), b'\t');
        assert_eq!(detect_delimiter("\"a;b\",nit,email"), b',');
        assert_eq!(detect_delimiter("nit"), b',');
    }

    #[test]
    fn decoding() {
        assert_eq!(decode(b"\xEF\xBB\xBFnit", Encoding::Utf8).unwrap(), "nit");
        assert_eq!(
            decode(b"nombre\nJos\xE9", Encoding::Windows1252).unwrap(),
            "nombre\nJosé"
        );
        let e = decode(b"nombre\nJos\xE9", Encoding::Utf8).unwrap_err();
        assert!(matches!(e, Error::Data(_)));
        // UTF-8's BOM says UTF-8, even under `--encoding windows-1252`.
        let bom = "\u{FEFF}nombre\nPeña".as_bytes();
        assert_eq!(decode(bom, Encoding::Windows1252).unwrap(), "nombre\nPeña");
        assert_eq!(decode(bom, Encoding::Utf8).unwrap(), "nombre\nPeña");
        assert_eq!(
            decode(&bom[3..], Encoding::Windows1252).unwrap(),
            "nombre\nPeÃ±a"
        );
    }

    #[test]
    fn headers_and_rows() {
        let (rows, errors) = parse(
            "Tipo;NIT;Email;Usuario;Nombre;Idioma\n\
             Cliente Factura;900.102.030-4;ana@example.co;;Ana Gómez;es\n\
             PROVEEDOR;800003122;v@acme.co;acme;\"Acme; S.A.S \"\"la buena\"\"\";en\n\
             proveedor;830015428-1;x@acme.co;ACME;;fr\n\
             cliente;900102030;otra@example.co;;;\n",
            b';',
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].name.as_deref(), Some("Acme; S.A.S \"la buena\""));
        assert_eq!(rows[1].lang, Lang::En);
        let lines: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.column.as_str())).collect();
        assert_eq!(
            lines,
            vec![(4, "NIT"), (4, "Idioma"), (4, "Usuario"), (5, "NIT")],
            "{errors:?}"
        );
        assert!(
            errors[3].message.contains("2"),
            "names the first line: {:?}",
            errors[3]
        );
    }

    /// What a spreadsheet would run gets one apostrophe more on export and
    /// loses it on import: every value comes back as it was.
    #[test]
    fn formula_cells_are_text_and_come_back() {
        for (v, cell) in [
            ("=1+1", "'=1+1"),
            ("+57 300", "'+57 300"),
            ("-Ana", "'-Ana"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("'=x", "''=x"),
            ("''@x", "'''@x"),
            ("Ana", "Ana"),
            ("'Ana", "'Ana"),
            ("O'Brien", "O'Brien"),
            ("", ""),
            ("'", "'"),
        ] {
            assert_eq!(to_cell(v), cell, "{v:?}");
            assert_eq!(from_cell(cell), v, "{cell:?}");
        }
    }

    /// `estado`/`motivo` (what `user export` writes): a disabled account
    /// comes back disabled with its reason, and is never invited.
    #[test]
    fn state_and_reason() {
        let (rows, errors) = parse(
            "nit,email,estado,motivo\n\
             900102030,a@example.co,Activa,\n\
             830015428,b@example.co,DESHABILITADA,cuenta comprometida\n\
             800003122,c@example.co,disabled,\n\
             899999034,d@example.co,,\n\
             890900841,e@example.co,borrada,\n\
             860518862,f@example.co,activa,por si acaso\n\
             900373587,g@example.co,deshabilitada,\"mal\u{202e}\"\n",
            b',',
        )
        .unwrap();
        let states: Vec<Option<Option<&str>>> = rows
            .iter()
            .map(|r| r.disabled.as_ref().map(|d| d.as_deref()))
            .collect();
        assert_eq!(
            states,
            vec![None, Some(Some("cuenta comprometida")), Some(None), None]
        );
        let invited: Vec<bool> = rows.iter().map(Row::invited).collect();
        assert_eq!(invited, vec![true, false, false, true]);
        let lines: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.column.as_str())).collect();
        assert_eq!(
            lines,
            vec![(6, "estado"), (7, "motivo"), (8, "motivo")],
            "{errors:?}"
        );
    }

    /// Excel on Windows ends lines with CRLF, old Macs with CR: an error
    /// names the same line as with LF, a record with a line break inside
    /// quotes counting as the lines it spans.
    #[test]
    fn line_numbers_whatever_ends_the_lines() {
        let rows = [
            "nit,email,nombre",
            "900102030,ana@example.co,Ana",
            "830015428,bad-email,\"Eva",
            "de la Cruz\"",
            "800003122,b@example.co,",
            "899999034,otro-malo,",
            "900102030,c@example.co,",
        ];
        for eol in ["\n", "\r\n", "\r"] {
            let text = rows.join(eol) + eol;
            let (_, errors) = parse(&text, b',').unwrap();
            let lines: Vec<(u64, &str)> =
                errors.iter().map(|e| (e.line, e.column.as_str())).collect();
            assert_eq!(
                lines,
                vec![(3, "email"), (3, "nombre"), (6, "email"), (7, "nit")],
                "{eol:?}: {errors:?}"
            );
            assert!(errors[3].message.contains('2'), "{eol:?}: {:?}", errors[3]);
        }
    }

    #[test]
    fn refused_headers() {
        for (text, want) in [
            (
                "nit,email,contraseña\n1,a@b.co,secreto123",
                M::ImportPlainPassword,
            ),
            ("nit,email,telefono\n", M::ImportUnknownColumns),
            ("nit,nit,email\n", M::ImportDuplicateColumn),
            ("nit,nombre\n", M::ImportMissingColumn),
        ] {
            let e = parse(text, b',').unwrap_err().to_string();
            let head = M::text(want, crate::i18n::lang());
            let stem: String = head
                .split('{')
                .next()
                .unwrap_or("")
                .chars()
                .take(12)
                .collect();
            assert!(e.starts_with(&stem), "{text:?}: {e}");
            assert!(
                !e.contains("secreto123"),
                "a password value is never echoed"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_utf8_names_its_line() {
        let e = decode(b"nit;email\n1;a@b.co\nJos\xE9;x", Encoding::Utf8).unwrap_err();
        assert_eq!(e.to_string(), tf(M::ImportNotUtf8, &[("line", &3)]));
    }

    /// Delimiters inside quotes do not count; a tie goes to `;`, what
    /// Excel writes in Colombia.
    #[test]
    fn quoted_delimiters_do_not_count_and_a_tie_goes_to_the_semicolon() {
        assert_eq!(detect_delimiter("\"a;b;c\",nit,email"), b',');
        assert_eq!(detect_delimiter("nit;email,nombre"), b';');
        assert_eq!(detect_delimiter("nit,email;nombre"), b';');
    }

    #[test]
    fn header_details() {
        // A repeated column names the first one by its place.
        let e = parse("email,nit,NIT\n", b',').unwrap_err().to_string();
        assert_eq!(
            e,
            tf(M::ImportDuplicateColumn, &[("column", &"NIT"), ("n", &2)])
        );
        // A trailing empty header (a spreadsheet's last `;`) is no column.
        let (rows, errors) = parse("nit;email;\n900102030;a@example.co;\n", b';').unwrap();
        assert_eq!((rows.len(), errors.len()), (1, 0), "{errors:?}");
        // The Spanish names: `user export` writes them, errors use them.
        let names: Vec<&str> = export_columns(true).iter().map(|c| c.spanish()).collect();
        assert_eq!(
            names,
            [
                "tipo",
                "nit",
                "email",
                "usuario",
                "nombre",
                "idioma",
                "estado",
                "motivo",
                "password_hash"
            ]
        );
        let e = parse("nit\n", b',').unwrap_err().to_string();
        assert_eq!(e, tf(M::ImportMissingColumn, &[("column", &"email")]));
    }

    #[test]
    fn rows_short_or_long_without_a_type_or_with_a_hash() {
        let bcrypt = bcrypt::hash_with_result("clave vieja", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        // No `tipo` column: every row is a cliente. A short row is fine
        // (its missing fields are empty); a long one is an error.
        let text = format!(
            "nit,email,nombre,password_hash\n\
             900102030,a@example.co\n\
             830015428,b@example.co,Eva,{bcrypt}\n\
             800003122,c@example.co,Luis,{bcrypt},extra\n"
        );
        let (rows, errors) = parse(&text, b',').unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.kind == AccountType::Cliente));
        assert_eq!(rows[0].password_hash, None);
        assert_eq!(rows[1].password_hash.as_deref(), Some(bcrypt.as_str()));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 4);
        assert_eq!(
            errors[0].message,
            tf(M::ImportFieldCount, &[("got", &5), ("want", &4)])
        );
        // A name up to NAME_MAX characters (not bytes) is taken.
        let long = "ñ".repeat(crate::domain::account::NAME_MAX);
        let text = format!(
            "nit,email,nombre\n900102030,a@example.co,{long}\n830015428,b@example.co,{long}x\n"
        );
        let (rows, errors) = parse(&text, b',').unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (errors[0].line, errors[0].message.as_str()),
            (3, t(M::NameTooLong))
        );
        // With a `tipo` column, an empty type is an error.
        let (rows, errors) = parse("tipo,nit,email\n,900102030,a@example.co\n", b',').unwrap();
        assert!(rows.is_empty());
        assert_eq!(errors[0].message, t(M::ImportTypeMissing));
    }

    /// Against the database: an existing account fails its row (or is
    /// skipped and counted with `skip`); a username another account holds
    /// always fails. Then the write creates the rest, invites those without
    /// a password, and records one audit event with the counts.
    #[test]
    fn plan_and_write_against_the_database() {
        use crate::ops::kit::{audit, cliente, proveedor, quick_app};
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let prov = AccountType::Proveedor;
        cliente(&mut app, "900102030", "a@example.co", None);
        proveedor(&mut app, "860518862", "n@example.co", "norte");
        let bcrypt = bcrypt::hash_with_result("clave vieja", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let text = format!(
            "tipo,nit,email,usuario,password_hash\n\
             cliente,900102030,a@example.co,,\n\
             proveedor,800003122,v@acme.co,NORTE,\n\
             proveedor,830015428,w@acme.co,oeste,\n\
             cliente,899999034,x@example.co,,{bcrypt}\n"
        );
        let (rows, errors) = parse(&text, b',').unwrap();
        assert!(errors.is_empty());
        let mut errors = Vec::new();
        let (planned, skipped) =
            plan(&mut app, rows.clone(), OnConflict::Fail, &mut errors).unwrap();
        let failed: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.column.as_str())).collect();
        assert_eq!(failed, [(2, "nit"), (3, "usuario")]);
        assert_eq!((planned.len(), skipped), (2, 0));

        let mut errors = Vec::new();
        let (planned, skipped) = plan(&mut app, rows, OnConflict::Skip, &mut errors).unwrap();
        assert_eq!(errors.len(), 1, "a taken username fails even with skip");
        assert_eq!((planned.len(), skipped), (2, 1));
        let mut seen = Vec::new();
        let (created, invited) =
            write(&mut app, &planned, true, skipped, |n| seen.push(n)).unwrap();
        assert_eq!(
            (created, invited),
            (2, 1),
            "the one with a hash is not invited"
        );
        assert_eq!(seen.last(), Some(&2));
        assert_eq!(
            audit(&mut app, "user.import"),
            [(
                "ok".to_string(),
                "created=2 skipped=1 invited=1".to_string()
            )]
        );
        let queued = app.store.read(|tx| Ok(tx.queued_mail_ids()?)).unwrap();
        assert_eq!(queued.len(), 1, "one invitation waits for mail retry");
        // Its code lives the usual twelve hours from the import.
        let now = app.now();
        let nit = Nit::parse("830015428").unwrap();
        let live = app
            .store
            .read(|tx| {
                let id = tx.accounts_by_nit(Some(prov), &nit)?[0].id;
                Ok(tx.live_code(id, now)?)
            })
            .unwrap()
            .expect("a live code");
        assert_eq!(live.expires_at, now + app.code_ttl_secs);
    }

    /// What `user export` writes (with hashes) is what `user import`
    /// reads back, field by field; a name with a bidi override is refused.
    #[test]
    fn export_writes_what_import_reads() {
        use crate::ops::kit::{add_account, quick_app};
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let prov = AccountType::Proveedor;
        let mut a = add_account(
            &mut app,
            prov,
            "800003122",
            "v@acme.co",
            Some("acme"),
            Some("caballo tornillo grapa verde"),
        );
        a.name = Some("Acme S.A.S.".into());
        a.lang = Lang::En;
        a.disabled = Some(crate::domain::account::Disabled {
            at: 0,
            reason: Some("cuenta comprometida".into()),
        });
        let cols = export_columns(true);
        let header: Vec<&str> = cols.iter().map(|c| c.spanish()).collect();
        let fields: Vec<String> = cols
            .iter()
            .map(|c| export_field(&a, *c).unwrap_or_default())
            .collect();
        assert_eq!(
            fields[..8],
            [
                "proveedor",
                "800003122",
                "v@acme.co",
                "acme",
                "Acme S.A.S.",
                "en",
                "deshabilitada",
                "cuenta comprometida"
            ]
        );
        assert_eq!(export_columns(false).len(), 8, "the hash only when asked");
        let text = format!("{}\n{}\n", header.join(";"), fields.join(";"));
        let (rows, errors) = parse(&text, b';').unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let r = &rows[0];
        assert_eq!(
            (
                r.kind,
                r.nit.as_str(),
                r.email.as_str(),
                r.username.as_deref(),
                r.name.as_deref(),
                r.lang
            ),
            (
                prov,
                "800003122",
                "v@acme.co",
                Some("acme"),
                Some("Acme S.A.S."),
                Lang::En
            )
        );
        assert_eq!(r.password_hash, a.password_hash);
        assert_eq!(r.disabled, Some(Some("cuenta comprometida".into())));

        let (rows, errors) = parse(
            "nit,email,nombre\n900102030,a@example.co,Ana \u{202E}oicilam\n",
            b',',
        )
        .unwrap();
        assert!(rows.is_empty());
        assert_eq!(errors[0].message, t(M::NameInvalid));
    }
}
