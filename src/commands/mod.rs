//! One module per command group. A command reads as: arguments in (flags,
//! or prompts in a terminal), one operation of [`crate::ops`], the outcome
//! rendered through [`crate::view`]. Commands never call each other.

pub mod audit;
pub mod codes;
pub mod db;
pub mod demo;
pub mod import;
pub mod login;
pub mod mail;
pub mod reset;
pub mod user;
