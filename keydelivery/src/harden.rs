//! Process hardening for the agent, the cache and the helpers (ssh-agent's `platform_disable_tracing`):
//! not dumpable, so other processes of the same user cannot ptrace it or read
//! its memory through /proc, and no core file that could hold a key.

use std::io;

use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};

/// Makes this process not dumpable and sets RLIMIT_CORE to 0.
pub fn harden() -> io::Result<()> {
    set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    Ok(())
}
