//! Integration tests: the real binary, a real SQLite file and a real
//! PostgreSQL server, a real SMTP server, parsed email.

mod flow;
mod output;
mod smtp;
mod smtp_server;
mod util;
