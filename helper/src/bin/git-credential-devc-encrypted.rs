//! `git-credential-devc-encrypted`: git's credential helper over a devc-vault
//! vault. Used as `credential.helper = devc-encrypted`; see `devc_helper::git`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use devc_helper::git::ops::{self, Context, PROGRAM};
use devc_helper::git::protocol::Operation;

const USAGE: &str = "usage: git-credential-devc-encrypted <get|store|erase>\n\
    A git credential helper reading a devc-vault vault; configure it with\n\
    `git config --global credential.helper devc-encrypted` or `devc-vault install`.";

fn main() -> ExitCode {
    // Before any key is read: no core file, no ptrace by the same user.
    let _ = devc_keydelivery::harden::harden();
    // git appends the operation to the configured command line, so it is
    // the last argument; anything before it is an option we do not have.
    let Some(last) = std::env::args_os().skip(1).last() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let op = match last.to_str() {
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!(
                "{PROGRAM} {}",
                devc_keydelivery::version::describe(env!("CARGO_PKG_VERSION"))
            );
            return ExitCode::SUCCESS;
        }
        Some(s) => Operation::parse(s),
        None => Operation::Unknown,
    };
    let code = ops::run(
        op,
        Context::from_env(),
        devc_helper::io::stdin(),
        &mut devc_helper::io::Stdout,
        &mut std::io::stderr(),
    );
    ExitCode::from(code)
}
