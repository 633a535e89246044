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

/// Narrower than this, a reported terminal width is taken as no width.
const MIN_WIDTH: u16 = 20;

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
        .set_content_arrangement(ContentArrangement::Dynamic);
    // A terminal that reports no width (0 columns: `script`, some CI
    // runners) would wrap every cell to one character.
    if ui.stdout_tty && table.width().is_none_or(|w| w < MIN_WIDTH) {
        table.set_width(80);
    }
    if !headers.is_empty() {
        table.set_header(headers.iter().copied());
    }
    if colour(ui) {
        // Coloured because stdout is a terminal (`colour`), whichever sink
        // the table is written to.
        table.enforce_styling();
    } else {
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

/// Columns whose values are all this short (a NIT with its dots, a type,
/// a state) are never wrapped: a narrow terminal wraps the names and
/// emails, not "800.003.1 / 22-6". Those keep at least `WRAPPED_MIN`.
const NO_WRAP: u16 = 13;
const WRAPPED_MIN: u16 = 10;

fn print(out: &mut dyn Write, table: &mut Table) -> Result<()> {
    let widths = table.column_max_content_widths();
    for (column, width) in table.column_iter_mut().zip(widths) {
        column.set_constraint(if width <= NO_WRAP {
            comfy_table::ColumnConstraint::ContentWidth
        } else {
            comfy_table::ColumnConstraint::LowerBoundary(comfy_table::Width::Fixed(WRAPPED_MIN))
        });
    }
    writeln!(out, "{table}")?;
    out.flush()?;
    Ok(())
}

/// Where a listing goes: stdout, or (in tests) any writer.
pub type Sink<'a> = Box<dyn Write + 'a>;

/// Rows pushed one at a time, printed a page at a time.
pub struct Paged<'a> {
    ui: &'a Ui,
    out: Sink<'a>,
    headers: Vec<String>,
    table: Table,
    rows: usize,
    printed: usize,
}

impl<'a> Paged<'a> {
    pub fn new(ui: &'a Ui, headers: &[&str], out: Sink<'a>) -> Self {
        Paged {
            ui,
            out,
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
            print(&mut self.out, &mut self.table)?;
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
            writeln!(self.out, "{}", t(M::Empty))?;
            self.out.flush()?;
        }
        Ok(())
    }
}

/// One listing, rendered as `--json` asks: a JSON array streamed item by
/// item, or paged tables with these headers.
pub enum Listing<'a> {
    Json {
        out: std::io::BufWriter<Sink<'a>>,
        first: bool,
        /// On stdout: said to be streaming once the array is opened.
        stdout: bool,
    },
    Table(Box<Paged<'a>>),
}

impl<'a> Listing<'a> {
    /// A listing on stdout.
    pub fn new(ui: &'a Ui, headers: &[&str]) -> Result<Self> {
        let mut listing = Self::to(ui, headers, Box::new(std::io::stdout().lock()))?;
        if let Listing::Json { stdout, .. } = &mut listing {
            *stdout = true;
        }
        Ok(listing)
    }

    /// A listing written to `out`.
    pub fn to(ui: &'a Ui, headers: &[&str], out: Sink<'a>) -> Result<Self> {
        if ui.json {
            // "[" is written with the first item (or at the end): an error
            // met before any item leaves stdout to its own document.
            Ok(Listing::Json {
                out: std::io::BufWriter::new(out),
                first: true,
                stdout: false,
            })
        } else {
            Ok(Listing::Table(Box::new(Paged::new(ui, headers, out))))
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
            Listing::Json { out, first, stdout } => {
                let item = json();
                if *first {
                    if *stdout {
                        crate::ui::set_streaming(true);
                    }
                    out.write_all(b"[")?;
                } else {
                    out.write_all(b",")?;
                }
                *first = false;
                serde_json::to_writer(&mut *out, &item)?;
                Ok(())
            }
            Listing::Table(pager) => pager.row(cells(), emphasis),
        }
    }

    pub fn finish(self) -> Result<()> {
        match self {
            Listing::Json { mut out, first, .. } => {
                out.write_all(if first { b"[]\n" } else { b"]\n" })?;
                out.flush()?;
                crate::ui::set_streaming(false);
                Ok(())
            }
            Listing::Table(pager) => pager.finish(),
        }
    }
}

/// A two-column table of labels and values (`user show`), on stdout.
pub fn key_values(ui: &Ui, rows: &[(&str, String)], emphasis: bool) -> Result<()> {
    key_values_to(ui, rows, emphasis, &mut std::io::stdout().lock())
}

/// A two-column table of labels and values, written to `out`.
pub fn key_values_to(
    ui: &Ui,
    rows: &[(&str, String)],
    emphasis: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut table = new_table(ui, &[]);
    for (k, v) in rows {
        table.add_row(row(ui, vec![k.to_string(), v.clone()], emphasis));
    }
    print(out, &mut table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A sink the test can read while the listing still holds it.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.borrow().clone()).unwrap()
        }
    }

    /// A `Ui` as a pipe sees it, whatever the test runner's own stdout is.
    fn ui(json: bool, tty: bool, no_color: bool) -> Ui {
        let mut ui = Ui::new(json);
        ui.stdout_tty = tty;
        ui.no_color = no_color;
        ui
    }

    const HEADERS: [&str; 2] = ["NIT", "CORREO"];

    fn cells(i: usize) -> Vec<String> {
        vec![format!("nit-{i:04}"), format!("c{i}@example.co")]
    }

    /// Header lines of ASCII tables in `text` (one per printed table).
    fn tables(text: &str) -> usize {
        text.lines().filter(|l| l.contains("| NIT ")).count()
    }

    fn rows_in(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("nit-")))
            .map(str::to_string)
            .collect()
    }

    /// A whole table listing of `rows` (number, emphasised), as written.
    fn table_of(ui: &Ui, rows: impl IntoIterator<Item = (usize, bool)>) -> String {
        let sink = Shared::default();
        let mut list = Listing::to(ui, &HEADERS, Box::new(sink.clone())).unwrap();
        for (i, emphasis) in rows {
            list.push(|| unreachable!("no JSON in a table"), || cells(i), emphasis)
                .unwrap();
        }
        list.finish().unwrap();
        sink.text()
    }

    #[test]
    fn a_long_table_is_printed_a_page_at_a_time_and_every_row_once_in_order() {
        let ui = ui(false, false, false);
        let sink = Shared::default();
        let mut list = Listing::to(&ui, &HEADERS, Box::new(sink.clone())).unwrap();
        for i in 0..PAGE - 1 {
            list.push(|| unreachable!("no JSON in a table"), || cells(i), false)
                .unwrap();
        }
        assert_eq!(sink.text(), "", "nothing printed before a page is full");
        list.push(|| unreachable!(), || cells(PAGE - 1), false)
            .unwrap();
        let first = sink.text();
        assert_eq!(tables(&first), 1, "a full page is printed at once");
        assert_eq!(rows_in(&first).len(), PAGE);
        for i in PAGE..2 * PAGE + 1 {
            list.push(|| unreachable!(), || cells(i), false).unwrap();
        }
        assert_eq!(
            tables(&sink.text()),
            2,
            "the third page waits for more rows"
        );
        list.finish().unwrap();
        let text = sink.text();
        assert_eq!(tables(&text), 3, "1001 rows: pages of 500, 500 and 1");
        let want: Vec<String> = (0..2 * PAGE + 1).map(|i| format!("nit-{i:04}")).collect();
        assert_eq!(rows_in(&text), want);
        assert!(!text.contains(t(M::Empty)));
    }

    #[test]
    fn exactly_one_page_prints_one_table_and_no_empty_notice() {
        let text = table_of(&ui(false, false, false), (0..PAGE).map(|i| (i, false)));
        assert_eq!(tables(&text), 1);
        assert_eq!(rows_in(&text).len(), PAGE);
        assert!(!text.contains(t(M::Empty)));
    }

    #[test]
    fn an_empty_table_says_so_in_our_words_without_a_header() {
        let text = table_of(&ui(false, false, false), []);
        assert_eq!(text, format!("{}\n", t(M::Empty)));
    }

    #[test]
    fn json_is_one_array_streamed_item_by_item() {
        let ui = ui(true, false, false);
        let sink = Shared::default();
        Listing::to(&ui, &HEADERS, Box::new(sink.clone()))
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(
            sink.text(),
            "[]\n",
            "no item: an empty array, not the notice"
        );

        let sink = Shared::default();
        let mut list = Listing::to(&ui, &HEADERS, Box::new(sink.clone())).unwrap();
        for i in 0..3 {
            list.push(
                || serde_json::json!({"i": i, "s": "a\"b"}),
                || unreachable!("no cells in JSON"),
                i == 1,
            )
            .unwrap();
        }
        list.finish().unwrap();
        let text = sink.text();
        assert!(text.ends_with("]\n"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"i": 0, "s": "a\"b"},
                {"i": 1, "s": "a\"b"},
                {"i": 2, "s": "a\"b"}
            ])
        );
    }

    #[test]
    fn a_pipe_gets_plain_ascii_without_escapes_even_for_an_emphasised_row() {
        for (tty, no_color) in [(false, false), (false, true), (true, true)] {
            let text = table_of(&ui(false, tty, no_color), [(1, true)]);
            assert!(text.is_ascii(), "tty={tty} no_color={no_color}: {text}");
            assert!(!text.contains('\u{1b}'), "{text}");
            assert!(text.contains("| NIT "), "{text}");
            assert!(text.contains("|---"), "Markdown's header rule: {text}");
        }
    }

    #[test]
    fn a_terminal_gets_box_drawing_and_only_an_emphasised_row_in_colour() {
        let ui = ui(false, true, false);
        let plain = table_of(&ui, [(1, false)]);
        assert!(plain.contains('│') && plain.contains('┌'), "{plain}");
        assert!(rows_in(&plain).contains(&"nit-0001".to_string()));
        let row = plain.lines().find(|l| l.contains("nit-0001")).unwrap();
        assert!(
            !row.contains('\u{1b}'),
            "a normal row is not coloured: {row:?}"
        );

        let text = table_of(&ui, [(2, true)]);
        let row = text.lines().find(|l| l.contains("nit-0002")).unwrap();
        assert!(row.contains("\u{1b}[1m"), "bold: {row:?}");
        assert!(
            row.contains("\u{1b}[38;5;9m") || row.contains("\u{1b}[31m"),
            "red: {row:?}"
        );
    }

    #[test]
    fn key_values_are_two_columns_without_a_header() {
        let rows = [
            ("NIT", "900123456".to_string()),
            ("Estado", "activa".to_string()),
        ];
        let ui = ui(false, false, false);
        let mut out = Vec::new();
        key_values_to(&ui, &rows, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line a row, no header rule: {text}");
        assert!(
            lines[0].starts_with("| NIT ") && lines[0].contains("| 900123456 |"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("| Estado ") && lines[1].contains("| activa "),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'));

        let ui = ui_tty();
        let mut out = Vec::new();
        key_values_to(&ui, &rows, true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains('│'), "{text}");
        let row = text.lines().find(|l| l.contains("900123456")).unwrap();
        assert!(
            row.contains("\u{1b}[1m"),
            "an emphasised account is bold: {row:?}"
        );
    }

    fn ui_tty() -> Ui {
        ui(false, true, false)
    }
}
