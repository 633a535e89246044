//! Listings: a streamed JSON array for scripts, comfy-table tables fitted to
//! the terminal for people.
//!
//! Invariants:
//! - A listing never holds more than one page of rows in memory: JSON items
//!   are written as they come, and long tables print one table per page, so
//!   `user list` over 100,000 accounts stays flat in memory.
//! - Cells hold text already made visible by the caller (`i18n::visible`).
//! - A row can be emphasised (a disabled account): in colour only when
//!   stdout is a terminal and `NO_COLOR` is unset; the row's own words
//!   ("DESHABILITADA") tell it apart everywhere else.

use crate::error::Result;
use crate::i18n::{M, t};
use crate::ui::Ui;
use comfy_table::{Attribute, Cell, Color, ContentArrangement, Row, Table, presets};
use std::io::Write;

const PAGE: usize = 500;

/// Box drawing in a terminal; plain Markdown-style ASCII in a pipe or a
/// file (and with NO_COLOR), which also pastes well into a ticket.
fn style(ui: &Ui) -> comfy_table::TableStyle {
    if ui.stdout_tty && !ui.no_color {
        presets::UTF8_FULL_CONDENSED
    } else {
        presets::ASCII_MARKDOWN
    }
}

fn colour(ui: &Ui) -> bool {
    ui.stdout_tty && !ui.no_color
}

fn new_table(ui: &Ui, headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(style(ui))
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().copied());
    if !colour(ui) {
        table.force_no_tty();
    }
    table
}

fn row(ui: &Ui, cells: Vec<String>, emphasis: bool) -> Row {
    let styled = emphasis && colour(ui);
    Row::from(cells.into_iter().map(|c| {
        let cell = Cell::new(c);
        if styled {
            cell.fg(Color::Red).add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }))
}

fn print(table: &Table) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{table}")?;
    Ok(())
}

/// Rows pushed one at a time, printed a page at a time.
pub struct Paged<'a> {
    ui: &'a Ui,
    headers: Vec<String>,
    table: Table,
    rows: usize,
    printed: usize,
}

impl<'a> Paged<'a> {
    pub fn new(ui: &'a Ui, headers: &[&str]) -> Self {
        Paged {
            ui,
            headers: headers.iter().map(|s| s.to_string()).collect(),
            table: new_table(ui, headers),
            rows: 0,
            printed: 0,
        }
    }

    pub fn row(&mut self, cells: Vec<String>, emphasis: bool) -> Result<()> {
        self.table.add_row(row(self.ui, cells, emphasis));
        self.rows += 1;
        if self.rows == PAGE {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows > 0 {
            print(&self.table)?;
            self.printed += self.rows;
            self.rows = 0;
            let headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
            self.table = new_table(self.ui, &headers);
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        if self.printed == 0 {
            self.ui.line(t(M::Empty))?;
        }
        Ok(())
    }
}

/// One listing, rendered as `--json` asks: a JSON array streamed item by
/// item, or paged tables with these headers.
pub enum Listing<'a> {
    Json {
        out: std::io::BufWriter<std::io::StdoutLock<'static>>,
        first: bool,
    },
    Table(Box<Paged<'a>>),
}

impl<'a> Listing<'a> {
    pub fn new(ui: &'a Ui, headers: &[&str]) -> Result<Self> {
        if ui.json {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            out.write_all(b"[")?;
            Ok(Listing::Json { out, first: true })
        } else {
            Ok(Listing::Table(Box::new(Paged::new(ui, headers))))
        }
    }

    /// Adds one item; only the rendering in use is computed. `emphasis`
    /// marks a row that needs attention (a disabled account).
    pub fn push(
        &mut self,
        json: impl FnOnce() -> serde_json::Value,
        cells: impl FnOnce() -> Vec<String>,
        emphasis: bool,
    ) -> Result<()> {
        match self {
            Listing::Json { out, first } => {
                if !*first {
                    out.write_all(b",")?;
                }
                *first = false;
                serde_json::to_writer(&mut *out, &json())?;
                Ok(())
            }
            Listing::Table(pager) => pager.row(cells(), emphasis),
        }
    }

    pub fn finish(self) -> Result<()> {
        match self {
            Listing::Json { mut out, .. } => {
                out.write_all(b"]\n")?;
                out.flush()?;
                Ok(())
            }
            Listing::Table(pager) => pager.finish(),
        }
    }
}

/// A two-column table of labels and values (`user show`).
pub fn key_values(ui: &Ui, rows: &[(&str, String)], emphasis: bool) -> Result<()> {
    let mut table = Table::new();
    table
        .load_style(style(ui))
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !colour(ui) {
        table.force_no_tty();
    }
    for (k, v) in rows {
        table.add_row(row(ui, vec![k.to_string(), v.clone()], emphasis));
    }
    print(&table)
}
