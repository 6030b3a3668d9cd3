//! TODO

pub mod command;
