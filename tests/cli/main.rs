//! Integration tests: the real binary, a real SQLite file and a real
//! PostgreSQL server, a real SMTP server, parsed email.

mod abuse;
mod desk;
mod engines;
mod flow;
mod hardening;
mod import;
mod output;
mod pty;
mod races;
mod screens;
mod smtp;
mod smtp_server;
mod util;
