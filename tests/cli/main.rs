//! Integration tests: the real binary, a real SQLite file, parsed email.

mod abuse;
mod flow;
mod races;
mod util;
