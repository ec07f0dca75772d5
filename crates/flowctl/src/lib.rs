//! flowctl: an eBPF flow exporter for Linux hosts and routers.
//!
//! The binary is a thin layer over this library: [`cli`] parses arguments,
//! [`commands`] runs them on top of `flowctl-datapath`, and [`flow_view`]
//! renders flows as tables or JSON.

pub mod cli;
pub mod commands;
pub mod filter;
pub mod flow_view;
pub mod logging;
pub mod process;
