//! `recupera user import FILE|-` and `recupera user export`.

use crate::app::App;
use crate::cli::{ExportFormat, UserExportArgs, UserImportArgs};
use crate::error::{Error, Result};
use crate::i18n::{M, t, tf};
use crate::ops::import::{self, Encoding, OnConflict, Options, Report};
use crate::ui::Ui;
use serde_json::json;
use std::io::{Read, Write};

/// Files larger than this are refused before reading (a platform's whole
/// customer base as CSV is a few tens of megabytes).
const MAX_FILE: u64 = 1 << 30;

fn read_input(file: &std::ffi::OsStr) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let shown = crate::i18n::shown_path(std::path::Path::new(file));
    let cannot = |e: &dyn std::fmt::Display| {
        Error::Usage(tf(M::ImportCannotRead, &[("file", &shown), ("err", e)]))
    };
    if file == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| cannot(&crate::i18n::os_error(&e)))?;
    } else {
        let f = std::fs::File::open(file).map_err(|e| cannot(&crate::i18n::os_error(&e)))?;
        f.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| cannot(&crate::i18n::os_error(&e)))?;
    }
    if bytes.len() as u64 > MAX_FILE {
        return Err(cannot(&"> 1 GiB"));
    }
    Ok(bytes)
}

fn delimiter(raw: &str) -> Result<u8> {
    match raw {
        ";" => Ok(b';'),
        "," => Ok(b','),
        "\t" | "tab" | "\\t" | "TAB" => Ok(b'\t'),
        "|" => Ok(b'|'),
        other => Err(Error::Usage(tf(
            M::ImportBadDelimiter,
            &[("value", &crate::i18n::quote(other))],
        ))),
    }
}

pub fn run_import(app: &mut App, ui: &Ui, a: &UserImportArgs) -> Result<()> {
    let opts = Options {
        dry_run: a.dry_run,
        on_conflict: if a.on_conflict == crate::cli::OnConflictArg::Skip {
            OnConflict::Skip
        } else {
            OnConflict::Fail
        },
        delimiter: a.delimiter.as_deref().map(delimiter).transpose()?,
        encoding: if a.encoding == crate::cli::EncodingArg::Windows1252 {
            Encoding::Windows1252
        } else {
            Encoding::Utf8
        },
        invite: a.invite,
    };
    let bytes = read_input(&a.file)?;
    let text = import::decode(&bytes, opts.encoding)?;
    let delim = opts
        .delimiter
        .unwrap_or_else(|| import::detect_delimiter(&text));

    let spinner = crate::ui::progress(ui, t(M::ProgressValidate));
    let (rows, mut errors) = import::parse(&text, delim)?;
    let (rows, skipped) = import::plan(app, rows, opts.on_conflict, &mut errors)?;
    if let Some(b) = spinner {
        b.finish_and_clear();
    }
    if !errors.is_empty() {
        return Err(Error::Rows(
            tf(M::ImportInvalid, &[("errors", &errors.len())]),
            errors,
        ));
    }
    let invited_if = if opts.invite {
        rows.iter().filter(|r| r.invited()).count() as u64
    } else {
        0
    };
    let report = if opts.dry_run {
        Report {
            status: "dry_run",
            created: rows.len() as u64,
            skipped,
            invited: invited_if,
            errors: Vec::new(),
        }
    } else {
        let bar = crate::ui::progress(ui, t(M::ProgressWrite));
        if let Some(b) = &bar {
            b.set_length(rows.len() as u64);
        }
        let (created, invited) = import::write(app, &rows, opts.invite, skipped, |n| {
            if let Some(b) = &bar
                && (n % 256 == 0 || n == rows.len() as u64)
            {
                b.set_position(n);
            }
        })?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Report {
            status: "imported",
            created,
            skipped,
            invited,
            errors: Vec::new(),
        }
    };
    let text = tf(
        if opts.dry_run {
            M::ImportDry
        } else {
            M::ImportDone
        },
        &[
            ("created", &report.created),
            ("skipped", &report.skipped),
            ("invited", &report.invited),
        ],
    );
    let text = if report.invited > 0 && !opts.dry_run {
        format!("{text}\n{}", t(M::ImportInvitesQueued))
    } else {
        text
    };
    ui.result(json!(report), &text)
}

/// What `open(2)` with `O_NOFOLLOW` says of a symlink.
#[cfg(unix)]
const ELOOP: i32 = libc::ELOOP;
#[cfg(not(unix))]
const ELOOP: i32 = 0;

/// Where an export goes: a new private file, or stdout.
fn open_output(a: &UserExportArgs) -> Result<Box<dyn Write>> {
    let Some(path) = &a.output else {
        if a.with_hashes {
            // Hashes are secrets: they never go to stdout.
            return Err(Error::Usage(t(M::ExportHashesNeedFile).to_string()));
        }
        return Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock())));
    };
    let shown = crate::i18n::shown_path(path);
    let not_file = || Error::Usage(tf(M::ExportNotFile, &[("file", &shown)]));
    // --force overwrites a regular file only: never through a symlink
    // (it would write the hashes wherever the link points, and change that
    // file's mode), never a device or a pipe.
    if a.force
        && let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.is_file()
    {
        return Err(not_file());
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if a.force {
        // Truncated below, once known to be a regular file.
        o.create(true).truncate(false);
    } else {
        o.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: a pipe put there after the check fails to open
        // instead of waiting for a reader (no effect on a regular file).
        o.mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let f = o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Usage(tf(M::ExportExists, &[("file", &shown)]))
        } else if cfg!(unix) && e.raw_os_error() == Some(ELOOP) {
            // A symlink put there after the check above.
            not_file()
        } else {
            Error::Usage(tf(
                M::ExportCannotWrite,
                &[("file", &shown), ("err", &crate::i18n::os_error(&e))],
            ))
        }
    })?;
    if !f.metadata()?.is_file() {
        return Err(not_file());
    }
    f.set_len(0)?;
    // An existing file overwritten with --force keeps no wider mode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(Box::new(std::io::BufWriter::new(f)))
}

pub fn run_export(app: &mut App, ui: &Ui, a: &UserExportArgs) -> Result<()> {
    let cols = import::export_columns(a.with_hashes);
    let out = open_output(a)?;
    let mut count = 0u64;
    match a.format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(cols.iter().map(|c| c.spanish()))
                .map_err(csv_error)?;
            app.store.read(|tx| {
                count = 0;
                tx.for_each_account(None, &mut |acc| {
                    count += 1;
                    w.write_record(
                        cols.iter()
                            .map(|c| import::export_field(&acc, *c).unwrap_or_default())
                            .map(|v| import::to_cell(&v).into_owned()),
                    )
                    .map_err(csv_error)
                })?;
                Ok(())
            })?;
            w.flush()?;
        }
        ExportFormat::Jsonl => {
            let mut out = out;
            app.store.read(|tx| {
                count = 0;
                tx.for_each_account(None, &mut |acc| {
                    count += 1;
                    let mut obj = serde_json::Map::new();
                    for c in &cols {
                        obj.insert(
                            c.spanish().to_string(),
                            import::export_field(&acc, *c).map_or(json!(null), |v| json!(v)),
                        );
                    }
                    serde_json::to_writer(&mut out, &obj)?;
                    out.write_all(b"\n")?;
                    Ok(())
                })?;
                Ok(())
            })?;
            out.flush()?;
        }
    }
    // Said on stderr (stdout may be the export itself).
    if let Some(path) = &a.output {
        ui.result(
            json!({"status": "exported", "accounts": count, "file": path}),
            &tf(
                M::ExportDone,
                &[("count", &count), ("file", &crate::i18n::shown_path(path))],
            ),
        )?;
    }
    Ok(())
}

fn csv_error(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::Io(io),
        other => crate::internal!("csv: {other:?}"),
    }
}
