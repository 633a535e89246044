//! Integration tests: the real binary, a real SQLite file, a real SMTP
//! server, parsed email.

mod abuse;
mod flow;
mod output;
mod pty;
mod races;
mod smtp;
mod smtp_server;
mod util;
