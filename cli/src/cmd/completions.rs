//! `devc-vault completions SHELL`: the shell's completion script on stdout,
//! generated from the same command definition that parses the arguments.

use std::io::Write;

use crate::error::{CliError, CliResult};

/// The shells we generate completions for.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    /// bash (bash-completion)
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
}

/// Print a shell completion script (e.g. `devc-vault completions bash > ~/.local/share/bash-completion/completions/devc-vault`)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell to complete for
    shell: Shell,
}

/// Runs `completions` for `cmd`, the whole `devc-vault` command.
pub fn run(a: Args, mut cmd: clap::Command) -> CliResult {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "devc-vault", &mut script);
    write_stdout(&script)
}

/// Writes all of `bytes` to stdout; a closed pipe is an error, not a panic.
pub fn write_stdout(bytes: &[u8]) -> CliResult {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Input(format!("writing to stdout: {e}")))
}
