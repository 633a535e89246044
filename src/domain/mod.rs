//! Domain types and rules: no I/O, no terminal, no SQL. Everything here is
//! tested in memory.

pub mod account;
pub mod code;
pub mod email;
pub mod hash;
pub mod lang;
pub mod limits;
pub mod nit;
pub mod password;
