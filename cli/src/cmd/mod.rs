//! One module per subcommand.

pub mod add;
pub mod agent;
pub mod completions;
pub mod demo;
pub mod devcontainer;
pub mod doctor;
pub mod init;
pub mod install;
pub mod list;
pub mod lock;
pub mod man;
pub mod refresher;
pub mod remove;
pub mod rotate;
pub mod seal;
pub mod slot;
pub mod status;
pub mod timer;
pub mod unlock;

use devc_vault::Argon2Cost;

/// Which git credential: protocol, host and (for `credential.useHttpPath`
/// setups) a repository path.
#[derive(clap::Args, Debug)]
pub struct GitTarget {
    /// Protocol, e.g. https
    #[arg(long)]
    pub protocol: String,
    /// Host, with :port if not the default
    #[arg(long)]
    pub host: String,
    /// Repository path (only for credential.useHttpPath setups, where git sends one)
    #[arg(long)]
    pub path: Option<String>,
}

/// Parses `m=KiB,t=N,p=N` (Argon2id costs) for `--kdf-cost`.
pub fn parse_cost(s: &str) -> Result<Argon2Cost, String> {
    let mut cost = Argon2Cost::DEFAULT;
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("expected m=KiB,t=N,p=N, got {part:?}"))?;
        let v: u32 = v.parse().map_err(|_| format!("{k} must be a number"))?;
        match k {
            "m" => cost.m_kib = v,
            "t" => cost.t = v,
            "p" => cost.p = v,
            _ => return Err(format!("unknown cost {k:?}; use m, t, p")),
        }
    }
    cost.check_caps().map_err(|e| e.to_string())?;
    if cost.work() > Argon2Cost::MAX_FILE_WORK {
        return Err(format!(
            "m times t is {} KiB-passes, over the {} a vault may ask of a reader in all",
            cost.work(),
            Argon2Cost::MAX_FILE_WORK
        ));
    }
    if !cost.is_valid() {
        return Err("argon2id needs t >= 1, 1 <= p, and m >= 8*p KiB".into());
    }
    Ok(cost)
}
