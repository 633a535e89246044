//! Integration tests: the real binary, a real SQLite file, parsed email.

mod flow;
mod util;
