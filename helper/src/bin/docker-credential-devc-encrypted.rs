//! `docker-credential-devc-encrypted`: the docker CLI, BuildKit, skopeo and
//! podman call this with one verb; all logic is in `devc_helper::docker`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use devc_helper::docker::{Helper, Reply};

fn main() -> ExitCode {
    // Before any key is read: no core file, no ptrace by the same user.
    let _ = devc_keydelivery::harden::harden();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let reply = match Helper::from_env() {
        Ok(helper) => helper.run(&args, &mut devc_helper::io::stdin()),
        Err(e) => Reply::fail(&e.to_string()),
    };
    match reply.emit() {
        Ok(()) => ExitCode::from(reply.code),
        Err(_) => ExitCode::FAILURE,
    }
}
