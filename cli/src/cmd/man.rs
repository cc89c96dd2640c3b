//! `devc-vault man`: the manual page (roff) on stdout, generated from the
//! same command definition that parses the arguments.

use crate::cmd::completions::write_stdout;
use crate::error::{CliError, CliResult};

/// Print the manual page in roff (e.g. `devc-vault man > ~/.local/share/man/man1/devc-vault.1`)
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `man` for `cmd`, the whole `devc-vault` command.
pub fn run(_a: Args, cmd: clap::Command) -> CliResult {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(|e| CliError::Input(format!("rendering the manual page: {e}")))?;
    write_stdout(&page)
}
