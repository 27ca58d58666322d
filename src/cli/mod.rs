//! The `s4db` command line: arguments, the JSON Lines codec, and commands.

pub mod args;
pub mod commands;
pub mod jsonl;
