//! `devc-vault`: create, fill, rotate and inspect devc-vault credential vaults.
#![forbid(unsafe_code)]

mod cmd;
mod error;
mod input;
mod unlock;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::LazyLock;

use clap::{CommandFactory, Parser, Subcommand};

/// Options every command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// The vault file [default: $DOCKER_CONFIG/.credentials.enc, else ~/.docker/.credentials.enc]
    #[arg(long, global = true, env = "DEVC_VAULT", value_name = "PATH")]
    pub vault: Option<PathBuf>,
    /// The key file that opens the vault [default for helpers: /run/secrets/devc-vault-key]
    #[arg(long, global = true, env = "DEVC_VAULT_KEY_FILE", value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Read the passphrase that opens the vault from this file descriptor (first line)
    #[arg(long, global = true, value_name = "N")]
    pub passphrase_fd: Option<u32>,
}

impl Global {
    /// The vault in effect; its writers finish an interrupted rotate of
    /// the key file named here.
    pub fn store(&self) -> devc_vault::Store {
        let store = devc_vault::Store::new(self.vault_path());
        match &self.key_file {
            Some(k) => store.with_key_file(k),
            None => store,
        }
    }

    /// The vault path in effect.
    pub fn vault_path(&self) -> PathBuf {
        self.vault
            .clone()
            .unwrap_or_else(devc_keydelivery::environment::vault_path)
    }
}

/// `0.1.0 (vault format v1, agent protocol v1)`: built once, from the
/// format constants, for clap's `--version`.
static VERSION: LazyLock<String> =
    LazyLock::new(|| devc_keydelivery::version::describe(env!("CARGO_PKG_VERSION")));

/// Encrypted registry and git credentials for dev containers.
///
/// Secrets are read from stdin, a file descriptor or the terminal, never from
/// the command line, and never printed.
#[derive(Parser, Debug)]
#[command(name = "devc-vault", version = VERSION.as_str(), propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Init(cmd::init::Args),
    #[command(subcommand)]
    Add(cmd::add::Args),
    #[command(subcommand)]
    Remove(cmd::remove::Args),
    List(cmd::list::Args),
    Rotate(cmd::rotate::Args),
    Seal(cmd::seal::Args),
    #[command(subcommand)]
    Slot(cmd::slot::Args),
    Demo(cmd::demo::Args),
    Doctor(cmd::doctor::Args),
    Devcontainer(cmd::devcontainer::Args),
    Install(cmd::install::Args),
    Agent(cmd::agent::Args),
    Unlock(cmd::unlock::Args),
    Lock(cmd::lock::Args),
    Status(cmd::status::Args),
    Completions(cmd::completions::Args),
    Man(cmd::man::Args),
    /// Runs a passphrase cache (started by the helpers; see `devc_keydelivery::cache::Launch`)
    #[command(name = devc_keydelivery::cache::Launch::SUBCOMMAND, hide = true)]
    Cache {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    // Before any secret is read: no core file, no ptrace by the same user.
    let _ = devc_keydelivery::harden::harden();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            eprintln!("devc-vault: error: {}", error::usage_line(&e));
            return ExitCode::from(2);
        }
    };
    let g = &cli.global;
    let result = match cli.command {
        Command::Init(a) => cmd::init::run(g, a),
        Command::Add(a) => cmd::add::run(g, a),
        Command::Remove(a) => cmd::remove::run(g, a),
        Command::List(a) => cmd::list::run(g, a),
        Command::Rotate(a) => cmd::rotate::run(g, a),
        Command::Seal(a) => cmd::seal::run(g, a),
        Command::Slot(a) => cmd::slot::run(g, a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Doctor(a) => cmd::doctor::run(g, a),
        Command::Devcontainer(a) => cmd::devcontainer::run(g, a),
        Command::Install(a) => cmd::install::run(g, a),
        Command::Agent(a) => cmd::agent::run(g, a),
        Command::Unlock(a) => cmd::unlock::run(g, a),
        Command::Lock(a) => cmd::lock::run(g, a),
        Command::Status(a) => cmd::status::run(g, a),
        Command::Completions(a) => cmd::completions::run(a, Cli::command()),
        Command::Man(a) => cmd::man::run(a, Cli::command()),
        Command::Cache { args } => cmd::agent::run_cache(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devc-vault: error: {e}");
            ExitCode::FAILURE
        }
    }
}
