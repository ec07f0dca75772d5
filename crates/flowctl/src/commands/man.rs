//! `flowctl man --dir DIR` (hidden): the manual pages of flowctl and of
//! every subcommand (`flowctl-agent.1`, `flowctl-config-check.1`, ...),
//! rendered by clap_mangen from the very CLI definition the binary parses
//! with, so a page cannot drift from the options. misc/package.sh runs the
//! built binary to put them in the .deb.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};

/// Writes every page into `args.dir` and lists the files written.
pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let date = match &args.date {
        Some(d) => d.clone(),
        None => time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!("[year]-[month]-[day]"))
            .context("formatting today's date")?,
    };
    let mut written = Vec::new();
    write_pages(&root, &args.dir, &date, &mut written)?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

/// Writes the page of `cmd` and, depth first, of its visible subcommands.
fn write_pages(cmd: &clap::Command, dir: &Path, date: &str, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    // (an empty date would shift the .TH fields: man would show no manual name)
    let page = clap_mangen::Man::new(cmd.clone())
        .date(date)
        .source(format!("flowctl {}", env!("CARGO_PKG_VERSION")))
        .manual("flowctl manual");
    let path = dir.join(page.get_filename());
    let mut text = Vec::new();
    page.render(&mut text)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, date, written)?;
    }
    Ok(())
}
