//! A tiny OCI image built offline with `umoci`: static busybox, its applet
//! symlinks, `/etc/passwd` with a uid-1000 user, `/tmp`. Built into an OCI
//! layout in a temp dir; pushable to a [`Registry`] with skopeo.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process;
use crate::registry::Registry;
use crate::scratch::{self, Scratch};
use crate::skopeo::{Auth, Skopeo};
use crate::tools;

/// Where busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked in `/bin` of the image (`/bin/<applet> -> busybox`).
pub const APPLETS: &[&str] = &[
    "sh", "ash", "ls", "cat", "id", "sleep", "env", "echo", "printf", "test", "[", "true", "false",
    "mkdir", "rm", "cp", "mv", "ln", "chmod", "stat", "grep", "sed", "wc", "head", "tail", "tr",
    "cut", "sort", "nc", "touch", "readlink", "realpath", "dirname", "basename", "timeout",
    "whoami", "pwd", "find", "xargs", "mktemp",
];

/// Name of the uid-1000 user in the image's `/etc/passwd`.
pub const DEV_USER: &str = "dev";
/// Its uid and gid.
pub const DEV_UID: u32 = 1000;

/// An OCI image layout on disk (deleted on drop).
#[derive(Debug)]
pub struct OciImage {
    layout: PathBuf,
    tag: String,
    dir: Scratch,
}

impl OciImage {
    /// Checks (skip or fail) for umoci and a static busybox.
    #[track_caller]
    pub fn available() -> bool {
        if !tools::require_tools(&[("umoci", "builds the test image offline (apt: umoci)")]) {
            return false;
        }
        match is_static_elf(Path::new(BUSYBOX)) {
            Some(true) => true,
            Some(false) => {
                tools::skip_or_fail(
                    &format!("{BUSYBOX} is dynamically linked"),
                    "the test image needs a static busybox (apt: busybox-static)",
                );
                false
            }
            None => {
                tools::skip_or_fail(
                    &format!("{BUSYBOX} not found"),
                    "the test image's userland (apt: busybox-static)",
                );
                false
            }
        }
    }

    /// Builds the busybox image, tag `latest`. Panics on any failure.
    pub fn busybox() -> OciImage {
        let dir = Scratch::new("image");
        let layout = dir.join("oci");
        let tag = "latest".to_owned();
        let image = format!("{}:{tag}", layout.display());
        let bundle = dir.join("bundle");
        let t = Duration::from_secs(60);
        let root = tools::is_root();

        process::run_ok(
            Command::new("umoci")
                .arg("init")
                .arg("--layout")
                .arg(&layout),
            None,
            t,
            "umoci init",
        );
        process::run_ok(
            Command::new("umoci").args(["new", "--image", &image]),
            None,
            t,
            "umoci new",
        );
        let mut unpack = Command::new("umoci");
        unpack.arg("unpack");
        if !root {
            unpack.arg("--rootless");
        }
        unpack.args(["--image", &image]).arg(&bundle);
        process::run_ok(&mut unpack, None, t, "umoci unpack");

        populate_rootfs(&bundle.join("rootfs"), root);

        let mut repack = Command::new("umoci");
        repack.args(["repack", "--image", &image]).arg(&bundle);
        process::run_ok(&mut repack, None, t, "umoci repack");
        process::run_ok(
            Command::new("umoci").args([
                "config",
                "--image",
                &image,
                "--config.cmd",
                "/bin/sh",
                "--config.env",
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "--config.workingdir",
                "/",
            ]),
            None,
            t,
            "umoci config",
        );
        process::run_ok(
            Command::new("umoci").arg("gc").arg("--layout").arg(&layout),
            None,
            t,
            "umoci gc",
        );
        // The unpacked bundle is no longer needed.
        let _ = fs::remove_dir_all(&bundle);
        OciImage { layout, tag, dir }
    }

    /// The OCI layout directory.
    pub fn layout(&self) -> &Path {
        &self.layout
    }

    /// The tag inside the layout.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The containers-image transport reference, `oci:DIR:TAG`.
    pub fn oci_ref(&self) -> String {
        format!("oci:{}:{}", self.layout.display(), self.tag)
    }

    /// The scratch directory holding the layout.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Pushes to `registry` as `name:<tag>` with the registry's credentials;
    /// returns the pushed reference `HOST/name:tag` (no transport prefix).
    pub fn push(&self, registry: &Registry, name: &str) -> String {
        let dest = registry.reference(name, &self.tag);
        self.push_to(&dest, &registry.creds());
        dest
    }

    /// `skopeo copy --dest-tls-verify=false --dest-creds CREDS oci:DIR:TAG
    /// docker://DEST` (isolated [`Skopeo`]). Credentials are in argv:
    /// acceptable for test setup.
    pub fn push_to(&self, dest: &str, creds: &str) {
        Skopeo::new()
            .copy_to_registry(&self.oci_ref(), dest, Auth::Creds(creds))
            .assert_success("skopeo copy (push test image)");
    }
}

fn populate_rootfs(rootfs: &Path, root: bool) {
    let mk = |rel: &str, mode: u32| {
        let p = rootfs.join(rel);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        scratch::set_mode(&p, mode);
        p
    };
    let bin = mk("bin", 0o755);
    fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox into the rootfs");
    scratch::set_mode(&bin.join("busybox"), 0o755);
    for applet in APPLETS {
        symlink("busybox", bin.join(applet)).unwrap_or_else(|e| panic!("symlink {applet}: {e}"));
    }
    for (d, mode) in [
        ("usr/local/bin", 0o755),
        ("usr/bin", 0o755),
        ("run", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
    ] {
        mk(d, mode);
    }
    let etc = mk("etc", 0o755);
    let write = |name: &str, text: String| {
        let p = etc.join(name);
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        scratch::set_mode(&p, 0o644);
    };
    write(
        "passwd",
        format!(
            "root:x:0:0:root:/root:/bin/sh\n{DEV_USER}:x:{DEV_UID}:{DEV_UID}:{DEV_USER}:/home/{DEV_USER}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        ),
    );
    write(
        "group",
        format!("root:x:0:\n{DEV_USER}:x:{DEV_UID}:\nnogroup:x:65534:\n"),
    );
    let home = mk(&format!("home/{DEV_USER}"), 0o755);
    if root {
        scratch::set_owner(&home, DEV_UID, DEV_UID);
    }
}

/// Whether the ELF file at `p` has no `PT_INTERP` program header (is
/// statically linked). `None` if it cannot be read or is not ELF64.
pub fn is_static_elf(p: &Path) -> Option<bool> {
    let data = fs::read(p).ok()?;
    if data.get(..5)? != b"\x7fELF\x02" || data.get(5)? != &1 {
        return None; // only little-endian ELF64 is handled
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        const PT_INTERP: u32 = 3;
        if u32_at(phoff + i * phentsize)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}
