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

/// An export written to a file: a new private file beside the one named,
/// put in its place (a rename) only once the whole export is written.
/// Never an existing file opened and truncated: that file keeps its owner,
/// and one made by another user in a shared folder would hand them the
/// hashes; a failed export would also have destroyed the one before.
struct Replace {
    temp: tempfile::TempPath,
    path: std::path::PathBuf,
    force: bool,
}

impl Replace {
    fn finish(self) -> Result<()> {
        let shown = crate::i18n::shown_path(&self.path);
        let done = if self.force {
            self.temp.persist(&self.path)
        } else {
            self.temp.persist_noclobber(&self.path)
        };
        done.map(|_| ()).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Usage(tf(M::ExportExists, &[("file", &shown)]))
            } else {
                Error::Usage(tf(
                    M::ExportCannotWrite,
                    &[("file", &shown), ("err", &crate::i18n::os_error(&e.error))],
                ))
            }
        })
    }
}

/// Where an export goes: a new private file, or stdout.
fn open_output(a: &UserExportArgs) -> Result<(Box<dyn Write>, Option<Replace>)> {
    let Some(path) = &a.output else {
        if a.with_hashes {
            // Hashes are secrets: they never go to stdout.
            return Err(Error::Usage(t(M::ExportHashesNeedFile).to_string()));
        }
        return Ok((
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            None,
        ));
    };
    let shown = crate::i18n::shown_path(path);
    let not_file = || Error::Usage(tf(M::ExportNotFile, &[("file", &shown)]));
    match std::fs::symlink_metadata(path) {
        // Without --force an existing name is never replaced; with it, only
        // a regular file is (not a symlink, a device, a pipe or a folder).
        Ok(_) if !a.force => {
            return Err(Error::Usage(tf(M::ExportExists, &[("file", &shown)])));
        }
        Ok(meta) if !meta.is_file() => return Err(not_file()),
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    // tempfile makes it O_EXCL, 0600, with a random name.
    let file = tempfile::Builder::new()
        .prefix(".recupera-export-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| {
            Error::Usage(tf(
                M::ExportCannotWrite,
                &[("file", &shown), ("err", &crate::i18n::os_error(&e))],
            ))
        })?;
    let (f, temp) = file.into_parts();
    Ok((
        Box::new(std::io::BufWriter::new(f)),
        Some(Replace {
            temp,
            path: path.clone(),
            force: a.force,
        }),
    ))
}

pub fn run_export(app: &mut App, ui: &Ui, a: &UserExportArgs) -> Result<()> {
    let cols = import::export_columns(a.with_hashes);
    let (out, replace) = open_output(a)?;
    // The export itself on stdout: an error from here on is not a document
    // of its own there.
    if a.output.is_none() {
        crate::ui::set_streaming(true);
    }
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
            drop(w);
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
            drop(out);
        }
    }
    crate::ui::set_streaming(false);
    if let Some(r) = replace {
        r.finish()?;
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
