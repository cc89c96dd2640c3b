//! The version text all three binaries print: the package version and the
//! formats it reads and writes, taken from the constants that define them
//! so that a format bump shows in `--version` without anyone editing it.

/// `VERSION (vault format vN, agent protocol vM)`, e.g.
/// `0.1.0 (vault format v1, agent protocol v1)`; `package_version` is the
/// binary's own `CARGO_PKG_VERSION`.
pub fn describe(package_version: &str) -> String {
    format!(
        "{package_version} (vault format v{}, agent protocol v{})",
        devc_vault::FORMAT_VERSION,
        crate::protocol::VERSION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_both_formats_from_their_constants() {
        assert_eq!(
            describe("1.2.3"),
            format!(
                "1.2.3 (vault format v{}, agent protocol v{})",
                devc_vault::FORMAT_VERSION,
                crate::protocol::VERSION
            )
        );
    }
}
