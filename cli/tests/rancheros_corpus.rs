//! RancherOS's own cloud-configs (tests/rancheros-corpus/, each file citing the page of
//! RancherOS's documentation it comes from) are valid for Corral as `corral config
//! validate -i` checks them: no errors; whatever Corral does not do is a warning that
//! names the key.

use std::path::PathBuf;

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/rancheros-corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_rancheros_example_validates_and_cites_its_source() {
    let files = corpus();
    assert!(files.len() >= 40, "{} files", files.len());
    let mut failed = Vec::new();
    let mut warned = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        assert!(
            text.lines().any(|l| l.starts_with("# Source: ")),
            "{} does not cite its source",
            f.display()
        );
        let report = corral_cli::validate::file(f).expect("reads");
        if !report.errors.is_empty() {
            failed.push(format!("{}: {:?}", f.display(), report.errors));
        }
        warned += usize::from(!report.warnings.is_empty());
        for w in &report.warnings {
            // A warning names the key it is about.
            assert!(w.contains('`') || w.contains("corral."), "{w}");
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // Some examples use what Corral does not do (wifi, modems, consoles): those warn.
    assert!(warned > 0);
}
