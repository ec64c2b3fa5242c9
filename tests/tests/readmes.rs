//! Every crate's README.md is its crate documentation (the `//!` lines that open
//! `src/lib.rs`, or `src/main.rs` for a crate without a library), so the two cannot drift:
//! Bottlerocket generates its READMEs from crate docs the same way. `make readmes`
//! (`CORRAL_WRITE_READMES=1`) writes them; this test fails when one differs.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// Every workspace crate's folder, from `cargo metadata`.
fn crate_dirs() -> Vec<PathBuf> {
    let text = corral_harness::workspace_metadata().expect("cargo metadata runs");
    let meta: Value = serde_json::from_str(&text).expect("cargo metadata is JSON");
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| {
            Path::new(p["manifest_path"].as_str()?)
                .parent()
                .map(Path::to_path_buf)
        })
        .collect()
}

/// The README a crate's documentation makes: its opening `//!` lines without the
/// marker, with rustdoc's intra-doc links (`` [`name`] `` not followed by a link target)
/// as plain code.
fn readme(source: &str) -> String {
    let doc: String = source
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| {
            let text = &l[3..];
            format!("{}\n", text.strip_prefix(' ').unwrap_or(text))
        })
        .collect();
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("[`") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("`]") {
            Some(end) if !after[end + 2..].starts_with('(') && !after[..end].contains('\n') => {
                out.push('`');
                out.push_str(&after[..end]);
                out.push('`');
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("[`");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn every_crate_readme_is_its_crate_documentation() {
    let write = std::env::var_os("CORRAL_WRITE_READMES").is_some();
    let dirs = crate_dirs();
    assert!(dirs.len() >= 10, "the whole workspace: {dirs:?}");
    let mut stale = Vec::new();
    for dir in dirs {
        let lib = dir.join("src/lib.rs");
        let source = if lib.exists() {
            lib
        } else {
            dir.join("src/main.rs")
        };
        let text = std::fs::read_to_string(&source).expect("crate source");
        let wanted = readme(&text);
        assert!(
            wanted.contains("**Owns:**")
                && wanted.contains("**Must not touch:**")
                && wanted.contains("**Talks to:**"),
            "{} must say what the crate Owns, Must not touch and Talks to",
            source.display()
        );
        let path = dir.join("README.md");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(wanted.as_str()) {
            if write {
                std::fs::write(&path, &wanted).expect("write README.md");
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "these READMEs differ from their crate docs; change the `//!` docs and run \
         `make readmes`: {stale:?}"
    );
}

#[test]
fn intra_doc_links_become_code_and_real_links_stay() {
    let src =
        "//! # c\n//!\n//! Uses [`sys::Sys`] and [`api`](src/api.rs).\nfn x() {}\n//! not doc\n";
    assert_eq!(
        readme(src),
        "# c\n\nUses `sys::Sys` and [`api`](src/api.rs).\n"
    );
}
